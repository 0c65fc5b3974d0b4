"""`jobauto explain` and `jobauto reset` on a jobmon run directory (LDIR/DATE)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobauto.core.errors import JobautoError


def explain_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="jobauto explain", description="Print a job's history (submissions, scheduler ids, "
        "markers, accounting records) and the rule that produced its state.",
        epilog="example:\n  jobauto explain foobar/20261121-100000 Si/qsub.1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rundir", type=Path, help="the run directory, LDIR/DATE")
    p.add_argument("job", help="the job: its name as in quelist (Si/qsub.1), or a path to it")
    args = p.parse_args(argv)
    from jobauto.run.explain import explain
    try:
        lines = explain(args.rundir, args.job)
    except JobautoError as e:
        print(f"jobauto explain: error: {e.describe()}", file=sys.stderr)
        return e.exit_code
    print("\n".join(lines))
    return 0


def reset_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="jobauto reset", description="Make jobs pending again: their markers are removed "
        "here and on the cluster, and the monitor submits them when their dependencies allow. "
        "Works while the monitor runs.",
        epilog="examples:\n  jobauto reset foobar/20261121-100000                # every job in error\n"
        "  jobauto reset foobar/20261121-100000 Si/qsub.1 Si/qsub.2\n"
        "  jobauto reset foobar/20261121-100000 --status done   # rerun everything that finished",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rundir", type=Path, help="the run directory, LDIR/DATE")
    p.add_argument("jobs", nargs="*", help="jobs to reset (default: every job in --status)")
    p.add_argument("--status", action="append", default=[],
                   help="reset the jobs in this state: error (default), done, pending")
    args = p.parse_args(argv)
    from jobauto.run.requests import request_reset
    try:
        picked, note = request_reset(args.rundir, args.jobs, args.status)
    except JobautoError as e:
        print(f"jobauto reset: error: {e.describe()}", file=sys.stderr)
        return e.exit_code
    shown = ", ".join(picked[:10]) + (f" and {len(picked) - 10} more" if len(picked) > 10 else "")
    print(f"jobauto reset: {len(picked)} job(s) to reset{': ' + shown if picked else ''}; {note}")
    return 0
