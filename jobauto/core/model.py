"""The job model: states, commands and their results. Dataclasses only, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class JobState(str, enum.Enum):
    """Stored states; ready/waiting/blocked are derived for pending jobs."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"


class Derived(str, enum.Enum):
    """What a pending job is waiting for."""

    READY = "ready"
    WAITING = "waiting"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class Command:
    """One command for a transport: an argv list, run in `cwd` (None: the login directory)."""

    argv: tuple[str, ...]
    cwd: str | None = None

    @classmethod
    def of(cls, argv: list[str] | tuple[str, ...], cwd: str | None = None) -> Command:
        return cls(tuple(argv), cwd)


@dataclass
class CommandResult:
    """What a command did: exit code, stdout (bytes) and stderr (text)."""

    argv: tuple[str, ...]
    rc: int
    stdout: bytes = b""
    stderr: str = ""

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.rc == 0


@dataclass
class SubmitResult:
    """The outcome of one submission: a scheduler id, or an error message."""

    token: str
    sched_id: str | None
    error: str | None = None
    transient: bool = False
    unsent: bool = False   # not submitted: the predecessor it was to be queued after had no id


@dataclass
class QueueEntry:
    """One job as the scheduler lists it."""

    sched_id: str
    name: str
    state: str          # scheduler's own code, e.g. "r", "qw", "Eqw", "PENDING"
    held: bool = False  # held by a user or an administrator: will not start until released
    error: bool = False  # in an error state it will not leave by itself (Grid Engine Eqw)
    reason: str = ""    # the scheduler's reason, when it gives one
    running: bool = False  # running now (not waiting in the queue)
    # waiting on another job (jobmon --ahead): "waiting" until the scheduler's dependency is met,
    # "never" when the scheduler says it can no longer be met; "" when it says neither
    dependency: str = ""


class Verdict(str, enum.Enum):
    """How a job ended, decided from evidence: markers, then accounting, then absence."""

    DONE = "done"
    FAILED = "failed"              # non-zero exit code
    WALLTIME = "walltime"          # killed at its time limit
    OOM = "out-of-memory"
    NODE_FAILURE = "node-failure"  # the node or the job's setup on it failed
    CANCELLED = "cancelled"        # qdel / scancel
    VANISHED = "vanished"          # no marker and no accounting record within the grace period
    REJECTED = "rejected"          # the scheduler refused the script as invalid


# What each verdict means, for reasons, summaries and `jobauto explain`.
MEANING = {
    Verdict.DONE: "ended normally",
    Verdict.FAILED: "exited with a non-zero code",
    Verdict.WALLTIME: "killed at its walltime limit",
    Verdict.OOM: "killed for exceeding its memory limit",
    Verdict.NODE_FAILURE: "its node, or starting it on the node, failed",
    Verdict.CANCELLED: "cancelled (qdel/scancel)",
    Verdict.VANISHED: "left the queue without a marker or an accounting record",
    Verdict.REJECTED: "the scheduler would not run it",
}


@dataclass
class Ending:
    """The scheduler's accounting record of a job that has ended."""

    sched_id: str
    verdict: Verdict
    exit_code: int | None = None
    evidence: str = ""  # the record, condensed to one line: what the verdict was read from
    name: str = ""      # the job name in the record: ids get reused, names (tokens) do not


@dataclass
class QueueSnapshot:
    """What the scheduler said about our jobs in one query; ok=False means unknown."""

    ok: bool
    entries: dict[str, QueueEntry] = field(default_factory=dict)
    error: str = ""

    def by_name(self) -> dict[str, QueueEntry]:
        return {e.name: e for e in self.entries.values()}


@dataclass(slots=True)
class Job:
    """One job of a jobmon run, as stored."""

    id: int
    name: str
    state: JobState = JobState.PENDING
    deps: tuple[str, ...] = ()
    priority: int = 0
    estimate_h: float | None = None
    ready_seq: int | None = None       # position in quelist: the order jobs became ready
    sched_id: str | None = None        # the scheduler's id once the submission is confirmed
    token: str | None = None           # the submission's name, unique to the run
    batch: str | None = None           # the submission batch the token was sent in
    intent_at: float | None = None     # when the submission intent was recorded
    started_at: float | None = None    # submitted (quelist started@)
    finished_at: float | None = None
    failed_at: float | None = None
    running_at: float | None = None    # first seen running in the scheduler's queue
    spre_at: float | None = None       # a restart found the job already submitted
    missing_since: float | None = None  # first time the scheduler did not list it
    reason: str = ""
    attempts: int = 0                  # submissions made (each with its own token)
    verdict: str = ""                  # how the last attempt ended (Verdict value), "" if it has not
    exit_code: int | None = None       # its exit code, when known
    evidence: str = ""                 # what the verdict was read from: "marker ...", "qacct ...", ...
    retried: int = 0                   # automatic retries used (--retries)

    @property
    def unconfirmed(self) -> bool:
        """Submitted, but the scheduler's answer was never recorded."""
        return self.state == JobState.RUNNING and self.sched_id is None


def select_for_reset(jobs: dict[str, Job], names: list[str], states: list[str]) -> list[str]:
    """The jobs a reset applies to: the named ones (all jobs when none is named) whose state is
    in `states` (any state when none is given). Unknown names are kept, for the caller to report."""
    picked = names or list(jobs)
    if states:
        picked = [n for n in picked if n not in jobs or jobs[n].state.value in states]
    return picked


@dataclass(slots=True)
class TableJob:
    """One row of a job table, as stored."""

    row: int                           # position in the table (1-based): table order
    id: str                            # JOBSCHEDULER_JOB_ID, the first column's value, or the row
    params: tuple[str, ...]            # user parameter values, in column order
    priority: int = 0
    estimate_h: float | None = None
    deps: tuple[str, ...] = ()         # ids of the jobs it needs done
    state: JobState = JobState.PENDING
    worker: int | None = None          # the worker running it
    attempts: int = 0                  # times it was started
    started_at: float | None = None    # worker's clock
    finished_at: float | None = None   # worker's clock
    elapsed_s: float | None = None     # measured by the worker with its monotonic clock
    exit_code: int | None = None
    error: str = ""                    # tail of stderr, or why it stopped


@dataclass(slots=True)
class Worker:
    """One `jobauto run` process sharing a table."""

    id: int
    host: str
    pid: int
    host_key: str                      # host, boot and pid namespace: where `pid` means this process
    beat: int                          # heartbeat counter, advanced every `beat_s` seconds
    beat_s: float
    state: str                         # alive, stopped, lost
    parallel: int = 1
    started_at: float | None = None
    label: str = ""                    # e.g. the batch job and array task it runs in


@dataclass
class TableRow:
    """One job of a CSV, validated."""

    id: str
    params: tuple[str, ...]
    priority: int
    estimate_h: float | None
    deps: tuple[str, ...]
    line: int          # line of the file where the row starts
    number: int        # 1-based data row in the file


@dataclass
class TableFile:
    """A validated CSV: its header, the user columns in order, how ids were chosen, the rows."""

    path: str
    header: list[str]
    columns: list[str]
    id_mode: str                       # "column" (JOBSCHEDULER_JOB_ID), "first" (1st column), "row"
    rows: list[TableRow] = field(default_factory=list)
