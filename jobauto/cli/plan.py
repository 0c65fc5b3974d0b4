"""`jobauto plan LDIR/init|RUN`: what a run will cost the cluster (run/plan.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jobauto.cli.common import add_caps
from jobauto.cli.guard import guard, parser

PLAN_HELP = (
    "Forecast what a run will cost the cluster before it starts, or what is left of a run: "
    "jobs, submissions, scheduler commands (submissions, queue listings, accounting), SSH "
    "logins, bytes to push and the remote metadata operations of one cycle. Reads local files "
    "only (LDIR/jobauto.yaml and --config too) and ssh_config through `ssh -G`, as jobmon "
    "does, to know whether the run will ride an OpenSSH master (no logins of its own) or log "
    "in with paramiko; contacts nothing. The assumptions are printed "
    "with the figures (docs/etiquette.md).",
    "examples:\n"
    "  jobauto plan foobar/init --remote=tsubame --interval=60 --maxqsub=50\n"
    "  jobauto plan foobar/20261121-100000 --json | jq .scheduler_commands   # what is left\n"
    "  jobauto plan foobar/init --remote=tsubame --ssh-config=~/.ssh/config --json | jq .transport",
    "exit codes: 0 forecast printed; 2 bad usage or input (no jobs, a dependency cycle, a bad "
    "flag or YAML value)")


def plan_main(argv: list[str], prog: str = "jobauto plan") -> int:
    p = parser(prog, *PLAN_HELP)
    p.add_argument("path", type=Path, help="LDIR/init (a new run) or a run directory LDIR/DATE")
    p.add_argument("--interval", help="jobmon's seconds between cycles (default 60)")
    p.add_argument("--maxqsub", help="jobmon's most jobs submitted at once (default 10)")
    p.add_argument("--remote", help="the cluster jobmon will reach (default: this machine, no SSH)")
    p.add_argument("--scheduler", choices=["auto", "sge", "pbs", "slurm", "local"], default=None,
                   help="the batch system (default auto; local keeps no accounting)")
    p.add_argument("--user", help="user name on the cluster (overrides ssh_config)")
    p.add_argument("--ssh-config", dest="ssh_config", help="ssh_config file instead of "
                   "~/.ssh/config (read with `ssh -G`, as jobmon reads it)")
    p.add_argument("--ssh", choices=["auto", "openssh", "paramiko"], default=None,
                   help="the transport jobmon will use (default auto: openssh, no logins of "
                   "its own, when ssh_config sets a ControlPath for the host; else paramiko)")
    add_caps(p)
    p.add_argument("--config", type=Path, help="YAML file of jobmon options (LDIR/jobauto.yaml "
                   "is read too)")
    p.add_argument("--job-hours", dest="job_hours", default="1", metavar="H",
                   help="hours counted for a job without `#jobauto estimate=` (default 1)")
    p.add_argument("--json", action="store_true", help="print the forecast as one JSON object")
    args = p.parse_args(argv)
    return guard(prog, lambda: plan(args))


def plan(args: argparse.Namespace) -> int:
    from jobauto.core.config import merge, setting
    from jobauto.run.plan import make_plan, render_text
    hours = float(setting("job_hours", args.job_hours, name="--job-hours"))
    flags = {k: getattr(args, k) for k in ("interval", "maxqsub", "remote", "scheduler",
                                           "user", "ssh_config", "ssh",
                                           "max_scheduler_commands_per_minute",
                                           "max_logins_per_hour")}
    path = args.path.expanduser()
    ldir = path.resolve().parent
    files = [f for f in (ldir / "jobauto.yaml",) if f.exists()]
    if args.config:
        files.append(args.config)
    forecast = make_plan(path, merge(flags, files), hours)
    print(json.dumps(forecast.to_json(), sort_keys=True) if args.json else render_text(forecast))
    return 0
