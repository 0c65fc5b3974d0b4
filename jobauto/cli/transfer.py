"""`jobauto fetch` and `jobauto clean --remote` on a jobmon run directory (LDIR/DATE)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from jobauto.cli.guard import guard, parser

CONNECT = ("the cluster is reached as jobmon reaches it: --remote/--user/--ssh-config, "
           "LDIR/jobauto.yaml, --config; the run's directory and scheduler are the run's own")
FETCH_HELP = (
    "Bring files of a run back from the cluster into LDIR/DATE: first the number of files and "
    "bytes, then the transfer (a progress bar on a terminal). Without GLOB: the markers and the "
    "scheduler's output files (what the end of a run brings); --all: everything. A file changed "
    "locally since it was last pushed or fetched is kept and listed, never fetched over; "
    + CONNECT + ".",
    "examples:\n"
    "  jobauto fetch foobar/20261121-100000 --remote=tsubame --dry-run   # how much, nothing moved\n"
    "  jobauto fetch foobar/20261121-100000 '**/bnd*.dat' '*/log.*'\n"
    "  jobauto fetch foobar/20261121-100000 --all",
    "exit codes: 0 fetched (or shown, --dry-run); 2 bad usage or input (not a run, a bad glob),\n"
    "            or the cluster cannot be reached (nothing fetched)")
CLEAN_HELP = (
    "Remove the run's directory on the cluster (quota-limited work disks), after showing what "
    "and how much. Refused while a monitor serves the run, and while jobs of the run are queued "
    "or running (the run's running jobs, confirmed by the scheduler's queue) unless --force. "
    "The local run directory is kept; " + CONNECT + " (--remote=HOST).",
    "examples:\n"
    "  jobauto clean foobar/20261121-100000 --remote --dry-run     # host from jobauto.yaml\n"
    "  jobauto clean foobar/20261121-100000 --remote=tsubame",
    "exit codes: 0 removed (or shown, --dry-run); 1 refused: a monitor serves the run, or its jobs\n"
    "            are queued or running (nothing removed); 2 bad usage or input, or the cluster\n"
    "            cannot be reached (nothing removed)")


def _connection_flags(p: argparse.ArgumentParser, remote: bool = True) -> None:
    a = p.add_argument
    if remote:
        a("--remote", help="ssh_config host name of the cluster (default: jobauto.yaml's, else "
                           "this machine)")
    a("--user", help="user name on the cluster (overrides ssh_config)")
    a("--ssh-config", dest="ssh_config", type=Path, help="ssh_config file instead of ~/.ssh/config")
    a("--ssh", choices=["auto", "openssh", "paramiko"], default=None,
      help="openssh: through your master connection (ssh -fNM HOST), paramiko: a login of its "
           "own (default auto: openssh when ssh_config sets a ControlPath for the host)")
    a("--config", type=Path, help="YAML file of jobmon options (LDIR/jobauto.yaml is read too)")


def fetch_main(argv: list[str], prog: str = "jobauto fetch") -> int:
    p = parser(prog, *FETCH_HELP)
    p.add_argument("rundir", type=Path, help="the run directory, LDIR/DATE")
    p.add_argument("globs", nargs="*", metavar="GLOB",
                   help="rsync-style globs of the files to bring (e.g. '**/*.dat')")
    p.add_argument("--all", action="store_true", help="every file of the run")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="show the number of files and bytes; move nothing")
    _connection_flags(p)
    args = p.parse_args(argv)
    return guard(prog, lambda: fetch(args))


def clean_main(argv: list[str], prog: str = "jobauto clean") -> int:
    p = parser(prog, *CLEAN_HELP)
    p.add_argument("rundir", type=Path, help="the run directory, LDIR/DATE")
    p.add_argument("--remote", nargs="?", const="", required=True, metavar="HOST",
                   help="remove the run's copy on the cluster (required; HOST: the cluster, "
                        "default jobauto.yaml's, else this machine)")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="show what would be removed; remove nothing")
    p.add_argument("--force", action="store_true",
                   help="remove even while jobs of the run are queued or running (never while "
                        "a monitor serves the run)")
    _connection_flags(p, remote=False)
    args = p.parse_args(argv)
    return guard(prog, lambda: clean(args))


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from jobauto.run import transfer
    opts, rundir = transfer.connection(args.rundir, remote=args.remote or None, user=args.user,
                                       ssh_config=args.ssh_config, config=args.config,
                                       ssh=args.ssh)
    return transfer.open_remote(opts, rundir)


def fetch(args: argparse.Namespace) -> int:
    from jobauto.run import transfer
    from jobauto.store import open_run_store
    globs = transfer.check_globs(args.globs, "GLOB")
    store = open_run_store(args.rundir, readonly=False)
    try:
        remote = _open(args)
        try:
            plan = transfer.plan_fetch(remote, args.rundir, store, globs, everything=args.all,
                                       default=not args.globs)
            for line in transfer.plan_lines(plan):
                print(f"{args.rundir}: {line}", flush=True)
            if args.dry_run:
                print("--dry-run: nothing moved")
                return 0
            moved, size = _fetch(transfer, remote, args.rundir, store, plan)
            print(f"fetched {moved} file(s), {transfer.size(size)} into {args.rundir}")
            return 0
        finally:
            remote.transport.close()
    finally:
        store.close()


def _fetch(transfer, remote, run_dir, store, plan) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """The transfer, with a progress bar when stdout is a terminal."""
    if not sys.stdout.isatty() or not plan.files:
        return transfer.fetch(remote, run_dir, store, plan, time.time())   # type: ignore[no-any-return]
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
    with Progress(TextColumn("fetching"), BarColumn(), DownloadColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task("fetch", total=plan.bytes)
        return transfer.fetch(remote, run_dir, store, plan, time.time(),  # type: ignore[no-any-return]
                              progress=lambda n, b: bar.update(task, completed=b))


def clean(args: argparse.Namespace) -> int:
    from jobauto.run import transfer
    from jobauto.store import open_run_store
    opts, rundir = transfer.connection(args.rundir, remote=args.remote or None, user=args.user,
                                       ssh_config=args.ssh_config, config=args.config,
                                       ssh=args.ssh)
    transfer.check_rundir(args.rundir, rundir)
    lock = transfer.hold(args.rundir)
    try:
        store = open_run_store(args.rundir, readonly=False)
        try:
            remote = transfer.open_remote(opts, rundir)
            try:
                return _clean(transfer, remote, store, args)
            finally:
                remote.transport.close()
        finally:
            store.close()
    finally:
        lock.release()


def _clean(transfer, remote, store, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    where = f"{remote.transport.host}:{remote.rundir}"
    try:
        listing = transfer.list_remote(remote)
    except transfer.TransportError as e:
        if not e.message.startswith(f"{remote.rundir} is not on"):
            raise
        print(f"{where}: not there (already removed?); nothing to remove")
        return 0
    print(f"{where}: {len(listing.files) + listing.unusable} file(s), "
          f"{transfer.size(listing.bytes)}")
    busy = transfer.running_on_cluster(remote, store) if not args.force else []
    if busy:
        shown = ", ".join(busy[:10]) + (f" and {len(busy) - 10} more" if len(busy) > 10 else "")
        raise transfer.Refused(f"{len(busy)} job(s) of the run are queued or running on the "
                               f"cluster: {shown}; nothing removed",
                               hint="jobauto cancel them or wait; --force removes anyway")
    if args.dry_run:
        print("--dry-run: nothing removed")
        return 0
    transfer.remove(remote, store, time.time())
    print(f"removed {where}")
    return 0
