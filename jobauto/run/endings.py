"""How a job ended, from the evidence in its order: markers, then accounting, then the queue.

Every verdict goes through end(), which also decides on an automatic retry (--retries). The
queue check also watches jobs in a scheduler error state (Grid Engine Eqw) and deletes them
after their grace. docs/verdicts.md has the rules.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from jobauto.core.deps import FAILED, marker_path
from jobauto.core.errors import PathError
from jobauto.core.files import read_head, reason
from jobauto.core.model import MEANING, Derived, Ending, Job, JobState, Verdict
from jobauto.run import arrays
from jobauto.run.mirror import Observation

if TYPE_CHECKING:
    from jobauto.run.cycle import Monitor

SUMMARY_LINES = 40   # jobs named by the summary of a run that cannot finish

# Worth another attempt with --retries; a cancel was deliberate and a rejected script stays invalid.
RETRYABLE = {Verdict.FAILED, Verdict.WALLTIME, Verdict.OOM, Verdict.NODE_FAILURE, Verdict.VANISHED}
# A failed marker with one of these exit codes (killed by a signal) is refined from accounting.
SIGNAL_EXIT = 128
CANCELLED_BY = "jobauto cancel"   # the evidence of a job cancelled by `jobauto cancel`


# What a failed marker may say. The templates write the shell's $? (0-255, 128+N for signal N);
# PBS reports 256+N and small negative codes for jobs it could not start. Anything beyond this
# range is not an exit code a scheduler gives: it is kept as the marker's message.
EXIT_RANGE = (-255, 1_000_000)
MARKER_HEAD = 4096            # bytes of a failed marker read: an exit code or the start of a message
DETAIL_CHARS = 200            # of the message kept as evidence
_EXIT_CODE = re.compile(rb"[ \t\r\n]*(-?[0-9]{1,7})[ \t\r\n]*")


def parse_failed(data: bytes) -> tuple[int | None, str]:
    """Read a failed marker's content (its first bytes): (exit code, detail), where the code is
    None unless the whole content is one ASCII number in EXIT_RANGE. The detail is one printable
    line, at most DETAIL_CHARS characters (and an ellipsis)."""
    head = data[:MARKER_HEAD]
    m = _EXIT_CODE.fullmatch(head)
    if m is not None:
        number = m.group(1).decode("ascii")
        if EXIT_RANGE[0] <= int(number) <= EXIT_RANGE[1]:
            return int(number), number
    text = head.decode("utf-8", "replace")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(text) > DETAIL_CHARS or len(data) > MARKER_HEAD:
        text = text[:DETAIL_CHARS] + "\u2026"
    if m is not None or (text and text.lstrip("+-").isdigit()):
        text += f" (not an exit code in {EXIT_RANGE[0]}..{EXIT_RANGE[1]})"
    return None, text


def read_markers(mon: Monitor, job: Job, mtime: float, now: float,
                 failed: bytes | None = None) -> None:
    """Judge a job whose finished marker arrived; markers overrule a verdict read elsewhere.
    `failed` is its failed marker when the same scan brought one, else the local copy is read;
    one that is there but cannot be read makes the job error all the same, saying why."""
    if job.state == JobState.DONE or (job.state == JobState.ERROR and
                                      (job.evidence.startswith("marker") or not job.verdict)):
        return
    path = marker_path(job.name, FAILED)
    if job.state == JobState.ERROR and job.evidence.startswith(CANCELLED_BY):
        # jobauto cancel ended it. It stays cancelled when a failed marker came (a script that
        # traps SIGTERM writes one), and when its finished marker alone was written after the
        # cancel went (the cluster's clock, in whole seconds as the scan's tar keeps it): the
        # kill made it, not the work (a script whose EXIT trap reads `$?` when TERM ends it sees
        # the last command's 0; docs/verdicts.md). One written before says the work was done.
        if failed is not None or (mon.run_dir / path).exists():
            why = f"{path} appeared after the cancel"
        elif job.failed_at is not None and min(mtime, now) >= math.floor(job.failed_at):
            why = f"{marker_path(job.name)} was written after the cancel (as the job was killed)"
        else:
            why = ""
        if why:
            mon.events.append((now, job.name, "marker", f"{why}; the job stays cancelled"))
            mon.settling.pop(job.name, None)   # decided: no more looks for its markers
            return
    if job.state == JobState.ERROR:
        mon.events.append((now, job.name, "overruled",
                           f"a marker appeared after the verdict {job.verdict}; markers win"))
    if failed is None:
        try:
            failed = read_head(mon.run_dir, path, MARKER_HEAD)
        except FileNotFoundError:
            failed = None
        except (PathError, OSError) as e:
            end(mon, job, Verdict.FAILED, None, f"marker {path} is there but cannot be read: "
                f"{reason(e)}", now, at=mtime)
            return
    if failed is not None:
        code, detail = parse_failed(failed)
        end(mon, job, Verdict.FAILED, code, f"marker {path}: {detail or '(empty)'}", now, at=mtime)
        if code is not None and code > SIGNAL_EXIT and job.sched_id and mon.has_acct:
            mon.refine[job.name] = now  # killed by a signal: accounting may say by whom
            mon.to_retry.discard(job.name)
    else:
        end(mon, job, Verdict.DONE, 0, f"marker {marker_path(job.name)}", now, at=mtime)


def plan_retry(mon: Monitor, job: Job) -> None:
    """Queue a failed job for an automatic retry while --retries allows one."""
    if job.verdict and Verdict(job.verdict) in RETRYABLE and job.retried < mon.settings.retries:
        mon.to_retry.add(job.name)


def end(mon: Monitor, job: Job, verdict: Verdict, code: int | None, evidence: str, now: float,
        at: float | None = None, detail: str = "") -> None:
    """Record how a job ended, with the evidence, and decide on an automatic retry."""
    if code is not None and not EXIT_RANGE[0] <= code <= EXIT_RANGE[1]:
        code = None  # not an exit code (the evidence keeps what was said); no store holds 10**30
    job.verdict, job.exit_code, job.evidence = verdict.value, code, evidence
    if at:
        # a marker's time is the cluster's clock, read during this cycle's round trip, which
        # began at `now`: never later than `now`, so that a dependent submitted in this cycle
        # (started at `now`) never shows as started before what it waited for finished
        at = min(at, now)
    mon.acct_seen.pop(job.name, None)
    mon.queue_errors.pop(job.name, None)
    if verdict == Verdict.DONE:
        job.finished_at = at or now
        mon.move(job, JobState.DONE, now, "done", evidence)
        return
    what = detail or MEANING[verdict]
    if verdict == Verdict.FAILED and code is not None and not detail:
        what = f"exited with code {code}"
    job.failed_at = at or now
    mon.move(job, JobState.ERROR, now, verdict.value, f"{verdict.value}: {what} ({evidence})")
    plan_retry(mon, job)


def apply_accounting(mon: Monitor, endings: dict[str, Ending], now: float) -> None:
    """Judge from accounting records, second in the order of evidence: jobs that left the queue
    without a marker, and who killed a job whose marker shows a signal."""
    by_id = {j.sched_id: j for j in mon.running_jobs() if j.missing_since is not None and j.sched_id}

    def mine(job: Job, record: Ending | None) -> Ending | None:
        # ids get reused (a qmaster restart starts again at 1): a record of another name is
        # another job's
        name = arrays.submitted_name(job.token)  # an array's tasks carry the array's name
        return record if record is None or not record.name or record.name == name else None

    for name in list(mon.refine):
        job = mon.jobs[name]
        record = mine(job, endings.get(job.sched_id or ""))
        if record is not None:
            del mon.refine[name]
            mon.events.append((now, name, "accounting", record.evidence))
            if record.verdict not in (Verdict.DONE, Verdict.FAILED) and job.state == JobState.ERROR:
                code = job.exit_code
                job.verdict, job.evidence = record.verdict.value, f"{job.evidence}; {record.evidence}"
                job.reason = f"{record.verdict.value}: {MEANING[record.verdict]} ({job.evidence})"
                mon.events.append((now, name, "verdict", f"{record.verdict.value} (exit {code})"))
                mon.touch(job)
            plan_retry(mon, job)
        elif now - mon.refine[name] >= mon.settings.lost_after_s and job.sched_id in mon.acct_asked:
            # no record came though asked after --lost-after (a query the budget put off
            # does not count): the marker's verdict stands
            del mon.refine[name]
            plan_retry(mon, job)
    for sched_id, job in by_id.items():
        record = mine(job, endings.get(sched_id))
        if record is None:
            continue
        if job.name not in mon.acct_seen:
            mon.events.append((now, job.name, "accounting", record.evidence))
        mon.acct_seen[job.name] = record
        if record.verdict != Verdict.DONE:
            end(mon, job, record.verdict, record.exit_code, record.evidence, now,
                detail=unmarked(job, record.verdict, record.exit_code))
        # ended normally by the scheduler's account: wait for its marker, which a shared
        # filesystem may show late, until --lost-after (then check_queue decides)


def unmarked(job: Job, verdict: Verdict, code: int | None) -> str:
    """Why a job the accounting says ended has no marker: jobmon's wrapper writes them on any
    exit and on a catchable signal, so what is left is SIGKILL (a hard walltime, memory, node
    failure, qdel without a warning signal)."""
    what = f"exited with code {code}" if verdict == Verdict.FAILED and code is not None else MEANING[verdict]
    guess = {Verdict.WALLTIME: "killed by SIGKILL at the hard walltime",
             Verdict.OOM: "killed by SIGKILL for its memory",
             Verdict.CANCELLED: "deleted without a warning signal"}.get(verdict, "killed by SIGKILL? walltime?")
    return f"{what}; it left the queue without writing {marker_path(job.name)} ({guess})"


def check_queue(mon: Monitor, obs: Observation, now: float) -> None:
    """Note held jobs, jobs in an error state and jobs the queue no longer lists (vanished)."""
    q = obs.queue
    assert q is not None
    if not q.ok:
        mon.events.append((now, "", "queue-unknown", q.error))
        return  # an unanswered query proves nothing: never count it as vanished
    held: set[str] = set()
    for job in mon.running_jobs():
        if job.sched_id is None:
            continue
        entry = q.entries.get(job.sched_id)
        if entry is not None:
            if job.missing_since is not None:
                job.missing_since = None
                mon.touch(job)
            # a job queued ahead waits on its predecessor: Grid Engine shows that as a hold (hqw)
            if entry.held and job.name not in mon.ahead:
                held.add(job.name)
            if entry.running and job.running_at is None:
                job.running_at = now  # the timeline's start: first seen running
                mon.events.append((now, job.name, "running", f"scheduler state {entry.state}"))
                mon.touch(job)
            if entry.dependency == "never":
                _never(mon, job, entry.reason, now)
            else:
                _watch_error_state(mon, job, entry.state, entry.reason, entry.error, now)
            continue
        mon.queue_errors.pop(job.name, None)
        if job.missing_since is None:
            job.missing_since = now
            mon.touch(job)
        elif now - job.missing_since >= mon.settings.lost_after_s:
            wait = f"{mon.settings.lost_after_s:g} s"
            seen = mon.acct_seen.get(job.name)
            if seen is not None:
                end(mon, job, Verdict.VANISHED, seen.exit_code, seen.evidence, now,
                    detail=f"it left the queue without writing {marker_path(job.name)}: the "
                    f"scheduler says it ended normally, but the marker did not appear within "
                    f"{wait} (a job directory it could not write? a marker removed? see "
                    "docs/troubleshooting.md)")
            else:
                end(mon, job, Verdict.VANISHED, None, f"not listed by the scheduler for {wait}, "
                    "no accounting record", now,
                    detail=f"it left the queue without writing {marker_path(job.name)} "
                    f"(killed by SIGKILL? walltime? node failure?): the scheduler no longer "
                    f"lists job {job.sched_id}, no marker appeared within {wait} and there is "
                    "no accounting record")
    for name in held - mon.held:
        mon.events.append((now, name, "held", "the scheduler holds it; it does not count "
                           "against --maxqsub until released"))
    for name in mon.held - held:
        if mon.jobs[name].state == JobState.RUNNING:
            mon.events.append((now, name, "released", "no longer held"))
    if held != mon.held:
        for name in held ^ mon.held:
            mon.touch(mon.jobs[name])
    mon.held = held


def _never(mon: Monitor, job: Job, reason: str, now: float) -> None:
    """The scheduler says the job's dependency can never be met (Slurm DependencyNeverSatisfied:
    an afterok predecessor did not exit 0). Markers decide: while a predecessor is not done, its
    verdict will take the job out of the queue (run/ahead.py); once all are done by their
    markers, the job is taken out and submitted again without the scheduler's dependency."""
    if job.name in mon.ahead or job.name in mon.requeue:
        return
    mon.requeue[job.name] = (f"the scheduler says its dependency can never be met ({reason}), "
                             "but the jobs it was queued after are done by their markers; it is "
                             "submitted again without the scheduler's dependency")
    mon.touch(job)


def _watch_error_state(mon: Monitor, job: Job, state: str, reason: str, error: bool,
                       now: float) -> None:
    """A job in a scheduler error state (Grid Engine Eqw) never runs by itself: it is shown at
    once, left --lost-after seconds for the user to fix and clear (qmod -cj), then deleted
    and marked error with the scheduler's reason."""
    if not error:
        if mon.queue_errors.pop(job.name, None) is not None:
            mon.events.append((now, job.name, "queue", f"left the error state ({state})"))
            mon.touch(job)
        return
    since = mon.queue_errors.get(job.name)
    if since is None:
        mon.queue_errors[job.name] = now
        mon.events.append((now, job.name, "queue", f"in error state {state}"
                           + (f": {reason}" if reason else "")))
        mon.touch(job)
    elif now - since >= mon.settings.lost_after_s and job.name not in mon.to_cancel:
        mon.to_cancel[job.name] = f"in error state {state} for {mon.settings.lost_after_s:g} s"


def delete_stuck(mon: Monitor, now: float) -> None:
    """Delete from the queue the jobs whose error state outlasted its grace; mark them error."""
    jobs = [mon.jobs[n] for n in sorted(mon.to_cancel)]
    res = mon.remote.cancel([j.sched_id or "" for j in jobs])
    said = " ".join(res.text.split())[-300:]
    for job in jobs:
        why = mon.to_cancel.pop(job.name)
        if job.state == JobState.RUNNING:
            end(mon, job, Verdict.REJECTED, None, f"queue state; deleted: {said or 'no reason given'}",
                now, detail=f"{why}; deleted from the queue")


def final_failures(mon: Monitor) -> list[str]:
    """The jobs of MON that failed this tick and will not be retried (--notify's `failed`); those whose retry or verdict is not
    decided yet wait for a later tick, those already back to pending are dropped."""
    final: list[str] = []
    later, mon.failing = mon.failing, []
    for name in dict.fromkeys(later):
        if mon.jobs[name].state != JobState.ERROR:
            continue
        (mon.failing if name in mon.to_retry or name in mon.refine else final).append(name)
    return final


def stuck_summary(mon: Monitor) -> list[str]:
    """Name every job of MON that will not finish, and why (the summary of jobmon's exit 1)."""
    out: list[str] = []
    for name, job in sorted(mon.jobs.items(), key=lambda kv: kv[1].id):
        d = mon.graph.derived(name)
        if job.state == JobState.ERROR:
            word = "cancelled " if name in mon.cancelled else "error    "
            out.append(f"{word}{name}: {job.reason or 'failed'}")
        elif d == Derived.BLOCKED:
            out.append(f"blocked  {name}: by {', '.join(mon.graph.root_errors(name))}")
        elif d == Derived.WAITING:
            out.append(f"waiting  {name}: " + "; ".join(mon.graph.why(name)))
    if len(out) > SUMMARY_LINES:
        out = out[:SUMMARY_LINES] + [f"... and {len(out) - SUMMARY_LINES} more (see quelist)"]
    return out
