"""Moving files with rsync over an ssh command: what the paramiko transport (ssh.py) and the
OpenSSH master transport (openssh.py) share. A transport using it provides `host`, `run` and
`ssh_argv()`, the ssh command rsync runs (same config and user, never a prompt or a new key).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from jobauto.core.errors import TransportError
from jobauto.core.model import CommandResult
from jobauto.core.spent import Spent


def _stat(out: str, label: str) -> int:
    """A figure of rsync --stats (LC_ALL=C: "Label: 1,234 bytes"); 0 when it is not there."""
    for line in out.splitlines():
        if line.startswith(label + ":"):
            digits = line.split(":", 1)[1].split()[0].replace(",", "")
            return int(digits) if digits.isdigit() else 0
    return 0


class RsyncFiles:
    """push, pull, push_files and pull_files through `rsync -e SSH_ARGV`. Each rsync's logins
    (rsync_logins(): its own ssh, unless it rides a master) are counted before it starts, and
    the bytes it moved after (rsync --stats), in `usage` (core/spent.py)."""

    host: str
    usage: Spent

    def rsync_logins(self) -> int:
        """The logins one rsync makes (its ssh's authentications)."""
        return 1

    def ssh_argv(self) -> list[str]:
        raise NotImplementedError

    def run(self, argv: list[str], *, cwd: str | None = None, stdin: bytes | None = None,
            timeout: float | None = None) -> CommandResult:
        raise NotImplementedError

    def _rsync(self, args: list[str], names: list[str] | None = None, *, pull: bool = False) -> str:
        """Run rsync (its logins counted before it is made); NAMES go on its stdin for
        --files-from. Counts the bytes it moved; returns what it printed (with --stats)."""
        self.usage.login(self.rsync_logins())
        argv = ["rsync", "-a", "--protect-args", "--stats", "-e", shlex.join(self.ssh_argv()), *args]
        feed = None if names is None else "".join(n + "\0" for n in names).encode(
            "utf-8", "surrogateescape")
        try:
            p = subprocess.run(argv, capture_output=True, input=feed,
                               stdin=subprocess.DEVNULL if feed is None else None,
                               env={**os.environ, "LC_ALL": "C"})
        except FileNotFoundError:
            raise TransportError("rsync is not installed on this machine (apt-get install rsync)",
                                 transient=False) from None
        if p.returncode != 0:
            err = p.stderr.decode("utf-8", "replace")
            raise TransportError(f"rsync to {self.host} failed (exit {p.returncode}): "
                                 f"{err.strip()[-500:]}", transient=p.returncode in (10, 12, 30, 35, 255))
        out = p.stdout.decode("utf-8", "replace")
        moved = _stat(out, "Total transferred file size")
        if pull:
            self.usage.bytes_pulled += moved
        else:
            self.usage.bytes_pushed += moved
        return out

    def push(self, local: Path, remote: str, *, exclude: list[str] | None = None) -> None:
        self.run(["mkdir", "-p", "--", remote])
        ex = [f"--exclude={e}" for e in exclude or []]
        self._rsync([*ex, f"{local}/", f"{self.host}:{remote}/"])

    def push_files(self, local: Path, remote: str, names: list[str]) -> None:
        if names:
            self._rsync(["--files-from=-", "--from0", f"{local}/", f"{self.host}:{remote}/"], names)

    def pull_files(self, remote: str, local: Path, names: list[str]) -> tuple[int, int]:
        if not names:
            return 0, 0
        local.mkdir(parents=True, exist_ok=True)
        out = self._rsync(["--files-from=-", "--from0", f"{self.host}:{remote}/", f"{local}/"],
                          names, pull=True)
        return _stat(out, "Number of regular files transferred"), _stat(
            out, "Total transferred file size")

    def pull(self, remote: str, local: Path, *, include: list[str] | None = None,
             exclude: list[str] | None = None) -> None:
        local.mkdir(parents=True, exist_ok=True)
        rules = [f"--exclude={e}" for e in exclude or []]
        if include:
            rules += ["--include=*/", *[f"--include={g}" for g in include], "--exclude=*",
                      "--prune-empty-dirs"]
        self._rsync([*rules, f"{self.host}:{remote}/", f"{local}/"], pull=True)
