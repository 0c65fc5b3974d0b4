"""The command side of `jobauto cancel` and `jobauto set`: check, record, deliver.

With a monitor running on the run, the change is a request in the run's store: the monitor
applies it at its next cycle (a waiting monitor looks for requests every few seconds, see
run/daemon.py), and the command waits a little for the result to print it. With none running,
the command does it itself under the run's lock: `set` records the settings for the next
resume; `cancel` opens the run with its recorded settings (run/opener.py
`recorded_options`), runs one cycle that submits nothing, and releases the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from jobauto.core.config import assignment
from jobauto.core.errors import ConfigError, StateError
from jobauto.core.layout import lock_path, state_db
from jobauto.core.lock import Lock
from jobauto.core.model import JobState
from jobauto.run import settings
from jobauto.run.explain import find_job
from jobauto.run.opener import open_run, recorded_options
from jobauto.store import Store, open_run_store

CANCELLABLE = ("running", "pending")
WAIT_S = 30.0        # how long a command waits for the running monitor's result
POLL_S = 0.5
SHOWN = 10


def _free(run_dir: Path) -> Lock | None:
    """The run's lock when no monitor holds it (the caller releases it), else None."""
    lock = Lock(lock_path(run_dir))
    try:
        lock.acquire()
    except StateError:
        return None
    return lock


def result_of(run_dir: Path, rid: int, wait_s: float = WAIT_S) -> str | None:
    """The result line of request RID once it is applied (waiting up to WAIT_S), else None."""
    store = Store(state_db(run_dir), readonly=True)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            for r_id, _, _, _, done_at, result in store.requests():
                if r_id == rid and done_at is not None:
                    return result
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_S)
    finally:
        store.close()


# -- jobauto set --------------------------------------------------------------------------------
def set_settings(run_dir: Path, items: list[str], say: Callable[[str], None]) -> int:
    """Change the run's settings: live through its monitor, else recorded for the next resume."""
    if not items:
        raise ConfigError("name at least one NAME=VALUE (e.g. maxqsub=20)")
    values = dict(assignment(item) for item in items)
    settings.check_set(values)
    store = open_run_store(run_dir, readonly=False)
    try:
        with store.reported():
            if settings.read(store) is None:
                raise StateError("this run was made before jobmon recorded a run's settings; "
                                 "resume it once with all its flags, then set", file=str(run_dir))
            lock = _free(run_dir)
            if lock is not None:
                try:
                    changed = settings.change(store, values, time.time(),
                                              "jobauto set (no monitor running)")
                finally:
                    lock.release()
                say(f"jobauto set: {'; '.join(changed) or 'nothing changed'}; no monitor is "
                    f"running: used when the run is resumed (jobauto resume {run_dir})")
                return 0
            rid = store.add_request(time.time(), "set", {"values": values})
    finally:
        store.close()
    result = result_of(run_dir, rid)
    say(f"jobauto set: {result}" if result is not None else
        "jobauto set: requested; the running monitor applies it at its next cycle "
        f"(jobauto explain {run_dir} shows it)")
    return 0


# -- jobauto cancel -----------------------------------------------------------------------------
def cancel(run_dir: Path, names: list[str], status: list[str], say: Callable[[str], None]) -> int:
    """Cancel the chosen jobs (every job not ended, without names or --status). Returns the exit
    code: 0 done or requested; 1 when no monitor runs and the cluster could not be reached
    (the cancel stays requested: applied when the run is resumed)."""
    for s in status:
        if s not in CANCELLABLE:
            raise ConfigError(f"cannot cancel jobs in state {s!r} (choose from "
                              f"{', '.join(CANCELLABLE)}; an ended job is not cancelled: "
                              "jobauto reset makes it pending)", flag="--status")
    whole = not names and not status
    store = open_run_store(run_dir, readonly=False)
    try:
        with store.reported():
            jobs = {j.name: j for j in store.load_jobs()}
            picked = list(dict.fromkeys([find_job(jobs, n, run_dir).name for n in names] +
                                        [j.name for j in jobs.values() if j.state.value in status]))
            if not whole and not picked:
                say(f"jobauto cancel: no job in {', '.join(status)}: nothing to cancel")
                return 0
            lock = _free(run_dir)
            if lock is not None:
                lock.release()
                recorded_options(run_dir)   # can it be reached without a monitor? else refuse
            live = [n for n in picked if jobs[n].state in (JobState.RUNNING, JobState.PENDING)]
            rid = store.add_request(time.time(), "cancel", {"all": True} if whole else
                                    {"jobs": picked})
    finally:
        store.close()
    what = "the whole run" if whole else (
        f"{len(live)} job(s): {', '.join(live[:SHOWN])}{' ...' if len(live) > SHOWN else ''}")
    notes = None if lock is None else _direct(run_dir, say)
    if notes is None:
        result = result_of(run_dir, rid)
        say(f"jobauto cancel: {result}" if result is not None else
            f"jobauto cancel: {what} requested; the running monitor applies it at its next cycle")
        return 0
    result = result_of(run_dir, rid, wait_s=0)
    for note in notes:
        if note != result:
            say(f"jobauto cancel: {note}")
    if result is None:
        say(f"jobauto cancel: {what} requested, not applied yet (see above); it is applied when "
            f"the run is resumed (jobauto resume {run_dir})")
        return 1
    say(f"jobauto cancel: {result}")
    return 0


def _direct(run_dir: Path, say: Callable[[str], None]) -> list[str] | None:
    """One cycle that submits nothing, under the run's lock, with its recorded settings: it
    applies the requests waiting (this cancel). Returns the cycle's notes; None when a monitor
    took the run meanwhile."""
    opts = recorded_options(run_dir)
    try:
        run = open_run(opts, log=lambda line: say(line.replace("jobmon:", "jobauto cancel:")))
    except StateError as e:
        if "a monitor is already running" in e.message:
            return None
        raise
    try:
        with run.store.reported():
            run.monitor.submitting = False
            result = run.monitor.tick(time.time())
    finally:
        run.remote.transport.close()
        run.store.close()
        run.lock.release()
    return result.notes
