"""The error family: each error carries what the user needs to fix the problem."""

from __future__ import annotations


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
