"""The monitor's side of `jobauto cancel`: delete the chosen jobs from the scheduler in one
batched command, record each `cancelled` with the scheduler's answer as evidence, and cancel
the chosen jobs not submitted yet (they never run). Their dependents are blocked by the usual
rule (a job in error blocks what needs it); `jobauto reset` makes them pending again.

A job whose submission is not confirmed yet (its answer was lost: a token, no scheduler id)
cannot be deleted by id. The request then stays open: `submitting.reconcile` settles the job
from the journal or finds it in the queue by its token, and the next cycle cancels it by id,
or as not submitted. A whole-run cancel also stops submitting: the run ends once nothing of
it is left running (exit 1: the work did not all succeed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobauto.core.model import Job, JobState, Verdict
from jobauto.run import endings

if TYPE_CHECKING:
    from jobauto.run.cycle import Monitor

ANSWER_CHARS = 300     # of the scheduler's answer kept as evidence
SHOWN = 5              # job names named in a result line


def names_of(jobs: list[Job]) -> str:
    out = ", ".join(j.name for j in jobs[:SHOWN])
    return out + (f" and {len(jobs) - SHOWN} more" if len(jobs) > SHOWN else "")


def chosen(mon: Monitor, args: dict[str, object]) -> tuple[list[Job], list[str]]:
    """The jobs the request names (every job not ended, for a whole-run cancel), and the names
    the run does not have."""
    if args.get("all"):
        return [j for j in mon.jobs.values() if j.state in (JobState.RUNNING, JobState.PENDING)], []
    names = [str(n) for n in args.get("jobs") or []]  # type: ignore[attr-defined]
    return ([mon.jobs[n] for n in names if n in mon.jobs], [n for n in names if n not in mon.jobs])


def apply_cancel(mon: Monitor, rid: int, args: dict[str, object], now: float) -> str | None:
    """Cancel what the request chose; None (the request stays open) while a chosen job's
    submission is not confirmed."""
    who = f"{endings.CANCELLED_BY} (request {rid})"
    if args.get("all"):
        mon.stopping = True
        mon.to_retry.clear()     # nothing is submitted again, retries neither
    jobs, unknown = chosen(mon, args)
    live = [j for j in jobs if j.state == JobState.RUNNING and j.sched_id]
    unsettled = [j for j in jobs if j.unconfirmed]
    waiting = [j for j in jobs if j.state == JobState.PENDING]
    if live:
        res = mon.remote.cancel([j.sched_id or "" for j in live])
        said = " ".join(res.text.split())[-ANSWER_CHARS:] or "(no answer)"
        answer = f"{mon.remote.adapter.name} cancel, exit {res.rc}: {said}"
        for job in live:
            _forget(mon, job)
            endings.end(mon, job, Verdict.CANCELLED, None, f"{who}; {answer}", now,
                        detail=f"deleted from the queue (job {job.sched_id}) by {who}")
    for job in waiting:
        _forget(mon, job)
        endings.end(mon, job, Verdict.CANCELLED, None, f"{who}; not submitted", now,
                    detail=f"cancelled before it was submitted, by {who}; it will not run")
    if unsettled:
        for job in unsettled:
            mon.events.append((now, job.name, "cancel-waiting", f"{who}: its submission is not "
                               "confirmed yet; cancelled once the scheduler's id is known"))
        return None
    if args.get("all"):
        result = (f"cancelled the whole run ({len(mon.cancelled)} job(s) cancelled); nothing more "
                  "is submitted, the monitor stops once nothing of it runs")
    else:
        named = [n for n in (str(x) for x in args.get("jobs") or [])  # type: ignore[attr-defined]
                 if n in mon.cancelled]
        result = f"cancelled {len(named)} job(s)"
    ended = [j for j in jobs if j.state == JobState.DONE or (
        j.state == JobState.ERROR and j.name not in mon.cancelled)]
    if ended:
        result += f"; already ended, left alone: {names_of(ended)}"
    if unknown:
        result += f"; unknown: {', '.join(unknown[:SHOWN])}"
    return result


def _forget(mon: Monitor, job: Job) -> None:
    """Drop what the monitor was still watching for the job."""
    mon.refine.pop(job.name, None)
    mon.to_cancel.pop(job.name, None)
    mon.to_retry.discard(job.name)
    mon.held.discard(job.name)
