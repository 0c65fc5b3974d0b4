"""One view of a campaign, for both faces: a jobmon run directory or a job table.

`gather(path)` reads the store read-only (safe while jobmon or workers run) into a `Campaign`:
every job with its state, derived state, dependencies, where it runs and its times, plus the
numbers every screen shows (counts, throughput, time left). `jobauto status`, `graph`, `report`,
`progress_viewer` and jobmon's count line all take their numbers from here.
"""

from __future__ import annotations

import os
import posixpath
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .deps import Graph
from .errors import StateError
from .model import JobState
from .tree import STATE_DIR

RATE_WINDOW_S = 900.0   # throughput over the finished jobs of the last 15 minutes
COUNT_KEYS = ("done", "running", "ready", "waiting", "blocked", "error")


def count_line(counts: dict[str, int]) -> str:
    """`done 3 running 2 ready 0 waiting 5 blocked 0 error 0`: jobmon's line and `status RUN`."""
    return " ".join(f"{k} {v}" for k, v in counts.items() if k in COUNT_KEYS or v)


@dataclass
class JobView:
    name: str                     # run: Si/qsub.0; table: the job id
    state: str                    # done running error pending
    derived: str = ""             # ready waiting blocked, for pending jobs
    deps: list[str] = field(default_factory=list)   # names of the jobs it needs
    group: str = ""               # run: its directory; table: ""
    step: str = ""                # run: qsub.N; table: DAG depth ("depth 0" = no dependencies)
    where: str = ""               # run: scheduler id; table: worker (id host:pid label)
    queued_at: float | None = None    # run: submitted; table: None (workers take jobs directly)
    started_at: float | None = None   # began running (run: first seen running in the queue)
    ended_at: float | None = None
    estimate_h: float | None = None
    attempts: int = 0
    verdict: str = ""             # run: how it ended (done failed walltime ...); table: done/failed
    exit_code: int | None = None
    reason: str = ""              # one line: why it is in its state
    evidence: str = ""            # what the verdict was read from (marker, qacct/sacct, stderr tail)
    elapsed_s: float | None = None    # measured run time, when the face measures it (tables)

    def duration(self) -> float | None:
        """Run time of a finished job: measured, else started→ended, else submitted→ended."""
        if self.elapsed_s is not None:
            return self.elapsed_s
        start = self.started_at if self.started_at is not None else self.queued_at
        if start is None or self.ended_at is None:
            return None
        return max(self.ended_at - start, 0.0)


@dataclass
class Campaign:
    kind: str                     # "run" or "table"
    path: str
    now: float
    jobs: list[JobView]
    counts: dict[str, int]        # COUNT_KEYS, plus "pending" = ready + waiting + blocked
    blocked_by: list[str] = field(default_factory=list)  # the errors that block others
    driver: str = ""              # run: whether jobmon runs; table: workers alive and slots
    slots: int = 0                # table: slots of live workers; run: 0 (unknown)
    rate_per_h: float | None = None   # jobs finished per hour over RATE_WINDOW_S
    left_s: float | None = None       # time left at that rate
    work_left_h: float | None = None  # hours of work left
    work_basis: str = ""              # how work_left_h was estimated

    @property
    def total(self) -> int:
        return len(self.jobs)

    def running(self) -> list[JobView]:
        out = [j for j in self.jobs if j.state == "running"]
        out.sort(key=lambda j: j.started_at or j.queued_at or 0.0)
        return out

    def failures(self) -> list[JobView]:
        out = [j for j in self.jobs if j.state == "error"]
        out.sort(key=lambda j: j.ended_at or 0.0, reverse=True)
        return out


def gather(path: Path, *, now: float | None = None) -> Campaign:
    """Read a run directory (LDIR/DATE) or a job table file."""
    now = time.time() if now is None else now
    if path.is_dir():
        if not (path / STATE_DIR / "state.db").exists():
            raise StateError("not a jobmon run directory (no .jobauto/state.db) and not a job "
                             "table: pass LDIR/DATE or a .db made by jobauto import", file=str(path))
        return _gather_run(path, now)
    if not path.exists():
        raise StateError("no such run directory or job table", file=str(path))
    return _gather_table(path, now)


def _finish(c: Campaign, g: Graph) -> Campaign:
    """Counts, blocking errors, throughput and time left: the same rules for both faces."""
    s = g.summary()
    c.counts = {**s, "pending": s["ready"] + s["waiting"] + s["blocked"]}
    for j in c.jobs:
        if j.state == "pending":
            d = g.derived(j.name)
            j.derived = d.value if d else ""
    c.blocked_by = sorted({r for b in g.blocked for r in g.root_errors(b)})
    recent = [j.ended_at for j in c.jobs if j.state in ("done", "error") and j.ended_at is not None
              and j.ended_at >= c.now - RATE_WINDOW_S]
    if recent:
        c.rate_per_h = len(recent) / max(c.now - min(recent), 60.0) * 3600
    remaining = [j for j in c.jobs if j.state == "running" or j.derived in ("ready", "waiting")]
    if remaining and c.rate_per_h:
        c.left_s = len(remaining) / c.rate_per_h * 3600
    durations = [t for j in c.jobs if j.state == "done" and (t := j.duration()) is not None]
    mean_h = statistics.fmean(durations) / 3600 if durations else None
    if remaining and any(j.estimate_h is not None for j in remaining):
        c.work_left_h = sum(j.estimate_h if j.estimate_h is not None else (mean_h or 0.0)
                            for j in remaining)
        c.work_basis = "estimates" + (" and observed durations" if mean_h is not None and any(
            j.estimate_h is None for j in remaining) else "")
    elif remaining and mean_h is not None:
        c.work_left_h = mean_h * len(remaining)
        c.work_basis = f"mean duration of {len(durations)} finished job(s)"
    return c


# -- runs --------------------------------------------------------------------------------------
def monitor_holder(run_dir: Path) -> str | None:
    """Who holds the run's monitor lock ("pid 123 on host"), or None: read from /proc/locks, so
    looking never takes the lock (a jobmon starting at that moment is not turned away)."""
    lock = run_dir / STATE_DIR / "lock"
    try:
        st = lock.stat()
        locks = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in locks.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[4].isdigit():
            try:
                ino = int(parts[5].rsplit(":", 1)[1])
            except (IndexError, ValueError):
                continue
            if ino == st.st_ino:
                try:
                    return lock.read_text().strip() or f"pid {parts[4]}"
                except OSError:
                    return f"pid {parts[4]}"
    return None


def _gather_run(run_dir: Path, now: float) -> Campaign:
    from .explain import graph_of, open_run_store
    store = open_run_store(run_dir, readonly=True)
    try:
        jobs = {j.name: j for j in store.load_jobs()}
        g = graph_of(store, jobs)
    finally:
        store.close()
    views = []
    for job in sorted(jobs.values(), key=lambda j: j.id):
        node = g.nodes[job.name]
        deps = [p.name for d in node.deps if (p := g.producer(d)) is not None]
        group, step = posixpath.split(job.name)
        ended = job.finished_at if job.state == JobState.DONE else (
            job.failed_at or job.finished_at if job.state == JobState.ERROR else None)
        views.append(JobView(
            job.name, job.state.value, deps=deps, group=group, step=step,
            where=job.sched_id or "", queued_at=job.started_at, started_at=job.running_at,
            ended_at=ended, estimate_h=job.estimate_h, attempts=job.attempts,
            verdict=job.verdict, exit_code=job.exit_code, reason=job.reason,
            evidence=job.evidence))
    holder = monitor_holder(run_dir)
    c = Campaign("run", str(run_dir), now, views, {},
                 driver=f"jobmon running ({holder})" if holder else "jobmon not running")
    return _finish(c, g)


# -- tables ------------------------------------------------------------------------------------
def _gather_table(db: Path, now: float) -> Campaign:
    from .store import TableStore
    store = TableStore(db, readonly=True)
    try:
        jobs = store.jobs()
        workers = {w.id: w for w in store.workers()}
    finally:
        store.close()
    g = Graph.of_table(jobs)
    views = []
    for j in jobs:
        where = ""
        if j.worker is not None and j.state == JobState.RUNNING:
            w = workers.get(j.worker)
            where = (f"{w.id} {w.host}:{w.pid}" + (f" {w.label}" if w.label else "")) if w else "?"
        verdict = {JobState.DONE: "done", JobState.ERROR: "failed"}.get(j.state, "")
        views.append(JobView(
            j.id, j.state.value, deps=list(j.deps), where=where, started_at=j.started_at,
            ended_at=j.finished_at if j.state in (JobState.DONE, JobState.ERROR) else None,
            estimate_h=j.estimate_h, attempts=j.attempts, verdict=verdict, exit_code=j.exit_code,
            reason=j.error.splitlines()[-1] if j.error else "", evidence=j.error,
            elapsed_s=j.elapsed_s if j.state in (JobState.DONE, JobState.ERROR) else None))
    alive = [w for w in workers.values() if w.state == "alive"]
    c = Campaign("table", str(db), now, views, {}, slots=sum(w.parallel for w in alive),
                 driver=f"{len(alive)} worker(s) alive, {sum(w.parallel for w in alive)} slot(s)")
    return _finish(c, g)


def assign_depth_steps(jobs: Iterable[JobView]) -> None:
    """Tables have no steps: name each job's step by its depth in the DAG (longest path from a
    job without dependencies), so per-step statistics group comparable jobs."""
    jobs = list(jobs)
    by_name = {j.name: j for j in jobs}
    depth: dict[str, int] = {}
    entered: set[str] = set()   # a cycle (never in a valid table) ends the walk, not the program
    for j in jobs:
        stack = [(j.name, False)]
        while stack:
            name, expanded = stack.pop()
            if name in depth:
                continue
            deps = [d for d in by_name[name].deps if d in by_name]
            if expanded:
                depth[name] = 1 + max((depth.get(d, 0) for d in deps), default=-1)
                continue
            if name in entered:
                continue
            entered.add(name)
            stack.append((name, True))
            stack.extend((d, False) for d in deps if d not in depth)
    for j in jobs:
        j.step = f"depth {depth[j.name]}"


def user_tty(stream: object) -> bool:
    """Colour and redraws only for a terminal, and never with NO_COLOR set (no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")
