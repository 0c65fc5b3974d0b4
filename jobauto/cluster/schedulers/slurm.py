"""Slurm: sbatch --parsable, squeue with a fixed format, sacct (scontrol without accounting)."""

from __future__ import annotations

import re
from dataclasses import replace

from jobauto.cluster.schedulers.common import (
    acct_failed,
    combine,
    fail,
    first_id,
    one_line,
    per_task,
    signal_exit,
)
from jobauto.core.model import CommandResult, Ending, QueueEntry, QueueSnapshot, Verdict

QUEUE_FORMAT = "%i|%j|%T|%r"
SACCT_FIELDS = "JobID,JobName,State,ExitCode,Elapsed"

# sacct knows every job; where accounting is off (sacct fails) scontrol still knows the jobs
# that ended less than MinJobAge (300 s by default) ago. The ids stay positional parameters.
ACCT = (
    'ids=$(IFS=,; echo "$*"); '
    f'sacct -X -n -P -o {SACCT_FIELDS} -j "$ids" 2>/dev/null && exit 0; '
    'for i; do scontrol -o show job "$i"; done; exit 0'
)

FINAL = {
    "COMPLETED": Verdict.DONE,
    "FAILED": Verdict.FAILED,
    "TIMEOUT": Verdict.WALLTIME,
    "DEADLINE": Verdict.WALLTIME,
    "OUT_OF_MEMORY": Verdict.OOM,
    "NODE_FAIL": Verdict.NODE_FAILURE,
    "BOOT_FAIL": Verdict.NODE_FAILURE,
    "CANCELLED": Verdict.CANCELLED,
    "PREEMPTED": Verdict.CANCELLED,
}
# Every other state (PENDING, RUNNING, REQUEUED, SUSPENDED, COMPLETING, CONFIGURING, RESIZING,
# REQUEUE_HOLD, SPECIAL_EXIT, REVOKED: the job goes on, here or on a sibling cluster) is not an
# ending.

RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "RESIZING", "STAGE_OUT", "SIGNALING"}
# A person must release these: scontrol release (user or admin hold, requeued held).
HELD_STATES = {"REQUEUE_HOLD", "SPECIAL_EXIT"}
HELD_REASON = re.compile(r"held|hold", re.IGNORECASE)
# Pending reasons that never clear by themselves, so the job would wait for ever: a dependency
# that can no longer be met (kill_invalid_depend unset), an account or QOS the job may not use,
# a request above a per-job limit (AssocMax*PerJob*, QOSMax*PerJob*). Reasons about the cluster's
# current state (Resources, Priority, PartitionNodeLimit with nodes down, BadConstraints while
# a big request waits, ReqNodeNotAvail, group limits) clear by themselves and are not errors.
STUCK_REASON = re.compile(r"^(DependencyNeverSatisfied|InvalidAccount|InvalidQOS)$|"
                          r"^(Assoc|QOS)Max\w*PerJob")

# A pending job waiting on its --dependency, and one whose dependency can no longer be met (an
# afterok job that failed; kill_invalid_depend unset). The latter stays an error for a job jobmon
# did not submit ahead; for one it did, the predecessor's markers decide (run/ahead.py).
DEPENDENCY = {"Dependency": "waiting", "DependencyNeverSatisfied": "never"}


def base_id(raw: str) -> str:
    """The job id of an array task or het-job component: 12_[1-3], 12_1, 12_[5-6%2], 12+0 -> 12."""
    m = re.match(r"\s*(\d+)", raw)
    return m.group(1) if m else raw.strip()


def exit_code(text: str) -> int | None:
    """sacct/scontrol ExitCode "code:signal" as a shell would report it (0:9 -> 137)."""
    m = re.match(r"(\d+):(\d+)", text.strip())
    return signal_exit(int(m.group(1)), int(m.group(2))) if m else None


def record_name(name: str) -> str:
    """The job name of a record, "" when the record does not tell (the name is unknown).

    Right after a job ends sacct may briefly show the JobName `allocation` instead of the
    job's own name. That says nothing about whose record it is, so it counts as unknown: the
    monitor ignores a record whose name is another job's, and must not ignore the job's own
    ending for it. jobauto's own job names (the submission tokens) are never `allocation`."""
    return "" if name == "allocation" else name


def ending(task_id: str, state: str, code: int | None, evidence: str, name: str) -> Ending | None:
    """The Ending of one job or task in a final state; None while it is not final."""
    word = state.split()[0] if state.split() else ""
    verdict = FINAL.get(word)
    if verdict is None:
        return None
    if word == "PREEMPTED":
        evidence += " (preempted)"
    if verdict == Verdict.DONE:
        return Ending(task_id, verdict, 0, evidence, name)
    return Ending(task_id, verdict, code or None, evidence, name)


class SlurmAdapter:
    name = "slurm"
    can_find_by_name = True
    task_arrays = True

    def submit_argv(self, script: str, job_name: str, extra: list[str],
                    wrapper: str | None = None) -> list[str]:
        # Never -Q: `sbatch -Q --parsable` prints no id. No --output: the template sets
        # qsub.ID.o%j (the wrapper carries it); the job runs in the submit directory, the job's.
        return ["sbatch", "--parsable", "-J", job_name, *extra, wrapper or script]

    def parse_submit(self, result: CommandResult) -> str:
        # "123", or "123;cluster" on a multi-cluster setup
        return first_id(result, "sbatch", r"^\s*(\d+)(?:;\S*)?\s*$")

    def queue_argv(self, user: str | None) -> list[str]:
        if user:
            return ["squeue", "-h", "-u", user, "-o", QUEUE_FORMAT]
        return ["sh", "-c", f"squeue -h -u \"$(id -un)\" -o '{QUEUE_FORMAT}'"]

    def parse_queue(self, result: CommandResult) -> QueueSnapshot:
        if result.rc != 0:
            return QueueSnapshot(False, error=str(fail(result, "squeue")))
        entries: dict[str, QueueEntry] = {}
        for line in result.text.splitlines():
            if "|" not in line:
                continue
            raw, rest = line.split("|", 1)
            parts = rest.rsplit("|", 2)  # a job name may itself hold "|"
            if len(parts) != 3:
                continue
            name, state, reason = parts
            held = state in HELD_STATES or (state == "PENDING" and bool(HELD_REASON.search(reason)))
            error = state == "PENDING" and bool(STUCK_REASON.search(reason))
            jid = base_id(raw)
            entry = QueueEntry(jid, name, state, held=held, error=error,
                               reason="" if reason == "None" else reason,
                               running=state in RUNNING, dependency=DEPENDENCY.get(reason, ""))
            for task in array_tasks(raw) if per_task(name) else []:   # 4711_3, or the pending rest 4711_[4-9%2]
                tid = f"{jid}_{task}"
                entries[tid] = replace(entry, sched_id=tid)
            prev = entries.get(jid)
            # an array is listed once per running task and once for its pending rest
            if prev is None or rank(entry) > rank(prev):
                entries[jid] = entry
        return QueueSnapshot(True, entries)

    def acct_argv(self, ids: list[str]) -> list[str] | None:
        return ["sh", "-c", ACCT, "jobauto-acct", *ids]

    def parse_acct(self, result: CommandResult) -> dict[str, Ending]:
        tasks: dict[str, list[Ending | None]] = {}
        out: dict[str, Ending] = {}
        for line in result.text.splitlines():
            if line.startswith("JobId="):
                base, task = scontrol_record(line)
            elif line.count("|") >= 4:
                base, task = sacct_record(line)
            else:
                continue
            tasks.setdefault(base, []).append(task)
            if task is not None and task.sched_id != base and per_task(task.name):
                out[task.sched_id] = task   # each task of an array under its own id (4711_3)
        err = acct_failed(result, "sacct/scontrol", bool(tasks))
        if err is not None:
            raise err
        for jid, found in tasks.items():
            if any(t is None for t in found):
                continue  # a task is still pending or running
            final = [t for t in found if t is not None]
            single = len(final) == 1 and final[0].sched_id == jid
            out[jid] = final[0] if single else combine(jid, final)
        return out

    def cancel_argv(self, ids: list[str]) -> list[str]:
        return ["scancel", *ids]

    def depend_args(self, ids: list[str]) -> list[str] | None:
        return [f"--dependency=afterok:{':'.join(ids)}"]

    def array_args(self, n: int) -> list[str]:
        return [f"--array=1-{n}"]

    def walltime_args(self, seconds: int) -> list[str]:
        return [f"--time={slurm_time(seconds)}"]

    def array_submit_argv(self, script: str, job_name: str, n: int, extra: list[str]) -> list[str]:
        # %A is the array's id, %a the task's index: one pair of files per task
        return ["sbatch", "--parsable", "-J", job_name, *self.array_args(n),
                "-o", f"{job_name}.o%A.%a", "-e", f"{job_name}.e%A.%a", *extra, script]

    def parse_array_submit(self, result: CommandResult) -> str:
        # --parsable prints the array's id: "12", or "12;cluster"
        return self.parse_submit(result)

    def task_id(self, array_id: str, task: int) -> str:
        return f"{array_id}_{task}"   # what squeue, sacct and scancel take for one task


TASKS_MAX = 100_000   # tasks of one pending line expanded into entries of their own


def array_tasks(raw: str) -> list[int]:
    """The tasks an squeue id names: 12_3 -> [3]; 12_[1-3,7%2] -> [1, 2, 3, 7]; 12 -> []."""
    m = re.fullmatch(r"\s*\d+_(?:(\d{1,9})|\[([0-9,\-:]*)(?:%\d+)?\])\s*", raw)
    if m is None:
        return []
    if m.group(1):
        return [int(m.group(1))]
    out: list[int] = []
    for part in m.group(2).split(","):
        r = re.fullmatch(r"(\d{1,9})(?:-(\d{1,9})(?::(\d{1,9}))?)?", part)
        if r is None:
            return []
        first, last = int(r.group(1)), int(r.group(2) or r.group(1))
        step = max(int(r.group(3) or 1), 1)
        if len(out) + (last - first) // step >= TASKS_MAX:
            return []
        out.extend(range(first, last + 1, step))
    return out


def slurm_time(seconds: int) -> str:
    """A time limit in Slurm's D-HH:MM:SS (Slurm rounds seconds up to the next minute)."""
    d, rest = divmod(int(seconds), 86400)
    return f"{d}-{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"


def rank(e: QueueEntry) -> int:
    """How telling a queue line is for the whole job: stuck, then running, then held."""
    return 3 if e.error else 2 if e.state in RUNNING else 1 if e.held else 0


def sacct_record(line: str) -> tuple[str, Ending | None]:
    """JobID|JobName|State|ExitCode|Elapsed; the name may hold "|", the other fields never."""
    raw, rest = line.split("|", 1)
    name, state, code = rest.rsplit("|", 3)[:3]
    return base_id(raw), ending(raw, state, exit_code(code), one_line("sacct: " + line),
                                record_name(name))


def scontrol_record(line: str) -> tuple[str, Ending | None]:
    """One `scontrol -o show job` line: Key=Value pairs (values such as Reason may hold spaces)."""
    def field(key: str) -> str:
        m = re.search(rf"(?:^| ){key}=(\S*)", line)
        return m.group(1) if m else ""

    jid, array = field("JobId"), field("ArrayJobId")
    task = f"{array}_{field('ArrayTaskId')}" if array else jid
    m = re.search(r"(?:^| )JobName=(.*?) UserId=", line)
    name = m.group(1) if m else ""
    state = field("JobState")
    ev = one_line(f"scontrol: JobId={task} JobName={name} "
                  f"JobState={state} Reason={field('Reason')} ExitCode={field('ExitCode')} "
                  f"RunTime={field('RunTime')}")
    return base_id(array or jid), ending(task, state, exit_code(field("ExitCode")), ev,
                                         record_name(name))
