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

from jobauto.core.deps import DEPENDENCY, FINISHED, job_of_marker
from jobauto.core.errors import JobautoError
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


def pick_up_local(mon: Monitor, now: float) -> None:
    """Register jobs added under DATE/ since the last cycle and push them to the cluster."""
    changed: list[str] = []
    for rel, seen in list(mon.dir_mtimes.items()):
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
               on_finished: Callable[[Job, float], None]) -> None:
    """Write a scan's files into DATE/ and register the jobs found on the cluster; hand each
    finished marker to on_finished (with its mtime) as soon as it is written."""
    # scripts, then dependency files, then markers: so markers of brand-new jobs find their job
    def order(p: str) -> int:
        hit = job_of_marker(p)
        return 0 if hit is None else 1 if hit[1] == DEPENDENCY else 2
    for path in sorted(files, key=order):
        mtime, content = files[path]
        hit = job_of_marker(path)
        if hit is None:  # a job script that came with its dependency file
            _write_local(mon.run_dir, path, content, mtime, only_new=True)
            continue
        name, kind = hit
        _write_local(mon.run_dir, path, content, mtime, only_new=kind == DEPENDENCY)
        if kind == DEPENDENCY and name not in mon.jobs and (mon.run_dir / name).exists():
            add_job(mon, name, now, "found on the cluster")
        elif kind == FINISHED and name in mon.jobs:
            on_finished(mon.jobs[name], mtime)


def _write_local(run_dir: Path, path: str, content: bytes, mtime: float, only_new: bool) -> None:
    """Write a file from the cluster into the run directory, atomically, with its mtime."""
    target = run_dir / path
    if only_new and target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.jobauto-tmp")
    tmp.write_bytes(content)
    os.utime(tmp, (mtime, mtime))
    os.replace(tmp, target)
