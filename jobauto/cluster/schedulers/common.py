"""Helpers shared by the adapters: ids, transient-error classification, accounting records."""

from __future__ import annotations

import re

from jobauto.core.errors import SchedulerError
from jobauto.core.model import CommandResult, Ending, Verdict

# Refusals that go away by themselves: limits, daemons down, timeouts, overload.
# Limits on the number of jobs: Grid Engine's max_u_jobs / max_jobs ("Unable to run job: job
# rejected: Only 1 jobs are allowed per user (current job count: 1)", "... per cluster");
# Slurm's MaxSubmitJobs ("sbatch: error: QOSMaxSubmitJobPerUserLimit" or AssocMaxSubmitJobLimit,
# then "Batch job submission failed: Job violates accounting/QOS policy (job submit limit,
# user's size and/or time limits)"). That last line alone (Slurm before the reason line) is
# taken for the submit limit; a reason naming a per-job request limit is PERMANENT below.
TRANSIENT = re.compile(
    r"unable to contact qmaster|commlib error|failed receiving gdi request|"
    r"socket timed out|timed out|timeout|temporarily|try again|resource temporarily|"
    r"max_u_jobs|max_jobs|maxjobs|job limit|limit .*(reached|exceeded)|would exceed|"
    r"jobs are allowed per (user|cluster)|violates accounting/QOS policy|"
    r"QOSMaxSubmitJob|AssocMaxSubmitJob|MaxSubmit|slurm_load|connection refused|"
    r"unable to contact slurm controller|Slurm temporarily unavailable|"
    r"cannot connect to server|pbs_iff|Maximum number of jobs|too many|"
    r"qmaster is not alive|not available|busy",
    re.IGNORECASE,
)


# The command's own refusal of its arguments: retrying cannot help, whatever the exit code
# (sbatch exits 255 for an unknown option, the code ssh uses for a lost connection). Also
# requests the cluster can never grant: a partition or resource it does not have (sbatch
# "Invalid partition name specified" / "invalid partition specified: x", qsub "Unable to run
# job: unknown resource"), a Slurm request above a per-job or per-node limit or below a minimum
# (the reason sbatch prints above the accounting-policy line, e.g. QOSMaxWallDurationPerJobLimit,
# QOSMinGRES; never the per-user or group submit limits).
PERMANENT = re.compile(r"unrecognized option|unknown option|invalid option|\busage:|"
                       r"invalid partition|unknown resource|"
                       r"\b(Assoc|QOS)(Max\w*Per(Job|Node)|Min)\w*", re.IGNORECASE)


def is_transient(text: str, rc: int) -> bool:
    if PERMANENT.search(text):
        return False
    return rc in (124, 126, 255) or rc < 0 or bool(TRANSIENT.search(text))


def fail(result: CommandResult, what: str) -> SchedulerError:
    """A SchedulerError for a failed command, classified transient or permanent."""
    msg = " ".join((result.stderr.strip() or result.text.strip() or f"exit code {result.rc}").split())
    return SchedulerError(f"{what} failed: {msg[-500:]}", argv=list(result.argv), rc=result.rc,
                          stderr=result.stderr, transient=is_transient(msg, result.rc))


def first_id(result: CommandResult, what: str, pattern: str = r"^\s*(\d+)") -> str:
    """Parse a job id from the first matching line of a submit command's stdout."""
    if result.rc != 0:
        raise fail(result, what)
    for line in result.text.splitlines():
        m = re.search(pattern, line)
        if m:
            return m.group(1)
    # accepted but unreadable: the outcome is unknown; reconcile, never guess
    raise SchedulerError(f"{what} printed no job id: {result.text.strip()[:300]!r}",
                         argv=list(result.argv), rc=result.rc, stderr=result.stderr, transient=True)


# What a scheduler prints for an id it no longer (or never) knew: not a failure of the query.
UNKNOWN_ID = re.compile(r"not found|invalid job id|unknown job id|does not exist|"
                        r"job has finished", re.IGNORECASE)


def acct_failed(result: CommandResult, what: str, found: bool) -> SchedulerError | None:
    """The error to raise when an accounting query answered nothing because it failed.

    Unknown ids are normal (records expire, a job may not be recorded yet); anything else on
    stderr, with no record parsed, means the answer is unknown rather than empty."""
    if found:
        return None
    said = [ln for ln in result.stderr.splitlines() if ln.strip()]
    if not any(not UNKNOWN_ID.search(ln) for ln in said) and (result.rc == 0 or said):
        return None
    return fail(result, what)


# The name of an array jobmon submits (run/arrays.py: `ja` TAG `X` BATCH `_` K): only its tasks
# are listed under ids of their own; other arrays (`jobauto workers`) stay one entry.
TASK_ARRAY = re.compile(r"ja[0-9a-z]*X[0-9a-z]+_[0-9a-z]+")


def per_task(name: str) -> bool:
    return TASK_ARRAY.fullmatch(name.strip()) is not None


def signal_exit(code: int, signal: int) -> int:
    """A shell's exit code for a process killed by `signal` (128 + signal), else `code`."""
    return 128 + signal if signal else code


def hms(seconds: int) -> str:
    """A wall-clock limit as H:MM:SS, hours unbounded (Grid Engine h_rt, PBS walltime)."""
    h, rest = divmod(int(seconds), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so a record fits in one line of evidence."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def combine(job_id: str, tasks: list[Ending]) -> Ending:
    """One Ending for an array job from its tasks' (all final): the first task that did not
    end well decides, and the evidence names it; all done means done."""
    # the tasks share the array's name; the first that names it ("" is unknown) speaks for all
    name = next((t.name for t in tasks if t.name), "")
    bad = next((t for t in tasks if t.verdict != Verdict.DONE), None)
    if bad is None:
        return Ending(job_id, Verdict.DONE, 0, f"{len(tasks)} tasks done, e.g. {tasks[0].evidence}",
                      name)
    others = sum(1 for t in tasks if t.verdict != Verdict.DONE) - 1
    more = f" (+{others} more not done)" if others else ""
    return Ending(job_id, bad.verdict, bad.exit_code,
                  f"task {bad.sched_id} of {len(tasks)}: {bad.evidence}{more}", name)


# How a submission earlier in the same batch hands its id on (the `submit` op): the id in its
# journal line's answer, in each adapter's single-job form ("4711", "4711.server", "4711;cluster",
# 'Your job 4711 ("x") has been submitted'). Anything else (a warning, two lines) gives none:
# the job to be queued after it is not sent (UNSENT), and goes the next time.
BATCH_ID = re.compile(r"^ *(?:Your job )?([0-9]+)(?:[.;][^ ]*| \(.*\) has been submitted)? *$")
UNSENT = "jobauto: not sent: no id in this batch for"
UNSENT_RC = 75


def batch_id(token: str) -> str:
    """What stands for the id of submission TOKEN, earlier in the same batch, in the arguments
    of one queued after it (the `submit` op puts the id in its place)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", token):
        raise ValueError(f"not a submission token: {token!r}")
    return f"@{token}@"
