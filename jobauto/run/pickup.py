"""New jobs while a run goes on, and the files the cluster sends back into DATE/.

A job is added under DATE/ (found by the mtimes of its directories, then pushed to the
cluster) or appears on the cluster (its dependency file comes back with the scan). Either way
a job that cannot be read becomes an error job, not a crash. The scan's files are written
here too (take_files), so that a marker that arrives with its brand-new job finds the job;
what the markers mean is for endings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from jobauto.core.deps import DEPENDENCY, FAILED, FINISHED, job_of_marker, marker_path
from jobauto.core.errors import JobautoError, PathError
from jobauto.core.files import read_head, reason, shown, write_from_cluster
from jobauto.core.layout import STATE_DIR
from jobauto.core.model import Job, JobState
from jobauto.run.tree import JobSpec, check_placeholders, fill_job, iter_job_files, parse_dependency

if TYPE_CHECKING:
    from jobauto.run.cycle import Monitor


def index_dirs(mon: Monitor) -> None:
    """Remember the mtime of every directory of the run, to notice jobs added later."""
    for dirpath, dirnames, _ in os.walk(mon.run_dir):
        dirnames[:] = [d for d in dirnames if d != STATE_DIR]
        rel = os.path.relpath(dirpath, mon.run_dir).replace(os.sep, "/")
        mon.dir_mtimes[rel] = os.stat(dirpath).st_mtime_ns


def root_mtime(mon: Monitor) -> int | None:
    try:
        return os.stat(mon.run_dir).st_mtime_ns
    except OSError:
        return None


def wrote_root(mon: Monitor, before: int | None) -> None:
    """The monitor itself changed DATE/ (quelist written by rename): when DATE/ had not changed
    before, that is no job added, and the next cycle need not read DATE/ (10,000 entries in a
    large run) to find out."""
    if before is not None and before == mon.dir_mtimes.get("."):
        after = root_mtime(mon)
        if after is not None:
            mon.dir_mtimes["."] = after


def pick_up_local(mon: Monitor, now: float, full: bool = True) -> None:
    """Register jobs added under DATE/ and push them to the cluster. Each cycle looks at DATE/
    itself (a new directory there, the usual way to add jobs); FULL (the sweep, a rescan) at
    every directory of the run: one stat each."""
    changed: list[str] = []
    look = list(mon.dir_mtimes.items()) if full else [(".", mon.dir_mtimes.get(".", 0))]
    for rel, seen in look:
        try:
            m = os.stat(mon.run_dir / rel).st_mtime_ns
        except FileNotFoundError:
            del mon.dir_mtimes[rel]
            continue
        if m != seen:
            changed.append(rel)
    if not changed:
        return
    added: list[str] = []
    for rel in changed:
        top = mon.run_dir / rel
        mon.dir_mtimes[rel] = os.stat(top).st_mtime_ns
        for entry in os.scandir(top):
            if entry.is_dir(follow_symlinks=False) and entry.name != STATE_DIR:
                sub = entry.name if rel == "." else f"{rel}/{entry.name}"
                if sub not in mon.dir_mtimes:
                    for dirpath, dirnames, _ in os.walk(entry.path):
                        dirnames[:] = [d for d in dirnames if d != STATE_DIR]
                        r = os.path.relpath(dirpath, mon.run_dir).replace(os.sep, "/")
                        mon.dir_mtimes[r] = os.stat(dirpath).st_mtime_ns
                    added += [n for n in iter_job_files(mon.run_dir, sub) if n not in mon.jobs]
        for f in os.listdir(top):
            if f.startswith(DEPENDENCY) and len(f) > len(DEPENDENCY):
                name = ("qsub." if rel == "." else f"{rel}/qsub.") + f[len(DEPENDENCY):]
                if name not in mon.jobs and (mon.run_dir / name).is_file():
                    added.append(name)
    if added:
        for name in dict.fromkeys(added):
            add_job(mon, name, now, "added under the run directory")
        mon.remote.push(mon.run_dir)


def add_job(mon: Monitor, name: str, now: float, how: str) -> None:
    """Register a job added during the run; one that cannot be read is an error job."""
    spec, error = _spec_or_error(mon, name)
    mon.next_id += 1
    job = Job(mon.next_id, spec.name, deps=spec.deps, priority=spec.priority,
              estimate_h=spec.estimate_h)
    mon.add(job)
    mon.events.append((now, job.name, "added", how))
    if error:
        mon.move(job, JobState.ERROR, now, "invalid", error)
    mon.touch(job)


def _spec_or_error(mon: Monitor, name: str) -> tuple[JobSpec, str | None]:
    """Read a job added during the run; a bad one becomes an error job, not a crash."""
    try:
        spec = parse_dependency(mon.run_dir, name)
        check_placeholders(mon.run_dir, [spec], mon.settings.values)
        fill_job(mon.run_dir, name, mon.settings.values)
        return spec, None
    except (JobautoError, OSError) as e:
        return JobSpec(name, ()), e.describe() if isinstance(e, JobautoError) else str(e)


def take_files(mon: Monitor, files: dict[str, tuple[float, bytes]], now: float,
               on_finished: Callable[[Job, float, bytes | None], None]) -> None:
    """Write a scan's files into DATE/ and register the jobs found on the cluster; then hand each
    finished marker to on_finished with its mtime and the failed marker the same scan brought.
    Every file is written before any job is judged: find lists them in no particular order, and
    a failed marker listed after its finished marker must still count. A file that cannot be
    written is a warning; its marker still counts (the scan saw it)."""
    # scripts, then dependency files, then markers: so markers of brand-new jobs find their job
    def order(p: str) -> int:
        hit = job_of_marker(p)
        return 0 if hit is None else 1 if hit[1] == DEPENDENCY else 2
    finished: list[tuple[str, float]] = []
    for path in sorted(files, key=order):
        mtime, content = files[path]
        hit = job_of_marker(path)
        job = hit[0] if hit is not None else path
        try:
            write_from_cluster(mon.run_dir, path, content, mtime=mtime)
        except (PathError, OSError) as e:
            mon.warn(now, job if job in mon.jobs else "",
                     f"the cluster sent {shown(path)}: not written ({reason(e)})")
            if hit is None or hit[1] != FINISHED:
                continue
        if hit is None:
            continue
        if hit[1] == DEPENDENCY and job not in mon.jobs and _is_file(mon.run_dir, job):
            add_job(mon, job, now, "found on the cluster")
        elif hit[1] == FINISHED:
            finished.append((job, mtime))
    for name, mtime in finished:
        if name in mon.jobs:
            failed = files.get(marker_path(name, FAILED))
            on_finished(mon.jobs[name], mtime, None if failed is None else failed[1])


def _is_file(run_dir: Path, name: str) -> bool:
    """Whether the job script is a regular file, reached without a symbolic link below DATE/."""
    try:
        read_head(run_dir, name, 0)
        return True
    except (PathError, OSError):
        return False
