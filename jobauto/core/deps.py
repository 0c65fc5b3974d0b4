"""The dependency engine: ready / waiting / blocked, cycles, and "why not ready". Pure, no I/O.

In a run, a dependency is a path relative to the run directory. When the path is the finished
marker of a known job (``dir/qsub.finished.ID`` for job ``dir/qsub.ID``), it is met when that job
is done and it blocks when that job is in error (or blocked itself). Any other path is met once the
file is known to exist. In a job table (``Graph(by_id=True)``) a dependency is a job id and the
same rules apply with the id in place of the marker path. Every change is incremental: its cost grows with the jobs it touches, not with
the size of the run.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field

from jobauto.core.model import Derived, JobState, TableJob

FINISHED = "qsub.finished."
FAILED = "qsub.failed."
DEPENDENCY = "qsub.dependency."
SCRIPT = "qsub."  # a job script, qsub.ID: the scan brings one back beside its dependency file


def split_name(name: str) -> tuple[str, str]:
    """Split a job name ``dir/qsub.ID`` into (dir, ID); dir is '' at the top."""
    d, base = posixpath.split(name)
    return d, base[len("qsub."):]


def marker_path(name: str, kind: str = FINISHED) -> str:
    """Return the path of a job's marker (finished by default) relative to the run directory."""
    d, ident = split_name(name)
    return posixpath.join(d, kind + ident) if d else kind + ident


def job_of_marker(path: str) -> tuple[str, str] | None:
    """Map a marker or dependency-file path to (job name, kind), or None."""
    d, base = posixpath.split(path)
    for kind in (FINISHED, FAILED, DEPENDENCY):
        if base.startswith(kind) and len(base) > len(kind):
            ident = base[len(kind):]
            return (posixpath.join(d, "qsub." + ident) if d else "qsub." + ident), kind
    return None


def scan_kind(path: str) -> str | None:
    """What a file the scan brings back is: FINISHED, FAILED, DEPENDENCY, SCRIPT, or None."""
    hit = job_of_marker(path)
    if hit is not None:
        return hit[1]
    base = posixpath.basename(path)
    return SCRIPT if base.startswith(SCRIPT) and len(base) > len(SCRIPT) else None


@dataclass(slots=True)
class Node:
    name: str
    state: JobState
    deps: tuple[str, ...]
    unmet_jobs: set[str] = field(default_factory=set)   # dependency paths produced by jobs not done
    unmet_files: set[str] = field(default_factory=set)  # plain paths not known to exist
    bad: int = 0                                        # deps whose producer is error or blocked


class Graph:
    """The dependency graph of one run or table, updated incrementally."""

    def __init__(self, *, by_id: bool = False) -> None:
        self.by_id = by_id                               # table: a dependency names a job id
        self.nodes: dict[str, Node] = {}
        self.files: set[str] = set()                     # plain paths known to exist
        self._by_path: dict[str, set[str]] = {}          # dependency path -> names depending on it
        self.ready: set[str] = set()
        self.blocked: set[str] = set()
        self.file_waiters: set[str] = set()              # only plain files left to wait for
        self.unasked: set[str] = set()                   # file waiters not yet in an ask_files()
        self.counts: dict[JobState, int] = {s: 0 for s in JobState}
        self.changed: set[str] = set()                   # names whose derived state may have moved

    @classmethod
    def of_table(cls, jobs: Iterable[TableJob]) -> Graph:
        """The graph of a job table's rows (by id)."""
        g = cls(by_id=True)
        for j in jobs:
            g.add(j.id, j.deps, j.state)
        return g

    # -- queries -----------------------------------------------------------------------------
    def ref(self, name: str) -> str:
        """The dependency string that names job `name`: its finished marker, or its id."""
        return name if self.by_id else marker_path(name)

    def producer(self, path: str) -> Node | None:
        if self.by_id:
            return self.nodes.get(path)
        hit = job_of_marker(path)
        if hit is None or hit[1] != FINISHED:
            return None
        return self.nodes.get(hit[0])

    def is_bad(self, node: Node) -> bool:
        return node.state == JobState.ERROR or (node.state == JobState.PENDING and node.bad > 0)

    def derived(self, name: str) -> Derived | None:
        node = self.nodes[name]
        if node.state != JobState.PENDING:
            return None
        if node.bad:
            return Derived.BLOCKED
        if not node.unmet_jobs and not node.unmet_files:
            return Derived.READY
        return Derived.WAITING

    def summary(self) -> dict[str, int]:
        pending = self.counts[JobState.PENDING]
        return {
            "done": self.counts[JobState.DONE],
            "running": self.counts[JobState.RUNNING],
            "ready": len(self.ready),
            "waiting": pending - len(self.ready) - len(self.blocked),
            "blocked": len(self.blocked),
            "error": self.counts[JobState.ERROR],
        }

    def dependents(self, name: str) -> set[str]:
        return self._by_path.get(self.ref(name), set())

    def watched_files(self) -> set[str]:
        """Plain paths worth checking: those of jobs that wait for nothing else."""
        out: set[str] = set()
        for name in self.file_waiters:
            out |= self.nodes[name].unmet_files
        return out

    def ask_files(self) -> list[str]:
        """The watched paths, sorted, for the cluster to be asked about now. Until the next
        call, `unasked` holds the jobs that came to wait only for files since: a job whose last
        job dependency finished in this cycle has not had its files looked for, and must not be
        called stuck before they were."""
        self.unasked.clear()
        return sorted(self.watched_files())

    # -- changes -----------------------------------------------------------------------------
    def add(self, name: str, deps: Iterable[str], state: JobState = JobState.PENDING) -> None:
        """Add a job; jobs that named its finished marker now depend on its state."""
        if name in self.nodes:
            raise ValueError(f"job {name} already exists")
        node = Node(name, state, tuple(dict.fromkeys(deps)))
        self.nodes[name] = node
        self.counts[state] += 1
        self._attach(node)
        # jobs that were waiting for this job's marker as a plain file now wait for the job
        for waiter in self._by_path.get(self.ref(name), ()):
            w = self.nodes[waiter]
            p = self.ref(name)
            w.unmet_files.discard(p)
            if state != JobState.DONE:
                w.unmet_jobs.add(p)
            if self.is_bad(node):
                self._set_bad(w, w.bad + 1)
            self._refresh(w)
        self._refresh(node)

    def _attach(self, node: Node) -> None:
        """Index NODE's dependencies and count what of them is unmet or bad (NODE's own counts
        start empty)."""
        for p in node.deps:
            self._by_path.setdefault(p, set()).add(node.name)
            prod = self.producer(p)
            if prod is not None:
                if prod.state != JobState.DONE:
                    node.unmet_jobs.add(p)
                if self.is_bad(prod):
                    node.bad += 1
            elif p not in self.files:
                node.unmet_files.add(p)

    def set_deps(self, name: str, deps: Iterable[str]) -> None:
        """Give a job new dependencies (its dependency file was changed): it waits, is ready or
        is blocked by them from now on, and what depends on it follows."""
        node = self.nodes[name]
        new = tuple(dict.fromkeys(deps))
        if new == node.deps:
            return
        was_bad = self.is_bad(node)
        for p in node.deps:
            users = self._by_path.get(p)
            if users is not None:
                users.discard(name)
                if not users:
                    del self._by_path[p]
        node.deps, node.bad = new, 0
        node.unmet_jobs.clear()
        node.unmet_files.clear()
        self._attach(node)
        self._refresh(node)
        if was_bad != self.is_bad(node):
            self._propagate_bad(node, self.is_bad(node))

    def set_state(self, name: str, state: JobState) -> None:
        """Move a job to a stored state and update everything that depends on it."""
        node = self.nodes[name]
        if node.state == state:
            return
        was_bad, was_done = self.is_bad(node), node.state == JobState.DONE
        self.counts[node.state] -= 1
        self.counts[state] += 1
        node.state = state
        self._refresh(node)
        path = self.ref(name)
        now_done = state == JobState.DONE
        if was_done != now_done:
            for d in self._by_path.get(path, ()):
                dn = self.nodes[d]
                if now_done:
                    dn.unmet_jobs.discard(path)
                else:
                    dn.unmet_jobs.add(path)
                self._refresh(dn)
        if was_bad != self.is_bad(node):
            self._propagate_bad(node, self.is_bad(node))

    def file_seen(self, path: str) -> None:
        """Record that a plain dependency path now exists."""
        if path in self.files:
            return
        self.files.add(path)
        if self.producer(path) is not None:
            return
        for d in self._by_path.get(path, ()):
            dn = self.nodes[d]
            dn.unmet_files.discard(path)
            self._refresh(dn)

    # -- internals ---------------------------------------------------------------------------
    def _set_bad(self, node: Node, bad: int) -> None:
        was = self.is_bad(node)
        node.bad = bad
        if was != self.is_bad(node):
            self._propagate_bad(node, self.is_bad(node))

    def _propagate_bad(self, start: Node, now_bad: bool) -> None:
        stack = [start]
        delta = 1 if now_bad else -1
        while stack:
            node = stack.pop()
            for d in self._by_path.get(self.ref(node.name), ()):
                dn = self.nodes[d]
                was = self.is_bad(dn)
                dn.bad += delta
                self._refresh(dn)
                if was != self.is_bad(dn):
                    stack.append(dn)

    def _refresh(self, node: Node) -> None:
        name = node.name
        self.changed.add(name)
        pending = node.state == JobState.PENDING
        is_ready = pending and not node.bad and not node.unmet_jobs and not node.unmet_files
        is_blocked = pending and node.bad > 0
        waits_files = pending and not node.bad and not node.unmet_jobs and bool(node.unmet_files)
        if waits_files and name not in self.file_waiters:
            self.unasked.add(name)
        elif not waits_files:
            self.unasked.discard(name)
        for flag, bucket in ((is_ready, self.ready), (is_blocked, self.blocked),
                             (waits_files, self.file_waiters)):
            if flag:
                bucket.add(name)
            else:
                bucket.discard(name)

    # -- whole-graph analysis ----------------------------------------------------------------
    def find_cycle(self) -> list[str] | None:
        """Return one dependency cycle as a list of job names (first repeated last), or None."""
        edges: dict[str, list[str]] = {}
        for node in self.nodes.values():
            edges[node.name] = [p.name for p in map(self.producer, node.deps) if p is not None]
        color: dict[str, int] = {}
        for root in self.nodes:
            if root in color:
                continue
            stack: list[tuple[str, int]] = [(root, 0)]
            path: list[str] = []
            while stack:
                name, i = stack.pop()
                if i == 0:
                    color[name] = 1
                    path.append(name)
                succ = edges[name]
                if i < len(succ):
                    stack.append((name, i + 1))
                    nxt = succ[i]
                    if color.get(nxt) == 1:
                        return path[path.index(nxt):] + [nxt]
                    if nxt not in color:
                        stack.append((nxt, 0))
                else:
                    color[name] = 2
                    path.pop()
        return None

    def why(self, name: str) -> list[str]:
        """Explain in words why a pending job is not ready (empty when it is)."""
        node = self.nodes[name]
        out: list[str] = []
        for p in sorted(node.unmet_jobs):
            prod = self.producer(p)
            state = prod.state.value if prod else "?"
            if prod is not None and self.is_bad(prod):
                cause = "error" if prod.state == JobState.ERROR else "blocked"
                out.append(f"needs {p}: job {prod.name} is {cause}")
            else:
                out.append(f"needs {p}: job {prod.name if prod else '?'} is {state}")
        for p in sorted(node.unmet_files):
            out.append(f"needs {p}: no such file yet, and no job of the run writes it")
        return out

    def root_errors(self, name: str) -> list[str]:
        """Return the jobs in error that block `name`, following blocked dependencies."""
        seen: set[str] = set()
        out: list[str] = []
        stack = [name]
        while stack:
            cur = self.nodes[stack.pop()]
            for p in cur.deps:
                prod = self.producer(p)
                if prod is None or prod.name in seen or not self.is_bad(prod):
                    continue
                seen.add(prod.name)
                if prod.state == JobState.ERROR:
                    out.append(prod.name)
                else:
                    stack.append(prod.name)
        return sorted(out)


def classify(states: list[str], needs: list[tuple[int, ...]],
             files_unmet: list[bool]) -> tuple[list[str], list[int]]:
    """Graph's rules in one pass over a snapshot, for viewers of 100,000 jobs (building the
    incremental Graph job by job takes seconds). `states[i]` is job i's stored state, `needs[i]`
    the jobs pending job i needs (indexes), `files_unmet[i]` whether it also needs a plain file
    not known to exist (or an unknown job). Returns each job's derived state ("ready", "waiting",
    "blocked"; "" when not pending) and the jobs in error that some pending job needs directly:
    those at the root of every blocked job. tests/view/test_campaign.py checks it against Graph."""
    pending = [i for i, s in enumerate(states) if s == "pending"]
    needed_by: dict[int, list[int]] = {}
    for i in pending:
        for p in needs[i]:
            needed_by.setdefault(p, []).append(i)
    # blocked: a pending job that needs a job in error, or a blocked job; spread from the errors
    roots = [p for p in needed_by if states[p] == "error"]
    bad: set[int] = set()
    stack = list(roots)
    while stack:
        for d in needed_by.get(stack.pop(), ()):
            if d not in bad:
                bad.add(d)
                stack.append(d)
    derived = [""] * len(states)
    for i in pending:
        if i in bad:
            derived[i] = "blocked"
        elif files_unmet[i] or any(states[p] != "done" for p in needs[i]):
            derived[i] = "waiting"
        else:
            derived[i] = "ready"
    return derived, roots

