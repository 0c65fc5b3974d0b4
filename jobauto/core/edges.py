"""Dependency edges and what `--ahead` saved on each: the one rule the report's timeline and
`jobauto explain` share (docs/decisions.md "Showing jobs queued ahead, and the time an edge
saved"). Pure: times in, figures out.

An edge is a job and the predecessor that ended last. It was handed to the scheduler (queued
ahead) when the job was submitted before that end; else jobmon handled it itself, and its delay
(the end to the submission: the wait for a cycle, the reading of the markers, the round trip) is
what `--ahead` removes. The cost of an edge without `--ahead` is the median of those delays in
the same run, or half of `--interval` (the mean wait for the next cycle) when every edge went
ahead.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class Edge:
    """A dependency edge handed to the scheduler: `job` was queued before `after` ended."""
    job: str
    after: str                   # the predecessor that ended last
    ahead_s: float               # how long the job waited in the queue on it
    delay_s: float | None        # its end to the job's start (None: start not observed)


Item = tuple[str, str, float, float, "float | None"]


def item(job: str, queued: float | None, started: float | None,
         preds: list[tuple[str, bool, float | None]]) -> Item | None:
    """The edge of a submitted JOB whose predecessors (name, done, end) all ended done, as
    split() takes it: (job, the predecessor that ended last, submitted, its end, started);
    None for a job not submitted, without predecessors, or waiting on one not done."""
    if queued is None or not preds or any(not done or end is None for _, done, end in preds):
        return None
    last, _, end = max(preds, key=lambda p: p[2] or 0.0)
    return job, last, queued, end or 0.0, started


def split(items: Iterable[Item]) -> tuple[list[Edge], list[float]]:
    """(job, last predecessor, submitted at, predecessor's end, started at or None) -> the
    edges handed to the scheduler, and the delays of those jobmon handled itself."""
    edges: list[Edge] = []
    own: list[float] = []
    for job, after, queued, end, started in items:
        if queued < end:
            edges.append(Edge(job, after, end - queued, started - end if started is not None
                              else None))
        else:
            own.append(queued - end)
    return edges, own


def cost(own: list[float], interval: object) -> tuple[float | None, str]:
    """What an edge costs without --ahead, and how that was found ("" when it cannot be)."""
    if own:
        return (statistics.median(own),
                f"the median delay of the {len(own)} edge(s) jobmon handled itself in this run "
                "(the predecessor's end to the submission)")
    if isinstance(interval, (int, float)) and not isinstance(interval, bool):
        return float(interval) / 2, ("half of --interval (the mean wait for the cycle that reads "
                                     "the markers)")
    return None, ""
