"""Writing and reading local files safely: the one writer for the files jobauto writes, and the
one way in for what the cluster or a job put below a run directory.

Every write is an atomic replace through a temporary file in the same directory, removed on any
failure (a full disk stays a clear message, not a full disk for ever). What comes from the cluster
is written only under the names the scan asks for, never into the run's state directory and never
through a symbolic link below the run directory: each directory is opened from the run directory
down with O_NOFOLLOW, so a link swapped in between a check and the write cannot redirect it.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import posixpath
import secrets
import stat
from pathlib import Path

from jobauto.core.deps import DEPENDENCY, SCRIPT, scan_kind
from jobauto.core.errors import PathError
from jobauto.core.layout import STATE_DIR

TMP_TAG = ".jobauto-tmp."   # in the name of every temporary file: .NAME.jobauto-tmp.RANDOM
NAME_MAX_BYTES = 4096       # PATH_MAX on Linux: a longer name cannot be opened anyway
PART_MAX_BYTES = 255        # NAME_MAX of every common file system
# the scan's last tar member (jobauto/run/mirror.py): what the cluster cut short or left out
SCAN_NOTES = ".jobauto/scan-notes"
MTIME_MAX = 2.0 ** 34       # the year 2514: a later (or negative, or not finite) mtime is none
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def check_name(rel: str) -> str:
    """Return a relative name from the cluster normalised; raise PathError saying why it may not
    be used below a run directory."""
    if not rel:
        raise PathError("an empty name")
    if "\0" in rel or "\n" in rel or "\r" in rel:
        raise PathError("the name holds a NUL or a line break")
    try:
        size = len(rel.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        raise PathError("the name is not valid text") from None
    if size > NAME_MAX_BYTES:
        raise PathError(f"the name is {size} bytes long (the limit is {NAME_MAX_BYTES})")
    if rel.startswith("/"):
        raise PathError("an absolute name: it leaves the run directory")
    norm = posixpath.normpath(rel)
    parts = norm.split("/")
    if ".." in parts:
        raise PathError("it leaves the run directory")
    if norm == ".":
        raise PathError("it names the run directory itself")
    if STATE_DIR in parts:
        raise PathError(f"it is inside jobauto's own state directory {STATE_DIR}/")
    if any(len(p.encode("utf-8", "surrogateescape")) > PART_MAX_BYTES for p in parts):
        raise PathError(f"a part of the name is over {PART_MAX_BYTES} bytes")
    return norm


def shown(name: str) -> str:
    """A name from the cluster fit for a one-line message: quoted, escaped, at most 120 chars."""
    return repr(name if len(name) <= 120 else name[:120] + "...")


def reason(e: PathError | OSError) -> str:
    """Why a path could not be used, in a few words (`Is a directory`, `it is a FIFO, ...`)."""
    return e.message if isinstance(e, PathError) else e.strerror or str(e)


def write_from_cluster(run_dir: Path, rel: str, data: bytes, *, mtime: float = 0.0) -> bool:
    """Write a file the scan brought back: markers replace the local copy; a dependency file or a
    job script is written only when new (what the user changes under DATE/ is the truth). Return
    whether it was written; raise PathError for a name the scan does not ask for."""
    kind = scan_kind(rel)
    if kind is None:
        raise PathError("not a marker, dependency file or job script")
    return write_below(run_dir, rel, data, mtime=mtime, only_new=kind in (DEPENDENCY, SCRIPT))


def write_below(root: Path, rel: str, data: bytes, *, mtime: float = 0.0,
                only_new: bool = False) -> bool:
    """Write root/rel atomically, making its directories, never through a symbolic link below
    root; with only_new leave an existing entry alone. Return whether it was written. An mtime
    of 0 leaves the file's time at now."""
    parts = check_name(rel).split("/")
    dfd = _open_dirs(root, parts[:-1], create=True)
    try:
        if only_new:
            with contextlib.suppress(FileNotFoundError):
                os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
                return False
        _replace(dfd, parts[-1], data, mtime=mtime, sync=False)
        return True
    finally:
        os.close(dfd)


def read_head(root: Path, rel: str, limit: int) -> bytes:
    """Read at most `limit` bytes of the regular file root/rel, never through a symbolic link
    below root and never waiting on a FIFO. FileNotFoundError: nothing is there; PathError or
    another OSError: something is there that cannot be read."""
    parts = check_name(rel).split("/")
    dfd = _open_dirs(root, parts[:-1], create=False)
    try:
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=dfd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.EMLINK):
                raise PathError("it is a symbolic link") from None
            raise
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise PathError(f"it is {_kind(mode)}, not a file")
            chunks: list[bytes] = []
            left = limit
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 16))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        os.close(dfd)


def write_atomic(path: Path, text: str) -> None:
    """Replace a file so that readers see the old or the new content, never a mix; on any failure
    the old file stays and no temporary file is left."""
    dfd = os.open(path.parent, _DIR_FLAGS)
    try:
        _replace(dfd, path.name, text.encode("utf-8"), sync=True)
    finally:
        os.close(dfd)


def _open_dirs(root: Path, parts: list[str], create: bool) -> int:
    """Open root/parts[0]/.../parts[-1] one directory at a time, refusing a symbolic link at any
    step (root itself may be reached through one: the user chose it)."""
    dfd = os.open(root, _DIR_FLAGS)
    try:
        for i, part in enumerate(parts):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=dfd)
            try:
                nfd = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dfd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
                    raise
                where = "/".join(parts[:i + 1])
                mode = os.stat(part, dir_fd=dfd, follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    raise PathError(f"{where}/ is a symbolic link: jobauto writes and reads "
                                    "nothing through it") from None
                raise NotADirectoryError(errno.ENOTDIR, f"{where} is {_kind(mode)}, not a "
                                         "directory") from None
            os.close(dfd)
            dfd = nfd
        return dfd
    except BaseException:
        os.close(dfd)
        raise


def _replace(dfd: int, name: str, data: bytes, *, mtime: float = 0.0, sync: bool) -> None:
    """Write data to a new temporary file beside `name` in directory dfd, then rename it over
    `name`; the temporary file never outlives a failure."""
    tmp = f".{name[:32]}{TMP_TAG}{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                 dir_fd=dfd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if sync:
                os.fsync(fd)
            if math.isfinite(mtime) and 0 < mtime < MTIME_MAX:
                os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
        raise


def _kind(mode: int) -> str:
    """What a non-file is, in words."""
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return what
    return "not a regular file"
