"""`jobauto render`: a job-table CSV as a jobmon tree (one job directory per row)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from jobauto.cli.guard import guard, parser

PROG = "jobauto render"
EPILOG = """\
Each row becomes OUT/ID/qsub.0 (the template, with __COLUMN__ replaced by the row's value of
parameter column COLUMN as is, and __COLUMN_q__ by the value quoted for the shell) and
OUT/ID/qsub.dependency.0 (../DEP/qsub.finished.0 per JOBSCHEDULER_DEPENDS_ON id, and a
'#jobauto priority=N estimate=H' line). Other placeholders (__id__, __binpath__, __maxcore__,
__pythonpath__, --define keys) are left for jobmon. Everything is checked first; nothing is
written when anything is wrong, and existing job directories are never overwritten.

examples:
  jobauto render experiments.csv --template job.sh --out camp/init
  jobmon --ldir=camp --rdir=work/camp --remote=tsubame --binpath=$HOME/bin --maxcore=4

  jobauto render more.csv --template job.sh --out camp/init     # adds new ids next to the others

See docs/render.md."""
EXIT = "exit codes: 0 written; 2 bad usage or input (one message naming the file and line)"


def build_parser() -> argparse.ArgumentParser:
    p = parser(PROG, "Write one jobmon job directory per row of a job-table CSV, so the same "
               "CSV can feed pull workers (jobauto import/run) or jobmon.", EPILOG, EXIT)
    p.add_argument("csv", type=Path, metavar="CSV", help="the job table: parameter columns plus "
                   "optional JOBSCHEDULER_JOB_ID, _PRIORITY, _ESTIMATE_TIME (hours), _DEPENDS_ON")
    p.add_argument("--template", type=Path, required=True, metavar="FILE",
                   help="job script with __COLUMN__ / __COLUMN_q__ placeholders "
                        "(start from templates/ for the marker block)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="where the job directories go, normally LDIR/init (created if missing)")
    return p


def render_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)

    def go() -> int:
        from jobauto.table.render import jobmon_flags, render
        plan = render(args.csv, args.template, args.out)
        n = len(plan.jobs)
        print(f"{PROG}: {n} job{'' if n == 1 else 's'} from {args.csv} into {args.out}")
        flags = jobmon_flags(plan)
        if flags:
            print(f"jobmon will need: {', '.join(flags)}")
        parts = args.out.parts
        if "init" in parts:
            ldir = Path(*parts[:len(parts) - 1 - parts[::-1].index("init")])
            print(f"next: jobmon --ldir={shlex.quote(str(ldir))} --rdir=REMOTE_DIR [--remote=HOST] ...")
        else:
            print("note: jobmon takes its jobs from LDIR/init/ (any depth) when a run starts, and "
                  "from LDIR/DATE/ while that run goes on")
        return 0
    return guard(PROG, go)


def main(argv: list[str] | None = None) -> int:
    return render_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
