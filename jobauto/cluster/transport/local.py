"""The local transport: the "cluster" is this machine (a login node, or the demo)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

from jobauto.cluster.transport.base import glob_regex, run_many_via
from jobauto.core.errors import TransportError
from jobauto.core.model import Command, CommandResult
from jobauto.core.spent import Spent


def _walk(top: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        rel = os.path.relpath(dirpath, top)
        for f in sorted(filenames):
            out.append(f if rel == "." else os.path.join(rel, f).replace(os.sep, "/"))
    return out


def _through_link(dst: Path, rel: str) -> str | None:
    """The first part of `rel` below `dst` that is a symbolic link (or not a directory where one
    is needed), or None. Copying never writes through it: not out of the destination."""
    parts = rel.split("/")
    for i in range(len(parts)):
        part = "/".join(parts[:i + 1])
        try:
            mode = (dst / part).lstat().st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode):
            return part
        if i < len(parts) - 1 and not stat.S_ISDIR(mode):
            return part
    return None


def copy_tree(src: Path, dst: Path, include: list[str] | None, exclude: list[str] | None,
              only: list[str] | None = None) -> tuple[int, int]:
    """Copy files whose size or mtime differ, like rsync -a, with rsync-style globs (ONLY: just
    these names, as rsync --files-from). Nothing is written through a symbolic link below `dst`
    (a link there, or at the name, is left as it is and the entry skipped, with one warning line
    for all). Returns the number of files copied and their bytes."""
    inc = [glob_regex(g) for g in include] if include else None
    exc = [glob_regex(g) for g in exclude or []]
    skipped: list[str] = []
    copied = size = 0
    for rel in _walk(src) if only is None else only:
        if any(r.match(rel) or r.match(rel + "/") for r in exc) or any(
                r.match(part + "/") for r in exc for part in _parents(rel)):
            continue
        if inc is not None and not any(r.match(rel) for r in inc):
            continue
        s, d = src / rel, dst / rel
        link = _through_link(dst, rel)
        if link is not None:
            skipped.append(f"{rel!r} ({link} is a symbolic link or not a directory)")
            continue
        try:
            st = s.lstat()
        except FileNotFoundError:   # listed, gone since (rsync --files-from says so and goes on)
            continue
        try:
            dt = d.lstat()
            # the mode too: a copy killed between its content and its stat (copy2) has the size
            # and, within the same second, the mtime, but not yet the executable bit
            if (dt.st_size == st.st_size and int(dt.st_mtime) == int(st.st_mtime)
                    and dt.st_mode == st.st_mode):
                continue
        except FileNotFoundError:
            pass
        d.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(s, d, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):   # part-copied: it would keep the disk full
                with suppress(OSError):
                    d.unlink()
            raise
        copied += 1
        size += st.st_size
    if skipped:
        print(f"jobauto: warning: not copied into {dst}: {len(skipped)} entries through a symbolic "
              f"link there: {', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}",
              file=sys.stderr)
    return copied, size


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[:i + 1]) for i in range(len(parts))]


class LocalTransport:
    """Run commands with subprocess on this machine; copy files with Python."""

    host = "localhost"

    def __init__(self) -> None:
        self.usage = Spent()   # no logins here; bytes copied count as moved

    def run(self, argv: list[str], *, cwd: str | None = None, stdin: bytes | None = None,
            timeout: float | None = None) -> CommandResult:
        try:
            p = subprocess.run(argv, cwd=cwd or os.path.expanduser("~"), input=stdin or b"",
                               capture_output=True, timeout=timeout)
        except FileNotFoundError as e:
            return CommandResult(tuple(argv), 127, b"", f"{argv[0]}: {e.strerror}")
        except subprocess.TimeoutExpired as e:
            err = TransportError(f"{argv[0]} did not finish within {timeout} s")
            err.stdout = e.stdout or b""  # type: ignore[attr-defined]
            raise err from None
        return CommandResult(tuple(argv), p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"))

    def run_many(self, commands: list[Command], *, timeout: float | None = None) -> list[CommandResult]:
        return run_many_via(self.run, commands, timeout)

    def push(self, local: Path, remote: str, *, exclude: list[str] | None = None) -> None:
        dst = Path(os.path.expanduser(remote))
        dst.mkdir(parents=True, exist_ok=True)
        self.usage.bytes_pushed += copy_tree(local, dst, None, exclude)[1]

    def push_files(self, local: Path, remote: str, names: list[str]) -> None:
        if names:
            self.usage.bytes_pushed += copy_tree(local, Path(os.path.expanduser(remote)), None,
                                                 None, only=names)[1]

    def pull_files(self, remote: str, local: Path, names: list[str]) -> tuple[int, int]:
        src = Path(os.path.expanduser(remote))
        if not src.is_dir():
            raise TransportError(f"no such directory on {self.host}: {remote}", transient=False)
        n, size = copy_tree(src, local, None, None, only=names) if names else (0, 0)
        self.usage.bytes_pulled += size
        return n, size

    def pull(self, remote: str, local: Path, *, include: list[str] | None = None,
             exclude: list[str] | None = None) -> None:
        src = Path(os.path.expanduser(remote))
        if not src.is_dir():
            raise TransportError(f"no such directory on {self.host}: {remote}", transient=False)
        self.usage.bytes_pulled += copy_tree(src, local, include, exclude)[1]

    def close(self) -> None:
        pass
