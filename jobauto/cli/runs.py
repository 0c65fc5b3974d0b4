"""`jobauto explain`, `jobauto reset` and `jobauto rescan` on a jobmon run directory (LDIR/DATE)."""

from __future__ import annotations

import argparse
from pathlib import Path

from jobauto.cli.guard import guard, parser

# each command's help: (description, examples, exit codes)
EXPLAIN_HELP = (
    "Print a job's history (submissions, scheduler ids, markers, accounting records) and the "
    "rule that produced its state.",
    "example:\n  jobauto explain foobar/20261121-100000 Si/qsub.1",
    "exit codes: 0 shown; 2 bad usage or input (no such run directory or job)")
RESET_HELP = (
    "Make jobs pending again: their markers are removed here and on the cluster, and the "
    "monitor submits them when their dependencies allow. Works while the monitor runs.",
    "examples:\n"
    "  jobauto reset foobar/20261121-100000                # every job in error\n"
    "  jobauto reset foobar/20261121-100000 Si/qsub.1 Si/qsub.2\n"
    "  jobauto reset foobar/20261121-100000 --status done   # rerun everything that finished",
    "exit codes: 0 reset requested; 2 bad usage or input (nothing reset)")
RESCAN_HELP = (
    "Ask the monitor to look at the whole run now, on the cluster and under DATE/, for jobs and "
    "dependency files added by hand (each cycle looks only where the run's own jobs can change "
    "things; the whole run is looked at every --sweep-every). Works while the monitor runs; "
    "without one, the look is made when the run resumes.",
    "example:\n  jobauto rescan foobar/20261121-100000",
    "exit codes: 0 rescan requested; 2 bad usage or input (no such run directory)")


def explain_main(argv: list[str], prog: str = "jobauto explain") -> int:
    p = parser(prog, *EXPLAIN_HELP)
    p.add_argument("rundir", type=Path, help="the run directory, LDIR/DATE")
    p.add_argument("job", help="the job: its name as in quelist (Si/qsub.1), or a path to it")
    args = p.parse_args(argv)
    return guard(prog, lambda: explain(args))


def reset_main(argv: list[str], prog: str = "jobauto reset") -> int:
    p = parser(prog, *RESET_HELP)
    p.add_argument("rundir", type=Path, help="the run directory, LDIR/DATE")
    p.add_argument("jobs", nargs="*", help="jobs to reset (default: every job in --status)")
    p.add_argument("--status", action="append", default=[],
                   help="reset the jobs in this state: error (default), done, pending")
    args = p.parse_args(argv)
    return guard(prog, lambda: reset(args))


def rescan_main(argv: list[str], prog: str = "jobauto rescan") -> int:
    p = parser(prog, *RESCAN_HELP)
    p.add_argument("rundir", type=Path, help="the run directory, LDIR/DATE")
    args = p.parse_args(argv)
    return guard(prog, lambda: rescan(args))


def explain(args: argparse.Namespace) -> int:
    from jobauto.run.explain import explain as history
    print("\n".join(history(args.rundir, args.job)))
    return 0


def reset(args: argparse.Namespace) -> int:
    from jobauto.run.requests import request_reset
    picked, note = request_reset(args.rundir, args.jobs, args.status)
    shown = ", ".join(picked[:10]) + (f" and {len(picked) - 10} more" if len(picked) > 10 else "")
    print(f"jobauto reset: {len(picked)} job(s) to reset{': ' + shown if picked else ''}; {note}")
    return 0


def rescan(args: argparse.Namespace) -> int:
    from jobauto.run.requests import request_rescan
    print(f"jobauto rescan: requested; {request_rescan(args.rundir)}")
    return 0
