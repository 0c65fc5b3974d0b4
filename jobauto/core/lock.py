"""The one lock module: one monitor per run, an flock that dies with its process (never stale),
a way to see who holds it without taking it, and the lock monitors creating runs take."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def exclusive(path: Path, wait: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Hold PATH, a lock file that exists only while held, exclusively: monitors creating runs
    in one LDIR go one at a time. WAIT is called once if another holds it. The file is removed
    on release; one opened before that removal is noticed (another inode) and opened again."""
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not told:
                    wait()
                    told = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)


def clear_stale(path: Path) -> None:
    """Remove PATH, an `exclusive` lock file, when no one holds it: what a process killed while
    holding it left behind."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)
    except OSError:
        pass
    finally:
        os.close(fd)


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
