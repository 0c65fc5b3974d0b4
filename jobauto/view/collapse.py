"""The dependency DAG collapsed into a `Picture`, for `jobauto graph` and the HTML report.

`layout(campaign)` turns the jobs into a `Picture`: one node per job, or, when there are more jobs
than `max_nodes`, nodes that each stand for a set of jobs. One mechanism collapses them, pass after
pass until the picture is small enough or nothing more merges:

1. chains (series merge): a node whose only successor has it as its only predecessor merges with
   that successor (in a run, only inside one directory);
2. groups (parallel merge): nodes with the same step shape and the same predecessor and successor
   nodes merge ("6 × qsub.0…qsub.4"); in a run, then the jobs and chains of one directory with
   the same predecessors and successors merge whatever their steps (a sweep);
3. similar groups, when that is still too many: nodes of one shape whose predecessors and
   successors are in turn alike (colour refinement) merge ("300 × depth 1").

The merges keep the DAG a DAG: a chain link has no other path beside it, twins (same
predecessors, same successors) have no path between them, and alike nodes lie at the same depth.
Edges between nodes are the union of their members' edges. Everything here is pure; graph.py
writes the picture (DOT, mermaid) and draws it.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from dataclasses import dataclass, field, replace

from jobauto.core.errors import ConfigError
from jobauto.core.states import COUNT_KEYS as STATES
from jobauto.view.campaign import Campaign, JobView, assign_depth_steps

COLLAPSE = ("auto", "none", "chains", "groups")
WORST_FIRST = ("error", "blocked", "running", "ready", "waiting", "done")
PARTS_SHOWN = 4     # member groups named in a group node's label
TIP_JOBS = 20       # member jobs named in a collapsed node's tooltip
SET = "{set}"       # first shape element of a merged set (steps are "qsub.ID" or "depth K")


@dataclass
class Node:
    id: str                   # n0, n1, ...: never user text
    title: str                # first label line: a job, "Si/qsub.0 … qsub.4 (5 jobs)", "6 × …"
    lines: list[str]          # further label lines: state mix, members, errors
    jobs: list[str]           # the member jobs, in campaign order
    counts: dict[str, int]    # members by shown state (done running ready waiting blocked error)
    state: str                # the worst state present: the node's colour
    cluster: str = ""         # run: its directory (or members' common directory); "" = none
    tooltip: str = ""


@dataclass
class Picture:
    kind: str                                   # "run" or "table"
    nodes: list[Node]
    edges: list[tuple[str, str]]                # (needed, needing) node ids, no duplicates
    clusters: dict[str, list[str]]              # directory -> node ids (runs only)
    caption: str                                # how the jobs were collapsed
    jobs: int = 0                               # jobs drawn
    merged: list[str] = field(default_factory=list)  # merges applied: chains, groups
    too_many: bool = False                      # still more than max_nodes nodes


def shown_state(j: JobView) -> str:
    """The state a job is drawn in: pending jobs as ready, waiting or blocked."""
    if j.state == "pending":
        return j.derived if j.derived in STATES else "waiting"
    return j.state if j.state in STATES else "waiting"


def worst(counts: dict[str, int]) -> str:
    return next((s for s in WORST_FIRST if counts.get(s)), "done")


@dataclass
class _Unit:
    jobs: list[int]           # indexes into the job list; a chain's in chain order
    shape: tuple[str, ...]    # step labels; a group: one member's; a set: unique ("set", n)
    kind: str                 # job chain group set
    dirs: frozenset[str]      # directories of the members (runs)
    parts: list[str] = field(default_factory=list)   # groups and sets: what was merged


class _Collapser:
    def __init__(self, kind: str, jobs: list[JobView]) -> None:
        self.kind = kind
        self.jobs = jobs
        index = {j.name: i for i, j in enumerate(jobs)}
        self.edges = sorted({(index[d], i) for i, j in enumerate(jobs) for d in j.deps
                             if d in index and index[d] != i})
        self.units: dict[int, _Unit] = {
            i: _Unit([i], (j.step or j.name,), "job", frozenset([j.group])) for i, j in enumerate(jobs)}
        self.owner = list(range(len(jobs)))

    def links(self) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
        preds: dict[int, set[int]] = {u: set() for u in self.units}
        succs: dict[int, set[int]] = {u: set() for u in self.units}
        for a, b in self.edges:
            ua, ub = self.owner[a], self.owner[b]
            if ua != ub:
                succs[ua].add(ub)
                preds[ub].add(ua)
        return preds, succs

    def _merge(self, members: list[int], unit: _Unit) -> None:
        keep = members[0]
        for m in members:
            del self.units[m]
        self.units[keep] = unit
        for i in unit.jobs:
            self.owner[i] = keep

    def _chainable(self, u: _Unit, v: _Unit) -> bool:
        if u.kind not in ("job", "chain") or v.kind not in ("job", "chain"):
            return False   # a group stays a group: chaining it would hide its structure
        return self.kind != "run" or (len(u.dirs) == 1 and u.dirs == v.dirs)

    def chains(self) -> bool:
        """Merge every maximal chain of single links; one pass reaches the fixpoint."""
        preds, succs = self.links()
        nxt: dict[int, int] = {}
        for u, out in succs.items():
            if len(out) == 1:
                v = next(iter(out))
                if len(preds[v]) == 1 and self._chainable(self.units[u], self.units[v]):
                    nxt[u] = v
        if not nxt:
            return False
        targets = set(nxt.values())
        for head in sorted(u for u in nxt if u not in targets):
            run = [head]
            while run[-1] in nxt:
                run.append(nxt[run[-1]])
            units = [self.units[u] for u in run]
            self._merge(run, _Unit([i for x in units for i in x.jobs],
                                   tuple(s for x in units for s in x.shape), "chain", units[0].dirs))
        return True

    def _part(self, u: _Unit) -> str:
        if u.kind in ("group", "set"):
            return self.title(u)
        if self.kind == "run" and len(u.dirs) == 1:
            return next(iter(u.dirs)) or self.jobs[u.jobs[0]].name
        return self.jobs[u.jobs[0]].name

    def groups(self) -> bool:
        """Merge twins: same shape, predecessors and successors; then twins of one directory."""
        merged = False
        preds, succs = self.links()
        classes: dict[tuple[object, ...], list[int]] = defaultdict(list)
        for u in sorted(self.units):
            unit = self.units[u]
            classes[(unit.shape, frozenset(preds[u]), frozenset(succs[u]))].append(u)
        for members in classes.values():
            if len(members) > 1:
                self._group(members)
                merged = True
        if self.kind != "run":
            return merged   # in a table, twins of one depth have one shape: merged above
        # a directory's jobs with different IDs (a sweep): one node per directory and neighbours
        preds, succs = self.links()
        classes = defaultdict(list)
        for u in sorted(self.units):
            unit = self.units[u]
            if unit.kind in ("job", "chain") and len(unit.dirs) == 1:
                classes[(unit.dirs, frozenset(preds[u]), frozenset(succs[u]))].append(u)
        for members in classes.values():
            if len(members) > 1:
                units = [self.units[m] for m in members]
                jobs = sorted(i for x in units for i in x.jobs)
                shape = (SET, *sorted(_shape_text(x.shape) for x in units))
                self._merge(members, _Unit(jobs, shape, "set",
                                           frozenset().union(*(x.dirs for x in units)),
                                           [self._part_in_set(x) for x in units]))
                merged = True
        return merged

    def _group(self, members: list[int]) -> None:
        units = [self.units[m] for m in members]
        parts = [p for x in units for p in (x.parts if x.kind == "group" else [self._part(x)])]
        self._merge(members, _Unit(sorted(i for x in units for i in x.jobs), units[0].shape,
                                   "group", frozenset().union(*(x.dirs for x in units)), parts))

    def similar(self) -> bool:
        """Merge nodes of one shape whose predecessors and successors are alike in turn (colour
        refinement). Alike nodes lie at the same depth, so the merged graph stays acyclic."""
        preds, succs = self.links()
        names = sorted(self.units)
        shapes = {sh: k for k, sh in enumerate(sorted({self.units[u].shape for u in names}))}
        colour = {u: shapes[self.units[u].shape] for u in names}
        while True:
            sig = {u: (colour[u], tuple(sorted({colour[p] for p in preds[u]})),
                       tuple(sorted({colour[x] for x in succs[u]}))) for u in names}
            ids = {key: k for k, key in enumerate(sorted(set(sig.values())))}
            refined = {u: ids[sig[u]] for u in names}
            if len(ids) == len(set(colour.values())):
                break
            colour = refined
        classes: dict[int, list[int]] = defaultdict(list)
        for u in names:
            classes[colour[u]].append(u)
        merged = False
        for members in classes.values():
            if len(members) > 1:
                self._group(members)
                merged = True
        return merged

    def _part_in_set(self, u: _Unit) -> str:
        if u.kind == "job":
            return self.jobs[u.jobs[0]].step if self.kind == "run" else self.jobs[u.jobs[0]].name
        if u.kind == "chain":
            first, last = self.jobs[u.jobs[0]], self.jobs[u.jobs[-1]]
            return (f"{first.step}…{last.step}" if self.kind == "run"
                    else f"{first.name}…{last.name}")
        return self.title(u)

    def title(self, u: _Unit) -> str:
        n = len(u.jobs)
        first, last = self.jobs[u.jobs[0]], self.jobs[u.jobs[-1]]
        if u.kind == "job":
            return first.name
        if u.kind == "chain":
            tail = last.step if self.kind == "run" and first.group == last.group else last.name
            return f"{first.name} … {tail} ({n:,} jobs)"
        if u.kind == "group":
            return f"{len(u.parts):,} × {_shape_text(u.shape)} ({n:,} jobs)"
        where = next(iter(u.dirs)) if self.kind == "run" and len(u.dirs) == 1 else ""
        return f"{where}: {n:,} jobs" if where else f"{n:,} jobs"


def _shape_text(shape: tuple[str, ...]) -> str:
    """qsub.0, qsub.0…qsub.4, or a set's {qsub.1, qsub.2, …}."""
    if shape and shape[0] == SET:
        inner = shape[1:]
        return "{" + ", ".join(inner[:3]) + (", …" if len(inner) > 3 else "") + "}"
    return shape[0] if len(shape) == 1 else f"{shape[0]}…{shape[-1]}"


def _cluster(kind: str, dirs: frozenset[str]) -> str:
    if kind != "run":
        return ""
    if len(dirs) == 1:
        return next(iter(dirs))
    try:
        return posixpath.commonpath(sorted(dirs))
    except ValueError:
        return ""


def _listing(items: list[str], shown: int) -> str:
    head = ", ".join(items[:shown])
    return head + (f", … ({len(items):,} in all)" if len(items) > shown else "")


def _node(col: _Collapser, nid: str, u: _Unit) -> Node:
    members = [col.jobs[i] for i in sorted(u.jobs)]
    counts = {s: 0 for s in STATES}
    for j in members:
        counts[shown_state(j)] += 1
    counts = {s: n for s, n in counts.items() if n}
    state = worst(counts)
    title = col.title(u)
    if u.kind == "job":
        j = members[0]
        tip = f"{j.name}: {state}" + (f": {j.reason}" if j.reason else "")
        return Node(nid, title, [], [j.name], counts, state, _cluster(col.kind, u.dirs), tip)
    lines = [", ".join(f"{n:,} {s}" for s, n in counts.items())]
    if u.parts:
        lines.append(_listing(u.parts, PARTS_SHOWN))
    errors = [j.name for j in members if j.state == "error"]
    if errors:
        lines.append("error: " + errors[0] + (f" and {len(errors) - 1:,} more" if len(errors) > 1
                                              else ""))
    tip = "; ".join([title, lines[0], _listing([j.name for j in members], TIP_JOBS)])
    return Node(nid, title, lines, [j.name for j in members], counts, state,
                _cluster(col.kind, u.dirs), tip)


def layout(c: Campaign, *, collapse: str = "auto", max_nodes: int = 150) -> Picture:
    """Collapse the campaign's DAG into a picture of at most about max_nodes nodes."""
    if collapse not in COLLAPSE:
        raise ConfigError(f"unknown mode {collapse!r}: use one of {', '.join(COLLAPSE)}",
                          flag="--collapse")
    if max_nodes < 1:
        raise ConfigError(f"must be at least 1, not {max_nodes}", flag="--max-nodes")
    jobs = [replace(j) for j in c.jobs]   # copies: table steps are set here, not in the campaign
    if c.kind == "table" or not all(j.step for j in jobs):
        assign_depth_steps(jobs)
    col = _Collapser(c.kind, jobs)
    merged: list[str] = []

    def small() -> bool:
        return collapse == "auto" and len(col.units) <= max_nodes

    steps = {"none": [], "chains": [("chains", col.chains)],
             "groups": [("chains", col.chains), ("groups", col.groups), ("similar", col.similar)]}
    steps["auto"] = steps["groups"]
    while not small():
        changed = False
        for name, step in steps[collapse]:
            if step():
                changed = True
                if name not in merged:
                    merged.append(name)
                if small():
                    break
        if not changed:
            break
    order = sorted(col.units, key=lambda u: min(col.units[u].jobs))
    ids = {u: f"n{k}" for k, u in enumerate(order)}
    nodes = [_node(col, ids[u], col.units[u]) for u in order]
    _, succs = col.links()
    edges = sorted(((ids[a], ids[b]) for a in order for b in succs[a]),
                   key=lambda e: (int(e[0][1:]), int(e[1][1:])))
    clusters: dict[str, list[str]] = {}
    for n in nodes:
        if n.cluster:
            clusters.setdefault(n.cluster, []).append(n.id)
    too_many = collapse != "none" and len(nodes) > max_nodes
    return Picture(c.kind, nodes, edges, clusters, _caption(len(jobs), len(nodes), merged,
                                                            collapse, too_many, max_nodes),
                   len(jobs), merged, too_many)


def _caption(jobs: int, nodes: int, merged: list[str], collapse: str, too_many: bool,
             max_nodes: int) -> str:
    what = f"{jobs:,} job{'s' if jobs != 1 else ''} shown as {nodes:,} node{'s' if nodes != 1 else ''}"
    if merged:
        parts = ["chains of single-dependency jobs"] if "chains" in merged else []
        if "groups" in merged:
            parts.append("groups of identical chains" if parts else "groups of identical jobs")
        if "similar" in merged:
            parts.append("similar groups")
        how = (", ".join(parts[:-1]) + " and " if len(parts) > 1 else "") + parts[-1] + " merged"
        text = f"{what}: {how} (--collapse none to draw every job)"
    elif collapse == "none":
        text = f"{what}: every job drawn (--collapse none)"
    elif collapse == "auto" and not too_many:
        text = f"{what}: every job drawn (at most --max-nodes {max_nodes:,})"
    else:
        text = f"{what}: nothing could be merged"
    if too_many:
        text += f"; more than --max-nodes {max_nodes:,}, drawn anyway"
    return text

