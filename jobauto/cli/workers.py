"""`jobauto workers`: submit N pull workers for a job table as one array job on a cluster."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from jobauto.cli.guard import guard, parser

PROG = "jobauto workers"
EPILOG = """\
examples:
  # 10 workers on Grid Engine, 4 jobs at once each, for 24 hours (h_rt=24:00:00)
  jobauto workers --remote tsubame --db work/sweep/jobs.db -n 10 --parallel 4 \\
      --walltime 24:00:00 --margin-time 300 --qsub-args "-g tga-mygroup -l cpu_4=1" \\
      -- bash run.sh
  # more workers later, while those run: the same command again (a new array)
  jobauto workers --remote tsubame --db work/sweep/jobs.db -n 5 --walltime 6:00:00 -- bash run.sh
  # Slurm; jobauto lives in a virtualenv on the cluster
  jobauto workers --remote hpc --db jobs.db -n 8 --walltime 2:00:00 --qsub-args "-p short" \\
      --jobauto '~/venv/bin/jobauto' -- python3 sim.py
  # PBS whose qsub is not on a non-interactive login's PATH; modules loaded in each task
  jobauto workers --remote pbshost --scheduler pbs --scheduler-bin /opt/pbs/bin \\
      --setup 'module load python/3.11' --db jobs.db -n 4 -- ./run.sh
  # no cluster: 3 detached workers on this machine (a laptop demo)
  jobauto workers --scheduler local --db experiments.db -n 3 -- bash run.sh
  # show the batch script and the submit command, submit nothing
  jobauto workers --remote hpc --db jobs.db -n 4 --dry-run -- bash run.sh

Each task runs `jobauto run --parallel P --max-runtime X --margin-time M -- DB COMMAND...`
in --workdir. X = the walltime minus 5 % of it (at least 30 s, at most 5 minutes). The script
is written to --log-dir (default DB.workers/ next to the table) as worker-DATE-TIME.sh, with the
tasks' output files beside it. Watch with `jobauto status DB` on the cluster. docs/workers.md."""
EXIT = """exit codes: 0 submitted; 2 bad usage or input, unreachable host, refused submission (nothing
submitted)"""


def build_parser() -> argparse.ArgumentParser:
    p = parser(PROG, "Submit N pull workers for a job table as one array job (Grid Engine -t, "
               "Slurm --array, PBS -t/-J), or start them as detached processes (--scheduler "
               "local). Each worker claims and runs the table's jobs until nothing is left or "
               "its time is up.", EPILOG, EXIT)
    a = p.add_argument
    a("--db", metavar="PATH", help="the job table on the cluster (required); relative and ~/ paths are from the "
      "remote home, or from here without --remote")
    a("-n", type=int, default=1, metavar="N", help="number of workers (array tasks; default 1)")
    a("--parallel", type=int, default=1, metavar="P", help="jobs each worker runs at once (default 1)")
    a("--walltime", metavar="HH:MM:SS", help="wall-clock limit of each task ([D-]HH:MM:SS), "
      "asked of the scheduler; the worker stops safely before it (default: none asked)")
    a("--margin-time", dest="margin_time", type=float, default=0.0, metavar="SEC",
      help="seconds at the end of the worker's time in which no job is started whose estimate "
           "does not fit (jobauto run --margin-time; default 0)")
    a("--named-args", dest="named_args", action="store_true",
      help="pass the row's parameters as --COLUMN VALUE")
    a("--remote", metavar="HOST", help="ssh_config host name or address of the cluster (default: this machine)")
    a("--user", help="user name on the cluster (overrides ssh_config)")
    a("--ssh-config", dest="ssh_config", type=Path, metavar="FILE", help="ssh_config file instead of ~/.ssh/config")
    a("--scheduler", default="auto", metavar="NAME", help="auto (detect), sge, slurm, pbs or local "
      "(detached processes; default auto, local when no --remote and no scheduler)")
    a("--scheduler-bin", dest="scheduler_bin", metavar="DIR[:DIR]",
      help="directories holding qsub/sbatch on the cluster, when a non-interactive login does "
           "not have them on its PATH")
    a("--qsub-args", dest="qsub_args", default="", metavar='"..."',
      help='extra submit options, split like a shell would, e.g. "-l cpu_4=1 -g grp" (last: they '
           'win); one option alone needs the = form: --qsub-args=-V')
    a("--jobauto", default="jobauto", metavar="CMD",
      help="how to start jobauto on the cluster, split like a shell would, e.g. "
           "'~/venv/bin/jobauto' or 'python3 -m jobauto.cli.jobauto' (default: jobauto, "
           "looked up on the cluster's PATH and written into the script as a full path)")
    a("--setup", action="append", default=[], metavar="LINE",
      help="a bash line each task runs before the worker, e.g. 'module load python' "
           "(repeatable; also run once by the check before submitting)")
    a("--workdir", metavar="DIR", help="where the commands run (default: the table's directory)")
    a("--log-dir", dest="log_dir", metavar="DIR", help="where the script and the tasks' output files go "
      "(default: DB.workers/ next to the table)")
    a("--name", help="the array's job name (default: w-TABLE, at most 15 characters)")
    a("--dry-run", dest="dry_run", action="store_true",
      help="check everything, print the script and the submit command, submit nothing")
    a("--unsafe-fs", dest="unsafe_fs", action="store_true",
      help="let the workers use a table on a file system whose locks do not reach other hosts "
           "(jobauto run --unsafe-fs): safe only when all of them run on one host")
    a("command", nargs="*", metavar="-- COMMAND", help="the command each job runs with its row's "
      "parameters appended, as for jobauto run (e.g. -- bash run.sh)")
    return p


def workers_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)

    def go() -> int:
        from jobauto.core.errors import ConfigError
        from jobauto.table.arrayplan import WorkersOptions
        from jobauto.table.arrays import describe, start_workers

        bin_dirs = [d for d in (args.scheduler_bin or "").split(":") if d]
        try:
            qsub_args = shlex.split(args.qsub_args)
        except ValueError as e:
            raise ConfigError(f"cannot split {args.qsub_args!r}: {e}", flag="--qsub-args") from None
        o = WorkersOptions(db=args.db, command=args.command, n=args.n, remote=args.remote,
                           user=args.user, ssh_config=args.ssh_config, scheduler=args.scheduler,
                           scheduler_bin=bin_dirs, walltime=args.walltime,
                           margin_s=args.margin_time, parallel=args.parallel,
                           named_args=args.named_args, qsub_args=qsub_args,
                           jobauto=args.jobauto, workdir=args.workdir, log_dir=args.log_dir,
                           setup=args.setup, name=args.name, dry_run=args.dry_run,
                           unsafe_fs=args.unsafe_fs)
        sub = start_workers(o)
        print(describe(sub, args.remote), flush=True)
        return 0
    return guard(PROG, go)
