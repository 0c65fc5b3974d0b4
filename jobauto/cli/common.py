"""Words and checks that more than one command uses: the target of the views, the -o check."""

from __future__ import annotations

import os
from pathlib import Path

from jobauto.core.errors import ConfigError

TARGET = "a jobmon run directory (LDIR/DATE) or a job table (.db made by jobauto import)"


def check_output(out: Path, flag: str = "-o") -> None:
    """Refuse an output path that cannot be written, before anything is read or drawn."""
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise ConfigError(f"{out} is a directory: name a file", flag=flag)
    if not parent.is_dir():
        raise ConfigError(f"no such directory: {parent} (for {out})", flag=flag)
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ConfigError(f"cannot write {out}: permission denied", flag=flag)
