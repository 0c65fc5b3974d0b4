"""Grid Engine (SGE, Son of Grid Engine, Univa/Altair AGE on TSUBAME): qsub -terse, qstat -xml."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from jobauto.cluster.schedulers.common import (
    acct_failed,
    combine,
    fail,
    first_id,
    hms,
    one_line,
    per_task,
)
from jobauto.core.model import CommandResult, Ending, QueueEntry, QueueSnapshot, Verdict

# qacct takes one job id per call; an unknown id only prints "error: job id N not found".
# qacct -j 4711.3 prints every task of 4711: each array is asked once.
ACCT = ('s=" "; for i; do b=${i%%.*}; case $s in *" $b "*) continue;; esac; s="$s$b "; '
        'qacct -j "$b"; done; exit 0')
TASKS_MAX = 100_000   # tasks of one queue line expanded into entries of their own
# Keep each job's "error reason" (why it is in Eqw) before deleting it: qdel loses it.
CANCEL = (
    'for i; do qstat -j "$i" 2>/dev/null | sed -n "s/^error reason *[0-9]*: *//p" | '
    'while IFS= read -r l; do printf "job %s: %s\\n" "$i" "$l"; done; done; qdel "$@"'
)
TIME_LIMITS = {"h_rt", "s_rt", "h_cpu", "s_cpu"}
MEMORY_LIMITS = {"h_vmem", "s_vmem", "h_rss", "s_rss", "mem_free"}


class SgeAdapter:
    name = "sge"
    can_find_by_name = True
    task_arrays = True

    def submit_argv(self, script: str, job_name: str, extra: list[str],
                    wrapper: str | None = None) -> list[str]:
        # -o/-e keep the familiar qsub.ID.oJOBID names although the job is named for jobauto;
        # $JOB_ID is expanded by Grid Engine, not by a shell. --qsub-args come last and win.
        # The wrapper is sh: -S on the command line overrides the script's own -S (a queue in
        # posix_compliant mode would otherwise run it with its configured shell, often csh).
        shell = ["-S", "/bin/sh"] if wrapper else []
        return ["qsub", "-terse", "-cwd", "-N", job_name, "-o", f"{script}.o$JOB_ID",
                "-e", f"{script}.e$JOB_ID", *shell, *extra, wrapper or script]

    def parse_submit(self, result: CommandResult) -> str:
        # -terse: "4711" or, for an array, "4711.1-3:1". Without it (a site's qsub wrapper may
        # drop -terse): 'Your job 4711 ("x") has been submitted', 'Your job-array 4711.1-3:1 ...'
        return first_id(result, "qsub", r"^\s*(?:Your job(?:-array)? )?(\d+)(?:\.\d+-\d+:\d+)?"
                                        r"(?:\s*$| \(.*\) has been submitted)")

    def queue_argv(self, user: str | None) -> list[str]:
        return ["qstat", "-xml", "-u", user or "*"] if user else ["sh", "-c", 'qstat -xml -u "$(id -un)"']

    def parse_queue(self, result: CommandResult) -> QueueSnapshot:
        if result.rc != 0:
            return QueueSnapshot(False, error=str(fail(result, "qstat")))
        try:
            root = ET.fromstring(result.stdout or b"<job_info/>")
        except ET.ParseError as e:
            return QueueSnapshot(False, error=f"qstat -xml printed unparsable XML: {e}")
        entries: dict[str, QueueEntry] = {}
        for jl in root.iter("job_list"):
            jid = (jl.findtext("JB_job_number") or "").strip()
            if not jid:
                continue
            state = (jl.findtext("state") or "").strip()
            tasks = (jl.findtext("tasks") or "").strip()
            for task in task_list(tasks) if per_task(jl.findtext("JB_name") or "") else []:
                # each task of an array under its own id (4711.3): a pending range "2-4:1"
                # is one line, each running task another
                tid = f"{jid}.{task}"
                if tid not in entries or "r" in state:
                    entries[tid] = entry(tid, jl, state)
            prev = entries.get(jid)
            # an array job is listed once per task group; keep the most telling state
            if prev is None or "E" in state or ("r" in state and "E" not in prev.state):
                # h: held (hqw, hRwq) until qrls; E: error (Eqw), it never leaves by itself
                entries[jid] = entry(jid, jl, state)
        return QueueSnapshot(True, entries)

    def acct_argv(self, ids: list[str]) -> list[str] | None:
        return ["sh", "-c", ACCT, "jobauto-acct", *ids]

    def parse_acct(self, result: CommandResult) -> dict[str, Ending]:
        # job id -> (its submission time, task ("" if none) -> Ending)
        records: dict[str, tuple[str, dict[str, Ending]]] = {}
        for block in re.split(r"^=+\s*$", result.text, flags=re.MULTILINE):
            rec = dict((ln.split(None, 1) + [""])[:2] for ln in block.splitlines() if ln.strip())
            jid = rec.get("jobnumber", "").strip()
            if not jid.isdigit() or "failed" not in rec:
                continue
            task = rec.get("taskid", "").strip()
            task = "" if task in ("", "undefined") else task
            # Records come in the order jobs ended. Job ids are reused (they wrap, and restart
            # when Grid Engine is set up anew) while the accounting file keeps the old ones:
            # a record submitted at another time than the last one is another job's. A
            # rescheduled job has one record per run (same submission time): the last counts.
            submitted = rec.get("qsub_time", "").strip()
            prev = records.get(jid)
            if prev is None or prev[0] != submitted:
                prev = records[jid] = (submitted, {})
            prev[1][task] = qacct_ending(jid, task, rec)
        err = acct_failed(result, "qacct", bool(records))
        if err is not None:
            raise err
        out = {jid: tasks[""] if list(tasks) == [""] else combine(jid, list(tasks.values()))
               for jid, (_, tasks) in records.items()}
        for jid, (_, tasks) in records.items():  # and each task of an array under its own id
            out.update({f"{jid}.{t}": e for t, e in tasks.items() if t and per_task(e.name)})
        return out

    def cancel_argv(self, ids: list[str]) -> list[str]:
        return ["sh", "-c", CANCEL, "jobauto-cancel", *ids]

    def depend_args(self, ids: list[str]) -> list[str] | None:
        # released when they end, however they end: the wrapper's guard reads their markers
        return ["-hold_jid", ",".join(ids)]

    def array_args(self, n: int) -> list[str]:
        return ["-t", f"1-{n}"]

    def walltime_args(self, seconds: int) -> list[str]:
        return ["-l", f"h_rt={hms(seconds)}"]

    def array_submit_argv(self, script: str, job_name: str, n: int, extra: list[str]) -> list[str]:
        # -S: a queue in posix_compliant mode ignores the #! line. -o/-e name each task's files
        # even where a site's sge_request sets other defaults; Grid Engine expands $JOB_ID and
        # $TASK_ID itself (they reach qsub unexpanded).
        return ["qsub", "-terse", "-cwd", "-S", "/bin/bash", "-N", job_name, *self.array_args(n),
                "-o", f"{job_name}.o$JOB_ID.$TASK_ID", "-e", f"{job_name}.e$JOB_ID.$TASK_ID",
                *extra, script]

    def parse_array_submit(self, result: CommandResult) -> str:
        # -terse prints "4711.1-3:1"; the array's id is 4711
        return self.parse_submit(result)

    def task_id(self, array_id: str, task: int) -> str:
        return f"{array_id}.{task}"   # what qstat -xml, qacct and qdel take for one task


def entry(jid: str, jl: ET.Element, state: str) -> QueueEntry:
    return QueueEntry(jid, (jl.findtext("JB_name") or "").strip(), state,
                      held="h" in state, error="E" in state,
                      # r running, t transferring to its node (Rr: restarted)
                      running=("r" in state or "t" in state) and "E" not in state
                      and "h" not in state)


def task_list(text: str) -> list[int]:
    """The tasks of a qstat line: "3", "2-4:1", "1,3-7:2"; [] for none or past TASKS_MAX."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"(\d{1,9})(?:-(\d{1,9})(?::(\d{1,9}))?)?", part.strip())
        if m is None:
            return [] if part.strip() else out
        first = int(m.group(1))
        last = int(m.group(2) or first)
        step = max(int(m.group(3) or 1), 1)
        if len(out) + (last - first) // step >= TASKS_MAX:
            return []
        out.extend(range(first, last + 1, step))
    return out


def number(text: str) -> float:
    m = re.match(r"\s*(\d+(?:\.\d+)?)", text)
    return float(m.group(1)) if m else 0.0


def seconds(value: str) -> float:
    """A Grid Engine time: seconds, or [[h:]m:]s."""
    total = 0.0
    for part in value.split(":"):
        total = total * 60 + number(part or "0")
    return total


def qacct_ending(jid: str, task: str, rec: dict[str, str]) -> Ending:
    """Read one qacct record: `failed` says whether Grid Engine stopped the job, `exit_status`
    what the job script returned (128 + signal when a signal killed it), `jobname` whose record
    it is (ids are reused)."""
    code_text, _, msg = rec.get("failed", "").partition(":")
    failed, msg = int(number(code_text)), msg.strip()
    status = int(number(rec.get("exit_status", "")))
    category = rec.get("category", "").strip()
    limits = {}
    for m in re.finditer(r"-l (\S+)", category):
        for item in m.group(1).split(","):
            key, _, val = item.partition("=")
            limits[key] = val
    wall = number(rec.get("ru_wallclock", ""))
    name = rec.get("jobname", "").strip()
    ev = one_line(f"qacct: job {jid}{'.' + task if task else ''} "
                  f"jobname={name} failed={failed}"
                  f"{f' ({msg})' if msg else ''} exit_status={status} ru_wallclock={wall:g}s"
                  f"{f' category={category}' if category and category != 'NONE' else ''}")
    sched_id = f"{jid}.{task}" if task else jid

    def end(verdict: Verdict, code: int | None) -> Ending:
        return Ending(sched_id, verdict, code, ev, name)

    enforced = re.search(r"enforced (.*) limit", msg)
    if failed == 0 and status == 0:
        return end(Verdict.DONE, 0)
    if failed in (0, 100):
        # a soft limit warns with a signal; a job that does not trap it dies of it (failed 100
        # "assumedly after job"): SIGUSR1 (138) at s_rt, SIGXCPU (152) at s_cpu or s_rss
        if status == 138 and "s_rt" in limits:
            return end(Verdict.WALLTIME, status)
        if status == 152:
            memory_only = bool(MEMORY_LIMITS & set(limits)) and "s_cpu" not in limits
            return end(Verdict.OOM if memory_only else Verdict.WALLTIME, status)
    if failed == 0:
        return end(Verdict.FAILED, status)
    if failed == 37 or enforced:
        return end(limit_verdict(enforced.group(1) if enforced else msg, limits, wall), status)
    if failed == 100 and status > 128:
        # "assumedly after job" with a signal and no limit named: qdel (SIGKILL, 137) or
        # someone's kill; the kernel's OOM killer would look the same
        return end(Verdict.CANCELLED, status)
    if failed == 100 and status:
        return end(Verdict.FAILED, status)
    # the job's setup on the execution host failed (prolog, shepherd, output file, ...)
    return end(Verdict.NODE_FAILURE, status or None)


def limit_verdict(named: str, limits: dict[str, str], wall: float) -> Verdict:
    """Which limit killed the job. Son of Grid Engine names several at once ("h_rt, h_cpu, or
    h_vmem"): then the job's own requests (its category) and its run time decide."""
    names = set(re.findall(r"[hs]_\w+", named))
    if names and names <= MEMORY_LIMITS:
        return Verdict.OOM
    if names & MEMORY_LIMITS and MEMORY_LIMITS & set(limits):
        timed = [seconds(v) for k, v in limits.items() if k in ("h_rt", "s_rt")]
        if not (TIME_LIMITS & set(limits)) or (timed and wall < min(timed)):
            return Verdict.OOM
    return Verdict.WALLTIME
