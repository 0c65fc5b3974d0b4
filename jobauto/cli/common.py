"""Words and checks that more than one command uses: the target of the views, the -o check,
--unsafe-fs."""

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
