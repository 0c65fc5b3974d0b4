"""`jobauto report RUN|DB -o report.html`: the campaign as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

from jobauto.cli.common import TARGET, check_output
from jobauto.cli.guard import guard, parser


def report_main(argv: list[str], prog: str = "jobauto report") -> int:
    p = parser(prog, "Write one HTML file about a run directory (LDIR/DATE) or a job table: "
               "counts by state, a timeline, the dependency graph, each failure with its "
               "evidence and output, and duration statistics per step. The file is "
               "self-contained (nothing is loaded from the network): mail it, attach it to an "
               "issue, or open it in any browser. Works while jobmon or workers run.",
               "examples:\n  jobauto report foobar/20261121-100000            # writes report.html\n"
               "  jobauto report experiments.db -o /tmp/experiments.html\n\n"
               "The dependency graph needs graphviz (dot); without it the page shows the DOT text.")
    p.add_argument("target", type=Path, metavar="RUN|DB", help=TARGET)
    p.add_argument("-o", "--output", type=Path, default=Path("report.html"), metavar="FILE",
                   help="the HTML file to write (default: report.html in the current directory); "
                        "replaced atomically")
    args = p.parse_args(argv)

    def go() -> int:
        from jobauto.core.errors import ConfigError
        from jobauto.core.files import write_atomic
        from jobauto.view.campaign import gather
        from jobauto.view.report import make
        out: Path = args.output
        check_output(out, "-o/--output")
        c = gather(args.target)
        page = make(c)
        try:
            write_atomic(out, page)
        except OSError as e:
            raise ConfigError(f"cannot write {out}: {e.strerror or e}", flag="-o/--output") from e
        print(f"{prog}: wrote {out} ({c.total} jobs)")
        return 0
    return guard(prog, go)
