"""Submission: ready jobs go to the scheduler in one batch a cycle, each exactly once.

Exactly-once submission: a job's intent (state running, a token unique to the run, its batch)
is committed before the batch leaves; the batch journals each outcome on the cluster before
answering. An answer that never arrives is recovered from that journal, or from the scheduler's
queue by the token, before the job may be submitted again. docs/failure-modes.md has the cases.
"""

from __future__ import annotations

import heapq
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobauto.cluster.schedulers.common import batch_id
from jobauto.core.deps import marker_path
from jobauto.core.errors import TreeError
from jobauto.core.faults import point
from jobauto.core.model import CommandResult, Job, JobState, SubmitResult, Verdict
from jobauto.core.scripts import read_script, script_directive
from jobauto.run import ahead, arrays, endings, quelist, sync
from jobauto.run.mirror import Observation
from jobauto.run.wrapper import wrapper_text

if TYPE_CHECKING:
    from jobauto.run.cycle import Monitor

START_GRACE_S = 30.0      # a batch that has not journaled its start by then never started
BATCH_STALE_S = 600.0     # a batch that started but never ended: ask the scheduler
BACKOFF_MAX_S = 600.0     # a refused submission pauses submitting, doubling up to this


def b36(n: int) -> str:
    """Write n in base 36: the run's tag and the tokens stay short in a scheduler's job name."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def submit_ready(mon: Monitor, now: float, notes: list[str]) -> None:
    """Submit ready jobs, highest priority first, into the free --maxqsub slots; with --ahead,
    each with the jobs that may be queued after it, depth first, in the same batch."""
    if now < mon.paused_until:
        return
    # held jobs do not take a --maxqsub slot: they wait for a person, not for the cluster; jobs
    # queued ahead neither: they are counted against --ahead (run/ahead.py)
    slots = (mon.settings.maxqsub - mon.graph.counts[JobState.RUNNING] + len(mon.held)
             + len(mon.ahead))
    # the scheduler-command budget (run/budget.py) bounds submissions, not jobs: an array of a
    # thousand tasks is one command; send() leaves for later what does not fit
    room = mon.budget.room(now)
    if room == 0:
        slots = 0
    chosen: list[Job] = []
    while slots > 0 and mon.heap:
        _, _, name = heapq.heappop(mon.heap)
        if name not in mon.graph.ready:
            continue
        chosen.append(mon.jobs[name])
        slots -= 1
    after: dict[str, list[Job]] = {}
    if chosen and ahead.enabled(mon, now):
        spare = mon.settings.ahead - len(mon.ahead)
        chosen, after = ahead.chains(mon, chosen, spare if room is None else
                                     min(spare, room - len(chosen)))
    sent = _send_checked(mon, chosen, after, now, notes, room)
    waiting = len(mon.graph.ready)
    if room is not None and (room == 0 or sent < len(chosen)) and waiting > 0 and \
            (note := mon.budget.waiting(now, f"{waiting} ready job(s)", "submissions")):
        notes.append(note)


def submit_ahead(mon: Monitor, now: float, notes: list[str]) -> None:
    """Queue ahead the jobs that may go after running jobs (and, depth first, those after
    them), up to --ahead of them waiting at once (run/ahead.py)."""
    if not ahead.enabled(mon, now):
        return
    room = mon.settings.ahead - len(mon.ahead)
    budget = mon.budget.room(now)
    if budget is not None:
        room = min(room, budget)
    if room <= 0:
        return
    running = sorted((mon.jobs[n] for n in mon.running), key=lambda j: j.id)
    order, after = ahead.chains(mon, [], room, queued=running)
    _send_checked(mon, order, after, now, notes, None)


def _send_checked(mon: Monitor, chosen: list[Job], after: dict[str, list[Job]], now: float,
                  notes: list[str], room: int | None) -> int:
    """Push what changed of the chosen jobs, give those queued ahead their quelist line, send."""
    batch = {j.name for j in chosen}
    chosen = sync.before_submit(   # what the user changed goes first
        mon, chosen, now, notes, still=lambda j: j.name in mon.graph.ready if j.name not in after
        else ahead.predecessors(mon, j.name, batch) is not None)
    for job in chosen:
        if job.name in after:
            quelist.place(mon, job)
    try:
        return send(mon, chosen, now, notes, after, room=room)
    finally:
        if after:
            ahead.refresh(mon)
            if mon.dirty:
                mon.commit()   # the lines of the jobs now queued ahead: in this cycle's quelist


def send(mon: Monitor, chosen: list[Job], now: float, notes: list[str],
         after: dict[str, list[Job]] | None = None, room: int | None = None) -> int:
    """Submit the chosen jobs as one batch, in their order, each exactly once: the intent is
    committed before the batch leaves; returns how many went. AFTER names, for a job submitted
    ahead (run/ahead.py), the jobs it waits for: submitted ones, or ones sent alone before it
    in this batch, whose id the batch hands on (run/mirror.py `submit`). It goes alone (never
    in an array), with the scheduler's dependency on them and a wrapper that checks their
    markers before running the script; it stays pending when one of them does not go alone
    here after all. ROOM bounds the submissions (an array is one); the jobs past it stay
    ready."""
    if not chosen:
        return 0
    after = after or {}
    extra = {j.name: _extra_args(mon, j, now) for j in chosen}
    groups, alone, later = _arrays(mon, [j for j in chosen if j.name not in after], extra,
                                   None if room is None else room - len(after))
    for name in later:    # the budget's room is spent: back to the ready heap, as they were
        j = mon.jobs[name]
        heapq.heappush(mon.heap, (-j.priority, j.ready_seq or 0, name))
    going = set(alone)
    names = {j.name for j in chosen}
    for job in chosen:    # in order: a job queued ahead goes when each predecessor does
        if job.name in after and all(p.name in going or (p.name not in names and p.sched_id)
                                     for p in after[job.name]):
            going.add(job.name)
    chosen = [j for j in chosen if j.name in going or j.name not in after and j.name not in later]
    if not chosen:
        return 0
    mon.batch_seq += 1
    batch = f"{mon.tag}-{mon.batch_seq}"
    singles = [j for j in chosen if j.name in going]
    for job in chosen:
        job.attempts += 1
        job.token = f"ja{mon.tag}{b36(job.id)}_{job.attempts}"
    for k, g in enumerate(groups):  # X: never in a job's own token (b36 is lower case)
        name = f"ja{mon.tag}X{b36(mon.batch_seq)}_{b36(k)}"
        for task, n in enumerate(g.jobs, 1):
            mon.jobs[n].token = arrays.job_token(name, task)
    inbatch: dict[str, list[str]] = {}   # a job's token: those of its predecessors sent here
    for job in singles:
        preds = after.get(job.name, [])
        if not preds:
            continue
        inbatch[job.token or ""] = [p.token or "" for p in preds if p.name in going]
        extra[job.name] += mon.remote.adapter.depend_args(
            [batch_id(p.token or "") if p.name in going else p.sched_id or ""
             for p in preds]) or []
    for job in chosen:
        job.batch = batch
        job.intent_at = now
        job.sched_id = None
        job.missing_since = None
        shown = ", ".join(f"{p.name} ({'earlier in this batch' if p.name in going else p.sched_id})"
                          for p in after.get(job.name, []))
        mon.move(job, JobState.RUNNING, now, "intent", f"token {job.token} batch {batch}"
                 + (f", queued ahead after {shown}" if shown else ""))
    mon.commit(batch_seq=mon.batch_seq)  # the intent is durable before anything leaves
    step = "ahead" if after else "cycle"   # an ahead batch has fault points of its own
    point(f"{step}.intent")
    members = [[mon.jobs[n] for n in g.jobs] for g in groups]
    subnames = [arrays.submitted_name(js[0].token) for js in members]
    entries = [(j.token or "", j.name, extra[j.name],
                _wrapper(mon, j, now, [marker_path(p.name) for p in after.get(j.name, [])]))
               for j in singles]
    more: dict[str, Any] = {"after": {t: p for t, p in inbatch.items() if p}}
    more["arrays"] = [
        (name, arrays.task_table(g.jobs), arrays.array_wrapper(g, name, mon.remote.rundir),
         g.extra, len(g.jobs)) for name, g in zip(subnames, groups, strict=True)]
    results = mon.remote.submit(batch, entries, **{k: v for k, v in more.items() if v})
    point(f"{step}.submitted")
    lost = 0
    answers = [(job, res) for job, res in zip(singles, results, strict=False)]
    for js, res in zip(members, results[len(singles):], strict=True):
        answers += [(job, res) for job in js]
    for job, res in answers:
        if res is None:
            lost += 1
            continue
        apply_answer(mon, job, res, now, notes)
    if lost:
        notes.append(f"lost the answer for {lost} submission(s); they are settled next cycle "
                     "from the cluster's journal before anything is submitted again")
    mon.commit()
    return len(chosen)


def _arrays(mon: Monitor, chosen: list[Job], extra: dict[str, list[str]], limit: int | None
            ) -> tuple[list[arrays.Group], list[str], list[str]]:
    """Which of the chosen jobs go as arrays (--arrays; by default those `jobauto render`
    made), which alone, and which wait for room in the budget (LIMIT submissions). Every
    chosen job already holds a --maxqsub slot: an array never has more tasks than the free
    slots."""
    if not mon.remote.adapter.task_arrays or mon.settings.arrays is False or len(chosen) < 2:
        names = [j.name for j in chosen]
        cut = len(names) if limit is None else max(limit, 0)
        return [], names[:cut], names[cut:]
    made: dict[Path, frozenset[str] | None] = {}
    items: list[tuple[str, tuple[object, ...] | None, str, list[str]]] = []
    for job in chosen:
        key, text = None, ""
        if mon.settings.arrays or arrays.rendered(mon.run_dir, job.name, made):
            try:
                text = read_script(mon.run_dir / job.name)
                key = arrays.shape(job.name, text, extra[job.name])
            except TreeError:
                key = None   # unreadable: it goes alone, and _wrapper says why
        items.append((job.name, key, text, extra[job.name]))
    return arrays.group(items, limit)


def _extra_args(mon: Monitor, job: Job, now: float) -> list[str]:
    """After a walltime kill, the script's `#jobauto walltime-retry: ARGS` (e.g. -l h_rt=48:00:00)
    is added to the submission; it comes after --qsub-args and the script's own directives,
    so it wins."""
    if job.verdict != Verdict.WALLTIME.value:
        return []
    try:
        args = script_directive(mon.run_dir / job.name, "walltime-retry")
    except OSError:
        return []
    if args:
        mon.events.append((now, job.name, "walltime-retry", "submitted with " + " ".join(args)))
    return args or []


def _wrapper(mon: Monitor, job: Job, now: float, after: list[str]) -> str | None:
    """The job's wrapper (run/wrapper.py), made from its local script as it is now, checking
    the AFTER markers first (a job submitted ahead). A script whose wrapper cannot be made
    (unreadable, directives that cannot travel) is submitted as it is, as before wrappers, and
    the job's history says why; a job submitted ahead needs its wrapper, and is not."""
    try:
        return wrapper_text(read_script(mon.run_dir / job.name), job.name, mon.remote.rundir,
                            job.name, after=after)
    except TreeError as e:
        mon.events.append((now, job.name, "no-wrapper", "submitted without the wrapper "
                           f"(nothing writes its markers but the script): {e}"))
        return None


def _pause(mon: Monitor, now: float, why: str) -> None:
    """Stop submitting for a while after a refusal, twice as long each time it goes on."""
    mon.backoff_s = min(max(mon.backoff_s * 2, mon.settings.backoff_s), BACKOFF_MAX_S)
    mon.paused_until = now + mon.backoff_s
    mon.pause_reason = why
    mon.events.append((now, "", "paused", f"{why}; retry in {mon.backoff_s:g} s"))


def apply_answer(mon: Monitor, job: Job, res: SubmitResult, now: float, notes: list[str],
                 via: str = "qsub") -> None:
    """Act on the scheduler's answer to one submission: confirmed, refused for now, or rejected."""
    if res.sched_id is not None:
        _confirm(mon, job, res.sched_id, now, via=via)
    elif res.error is None:
        pass  # accepted but unreadable: stays unconfirmed, found by name next cycle
    elif res.unsent:   # its predecessor in the batch got no id: nothing reached the scheduler
        mon.move(job, JobState.PENDING, now, "not-submitted", res.error)
        job.token = job.batch = None
        job.intent_at = None
    elif res.transient:
        mon.move(job, JobState.PENDING, now, "refused", res.error)
        job.token = job.batch = None
        job.intent_at = None
        if not any(n.startswith("submission refused") for n in notes):
            notes.append(f"submission refused, will retry: {res.error}")
        if now >= mon.paused_until:
            _pause(mon, now, f"the scheduler refused a submission: {res.error}")
    else:
        endings.end(mon, job, Verdict.REJECTED, None, f"submission: {res.error}", now,
                    detail="the scheduler refused the script")


def _confirm(mon: Monitor, job: Job, sched_id: str, now: float, via: str) -> None:
    task = arrays.split_token(job.token)[1]
    if task is not None:  # one task of an array: its own id
        sched_id = mon.remote.adapter.task_id(arrays.array_id(sched_id), task)
    mon.backoff_s = 0.0
    mon.pause_reason = ""
    job.sched_id = sched_id
    job.started_at = job.intent_at or now
    mon.events.append((now, job.name, "submitted", f"scheduler id {sched_id} (from {via})"))
    mon.touch(job)


def reconcile(mon: Monitor, obs: Observation, now: float) -> None:
    """Settle submissions whose answer was lost: journal first, then the scheduler's queue."""
    pending = [j for j in mon.running_jobs() if j.unconfirmed]
    if not pending:
        return
    outcome = {ln[1]: ln for ln in obs.journal if len(ln) >= 3 and ln[0] == "S"}
    marks = {(ln[1], ln[2]) for ln in obs.journal if len(ln) >= 3 and ln[0] == "B"}
    named = obs.queue.by_name() if obs.queue is not None and obs.queue.ok else None
    for job in pending:
        key = arrays.submitted_name(job.token)  # an array's tasks share its name
        line = outcome.get(key)
        if line is not None:
            # the journal lies on the cluster, where a job can write too: ASCII digits only
            rc = int(line[2]) if re.fullmatch(r"-?[0-9]{1,9}", line[2]) else 1
            res = CommandResult((), rc, (line[3] if len(line) > 3 else "").encode(), "")
            apply_answer(mon, job, mon.remote.submit_result(key, res), now, [],
                         via="journal")
            continue
        age = now - (job.intent_at or now)
        started = (job.batch, "start") in marks
        ended = (job.batch, "end") in marks
        if named is not None and key in named and mon.remote.adapter.can_find_by_name:
            _confirm(mon, job, named[key].sched_id, now, via="scheduler queue")
        elif ended or (not started and age >= START_GRACE_S) or (started and age >= BATCH_STALE_S):
            if named is None and mon.remote.adapter.can_find_by_name:
                continue  # cannot ask the scheduler now: wait rather than risk a duplicate
            mon.move(job, JobState.PENDING, now, "not-submitted",
                     "submission never reached the scheduler; will submit again")
            job.token = job.batch = None
            job.intent_at = None
