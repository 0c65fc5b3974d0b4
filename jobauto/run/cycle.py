"""One monitor cycle, tick(now): learn, mark, evaluate, submit, write quelist. Never sleeps.

Monitor holds the run's state and does the bookkeeping (the one state change, move; commit);
tick hands each step to the module that owns it: pickup (new jobs), endings (verdicts),
requests (resets and retries), submitting (exactly-once submission).
"""

from __future__ import annotations

import heapq
import posixpath
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jobauto.core.deps import FAILED, Graph, marker_path
from jobauto.core.errors import TransportError
from jobauto.core.faults import point
from jobauto.core.model import Ending, Job, JobState, QueueSnapshot, Verdict
from jobauto.core.spent import Spent
from jobauto.core.states import check_move, count_line
from jobauto.run import ahead, arrays, endings, pickup, quelist, requests, submitting
from jobauto.run.budget import Budget
from jobauto.run.mirror import Observation, Remote
from jobauto.run.tree import JobSpec
from jobauto.store import Store

WARNING_LINES = 10   # of warnings shown a cycle; the store's events keep every one


@dataclass
class Settings:
    maxqsub: int = 10
    lost_after_s: float = 300.0
    fetch: list[str] | None = None
    values: dict[str, str] = field(default_factory=dict)
    retries: int = 0          # automatic retries of a job that failed (RETRYABLE verdicts)
    backoff_s: float = 30.0   # the first pause after a refused submission (the run's --interval)
    interval_s: float | None = None  # seconds between cycles (--interval): the loop reads it live
    max_sched_per_minute: int | None = None   # the caps (run/budget.py); None: none
    max_logins_per_hour: int | None = None
    arrays: bool | None = None  # --arrays: True on, False off, None those `jobauto render` made
    sweep_every_s: float = 900.0  # the full look at both trees (--sweep-every; docs/decisions.md)
    ahead: int = 10   # --ahead: jobs that may wait in the queue on a running one (run/ahead.py)


@dataclass
class TickResult:
    counts: dict[str, int]
    finished: bool = False
    exit_code: int | None = None
    notes: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    paused: str = ""  # why nothing is being submitted, when that is the case
    failed: list[str] = field(default_factory=list)  # jobs whose failure became final this tick

    @property
    def count_line(self) -> str:
        line = count_line(self.counts)
        return f"{line} (not submitting: {self.paused})" if self.paused else line


class Monitor:
    """The state of one run and the cycle that advances it."""

    def __init__(self, run_dir: Path, store: Store, remote: Remote, settings: Settings,
                 log: Callable[[str], None] = lambda s: None) -> None:
        self.run_dir = run_dir
        self.store = store
        self.remote = remote
        self.settings = settings
        self.log = log
        self.jobs: dict[str, Job] = {}
        self.running: set[str] = set()     # names of running jobs: per-cycle work stays small
        self.graph = Graph()
        self.heap: list[tuple[int, int, str]] = []
        self.lines: dict[str, str] = {}
        self.order = quelist.Text([])   # quelist's lines, in the order jobs became ready
        self.dirty: set[str] = set()
        self.events: list[tuple[float, str, str, str]] = []
        self.new_files: set[str] = set()
        self.dir_mtimes: dict[str, int] = {}
        self.tag = store.get_meta("tag") or ""
        self.scan_acked = int(store.get_meta("scan_acked", "0") or 0)
        # the last full sweep (run/mirror.py): its scan, and when (None: not yet this run; a run
        # made before sweeps existed scanned its whole tree every cycle)
        self.swept_gen = int(store.get_meta("swept_gen", str(self.scan_acked)) or 0)
        swept_at = store.get_meta("swept_at")
        self.swept_at: float | None = float(swept_at) if swept_at else None
        self.settling: dict[str, float] = {}     # jobs that left running by no marker: since
        self.batch_seq = int(store.get_meta("batch_seq", "0") or 0)
        self.ready_seq = int(store.get_meta("ready_seq", "0") or 0)
        self.quelist_stale = True
        self.held: set[str] = set()              # running jobs the scheduler holds
        self.ahead: set[str] = set()             # running jobs queued after one not done yet
        self.requeue: dict[str, str] = {}        # ahead jobs to submit again without it: why
        self.queue_errors: dict[str, float] = {}  # running jobs in a scheduler error state (Eqw): since
        self.acct_seen: dict[str, Ending] = {}   # accounting records of jobs missing from the queue
        self.refine: dict[str, float] = {}       # killed-by-signal jobs to refine from accounting: since
        self.acct_asked: set[str] = set()        # the ids this cycle's accounting query named
        self.to_retry: set[str] = set()
        self.to_cancel: dict[str, str] = {}      # name -> why it is removed from the queue
        self.warnings: list[str] = []            # this cycle's, about what the cluster sent
        self.quelist_error = ""
        self.closed_requests: list[tuple[int, str]] = []
        self.failing: list[str] = []             # moved to error, not yet told (run/notify.py)
        self.paused_until = 0.0
        self.pause_reason = ""
        self.backoff_s = 0.0
        self.submitting = True                   # False: a cycle that submits nothing (cancel alone)
        self.stopping = False                    # the whole run was cancelled: end once nothing runs
        self.cancelled: set[str] = set()         # jobs in error because they were cancelled
        # whether the scheduler keeps accounting we can read (the local one does not)
        self.has_acct = remote.adapter.acct_argv(["0"]) is not None
        self.queue_listed = False   # whether the last poll listed the queue (the budget's turns)
        self.budget = Budget(remote.transport.usage, Spent.from_meta(store.get_meta),
                             settings.max_sched_per_minute, settings.max_logins_per_hour)
        for job in store.load_jobs():
            self.add(job)
        self.next_id = max((j.id for j in self.jobs.values()), default=0)
        for path in store.load_files():
            self.graph.file_seen(path)
        self._assign_ready_seq()
        self.order = quelist.Text(sorted((n for n, j in self.jobs.items() if j.ready_seq is not None),
                                         key=lambda n: self.jobs[n].ready_seq or 0))
        ahead.refresh(self)
        for name in self.jobs:
            self.lines[name] = self._line(self.jobs[name])
        pickup.index_dirs(self)

    # -- creation ----------------------------------------------------------------------------
    @staticmethod
    def create(store: Store, specs: list[JobSpec], run_dir: Path) -> None:
        """Record the jobs of a new run (markers already in the tree count: they were copied),
        and with them, last, the creation record: a store without it was never made whole."""
        with store.transaction():
            store.set_meta("tag", submitting.b36(secrets.randbelow(36 ** 4)).rjust(4, "0"))
            jobs = []
            for i, spec in enumerate(specs, 1):
                job = Job(i, spec.name, deps=spec.deps, priority=spec.priority, estimate_h=spec.estimate_h)
                if (run_dir / marker_path(spec.name)).exists():
                    failed = run_dir / marker_path(spec.name, FAILED)
                    job.state = JobState.ERROR if failed.exists() else JobState.DONE
                    job.reason = "failed marker was already in init/" if failed.exists() else ""
                jobs.append(job)
            store.save_jobs(jobs)
            store.set_meta("created", str(len(jobs)))

    def add(self, job: Job) -> None:
        """Take a job into the run's state and its dependency graph."""
        self.jobs[job.name] = job
        if job.state == JobState.ERROR and job.verdict == Verdict.CANCELLED.value:
            self.cancelled.add(job.name)
        self.graph.add(job.name, job.deps, job.state)
        if job.state == JobState.RUNNING:
            self.running.add(job.name)

    def running_jobs(self) -> list[Job]:
        """List the running jobs, in name order."""
        return [self.jobs[n] for n in sorted(self.running)]

    # -- the cycle ---------------------------------------------------------------------------
    def restart(self, now: float) -> None:
        """Mark jobs that were running when a previous monitor stopped (quelist spre@)."""
        for job in self.running_jobs():
            job.spre_at = now
            self.touch(job)
        self.commit()

    def tick(self, now: float) -> TickResult:
        """Advance the run by one cycle: observe, learn, commit, act, submit; a login past the
        --max-logins-per-hour cap is refused while it runs (run/budget.py)."""
        usage = self.remote.transport.usage
        usage.gate = self.budget.gate(now)
        try:
            return self._tick(now)
        finally:
            usage.gate = None

    def _tick(self, now: float) -> TickResult:
        notes: list[str] = []
        if self.swept_at is None:   # a new run was just pushed: nothing to sweep for yet
            self.swept_at = now
        sweep = now - self.swept_at >= self.settings.sweep_every_s
        try:
            pickup.pick_up_local(self, now, full=sweep)
            obs = self._observe(now, notes, sweep)
        except TransportError as e:
            notes.append(f"cluster unreachable, will retry: {e.message}")
            return self._finish(now, notes, submitted=False)
        point("cycle.observed")
        self._learn(obs, now)
        if sweep:
            self.swept_gen, self.swept_at = self.scan_acked + 1, now
        self.commit(scan_acked=self.scan_acked + 1)
        point("cycle.learned")
        try:
            self._act(now, notes, obs.queue)
        except TransportError as e:
            self.commit()
            notes.append(f"cluster unreachable, will retry: {e.message}")
            return self._finish(now, notes, submitted=False)
        if self.submitting and not self.stopping:
            submitting.submit_ready(self, now, notes)
            submitting.submit_ahead(self, now, notes)
        return self._finish(now, notes, submitted=True)

    def _observe(self, now: float, notes: list[str], sweep: bool) -> Observation:
        """Ask the cluster, in one round trip, only what the running jobs need: their markers
        (and those of jobs whose verdict may still be overruled by one), the watched files, the
        queue and accounting as far as the scheduler-command budget allows (else they wait);
        the whole tree only at the sweep."""
        running_jobs = self.running_jobs()
        unconfirmed = [j for j in running_jobs if j.unconfirmed]
        keys = sorted({k for j in unconfirmed for k in (arrays.submitted_name(j.token), j.batch or "")
                       if k})
        running = self.graph.counts[JobState.RUNNING] > 0
        asked = [j for j in running_jobs if j.missing_since is not None]
        asked += [self.jobs[n] for n in self.refine]
        acct = sorted({j.sched_id or "" for j in asked} - {""})
        host = self.remote.host
        queue = host.calls("queue") if running else 0
        wanted = queue + (host.calls("acct", len(acct)) if acct else 0)
        allowed = self.budget.polls_allowed(now, wanted)
        if allowed < wanted:
            # the queue and the accounting take turns, so that neither starves the other at a
            # short --interval: the queue first, unless it was the last poll and records wait
            acct_first = bool(acct) and self.queue_listed
            running = running and allowed >= queue and not acct_first
            left = allowed - (queue if running else 0)
            while acct and host.calls("acct", len(acct)) > left:
                acct = acct[:-1]
            if note := self.budget.waiting(now, "queue listings and accounting queries", "polls"):
                notes.append(note)
        self.queue_listed = running
        self.acct_asked = set(acct)
        for name, since in list(self.settling.items()):
            job = self.jobs[name]
            if (now - since > self.settings.lost_after_s or job.state != JobState.ERROR
                    or job.evidence.startswith("marker")):
                del self.settling[name]
        names = self.running | set(self.refine) | set(self.settling)
        look = sorted({posixpath.dirname(n) for n in names})
        try:
            return self.remote.observe(self.scan_acked + 1, max(self.scan_acked - 1, 0),
                                       self.graph.ask_files(), running, keys, acct, look=look,
                                       sweep_base=max(self.swept_gen - 1, 0), sweep=sweep)
        finally:
            self.budget.charge(now, polls=True)

    def _learn(self, obs: Observation, now: float) -> None:
        """Take in what the cluster said: files, markers, accounting, the queue, lost answers."""
        for text in obs.warnings:
            self.warn(now, "", text)
        pickup.take_files(self, obs.files, now, lambda job, mtime, failed:
                          endings.read_markers(self, job, mtime, now, failed))
        for path in obs.existing:
            if path not in self.graph.files:
                self.graph.file_seen(path)
                self.new_files.add(path)
        if obs.endings is not None:
            endings.apply_accounting(self, obs.endings, now)
        elif obs.acct_error:
            self.events.append((now, "", "accounting-unknown", obs.acct_error))
        ahead.refresh(self)
        if obs.queue is not None:
            endings.check_queue(self, obs, now)
        submitting.reconcile(self, obs, now)
        self._assign_ready_seq()

    def _act(self, now: float, notes: list[str], queue: QueueSnapshot | None) -> None:
        """Make the changes on the cluster decided this cycle: deletions, requests, retries."""
        if self.to_cancel and self.budget.room(now) != 0:
            endings.delete_stuck(self, now)
        requests.apply_requests(self, now, notes)
        ahead.unhook(self, now, queue)   # after the requests: a cancel's ahead dependents go now
        requests.apply_retries(self, now)
        self._assign_ready_seq()
        self.commit()

    # -- state changes -----------------------------------------------------------------------
    def move(self, job: Job, state: JobState, now: float, kind: str, detail: str) -> None:
        """Change a job's state (the only place that does), recording the event that did."""
        check_move(job.state.value, state.value, kind)
        if state == JobState.ERROR and job.state != JobState.ERROR:
            self.failing.append(job.name)
        self.graph.set_state(job.name, state)
        if state == JobState.RUNNING:
            self.running.add(job.name)
        else:
            if job.state == JobState.RUNNING:   # a marker may still come and overrule
                self.settling[job.name] = now
            self.running.discard(job.name)
        if state == JobState.ERROR and kind == Verdict.CANCELLED.value:
            self.cancelled.add(job.name)
        else:
            self.cancelled.discard(job.name)
        if state == JobState.ERROR:
            job.reason = detail
            job.failed_at = job.failed_at or now
        elif state == JobState.PENDING:
            job.reason = ""
        job.state = state
        self.events.append((now, job.name, kind, detail))
        self.touch(job)

    def warn(self, now: float, job: str, text: str) -> None:
        """Record a problem with what the cluster or a job sent: an event, and a note this cycle."""
        self.events.append((now, job, "warning", text))
        self.warnings.append(text)

    def _warning_lines(self) -> list[str]:
        lines, self.warnings = self.warnings, []
        if len(lines) > WARNING_LINES:
            lines = lines[:WARNING_LINES - 1] + [f"... and {len(lines) - WARNING_LINES + 1} more "
                                                 f"warnings this cycle ({len(lines)} in all)"]
        return lines

    def touch(self, job: Job) -> None:
        """Mark a job for the next commit."""
        self.dirty.add(job.name)

    def _assign_ready_seq(self) -> None:
        fresh = [n for n in self.graph.changed if n in self.graph.ready]
        for name in sorted(fresh, key=lambda n: self.jobs[n].id):
            job = self.jobs[name]
            quelist.place(self, job)
            heapq.heappush(self.heap, (-job.priority, job.ready_seq or 0, name))
        self.graph.changed.clear()

    def commit(self, **meta: int) -> None:
        """Store the changed jobs, new files, events and closed requests in one transaction."""
        with self.store.transaction():
            self.store.save_jobs(self.jobs[n] for n in self.dirty)
            if self.new_files:
                self.store.add_files(self.new_files)
            if self.events:
                self.store.add_events(self.events)
            for k, v in meta.items():
                self.store.set_meta(k, str(v))
            for rid, result in self.closed_requests:
                self.store.close_request(rid, self.events[-1][0] if self.events else 0.0, result)
            self.store.set_meta("ready_seq", str(self.ready_seq))
            if self.budget.now:   # before the first tick: charged at it
                self.budget.charge(self.budget.now)
            for key, value in self.budget.total().to_meta().items():
                self.store.set_meta(key, value)
            self.store.set_meta("swept_gen", str(self.swept_gen))
            if self.swept_at is not None:
                self.store.set_meta("swept_at", repr(self.swept_at))
        if "scan_acked" in meta:
            self.scan_acked = meta["scan_acked"]
        for n in self.dirty:
            line = self._line(self.jobs[n])
            if self.lines.get(n) != line:
                self.lines[n] = line
                self.order.changed(n)
                self.quelist_stale = True
        self.dirty.clear()
        self.new_files.clear()
        self.events.clear()
        self.closed_requests.clear()

    # -- output ------------------------------------------------------------------------------
    def _line(self, job: Job) -> str:
        queue = ("held" if job.name in self.held else "error" if job.name in self.queue_errors
                 else "ahead" if job.name in self.ahead else "")
        return quelist.job_line(job, queue)

    def _finish(self, now: float, notes: list[str], submitted: bool) -> TickResult:
        notes[:0] = self._warning_lines()
        quelist.write(self, now, notes)
        counts = self.graph.summary()
        ahead.count(self, counts)   # queued-ahead, shown apart from running
        if self.held:
            counts["held"] = len(self.held)
        if self.queue_errors:
            counts["queue-error"] = len(self.queue_errors)
        if self.cancelled:  # shown apart from the errors (docs/verdicts.md "cancelled")
            counts["error"] -= len(self.cancelled)
            counts["cancelled"] = len(self.cancelled)
        if self.stopping:   # the whole run was cancelled: what is ready waits for a resume
            counts["ready"] = 0
        result = TickResult(counts, notes=notes, failed=endings.final_failures(self))
        if now < self.paused_until and counts["ready"]:
            result.paused = f"{self.pause_reason}; next try at {quelist.fmt_time(self.paused_until)}"
        elif not submitted and counts["ready"] and notes:
            result.paused = notes[-1]
        # verdicts not final yet, or files not looked for yet (a job that only now waits for them)
        settling = self.refine or self.to_retry or self.to_cancel or self.graph.unasked
        if submitted and not self.running and counts["ready"] == 0 and not settling:
            result.finished = True
            ok = counts["done"] == len(self.jobs)
            result.exit_code = 0 if ok else 1
            if not ok:
                result.summary = endings.stuck_summary(self)
        return result
