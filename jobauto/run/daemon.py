"""The loop around tick: lock, signals, fetch at the end; python-daemon only behind --daemon."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from jobauto.core.errors import TransportError
from jobauto.run.cycle import Monitor, TickResult


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


def daemonize(state_dir: Path) -> None:
    """Detach with python-daemon; stdout/stderr go to the run's log, the pid to a pid file."""
    import daemon  # heavy import, only here

    log = open(state_dir / "jobmon.log", "a", buffering=1)  # noqa: SIM115 - lives as long as the daemon
    ctx = daemon.DaemonContext(working_directory=os.getcwd(), umask=0o022, stdout=log, stderr=log,
                               detach_process=True)
    ctx.open()
    (state_dir / "jobmon.pid").write_text(f"{os.getpid()}\n")
    sys.stdout = log
    sys.stderr = log
