"""Words and checks that more than one command uses: the target of the views, the -o check,
--unsafe-fs, the caps (jobmon and jobauto plan)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from jobauto.core.errors import ConfigError

TARGET = "a jobmon run directory (LDIR/DATE) or a job table (.db made by jobauto import)"


def add_unsafe_fs(p: argparse.ArgumentParser) -> None:
    """--unsafe-fs, for the commands that open a job table (docs/tables.md, "Where a table may live")."""
    p.add_argument("--unsafe-fs", action="store_true",
                   help="use the table although its directory is on a file system whose locks do "
                        "not reach other hosts (NFS nolock, Lustre localflock, sshfs, ...): safe "
                        "only while every worker runs on one host")


def check_output(out: Path, flag: str = "-o") -> None:
    """Refuse an output path that cannot be written, before anything is read or drawn."""
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise ConfigError(f"{out} is a directory: name a file", flag=flag)
    if not parent.is_dir():
        raise ConfigError(f"no such directory: {parent} (for {out})", flag=flag)
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ConfigError(f"cannot write {out}: permission denied", flag=flag)


def add_caps(p: argparse.ArgumentParser) -> None:
    """The caps (docs/etiquette.md), shared with `jobauto plan`."""
    p.add_argument("--max-scheduler-commands-per-minute", dest="max_scheduler_commands_per_minute",
                   metavar="N", help="most scheduler commands (qsub, qstat, qacct, qdel ...) in "
                   "any minute, half for polls and half for submissions; more waits, nothing is "
                   "dropped (default 60; at least 2)")
    p.add_argument("--max-logins-per-hour", dest="max_logins_per_hour", metavar="N",
                   help="most SSH logins (connections, reconnections, each rsync) in any hour; "
                   "more waits (default 30)")
