"""PBS Pro / OpenPBS and Torque (also Slurm's Torque wrappers): qsub, qstat -u plus qstat -f."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace

from jobauto.cluster.schedulers.common import (
    acct_failed,
    fail,
    first_id,
    hms,
    one_line,
    per_task,
    signal_exit,
)
from jobauto.cluster.schedulers.slurm import SACCT_FIELDS, SlurmAdapter
from jobauto.core.model import CommandResult, Ending, QueueEntry, QueueSnapshot, Verdict

# -- Slurm's Torque wrappers (slurm-wlm-torque) ------------------------------------------------
# Perl over Slurm's API that look like Torque. What they do unlike Torque / PBS Pro, all here:
# - `qstat` refuses -t (subjobs) and -x with its usage message, exit REFUSED: that refusal, with
#   Slurm's own commands on the PATH, is how the commands below know they run on the wrappers;
# - `qstat -u` lists an array's tasks under Slurm's own job ids (array 12: rows 13, 14 and 12,
#   no task index) and `qstat -f` shows nothing of arrays: the queue command adds squeue's map
#   "JOBID ARRAY TASK REASON" after MAP_MARK (task_map): each task's ARRAY[TASK], and a never
#   satisfiable afterok (plain Q in qstat);
# - `qstat` keeps no exit status: the accounting command adds sacct's records after SACCT_MARK;
#   sacct takes ARRAY_TASK for the task PBS calls ARRAY[TASK] (to_slurm / from_slurm);
# - `qdel 12[3]` reads the id as the number 12 and kills the whole array: cancel takes
#   `scancel 12_3` there.
REFUSED = 2
MAP_MARK = "@@jobauto-squeue"
SACCT_MARK = "@@jobauto-sacct"
TO_SLURM = "sed 's/\\[\\]//g; s/\\[/_/g; s/\\]//g'"   # 12[3] -> 12_3, 12[] -> 12 (shell)

# The user's jobs, then their full records. The listing (`qstat -t -u`: an array's subjobs
# each on a row of its own, 12[3]) finds them, but its name column is cut (PBS Pro: 10
# characters, Torque: 16), too short to find a submission by its name; `qstat -f` has the
# whole name and the hold types. Only ids the listing printed go to `qstat -f`, as digits with
# an optional [N] (set -f: no globbing), and only those not yet finished (state C/F/X, the
# column before last): Torque and the Slurm wrappers list finished jobs for minutes, and asking
# for their records made a cycle grow with them (bench/). On the wrappers (-t refused) squeue's
# map is read first, then the listing: a task that starts in between is still named by the
# pending row it was in. A failing listing or map is a failed query; a failing `qstat -f` (a
# job that ended in between) still leaves the listing.
QUEUE = (
    'u=${1:-$(id -un)}; set -f; w=; list=$(qstat -t -u "$u" 2>&1); rc=$?; '
    f'if [ "$rc" -eq {REFUSED} ] && command -v squeue >/dev/null 2>&1; then w=1; '
    "map=$(squeue -h -r -u \"$u\" -o '%A %F %K %r') || exit; list=$(qstat -u \"$u\") || exit; "
    f'elif [ "$rc" -eq {REFUSED} ]; then list=$(qstat -u "$u") || exit; '
    'elif [ "$rc" -ne 0 ]; then printf "%s\\n" "$list" >&2; exit "$rc"; fi; '
    'printf "%s\\n" "$list"; '
    'ids=$(printf "%s\\n" "$list" | awk \'NF > 1 && $(NF-1) !~ /^[CFX]$/ && '
    'match($1, /^[0-9]+(\\[[0-9]*\\])?/) { print substr($1, RSTART, RLENGTH) }\'); '
    '[ -z "$ids" ] || qstat -f $ids 2>/dev/null; '
    f'[ -z "$w" ] || printf "%s\\n%s\\n" "{MAP_MARK}" "$map"; exit 0'
)
# PBS Pro keeps finished jobs for `qstat -x` (state F, Exit_status). Torque's -x means XML
# and shows the jobs it keeps (keep_completed; state C, exit_status). Slurm's wrappers reject
# -x (exit 2, usage): then plain `qstat -f`. The first call's stderr is kept unless it was that.
ACCT = (
    'set -f; { err=$(qstat -x -f "$@" 2>&1 >&3); rc=$?; } 3>&1; '
    f'if [ "$rc" -eq {REFUSED} ]; then qstat -f "$@"; '
    'elif [ -n "$err" ]; then printf "%s\\n" "$err" >&2; fi; '
    # PBS-style qsub on top of Slurm (Slurm's Torque wrappers): their qstat keeps no exit status,
    # but Slurm's own accounting has the whole record
    f'if command -v sacct >/dev/null 2>&1; then printf "%s\\n" "{SACCT_MARK}"; '
    f'ids=$(IFS=,; echo "$*" | {TO_SLURM}); '
    f'sacct -X -n -P -o {SACCT_FIELDS} -j "$ids" 2>/dev/null; fi; '
    'exit 0'
)
# qdel, but on the wrappers (asked only when a task is among the ids) scancel with Slurm's ids
CANCEL = (
    '[ "$#" -gt 0 ] || exit 0; set -f; case "$*" in *"["*) '
    'if command -v scancel >/dev/null 2>&1 && '
    f'{{ qstat -t -u "$(id -un)" >/dev/null 2>&1; [ "$?" -eq {REFUSED} ]; }}; then '
    f'exec scancel $(printf "%s\\n" "$@" | {TO_SLURM}); fi;; esac; exec qdel "$@"'
)
ID = re.compile(r"[0-9]{1,12}(\[[0-9]{0,9}\])?")   # what reaches a shell: 17, 12[3], 12[]
MAP_MAX = 100_000   # lines of squeue's map read (one per task)


# The dependency types that keep a job waiting (in PBS's `depend` attribute, "afterok:12.srv@srv"
# or "on:2"); before* types are on the job that others wait for and hold nothing.
AFTER = re.compile(r"(^|,)(after|afterok|afternotok|afterany|on):")

FINISHED = {"C", "F", "X"}  # completed (Torque), finished (PBS Pro), finished subjob (PBS Pro)

# Exit codes the PBS Pro / OpenPBS MoM sets instead of the script's (src/include/job.h,
# JOB_EXEC_*): -1..-23 are failures to start or set up the job on its host; -24..-29 kills
# for exceeding a limit.
PBSPRO_LIMITS = {
    -24: (Verdict.FAILED, "JOB_EXEC_KILL_NCPUS_BURST"),
    -25: (Verdict.FAILED, "JOB_EXEC_KILL_NCPUS_SUM"),
    -26: (Verdict.OOM, "JOB_EXEC_KILL_VMEM"),
    -27: (Verdict.OOM, "JOB_EXEC_KILL_MEM"),
    -28: (Verdict.WALLTIME, "JOB_EXEC_KILL_CPUT"),
    -29: (Verdict.WALLTIME, "JOB_EXEC_KILL_WALLTIME"),
}
# Torque's (Adaptive Computing, "Job exit status", 6.1): -1..-9, -13, -14 failures to start
# the job on its host; -10..-12 kills for exceeding a limit. The same numbers mean other things
# in PBS Pro, so the attribute's spelling tells them apart: Torque "exit_status", PBS Pro
# "Exit_status".
TORQUE_LIMITS = {
    -10: (Verdict.OOM, "JOB_EXEC_OVERLIMIT_MEM"),
    -11: (Verdict.WALLTIME, "JOB_EXEC_OVERLIMIT_WT"),
    -12: (Verdict.WALLTIME, "JOB_EXEC_OVERLIMIT_CPUT"),
}


def job_id(raw: str) -> str | None:
    """The id jobauto knows a job by: 17.server, 12[].server, 12[3].server, 1234.pbs* (a cut
    listing column), 12[3].se* -> 17, 12, 12[3], 1234, 12[3]; None for a task's id cut inside
    its brackets (12[3*) or no id at all."""
    m = re.match(r"\s*([0-9]{1,12})(?:\[([0-9]{0,9})(\])?)?", raw)
    if m is None or (m.group(2) is not None and m.group(3) is None):
        return None
    return f"{m.group(1)}[{m.group(2)}]" if m.group(2) else m.group(1)


def base_id(jid: str) -> str:
    """The array's (or job's) own id in a job_id: 12[3] -> 12."""
    return jid.partition("[")[0]


def shell_ids(ids: list[str]) -> list[str]:
    """The ids that may reach the scheduler's commands: digits with an optional [N] (ID)."""
    return [i for i in ids if ID.fullmatch(i)]


def from_slurm(sid: str) -> str:
    """Slurm's id of an array task as PBS writes it: 12_3 -> 12[3] (others stay)."""
    m = re.fullmatch(r"([0-9]+)_([0-9]+)", sid)
    return f"{m.group(1)}[{m.group(2)}]" if m else sid


def task_map(text: str) -> tuple[dict[str, list[str]], set[str]]:
    """squeue's "JOBID ARRAY TASK REASON" lines (Slurm's wrappers) as Slurm job id -> the tasks
    (ARRAY[TASK]) its row stands for (one running task, or all the pending ones of an array; a
    job of no array, TASK N/A, is not in the map), and the ids whose dependency can never be met."""
    out: dict[str, list[str]] = {}
    never: set[str] = set()
    for line in text.splitlines()[:MAP_MAX]:
        if m := re.fullmatch(r"\s*([0-9]{1,12}) ([0-9]{1,12}|N/A) ([0-9]{1,9}|N/A)(?: (\S{1,80}))?"
                             r"\s*", line):
            if m.group(3) != "N/A":
                out.setdefault(m.group(1), []).append(f"{m.group(2)}[{m.group(3)}]")
            if m.group(4) == "DependencyNeverSatisfied":
                never.add(m.group(1))
    return out, never


def parse_full(text: str) -> list[dict[str, str]]:
    """`qstat -f` records: "Job Id: X" then "key = value" lines; long values continue on
    lines without " = " (PBS Pro wraps at 80 columns)."""
    records: list[dict[str, str]] = []
    key = ""
    for line in text.splitlines():
        if line.startswith("Job Id:"):
            records.append({"Job Id": line.split(":", 1)[1].strip()})
            key = ""
        elif records and line[:1].isspace() and " = " in line:
            key, value = line.strip().split(" = ", 1)
            records[-1][key] = value
        elif records and key and line[:1].isspace() and line.strip():
            records[-1][key] += line.strip()
    return records


def parse_xml(text: str) -> list[dict[str, str]]:
    """Torque's `qstat -x`: <Data><Job><Job_Id>..</Job_Id><resources_used><walltime>.."""
    try:
        root = ET.fromstring(text[text.index("<Data"):].strip())
    except (ValueError, ET.ParseError):
        return []
    records = []
    for job in root.iter("Job"):
        rec = {"Job Id": (job.findtext("Job_Id") or "").strip()}
        for child in job:
            if len(child):
                rec.update({f"{child.tag}.{c.tag}": (c.text or "").strip() for c in child})
            else:
                rec[child.tag] = (child.text or "").strip()
        records.append(rec)
    return records


def seconds(value: str) -> float:
    total = 0.0
    for part in value.split(":"):
        total = total * 60 + (float(part) if re.fullmatch(r"\d+(\.\d+)?", part) else 0.0)
    return total


def record_ending(rec: dict[str, str]) -> Ending | None:
    """The Ending of a finished job's record; None while it runs or when it has no exit
    status (Slurm's Torque wrappers never print one: C says only that the job ended)."""
    if rec.get("job_state", "") not in FINISHED:
        return None
    pbspro = "Exit_status" in rec
    raw = rec.get("Exit_status", rec.get("exit_status", "")).strip()
    if not re.fullmatch(r"-?\d+", raw):
        return None
    status = int(raw)
    used, limit = rec.get("resources_used.walltime", ""), rec.get("Resource_List.walltime", "")
    table = PBSPRO_LIMITS if pbspro else TORQUE_LIMITS
    verdict, name = table.get(status, (None, ""))
    if verdict is None:
        if status == 0:
            verdict = Verdict.DONE
        elif status < 0:
            verdict, name = Verdict.NODE_FAILURE, "JOB_EXEC_* setup failure"
        elif status > 256 and used and limit and seconds(used) >= seconds(limit) > 0:
            # older PBS Pro kills at the walltime limit with SIGTERM, like qdel: 271
            verdict, name = Verdict.WALLTIME, f"signal {status - 256} at the walltime limit"
        elif status in (256 + 9, 256 + 15):
            verdict, name = Verdict.CANCELLED, f"killed by signal {status - 256}: qdel"
        elif status > 256:
            verdict, name = Verdict.FAILED, f"killed by signal {status - 256}"
        else:
            verdict = Verdict.FAILED
    code = signal_exit(0, status - 256) if status > 256 else status
    attr = "Exit_status" if pbspro else "exit_status"
    ev = one_line(f"qstat: {rec['Job Id']} Job_Name={rec.get('Job_Name', '')} "
                  f"job_state={rec['job_state']} {attr}={status}"
                  f"{f' ({name})' if name else ''}"
                  f"{f' walltime={used}/{limit}' if used else ''}")
    jid = job_id(rec["Job Id"])
    if jid is None:
        return None
    return Ending(jid, verdict, code, ev, rec.get("Job_Name", "").strip())


# `qsub --version`: PBS Pro / OpenPBS print "pbs_version = 2022.1.1", Torque "Version: 6.1.3",
# Slurm's Torque wrappers "Unknown option: version" (exit 2).
VERSION = "qsub --version 2>&1; exit 0"


# An array's qsub where the flavour is not known (jobmon): -J for PBS Pro, else -t.
ARRAY_QSUB = ('r=$1; shift; if qsub --version 2>&1 | grep -qi pbs_version; then o=-J; '
              'else o=-t; fi; exec qsub "$o" "$r" "$@"')


def version_argv() -> list[str]:
    return ["sh", "-c", VERSION]


def is_pbspro(result: CommandResult) -> bool:
    """Whether `qsub --version` came from PBS Pro / OpenPBS (arrays: -J) rather than Torque or
    Slurm's Torque wrappers (arrays: -t)."""
    return "pbs_version" in result.text.lower()


class PbsAdapter:
    name = "pbs"
    can_find_by_name = True
    # a task is ARRAY[TASK] in the listing (qstat -t; on Slurm's wrappers squeue's map), the
    # accounting and cancel (docs/decisions.md)
    task_arrays = True

    def __init__(self, pro: bool | None = None) -> None:
        # PBS Pro / OpenPBS rather than Torque (only arrays differ); None: not asked, an array's
        # submission asks `qsub --version` on the cluster itself (ARRAY_QSUB)
        self.pro = pro

    def submit_argv(self, script: str, job_name: str, extra: list[str],
                    wrapper: str | None = None) -> list[str]:
        # No -o/-e: PBS cannot put the job id into a path, and the default NAME.oSEQ in the
        # submit directory keeps one file per attempt (the template joins them with -j oe).
        # The script is an argument: the Torque wrapper cannot read one from stdin.
        # The wrapper's #! line names sh (PBS Pro and Slurm's qsub honour it; Torque without
        # -S uses the login shell, which must then read sh).
        return ["qsub", "-N", job_name, *extra, wrapper or script]

    def parse_submit(self, result: CommandResult) -> str:
        # "17" (Slurm's wrapper), "17.server" (Torque, PBS Pro), arrays "12[]" / "12[].server"
        return first_id(result, "qsub", r"^\s*(\d+)(?:\[\d*\])?(?:\.\S*)?\s*$")

    def queue_argv(self, user: str | None) -> list[str]:
        return ["sh", "-c", QUEUE, "jobauto-queue", user or ""]

    def parse_queue(self, result: CommandResult) -> QueueSnapshot:
        if result.rc != 0:
            return QueueSnapshot(False, error=str(fail(result, "qstat")))
        text, wrappers, mapped = result.text.partition(MAP_MARK + "\n")
        rows: dict[str, QueueEntry] = {}
        for line in text.splitlines():
            cols = line.split()
            # a listing row: Job ID, Username, Queue, Jobname, SessID, NDS, TSK, Memory, Time, S, Time
            jid = job_id(cols[0]) if len(cols) >= 6 and line[:1].isdigit() else None
            if jid is not None:
                keep(rows, QueueEntry(jid, cols[3], cols[-2], held=cols[-2] == "H",
                                      running=cols[-2] in ("R", "B", "E")))
        for rec in parse_full(text):
            jid = job_id(rec["Job Id"])
            if jid is None or jid not in rows:
                continue
            state = rec.get("job_state", "")
            holds = rec.get("Hold_Types", "")
            # H: held (Hold_Types u user, o operator, s system). A job waiting on its
            # dependencies (qsub -W depend=afterok:...) is H with a system hold that the server
            # itself lifts when they are met: queued, not held and not stuck. Any other system
            # hold (too many failed attempts to run, a bad uid) waits for an administrator: an
            # error, like Eqw. Slurm's wrappers show a held job as Q and print no Hold_Types.
            depend = rec.get("depend", "")
            waiting = (state == "H" and bool(AFTER.search(depend)) and "s" in holds
                       and not any(c in holds for c in "uo"))
            held = state == "H" and not waiting
            rows[jid] = QueueEntry(jid, rec.get("Job_Name", ""), state,
                                   held=held, error=held and "s" in holds and not AFTER.search(depend),
                                   running=state in ("R", "B", "E"),
                                   dependency="waiting" if waiting else "",
                                   reason=one_line(f"waiting on its dependencies ({depend})")
                                   if waiting else rec.get("comment", ""))
        tasks, never = task_map(mapped)
        entries: dict[str, QueueEntry] = {}
        for jid, e in rows.items():
            if e.state in FINISHED:
                continue
            if jid in never:   # Slurm says its afterok can never be met (qstat: plain Q)
                e = replace(e, dependency="never", reason="DependencyNeverSatisfied")
            named = tasks.get(jid)
            if wrappers and named is None and per_task(e.name):
                continue   # a task that started after squeue answered: its pending row names it
            # a task under its own id (12[3]), and every row under its array's (12)
            for tid in named or [jid]:
                if tid != base_id(tid):   # never 12[] (job_id reads it as 12)
                    entries[tid] = replace(e, sched_id=tid)
                keep(entries, replace(e, sched_id=base_id(tid)))
        return QueueSnapshot(True, entries)

    def acct_argv(self, ids: list[str]) -> list[str] | None:
        return ["sh", "-c", ACCT, "jobauto-acct", *shell_ids(ids)]

    def parse_acct(self, result: CommandResult) -> dict[str, Ending]:
        text, _, sacct = result.text.partition(SACCT_MARK + "\n")
        out = self._parse_pbs(result, text)
        if sacct.strip():
            rest = SlurmAdapter().parse_acct(CommandResult(result.argv, 0, sacct.encode()))
            rest = {from_slurm(k): replace(e, sched_id=from_slurm(e.sched_id))
                    for k, e in rest.items()}
            out = {**rest, **out}  # a PBS record with an exit status wins
        return out

    def _parse_pbs(self, result: CommandResult, text: str) -> dict[str, Ending]:
        records = parse_xml(text) if "<Data" in text else parse_full(text)
        out: dict[str, Ending] = {}
        for rec in records:
            end = record_ending(rec)
            if end is not None:
                out[end.sched_id] = end
        # exit 153 alone: PBSE_UNKJOBID (15001) modulo 256, every id unknown
        err = acct_failed(result, "qstat", bool(records) or (result.rc == 153 and not result.stderr))
        if err is not None:
            raise err
        return out

    def cancel_argv(self, ids: list[str]) -> list[str]:
        return ["sh", "-c", CANCEL, "jobauto-cancel", *shell_ids(ids)]

    def depend_args(self, ids: list[str]) -> list[str] | None:
        # Slurm's Torque wrapper passes the value on as sbatch --dependency
        return ["-W", f"depend=afterok:{':'.join(ids)}"]

    def array_args(self, n: int) -> list[str]:
        if self.pro:
            # PBS Pro's -J wants a range start-end with end > start (its manual; no PBS Pro here
            # to try 1-1), so one worker is a plain job
            return ["-J", f"1-{n}"] if n > 1 else []
        return ["-t", f"1-{n}"]  # Torque; Slurm's wrappers take -t and -J alike

    def walltime_args(self, seconds: int) -> list[str]:
        return ["-l", f"walltime={hms(seconds)}"]

    def array_submit_argv(self, script: str, job_name: str, n: int, extra: list[str]) -> list[str]:
        # No -o/-e: the default NAME.oSEQ-INDEX (Torque), NAME.oSEQ.INDEX (PBS Pro, Slurm's
        # wrappers) lands in the submit directory. Slurm's wrappers join their sbatch command
        # line into one shell string unquoted, so every word here is free of spaces.
        if self.pro is None:
            return ["sh", "-c", ARRAY_QSUB, "jobauto-array", f"1-{n}", "-N", job_name, *extra,
                    script]
        return ["qsub", "-N", job_name, *self.array_args(n), *extra, script]

    def parse_array_submit(self, result: CommandResult) -> str:
        # "12" (Slurm's wrappers), "12[].server" (Torque, PBS Pro)
        return self.parse_submit(result)

    def task_id(self, array_id: str, task: int) -> str:
        return f"{array_id}[{task}]"


def keep(entries: dict[str, QueueEntry], e: QueueEntry) -> None:
    """Keep one entry per job (an array's subjobs share it): running, then stuck, then held."""
    def rank(x: QueueEntry) -> int:
        return 3 if x.state in ("R", "B", "E") else 2 if x.error else 1 if x.held else 0
    prev = entries.get(e.sched_id)
    if prev is None or rank(e) > rank(prev):
        entries[e.sched_id] = e
