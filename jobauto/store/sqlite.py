"""Connections and transactions, safe on a network filesystem (NFS, Lustre, GPFS).

- Rollback journal, never WAL: WAL needs shared memory that hosts of a cluster do not share.
- Every write is one short ``BEGIN IMMEDIATE`` transaction: the write lock is taken at the start,
  so two writers never deadlock upgrading a read lock.
- A locked database is waited for: SQLite's busy handler first, then our own retries with
  jittered exponential backoff (many workers released at once must not retry in lockstep), up to
  `LOCK_WAIT_S`; only then is it an error, naming the file and the filesystem it lives on.
- A write the disk refuses (full, read-only) is an OSError naming the file, as any other local
  write is, so that jobmon stops with one message; a damaged file is a StateError naming it.
"""

from __future__ import annotations

import errno
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from jobauto.core.errors import StateError

BUSY_TIMEOUT_MS = 30_000
LOCK_WAIT_S = 600.0          # give up on a lock after this long (then: an error naming the file)
BACKOFF_MAX_S = 2.0

T = TypeVar("T")

# SQLite's primary result codes (the low byte of an extended code) that are not our bugs
SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 8, 11, 13, 14, 26


def connect(path: Path, *, readonly: bool = False, busy_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Open a database in autocommit mode (transactions are explicit) with a rollback journal."""
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                             timeout=busy_ms / 1000, check_same_thread=False)
    else:
        db = sqlite3.connect(str(path), isolation_level=None, timeout=busy_ms / 1000,
                             check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout={busy_ms}")
    if not readonly:
        retrying(lambda: db.execute("PRAGMA journal_mode=DELETE"), path)
        db.execute("PRAGMA synchronous=FULL")
    return db


def is_busy(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


def retrying(fn: Callable[[], T], path: Path, *, wait_s: float = LOCK_WAIT_S) -> T:
    """Call fn, retrying while the database is locked, with jittered exponential backoff."""
    deadline = time.monotonic() + wait_s
    delay = 0.01
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if not is_busy(e) or time.monotonic() > deadline:
                if is_busy(e):
                    raise StateError(f"still locked after {wait_s:.0f} s ({e}); is a process "
                                     f"holding it stuck? ({filesystem(path)})", file=str(path)) from None
                raise
        time.sleep(random.uniform(0, delay))
        delay = min(delay * 2, BACKOFF_MAX_S)


def translated(e: sqlite3.Error, path: Path) -> Exception:
    """What an SQLite error says about the file: the disk refused a write (an OSError with its
    errno, like any local write), the file is damaged (a StateError naming it), or E itself."""
    code = (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF
    text = str(e)
    if code == SQLITE_FULL or "disk is full" in text:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    if code == SQLITE_READONLY or "readonly database" in text:
        return OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
    if code == SQLITE_CANTOPEN:   # in a transaction: the journal beside it could not be made
        return OSError(errno.EACCES, os.strerror(errno.EACCES), str(path.parent))
    if code == SQLITE_CORRUPT or "malformed" in text or "Could not decode" in text:
        return StateError(f"the file is damaged ({text}); restore it from a backup", file=str(path))
    if code == SQLITE_NOTADB or "not a database" in text:
        return StateError(f"not an SQLite database any more ({text}); restore it from a backup",
                          file=str(path))
    return e


@contextmanager
def reported(path: Path) -> Iterator[None]:
    """Let SQLite errors out as translated() says: a full disk or a damaged file, never a
    traceback of sqlite3's own."""
    try:
        yield
    except sqlite3.Error as e:
        t = translated(e, path)
        if t is e:
            raise
        raise t from None


@contextmanager
def transaction(db: sqlite3.Connection, path: Path, *, wait_s: float = LOCK_WAIT_S
                ) -> Iterator[sqlite3.Connection]:
    """One short write transaction: BEGIN IMMEDIATE (retried while locked), then COMMIT."""
    with reported(path):
        retrying(lambda: db.execute("BEGIN IMMEDIATE"), path, wait_s=wait_s)
        try:
            yield db
        except BaseException:
            _rollback(db)
            raise
        else:
            try:
                retrying(lambda: db.execute("COMMIT"), path, wait_s=wait_s)
            except BaseException:
                _rollback(db)
                raise


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back what is left of a failed transaction (SQLite may have done it already: a full
    disk ends the transaction), keeping the error that failed it."""
    if db.in_transaction:
        with suppress(sqlite3.Error):
            db.execute("ROLLBACK")


def filesystem(path: Path) -> str:
    """The filesystem type a path lives on, from /proc/mounts ('unknown filesystem' elsewhere)."""
    try:
        target = os.path.realpath(path.parent if not path.is_dir() else path)
        best, kind = "", "unknown filesystem"
        with open("/proc/mounts", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, kind = mnt, f"{parts[2]} filesystem at {mnt}"
        return kind
    except OSError:
        return "unknown filesystem"
