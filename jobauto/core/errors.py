"""The error family: each error carries what the user needs to fix the problem."""

from __future__ import annotations

import errno


class JobautoError(Exception):
    """Bad usage or bad input: reported as one line, exit code 2, nothing changed. HINT, when
    given, is what to do about it: the commands print it on a line of its own."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 flag: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.flag = flag
        self.hint = hint
        super().__init__(self.describe())

    def describe(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        elif self.flag is not None:
            where = f"{self.flag}: "
        return where + self.message


class ConfigError(JobautoError):
    """A flag, config file or placeholder is wrong."""


class TreeError(JobautoError):
    """The job tree (scripts, dependency files) is wrong."""


class TableError(JobautoError):
    """A CSV job table is wrong (row and column in the message)."""


class PathError(JobautoError):
    """A path below a run that jobauto will not write or read: it leaves the run, goes through a
    symbolic link, into the run's state directory, or is not a name the scan asks for."""


class StateError(JobautoError):
    """The run directory or store is unusable (locked, wrong version, missing)."""


class TransportError(JobautoError):
    """The cluster cannot be reached (connect, authentication, dropped connection)."""

    def __init__(self, message: str, *, transient: bool = True, **kw: object) -> None:
        self.transient = transient
        super().__init__(message, **kw)  # type: ignore[arg-type]


class HostKeyError(TransportError):
    """The host key is unknown or changed: never accepted silently."""

    def __init__(self, message: str, **kw: object) -> None:
        super().__init__(message, transient=False, **kw)


class SchedulerError(JobautoError):
    """A scheduler command failed; carries argv, exit code and stderr."""

    def __init__(self, message: str, *, argv: list[str] | None = None, rc: int | None = None,
                 stderr: str = "", transient: bool = False, **kw: object) -> None:
        self.transient = transient
        self.argv = argv or []
        self.rc = rc
        self.stderr = stderr
        super().__init__(message, **kw)  # type: ignore[arg-type]


# The local disk refused a write: errno -> (what happened, what the user does about it).
UNWRITABLE = {
    errno.ENOSPC: ("no space left on device", "free space"),
    errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota"),
    errno.EROFS: ("read-only file system", "make it writable"),
    errno.EACCES: ("permission denied", "make it writable"),
    errno.EPERM: ("operation not permitted (immutable?)", "make it writable"),
}


def refused_write(e: BaseException) -> tuple[str, int] | None:
    """(path, errno) when E says the local disk refused a write (full, over quota, read-only,
    not permitted), else None. shutil.copytree gathers its errors as (src, dst, text) lines."""
    if not isinstance(e, OSError):
        return None
    if e.errno in UNWRITABLE:
        return str(e.filename2 or e.filename or ""), e.errno
    items = e.args[0] if e.args and isinstance(e.args[0], list) else []
    for item in items:
        if isinstance(item, tuple) and len(item) == 3:
            for code in UNWRITABLE:
                if f"[Errno {code}]" in str(item[2]):
                    return str(item[1]), code
    return None


def stopped_by_disk(path: str, code: int, date: str) -> StateError:
    """The one message for a write the disk refused: the file, what happened, what to do."""
    what, todo = UNWRITABLE[code]
    return StateError(f"{what}; {todo}, then resume with --datedir={date}", file=path or None)
