"""Requests: changes to a run asked for from outside (`jobauto reset`, `jobauto rescan`), and
automatic retries.

The command only adds a request to the store; the monitor owns the run's state and the cluster
connection, so it applies the request at its next cycle (removing the job's markers on the
cluster first). No second writer, no race. A new kind of request is one function
`(monitor, request id, args, now) -> result line` and one entry in APPLY.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from jobauto.core.deps import FAILED, FINISHED, marker_path
from jobauto.core.errors import ConfigError, StateError
from jobauto.core.layout import lock_path
from jobauto.core.lock import Lock
from jobauto.core.model import Job, JobState, select_for_reset
from jobauto.run import cancelling, settings
from jobauto.run.explain import find_job
from jobauto.store import open_run_store

if TYPE_CHECKING:
    from jobauto.run.cycle import Monitor

RESETTABLE = ("error", "done", "pending")


# -- the command's side: record the request -------------------------------------------------
def request_reset(run_dir: Path, names: list[str], status: list[str]) -> tuple[list[str], str]:
    """Record a reset for the monitor; return the jobs it will reset now and a note."""
    for s in status:
        if s not in RESETTABLE:
            raise ConfigError(f"cannot reset jobs in state {s!r} (choose from "
                              f"{', '.join(RESETTABLE)}; a running job must end or be cancelled "
                              "first)", flag="--status")
    store = open_run_store(run_dir, readonly=False)
    try:
        jobs = {j.name: j for j in store.load_jobs()}
        chosen = [find_job(jobs, n, run_dir) for n in names]
        for job in chosen:
            if job.state == JobState.RUNNING:
                raise ConfigError(f"{job.name} is running (scheduler id {job.sched_id or '?'}); "
                                  "cancel it (jobauto cancel) or let it end, then reset it",
                                  file=str(run_dir))
        if not names and not status:
            status = ["error"]
        picked = select_for_reset(jobs, [j.name for j in chosen], status)
        store.add_request(time.time(), "reset", {"jobs": [j.name for j in chosen], "status": status})
    finally:
        store.close()
    lock = Lock(lock_path(run_dir))
    try:
        lock.check()
    except StateError:
        return picked, "the running monitor applies it at its next cycle"
    return picked, ("no monitor is running on this run: the reset is applied when it resumes "
                    f"(jobmon ... --datedir={run_dir.name})")


def request_rescan(run_dir: Path) -> str:
    """Record a full sweep for the monitor (jobauto rescan); return a note on when it happens."""
    store = open_run_store(run_dir, readonly=False)
    try:
        store.add_request(time.time(), "rescan", {})
    finally:
        store.close()
    return _when(run_dir, "the running monitor looks at the whole run within two cycles",
                 "the look")


def _when(run_dir: Path, running: str, what: str) -> str:
    """When a recorded request takes effect: RUNNING when a monitor holds the run, else at its
    resume."""
    try:
        Lock(lock_path(run_dir)).check()
    except StateError:
        return running
    return (f"no monitor is running on this run: {what} is made when it resumes "
            f"(jobmon ... --datedir={run_dir.name})")


# -- the monitor's side: apply the open requests ---------------------------------------------
def apply_requests(mon: Monitor, now: float, notes: list[str]) -> None:
    """Apply the open requests in the order they came; each is closed with its result."""
    for rid, kind, args in mon.store.open_requests():
        apply = APPLY.get(kind)
        if apply is None:
            mon.closed_requests.append((rid, f"unknown request {kind!r}: ignored"))
            continue
        result = apply(mon, rid, args, now)
        if result is None:   # not settled yet (a cancel waiting for a submission's answer)
            continue
        notes.append(result)
        mon.closed_requests.append((rid, result))


def _apply_reset(mon: Monitor, rid: int, args: dict[str, object], now: float) -> str:
    """Reset the chosen jobs that are not running; say what was left alone."""
    names = select_for_reset(mon.jobs, [str(n) for n in args.get("jobs") or []],  # type: ignore[attr-defined]
                             [str(s) for s in args.get("status") or []])  # type: ignore[attr-defined]
    unknown = [n for n in names if n not in mon.jobs]
    busy = [n for n in names if n in mon.jobs and mon.jobs[n].state == JobState.RUNNING]
    jobs = [mon.jobs[n] for n in names if n in mon.jobs and mon.jobs[n].state != JobState.RUNNING]
    reset(mon, jobs, now, "reset", f"jobauto reset (request {rid})")
    result = f"reset {len(jobs)} job(s)"
    if busy:
        result += f"; left {len(busy)} running job(s) alone: {', '.join(busy[:5])}"
    if unknown:
        result += f"; unknown: {', '.join(unknown[:5])}"
    return result


def _apply_rescan(mon: Monitor, rid: int, args: dict[str, object], now: float) -> str:
    """Make the next cycle a full sweep (on the cluster and under DATE/)."""
    mon.swept_at = 0.0
    return "full look at the whole run (cluster and DATE/) at the next cycle"


# What the monitor does with each kind of request: the result line closes the request.
# None keeps the request open: it is applied again at the next cycle.
APPLY: dict[str, Callable[[Monitor, int, dict[str, object], float], str | None]] = {
    "reset": _apply_reset,
    "cancel": cancelling.apply_cancel,   # jobauto cancel (run/control.py records it)
    "set": settings.apply_set,           # jobauto set (run/control.py records it)
    "rescan": _apply_rescan,
}


def apply_retries(mon: Monitor, now: float) -> None:
    """Reset the failed jobs that --retries gives another attempt."""
    if not mon.to_retry:
        return
    jobs = [mon.jobs[n] for n in sorted(mon.to_retry) if mon.jobs[n].state == JobState.ERROR]
    for job in jobs:
        job.retried += 1
    reset(mon, jobs, now, "retry", f"automatic retry (--retries {mon.settings.retries})")
    mon.to_retry.clear()


def reset(mon: Monitor, jobs: list[Job], now: float, kind: str, detail: str) -> None:
    """Make jobs pending again. Their markers go first, on the cluster and here, so that the
    next attempt is not mistaken for done (a transport error leaves everything as it was)."""
    if not jobs:
        return
    paths = [marker_path(j.name, k) for j in jobs for k in (FAILED, FINISHED)]
    mon.remote.remove(paths)
    for job in jobs:
        for which in (FAILED, FINISHED):
            p = marker_path(job.name, which)
            try:
                (mon.run_dir / p).unlink(missing_ok=True)
            except OSError as e:  # a directory of that name: the next verdict says it is unreadable
                mon.warn(now, job.name, f"cannot remove {p} here: {e.strerror or e}")
    for job in jobs:
        mon.refine.pop(job.name, None)
        mon.acct_seen.pop(job.name, None)
        job.sched_id = job.token = job.batch = None
        job.intent_at = job.started_at = job.finished_at = job.failed_at = job.running_at = None
        job.spre_at = job.missing_since = None
        was = f"{job.state.value}" + (f" ({job.verdict})" if job.verdict else "")
        mon.move(job, JobState.PENDING, now, kind, f"{detail}; was {was}")
