"""A scripted fake cluster: an in-memory file tree and scheduler behind a FakeTransport.

It answers the same operations the real cluster answers (jobauto.run.mirror.OPS and the fake
adapter's qsub/qstat/qacct/qdel), so tick() can be tested fast with an explicit clock. The contract suite
(tests/run/test_mirror.py) runs the same scenario here and on the real local and SSH clusters.
"""

from __future__ import annotations

import fnmatch
import io
import os
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path

from jobauto.cluster.schedulers.common import BATCH_ID, UNSENT, UNSENT_RC, fail, first_id
from jobauto.core.files import SCAN_NOTES, TMP_TAG
from jobauto.core.model import Command, CommandResult, Ending, QueueEntry, QueueSnapshot, Verdict

MARKER_GLOBS = ("qsub.finished.*", "qsub.failed.*", "qsub.dependency.*")
# the fake's queue says why a job waits as Slurm does (a test may set a job's reason)
FAKE_DEPENDENCY = {"Dependency": "waiting", "DependencyNeverSatisfied": "never"}


class FakeAdapter:
    name = "fake"
    can_find_by_name = True
    task_arrays = True

    def submit_argv(self, script: str, job_name: str, extra: list[str],
                    wrapper: str | None = None) -> list[str]:
        return ["fake-qsub", job_name, script, *(["--wrapper", wrapper] if wrapper else []), *extra]

    def parse_submit(self, result: CommandResult) -> str:
        return first_id(result, "fake-qsub")

    def queue_argv(self, user: str | None) -> list[str]:
        return ["fake-qstat"]

    def parse_queue(self, result: CommandResult) -> QueueSnapshot:
        if result.rc != 0:
            return QueueSnapshot(False, error=str(fail(result, "fake-qstat")))
        entries = {}
        for line in result.text.splitlines():
            jid, name, state, reason = line.split("\t")
            # Grid Engine's letters: h held (hqw), E error (Eqw)
            entries[jid] = QueueEntry(jid, name, state, held="h" in state, error="E" in state,
                                      reason=reason, running="r" in state and "E" not in state,
                                      dependency=FAKE_DEPENDENCY.get(reason, ""))
        return QueueSnapshot(True, entries)

    def acct_argv(self, ids: list[str]) -> list[str] | None:
        return ["fake-qacct", *ids]

    def parse_acct(self, result: CommandResult) -> dict[str, Ending]:
        if result.rc != 0:
            raise fail(result, "fake-qacct")
        out = {}
        for line in result.text.splitlines():
            jid, verdict, code, name, evidence = line.split("\t", 4)
            out[jid] = Ending(jid, Verdict(verdict), int(code) if code else None, evidence, name)
        return out

    def cancel_argv(self, ids: list[str]) -> list[str]:
        return ["fake-qdel", *ids]

    def depend_args(self, ids: list[str]) -> list[str] | None:
        return ["-hold_jid", ",".join(ids)]

    def array_args(self, n: int) -> list[str]:
        return ["-t", f"1-{n}"]

    def walltime_args(self, seconds: int) -> list[str]:
        return ["-l", f"h_rt={seconds}"]

    def array_submit_argv(self, script: str, job_name: str, n: int, extra: list[str]) -> list[str]:
        return ["fake-qsub-array", job_name, *self.array_args(n), *extra, script]

    def parse_array_submit(self, result: CommandResult) -> str:
        return first_id(result, "fake-qsub")

    def task_id(self, array_id: str, task: int) -> str:
        return f"{array_id}.{task}"


@dataclass
class FakeJob:
    id: str
    name: str
    dir: str
    script: str
    wrapper: str | None = None    # the file qsub was given in the script's place, if any
    state: str = "r"
    reason: str = ""              # the scheduler's reason for the state (printed by fake-qdel)
    hold: tuple[str, ...] = ()    # -hold_jid: listed as hqw (reason Dependency) while one is queued
    # how it left the queue, as fake-qacct reports it; its name is the job's unless a test sets
    # another one (an older job's record under a reused id)
    ending: Ending | None = None


class FakeCluster:
    """Files and a scheduler in memory; call it with a Command, get a CommandResult."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.seq: dict[str, int] = {}     # change counter per file, stands in for ctime
        self.log: list[str] = []          # paths in write order: log[i] was written at seq i+1
        self.clock = 0
        self.queue: dict[str, FakeJob] = {}
        self.submitted: list[FakeJob] = []
        self.arrays: list[str] = []       # the ids of the arrays submitted
        self.next_id = 100
        self.refuse: str | None = None     # the next submissions fail with this message
        self.refuse_rc = 1
        self.qstat_fails = False
        self.qacct_fails = False
        self.qdel_fails = False           # the next deletes fail and delete nothing (a timeout)
        self.mtime = 1_700_000_000.0
        self.stamps: set[str] = set()     # the scans' stamps (op_stamp), to remove old ones
        self.scans: list[list[str]] = []  # each scan's directories (empty: the whole tree)

    # -- test helpers ------------------------------------------------------------------------
    def write(self, path: str, data: bytes = b"") -> None:
        self.clock += 1
        self.files[path] = data
        self.seq[path] = self.clock
        self.log.append(path)

    def finish(self, job: FakeJob, rc: int = 0, keep_in_queue: bool = False) -> None:
        """Let a job end the way the templates do: failed marker first, then finished."""
        ident = job.script[len("qsub."):]
        if rc:
            self.write(posixpath.join(job.dir, "qsub.failed." + ident), f"{rc}\n".encode())
        self.write(posixpath.join(job.dir, "qsub.finished." + ident))
        if not keep_in_queue:
            self.end(job, Verdict.FAILED if rc else Verdict.DONE, rc, f"fake: exit {rc}")

    def end(self, job: FakeJob, verdict: Verdict, exit_code: int | None = None,
            evidence: str = "") -> None:
        """Take a job off the queue with an accounting record and no markers (walltime, qdel,
        out of memory, node failure); finish() is the way a job ends by itself."""
        self.queue.pop(job.id, None)
        job.ending = Ending(job.id, verdict, exit_code, evidence or f"fake: {verdict.value}",
                            job.name)

    def running(self) -> list[FakeJob]:
        return list(self.queue.values())

    def waits(self, job: FakeJob) -> bool:
        """Whether a job still waits on a -hold_jid job (Grid Engine: until it leaves the queue)."""
        return not job.reason and any(h in self.queue for h in job.hold)

    def load_tree(self, local: Path, remote: str) -> None:
        for dirpath, dirnames, filenames in os.walk(local):
            dirnames[:] = [d for d in dirnames if d != ".jobauto"]
            for f in filenames:
                if f == "quelist" or TMP_TAG in f or not os.path.exists(os.path.join(dirpath, f)):
                    continue  # as Remote.push excludes them; a link to nothing is copied as one
                rel = os.path.relpath(os.path.join(dirpath, f), local).replace(os.sep, "/")
                self.write(posixpath.join(remote, rel), Path(dirpath, f).read_bytes())

    def load_files(self, local: Path, remote: str, names: list[str]) -> None:
        for rel in names:
            if (local / rel).is_file():
                self.write(posixpath.join(remote, rel), (local / rel).read_bytes())

    # -- the handler -------------------------------------------------------------------------
    def __call__(self, cmd: Command) -> CommandResult:
        argv = list(cmd.argv)
        if argv[:2] == ["sh", "-c"] and argv[3].startswith("jobauto-"):
            return getattr(self, "op_" + argv[3][len("jobauto-"):])(argv, argv[4:], cmd.cwd)
        if argv[0] == "fake-qsub":
            return self.qsub(argv, cmd.cwd or "")
        if argv[0] == "fake-qsub-array":
            return self.qsub_array(argv, cmd.cwd or "")
        if argv[0] == "fake-qstat":
            if self.qstat_fails:
                return CommandResult(tuple(argv), 1, b"", "error: unable to contact qmaster")
            out = "".join(f"{j.id}\t{j.name}\t{j.state}\t{j.reason}\n" if not self.waits(j) else
                          f"{j.id}\t{j.name}\thqw\tDependency\n" for j in self.queue.values())
            return CommandResult(tuple(argv), 0, out.encode())
        if argv[0] == "fake-qacct":
            return self.qacct(argv)
        if argv[0] == "fake-qdel":
            return self.qdel(argv)
        if argv[:3] == ["mkdir", "-p", "--"]:
            return CommandResult(tuple(argv), 0)
        if argv[:2] == ["touch", "--"]:
            self.write(argv[2])
            return CommandResult(tuple(argv), 0)
        return CommandResult(tuple(argv), 127, b"", f"fake cluster: unknown command {argv[0]}")

    def qsub(self, argv: list[str], cwd: str) -> CommandResult:
        if self.refuse is not None:
            return CommandResult(tuple(argv), self.refuse_rc, b"", self.refuse)
        name, script = argv[1], argv[2]
        wrapper = argv[4] if argv[3:4] == ["--wrapper"] else None
        if posixpath.join(cwd, wrapper or script) not in self.files:
            return CommandResult(tuple(argv), 1, b"", f"Unable to read script file because of error: {wrapper or script}")
        self.next_id += 1
        job = FakeJob(str(self.next_id), name, cwd, script, wrapper=wrapper)
        if "-hold_jid" in argv[:-1]:
            job.hold = tuple(argv[argv.index("-hold_jid") + 1].split(","))
        self.queue[job.id] = job
        self.submitted.append(job)
        return CommandResult(tuple(argv), 0, f"{job.id}\n".encode())

    def qsub_array(self, argv: list[str], cwd: str) -> CommandResult:
        """One array: a queue entry per task (id ARRAY.TASK) for the job on line TASK of the
        task table beside the array's wrapper (run/arrays.py)."""
        if self.refuse is not None:
            return CommandResult(tuple(argv), self.refuse_rc, b"", self.refuse)
        name, wrapper = argv[1], argv[-1]
        table = self.files.get(posixpath.join(cwd, name + ".tasks"))
        if table is None or posixpath.join(cwd, wrapper) not in self.files:
            return CommandResult(tuple(argv), 1, b"", f"Unable to read script file: {wrapper}")
        self.next_id += 1
        self.arrays.append(str(self.next_id))
        for task, line in enumerate(table.decode().splitlines(), 1):
            rel, script = line.split("\t")
            job = FakeJob(f"{self.next_id}.{task}", name,
                          posixpath.normpath(posixpath.join(cwd, "../..", rel)), script,
                          wrapper=wrapper)
            self.queue[job.id] = job
            self.submitted.append(job)
        return CommandResult(tuple(argv), 0, f"{self.next_id}.1-{task}:1\n".encode())

    def qacct(self, argv: list[str]) -> CommandResult:
        if self.qacct_fails:
            return CommandResult(tuple(argv), 1, b"", "error: can't open accounting file")
        jobs = {j.id: j for j in self.submitted}
        out = ""
        for jid in argv[1:]:
            end = jobs[jid].ending if jid in jobs else None
            if end is not None:
                code = "" if end.exit_code is None else str(end.exit_code)
                out += f"{jid}\t{end.verdict.value}\t{code}\t{end.name}\t{end.evidence}\n"
        return CommandResult(tuple(argv), 0, out.encode())

    def qdel(self, argv: list[str]) -> CommandResult:
        if self.qdel_fails:
            return CommandResult(tuple(argv), 1, b"", "error: commlib error: got read error")
        out, err = "", ""
        for jid in argv[1:]:
            job = self.queue.get(jid)
            if job is None:
                err += f"denied: job \"{jid}\" does not exist\n"
                continue
            if job.reason:
                out += f"job {jid}: {job.reason}\n"
            out += f"deleted job {jid}\n"
            self.end(job, Verdict.CANCELLED, None, "fake: deleted by qdel")
        return CommandResult(tuple(argv), 1 if err else 0, out.encode(), err)

    def op_scan(self, argv: list[str], args: list[str], cwd: str | None) -> CommandResult:
        d, base, head, most = args[0], args[2], int(args[3]), int(args[4])
        since = self.seq.get(posixpath.join(d, ".jobauto", f"scan.{base}"), -1) if base else -1
        dirs = {posixpath.normpath(posixpath.join(d, p)) for p in args[5:]}
        self.scans.append(sorted(dirs))
        sent: list[tuple[str, bytes]] = []
        notes = ""   # as the real scan: a marker over `head` goes cut, a larger file not at all
        recent = {p for p in self.log[max(since, 0):] if p in self.files} if since >= 0 else self.files
        for path in sorted(recent):
            if not path.startswith(d + "/") or "/.jobauto/" in path[len(d):] or self.seq[path] <= since:
                continue
            if dirs and posixpath.dirname(path) not in dirs:
                continue
            base_name = posixpath.basename(path)
            rel = "./" + path[len(d) + 1:]
            data = self.files[path]
            if not any(fnmatch.fnmatchcase(base_name, g) for g in MARKER_GLOBS):
                continue
            if not base_name.startswith("qsub.dependency."):
                if len(data) > head:
                    notes += f"H\t{len(data)}\t{rel}\n"
                sent.append((rel, data[:head]))
                continue
            if len(data) > most:
                notes += f"S\t{len(data)}\t{rel}\n"
                continue
            sent.append((rel, data))
            script = posixpath.join(posixpath.dirname(path), "qsub." + base_name[16:])
            if script in self.files:
                srel = "./" + script[len(d) + 1:]
                if len(self.files[script]) > most:
                    notes += f"S\t{len(self.files[script])}\t{srel}\n"
                else:
                    sent.append((srel, self.files[script]))
        if notes:
            sent.append(("./" + SCAN_NOTES, notes.encode("utf-8", "surrogateescape")))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:") as tar:
            for name, data in sent:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = int(self.mtime)
                tar.addfile(info, io.BytesIO(data))
        return CommandResult(tuple(argv), 0, buf.getvalue())

    def op_look(self, argv: list[str], args: list[str], cwd: str | None) -> CommandResult:
        """The scan, in just the directories named (the real one skips a directory in which no
        entry changed; files changed in place there are found here all the same)."""
        return self.op_scan(argv, args, cwd)

    def op_stamp(self, argv: list[str], args: list[str], cwd: str | None) -> CommandResult:
        d, gen, keep, sweep = args
        self.write(posixpath.join(d, ".jobauto", f"scan.{gen}"))
        self.stamps.add(posixpath.join(d, ".jobauto", f"scan.{gen}"))
        for p in [p for p in self.stamps if p.startswith(posixpath.join(d, ".jobauto", "scan."))]:
            n = p.rsplit(".", 1)[1]
            if keep and n.isdigit() and int(n) < int(keep) and n != sweep:
                self.files.pop(p, None)
                self.stamps.discard(p)
        return CommandResult(tuple(argv), 0)

    def op_exists(self, argv: list[str], args: list[str], cwd: str | None) -> CommandResult:
        d, paths = args[0], args[1:]
        found = [p for p in paths if posixpath.join(d, p) in self.files]
        return CommandResult(tuple(argv), 0, b"".join(p.encode() + b"\0" for p in found))

    def op_submit(self, argv: list[str], args: list[str], cwd: str | None) -> CommandResult:
        journal, token, wrapper, script, text = args[0], args[1], args[2], args[3], args[4]
        preds, back, inner = args[5].split(), int(args[6]), args[7:]
        lines = self.files.get(journal, b"").decode().splitlines()[-back:]
        for q in preds:   # as the shell: the id of an earlier submission of the batch, in place
            ids = [m.group(1) for ln in lines if ln.startswith(f"S\t{q}\t0\t")
                   and (m := BATCH_ID.match(ln.split("\t", 3)[3]))]
            if not ids:
                res = CommandResult(tuple(inner), UNSENT_RC, f"{UNSENT} {q}\n".encode())
                break
            inner = [a.replace(f"@{q}@", ids[-1], 1) for a in inner]
        else:
            res = self._submit(inner, wrapper, script, text, cwd)
        line = " ".join(res.text.split())[:300]
        self._append(journal, f"S\t{token}\t{res.rc}\t{line}\n")
        return CommandResult(tuple(argv), res.rc, res.stdout, res.stderr)

    def _submit(self, inner: list[str], wrapper: str, script: str, text: str, cwd: str | None
                ) -> CommandResult:
        if wrapper and posixpath.join(cwd or "", script) not in self.files:
            return CommandResult(tuple(inner), 1, f"jobauto: no such job script: {script}\n".encode())
        if wrapper:
            self.write(posixpath.join(cwd or "", wrapper), text.encode())
        return self(Command.of(inner, cwd))

    def op_array(self, argv: list[str], args: list[str], cwd: str | None) -> CommandResult:
        journal, name, table, text, inner = args[0], args[1], args[2], args[3], args[4:]
        d = posixpath.join(cwd or "", ".jobauto", "arrays")
        self.write(posixpath.join(d, name + ".tasks"), table.encode())
        self.write(posixpath.join(d, name + ".run"), text.encode())
        res = self(Command.of(inner, d))
        line = " ".join(res.text.split())[:300]
        self._append(journal, f"S\t{name}\t{res.rc}\t{line}\n")
        return CommandResult(tuple(argv), res.rc, res.stdout, res.stderr)

    def op_mark(self, argv: list[str], args: list[str], cwd: str | None) -> CommandResult:
        self._append(args[0], f"B\t{args[1]}\t{args[2]}\n")
        return CommandResult(tuple(argv), 0)

    def op_journal(self, argv: list[str], args: list[str], cwd: str | None) -> CommandResult:
        text = self.files.get(args[0], b"").decode()
        keys = args[1:]
        out = "".join(ln + "\n" for ln in text.splitlines() if any(k in ln for k in keys))
        return CommandResult(tuple(argv), 0, out.encode())

    def op_rm(self, argv: list[str], args: list[str], cwd: str | None) -> CommandResult:
        for p in args[1:]:
            self.files.pop(posixpath.join(args[0], p), None)
        return CommandResult(tuple(argv), 0)

    def op_list(self, argv: list[str], args: list[str], cwd: str | None) -> CommandResult:
        d = args[0].rstrip("/") + "/"
        if not any(p.startswith(d) for p in self.files):
            return CommandResult(tuple(argv), 3, b"", f"cd: {args[0]}: No such file or directory")
        out = b"".join(f"{len(data)}\t{self.mtime:.10f}\t{p[len(d):]}\0".encode()
                       for p, data in sorted(self.files.items()) if p.startswith(d))
        return CommandResult(tuple(argv), 0, out)

    def op_rmtree(self, argv: list[str], args: list[str], cwd: str | None) -> CommandResult:
        d = args[0].rstrip("/") + "/"
        for p in [p for p in self.files if p.startswith(d)]:
            del self.files[p]
        return CommandResult(tuple(argv), 0)

    def _append(self, path: str, text: str) -> None:
        self.write(path, self.files.get(path, b"") + text.encode())
