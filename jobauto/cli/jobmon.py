"""jobmon: the local monitor that drives a job tree on a cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jobauto.cli.common import add_caps
from jobauto.cli.guard import guard, parser

if TYPE_CHECKING:
    from jobauto.core.config import Options

EXAMPLE = """\
examples:
  nohup jobmon.py --ldir=$HOME/foobar --rdir=work/foobar --remote=tsubame \\
        --binpath=/home/me/ecalj/bin --maxcore=16 --qsub-args="-g tga-mygroup" &
  jobmon --ldir=foobar --rdir=/tmp/foobar --scheduler=local --interval=2   # no cluster
  jobmon --ldir=foobar --rdir=work/foobar --remote=mycluster --scheduler=slurm --retries=2
  jobmon --ldir=foobar --rdir=work/foobar --remote=mycluster --ahead=400   # whole chains queued
  jobmon --ldir=foobar --rdir=work/foobar --remote=pbshost --scheduler-bin=/opt/pbs/bin
  jobmon --ldir=foobar --datedir=20261121-100000     # resume, with the run's recorded settings
  ssh -fNM tsubame && jobmon --ldir=foobar --rdir=work/foobar --remote=tsubame --ssh=openssh
  jobmon --ldir=foobar --rdir=work/foobar --remote=tsubame --datedir=20261121-100000 \\
        --initonly --fetch='*/bnd.*.dat'                                  # fetch results
  jobmon --ldir=foobar --rdir=work/foobar --remote=tsubame --mail=me@example.org \\
        --notify='ntfy://my-topic' --notify='notify-send jobauto'         # hear about it"""
EXIT = """exit codes: 0 all jobs done; 1 some jobs failed or cannot run; 2 bad usage or input;
            75 --once and the run goes on; 128+N stopped by signal N (resume with --datedir)"""


RESUME_EXAMPLE = """\
examples:
  jobauto resume foobar/20261121-100000             # with the settings the run recorded
  jobauto resume foobar/20261121-100000 --daemon --maxqsub=50   # a flag overrides, is recorded"""
RESUME_EXIT = """exit codes: 0 all jobs done; 1 some jobs failed, were cancelled or cannot run; 2 bad usage
            or input (not a run, or a run made before settings were recorded: use jobmon with
            its flags once); 75 --once and the run goes on; 128+N stopped by signal N"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("jobmon", "Copy a prepared job tree to a cluster, submit jobs as their "
               "dependencies are met, and keep LDIR/DATE/quelist. Resuming a run "
               "(--datedir=DATE) uses the settings the run recorded; flags given override them "
               "and are recorded.", EXAMPLE, EXIT)
    p.add_argument("--ldir", help="local campaign directory holding init/ (required)")
    add_flags(p)
    p.add_argument("--datedir", help="run name under LDIR: resume it, or create it if new")
    return p


def resume_main(argv: list[str], prog: str = "jobauto resume") -> int:
    """`jobauto resume RUN [FLAGS]`: jobmon --ldir=RUN/.. --datedir=RUN's name."""
    p = parser(prog, "Resume a run (LDIR/DATE) with the settings it recorded: no need to repeat "
               "--rdir, --remote, --maxqsub...; a flag given here overrides and is recorded.",
               RESUME_EXAMPLE, RESUME_EXIT)
    p.add_argument("run", type=Path, help="the run directory, LDIR/DATE")
    add_flags(p)
    args = p.parse_args(argv)

    def go() -> int:
        from jobauto.core.errors import StateError
        from jobauto.core.layout import state_db
        from jobauto.run.daemon import start
        from jobauto.run.opener import recorded_options

        run = args.run.expanduser().resolve()
        if not state_db(run).exists():
            raise StateError("not a jobmon run directory (no .jobauto/state.db): pass LDIR/DATE",
                             file=str(args.run))
        recorded_options(run)   # refuses a run without recorded settings, naming it
        args.ldir, args.datedir = str(run.parent), run.name
        return start(options(args), say)
    return guard(prog, go)


def add_flags(p: argparse.ArgumentParser) -> None:
    """The flags jobmon and jobauto resume share."""
    a = p.add_argument
    a("--rdir", help="the campaign's directory on the cluster; relative = from the remote home")
    a("--remote", help="ssh_config host name or address of the cluster (default: this machine)")
    a("--user", help="user name on the cluster (overrides ssh_config)")
    a("--ssh-config", dest="ssh_config", help="ssh_config file to use instead of ~/.ssh/config")
    a("--ssh", choices=["auto", "openssh", "paramiko"], default=None,
      help="how to reach --remote: openssh rides the master connection you opened (ssh -fNM "
           "HOST; one login, two-factor included, for the whole run), paramiko logs in by itself; "
           "default auto: openssh when ssh_config sets a ControlPath for the host")
    a("--binpath", help="value of __binpath__ in job scripts")
    a("--pythonpath", help="value of __pythonpath__ in job scripts")
    a("--maxcore", help="value of __maxcore__ in job scripts")
    a("--maxqsub", help="most jobs submitted and not finished at once (default 10; 1 to 100000)")
    a("--ahead", help="most jobs queued at once with the scheduler's own dependency on a "
      "submitted job of the run (a chain goes in one batch, pipeline by pipeline), so they start "
      "when it ends, besides --maxqsub (default 10; 0 to 100000; 0: a job is submitted only "
      "once its dependencies are done); markers stay the truth")
    a("--interval", help="seconds between cycles (default 60; 0.1 to 86400)")
    a("--lost-after", dest="lost_after",
      help="seconds a job may be missing from the scheduler without a marker before it is an "
           "error (default 300; 0 to 30 days)")
    a("--sweep-every", dest="sweep_every",
      help="seconds between full looks at the whole run on the cluster and under DATE/, for jobs "
           "and files added by hand (default 900; 0 to 30 days; 0: every cycle); each cycle "
           "looks only where the run's own jobs can change things; see also jobauto rescan")
    a("--retries", help="submit a job again up to N times when it failed, was killed at its "
      "walltime or by a node failure, or vanished (default 0; at most 100); see "
      "docs/failure-modes.md")
    a("--scheduler-bin", dest="scheduler_bin", metavar="DIR[:DIR]",
      help="directories holding qsub/sbatch/qstat on the cluster, when a non-interactive login "
           "does not have them on its PATH")
    a("--initonly", action="store_true", default=None,
      help="new run: copy and push, then exit; existing run (--datedir): fetch results and exit")
    a("--scheduler", choices=["auto", "sge", "pbs", "slurm", "local"], default=None,
      help="batch system on the cluster (default auto: detect)")
    a("--qsub-args", dest="qsub_args", help='extra submit options, e.g. "-g tga-group"')
    a("--define", action="append", metavar="KEY=VALUE", help="replace __KEY__ in job scripts")
    a("--fetch", action="append", metavar="GLOB",
      help="files to bring back at the end besides the markers and the scheduler's output files "
           "(rsync-style glob, e.g. '**/*.dat'); a file changed locally is never fetched over")
    a("--fetch-all", dest="fetch_all", action="store_true", default=None,
      help="bring back every file of the run at the end (default: markers, the scheduler's "
           "output files and --fetch)")
    a("--config", type=Path, help="YAML file of options (LDIR/jobauto.yaml is read too when a run is created)")
    a("--daemon", action="store_true", default=None, help="detach; log to DATE/.jobauto/jobmon.log")
    a("--once", action="store_true", default=None, help="run one cycle and exit")
    a("--arrays", action=argparse.BooleanOptionalAction, default=None,
      help="submit ready jobs of one step and one script shape as one array job (default: on "
           "for jobs made by `jobauto render`, off otherwise); see docs/render.md")
    a("--notify", action="append", metavar="TARGET",
      help="tell TARGET when jobs fail, the run is stuck or finished, or the monitor stops "
           "(repeatable): an apprise URL (scheme://..., e.g. ntfy://topic, slack://..., "
           "json://host/path) or a command run without a shell, the event in JOBAUTO_* "
           "variables and as JSON on its stdin; see docs/notifications.md")
    a("--mail", action="append", metavar="ADDR",
      help="mail the same events to ADDR through the local sendmail (repeatable)")
    a("--notify-timeout", dest="notify_timeout", metavar="S",
      help="seconds a notification may take before it is given up (default 30; 1 to 3600)")
    add_caps(p)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def go() -> int:
        from jobauto.run.daemon import start
        return start(options(args), say)
    return guard("jobmon", go)


def options(args: argparse.Namespace) -> Options:
    """The flags merged with LDIR/jobauto.yaml and --config (flags win). Resuming a run that
    recorded its settings (--datedir of an existing run), they are the base instead of
    LDIR/jobauto.yaml (read when the run was created): --config and flags change them."""
    from jobauto.core.config import merge, parse_define
    from jobauto.run.opener import resume_base

    flags = {k: v for k, v in vars(args).items() if k not in ("config", "run")}
    if args.define:
        flags["define"] = parse_define(args.define, "--define")
    ldir = Path(args.ldir).expanduser() if args.ldir else None
    base = resume_base(ldir, args.datedir)
    files: list[Path] = []
    if base is None and ldir and (ldir / "jobauto.yaml").exists():
        files.append(ldir / "jobauto.yaml")
    if args.config:
        files.append(args.config)
    return merge(flags, files, base=base)


def say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
