"""`jobauto explain`, `reset`, `cancel`, `set` and `rescan` on a jobmon run directory (LDIR/DATE)."""

from __future__ import annotations

import argparse
from pathlib import Path

from jobauto.cli.guard import guard, parser

# each command's help: (description, examples, exit codes)
EXPLAIN_HELP = (
    "Print a job's history (submissions, scheduler ids, markers, accounting records) and the "
    "rule that produced its state; without JOB, the run's settings, where they came from and "
    "when they changed, and its requests (reset, cancel, set).",
    "examples:\n  jobauto explain foobar/20261121-100000 Si/qsub.1\n"
    "  jobauto explain foobar/20261121-100000            # the run's settings and requests",
    "exit codes: 0 shown; 2 bad usage or input (no such run directory or job)")
RESET_HELP = (
    "Make jobs pending again: their markers are removed here and on the cluster, and the "
    "monitor submits them when their dependencies allow. Works while the monitor runs.",
    "examples:\n"
    "  jobauto reset foobar/20261121-100000                # every job in error\n"
    "  jobauto reset foobar/20261121-100000 Si/qsub.1 Si/qsub.2\n"
    "  jobauto reset foobar/20261121-100000 --status done   # rerun everything that finished",
    "exit codes: 0 reset requested; 2 bad usage or input (nothing reset)")
CANCEL_HELP = (
    "Delete jobs of the run from the scheduler (one command for all of them) and record them "
    "cancelled; jobs not submitted yet are cancelled too (they never run). What needs a "
    "cancelled job is blocked; jobauto reset makes it pending again. Without JOB or --status, "
    "the whole run is cancelled and its monitor stops (exit 1, the work did not all succeed). "
    "Through the running monitor when there is one, else directly (the run's recorded "
    "settings reach the cluster).",
    "examples:\n"
    "  jobauto cancel foobar/20261121-100000 Si/qsub.1 Si/qsub.2\n"
    "  jobauto cancel foobar/20261121-100000 --status pending   # nothing more is submitted\n"
    "  jobauto cancel foobar/20261121-100000                    # the whole run",
    "exit codes: 0 cancelled, or requested from the running monitor; 1 no monitor runs and the "
    "cluster could not be reached (the cancel is applied when the run is resumed); 2 bad usage "
    "or input (nothing cancelled)")
SET_HELP = (
    "Change a run's settings: the names of jobmon's flags and jobauto.yaml's keys (maxqsub, "
    "interval, retries, lost-after, qsub-args, fetch, ...). The running monitor applies "
    "maxqsub, interval, retries, lost-after, qsub-args, fetch and the caps "
    "(max-scheduler-commands-per-minute, max-logins-per-hour) at its next cycle; the others, "
    "and every change made while no monitor runs, are used when the run is resumed. Each "
    "change is recorded: jobauto explain RUN lists them, jobauto status RUN shows the values.",
    "examples:\n"
    "  jobauto set foobar/20261121-100000 maxqsub=200 interval=30\n"
    "  jobauto set foobar/20261121-100000 lost-after=900 retries=2",
    "exit codes: 0 set (or requested from the running monitor); 2 bad usage or input: an "
    "unknown name or a bad value, named (nothing changed)")
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
    p.add_argument("job", nargs="?", help="the job: its name as in quelist (Si/qsub.1), or a path "
                   "to it (default: the run itself)")
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


def cancel_main(argv: list[str], prog: str = "jobauto cancel") -> int:
    p = parser(prog, *CANCEL_HELP)
    p.add_argument("rundir", type=Path, help="the run directory, LDIR/DATE")
    p.add_argument("jobs", nargs="*", help="jobs to cancel (default: with no --status, all)")
    p.add_argument("--status", action="append", default=[],
                   help="cancel the jobs in this state: running, pending")
    args = p.parse_intermixed_args(argv)

    def go() -> int:
        from jobauto.run.control import cancel
        return cancel(args.rundir, args.jobs, args.status, print)
    return guard(prog, go)


def set_main(argv: list[str], prog: str = "jobauto set") -> int:
    p = parser(prog, *SET_HELP)
    p.add_argument("rundir", type=Path, help="the run directory, LDIR/DATE")
    p.add_argument("settings", nargs="*", metavar="NAME=VALUE", help="e.g. maxqsub=20")
    args = p.parse_args(argv)

    def go() -> int:
        from jobauto.run.control import set_settings
        return set_settings(args.rundir, args.settings, print)
    return guard(prog, go)
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
