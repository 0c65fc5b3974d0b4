"""Every run under a campaign directory at a glance (`jobauto runs LDIR`, `jobauto status LDIR`).

Read-only, like the rest of view/: no lock is taken (the monitor's is only looked at, through
/proc/locks) and nothing is written. Each run costs a few SQL queries, not a read of every
job: the counts come from SQL, and only jobs not done are read, to split pending into ready,
waiting and blocked with the one dependency engine. A run that cannot be read is one row
saying why; the others still show.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jobauto.core.deps import classify
from jobauto.core.errors import JobautoError, StateError
from jobauto.core.layout import BUILDING, CREATING, STATE_DIR, lock_path, state_db
from jobauto.core.lock import holder
from jobauto.core.states import COUNT_KEYS
from jobauto.store import open_run_store
from jobauto.view.campaign import _producer, recorded_settings

# The states of a run, as `runs` shows them (docs/resume.md "Every run of a campaign")
RUNNING = "running"      # a monitor holds the run's lock
STOPPED = "stopped"      # no monitor, and work left that a resume would do
FINISHED = "finished"    # every job done
FAILED = "failed"        # no monitor, nothing running or ready: errors, blocked or stuck jobs
CREATING_RUN = "creating"   # a monitor is creating it (LDIR/.DATE.jobauto-new)
DAMAGED = "damaged"      # its state cannot be read; `problem` says why
RUN_STATES = (RUNNING, STOPPED, FINISHED, FAILED, CREATING_RUN, DAMAGED)


@dataclass
class RunRow:
    """One run: what `jobauto runs` shows of it (its JSON is this, field for field)."""
    date: str                      # the run's name under LDIR (DATE)
    path: str                      # LDIR/DATE
    state: str                     # one of RUN_STATES
    pid: int | None = None         # the monitor's process id, while one runs
    monitor: str = ""              # the lock holder's own words ("pid 123 on host")
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    total: int = 0
    last_activity: float | None = None   # epoch: latest event in the store, or quelist's mtime
    remote_dir: str = ""           # the run's directory on the cluster (store meta `rundir`)
    host: str = ""                 # the cluster, when the run recorded it (store meta `remote`)
    problem: str = ""              # damaged: why it cannot be read


def is_ldir(path: Path) -> bool:
    """Whether PATH looks like a campaign directory: it holds init/ or at least one run."""
    if not path.is_dir():
        return False
    if (path / "init").is_dir():
        return True
    return any(_is_run(p) for p in _entries(path))


def list_runs(ldir: Path) -> list[RunRow]:
    """Every run under LDIR, by name; one being created is listed as such while its creator
    holds LDIR/.jobauto-creating (a leftover of a creation cut short is not a run: skipped)."""
    if not ldir.is_dir():
        raise StateError("no such directory (pass a campaign directory LDIR, which holds init/ "
                         "and its runs LDIR/DATE)", file=str(ldir))
    rows = []
    creating = holder(ldir / CREATING)
    for entry in _entries(ldir):
        name = entry.name
        if name.startswith(".") and name.endswith(BUILDING):
            if creating:
                date = name[1:-len(BUILDING)]
                rows.append(RunRow(date, str(ldir / date), CREATING_RUN, _pid(creating), creating))
        elif _is_run(entry):
            rows.append(summarize(entry))
    rows.sort(key=lambda r: r.date)
    return rows


def _entries(ldir: Path) -> list[Path]:
    try:
        return list(ldir.iterdir())
    except OSError as e:
        raise StateError(f"cannot list the directory ({e.strerror or e})", file=str(ldir)) from None


def _is_run(entry: Path) -> bool:
    try:
        return not entry.name.startswith(".") and (entry / STATE_DIR).is_dir()
    except OSError:
        return False


def _pid(who: str | None) -> int | None:
    """The process id in a lock holder's words ("pid 123 on host")."""
    parts = (who or "").split()
    return int(parts[1]) if len(parts) >= 2 and parts[0] == "pid" and parts[1].isdigit() else None


def summarize(run_dir: Path) -> RunRow:
    """One run's row; a run that cannot be read is a DAMAGED row naming why, never an error."""
    row = RunRow(run_dir.name, str(run_dir), DAMAGED)
    try:
        _read(run_dir, row)
    except JobautoError as e:
        row.state, row.problem = DAMAGED, e.describe()
    except Exception as e:  # noqa: BLE001  one unreadable run must not hide the others
        row.state, row.problem = DAMAGED, f"{state_db(run_dir)}: cannot be read ({type(e).__name__}: {e})"
    return row


def _read(run_dir: Path, row: RunRow) -> None:
    store = open_run_store(run_dir, readonly=True)
    try:
        with store.reported():
            stored = store.state_counts()
            derived = _derived(store) if stored.get("pending") else {}
            last = store.last_event_at()
            waiting_requests = store.open_request_count()
            row.remote_dir = store.get_meta("rundir") or ""
            host = recorded_settings(store.get_meta("settings")).get("remote")
            row.host = store.get_meta("remote") or (host if isinstance(host, str) else "")
    finally:
        store.close()
    row.counts = {k: stored.get(k, 0) if k in ("done", "running", "error") else derived.get(k, 0)
                  for k in COUNT_KEYS}
    row.total = sum(stored.values())
    row.last_activity = _latest(last, run_dir / "quelist")
    row.monitor = holder(lock_path(run_dir)) or ""
    row.pid = _pid(row.monitor)
    row.state = _state(row, waiting_requests)


def _derived(store: Any) -> dict[str, int]:
    """Pending jobs split into ready, waiting and blocked (deps.classify over the jobs not done;
    a dependency on a done job is met, asked of SQL only for the names not among them)."""
    rows = store.open_rows()
    index = {r[0]: i for i, r in enumerate(rows)}
    try:
        all_deps = json.loads("[" + ",".join(str(r[2]) for r in rows) + "]")
    except ValueError:
        raise StateError("the run's state is damaged (unreadable dependency lists)",
                         file=str(store.path)) from None
    needs: list[tuple[int, ...]] = []
    elsewhere: dict[int, list[tuple[str | None, str]]] = {}   # job: (producer, path) to look up
    for k, paths in enumerate(all_deps):
        if not paths:
            needs.append(())
            continue
        mine: list[int] = []
        for path in paths:
            p = _producer(path)
            i = index.get(p) if p is not None else None
            if i is not None:
                mine.append(i)
            else:
                elsewhere.setdefault(k, []).append((p, path))
        needs.append(tuple(mine))
    done = store.among("done", sorted({p for o in elsewhere.values() for p, _ in o if p is not None}))
    files = store.among("files", sorted({path for o in elsewhere.values() for p, path in o
                                         if p is None or p not in done}))
    files_unmet = [False] * len(rows)
    for k, o in elsewhere.items():
        files_unmet[k] = any((p is None or p not in done) and path not in files for p, path in o)
    derived, _ = classify([r[1] for r in rows], needs, files_unmet)
    return {k: derived.count(k) for k in ("ready", "waiting", "blocked")}


def _latest(event_at: float | None, quelist: Path) -> float | None:
    try:
        mtime: float | None = quelist.stat().st_mtime
    except OSError:
        mtime = None
    times = [t for t in (event_at, mtime) if t is not None]
    return max(times) if times else None


def _state(row: RunRow, waiting_requests: int) -> str:
    c = row.counts
    if row.monitor:
        return RUNNING
    if c["done"] == row.total:
        return FINISHED
    if waiting_requests or c["running"] or c["ready"]:
        return STOPPED     # a resume has work to do (or requests to apply)
    return FAILED          # what jobmon ends with exit 1 for: nothing running, nothing can start


# -- rendering -----------------------------------------------------------------------------------
HEADERS = ("RUN", "STATE", *COUNT_KEYS, "LAST ACTIVITY", "REMOTE")


def when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t is not None else "-"


def cells(r: RunRow) -> list[str]:
    """A row's cells under HEADERS (a damaged run: its problem in place of the numbers)."""
    state = f"{r.state} (pid {r.pid})" if r.pid is not None and r.state == RUNNING else r.state
    if r.state == DAMAGED:
        return [r.date, state, r.problem]
    if r.state == CREATING_RUN:
        return [r.date, state, f"being created by {r.monitor}"]
    remote = f"{r.host}:{r.remote_dir}" if r.host else r.remote_dir
    return [r.date, state, *(str(r.counts[k]) for k in COUNT_KEYS), when(r.last_activity),
            remote or "-"]


def render_text(ldir: Path, rows: list[RunRow]) -> str:
    """Aligned columns, one run a line (a damaged or creating run: its note after its state)."""
    if not rows:
        return f"no runs in {ldir}"
    table = [list(HEADERS)] + [cells(r) for r in rows]
    full = [t for t in table if len(t) == len(HEADERS)]
    widths = [max(len(t[i]) for t in full) for i in range(len(HEADERS))]
    out = []
    for t in table:
        if len(t) == len(HEADERS):
            out.append("  ".join(c.rjust(w) if 2 <= i < 2 + len(COUNT_KEYS) else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(t, widths, strict=True))).rstrip())
        else:
            out.append(f"{t[0].ljust(widths[0])}  {t[1].ljust(widths[1])}  {t[2]}")
    return "\n".join(out)


STYLE = {RUNNING: "bold green", STOPPED: "yellow", FINISHED: "green", FAILED: "bold red",
         CREATING_RUN: "cyan", DAMAGED: "bold red"}


def render_rich(ldir: Path, rows: list[RunRow]) -> Any:
    """A rich table of the runs."""
    from rich.table import Table
    from rich.text import Text
    if not rows:
        return Text(f"no runs in {ldir}")
    t = Table(title=f"runs in {ldir}", title_justify="left")
    for i, h in enumerate(HEADERS):
        t.add_column(h.lower(), justify="right" if 2 <= i < 2 + len(COUNT_KEYS) else "left")
    for r in rows:
        c = cells(r)
        row = [Text(c[0]), Text(c[1], style=STYLE.get(r.state, ""))]
        if len(c) == len(HEADERS):
            row += [Text(x) for x in c[2:]]
        else:
            row += [Text(c[2], style="red" if r.state == DAMAGED else "")]
        t.add_row(*row)
    return t


def render_json(ldir: Path, rows: list[RunRow]) -> str:
    """{"ldir": ..., "runs": [RunRow as a dict, ...]} (docs/resume.md)."""
    return json.dumps({"ldir": str(ldir), "runs": [asdict(r) for r in rows]}, sort_keys=True)
