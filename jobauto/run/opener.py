"""Open a run: validate everything, connect, copy init/ to DATE/, push; or resume or fetch."""

from __future__ import annotations

import os
import posixpath
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from jobauto.cluster import host
from jobauto.core.config import Options
from jobauto.core.deps import DEPENDENCY, Graph, marker_path
from jobauto.core.errors import ConfigError, StateError, TreeError
from jobauto.core.layout import lock_path, state_db
from jobauto.core.lock import Lock
from jobauto.run.cycle import Monitor, Settings
from jobauto.run.mirror import Remote
from jobauto.run.tree import copy_init, validate_tree
from jobauto.store import Store


@dataclass
class Run:
    date_dir: Path
    store: Store
    remote: Remote
    monitor: Monitor
    created: bool


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
           sched: str, rundir: str) -> None:
    """Make the run directory complete or not at all: it is built under a hidden name and renamed
    to DATE last, so a monitor killed while creating leaves no half-made run to resume (a
    leftover hidden copy is removed by the next creation of the same DATE)."""
    building = date_dir.with_name(f".{date_dir.name}.jobauto-new")
    shutil.rmtree(building, ignore_errors=True)
    copy_init(init, building, specs, values)
    store = Store(state_db(building))
    try:
        Monitor.create(store, specs, building)
        store.set_meta("scheduler", sched)
        store.set_meta("rundir", rundir)
        store.set_meta("pushed", "0")  # "1" once the whole tree is on the cluster
    finally:
        store.close()
    os.rename(building, date_dir)


def open_run(opts: Options, log=print) -> Run:  # type: ignore[no-untyped-def]
    """Validate, connect and open (or create) the run; raise before changing anything."""
    if opts.ldir is None:
        raise ConfigError("is required (the local campaign directory holding init/)", flag="--ldir")
    rdir_base = remote_dir(opts)
    date = opts.datedir or time.strftime("%Y%m%d-%H%M%S")
    if "/" in date or date in (".", "..", "init", ""):
        raise ConfigError(f"{date!r} is not a run name (a plain directory name like 20261121-100000)",
                          flag="--datedir")
    date_dir = opts.ldir / date
    exists = (state_db(date_dir)).exists()
    if opts.datedir and date_dir.exists() and not exists:
        raise StateError("exists but is not a jobmon run (no .jobauto/state.db); pick another "
                         "--datedir", file=str(date_dir))
    specs = None
    if not exists:
        specs = validate_tree(opts.ldir / "init", opts.values())
        check_cycles(opts.ldir / "init", specs)
    transport = host.open_transport(opts)
    created = False
    try:
        cluster = host.open_host(opts, transport)
        sched = cluster.adapter.name
        rundir = posixpath.join(rdir_base, date)
        remote = Remote(cluster, rundir)
        lock = Lock(lock_path(date_dir))
        if exists:
            lock.check()
        if not exists:
            assert specs is not None
            create(opts.ldir / "init", date_dir, specs, opts.values(), sched, rundir)
            created = True
        store = Store(state_db(date_dir))
        if not created:
            was = store.get_meta("rundir")
            if was and was != rundir:
                raise StateError(f"this run lives at {was} on the cluster, not {rundir}; pass the "
                                 "same --rdir as when it started", flag="--rdir")
        settings = Settings(maxqsub=opts.maxqsub, lost_after_s=opts.lost_after,
                            fetch=opts.fetch or None, values=opts.values(), retries=opts.retries,
                            backoff_s=max(opts.interval, 1.0))
        monitor = Monitor(date_dir, store, remote, settings, log=log)
        if created:
            log(f"jobmon: new run {date_dir} -> {transport.host}:{rundir} ({sched}, "
                f"{len(specs or [])} jobs)")
        elif store.get_meta("pushed") != "1":
            log("jobmon: the run's first push to the cluster did not finish (the monitor was "
                "killed); pushing it again")
        if store.get_meta("pushed") != "1":
            remote.push(date_dir)
            remote.stamp(0)
            store.set_meta("pushed", "1")
        return Run(date_dir, store, remote, monitor, created)
    except BaseException:
        transport.close()
        if created:  # a run that never reached the cluster leaves nothing behind
            shutil.rmtree(date_dir, ignore_errors=True)
        raise
