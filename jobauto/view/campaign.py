"""One view of a campaign, for both faces: a jobmon run directory or a job table.

`gather(path)` reads the store read-only (safe while jobmon or workers run) into a `Campaign`:
every job with its state, derived state, dependencies, where it runs and its times, plus the
numbers every screen shows (counts, throughput, time left). `jobauto status`, `graph`, `report`,
`progress_viewer` and jobmon's count line all take their numbers from here.
"""

from __future__ import annotations

import json
import os
import posixpath
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from jobauto.core.config import shown_settings
from jobauto.core.deps import FINISHED, classify, job_of_marker
from jobauto.core.errors import StateError
from jobauto.core.layout import lock_path, state_db
from jobauto.core.lock import holder as lock_holder
from jobauto.core.spent import Spent
from jobauto.core.states import AHEAD, queued_ahead
from jobauto.store import open_run_store

T = TypeVar("T")
RATE_WINDOW_S = 900.0   # throughput over the finished jobs of the last 15 minutes



@dataclass(slots=True)
class JobView:
    name: str                     # run: Si/qsub.0; table: the job id
    state: str                    # done running error pending
    derived: str = ""             # ready waiting blocked, for pending jobs; queued-ahead, for
                                  # a running job queued after a job not done (jobmon --ahead)
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
    counts: dict[str, int]        # COUNT_KEYS, plus "pending" = ready + waiting + blocked;
                                  # "cancelled", "queued-ahead" (not running) when there are any
    blocked_by: list[str] = field(default_factory=list)  # the errors that block others
    driver: str = ""              # run: whether jobmon runs; table: workers alive and slots
    slots: int = 0                # table: slots of live workers; run: 0 (unknown)
    rate_per_h: float | None = None   # jobs finished per hour over RATE_WINDOW_S
    left_s: float | None = None       # time left at that rate
    work_left_h: float | None = None  # hours of work left
    work_basis: str = ""              # how work_left_h was estimated
    unlisted_done: int = 0            # done jobs counted but not in `jobs` (gather(summary=True))
    settings: dict[str, object] = field(default_factory=dict)  # run: its recorded settings
    spent: Spent | None = None        # run: what it spent on the cluster (core/spent.py)

    @property
    def total(self) -> int:
        return len(self.jobs) + self.unlisted_done

    def running(self) -> list[JobView]:
        """Running jobs, the queued-ahead ones apart (`ahead`)."""
        out = [j for j in self.jobs if j.state == "running" and j.derived != AHEAD]
        out.sort(key=lambda j: j.started_at or j.queued_at or 0.0)
        return out

    def ahead(self) -> list[JobView]:
        """Jobs waiting in the queue on the scheduler's dependency (jobmon --ahead)."""
        out = [j for j in self.jobs if j.derived == AHEAD]
        out.sort(key=lambda j: j.queued_at or 0.0)
        return out

    def waits_on(self, j: JobView) -> list[str]:
        """The jobs a queued-ahead job still waits for (its dependencies not done)."""
        state = {v.name: v.state for v in self.jobs}
        return [d for d in j.deps if state.get(d, "done") != "done"]

    def failures(self) -> list[JobView]:
        out = [j for j in self.jobs if j.state == "error"]
        out.sort(key=lambda j: j.ended_at or 0.0, reverse=True)
        return out


@dataclass
class DoneSummary:
    """What a summary keeps of the done jobs it does not list (gather(summary=True))."""
    names: set[str]               # to resolve dependencies on them
    ends: list[float]             # their end times
    durations: list[float]        # their run times, where known


def gather(path: Path, *, now: float | None = None, summary: bool = False) -> Campaign:
    """Read a run directory (LDIR/DATE) or a job table file. summary=True leaves the done jobs
    out of `jobs` (their number, end times and durations still count everywhere): what `status`
    shows, at a third of the cost on a big campaign."""
    now = time.time() if now is None else now
    if path.is_dir():
        if not state_db(path).exists():
            raise StateError("not a jobmon run directory (no .jobauto/state.db), not a campaign "
                             "directory (no init/, no runs) and not a job table: pass LDIR/DATE, "
                             "LDIR or a .db made by jobauto import", file=str(path))
        return _gather_run(path, now, summary)
    if not path.exists():
        raise StateError("no such run directory or job table", file=str(path))
    return _gather_table(path, now, summary)


def _classify(c: Campaign, producers: list[tuple[int, ...]], files_unmet: list[bool]) -> None:
    """Derived states, counts and the errors that block others (deps.classify)."""
    jobs = c.jobs
    states = [j.state for j in jobs]
    derived, roots = classify(states, producers, files_unmet)
    for j, d in zip(jobs, derived, strict=True):
        if d:
            j.derived = d
    n = {d: derived.count(d) for d in ("ready", "waiting", "blocked")}
    c.counts = {"done": states.count("done") + c.unlisted_done, "running": states.count("running"),
                **n, "error": states.count("error"), "pending": sum(n.values())}
    cancelled = sum(1 for j in jobs if j.state == "error" and j.verdict == "cancelled")
    if cancelled:   # shown apart from the errors, as jobmon's count line does
        c.counts["error"] -= cancelled
        c.counts["cancelled"] = cancelled
    c.blocked_by = sorted(jobs[p].name for p in roots)
    # a running job that needs a job not done was queued with the scheduler's dependency
    # (jobmon --ahead, docs/decisions.md "Edges to the scheduler"): queued-ahead, not running
    ahead = 0
    for j, prods in zip(jobs, producers, strict=True):
        if queued_ahead(j.state, any(states[p] != "done" for p in prods)):
            j.derived = AHEAD
            ahead += 1
    if ahead:
        c.counts["running"] -= ahead
        c.counts[AHEAD] = ahead


def _finish(c: Campaign, done: DoneSummary | None = None) -> Campaign:
    """Throughput and time left: the same rules for both faces."""
    since = c.now - RATE_WINDOW_S
    recent: list[float] = [e for e in done.ends if e >= since] if done else []
    remaining: list[JobView] = []
    durations: list[float] = list(done.durations) if done else []
    for j in c.jobs:   # one pass: at 100,000 jobs each pass counts
        state = j.state
        if state == "done" or state == "error":
            if (e := j.ended_at) is not None and e >= since:
                recent.append(e)
            if state == "done" and (t := j.duration()) is not None:
                durations.append(t)
        elif state == "running" or j.derived == "ready" or j.derived == "waiting":
            remaining.append(j)
    if recent:
        c.rate_per_h = len(recent) / max(c.now - min(recent), 60.0) * 3600
    if remaining and c.rate_per_h:
        c.left_s = len(remaining) / c.rate_per_h * 3600
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
def _producer(path: str) -> str | None:
    """The job whose finished marker `path` is (deps.job_of_marker, quick for the usual path)."""
    head, sep, base = path.rpartition("/")
    if not base.startswith(FINISHED) or len(base) == len(FINISHED):
        return None
    if "//" in path or path.startswith("/"):
        hit = job_of_marker(path)
        return hit[0] if hit is not None and hit[1] == FINISHED else None
    return f"{head}{sep}qsub.{base[len(FINISHED):]}"


def _gather_run(run_dir: Path, now: float, summary: bool = False) -> Campaign:
    rows, (files, recorded, spent), done = _read(
        open_run_store(run_dir, readonly=True), summary,
        lambda s: (s.load_files(), s.get_meta("settings"), Spent.from_meta(s.get_meta)), run=True)
    done_names = done.names if done else set()
    index = {r[0]: i for i, r in enumerate(rows)}
    # one JSON document for all dependency lists: one parse instead of one per job
    try:
        all_deps = json.loads("[" + ",".join(str(r[2]) for r in rows) + "]")
    except ValueError:
        raise StateError("the run's state is damaged (unreadable dependency lists); restore it "
                         "from a backup, or start a new run", file=str(state_db(run_dir))) from None
    views = []
    producers: list[tuple[int, ...]] = []
    files_unmet: list[bool] = []
    for (name, state, _, sched_id, submitted, running_at, finished_at, failed_at, estimate_h,
         attempts, verdict, exit_code, reason, evidence), paths in zip(rows, all_deps, strict=True):
        prods: list[int] = []
        unmet = False
        for path in (dict.fromkeys(paths) if len(paths) > 1 else paths):
            p = _producer(path)
            i = index.get(p) if p is not None else None
            if i is not None:
                prods.append(i)
            elif p is not None and p in done_names:
                continue   # needs a done job, not listed: met
            elif path not in files:
                unmet = True
        producers.append(tuple(prods))
        files_unmet.append(unmet)
        group, _, step = name.rpartition("/")
        if "//" in name or name.startswith("/"):   # never in a run, but split as posixpath does
            group, step = posixpath.split(name)
        ended = finished_at if state == "done" else (
            failed_at or finished_at if state == "error" else None)
        views.append(JobView(name, state, "", [rows[i][0] for i in prods], group, step,
                             sched_id or "", submitted, running_at, ended, estimate_h, attempts,
                             verdict, exit_code, reason, evidence))
    holder = lock_holder(lock_path(run_dir))
    c = Campaign("run", str(run_dir), now, views, {},
                 driver=f"jobmon running ({holder})" if holder else "jobmon not running",
                 unlisted_done=len(done_names), settings=recorded_settings(recorded), spent=spent)
    _classify(c, producers, files_unmet)
    return _finish(c, done)


def recorded_settings(text: str | None) -> dict[str, object]:
    """The run's recorded settings (store meta `settings`, written by run/settings.py) as shown
    (notification targets cut short), {} when none or unreadable."""
    try:
        values = json.loads(text) if text else {}
    except ValueError:
        return {}
    return shown_settings(values) if isinstance(values, dict) else {}


def _read(store: Any, summary: bool, more: Callable[[Any], T], *, run: bool
          ) -> tuple[list[tuple[Any, ...]], T, DoneSummary | None]:
    """One read of either store (they share view_rows/done_rows): the rows, what `more` reads,
    and with `summary` the done jobs as a summary instead of rows; the store is closed after."""
    try:
        with store.reported():   # a damaged file: one line naming it, not sqlite3's traceback
            rows = store.view_rows(done=not summary)
            extra = more(store)
            done = _done_summary(store.done_rows(), run=run) if summary else None
    finally:
        store.close()
    return rows, extra, done


def _done_summary(rows: list[tuple[Any, ...]], *, run: bool) -> DoneSummary:
    """rows: (name, end, start) for a run, (id, end, elapsed) for a table."""
    ends = [r[1] for r in rows if r[1] is not None]
    if run:
        durations = [max(r[1] - r[2], 0.0) for r in rows if r[1] is not None and r[2] is not None]
    else:
        durations = [r[2] for r in rows if r[2] is not None]
    return DoneSummary({r[0] for r in rows}, ends, durations)


# -- tables ------------------------------------------------------------------------------------
VERDICT = {"done": "done", "error": "failed"}


def _gather_table(db: Path, now: float, summary: bool = False) -> Campaign:
    from jobauto.store import TableStore
    rows, workers, done = _read(TableStore(db, readonly=True), summary, lambda s: s.workers(),
                               run=False)
    done_names = done.names if done else set()
    where = {w.id: f"{w.id} {w.host}:{w.pid}" + (f" {w.label}" if w.label else "") for w in workers}
    views = []
    for (ident, deps, state, worker, attempts, started_at, finished_at, elapsed_s, exit_code,
         error, estimate_h) in rows:
        ended = state == "done" or state == "error"
        views.append(JobView(
            ident, state, "", deps.split() if deps else [], "", "",
            where.get(worker, "?") if worker is not None and state == "running" else "",
            None, started_at, finished_at if ended else None, estimate_h, attempts,
            VERDICT.get(state, ""), exit_code, error.splitlines()[-1] if error else "", error,
            elapsed_s if ended else None))
    index = {j.name: i for i, j in enumerate(views)}
    producers: list[tuple[int, ...]] = []
    files_unmet: list[bool] = []
    for j in views:
        if j.state != "pending" or not j.deps:   # only pending jobs' needs are ever looked at
            producers.append(())
            files_unmet.append(False)
            continue
        found = [index.get(d) for d in dict.fromkeys(j.deps) if d not in done_names]
        producers.append(tuple(i for i in found if i is not None))
        files_unmet.append(None in found)       # an unknown id waits, as in deps.Graph
    alive = [w for w in workers if w.state == "alive"]
    c = Campaign("table", str(db), now, views, {}, slots=sum(w.parallel for w in alive),
                 driver=f"{len(alive)} worker(s) alive, {sum(w.parallel for w in alive)} slot(s)",
                 unlisted_done=len(done_names))
    _classify(c, producers, files_unmet)
    return _finish(c, done)


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
