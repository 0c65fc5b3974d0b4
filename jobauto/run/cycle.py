"""One monitor cycle, tick(now): learn, mark, evaluate, submit, write quelist. Never sleeps.

Exactly-once submission: a job's intent (state running, a token unique to the run, its batch)
is committed before the batch leaves; the batch journals each outcome on the cluster before
answering. An answer that never arrives is recovered from that journal, or from the scheduler's
queue by the token, before the job may be submitted again. docs/failure-modes.md has the cases.
"""

from __future__ import annotations

import heapq
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jobauto.core.deps import DEPENDENCY, FAILED, FINISHED, Graph, job_of_marker, marker_path
from jobauto.core.errors import JobautoError, TransportError
from jobauto.core.files import write_atomic
from jobauto.core.layout import STATE_DIR
from jobauto.core.model import (
    MEANING,
    CommandResult,
    Derived,
    Ending,
    Job,
    JobState,
    SubmitResult,
    Verdict,
    select_for_reset,
)
from jobauto.core.scripts import script_directive
from jobauto.core.states import count_line
from jobauto.run import quelist
from jobauto.run.mirror import Observation, Remote
from jobauto.run.tree import (
    JobSpec,
    check_placeholders,
    fill_job,
    iter_job_files,
    parse_dependency,
)
from jobauto.store import Store

START_GRACE_S = 30.0      # a batch that has not journaled its start by then never started
BATCH_STALE_S = 600.0     # a batch that started but never ended: ask the scheduler
SUMMARY_LINES = 40
BACKOFF_MAX_S = 600.0     # a refused submission pauses submitting, doubling up to this

# Worth another attempt with --retries; a cancel was deliberate and a rejected script stays invalid.
RETRYABLE = {Verdict.FAILED, Verdict.WALLTIME, Verdict.OOM, Verdict.NODE_FAILURE, Verdict.VANISHED}
# A failed marker with one of these exit codes (killed by a signal) is refined from accounting.
SIGNAL_EXIT = 128


def b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


@dataclass
class Settings:
    maxqsub: int = 10
    lost_after_s: float = 300.0
    fetch: list[str] | None = None
    values: dict[str, str] = field(default_factory=dict)
    retries: int = 0          # automatic retries of a job that failed (RETRYABLE verdicts)
    backoff_s: float = 30.0   # the first pause after a refused submission (the run's --interval)


@dataclass
class TickResult:
    counts: dict[str, int]
    finished: bool = False
    exit_code: int | None = None
    notes: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    paused: str = ""  # why nothing is being submitted, when that is the case

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
        self.order: list[str] = []
        self.dirty: set[str] = set()
        self.events: list[tuple[float, str, str, str]] = []
        self.new_files: set[str] = set()
        self.dir_mtimes: dict[str, int] = {}
        self.tag = store.get_meta("tag") or ""
        self.scan_acked = int(store.get_meta("scan_acked", "0") or 0)
        self.batch_seq = int(store.get_meta("batch_seq", "0") or 0)
        self.ready_seq = int(store.get_meta("ready_seq", "0") or 0)
        self.quelist_stale = True
        self.held: set[str] = set()              # running jobs the scheduler holds
        self.queue_errors: dict[str, float] = {}  # running jobs in a scheduler error state (Eqw): since
        self.acct_seen: dict[str, Ending] = {}   # accounting records of jobs missing from the queue
        self.refine: dict[str, float] = {}       # killed-by-signal jobs to refine from accounting: since
        self.to_retry: set[str] = set()
        self.to_cancel: dict[str, str] = {}      # name -> why it is removed from the queue
        self.closed_requests: list[tuple[int, str]] = []
        self.paused_until = 0.0
        self.pause_reason = ""
        self.backoff_s = 0.0
        # whether the scheduler keeps accounting we can read (the local one does not)
        self.has_acct = remote.adapter.acct_argv(["0"]) is not None
        for job in store.load_jobs():
            self._add(job)
        self.next_id = max((j.id for j in self.jobs.values()), default=0)
        for path in store.load_files():
            self.graph.file_seen(path)
        self._assign_ready_seq()
        self.order = sorted((n for n, j in self.jobs.items() if j.ready_seq is not None),
                            key=lambda n: self.jobs[n].ready_seq or 0)
        for name in self.jobs:
            self.lines[name] = self._line(self.jobs[name])
        self._index_dirs()

    # -- creation ----------------------------------------------------------------------------
    @staticmethod
    def create(store: Store, specs: list[JobSpec], run_dir: Path) -> None:
        """Record the jobs of a new run (markers already in the tree count: they were copied)."""
        with store.transaction():
            store.set_meta("tag", b36(secrets.randbelow(36 ** 4)).rjust(4, "0"))
            jobs = []
            for i, spec in enumerate(specs, 1):
                job = Job(i, spec.name, deps=spec.deps, priority=spec.priority, estimate_h=spec.estimate_h)
                if (run_dir / marker_path(spec.name)).exists():
                    failed = run_dir / marker_path(spec.name, FAILED)
                    job.state = JobState.ERROR if failed.exists() else JobState.DONE
                    job.reason = "failed marker was already in init/" if failed.exists() else ""
                jobs.append(job)
            store.save_jobs(jobs)

    def _add(self, job: Job) -> None:
        self.jobs[job.name] = job
        self.graph.add(job.name, job.deps, job.state)
        if job.state == JobState.RUNNING:
            self.running.add(job.name)

    def _running(self) -> list[Job]:
        return [self.jobs[n] for n in sorted(self.running)]

    # -- the cycle ---------------------------------------------------------------------------
    def restart(self, now: float) -> None:
        """Mark jobs that were running when a previous monitor stopped (quelist spre@)."""
        for job in self._running():
            job.spre_at = now
            self._touch(job)
        self._commit()

    def tick(self, now: float) -> TickResult:
        notes: list[str] = []
        try:
            self._pick_up_local(now)
            obs = self._observe()
        except TransportError as e:
            notes.append(f"cluster unreachable, will retry: {e.message}")
            return self._finish(now, notes, submitted=False)
        self._apply(obs, now)
        self._commit(scan_acked=self.scan_acked + 1)
        try:
            self._act(now, notes)
        except TransportError as e:
            self._commit()
            notes.append(f"cluster unreachable, will retry: {e.message}")
            return self._finish(now, notes, submitted=False)
        self._submit(now, notes)
        return self._finish(now, notes, submitted=True)

    def _observe(self) -> Observation:
        unconfirmed = [j for j in self._running() if j.unconfirmed]
        keys = sorted({k for j in unconfirmed for k in (j.token or "", j.batch or "") if k})
        running = self.graph.counts[JobState.RUNNING] > 0
        asked = [j for j in self._running() if j.missing_since is not None]
        asked += [self.jobs[n] for n in self.refine]
        acct = {j.sched_id or "" for j in asked}
        return self.remote.observe(self.scan_acked + 1, max(self.scan_acked - 1, 0),
                                   sorted(self.graph.watched_files()), running, keys,
                                   sorted(i for i in acct if i))

    def _act(self, now: float, notes: list[str]) -> None:
        """Changes on the cluster decided this cycle: cancels, retries, requested resets."""
        if self.to_cancel:
            self._cancel(now)
        requests = self.store.open_requests()
        for rid, kind, args in requests:
            self._apply_request(rid, kind, args, now, notes)
        if self.to_retry:
            jobs = [self.jobs[n] for n in sorted(self.to_retry) if self.jobs[n].state == JobState.ERROR]
            for job in jobs:
                job.retried += 1
            self._reset(jobs, now, "retry", f"automatic retry (--retries {self.settings.retries})")
            self.to_retry.clear()
        self._assign_ready_seq()
        self._commit()

    def _apply(self, obs: Observation, now: float) -> None:
        # scripts, then dependency files, then markers: so markers of brand-new jobs find their job
        def order(p: str) -> int:
            hit = job_of_marker(p)
            return 0 if hit is None else 1 if hit[1] == DEPENDENCY else 2
        for path in sorted(obs.files, key=order):
            mtime, content = obs.files[path]
            hit = job_of_marker(path)
            if hit is None:  # a job script that came with its dependency file
                self._write_local(path, content, mtime, only_new=True)
                continue
            name, kind = hit
            self._write_local(path, content, mtime, only_new=kind == DEPENDENCY)
            if kind == DEPENDENCY and name not in self.jobs and (self.run_dir / name).exists():
                self._register(*self._spec_or_error(name), now, "found on the cluster")
            elif kind == FINISHED and name in self.jobs:
                self._finished(self.jobs[name], mtime, now)
        for path in obs.existing:
            if path not in self.graph.files:
                self.graph.file_seen(path)
                self.new_files.add(path)
        if obs.endings is not None:
            self._apply_endings(obs.endings, now)
        elif obs.acct_error:
            self.events.append((now, "", "accounting-unknown", obs.acct_error))
        if obs.queue is not None:
            self._check_queue(obs, now)
        self._reconcile(obs, now)
        self._assign_ready_seq()

    def _finished(self, job: Job, mtime: float, now: float) -> None:
        """Markers come first: they decide, and overrule a verdict read from anything else."""
        if job.state == JobState.DONE or (job.state == JobState.ERROR and
                                          (job.evidence.startswith("marker") or not job.verdict)):
            return
        if job.state == JobState.ERROR:
            self.events.append((now, job.name, "overruled",
                                f"a marker appeared after the verdict {job.verdict}; markers win"))
        failed = self.run_dir / marker_path(job.name, FAILED)
        if failed.exists():
            detail = failed.read_text(errors="replace").strip()[:200]
            code = int(detail) if detail.lstrip("-").isdigit() else None
            self._end(job, Verdict.FAILED, code, f"marker {marker_path(job.name, FAILED)}: "
                      f"{detail or '(empty)'}", now, at=mtime)
            if code is not None and code > SIGNAL_EXIT and job.sched_id and self.has_acct:
                self.refine[job.name] = now  # killed by a signal: accounting may say by whom
                self.to_retry.discard(job.name)
        else:
            self._end(job, Verdict.DONE, 0, f"marker {marker_path(job.name)}", now, at=mtime)

    def _maybe_retry(self, job: Job) -> None:
        if job.verdict and Verdict(job.verdict) in RETRYABLE and job.retried < self.settings.retries:
            self.to_retry.add(job.name)

    def _end(self, job: Job, verdict: Verdict, code: int | None, evidence: str, now: float,
             at: float | None = None, detail: str = "") -> None:
        """Record how a job ended, with the evidence, and decide on an automatic retry."""
        job.verdict, job.exit_code, job.evidence = verdict.value, code, evidence
        self.acct_seen.pop(job.name, None)
        self.queue_errors.pop(job.name, None)
        if verdict == Verdict.DONE:
            job.finished_at = at or now
            self._set(job, JobState.DONE, now, "done", evidence)
            return
        what = detail or MEANING[verdict]
        if verdict == Verdict.FAILED and code is not None:
            what = f"exited with code {code}"
        job.failed_at = at or now
        self._set(job, JobState.ERROR, now, verdict.value, f"{verdict.value}: {what} ({evidence})")
        self._maybe_retry(job)

    def _apply_endings(self, endings: dict[str, Ending], now: float) -> None:
        """Accounting records, second in the order of evidence: for jobs that left the queue
        without a marker, and to say who killed a job whose marker shows a signal."""
        by_id = {j.sched_id: j for j in self._running() if j.missing_since is not None and j.sched_id}
        def mine(job: Job, end: Ending | None) -> Ending | None:
            # ids get reused (a qmaster restart starts again at 1): a record of another name is
            # another job's
            return end if end is None or not end.name or end.name == job.token else None

        for name in list(self.refine):
            job = self.jobs[name]
            end = mine(job, endings.get(job.sched_id or ""))
            if end is not None:
                del self.refine[name]
                self.events.append((now, name, "accounting", end.evidence))
                if end.verdict not in (Verdict.DONE, Verdict.FAILED) and job.state == JobState.ERROR:
                    code = job.exit_code
                    job.verdict, job.evidence = end.verdict.value, f"{job.evidence}; {end.evidence}"
                    job.reason = f"{end.verdict.value}: {MEANING[end.verdict]} ({job.evidence})"
                    self.events.append((now, name, "verdict", f"{end.verdict.value} (exit {code})"))
                    self._touch(job)
                self._maybe_retry(job)
            elif now - self.refine[name] >= self.settings.lost_after_s:
                del self.refine[name]  # no record came: the marker's verdict stands
                self._maybe_retry(job)
        for sched_id, job in by_id.items():
            end = mine(job, endings.get(sched_id))
            if end is None:
                continue
            if job.name not in self.acct_seen:
                self.events.append((now, job.name, "accounting", end.evidence))
            self.acct_seen[job.name] = end
            if end.verdict != Verdict.DONE:
                self._end(job, end.verdict, end.exit_code, end.evidence, now)
            # ended normally by the scheduler's account: wait for its marker, which a shared
            # filesystem may show late, until --lost-after (then _check_queue decides)

    def _check_queue(self, obs: Observation, now: float) -> None:
        q = obs.queue
        assert q is not None
        if not q.ok:
            self.events.append((now, "", "queue-unknown", q.error))
            return  # an unanswered query proves nothing: never count it as vanished
        held: set[str] = set()
        for job in self._running():
            if job.sched_id is None:
                continue
            entry = q.entries.get(job.sched_id)
            if entry is not None:
                if job.missing_since is not None:
                    job.missing_since = None
                    self._touch(job)
                if entry.held:
                    held.add(job.name)
                if entry.running and job.running_at is None:
                    job.running_at = now  # the timeline's start: first seen running
                    self.events.append((now, job.name, "running", f"scheduler state {entry.state}"))
                    self._touch(job)
                self._queue_error(job, entry.state, entry.reason, entry.error, now)
                continue
            self.queue_errors.pop(job.name, None)
            if job.missing_since is None:
                job.missing_since = now
                self._touch(job)
            elif now - job.missing_since >= self.settings.lost_after_s:
                wait = f"{self.settings.lost_after_s:g} s"
                seen = self.acct_seen.get(job.name)
                if seen is not None:
                    self._end(job, Verdict.VANISHED, seen.exit_code, seen.evidence, now,
                              detail=f"the scheduler says it ended normally, but "
                              f"{marker_path(job.name)} did not appear within {wait} (does the "
                              "script write the markers? see templates/)")
                else:
                    self._end(job, Verdict.VANISHED, None, f"not listed by the scheduler for {wait}, "
                              "no accounting record", now,
                              detail=f"the scheduler no longer lists job {job.sched_id} and no "
                              f"marker appeared within {wait}")
        for name in held - self.held:
            self.events.append((now, name, "held", "the scheduler holds it; it does not count "
                                "against --maxqsub until released"))
        for name in self.held - held:
            if self.jobs[name].state == JobState.RUNNING:
                self.events.append((now, name, "released", "no longer held"))
        if held != self.held:
            for name in held ^ self.held:
                self._touch(self.jobs[name])
        self.held = held

    def _queue_error(self, job: Job, state: str, reason: str, error: bool, now: float) -> None:
        """A job in a scheduler error state (Grid Engine Eqw) never runs by itself: it is shown at
        once, left --lost-after seconds for the user to fix and clear (qmod -cj), then deleted
        and marked error with the scheduler's reason."""
        if not error:
            if self.queue_errors.pop(job.name, None) is not None:
                self.events.append((now, job.name, "queue", f"left the error state ({state})"))
                self._touch(job)
            return
        since = self.queue_errors.get(job.name)
        if since is None:
            self.queue_errors[job.name] = now
            self.events.append((now, job.name, "queue", f"in error state {state}"
                                + (f": {reason}" if reason else "")))
            self._touch(job)
        elif now - since >= self.settings.lost_after_s and job.name not in self.to_cancel:
            self.to_cancel[job.name] = f"in error state {state} for {self.settings.lost_after_s:g} s"

    def _cancel(self, now: float) -> None:
        jobs = [self.jobs[n] for n in sorted(self.to_cancel)]
        res = self.remote.cancel([j.sched_id or "" for j in jobs])
        said = " ".join(res.text.split())[-300:]
        for job in jobs:
            why = self.to_cancel.pop(job.name)
            if job.state == JobState.RUNNING:
                self._end(job, Verdict.REJECTED, None, f"queue state; deleted: {said or 'no reason given'}",
                          now, detail=f"{why}; deleted from the queue")

    def _reconcile(self, obs: Observation, now: float) -> None:
        """Settle submissions whose answer was lost: journal first, then the scheduler's queue."""
        pending = [j for j in self._running() if j.unconfirmed]
        if not pending:
            return
        outcome = {ln[1]: ln for ln in obs.journal if len(ln) >= 3 and ln[0] == "S"}
        marks = {(ln[1], ln[2]) for ln in obs.journal if len(ln) >= 3 and ln[0] == "B"}
        named = obs.queue.by_name() if obs.queue is not None and obs.queue.ok else None
        for job in pending:
            line = outcome.get(job.token or "")
            if line is not None:
                rc = int(line[2]) if line[2].lstrip("-").isdigit() else 1
                res = CommandResult((), rc, (line[3] if len(line) > 3 else "").encode(), "")
                self._apply_submit(job, self.remote.submit_result(job.token or "", res), now, [],
                                   via="journal")
                continue
            age = now - (job.intent_at or now)
            started = (job.batch, "start") in marks
            ended = (job.batch, "end") in marks
            if named is not None and job.token in named and self.remote.adapter.can_find_by_name:
                self._confirm(job, named[job.token or ""].sched_id, now, via="scheduler queue")
            elif ended or (not started and age >= START_GRACE_S) or (started and age >= BATCH_STALE_S):
                if named is None and self.remote.adapter.can_find_by_name:
                    continue  # cannot ask the scheduler now: wait rather than risk a duplicate
                self._set(job, JobState.PENDING, now, "not-submitted",
                          "submission never reached the scheduler; will submit again")
                job.token = job.batch = None
                job.intent_at = None

    # -- submission --------------------------------------------------------------------------
    def _submit(self, now: float, notes: list[str]) -> None:
        if now < self.paused_until:
            return
        # held jobs do not take a --maxqsub slot: they wait for a person, not for the cluster
        slots = self.settings.maxqsub - self.graph.counts[JobState.RUNNING] + len(self.held)
        chosen: list[Job] = []
        while slots > 0 and self.heap:
            _, _, name = heapq.heappop(self.heap)
            if name not in self.graph.ready:
                continue
            chosen.append(self.jobs[name])
            slots -= 1
        if not chosen:
            return
        self.batch_seq += 1
        batch = f"{self.tag}-{self.batch_seq}"
        for job in chosen:
            job.attempts += 1
            job.token = f"ja{self.tag}{b36(job.id)}_{job.attempts}"
            job.batch = batch
            job.intent_at = now
            job.sched_id = None
            job.missing_since = None
            self._set(job, JobState.RUNNING, now, "intent", f"token {job.token} batch {batch}")
        self._commit(batch_seq=self.batch_seq)  # the intent is durable before anything leaves
        results = self.remote.submit(batch, [(j.token or "", j.name, self._extra_args(j, now))
                                             for j in chosen])
        lost = 0
        for job, res in zip(chosen, results, strict=True):
            if res is None:
                lost += 1
                continue
            self._apply_submit(job, res, now, notes)
        if lost:
            notes.append(f"lost the answer for {lost} submission(s); they are settled next cycle "
                         "from the cluster's journal before anything is submitted again")
        self._commit()

    def _extra_args(self, job: Job, now: float) -> list[str]:
        """After a walltime kill, the script's `#jobauto walltime-retry: ARGS` (e.g. -l h_rt=48:00:00)
        is added to the submission; it comes after --qsub-args and the script's own directives,
        so it wins."""
        if job.verdict != Verdict.WALLTIME.value:
            return []
        try:
            args = script_directive(self.run_dir / job.name, "walltime-retry")
        except OSError:
            return []
        if args:
            self.events.append((now, job.name, "walltime-retry", "submitted with " + " ".join(args)))
        return args or []

    def _pause(self, now: float, why: str) -> None:
        self.backoff_s = min(max(self.backoff_s * 2, self.settings.backoff_s), BACKOFF_MAX_S)
        self.paused_until = now + self.backoff_s
        self.pause_reason = why
        self.events.append((now, "", "paused", f"{why}; retry in {self.backoff_s:g} s"))

    def _apply_submit(self, job: Job, res: SubmitResult, now: float, notes: list[str],
                      via: str = "qsub") -> None:
        if res.sched_id is not None:
            self._confirm(job, res.sched_id, now, via=via)
        elif res.error is None:
            pass  # accepted but unreadable: stays unconfirmed, found by name next cycle
        elif res.transient:
            self._set(job, JobState.PENDING, now, "refused", res.error)
            job.token = job.batch = None
            job.intent_at = None
            if not any(n.startswith("submission refused") for n in notes):
                notes.append(f"submission refused, will retry: {res.error}")
            if now >= self.paused_until:
                self._pause(now, f"the scheduler refused a submission: {res.error}")
        else:
            self._end(job, Verdict.REJECTED, None, f"submission: {res.error}", now,
                      detail="the scheduler refused the script")

    def _confirm(self, job: Job, sched_id: str, now: float, via: str) -> None:
        self.backoff_s = 0.0
        self.pause_reason = ""
        job.sched_id = sched_id
        job.started_at = job.intent_at or now
        self.events.append((now, job.name, "submitted", f"scheduler id {sched_id} (from {via})"))
        self._touch(job)

    # -- resets: jobauto reset (through the store's requests) and --retries ------------------
    def _apply_request(self, rid: int, kind: str, args: dict[str, object], now: float,
                       notes: list[str]) -> None:
        if kind != "reset":
            self.closed_requests.append((rid, f"unknown request {kind!r}: ignored"))
            return
        names = select_for_reset(self.jobs, [str(n) for n in args.get("jobs") or []],  # type: ignore[attr-defined]
                                 [str(s) for s in args.get("status") or []])  # type: ignore[attr-defined]
        unknown = [n for n in names if n not in self.jobs]
        busy = [n for n in names if n in self.jobs and self.jobs[n].state == JobState.RUNNING]
        jobs = [self.jobs[n] for n in names if n in self.jobs and self.jobs[n].state != JobState.RUNNING]
        self._reset(jobs, now, "reset", f"jobauto reset (request {rid})")
        result = f"reset {len(jobs)} job(s)"
        if busy:
            result += f"; left {len(busy)} running job(s) alone: {', '.join(busy[:5])}"
        if unknown:
            result += f"; unknown: {', '.join(unknown[:5])}"
        notes.append(result)
        self.closed_requests.append((rid, result))

    def _reset(self, jobs: list[Job], now: float, kind: str, detail: str) -> None:
        """Make jobs pending again. Their markers go first, on the cluster and here, so that the
        next attempt is not mistaken for done (a transport error leaves everything as it was)."""
        if not jobs:
            return
        paths = [marker_path(j.name, k) for j in jobs for k in (FAILED, FINISHED)]
        self.remote.remove(paths)
        for p in paths:
            (self.run_dir / p).unlink(missing_ok=True)
        for job in jobs:
            self.refine.pop(job.name, None)
            self.acct_seen.pop(job.name, None)
            job.sched_id = job.token = job.batch = None
            job.intent_at = job.started_at = job.finished_at = job.failed_at = job.running_at = None
            job.spre_at = job.missing_since = None
            was = f"{job.state.value}" + (f" ({job.verdict})" if job.verdict else "")
            self._set(job, JobState.PENDING, now, kind, f"{detail}; was {was}")

    # -- state changes -----------------------------------------------------------------------
    def _set(self, job: Job, state: JobState, now: float, kind: str, detail: str) -> None:
        self.graph.set_state(job.name, state)
        if state == JobState.RUNNING:
            self.running.add(job.name)
        else:
            self.running.discard(job.name)
        if state == JobState.ERROR:
            job.reason = detail
            job.failed_at = job.failed_at or now
        elif state == JobState.PENDING:
            job.reason = ""
        job.state = state
        self.events.append((now, job.name, kind, detail))
        self._touch(job)

    def _touch(self, job: Job) -> None:
        self.dirty.add(job.name)

    def _assign_ready_seq(self) -> None:
        fresh = [n for n in self.graph.changed if n in self.graph.ready]
        for name in sorted(fresh, key=lambda n: self.jobs[n].id):
            job = self.jobs[name]
            if job.ready_seq is None:
                self.ready_seq += 1
                job.ready_seq = self.ready_seq
                self.order.append(name)
                self._touch(job)
            heapq.heappush(self.heap, (-job.priority, job.ready_seq, name))
        self.graph.changed.clear()

    def _commit(self, **meta: int) -> None:
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
        if "scan_acked" in meta:
            self.scan_acked = meta["scan_acked"]
        for n in self.dirty:
            line = self._line(self.jobs[n])
            if self.lines.get(n) != line:
                self.lines[n] = line
                self.quelist_stale = True
        self.dirty.clear()
        self.new_files.clear()
        self.events.clear()
        self.closed_requests.clear()

    # -- jobs added while running ------------------------------------------------------------
    def _index_dirs(self) -> None:
        for dirpath, dirnames, _ in os.walk(self.run_dir):
            dirnames[:] = [d for d in dirnames if d != STATE_DIR]
            rel = os.path.relpath(dirpath, self.run_dir).replace(os.sep, "/")
            self.dir_mtimes[rel] = os.stat(dirpath).st_mtime_ns

    def _pick_up_local(self, now: float) -> None:
        """Register jobs added under DATE/ since the last cycle and push them to the cluster."""
        changed: list[str] = []
        for rel, seen in list(self.dir_mtimes.items()):
            try:
                m = os.stat(self.run_dir / rel).st_mtime_ns
            except FileNotFoundError:
                del self.dir_mtimes[rel]
                continue
            if m != seen:
                changed.append(rel)
        if not changed:
            return
        added: list[str] = []
        for rel in changed:
            top = self.run_dir / rel
            self.dir_mtimes[rel] = os.stat(top).st_mtime_ns
            for entry in os.scandir(top):
                if entry.is_dir(follow_symlinks=False) and entry.name != STATE_DIR:
                    sub = entry.name if rel == "." else f"{rel}/{entry.name}"
                    if sub not in self.dir_mtimes:
                        for dirpath, dirnames, _ in os.walk(entry.path):
                            dirnames[:] = [d for d in dirnames if d != STATE_DIR]
                            r = os.path.relpath(dirpath, self.run_dir).replace(os.sep, "/")
                            self.dir_mtimes[r] = os.stat(dirpath).st_mtime_ns
                        added += [n for n in iter_job_files(self.run_dir, sub) if n not in self.jobs]
            for f in os.listdir(top):
                if f.startswith(DEPENDENCY) and len(f) > len(DEPENDENCY):
                    name = ("qsub." if rel == "." else f"{rel}/qsub.") + f[len(DEPENDENCY):]
                    if name not in self.jobs and (self.run_dir / name).is_file():
                        added.append(name)
        if added:
            for name in dict.fromkeys(added):
                self._register(*self._spec_or_error(name), now, "added under the run directory")
            self.remote.push(self.run_dir)

    def _spec_or_error(self, name: str) -> tuple[JobSpec, str | None]:
        """Read a job added during the run; a bad one becomes an error job, not a crash."""
        try:
            spec = parse_dependency(self.run_dir, name)
            check_placeholders(self.run_dir, [spec], self.settings.values)
            fill_job(self.run_dir, name, self.settings.values)
            return spec, None
        except (JobautoError, OSError) as e:
            return JobSpec(name, ()), e.describe() if isinstance(e, JobautoError) else str(e)

    def _register(self, spec: JobSpec, error: str | None, now: float, how: str) -> None:
        self.next_id += 1
        job = Job(self.next_id, spec.name, deps=spec.deps, priority=spec.priority,
                  estimate_h=spec.estimate_h)
        self._add(job)
        self.events.append((now, job.name, "added", how))
        if error:
            self._set(job, JobState.ERROR, now, "invalid", error)
        self._touch(job)

    def _write_local(self, path: str, content: bytes, mtime: float, only_new: bool) -> None:
        target = self.run_dir / path
        if only_new and target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.jobauto-tmp")
        tmp.write_bytes(content)
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, target)

    # -- output ------------------------------------------------------------------------------
    def _line(self, job: Job) -> str:
        line = quelist.Line(job.name)
        for key, t in (("spre", job.spre_at), ("started", job.started_at)):
            if t is not None:
                line.times[key] = t
        if job.state == JobState.DONE and job.finished_at is not None:
            line.times["finished"] = job.finished_at
        if job.state == JobState.ERROR:
            line.times["failed"] = job.failed_at or job.finished_at or 0.0
        if job.sched_id:
            line.extra["jobid"] = job.sched_id
        if job.name in self.held:
            line.extra["queue"] = "held"
        elif job.name in self.queue_errors:
            line.extra["queue"] = "error"
        if job.attempts > 1:
            line.extra["attempt"] = str(job.attempts)
        if job.state == JobState.ERROR and job.reason:
            line.extra["reason"] = job.reason.split(":")[0]
        return quelist.render_line(line)

    def write_quelist(self) -> None:
        if self.quelist_stale:
            text = "".join(self.lines[n] + "\n" for n in self.order)
            write_atomic(self.run_dir / "quelist", text)
            self.quelist_stale = False

    def _finish(self, now: float, notes: list[str], submitted: bool) -> TickResult:
        self.write_quelist()
        counts = self.graph.summary()
        if self.held:
            counts["held"] = len(self.held)
        if self.queue_errors:
            counts["queue-error"] = len(self.queue_errors)
        result = TickResult(counts, notes=notes)
        if now < self.paused_until and counts["ready"]:
            result.paused = f"{self.pause_reason}; next try at {quelist.fmt_time(self.paused_until)}"
        elif not submitted and counts["ready"] and notes:
            result.paused = notes[-1]
        settling = self.refine or self.to_retry or self.to_cancel  # verdicts not final yet
        if submitted and counts["running"] == 0 and counts["ready"] == 0 and not settling:
            result.finished = True
            ok = counts["done"] == len(self.jobs)
            result.exit_code = 0 if ok else 1
            if not ok:
                result.summary = self.stuck_summary()
        return result

    def stuck_summary(self) -> list[str]:
        """Name every job that will not finish, and why."""
        out: list[str] = []
        for name, job in sorted(self.jobs.items(), key=lambda kv: kv[1].id):
            d = self.graph.derived(name)
            if job.state == JobState.ERROR:
                out.append(f"error    {name}: {job.reason or 'failed'}")
            elif d == Derived.BLOCKED:
                out.append(f"blocked  {name}: by {', '.join(self.graph.root_errors(name))}")
            elif d == Derived.WAITING:
                out.append(f"waiting  {name}: " + "; ".join(self.graph.why(name)))
        if len(out) > SUMMARY_LINES:
            out = out[:SUMMARY_LINES] + [f"... and {len(out) - SUMMARY_LINES} more (see quelist)"]
        return out
