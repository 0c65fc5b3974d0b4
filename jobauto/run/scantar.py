"""The scan's tar stream (run/mirror.py sends it) read as untrusted input: only the markers,
dependency files and scripts the scan asks for, each up to its limit, never a traceback
(docs/failure-modes.md). The limits are also what mirror.py tells the cluster to send."""

from __future__ import annotations

import io
import math
import posixpath
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO

from jobauto.core.deps import DEPENDENCY, FAILED, FINISHED, SCRIPT, scan_kind
from jobauto.core.errors import PathError
from jobauto.core.files import MTIME_MAX, SCAN_NOTES, check_name, shown

# How much of each file the scan brings back is read, in bytes; the cluster sends no more. A
# marker says how a job ended and its head is all a verdict needs; a dependency file of 4 MiB
# lists some 100 000 paths; a script may carry its input inline. A larger marker is kept cut
# short, a larger dependency file or script is not taken; either way the cycle says so
# (docs/failure-modes.md).
MARKER_MAX = 64 << 10
FILE_MAX = 4 << 20
LIMITS = {FINISHED: MARKER_MAX, FAILED: MARKER_MAX, DEPENDENCY: FILE_MAX, SCRIPT: FILE_MAX}
# the scan's last member SCAN_NOTES: what it cut short or left out, one "H|S<tab>size<tab>name"
# line each
NOTES_MAX = 1 << 20

MAX_WARNINGS = 50       # per scan: a hostile stream of a million entries is counted, not listed
# tarfile's own errors for a stream that is not (or no longer) a tar: cut short, garbage, or a
# header it cannot decode
TAR_ERRORS = (tarfile.TarError, EOFError, ValueError, OverflowError, UnicodeError)



@dataclass
class Scan:
    """What a scan's tar stream brought: files by normalised name (mtime, content; an mtime of 0
    is unknown) and a warning for each entry not taken."""

    files: dict[str, tuple[float, bytes]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    dropped: int = 0

    def drop(self, name: str, why: str) -> None:
        self.dropped += 1
        self.warn(f"the cluster sent {shown(name)}: not taken ({why})")

    def warn(self, text: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)


def parse_tar(stream: bytes | BinaryIO) -> Scan:
    """Take from the scan's tar stream what the scan asks for (markers, dependency files, the
    script beside a dependency file), each read up to its limit; drop everything else with a
    warning. Never raises on what the stream holds."""
    scan = Scan()
    if isinstance(stream, bytes):
        if not stream:
            return scan
        stream = io.BytesIO(stream)
    entries = 0
    try:
        # streaming mode: members are read in order and what is not read is skipped, never held
        with tarfile.open(fileobj=_EndsOnce(stream), mode="r|") as tar:
            for member in tar:
                entries += 1
                _take(tar, member, scan)
    except TAR_ERRORS as e:
        scan.warn(f"the scan's tar stream is unreadable after {entries} entries ({e}); "
                  "the next scan brings those files again")
    for path in [p for p in scan.files if scan_kind(p) == SCRIPT]:
        d, base = posixpath.split(path)
        if posixpath.join(d, DEPENDENCY + base[len(SCRIPT):]) not in scan.files:
            del scan.files[path]
            scan.drop(path, "a job script without its dependency file")
    if scan.dropped > MAX_WARNINGS:
        scan.warnings.append(f"... {scan.dropped} entries of the scan not taken in all")
    return scan


class _EndsOnce(io.RawIOBase):
    """A stream that raises when read again and again past its end. tarfile's streaming mode
    skips a member block by block: a header claiming 10**20 bytes would have it read nothing
    for ever."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self.raw = raw
        self.empty = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.raw.read(len(buf))
        if not data and len(buf):
            self.empty += 1
            if self.empty > 2:
                raise EOFError("the stream ends inside a member")
        buf[:len(data)] = data
        return len(data)


def _take(tar: tarfile.TarFile, m: tarfile.TarInfo, scan: Scan) -> None:
    """Keep one member if it is a regular file the scan asks for, within its limit."""
    if m.isreg() and posixpath.normpath(m.name) == SCAN_NOTES:
        _notes(tar, m, scan)
        return
    try:
        path = check_name(m.name)
    except PathError as e:
        scan.drop(m.name, e.message)
        return
    if not m.isreg():
        what = ("a symbolic link" if m.issym() else "a hard link" if m.islnk() else
                "a directory" if m.isdir() else "a device or FIFO" if m.isdev() else "not a file")
        scan.drop(m.name, what)
        return
    kind = scan_kind(path)
    if kind is None:
        scan.drop(m.name, "not a marker, dependency file or job script")
        return
    limit = LIMITS[kind]
    if m.size > limit and kind in (DEPENDENCY, SCRIPT):
        scan.drop(m.name, f"{m.size} bytes, over the limit of {limit}")
        return
    f = tar.extractfile(m)
    if f is None:
        scan.drop(m.name, "no content")
        return
    data = f.read(limit)
    if m.size > limit:
        scan.warn(f"the cluster sent {shown(path)} of {m.size} bytes: only its first {limit} "
                  "bytes are kept")
    try:
        mtime = float(m.mtime)
    except (TypeError, ValueError, OverflowError):
        mtime = 0.0
    scan.files[path] = (mtime if math.isfinite(mtime) and 0 < mtime < MTIME_MAX else 0.0, data)


def _notes(tar: tarfile.TarFile, m: tarfile.TarInfo, scan: Scan) -> None:
    """Warn about what the cluster cut short or left out, as parse_tar does for what it sent."""
    f = tar.extractfile(m)
    text = f.read(NOTES_MAX).decode("utf-8", "surrogateescape") if f is not None else ""
    for line in text.splitlines():
        what, size, name = (line.split("\t", 2) + ["", ""])[:3]
        try:
            name = check_name(name)
        except PathError:
            pass
        kind = scan_kind(name)
        if not size.isascii() or not size.isdigit() or len(size) > 20 or kind is None:
            scan.warn(f"the scan noted {shown(line)}: not understood")
        elif what == "H":
            scan.warn(f"the cluster sent {shown(name)} of {size} bytes: only its first "
                      f"{LIMITS[kind]} bytes are kept")
        elif what == "S":
            scan.drop(name, f"{size} bytes, over the limit of {LIMITS[kind]}")
        else:
            scan.warn(f"the scan noted {shown(line)}: not understood")
