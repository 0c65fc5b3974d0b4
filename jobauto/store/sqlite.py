"""Connections and transactions, safe on a network filesystem (NFS, Lustre, GPFS).

- Rollback journal, never WAL: WAL needs shared memory that hosts of a cluster do not share.
- Every write is one short ``BEGIN IMMEDIATE`` transaction: the write lock is taken at the start,
  so two writers never deadlock upgrading a read lock.
- A locked database is waited for: SQLite's busy handler first, then our own retries with
  jittered exponential backoff (many workers released at once must not retry in lockstep), up to
  `LOCK_WAIT_S`; only then is it an error, naming the file and the filesystem it lives on.
- All of this rests on fcntl locks that every host sharing the file sees. A job table on a
  mount whose locks stay on the host that takes them (NFS `nolock`, Lustre `localflock`, sshfs,
  ...) is refused (`require_shared_locks`): found from the mount table, and by a lock probe
  where locks fail outright; SQLite's docs warn that such a file gets corrupted.
- A write the disk refuses (full, read-only) is an OSError naming the file, as any other local
  write is, so that jobmon stops with one message; a damaged file is a StateError naming it.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import random
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from jobauto.core.errors import StateError

BUSY_TIMEOUT_MS = 30_000
LOCK_WAIT_S = 600.0          # give up on a lock after this long (then: an error naming the file)
BACKOFF_MAX_S = 2.0

T = TypeVar("T")

# SQLite's primary result codes (the low byte of an extended code) that are not our bugs
SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = (
    8, 10, 11, 13, 14, 26)


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
    if code == SQLITE_IOERR or "disk I/O error" in text:
        # a COMMIT whose journal beside it cannot be removed (the directory was made read-only
        # or immutable meanwhile) says only "disk I/O error": ask the directory itself
        if not _can_write_in(path.parent):
            return OSError(errno.EACCES, os.strerror(errno.EACCES), str(path.parent))
        return OSError(errno.EIO, os.strerror(errno.EIO), str(path))
    if code == SQLITE_CORRUPT or "malformed" in text or "Could not decode" in text:
        return StateError(f"the file is damaged ({text}); restore it from a backup", file=str(path))
    if code == SQLITE_NOTADB or "not a database" in text:
        return StateError(f"not an SQLite database any more ({text}); restore it from a backup",
                          file=str(path))
    return e


def _can_write_in(d: Path) -> bool:
    """Whether a file can be made and removed in directory D now."""
    probe = d / f".jobauto-probe.{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
    except OSError:
        return False
    return True


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


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo: where, what, from where, and its options (the mount's,
    then the file system's)."""

    point: str
    fstype: str
    source: str
    options: tuple[str, ...]


def _unescape(field: str) -> str:
    # the kernel writes space, tab, newline and backslash in paths as \040, \011, \012, \134
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a mountinfo text (proc(5)): "ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] -
    FSTYPE SOURCE SUPEROPTS"; lines that do not have that shape are skipped."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        head, tail = left.split(), right.split()
        if not sep or len(head) < 6 or len(tail) < 2:
            continue
        opts = head[5].split(",") + (tail[2].split(",") if len(tail) > 2 else [])
        mounts.append(Mount(_unescape(head[4]), tail[0], _unescape(tail[1]),
                            tuple(dict.fromkeys(opts))))
    return mounts


def mount_of(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount an absolute, resolved path lives on: the longest mount point above it, the
    last one listed when several are stacked on one point."""
    best: Mount | None = None
    for m in mounts:
        if path == m.point or path.startswith(m.point.rstrip("/") + "/"):
            if best is None or len(m.point) >= len(best.point):
                best = m
    return best


# FUSE file systems whose protocol has no locks (SFTP, object stores): the kernel keeps an
# fcntl lock on the host that took it, and on the mount it was taken through.
LOCAL_LOCK_FUSE = {"sshfs", "rclone", "s3fs", "gcsfuse"}


def local_locks(m: Mount) -> str | None:
    """Why fcntl locks on this mount do not reach other hosts, or None when nothing says so."""
    opts = set(m.options)
    kind = m.fstype.split(".", 1)
    if kind[0] == "fuse" and len(kind) == 2 and kind[1] in LOCAL_LOCK_FUSE:
        return f"{kind[1]} passes no locks to the server, so each host, each mount even, sees only its own"
    if m.fstype in ("nfs", "nfs4"):
        # nfs(5): nolock, local_lock=all|posix keep POSIX (fcntl) locks on this client.
        # local_lock=flock is harmless here: SQLite locks with fcntl, which still reach the server.
        bad = sorted(opts & {"nolock", "local_lock=all", "local_lock=posix"})
        if bad:
            return f"mounted with {' and '.join(bad)}: locks are kept on this client"
    if m.fstype == "lustre":
        if "localflock" in opts:
            return "mounted with localflock: locks are kept on this client"
        if "noflock" in opts:
            return "mounted with noflock: locks are refused"
    if m.fstype in ("cifs", "smb3") and opts & {"nobrl", "nolock"}:
        return "mounted with nobrl: byte-range locks are not sent to the server"
    return None


def probe_locks(directory: Path) -> str | None:
    """Why an fcntl lock cannot be taken on a file in DIRECTORY (NFS without its lock daemon
    answers ENOLCK), or None when it can (or when nothing can be written there to try)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".jobauto-lockprobe.", dir=directory)
    except OSError:
        return None  # opening the table itself reports what is wrong with the directory
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):  # held by someone else: locks work
            return f"a lock cannot be taken there ({os.strerror(e.errno or 0)})"
    finally:
        os.close(fd)
        os.unlink(tmp)
    return None


def read_mountinfo() -> str:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""  # not Linux: only the probe can tell


@functools.lru_cache(maxsize=64)
def lock_problem(directory: str) -> tuple[str, str] | None:
    """Where (the mount, its type and options) and why SQLite's locks in DIRECTORY (resolved)
    do not keep hosts apart, or None. Asked once per directory and process."""
    m = mount_of(directory, parse_mountinfo(read_mountinfo()))
    where = f"{m.point} ({m.fstype}, options {','.join(m.options)})" if m else directory
    why = (local_locks(m) if m else None) or probe_locks(Path(directory))
    return (where, why) if why else None


def require_shared_locks(path: Path, *, unsafe_fs: bool = False) -> None:
    """Refuse a job table whose directory is on a file system whose locks do not reach other
    hosts (unless the user accepted the risk with --unsafe-fs)."""
    problem = None if unsafe_fs else lock_problem(os.path.realpath(path.parent))
    if problem:
        where, why = problem
        raise StateError(
            f"the job table is on {where}, where locks do not keep hosts apart ({why}); workers "
            "sharing the table can corrupt it. Put the table in another directory, or pass "
            "--unsafe-fs to accept the risk", file=str(path))


def filesystem(path: Path) -> str:
    """The filesystem type a path lives on, from the mount table ('unknown filesystem' elsewhere)."""
    target = os.path.realpath(path.parent if not path.is_dir() else path)
    m = mount_of(target, parse_mountinfo(read_mountinfo()))
    return f"{m.fstype} filesystem at {m.point}" if m else "unknown filesystem"
