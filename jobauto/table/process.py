"""A job's command as processes on this host: its argv, how it is started, the files it leaves,
and how anyone (its worker, or whoever recovers it) finds out whether it still runs or how it ended.

Each job runs as `sh -c WRAP sh COMMAND ARGS...` in a session of its own, its stderr in
TABLE.jobs/ROW.ATTEMPT.err, its exit code written to ROW.ATTEMPT.rc by the wrapper when the command
ends. Its processes inherit JOBAUTO_TABLE, JOBAUTO_WORKER and JOBAUTO_JOB_ID, by which
`job_processes` finds them; `host_key` says where a worker's pid means a process. The worker
loop that uses all this is worker.py.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from jobauto.core.errors import ConfigError
from jobauto.core.model import JobState, TableJob

# Each job runs as `sh -c WRAP sh COMMAND ARGS...`: the command and its arguments are "$@" (never
# re-split), and its exit code is written to a file before the wrapper exits. A job whose worker
# is killed keeps running; when it ends, the file says how, and whoever recovers the job records
# that instead of running it a second time.
WRAP = '"$@"; r=$?; echo "$r" > "$JOBAUTO_RC"; exit "$r"'
TAIL_BYTES = 4096
ERROR_CHARS = 600


def parse_command(words: list[str]) -> list[str]:
    """One argument is split like a shell would ("bash run.sh"); several are the argv as given."""
    if len(words) == 1:
        try:
            argv = shlex.split(words[0])
        except ValueError as e:
            raise ConfigError(f"cannot split the command {words[0]!r}: {e}", flag="COMMAND") from None
    else:
        argv = list(words)
    if not argv:
        raise ConfigError("the command is empty", flag="COMMAND")
    exe = argv[0]
    if ("/" in exe and not os.access(exe, os.X_OK)) or ("/" not in exe and not shutil.which(exe)):
        raise ConfigError(f"command {exe!r} not found or not executable", flag="COMMAND")
    return argv


def job_argv(command: list[str], columns: list[str], params: tuple[str, ...], named: bool) -> list[str]:
    if not named:
        return [*command, *params]
    out = list(command)
    for name, value in zip(columns, params, strict=True):
        out += [f"--{name}", value]
    return out


def start_command(argv: list[str], base: str, table: Path, worker: int,
                  job: TableJob) -> subprocess.Popen[bytes]:
    """Start a job's command under WRAP in a new session, its stderr to BASE.err, its exit code
    to come in BASE.rc, with the variables that tell its processes' table, worker and job."""
    env = dict(os.environ, JOBAUTO_JOB_ID=job.id, JOBAUTO_TABLE=str(table),
               JOBAUTO_WORKER=str(worker), JOBAUTO_ATTEMPT=str(job.attempts),
               JOBAUTO_RC=base + ".rc")
    with open(base + ".err", "wb") as errf:
        return subprocess.Popen(["/bin/sh", "-c", WRAP, "sh", *argv], stdin=subprocess.DEVNULL,
                                stderr=errf, start_new_session=True, env=env)


def host_key() -> str:
    """Where a pid names this process: host name, boot, and pid namespace."""
    parts = [socket.gethostname()]
    for path in ("/proc/sys/kernel/random/boot_id",):
        try:
            parts.append(Path(path).read_text().strip())
        except OSError:
            parts.append("?")
    try:
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        parts.append("?")
    return "|".join(parts)


def pid_gone(pid: int) -> bool:
    """True only when the process certainly does not exist (or is a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] == "Z"
    except (OSError, ValueError, IndexError):
        return False


def job_processes(table: Path) -> dict[int, set[str]]:
    """This host's processes started for jobs of `table`, as worker -> job ids, found by the
    JOBAUTO_TABLE / JOBAUTO_WORKER / JOBAUTO_JOB_ID variables every job's processes inherit."""
    want = f"JOBAUTO_TABLE={table}".encode()
    out: dict[int, set[str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if want not in env:
            continue
        vals = dict(e.split(b"=", 1) for e in env if e.startswith(b"JOBAUTO_") and b"=" in e)
        try:
            worker = int(vals.get(b"JOBAUTO_WORKER", b""))
        except ValueError:
            continue
        out.setdefault(worker, set()).add(vals.get(b"JOBAUTO_JOB_ID", b"").decode("utf-8", "replace"))
    return out


def read_outcome(base: str) -> tuple[JobState, int | None, float | None, str] | None:
    """How a job ended, from the exit-code file its wrapper wrote (None: it did not finish)."""
    try:
        text = Path(base + ".rc").read_text().strip()
        rc = int(text)
    except (OSError, ValueError):
        return None
    if rc == 0:
        return JobState.DONE, 0, None, ""
    return JobState.ERROR, rc, None, error_message(Path(base + ".err"), rc)


def error_message(err: Path, rc: int) -> str:
    """What a failed job's record says: how it ended and the last lines of its stderr."""
    return _message(_tail(err), rc)


def _tail(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            return f.read()
    except OSError:
        return b""


def done_with(base: str, failed: bool) -> list[str]:
    """The files of an attempt to remove once its outcome is recorded: a failed job's stderr stays."""
    return [base + ".rc"] if failed else [base + ".rc", base + ".err"]


def remove_files(paths: list[str]) -> None:
    """Remove the files (those already gone too) and empty the list."""
    for p in paths:
        with contextlib.suppress(OSError):
            os.unlink(p)
    paths.clear()


def _message(tail: bytes, rc: int) -> str:
    what = f"exit {rc}" if rc >= 0 else f"killed by {_signame(-rc)}"
    text = tail.decode("utf-8", "replace").strip()
    if not text:
        return what
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    msg = " | ".join(lines[-5:])
    if len(msg) > ERROR_CHARS:
        msg = "..." + msg[-ERROR_CHARS:]
    return f"{what}: {msg}"


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"
