"""Jobs queued ahead (jobmon --ahead): submitted with the scheduler's own dependency on jobs
of the run that have not ended, so that they start the moment those end.

A job goes ahead when every dependency it still waits for is the finished marker of a job of
this run that is submitted and confirmed, or sent alone before it in the same batch (which
hands its id on: run/mirror.py `submit`); plain files and jobs not confirmed stay with jobmon.
A batch takes a chain depth first (chains): a pipeline's steps get consecutive ids, as a
native loop that submits pipeline by pipeline gives them. A job queued ahead is stored
`running` like any submission (same intent journal, same reconciliation); it is shown
`queued-ahead` while a predecessor is not done. Markers stay the truth: when a predecessor
ends with another verdict, or the scheduler says the dependency can never be met although the
markers say it was, the job is deleted from the queue in one batched command and goes back to
pending (then blocked, or ready). docs/decisions.md "Edges to the scheduler".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from jobauto.core.errors import TreeError
from jobauto.core.faults import point
from jobauto.core.model import Job, JobState, QueueSnapshot
from jobauto.core.scripts import read_script, scheduler_directives
from jobauto.core.states import AHEAD, queued_ahead
from jobauto.run import arrays

if TYPE_CHECKING:
    from jobauto.run.cycle import Monitor

ANSWER_CHARS = 300  # of the scheduler's answer to the delete kept in the job's history


def refresh(mon: Monitor) -> None:
    """Recompute which running jobs wait in the queue on a predecessor (queued-ahead)."""
    ahead = {n for n in mon.running
             if queued_ahead(JobState.RUNNING.value, bool(mon.graph.nodes[n].unmet_jobs))}
    for name in ahead ^ mon.ahead:
        mon.touch(mon.jobs[name])
    mon.ahead = ahead


def count(mon: Monitor, counts: dict[str, int]) -> None:
    """Count the jobs queued ahead apart from the running ones (the count line, status)."""
    refresh(mon)
    if mon.ahead:
        counts["running"] -= len(mon.ahead)
        counts[AHEAD] = len(mon.ahead)


def enabled(mon: Monitor, now: float) -> bool:
    """Whether jobs may be queued ahead now: --ahead, not paused, a scheduler that can."""
    return (mon.settings.ahead > 0 and now >= mon.paused_until
            and mon.remote.adapter.depend_args(["1"]) is not None)


def predecessors(mon: Monitor, name: str, batch: Collection[str] = ()) -> list[Job] | None:
    """The jobs NAME would be queued after, or None when it may not go ahead now: each is
    submitted and confirmed, or in BATCH (sent alone earlier in the same batch, which hands
    its id on: run/mirror.py `submit`)."""
    node = mon.graph.nodes[name]
    if node.state != JobState.PENDING or node.bad or node.unmet_files or not node.unmet_jobs:
        return None
    out = []
    for path in sorted(node.unmet_jobs):
        prod = mon.graph.producer(path)
        job = mon.jobs.get(prod.name) if prod is not None else None
        if job is not None and job.name in batch:
            out.append(job)
            continue
        if (job is None or job.state != JobState.RUNNING or not job.sched_id
                or job.name in mon.queue_errors or job.name in mon.held
                or arrays.split_token(job.token)[1] is not None):   # a task of an array
            return None
        out.append(job)
    return out


def _wrappable(mon: Monitor, job: Job) -> bool:
    """Whether the job's wrapper can be made (its script reads and its directives can travel,
    the only things run/wrapper.py refuses): without it nothing would check the markers. The
    wrapper itself is made once, by submitting.send."""
    try:
        scheduler_directives(read_script(mon.run_dir / job.name), job.name)
    except (TreeError, OSError):
        return False
    return True


def _by_priority(mon: Monitor, names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda n: (-mon.jobs[n].priority, mon.jobs[n].id))


def chains(mon: Monitor, roots: list[Job], room: int, queued: list[Job] | None = None
           ) -> tuple[list[Job], dict[str, list[Job]]]:
    """One batch: ROOTS (ready jobs) and up to ROOM jobs queued ahead after them or after the
    QUEUED jobs (submitted already, not in the batch). Which: level by level, highest priority
    first in each, the next step of every chain before a further step of any (a room too small
    for every chain is shared fairly, and each running chain keeps its next step queued). In
    which order: depth first, each job right after the last of its predecessors: a pipeline's
    steps get consecutive ids, and a scheduler that starts waiting jobs in id order runs a
    pipeline's next step as soon as its last one ends, as a native loop that submits pipeline
    by pipeline would. Returns the order and, for each job queued ahead, its predecessors."""
    queued = queued or []
    after: dict[str, list[Job]] = {}
    placed = {j.name for j in roots}
    level = [*queued, *roots]
    while level and room > 0:
        deeper: list[Job] = []
        for name in _by_priority(mon, {d for j in level for d in mon.graph.dependents(j.name)}
                                 - placed):
            if room > 0 and (preds := predecessors(mon, name, placed)) and \
                    _wrappable(mon, mon.jobs[name]):
                placed.add(name)
                after[name] = preds
                room -= 1
                deeper.append(mon.jobs[name])
        level = deeper
    order: list[Job] = []
    sent: set[str] = set()
    for source in [*roots, *queued]:
        if source.name in placed:
            order.append(source)
            sent.add(source.name)
        stack = [iter(_by_priority(mon, mon.graph.dependents(source.name)))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
            elif step not in sent and step in after and \
                    all(p.name in sent or p.name not in placed for p in after[step]):
                order.append(mon.jobs[step])
                sent.add(step)
                stack.append(iter(_by_priority(mon, mon.graph.dependents(step))))
    return order, after


def unhook(mon: Monitor, now: float, queue: QueueSnapshot | None = None) -> None:
    """Delete from the queue, in one command, the jobs queued after a job that did not end
    done (and those queued after them), and those whose dependency the scheduler says can never
    be met although the markers say it was; each goes back to pending: blocked, or ready. A
    job this cycle's QUEUE listing no longer shows is gone already (not deleted again); one the
    delete did not take (an answer other than success) stays until a later cycle sees it gone
    or deletes it: never left in the queue behind a job shown blocked."""
    doomed: dict[str, str] = {}
    for name in sorted(mon.running):
        if mon.graph.nodes[name].bad:
            bad = ", ".join(mon.graph.root_errors(name)) or "?"
            doomed[name] = f"queued after a job that did not end done ({bad})"
    stack = list(doomed)
    while stack:
        cur = stack.pop()
        for d in sorted(mon.graph.dependents(cur)):
            if d in mon.running and d not in doomed:
                doomed[d] = f"queued after {cur}, which was taken out of the queue"
                stack.append(d)
    for name, why in list(mon.requeue.items()):
        if mon.jobs[name].state != JobState.RUNNING:
            del mon.requeue[name]
        else:
            doomed.setdefault(name, why)
    live = [mon.jobs[n] for n in doomed if mon.jobs[n].sched_id]  # unconfirmed: next cycle
    listed = queue.entries if queue is not None and queue.ok else None
    gone = [j for j in live if listed is not None and j.sched_id not in listed]
    live = [j for j in live if j not in gone]
    answer = ""
    if live:
        res = mon.remote.cancel([j.sched_id or "" for j in live])
        point("ahead.deleted")
        answer = (f"{mon.remote.adapter.name} said, exit {res.rc}: "
                  + (" ".join(f"{res.text} {res.stderr}".split())[-ANSWER_CHARS:] or "(no answer)"))
        if res.rc != 0:    # not taken, or not for every job: a later cycle sees which are gone
            for job in live:
                mon.events.append((now, job.name, "delete-failed", f"{doomed[job.name]}; "
                                   f"{answer}; it stays queued until the queue no longer lists it"))
            live = []
    for job in gone + live:
        how = (f"deleted from the queue (job {job.sched_id}; {answer})" if job in live else
               f"job {job.sched_id} no longer in the queue")
        job.token = job.batch = job.sched_id = None
        job.intent_at = job.missing_since = job.running_at = None
        for watch in (mon.requeue, mon.refine, mon.to_cancel, mon.queue_errors, mon.acct_seen):
            watch.pop(job.name, None)
        mon.held.discard(job.name)
        mon.move(job, JobState.PENDING, now, "unhooked", f"{doomed[job.name]}; {how}")
    if not gone and not live:
        return
    refresh(mon)
    mon.commit()   # back to pending before anything else of the cycle is sent
    point("ahead.unhooked")
