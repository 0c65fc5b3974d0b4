"""The one lock module: one monitor per run, an flock that dies with its process (never stale),
and a way to see who holds it without taking it."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from jobauto.core.errors import StateError


class Lock:
    """One monitor per run: an flock that dies with its process, so it is never stale."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def _holder(self) -> str:
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateError(f"a monitor is already running on this run ({self._holder()}); "
                             "stop it first", file=str(self.path.parent.parent)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self.fd = fd

    def check(self) -> None:
        """Refuse early (before any change) when another monitor holds the run."""
        self.acquire()
        self.release()

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def holder(lock: Path) -> str | None:
    """Who holds `lock` ("pid 123 on host"), or None: read from /proc/locks, so looking never
    takes the lock (a monitor starting at that moment is not turned away)."""
    try:
        st = lock.stat()
        locks = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in locks.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[4].isdigit():
            try:
                ino = int(parts[5].rsplit(":", 1)[1])
            except (IndexError, ValueError):
                continue
            if ino == st.st_ino:
                try:
                    return lock.read_text().strip() or f"pid {parts[4]}"
                except OSError:
                    return f"pid {parts[4]}"
    return None
