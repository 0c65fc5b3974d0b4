"""What `jobauto status` (and `progress_viewer`) shows for a job table: gathered read-only, then
rendered. Gathering is separate from rendering so that every view uses the same numbers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .deps import Graph
from .model import JobState
from .store import TableStore

RATE_WINDOW_S = 900.0   # throughput over the last 15 minutes of finished jobs


@dataclass
class Running:
    id: str
    worker: str
    elapsed_s: float | None
    estimate_h: float | None


@dataclass
class Failure:
    id: str
    exit_code: int | None
    message: str
    at: float | None


@dataclass
class TableStatus:
    path: str
    total: int
    counts: dict[str, int]           # done running ready waiting blocked error pending
    running: list[Running] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    blocked_by: list[str] = field(default_factory=list)
    workers_alive: int = 0
    slots: int = 0
    rate_per_h: float | None = None  # jobs finished per hour, recently
    left_s: float | None = None      # time left at that rate
    work_left_h: float | None = None  # estimated hours of work left (estimates, else observed)
    work_basis: str = ""


def gather(db: Path, *, now: float | None = None) -> TableStatus:
    now = time.time() if now is None else now
    store = TableStore(db, readonly=True)
    try:
        jobs = store.jobs()
        workers = {w.id: w for w in store.workers()}
        finished = store.events(["done", "error"], limit=5000)
    finally:
        store.close()
    g = Graph.of_table(jobs)
    s = g.summary()
    counts = {"done": s["done"], "running": s["running"], "pending": s["ready"] + s["waiting"] + s["blocked"],
              "ready": s["ready"], "waiting": s["waiting"], "blocked": s["blocked"], "error": s["error"]}
    st = TableStatus(str(db), len(jobs), counts)
    alive = [w for w in workers.values() if w.state == "alive"]
    st.workers_alive = len(alive)
    st.slots = sum(w.parallel for w in alive)
    for j in jobs:
        if j.state == JobState.RUNNING:
            w = workers.get(j.worker or -1)
            who = f"{w.id} {w.host}:{w.pid}" + (f" {w.label}" if w.label else "") if w else "?"
            st.running.append(Running(j.id, who, None if j.started_at is None else now - j.started_at,
                                      j.estimate_h))
    errors = [j for j in jobs if j.state == JobState.ERROR]
    errors.sort(key=lambda j: j.finished_at or 0, reverse=True)
    st.failures = [Failure(j.id, j.exit_code, j.error, j.finished_at) for j in errors]
    st.blocked_by = sorted({r for b in g.blocked for r in g.root_errors(b)})

    # throughput: finished jobs in the last window (times from the workers' clocks)
    recent = [at for at, *_ in finished if at >= now - RATE_WINDOW_S]
    if recent:
        span = max(now - min(recent), 60.0)
        st.rate_per_h = len(recent) / span * 3600
    remaining = [j for j in jobs if j.state in (JobState.PENDING, JobState.RUNNING)
                 and j.id not in g.blocked]
    if remaining and st.rate_per_h:
        st.left_s = len(remaining) / st.rate_per_h * 3600
    done_times = [j.elapsed_s for j in jobs if j.state == JobState.DONE and j.elapsed_s is not None]
    mean_h = (sum(done_times) / len(done_times) / 3600) if done_times else None
    if remaining and any(j.estimate_h is not None for j in remaining):
        st.work_left_h = sum(j.estimate_h if j.estimate_h is not None else (mean_h or 0.0)
                             for j in remaining)
        st.work_basis = "estimates"
    elif remaining and mean_h is not None:
        st.work_left_h = mean_h * len(remaining)
        st.work_basis = f"mean of {len(done_times)} finished jobs"
    return st


def duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = max(s, 0.0)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    if s < 86400:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    return f"{int(s // 86400)}d{int(s % 86400 // 3600):02d}h"


def render_text(st: TableStatus, *, failures: int = 5, running: int = 10) -> str:
    c = st.counts
    pct = 100.0 * c["done"] / st.total if st.total else 100.0
    lines = [f"{st.path}: {st.total} jobs, {c['done']} done ({pct:.0f}%)",
             f"Done: {c['done']}",
             f"Running: {c['running']}",
             f"Pending: {c['pending']}",
             f"  - Ready: {c['ready']}      ← can run now",
             f"  - Waiting: {c['waiting']}    ← waiting for dependencies",
             f"  - Blocked: {c['blocked']}    ← blocked by an error"
             + (f" ({', '.join(st.blocked_by[:5])}{' ...' if len(st.blocked_by) > 5 else ''})"
                if st.blocked_by else ""),
             f"Error: {c['error']}",
             f"Workers: {st.workers_alive} alive, {st.slots} slot(s)"]
    if st.rate_per_h is not None:
        lines.append(f"Throughput: {st.rate_per_h:.1f} jobs/h (last {RATE_WINDOW_S / 60:.0f} min)"
                     + (f"; time left at this rate: {duration(st.left_s)}" if st.left_s else ""))
    if st.work_left_h is not None:
        per = f", {duration(st.work_left_h * 3600 / st.slots)} over {st.slots} slot(s)" if st.slots else ""
        lines.append(f"Work left: {st.work_left_h:.2f} h by {st.work_basis}{per}")
    if st.running:
        lines.append("Running jobs:")
        for r in st.running[:running]:
            est = f" (estimate {duration(r.estimate_h * 3600)})" if r.estimate_h is not None else ""
            lines.append(f"  {r.id}  worker {r.worker}  {duration(r.elapsed_s)}{est}")
        if len(st.running) > running:
            lines.append(f"  ... and {len(st.running) - running} more")
    if st.failures:
        lines.append("Last failures:")
        for f in st.failures[:failures]:
            lines.append(f"  {f.id}: {f.message or f'exit {f.exit_code}'}")
        if len(st.failures) > failures:
            lines.append(f"  ... and {len(st.failures) - failures} more "
                         f"(jobauto export {st.path} error.csv --status error)")
    return "\n".join(lines)
