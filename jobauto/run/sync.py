"""The local tree is the truth for what the user edits: what was pushed or fetched, and when a
local file changed since.

The store's `synced` table holds, per file below DATE/, what jobmon last pushed or fetched of it:
size, mtime (ns) and, for job scripts and dependency files, a sha256. A local file whose size or
mtime differ from its row (and, for a hashed one, whose content does too) was changed by the user.
Such a script or dependency file is pushed before its job is next submitted (`before_submit`);
a fetch never writes over it (run/transfer.py asks `changed_locally`). A file with no row was
never pushed or fetched: nothing to compare it with (a run made before schema 5 has none; its
scripts are pushed once before their next submission, docs/decisions.md).

Cost: the first push records every file of the tree, hashing only scripts and dependency files
(bench/sync_record.py); a submission stats the chosen jobs' two files and hashes only those whose
stat moved.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from jobauto.core.deps import DEPENDENCY, SCRIPT, job_of_marker, marker_path, scan_kind
from jobauto.core.errors import JobautoError, TransportError
from jobauto.core.files import TMP_TAG
from jobauto.core.layout import STATE_DIR
from jobauto.core.model import Job, JobState
from jobauto.run.tree import parse_dependency
from jobauto.store import Store

if TYPE_CHECKING:
    from jobauto.run.cycle import Monitor

Row = tuple[str, int, int, "str | None"]   # path, size, mtime_ns, sha256 (scripts, dependency files)
SHOWN = 5      # files named in one note; the events name every one


def hashed(rel: str) -> bool:
    """Whether REL is a job script or a dependency file: the files a user edits, hashed."""
    return scan_kind(rel) in (SCRIPT, DEPENDENCY)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def row(root: Path, rel: str) -> Row | None:
    """What REL below ROOT is now (None: not a regular file)."""
    path = root / rel
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        return rel, st.st_size, st.st_mtime_ns, sha256(path) if hashed(rel) else None
    except OSError:
        return None


def tree_rows(run_dir: Path) -> list[Row]:
    """Every file of the run directory that a push sends (as Remote.push: not the state
    directory, quelist or a temporary file)."""
    out: list[Row] = []
    for dirpath, dirnames, filenames in os.walk(run_dir):
        rel_dir = os.path.relpath(dirpath, run_dir).replace(os.sep, "/")
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d != STATE_DIR]
        for f in filenames:
            if TMP_TAG in f or (rel_dir == "." and f == "quelist"):
                continue
            r = row(run_dir, f if rel_dir == "." else f"{rel_dir}/{f}")
            if r is not None:
                out.append(r)
    return out


def changed_locally(store: Store, root: Path, rels: Iterable[str]) -> tuple[list[Row], list[Row]]:
    """Of RELS, the files changed locally since they were last pushed or fetched (with what
    they are now), and the unchanged ones whose stat moved (touched, same content: their row is
    refreshed so that the next look is a stat again). A missing file, or one never pushed or
    fetched, is not changed."""
    rels = list(dict.fromkeys(rels))
    rec = store.synced(rels)
    changed: list[Row] = []
    refresh: list[Row] = []
    for rel in rels:
        was = rec.get(rel)
        if was is None:
            continue
        try:
            st = os.lstat(root / rel)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_mtime_ns) == was[:2]:
            continue
        now = row(root, rel)
        if now is None:
            continue
        if was[2] is not None and now[3] == was[2]:
            refresh.append(now)
        else:
            changed.append(now)
    return changed, refresh


def to_push(store: Store, root: Path, rels: list[str]) -> tuple[list[Row], list[Row]]:
    """Of a job's files RELS, those to push before it is submitted: changed locally, or never
    recorded (a run made before schema 5, a job added during the run); and the rows to refresh."""
    rec = store.synced(rels)
    changed, refresh = changed_locally(store, root, rels)
    for rel in rels:
        if rel not in rec:
            r = row(root, rel)
            if r is not None:
                changed.append(r)
    return changed, refresh


def before_submit(mon: Monitor, chosen: list[Job], now: float, notes: list[str],
                  still: Callable[[Job], bool] | None = None) -> list[Job]:
    """Push the chosen jobs' scripts and dependency files changed locally, in one transfer,
    before their intent is committed; return the jobs still to submit. A changed dependency file
    is read again: the job waits for what it names now (not submitted when it is no longer
    ready; an unreadable one makes the job an error). A failed push leaves every job ready and
    nothing changed. STILL says whether a job may still go (default: it is ready)."""
    rels = [p for j in chosen for p in (j.name, marker_path(j.name, DEPENDENCY))]
    changed, refresh = to_push(mon.store, mon.run_dir, rels)
    if changed:
        names = [r[0] for r in changed]
        try:
            mon.remote.push_files(mon.run_dir, names)
        except TransportError as e:
            for j in chosen:
                heapq.heappush(mon.heap, (-j.priority, j.ready_seq or 0, j.name))
            notes.append(f"cluster unreachable, will retry: pushing {len(names)} changed "
                         f"file(s) before submitting: {e.message}")
            return []
        for rel in names:
            hit = job_of_marker(rel)
            mon.events.append((now, hit[0] if hit else rel, "pushed",
                               f"{rel}: changed locally, pushed before submitting"))
            if hit is not None and hit[1] == DEPENDENCY and hit[0] in mon.jobs:
                reread(mon, mon.jobs[hit[0]], now)
        shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN
                                            else "")
        notes.append(f"pushed {len(names)} file(s) changed locally before submitting: {shown}")
        mon.commit()   # the jobs' new dependencies, before the record says they were read
    if changed or refresh:
        with mon.store.transaction():
            mon.store.record_synced(changed + refresh, "pushed", now)
    still = still or (lambda j: j.name in mon.graph.ready)
    keep = [j for j in chosen if still(j)]
    for j in chosen:
        if j.state == JobState.PENDING and not still(j):
            mon.events.append((now, j.name, "not-submitted",
                               "its changed dependency file makes it wait"))
    return keep


def reread(mon: Monitor, job: Job, now: float) -> None:
    """Take a job's changed dependency file: its dependencies, priority and estimate; a file
    that cannot be read (or makes a cycle) makes the job an error, as for a job added."""
    if job.state != JobState.PENDING:
        return
    try:
        spec = parse_dependency(mon.run_dir, job.name)
    except (JobautoError, OSError) as e:
        why = e.describe() if isinstance(e, JobautoError) else str(e)
        mon.move(job, JobState.ERROR, now, "invalid", f"its changed dependency file: {why}")
        return
    job.priority, job.estimate_h = spec.priority, spec.estimate_h
    mon.touch(job)
    if spec.deps == job.deps:
        return
    mon.graph.set_deps(job.name, spec.deps)
    job.deps = spec.deps
    mon.events.append((now, job.name, "dependencies",
                       "from its changed dependency file: " + (", ".join(spec.deps) or "none")))
    cycle = mon.graph.find_cycle()
    if cycle and job.name in cycle:
        mon.move(job, JobState.ERROR, now, "invalid",
                 "its changed dependency file makes a cycle: " + " -> ".join(cycle))
