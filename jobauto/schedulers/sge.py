"""Grid Engine (SGE, Son of Grid Engine, Univa/Altair AGE on TSUBAME): qsub -terse, qstat -xml."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..model import CommandResult, QueueEntry, QueueSnapshot
from .common import fail, first_id


class SgeAdapter:
    name = "sge"
    can_find_by_name = True

    def submit_argv(self, script: str, job_name: str, extra: list[str]) -> list[str]:
        # -o/-e keep the familiar qsub.ID.oJOBID names although the job is named for jobauto;
        # $JOB_ID is expanded by Grid Engine, not by a shell. --qsub-args come last and win.
        return ["qsub", "-terse", "-cwd", "-N", job_name, "-o", f"{script}.o$JOB_ID",
                "-e", f"{script}.e$JOB_ID", *extra, script]

    def parse_submit(self, result: CommandResult) -> str:
        # "4711" or, for an array, "4711.1-3:1"
        return first_id(result, "qsub", r"^\s*(\d+)(?:\.\d+-\d+:\d+)?\s*$")

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
            prev = entries.get(jid)
            # an array job is listed once per task group; keep the most telling state
            if prev is None or "E" in state or ("r" in state and "E" not in prev.state):
                entries[jid] = QueueEntry(jid, (jl.findtext("JB_name") or "").strip(), state)
        return QueueSnapshot(True, entries)
