"""Helpers shared by the adapters: first-line ids and transient-error classification."""

from __future__ import annotations

import re

from ..errors import SchedulerError
from ..model import CommandResult

# Refusals that go away by themselves: limits, daemons down, timeouts, overload.
TRANSIENT = re.compile(
    r"unable to contact qmaster|commlib error|failed receiving gdi request|"
    r"socket timed out|timed out|timeout|temporarily|try again|resource temporarily|"
    r"max_u_jobs|max_jobs|maxjobs|job limit|limit .*(reached|exceeded)|would exceed|"
    r"QOSMaxSubmitJob|AssocMaxSubmitJob|MaxSubmit|slurm_load|connection refused|"
    r"unable to contact slurm controller|Slurm temporarily unavailable|"
    r"cannot connect to server|pbs_iff|Maximum number of jobs|too many|"
    r"qmaster is not alive|not available|busy",
    re.IGNORECASE,
)


def is_transient(text: str, rc: int) -> bool:
    return rc in (124, 126, 255) or rc < 0 or bool(TRANSIENT.search(text))


def fail(result: CommandResult, what: str) -> SchedulerError:
    """A SchedulerError for a failed command, classified transient or permanent."""
    msg = " ".join((result.stderr.strip() or result.text.strip() or f"exit code {result.rc}").split())
    return SchedulerError(f"{what} failed: {msg[-500:]}", argv=list(result.argv), rc=result.rc,
                          stderr=result.stderr, transient=is_transient(msg, result.rc))


def first_id(result: CommandResult, what: str, pattern: str = r"^\s*(\d+)") -> str:
    """Parse a job id from the first matching line of a submit command's stdout."""
    if result.rc != 0:
        raise fail(result, what)
    for line in result.text.splitlines():
        m = re.search(pattern, line)
        if m:
            return m.group(1)
    # accepted but unreadable: the outcome is unknown; reconcile, never guess
    raise SchedulerError(f"{what} printed no job id: {result.text.strip()[:300]!r}",
                         argv=list(result.argv), rc=result.rc, stderr=result.stderr, transient=True)
