"""Open a run: validate everything, connect, copy init/ to DATE/, push; or resume or fetch.

Creation is all or nothing (a hidden copy renamed to DATE last, one creator at a time per
LDIR); a resume first takes the run's lock and checks its store is whole. The fault points
(core/faults.py) name each step for the tests that kill jobmon there.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from jobauto.cluster import host
from jobauto.core.config import Options, from_recorded
from jobauto.core.deps import DEPENDENCY, Graph, marker_path
from jobauto.core.errors import ConfigError, StateError, TreeError, refused_write, stopped_by_disk
from jobauto.core.faults import point
from jobauto.core.layout import BUILDING, CREATING, lock_path, state_db
from jobauto.core.lock import Lock, clear_stale, exclusive
from jobauto.run import settings, sync
from jobauto.run.cycle import Monitor, Settings
from jobauto.run.mirror import Remote
from jobauto.run.tree import copy_init, validate_tree
from jobauto.store import Store, open_run_store

DATE_FORMAT = "%Y%m%d-%H%M%S"     # a new run's default name


@dataclass
class Run:
    date_dir: Path
    store: Store
    remote: Remote
    monitor: Monitor
    created: bool
    lock: Lock              # held: this monitor's claim on the run


def remote_dir(opts: Options) -> str:
    """The run's mirror path: ~/ and relative paths are relative to the remote home."""
    if not opts.rdir:
        raise ConfigError("is required (where the run lives on the cluster)", flag="--rdir")
    rdir = opts.rdir
    if rdir.startswith("~/"):
        rdir = rdir[2:]
    if opts.remote is None and not os.path.isabs(rdir):
        rdir = os.path.abspath(opts.rdir)  # no cluster: relative to where jobmon was started
    return rdir.rstrip("/") or "/"


def check_cycles(root: Path, specs: list) -> None:  # type: ignore[type-arg]
    g = Graph()
    for s in specs:
        g.add(s.name, s.deps)
    cycle = g.find_cycle()
    if cycle:
        raise TreeError("dependency cycle: " + " -> ".join(cycle),
                        file=str(root / marker_path(cycle[0], DEPENDENCY)))


def create(init: Path, date_dir: Path, specs: list, values: dict[str, str],  # type: ignore[type-arg]
           sched: str, rundir: str, opts: Options | None = None) -> Lock:
    """Make the run directory complete or not at all: it is built under a hidden name and renamed
    to DATE last, so a monitor killed while creating leaves no half-made run to resume (a
    leftover hidden copy is removed by the next creation in LDIR). The store's creation record
    is its last write. Returns the run's lock, taken before the rename and held."""
    building = date_dir.with_name(f".{date_dir.name}{BUILDING}")
    lock = Lock(lock_path(building))
    try:
        copy_init(init, building, specs, values)
        point("create.copied")
        store = Store(state_db(building))
        point("create.store")
        try:
            with store.transaction():
                store.set_meta("scheduler", sched)
                store.set_meta("rundir", rundir)
                store.set_meta("pushed", "0")  # "1" once the whole tree is on the cluster
                if opts is not None:
                    settings.record(store, opts, time.time(), "creation")
            Monitor.create(store, specs, building)  # the jobs and, last, the creation record
        finally:
            store.close()
        point("create.jobs")
        lock.acquire()  # the same file after the rename: no second monitor between the two
        os.rename(building, date_dir)
    except BaseException:
        lock.release()
        shutil.rmtree(building, ignore_errors=True)
        raise
    point("create.renamed")
    return lock


def create_run(opts: Options, date: str, specs: list, sched: str, rdir_base: str,  # type: ignore[type-arg]
               log: Callable[[str], None]) -> tuple[Path, Lock | None]:
    """Create a new run in LDIR, one creating monitor at a time (LDIR/.jobauto-creating).
    Without --datedir a name another monitor took in the same second is not reused: the next
    free second's name is. Returns the run and its lock; no lock when --datedir's run was made
    by another monitor meanwhile (then it is resumed, or refused while that monitor runs)."""
    assert opts.ldir is not None
    ldir = opts.ldir
    date_dir = ldir / date
    try:
        with exclusive(ldir / CREATING, wait=lambda: log(
                f"jobmon: waiting for another monitor that is creating a run in {ldir}")):
            for left in sorted(ldir.glob(f".*{BUILDING}")):
                log(f"jobmon: removing {left}, a run whose creation was cut short")
                shutil.rmtree(left, ignore_errors=True)
            while not opts.datedir and date_dir.exists():
                time.sleep(0.1)
                date_dir = ldir / time.strftime(DATE_FORMAT)
            if date_dir.exists():
                return date_dir, None
            rundir = posixpath.join(rdir_base, date_dir.name)
            return date_dir, create(ldir / "init", date_dir, specs, opts.values(), sched, rundir,
                                    replace(opts, rdir=rdir_base))
    except OSError as e:
        refused = refused_write(e)
        if refused is None:
            raise
        path, code = refused   # named as the run it was for: the hidden copy is gone
        building = str(date_dir.with_name(f".{date_dir.name}{BUILDING}"))
        if path.startswith(building):
            path = str(date_dir) + path[len(building):]
        raise stopped_by_disk(path, code, date_dir.name) from None


def take_run(date_dir: Path, cluster_copy: str) -> Lock:
    """Hold an existing run (refused while another monitor does) and check that its store is
    whole before anything is written into it."""
    lock = Lock(lock_path(date_dir))
    lock.acquire()
    try:
        open_run_store(date_dir, readonly=False, cluster_copy=cluster_copy).close()
    except BaseException:
        lock.release()
        raise
    return lock


def open_run(opts: Options, log: Callable[[str], None] = print) -> Run:
    """Validate, connect and open (or create) the run; raise before changing anything. A write
    the local disk refuses (full, read-only) ends it with one message naming the file."""
    if opts.ldir is None:
        raise ConfigError("is required (the local campaign directory holding init/)", flag="--ldir")
    rdir_base = remote_dir(opts)
    date = opts.datedir or time.strftime(DATE_FORMAT)
    if "/" in date or date in (".", "..", "init", ""):
        raise ConfigError(f"{date!r} is not a run name (a plain directory name like 20261121-100000)",
                          flag="--datedir")
    date_dir = opts.ldir / date
    try:
        return _open(opts, date_dir, rdir_base, log)
    except OSError as e:
        refused = refused_write(e)
        if refused is None:
            raise
        raise stopped_by_disk(*refused, date_dir.name) from None


def _open(opts: Options, date_dir: Path, rdir_base: str, log: Callable[[str], None]) -> Run:
    assert opts.ldir is not None
    exists = bool(opts.datedir) and state_db(date_dir).exists()
    if opts.datedir and date_dir.exists() and not exists:
        raise StateError("exists but is not a jobmon run (no .jobauto/state.db); pick another "
                         "--datedir", file=str(date_dir))
    where = f"{opts.remote}:" if opts.remote else ""
    lock: Lock | None = None
    specs = None
    if exists:
        lock = take_run(date_dir, where + posixpath.join(rdir_base, date_dir.name))
        clear_stale(opts.ldir / CREATING)  # left by a monitor killed just after creating a run
    else:
        specs = validate_tree(opts.ldir / "init", opts.values())
        check_cycles(opts.ldir / "init", specs)
    created = False
    try:
        transport = host.open_transport(opts)
    except BaseException:
        if lock:
            lock.release()
        raise
    try:
        cluster = host.open_host(opts, transport)
        sched = cluster.adapter.name
        if not exists:
            assert specs is not None
            date_dir, lock = create_run(opts, date_dir.name, specs, sched, rdir_base, log)
            created = lock is not None
            if lock is None:  # made by another monitor meanwhile: resume it, or be refused
                lock = take_run(date_dir, where + posixpath.join(rdir_base, date_dir.name))
        rundir = posixpath.join(rdir_base, date_dir.name)
        remote = Remote(cluster, rundir)
        store = Store(state_db(date_dir))
        with store.reported():
            if not created:
                was = store.get_meta("rundir")
                if was and was != rundir:
                    raise StateError(f"this run lives at {was} on the cluster, not {rundir}; pass "
                                     "the same --rdir as when it started", flag="--rdir")
            if not created:   # flags given on resume override the recorded settings
                with store.transaction():
                    changed = settings.record(store, replace(opts, rdir=rdir_base), time.time(),
                                              "resume")
                if changed:
                    log(f"jobmon: settings changed on resume: {'; '.join(changed)}")
            monitor = Monitor(date_dir, store, remote, Settings(
                maxqsub=opts.maxqsub, lost_after_s=opts.lost_after, fetch=opts.fetch or None,
                values=opts.values(), retries=opts.retries, backoff_s=max(opts.interval, 1.0),
                interval_s=opts.interval,
                max_sched_per_minute=opts.max_scheduler_commands_per_minute,
                max_logins_per_hour=opts.max_logins_per_hour, arrays=opts.arrays,
                sweep_every_s=opts.sweep_every, ahead=opts.ahead), log=log)
            if created:
                log(f"jobmon: new run {date_dir} -> {transport.host}:{rundir} ({sched}, "
                    f"{len(specs or [])} jobs)")
            elif store.get_meta("pushed") != "1":
                log("jobmon: the run's first push to the cluster did not finish (the monitor was "
                    "killed); pushing it again")
            if store.get_meta("pushed") != "1":
                point("push.started")
                rows = sync.tree_rows(date_dir)   # before: an edit made meanwhile is pushed again
                remote.push(date_dir)
                point("push.sent")
                remote.stamp(0)
                with store.transaction():
                    store.record_synced(rows, "pushed", time.time())
                    store.set_meta("pushed", "1")
                point("push.recorded")
        assert lock is not None
        return Run(date_dir, store, remote, monitor, created, lock)
    except BaseException:
        transport.close()
        if lock:
            lock.release()
        if created:  # a run that never reached the cluster leaves nothing behind
            shutil.rmtree(date_dir, ignore_errors=True)
        raise


def recorded_options(run_dir: Path) -> Options:
    """The settings run RUN_DIR (LDIR/DATE) was created with, as changed since by flags given on
    resume and by `jobauto set`: everything jobmon needs to reach and drive the run again
    (rdir, remote, scheduler, maxqsub, fetch, ...), with ldir and datedir naming RUN_DIR.
    Secrets are never recorded (core/config.py `secret`): the caller adds them. Reads only;
    a StateError (exit 2) when RUN_DIR is not a run, or is a run made before settings were
    recorded (resume it once with its flags: that records them)."""
    found = _recorded(run_dir)
    if found is None:
        raise StateError("this run was made before jobmon recorded a run's settings; resume it "
                         "once with all its flags (--rdir, --remote, ...), which records them",
                         file=str(run_dir))
    return found


def _recorded(run_dir: Path) -> Options | None:
    store = open_run_store(run_dir, readonly=True)
    try:
        with store.reported():
            values = settings.read(store)
    finally:
        store.close()
    if values is None:
        return None
    opts = from_recorded(values, f"{state_db(run_dir)} (recorded settings)")
    opts.ldir, opts.datedir = run_dir.parent, run_dir.name
    return opts


def resume_base(ldir: Path | None, datedir: str | None) -> Options | None:
    """What a resume (jobmon --ldir=L --datedir=D) starts from before its flags: the run's
    recorded settings; None when L/D is not an existing run or has none recorded."""
    if ldir is None or not datedir or "/" in datedir or not state_db(ldir / datedir).exists():
        return None
    try:
        return _recorded(ldir / datedir)
    except StateError:
        return None   # a damaged store: the resume refuses it, naming the cluster copy too
