"""Render and parse the quelist format: one line per job, in the order jobs became ready."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobauto.core.faults import point
from jobauto.core.files import write_atomic
from jobauto.core.model import Job, JobState
from jobauto.run import pickup

if TYPE_CHECKING:
    from jobauto.run.cycle import Monitor

TIME_KEYS = ("spre", "started", "finished", "failed")


def fmt_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))


def parse_time(s: str) -> float:
    return time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%S"))


@dataclass
class Line:
    """One quelist line: the job name, its key@time tokens and key=value extras."""

    name: str
    times: dict[str, float] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)


def render_line(line: Line) -> str:
    parts = [shlex.quote(line.name)]
    parts += [f"{k}@{fmt_time(line.times[k])}" for k in TIME_KEYS if k in line.times]
    parts += [f"{k}={shlex.quote(v)}" for k, v in line.extra.items() if v != ""]
    return " ".join(parts)


def place(mon: Monitor, job: Job) -> None:
    """Give a job its quelist line, last: it became ready, or was queued ahead."""
    if job.ready_seq is None:
        mon.ready_seq += 1
        job.ready_seq = mon.ready_seq
        mon.order.append(job.name)
        mon.touch(job)


def job_line(job: Job, queue: str = "") -> str:
    """Render a job's line; queue is "held" or "error" while the scheduler's queue says so."""
    line = Line(job.name)
    for key, t in (("spre", job.spre_at), ("started", job.started_at)):
        if t is not None:
            line.times[key] = t
    if job.state == JobState.DONE and job.finished_at is not None:
        line.times["finished"] = job.finished_at
    if job.state == JobState.ERROR:
        line.times["failed"] = job.failed_at or job.finished_at or 0.0
    if job.sched_id:
        line.extra["jobid"] = job.sched_id
    if queue:
        line.extra["queue"] = queue
    if job.attempts > 1:
        line.extra["attempt"] = str(job.attempts)
    if job.state == JobState.ERROR and job.reason:
        line.extra["reason"] = job.reason.split(":")[0]
    return render_line(line)


def parse_line(text: str) -> Line:
    words = shlex.split(text)
    if not words:
        raise ValueError("empty quelist line")
    line = Line(words[0])
    for w in words[1:]:
        if "@" in w and w.split("@", 1)[0] in TIME_KEYS:
            k, v = w.split("@", 1)
            line.times[k] = parse_time(v)
        elif "=" in w:
            k, v = w.split("=", 1)
            line.extra[k] = v
        else:
            raise ValueError(f"unknown quelist token {w!r}")
    return line


def parse(text: str) -> list[Line]:
    # lines end in "\n" only: str.splitlines() also breaks at "\r", "\x0b", "\x85", "\u2028"...,
    # which a job name may hold (inside its quotes); the property tests found it
    return [parse_line(t) for t in text.split("\n") if t.strip()]


class Text:
    """quelist's text, in blocks of BLOCK lines in ready order: a block is joined again only when
    one of its lines changed, so rewriting quelist costs Python work for the changed lines (plus
    one copy of the text), not for every job of a large run."""

    BLOCK = 1024

    def __init__(self, names: list[str]) -> None:
        self.pos: dict[str, int] = {}
        self.blocks: list[list[str]] = []
        self.text: list[str | None] = []
        for name in names:
            self.append(name)

    def append(self, name: str) -> None:
        if not self.blocks or len(self.blocks[-1]) == self.BLOCK:
            self.blocks.append([])
            self.text.append(None)
        self.pos[name] = (len(self.blocks) - 1) * self.BLOCK + len(self.blocks[-1])
        self.blocks[-1].append(name)
        self.text[-1] = None

    def changed(self, name: str) -> None:
        i = self.pos.get(name)
        if i is not None:
            self.text[i // self.BLOCK] = None

    def render(self, lines: dict[str, str]) -> str:
        for i, t in enumerate(self.text):
            if t is None:
                self.text[i] = "".join(lines[n] + "\n" for n in self.blocks[i])
        return "".join(t or "" for t in self.text)


def write(mon: Monitor, now: float, notes: list[str]) -> None:
    """Rewrite MON's quelist if it changed. One that cannot be written (a job made a directory of
    that name, a full disk) is a note each cycle until it can; the run goes on."""
    if not mon.quelist_stale:
        return
    path = mon.run_dir / "quelist"
    before = pickup.root_mtime(mon)
    try:
        write_atomic(path, mon.order.render(mon.lines))
        pickup.wrote_root(mon, before)
    except OSError as e:
        what = ("it is a directory (made by a job, or fetched from the cluster): move it "
                "away and" if path.is_dir() and not path.is_symlink() else
                f"{e.strerror or e}; once that is fixed")
        problem = f"cannot write {path}: {what} quelist is written again at the next cycle"
        if problem != mon.quelist_error:
            mon.events.append((now, "", "warning", problem))
        mon.quelist_error = problem
        notes.append(problem)
        return
    mon.quelist_stale = False
    mon.quelist_error = ""
    point("cycle.quelist")

