"""`jobauto run`: a worker process that claims jobs from a table and runs them.

One process runs `parallel` slots (threads, each with its own connection): a slot claims the best
ready job in one transaction, runs the command with the row's parameters (an argv list, no shell
re-splitting), and records exit code, elapsed time and the tail of stderr in the same transaction
as its next claim. A heartbeat thread advances this worker's counter every `beat_s` seconds and
watches the others: a worker whose counter has not moved for `lost_beats` of its own intervals,
timed on this host's monotonic clock (hosts' clocks are never compared), is lost. On the same
host a worker whose process is gone is lost at once.

A lost worker's running jobs are orphans. A job's command outlives its worker; its wrapper
writes the exit code to TABLE.jobs/ROW.ATTEMPT.rc when it ends (process.py: how a job's command
is started, how it ended, whether it still runs). An orphan whose processes still run on this
host is left alone; one that ended is recorded from that file (so a command that completed is
never run again); one that did not end returns to pending.

Failure modes (docs/tables.md has the full list):
- worker killed -9: its commands finish and are recorded by the next worker that looks;
- node lost: no exit-code file, the jobs run again elsewhere after the heartbeat limit;
- slow but alive (long job, busy filesystem): its counter still moves, its jobs are never taken;
- stopped (SIGSTOP) or partitioned past the limit: declared lost; when it comes back its
  heartbeat finds that out, it kills its jobs and does not record them;
- SIGTERM/SIGINT/SIGHUP, or --max-runtime reached: the running jobs are terminated and returned
  to pending, and the worker stops.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jobauto.core.deps import Graph
from jobauto.core.errors import StateError
from jobauto.core.model import JobState, TableJob
from jobauto.store import TableStore
from jobauto.table.process import (
    done_with,
    error_message,
    host_key,
    job_argv,
    job_processes,
    pid_gone,
    read_outcome,
    remove_files,
    start_command,
)

LOST_BEATS = 4
IDLE_MAX_S = 5.0
KILL_GRACE_S = 5.0


@dataclass
class RunOptions:
    db: Path
    command: list[str]
    parallel: int = 1
    named_args: bool = False
    max_runtime: float | None = None
    margin: float = 0.0
    beat_s: float = 30.0
    lost_beats: int = LOST_BEATS
    label: str = ""
    quiet: bool = False
    unsafe_fs: bool = False       # the user accepts a table on a mount whose locks stay local


@dataclass
class Outcome:
    ran: int = 0
    failed: int = 0
    released: int = 0


def batch_label() -> str:
    env = os.environ
    for job, task in (("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"), ("SLURM_JOB_ID", ""),
                      ("JOB_ID", "SGE_TASK_ID"), ("PBS_JOBID", "PBS_ARRAYID"),
                      ("PBS_JOBID", "PBS_ARRAY_INDEX")):
        if env.get(job):
            t = env.get(task, "") if task else ""
            return f"batch job {env[job]}" + (f" task {t}" if t and t != "undefined" else "")
    return ""


class Worker:
    def __init__(self, opts: RunOptions, *, mono: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.o = opts
        self.mono = mono
        self.wall = wall
        self.t0 = mono()
        self.stop = threading.Event()          # no new claims
        self.lost = threading.Event()          # we were declared lost: record nothing
        self.stop_reason = ""
        self.interrupted = False               # by a signal, or declared lost
        self.signum = 0
        self.lock = threading.Lock()
        self.procs: dict[int, subprocess.Popen[bytes]] = {}   # row -> running process
        self.signalled: set[int] = set()       # pids we terminated
        self.outcome = Outcome()
        self.idle_reasons: list[str] = []
        self.store = TableStore(opts.db, unsafe_fs=opts.unsafe_fs)
        self.table = opts.db.resolve()
        self.jobdir = self.table.parent / (self.table.name + ".jobs")   # exit codes, stderr
        self.columns = self.store.columns()
        self.host = socket.gethostname()
        self.key = host_key()
        self.id = 0
        self.seen: dict[int, tuple[int, float]] = {}   # worker -> (beat, when first seen, mono)

    # -- time ---------------------------------------------------------------------------------
    def time_left(self) -> float | None:
        """Seconds a job may still take: until --max-runtime minus --margin-time."""
        if self.o.max_runtime is None:
            return None
        return self.o.max_runtime - self.o.margin - (self.mono() - self.t0)

    def say(self, msg: str, *, always: bool = False) -> None:
        if always or not self.o.quiet:
            with self.lock:
                print(f"jobauto run[{self.id}]: {msg}", file=sys.stderr, flush=True)

    # -- main ---------------------------------------------------------------------------------
    def run(self) -> int:
        label = self.o.label or batch_label()
        try:
            self.jobdir.mkdir(exist_ok=True)
        except OSError as e:
            raise StateError(f"cannot create the directory for the jobs' exit codes and stderr: "
                             f"{e.strerror}", file=str(self.jobdir)) from None
        self.id = self.store.register(self.host, self.key, os.getpid(), self.o.beat_s,
                                      self.o.parallel, label, self.wall())
        self.say(f"worker {self.id} on {self.host} pid {os.getpid()}, {self.o.parallel} slot(s)"
                 + (f", {label}" if label else ""))
        self.watch(self.store)
        beat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        beat.start()
        slots = [threading.Thread(target=self._slot, name=f"slot-{i}") for i in range(self.o.parallel)]
        for t in slots:
            t.start()
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            self._supervise(slots)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        return self._finish()

    def _supervise(self, slots: list[threading.Thread]) -> None:
        term_at = kill_at = None
        if self.o.max_runtime is not None:
            # a job still running in the margin has overrun its estimate: SIGTERM at half the
            # margin (at most 15 s) before max-runtime, SIGKILL at a quarter, but at least 2 s
            # after the SIGTERM (a job may trap it): with a margin under 4 s that is past max-runtime
            grace = min(self.o.margin / 2, 15.0)
            term_at = self.t0 + self.o.max_runtime - grace
            kill_at = max(self.t0 + self.o.max_runtime - grace / 2, term_at + 2.0)
        while any(t.is_alive() for t in slots):
            for t in slots:
                t.join(0.1)
            now = self.mono()
            if term_at is not None and now >= term_at and not self.stop.is_set():
                self._halt("--max-runtime reached")
            if kill_at is not None and now >= kill_at:
                self._kill(signal.SIGKILL)
            if self.lost.is_set():
                self.interrupted = True
                self._halt("this worker was declared lost (silent too long)")

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.interrupted = True
        self.signum = signum
        self._halt(f"stopped by {signal.Signals(signum).name}")
        threading.Timer(KILL_GRACE_S, self._kill, (signal.SIGKILL,)).start()

    def _halt(self, reason: str) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()
        self._kill(signal.SIGTERM)

    def _kill(self, sig: int) -> None:
        with self.lock:
            procs = list(self.procs.values())
            for p in procs:
                self.signalled.add(p.pid)
        for p in procs:
            try:
                os.killpg(p.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _finish(self) -> int:
        out = self.outcome
        if self.lost.is_set():
            reason = self.stop_reason
        else:
            fits = [r for r in self.idle_reasons if r.startswith(("nothing fits", "time is up"))]
            reason = (self.stop_reason or (fits[0] if fits else "")
                      or self._idle(self.store, self.time_left())
                      or (self.idle_reasons[0] if self.idle_reasons else "stopped"))
            self.idle_reasons.append(reason)
            self.store.stop_worker(self.id, self.wall(), reason)
        counts = self.store.counts()
        total = sum(counts.values())
        self.say(f"{reason}; ran {out.ran} job(s), {out.failed} failed"
                 + (f", {out.released} returned to pending" if out.released else "")
                 + f"; table: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))} of {total}",
                 always=True)
        stuck = any(r.startswith("nothing left to run:") for r in self.idle_reasons)
        if self.signum:
            return 128 + self.signum
        return 1 if self.interrupted or counts.get("error") or stuck else 0

    # -- slots --------------------------------------------------------------------------------
    def _slot(self) -> None:
        store = TableStore(self.o.db, unsafe_fs=self.o.unsafe_fs)
        finished: tuple[int, JobState, int | None, float, str] | None = None
        files: list[str] = []    # the exit-code and stderr files of `finished`, kept until recorded
        idle = 0.05
        try:
            while not self.stop.is_set():
                left = self.time_left()
                if left is not None and left <= 0:
                    self.idle_reasons.append("time is up (--max-runtime minus --margin-time)")
                    break
                job = store.claim(self.id, self.wall(), left, finished)
                finished = None
                remove_files(files)
                if job is None:
                    why = self._idle(store, left)
                    if why:
                        self.idle_reasons.append(why)
                        break
                    self.stop.wait(idle)
                    idle = min(idle * 2, IDLE_MAX_S)
                    continue
                idle = 0.05
                result = self._execute(job)
                base = self._base(job)
                if result is None:
                    n = store.release(self.id, [job.row], self.wall(), self.stop_reason or "stopped")
                    self.outcome.released += n
                    remove_files([base + ".rc", base + ".err"])
                    continue
                finished = (job.row, *result)
                files = done_with(base, result[0] == JobState.ERROR)
            if finished is not None and not self.lost.is_set():
                store.finish(self.id, self.wall(), *finished)
                remove_files(files)
        finally:
            store.close()

    def _idle(self, store: TableStore, left: float | None) -> str:
        """Nothing was claimable: '' to wait for running jobs, or why this worker stops."""
        self.watch(store)
        g = Graph.of_table(store.jobs())
        s = g.summary()
        if s["ready"]:
            if left is not None and not store.claimable(left):
                return (f"nothing fits in the {max(left, 0):.0f} s left: {s['ready']} ready job(s) "
                        f"estimated longer")
            return ""    # another worker took the last ready one a moment ago, or a race: retry
        if s["waiting"] and s["running"]:
            return ""    # running jobs will make waiting ones ready
        if s["done"] == len(g.nodes):
            return f"all {len(g.nodes)} jobs done"
        if not s["waiting"] and not s["blocked"] and not s["error"]:
            return "nothing left to run here: the remaining jobs are running on other workers"
        roots = sorted({r for b in g.blocked for r in g.root_errors(b)})
        shown = ", ".join(roots[:5]) + (" ..." if len(roots) > 5 else "")
        return (f"nothing left to run: {s['error']} in error, {s['blocked']} blocked"
                + (f" (by {shown})" if roots else ""))

    def _execute(self, job: TableJob) -> tuple[JobState, int | None, float, str] | None:
        argv = job_argv(self.o.command, self.columns, job.params, self.o.named_args)
        base = self._base(job)
        self.say(f"start {job.id}: {shlex.join(argv)}")
        t0 = self.mono()
        try:
            with self.lock:
                if self.stop.is_set():
                    return None
                p = start_command(argv, base, self.table, self.id, job)
                self.procs[job.row] = p
        except OSError as e:
            return JobState.ERROR, None, self.mono() - t0, f"could not start the job: {e}"
        rc = p.wait()
        elapsed = self.mono() - t0
        with self.lock:
            del self.procs[job.row]
            ours = p.pid in self.signalled
        err = Path(base + ".err")
        self._relay(err)
        if ours and rc != 0:
            self.say(f"stopped {job.id} after {elapsed:.1f} s: {self.stop_reason}")
            return None
        self.outcome.ran += 1
        if rc == 0:
            self.say(f"done {job.id} in {elapsed:.1f} s")
            return JobState.DONE, 0, elapsed, ""
        self.outcome.failed += 1
        message = error_message(err, rc)
        self.say(f"error {job.id} after {elapsed:.1f} s: {message} (stderr: {err})")
        return JobState.ERROR, rc, elapsed, message

    def _base(self, job: TableJob) -> str:
        """Where an attempt's exit code (.rc) and stderr (.err) go."""
        return str(self.jobdir / f"{job.row}.{job.attempts}")

    def _relay(self, err: Path) -> None:
        """Copy a finished job's stderr to ours, so that the worker's log shows it."""
        try:
            if err.stat().st_size == 0:
                return
            with open(err, "rb") as f, self.lock:
                out = getattr(sys.stderr, "buffer", None)
                while chunk := f.read(1 << 16):
                    if out is not None:
                        out.write(chunk)
                    else:
                        sys.stderr.write(chunk.decode("utf-8", "replace"))
                sys.stderr.flush()
        except OSError:
            pass

    # -- heartbeat and recovery ----------------------------------------------------------------
    def _heartbeat(self) -> None:
        store = TableStore(self.o.db, unsafe_fs=self.o.unsafe_fs)
        try:
            while not self.stop.wait(self.o.beat_s):
                if not store.beat(self.id):
                    self.lost.set()
                    return
                self.watch(store)
        finally:
            store.close()

    def watch(self, store: TableStore) -> None:
        """Declare lost the workers that are gone or silent, then resolve their jobs: still
        running here (left alone), ended (recorded from their exit-code file) or not (pending)."""
        now = self.mono()
        for w in store.workers(["alive"]):
            if w.id == self.id:
                continue
            if w.host_key == self.key and pid_gone(w.pid):
                why = f"process {w.pid} on {w.host} is gone"
            else:
                seen = self.seen.get(w.id)
                if seen is None or seen[0] != w.beat:
                    self.seen[w.id] = (w.beat, now)
                    continue
                silent = now - seen[1]
                if silent <= self.o.lost_beats * w.beat_s:
                    continue
                why = (f"heartbeat {w.beat} unchanged for {silent:.0f} s, more than "
                       f"{self.o.lost_beats} of its {w.beat_s:g} s beats")
            if store.declare_lost(w.id, w.beat, self.wall(), why):
                self.say(f"worker {w.id} lost: {why}", always=True)
        here: dict[int, set[str]] | None = None
        for job, key in store.orphans():
            if key == self.key:
                if here is None:
                    here = job_processes(self.table)
                if job.id in here.get(job.worker or -1, set()):
                    continue   # its command is still running on this host: never taken
            base = self._base(job)
            outcome = read_outcome(base)
            why = f"its worker {job.worker} is gone"
            if store.resolve_orphan(job, self.wall(), why, outcome):
                what = "returned to pending" if outcome is None else f"recorded {outcome[0].value}"
                self.say(f"{job.id}: {what} ({why})")
                if outcome is not None:
                    self._relay(Path(base + ".err"))
                remove_files(done_with(base, outcome is not None and outcome[0] == JobState.ERROR))
