"""`jobauto graph`: the dependency DAG of a run or a table, coloured by state."""

from __future__ import annotations

import sys
from pathlib import Path

from jobauto.cli.common import TARGET, check_output
from jobauto.cli.guard import guard, parser

FORMATS = ("dot", "mermaid", "svg", "png")
SUFFIXES = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".mermaid": "mermaid", ".svg": "svg",
            ".png": "png"}


def graph_main(argv: list[str], prog: str = "jobauto graph") -> int:
    p = parser(prog, "Draw the dependency DAG of a run or a job table, nodes coloured by state "
               "(done green, running blue, ready white, waiting yellow, blocked orange, error "
               "red), a run's jobs boxed by directory. When there are more jobs than --max-nodes, "
               "chains of single-dependency jobs and then groups of identical chains are merged "
               "into nodes that show their members' state mix. Read-only.",
               "examples:\n  jobauto graph foobar/20261121-100000 -o dag.svg\n"
               "  jobauto graph experiments.db --format mermaid > dag.mmd\n"
               "  jobauto graph foobar/20261121-100000 | dot -Tpdf -o dag.pdf\n"
               "  jobauto graph big.db --collapse none --format png -o all.png\n\n"
               "The format defaults to the -o file's suffix (.dot .gv .mmd .svg .png), else dot.\n"
               "svg and png need graphviz (apt install graphviz).")
    p.add_argument("target", type=Path, help=TARGET)
    p.add_argument("--format", choices=FORMATS, help="dot (default), mermaid, svg or png")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="write here (default: stdout; svg and png only to a pipe or file)")
    p.add_argument("--collapse", choices=("auto", "none", "chains", "groups"), default="auto",
                   help="auto (default): merge only when there are more than --max-nodes jobs; "
                        "none: every job; chains: merge chains; groups: chains, then groups")
    p.add_argument("--max-nodes", type=int, default=150, metavar="N",
                   help="auto collapses until at most N nodes are left (default 150)")
    args = p.parse_args(argv)
    if args.max_nodes < 1:
        p.error(f"--max-nodes must be at least 1, not {args.max_nodes}")
    out: Path | None = None if args.output is None or str(args.output) == "-" else args.output
    fmt = args.format or (SUFFIXES.get(out.suffix.lower(), "dot") if out else "dot")

    def go() -> int:
        from jobauto.core.errors import ConfigError
        from jobauto.view.campaign import gather
        from jobauto.view.collapse import layout
        from jobauto.view.graph import to_dot, to_image, to_mermaid
        if out is not None:
            check_output(out)
        elif fmt in ("svg", "png") and sys.stdout.isatty():
            raise ConfigError(f"{fmt} is binary or long: write it with -o FILE (or pipe it)",
                              flag="--format")
        picture = layout(gather(args.target), collapse=args.collapse, max_nodes=args.max_nodes)
        if fmt == "mermaid":
            data = to_mermaid(picture).encode()
        elif fmt == "dot":
            data = to_dot(picture).encode()
        else:
            data = to_image(to_dot(picture), fmt)
        print(f"{prog}: {picture.caption}", file=sys.stderr)
        if out is None:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            return 0
        try:
            out.write_bytes(data)
        except OSError as e:
            raise ConfigError(f"cannot write {out}: {e.strerror or e}", flag="-o") from None
        print(f"{prog}: wrote {out} ({fmt})", file=sys.stderr)
        return 0
    return guard(prog, go)

