"""The adapter protocol and scheduler detection."""

from __future__ import annotations

from typing import Protocol

from jobauto.core.errors import ConfigError
from jobauto.core.model import CommandResult, Ending, QueueSnapshot

NAMES = ("sge", "pbs", "slurm", "local")


class SchedulerAdapter(Protocol):
    """Build argv lists for a scheduler and parse what it prints. Never executes anything."""

    name: str
    can_find_by_name: bool
    # jobmon --arrays: whether ready jobs may go as one array whose tasks the queue listing,
    # the accounting and the cancel command each know by their own id (task_id): sge, slurm and
    # pbs (also on Slurm's Torque wrappers, schedulers/pbs.py); not local (docs/decisions.md)
    task_arrays: bool

    def submit_argv(self, script: str, job_name: str, extra: list[str],
                    wrapper: str | None = None) -> list[str]:
        """The command that submits `script` from its own directory under `job_name`; with
        `wrapper` (a POSIX sh file beside it, run/wrapper.py), that file is what runs, and the
        output file keeps the script's name."""
        ...

    def parse_submit(self, result: CommandResult) -> str:
        """Return the scheduler's job id, or raise SchedulerError (with .transient)."""
        ...

    def queue_argv(self, user: str | None) -> list[str]:
        """One command that lists all of the user's jobs."""
        ...

    def parse_queue(self, result: CommandResult) -> QueueSnapshot:
        """Entries keyed by job id; held/error flags set. ok=False when the query failed."""
        ...

    def acct_argv(self, ids: list[str]) -> list[str] | None:
        """One command that prints the final records of these ended jobs; None: no accounting."""
        ...

    def parse_acct(self, result: CommandResult) -> dict[str, Ending]:
        """The ids that have a final record; ids unknown or not yet recorded are absent."""
        ...

    def cancel_argv(self, ids: list[str]) -> list[str]:
        """One command that removes these jobs from the queue (printing any error reason first)."""
        ...

    def depend_args(self, ids: list[str]) -> list[str] | None:
        """The submit options that keep a job queued until these jobs have ended (jobmon
        --ahead); None where the scheduler cannot (then nothing is submitted ahead)."""
        ...

    # -- arrays (jobauto workers) ----------------------------------------------------------------
    def array_args(self, n: int) -> list[str]:
        """The submit options that make one submission an array of tasks 1..n."""
        ...

    def walltime_args(self, seconds: int) -> list[str]:
        """The submit options that request this wall-clock limit ([] where nothing enforces one)."""
        ...

    def array_submit_argv(self, script: str, job_name: str, n: int, extra: list[str]) -> list[str]:
        """Submit `script`, in the current directory, as one array of n tasks named `job_name`;
        each task's stdout and stderr go to files in the current directory. `extra` comes last."""
        ...

    def parse_array_submit(self, result: CommandResult) -> str:
        """The array's id (what qstat/squeue/qdel take), or raise SchedulerError."""
        ...

    def task_id(self, array_id: str, task: int) -> str:
        """The id of one task of an array, as the queue listing, accounting and cancel take it
        (4711.3, 4711_3, 4711[3]): parse_queue lists each task of a jobmon array under this id
        (and the array under array_id), parse_acct returns its record under it, cancel_argv
        deletes just that task. Only digits and the scheduler's separators; arrays.array_id
        reads the array back from it."""
        ...


DETECT = (
    "if command -v qstat >/dev/null 2>&1 && qstat -help 2>&1 | head -n 1 | "
    "grep -Eq '^(SGE|GE|OGS|UGE|AGE|Altair Grid Engine|Univa Grid Engine|Son of Grid Engine)'; "
    "then echo sge; elif command -v sbatch >/dev/null 2>&1; then echo slurm; "
    "elif command -v qsub >/dev/null 2>&1; then echo pbs; else echo none; fi"
)


def detect_argv() -> list[str]:
    return ["sh", "-c", DETECT]


def parse_detect(result: CommandResult) -> str | None:
    word = result.text.strip().splitlines()[-1] if result.text.strip() else "none"
    return None if word == "none" else word


def adapter_for(name: str, qsub_args: list[str] | None = None) -> SchedulerAdapter:
    """Return the adapter for a scheduler name."""
    if name == "sge":
        from jobauto.cluster.schedulers.sge import SgeAdapter
        return SgeAdapter()
    if name == "local":
        from jobauto.cluster.schedulers.local import LocalAdapter
        return LocalAdapter()
    if name == "fake":
        from jobauto.cluster.schedulers.fake import FakeAdapter
        return FakeAdapter()
    if name == "slurm":
        from jobauto.cluster.schedulers.slurm import SlurmAdapter
        return SlurmAdapter()
    if name == "pbs":
        from jobauto.cluster.schedulers.pbs import PbsAdapter
        return PbsAdapter()
    raise ConfigError(f"unknown scheduler {name!r} (choose from auto, {', '.join(NAMES)})",
                      flag="--scheduler")
