"""The loop around tick: lock, signals, fetch at the end; python-daemon only behind --daemon.
start() is all of jobmon after its options are read. A monitor that cannot go on (the local
disk refuses a write, the store is damaged) stops with one message naming the file and what to
do (exit 2); a --daemon run removes its pid file when it ends, however it ends."""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from jobauto.core.config import Options
from jobauto.core.errors import JobautoError, TransportError, refused_write, stopped_by_disk
from jobauto.core.layout import log_path, pid_path
from jobauto.run import transfer
from jobauto.run.cycle import Monitor, TickResult
from jobauto.run.notify import Notifier, Target, targets
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
         max_ticks: int | None = None, notifier: Notifier | None = None) -> int:
    """Tick every interval until the run finishes, a signal arrives, or max_ticks ran. The
    interval is the monitor's (`jobauto set interval=S` changes it live; INTERVAL_S until it
    has one), and a request (cancel, set, reset) waiting in the store starts the next cycle
    early: it is looked for every POLL_S seconds, a read of the local store. After each tick,
    NOTIFIER's targets are told what happened in it."""
    ticks = 0
    while True:
        started = time.monotonic()
        now = clock()
        result = monitor.tick(now)
        for line in fmt_result(result):
            emit(line)
        ticks += 1
        if notifier and result.failed:
            notifier.failed(result.failed, result.counts, now)
        if result.finished:
            note = ""
            try:
                fetch()
            except TransportError as e:
                note = (f"jobmon: could not fetch results ({e.message}); fetch them later with "
                        "--datedir=... --initonly")
                emit(note)
            if notifier:
                notifier.ended(result.exit_code or 0, result.summary, result.counts, clock(), note)
            return result.exit_code or 0
        if stopper.event.is_set():
            return _signalled(stopper, emit, notifier, result, clock())
        if max_ticks is not None and ticks >= max_ticks:
            return 75  # EX_TEMPFAIL: the run goes on; call again
        _wait(monitor, interval_s, started, stopper)
        if stopper.event.is_set():
            return _signalled(stopper, emit, notifier, result, clock())


def _signalled(stopper: Stopper, emit: Callable[[str], None], notifier: Notifier | None,
               last: TickResult, now: float) -> int:
    emit(f"jobmon: stopped by signal {stopper.signum}; resume with --datedir")
    code = 128 + (stopper.signum or 15)
    if notifier:
        notifier.stopped(f"stopped by signal {stopper.signum}", last.counts, now, code)
    return code


POLL_S = 2.0   # how often a waiting monitor looks for requests (jobauto cancel/set/reset)


def _wait(monitor: Monitor, interval_s: float, started: float, stopper: Stopper) -> None:
    """Until the next cycle is due, a signal arrives, or a request waits in the store."""
    while not stopper.event.is_set():
        every = monitor.settings.interval_s or interval_s
        left = every - (time.monotonic() - started)
        if left <= 0:
            return
        if stopper.event.wait(min(left, POLL_S)):
            return
        if monitor.store.has_open_requests():
            return


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


@contextmanager
def stopping_cleanly(run_dir: Path) -> Iterator[None]:
    """A write the local disk refused (full, over quota, read-only) becomes one message naming
    the file and what to do, then how to resume RUN_DIR."""
    try:
        yield
    except OSError as e:
        refused = refused_write(e)
        if refused is None:
            raise
        raise stopped_by_disk(*refused, run_dir.name) from None


def fetch_results(run: Run, opts: Options, say: Callable[[str], None] = print) -> None:
    """The end-of-run fetch (run/transfer.py: markers, the scheduler's output files, --fetch
    globs; --fetch-all everything; never over a local change); a disk that refused the files
    (rsync says so) is an OSError, as a local write's is."""
    try:
        transfer.fetch_run(run.remote, run.date_dir, run.store, run.monitor.settings.fetch or [], opts.fetch_all, say)
    except TransportError as e:
        # ("Permission denied" is no evidence: ssh says it too, of a login)
        for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            if os.strerror(code) in e.message:
                raise OSError(code, os.strerror(code), str(run.date_dir)) from None
        raise


def start(opts: Options, say: Callable[[str], None]) -> int:
    """Open (or create) the run; with --initonly initialise or fetch and stop, else serve it.
    The notification targets are checked first: a bad one starts nothing."""
    told = targets(opts)
    transfer.check_globs(opts.fetch, "--fetch")   # before anything: not at the end of the run
    run = open_run(opts, log=say)
    if opts.initonly:
        try:
            with stopping_cleanly(run.date_dir), run.store.reported():
                if run.created:
                    say(f"jobmon: initialised {run.date_dir} (--initonly: no job submitted)")
                else:
                    fetch_results(run, opts, say)
                    say(f"jobmon: fetched results into {run.date_dir}")
        finally:
            run.remote.transport.close()
            run.lock.release()
        return 0
    return serve(opts, run, say, told)


def serve(opts: Options, run: Run, say: Callable[[str], None],
          told: list[Target] | None = None) -> int:
    """Drive RUN to its end: detach first with --daemon (and open the run again in the detached
    process), hold the run's lock, stop cleanly on a signal, fetch the results at the end."""
    if not opts.daemon:
        return _serve(opts, run, say, told or [])
    date_dir = run.date_dir
    run.remote.transport.close()
    run.store.close()
    run.lock.release()
    say(f"jobmon: detaching; log: {log_path(date_dir)}")
    try:
        with stopping_cleanly(date_dir):
            daemonize(date_dir)
        say(f"jobmon: detached: pid {os.getpid()} (also in {pid_path(date_dir)} while it runs)")
        opts.datedir = date_dir.name
        return _serve(opts, open_run(opts, log=say), say, told or [])
    finally:
        remove_pid_file(date_dir)


def notifier_for(run: Run, told: list[Target], say: Callable[[str], None],
                 timeout_s: float) -> Notifier:
    """A Notifier for RUN: its log is jobmon's, its records go to the run's store."""
    def record(now: float, kind: str, detail: str) -> None:
        with run.store.reported(), run.store.transaction():
            run.store.add_events([(now, "", kind, detail)])
    return Notifier(told, run.date_dir, run.monitor.jobs, say, record, timeout_s)


def remove_pid_file(run_dir: Path) -> None:
    """Remove the pid file this process wrote (never another monitor's)."""
    path = pid_path(run_dir)
    try:
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


def _serve(opts: Options, run: Run, say: Callable[[str], None], told: list[Target]) -> int:
    stopper = Stopper()
    stopper.install()
    notifier = notifier_for(run, told, say, opts.notify_timeout) if told else None
    try:
        with stopping_cleanly(run.date_dir), run.store.reported():
            if not run.created:
                run.monitor.restart(time.time())
                say(f"jobmon: resuming {run.date_dir}")
            return loop(run.monitor, interval_s=opts.interval, stopper=stopper, emit=say,
                        fetch=lambda: fetch_results(run, opts, say),
                        max_ticks=1 if opts.once else None, notifier=notifier)
    except JobautoError as e:  # the exit-2 stops: the local disk refused a write, a damaged store
        if notifier:
            notifier.stopped(e.describe(), run.monitor.graph.summary(), time.time(), e.exit_code)
        raise
    finally:
        run.remote.transport.close()
        run.lock.release()
