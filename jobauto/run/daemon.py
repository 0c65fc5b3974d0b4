"""The loop around tick: lock, signals, fetch at the end; python-daemon only behind --daemon.
start() is all of jobmon after its options are read."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from jobauto.core.config import Options
from jobauto.core.errors import TransportError
from jobauto.core.layout import lock_path, log_path, pid_path
from jobauto.core.lock import Lock
from jobauto.run.cycle import Monitor, TickResult
from jobauto.run.opener import Run, open_run


class Stopper:
    """Signal handlers only set a flag; the loop finishes its cycle and exits."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.signum = signum
        self.event.set()


def fmt_result(r: TickResult) -> list[str]:
    out = [r.count_line] + [f"jobmon: {n}" for n in r.notes]
    if r.finished:
        if r.exit_code == 0:
            out.append("jobmon: all jobs done")
        else:
            out.append("jobmon: the run cannot finish; these jobs will not complete:")
            out += ["  " + s for s in r.summary]
    return out


def loop(monitor: Monitor, *, interval_s: float, stopper: Stopper, emit: Callable[[str], None],
         fetch: Callable[[], None], clock: Callable[[], float] = time.time,
         max_ticks: int | None = None) -> int:
    """Tick every interval until the run finishes, a signal arrives, or max_ticks ran."""
    ticks = 0
    while True:
        started = time.monotonic()
        result = monitor.tick(clock())
        for line in fmt_result(result):
            emit(line)
        ticks += 1
        if result.finished:
            try:
                fetch()
            except TransportError as e:
                emit(f"jobmon: could not fetch results ({e.message}); fetch them later with "
                     "--datedir=... --initonly")
            return result.exit_code or 0
        if stopper.event.is_set():
            emit(f"jobmon: stopped by signal {stopper.signum}; resume with --datedir")
            return 128 + (stopper.signum or 15)
        if max_ticks is not None and ticks >= max_ticks:
            return 75  # EX_TEMPFAIL: the run goes on; call again
        stopper.event.wait(max(0.0, interval_s - (time.monotonic() - started)))
        if stopper.event.is_set():
            emit(f"jobmon: stopped by signal {stopper.signum}; resume with --datedir")
            return 128 + (stopper.signum or 15)


def daemonize(run_dir: Path) -> None:
    """Detach with python-daemon; stdout/stderr go to the run's log, the pid to a pid file."""
    import daemon  # heavy import, only here

    log = open(log_path(run_dir), "a", buffering=1)  # noqa: SIM115 - lives as long as the daemon
    # keep the user's umask, not a fixed one: without --remote the jobs are started by this
    # process and inherit it, and their results must be as readable as the user made them
    mask = os.umask(0o077)
    os.umask(mask)
    ctx = daemon.DaemonContext(working_directory=os.getcwd(), umask=mask, stdout=log, stderr=log,
                               detach_process=True)
    ctx.open()
    pid_path(run_dir).write_text(f"{os.getpid()}\n")
    sys.stdout = log
    sys.stderr = log


def start(opts: Options, say: Callable[[str], None]) -> int:
    """Open (or create) the run; with --initonly initialise or fetch and stop, else serve it."""
    run = open_run(opts, log=say)
    if opts.initonly:
        if run.created:
            say(f"jobmon: initialised {run.date_dir} (--initonly: no job submitted)")
        else:
            run.remote.fetch(run.date_dir, opts.fetch or None)
            say(f"jobmon: fetched results into {run.date_dir}")
        run.remote.transport.close()
        return 0
    return serve(opts, run, say)


def serve(opts: Options, run: Run, say: Callable[[str], None]) -> int:
    """Drive RUN to its end: detach first with --daemon (and open the run again in the detached
    process), hold the run's lock, stop cleanly on a signal, fetch the results at the end."""
    if opts.daemon:
        date = run.date_dir.name
        run.remote.transport.close()
        run.store.close()
        say(f"jobmon: detaching; log: {log_path(run.date_dir)}")
        daemonize(run.date_dir)
        opts.datedir = date
        run = open_run(opts, log=say)
    lock = Lock(lock_path(run.date_dir))
    lock.acquire()
    stopper = Stopper()
    stopper.install()
    try:
        if not run.created:
            run.monitor.restart(time.time())
            say(f"jobmon: resuming {run.date_dir}")
        return loop(run.monitor, interval_s=opts.interval, stopper=stopper, emit=say,
                    fetch=lambda: run.remote.fetch(run.date_dir, opts.fetch or None),
                    max_ticks=1 if opts.once else None)
    finally:
        run.remote.transport.close()
        lock.release()
