"""Open a run: validate everything, connect, copy init/ to DATE/, push; or resume or fetch."""

from __future__ import annotations

import os
import posixpath
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Options
from .deps import DEPENDENCY, Graph, marker_path
from .errors import ConfigError, StateError, TransportError, TreeError
from .monitor import Monitor, Settings
from .remote import Remote
from .schedulers import adapter_for, detect_argv, parse_detect
from .store import Store
from .transport.base import Transport
from .tree import STATE_DIR, copy_init, validate_tree


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


def open_transport(opts: Options) -> Transport:
    if opts.remote is None:
        from .transport.local import LocalTransport
        return LocalTransport()
    from .transport.ssh import SSHTransport
    t = SSHTransport(opts.remote, user=opts.user, config_path=opts.ssh_config)
    try:
        t.connect()
    except TransportError as e:
        e.flag = "--remote"
        raise
    return t


def choose_scheduler(opts: Options, transport: Transport) -> str:
    if opts.scheduler != "auto":
        adapter_for(opts.scheduler)  # validates the name
        return opts.scheduler
    from .remote import with_path
    found = parse_detect(transport.run(with_path(detect_argv(), opts.scheduler_bin)))
    if found is None:
        if opts.remote is None:
            return "local"
        raise ConfigError(f"no batch scheduler (qsub, sbatch) found on {opts.remote}; pass "
                          "--scheduler=local to run jobs there without one", flag="--scheduler")
    return found


def check_cycles(root: Path, specs: list) -> None:  # type: ignore[type-arg]
    g = Graph()
    for s in specs:
        g.add(s.name, s.deps)
    cycle = g.find_cycle()
    if cycle:
        raise TreeError("dependency cycle: " + " -> ".join(cycle),
                        file=str(root / marker_path(cycle[0], DEPENDENCY)))


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
    exists = (date_dir / STATE_DIR / "state.db").exists()
    if opts.datedir and date_dir.exists() and not exists:
        raise StateError("exists but is not a jobmon run (no .jobauto/state.db); pick another "
                         "--datedir", file=str(date_dir))
    specs = None
    if not exists:
        specs = validate_tree(opts.ldir / "init", opts.values())
        check_cycles(opts.ldir / "init", specs)
    transport = open_transport(opts)
    created = False
    try:
        sched = choose_scheduler(opts, transport)
        user = getattr(transport, "username", None) if opts.remote else None
        rundir = posixpath.join(rdir_base, date)
        remote = Remote(transport, adapter_for(sched), rundir, user=user, qsub_args=opts.qsub_args,
                        scheduler_bin=opts.scheduler_bin)
        from .daemon import Lock
        lock = Lock(date_dir / STATE_DIR / "lock")
        if exists:
            lock.check()
        if not exists:
            assert specs is not None
            copy_init(opts.ldir / "init", date_dir, specs, opts.values())
            store = Store(date_dir / STATE_DIR / "state.db")
            Monitor.create(store, specs, date_dir)
            store.set_meta("scheduler", sched)
            store.set_meta("rundir", rundir)
            store.set_meta("pushed", "0")  # "1" once the whole tree is on the cluster
            created = True
        else:
            store = Store(date_dir / STATE_DIR / "state.db")
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
        elif store.get_meta("pushed") == "0":
            log("jobmon: the run's first push to the cluster did not finish (the monitor was "
                "killed); pushing it again")
        if store.get_meta("pushed") == "0":
            remote.push(date_dir)
            remote.stamp(0)
            store.set_meta("pushed", "1")
        return Run(date_dir, store, remote, monitor, created)
    except BaseException:
        transport.close()
        if created:  # a run that never reached the cluster leaves nothing behind
            shutil.rmtree(date_dir, ignore_errors=True)
        raise
