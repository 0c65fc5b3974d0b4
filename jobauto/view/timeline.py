"""The report's timeline: one bar per job on a local wall-clock axis, as inline SVG.

A job's bar is queued (submitted, not yet seen running), then running, with a mark at its end
coloured by outcome; a job queued ahead (jobmon --ahead) starts with the span it waited in the
queue on the scheduler's dependency, up to its predecessors' end (`ahead_edges` measures those
edges for the section below the picture); a job whose start was never observed is one hatched bar from submission to
end. Past `MAX_ROWS` started jobs there is one row per step instead, shaded by how many of its
jobs ran at once. `timeline_html(c)` is the page's section; the rest are its parts. Its
styles are in the page's one stylesheet (report.CSS).
"""

from __future__ import annotations

import math
import re
import statistics
import time
from dataclasses import dataclass
from datetime import datetime

from jobauto.core import edges
from jobauto.core.edges import Edge
from jobauto.view.campaign import Campaign, JobView
from jobauto.view.markup import clock, dur, e

MAX_ROWS = 2000          # timeline rows drawn one per job; above, one row per step
LABELLED_ROWS = 200      # up to this many rows carry the job name beside the bar


@dataclass
class Bar:
    """One timeline row: segments (kind, from, to) with kind ahead/queued/running/unobserved."""
    key: str          # the job's name, or the step's for grouped rows
    state: str
    segments: list[tuple[str, float, float]]
    end: float | None  # where the outcome mark goes (finished jobs)
    tip: str
    density: list[tuple[float, float, float]] | None = None   # step rows: (from, to, share busy)


def first_seen(j: JobView) -> float | None:
    return j.queued_at if j.queued_at is not None else j.started_at


def ahead_until(j: JobView, jobs: dict[str, JobView], now: float) -> float | None:
    """When a job submitted ahead stopped waiting on the scheduler's dependency: its last
    predecessor's end (now while one is not done); None for a job submitted after them."""
    if j.queued_at is None or j.state == "pending" or not j.deps:
        return None
    ends = []
    for d in j.deps:
        p = jobs.get(d)
        if p is None:
            continue   # not listed: done long before (a summary)
        if p.state != "done" or p.ended_at is None:
            return now if j.state == "running" else None
        ends.append(p.ended_at)
    last = max(ends, default=None)
    return last if last is not None and j.queued_at < last else None


def job_bar(j: JobView, now: float, ahead: float | None = None) -> Bar | None:
    """The bar of a job that started (or was submitted); None for jobs never started. `ahead`:
    when it stopped waiting on the scheduler's dependency (`ahead_until`)."""
    if j.state == "pending":
        return None
    q, s, t = j.queued_at, j.started_at, j.ended_at
    finished = j.state in ("done", "error") and t is not None
    segs: list[tuple[str, float, float]] = []
    if q is not None and ahead is not None:
        stop = min(x for x in (ahead, s, t, now) if x is not None)
        segs.append(("ahead", q, max(stop, q)))
        q = max(stop, q)
    if s is not None:
        if q is not None and q < s:
            segs.append(("queued", q, s))
        segs.append(("running", s, max(t if t is not None else now, s)))
    elif q is not None:
        segs.append(("unobserved", q, max(t, q)) if finished and t is not None else ("queued", q, now))
    elif not segs:
        return None
    return Bar(j.name, j.state, segs, segs[-1][2] if finished else None, "")


def job_tip(j: JobView) -> str:
    """A job's tooltip: name, state and verdict, times, where, reason."""
    lines = [j.name, f"state: {j.state}" + (f" ({j.verdict})" if j.verdict and j.verdict != j.state
                                            else "")]
    if j.queued_at is not None:
        lines.append(f"submitted {clock(j.queued_at)}")
    lines.append(f"started {clock(j.started_at)}" if j.started_at is not None
                 else "start not observed")
    if j.ended_at is not None:
        lines.append(f"ended {clock(j.ended_at)}, took {dur(j.duration())}")
    if j.where:
        lines.append(f"where: {j.where}")
    if j.state == "error" and j.reason:
        lines.append(j.reason)
    return "\n".join(lines)


def step_key(step: str) -> list[object]:
    """Natural order: qsub.2 before qsub.10, depth 2 before depth 10."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", step)]


def step_bars(bars: list[Bar], jobs: dict[str, JobView], bins: int = 300) -> list[Bar]:
    """One row per step for big campaigns: a grey span from the first job seen to the last end,
    shaded by how many of the step's jobs ran at once, the worst outcome marked at the end."""
    lo = min(b.segments[0][1] for b in bars)
    width = max(max(b.segments[-1][2] for b in bars) - lo, 1e-9) / bins
    groups: dict[str, list[Bar]] = {}
    for b in bars:
        groups.setdefault(jobs[b.key].step or "(no step)", []).append(b)
    out = []
    for step in sorted(groups, key=step_key):
        bs = groups[step]
        diff = [0] * (bins + 1)   # jobs running in each time bin, by a difference array
        for b in bs:
            ran = [seg for seg in b.segments if seg[0] not in ("queued", "ahead")]
            if ran:
                diff[min(int((ran[0][1] - lo) / width), bins - 1)] += 1
                diff[min(int((ran[-1][2] - lo) / width), bins - 1) + 1] -= 1
        level, busy = 0, []
        for k in range(bins):
            level += diff[k]
            busy.append(level)
        top = max(busy) or 1
        density = [(lo + k * width, lo + (k + 1) * width, n / top) for k, n in enumerate(busy) if n]
        first, last = min(b.segments[0][1] for b in bs), max(b.segments[-1][2] for b in bs)
        n = {s: sum(b.state == s for b in bs) for s in ("done", "error", "running")}
        state = "error" if n["error"] else "running" if n["running"] else "done"
        tip = (f"{step}: {len(bs)} jobs ({n['done']} done, {n['error']} error, "
               f"{n['running']} running)\nfirst seen {clock(first)}, last end {clock(last)}\n"
               f"at most {max(busy)} running at once")
        out.append(Bar(step, state, [("span", first, last)], last if not n["running"] else None,
                       tip, density))
    return out


def ticks(t0: float, t1: float, target: int = 8) -> tuple[list[float], str]:
    """Round local times between t0 and t1, and the strftime format that labels them
    ("%S.%f"-like tenths are added by `tick_label` for steps under a second)."""
    steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
             21600, 43200, 86400, 172800, 604800]
    span = max(t1 - t0, 1e-9)
    step = next((s for s in steps if span / s <= target), math.ceil(span / target / 86400) * 86400)
    off = datetime.fromtimestamp(t0).astimezone().utcoffset()
    off_s = off.total_seconds() if off else 0.0
    k0 = math.ceil((t0 + off_s) / step - 1e-9)
    out = [k * step - off_s for k in range(k0, k0 + int(span / step) + 2) if k * step - off_s <= t1]
    fmt = "%H:%M:%S.1" if step < 1 else "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 \
        else "%m-%d"
    if step < 86400 and span > 86400:
        fmt = "%m-%d " + fmt
    return out, fmt


def tick_label(t: float, fmt: str) -> str:
    if fmt.endswith(".1"):
        return clock(t, fmt[:-2]) + f".{int(round(t * 10)) % 10}"
    return clock(t, fmt)


def timeline_svg(bars: list[Bar], now: float, *, labels: bool, row_h: float,
                 attr: str = "data-job", width: int = 1100) -> str:
    """Bars on a local wall-clock axis; each row is <g data-job|data-step data-state> + <title>."""
    label_w = 250 if labels else 10
    plot_w = width - label_w - 40   # room for the last tick's label
    t0 = min(seg[1] for b in bars for seg in b.segments)
    t1 = max(max(seg[2] for b in bars for seg in b.segments), t0 + 1.0)
    scale = plot_w / (t1 - t0)

    def x(t: float) -> float:
        return label_w + (t - t0) * scale

    top = 22
    height = top + row_h * len(bars) + 24
    bh = max(row_h * 0.7, 1.5)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" '
           f'height="{height:.0f}" viewBox="0 0 {width} {height:.0f}" role="img">',
           '<defs><pattern id="jobauto-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="6" height="6" class="unobserved-bg"/>'
           '<line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>']
    marks, fmt = ticks(t0, t1)
    for t in marks:
        out.append(f'<line class="tick" x1="{x(t):.2f}" y1="{top - 4}" x2="{x(t):.2f}" '
                   f'y2="{height - 20:.0f}"/><text class="axis" x="{x(t):.2f}" y="{top - 8}">'
                   f'{e(tick_label(t, fmt))}</text><text class="axis" x="{x(t):.2f}" '
                   f'y="{height - 6:.0f}">{e(tick_label(t, fmt))}</text>')
    if t0 <= now <= t1 and any(b.end is None for b in bars):
        out.append(f'<line class="now" x1="{x(now):.2f}" y1="{top - 4}" x2="{x(now):.2f}" '
                   f'y2="{height - 20:.0f}"><title>now {e(clock(now))}</title></line>')
    for i, b in enumerate(bars):
        y = top + i * row_h + (row_h - bh) / 2
        rects = "".join(f'<rect class="{k}" x="{x(a):.2f}" y="{y:.2f}" '
                        f'width="{max((c - a) * scale, 0.0 if k == "queued" else 1.0):.3f}" '
                        f'height="{bh:.2f}"/>'
                        for k, a, c in b.segments)
        rects += "".join(f'<rect class="busy" x="{x(a):.2f}" y="{y:.2f}" '
                         f'width="{(c - a) * scale:.3f}" height="{bh:.2f}" '
                         f'fill-opacity="{0.2 + 0.8 * f:.2f}"/>' for a, c, f in b.density or [])
        if b.end is not None:
            rects += (f'<rect class="end {e(b.state)}" x="{x(b.end) - 1.5:.2f}" y="{y:.2f}" '
                      f'width="3" height="{bh:.2f}"/>')
        text = (f'<text class="name" x="{label_w - 6}" y="{y + bh - 1:.2f}">{e(shorten(b.key))}'
                "</text>" if labels else "")
        out.append(f'<g {attr}="{e(b.key)}" data-state="{e(b.state)}"><title>{e(b.tip)}</title>'
                   f"{text}{rects}</g>")
    return "\n".join(out) + "</svg>"


def ahead_edges(c: Campaign) -> tuple[list[Edge], list[float]]:
    """The edges handed to the scheduler, and the delays of the edges jobmon handled itself,
    of the jobs that ran (core/edges.py). Times: markers' mtimes on the cluster, the monitor's
    clock for submissions and starts (docs/decisions.md "Edges to the scheduler")."""
    jobs = {j.name: j for j in c.jobs}
    return edges.split(
        e for j in c.jobs if j.state != "pending"
        and (e := edges.item(j.name, j.queued_at, j.started_at,
                             [(p.name, p.state == "done", p.ended_at)
                              for d in j.deps if (p := jobs.get(d)) is not None])) is not None)


def edges_html(c: Campaign, rows: int = 50) -> str:
    """The edges handed to the scheduler and the time each saved, or "" without any."""
    handed, own = ahead_edges(c)
    if not handed:
        return ""
    cost, basis = edges.cost(own, c.settings.get("interval"))
    delays = [x.delay_s for x in handed if x.delay_s is not None]
    text = (f"{len(handed)} dependency edge(s) were handed to the scheduler (jobmon --ahead): "
            "each job was in the queue before its predecessor ended.")
    if delays:
        text += (f" Start delay after the predecessor's end: median {dur(statistics.median(delays))}"
                 f" ({len(delays)} edge(s) whose start was observed; the start is when the monitor"
                 " first saw the job running, so this is an upper bound).")
    if cost is not None:
        text += (f" Without --ahead each would have reached the queue only after about "
                 f"{dur(cost)}, {basis}: saved about {dur(cost)} per edge.")
    body = "".join(f"<tr><td>{e(x.job)}</td><td>{e(x.after)}</td><td>{e(dur(x.ahead_s))}</td>"
                   f"<td>{e(dur(x.delay_s)) if x.delay_s is not None else 'start not observed'}"
                   f"</td><td>{e(dur(cost)) if cost is not None else '-'}</td></tr>"
                   for x in handed[:rows])
    more = f"<p>... and {len(handed) - rows} more.</p>" if len(handed) > rows else ""
    return (f'<div id="ahead-edges"><h3>Edges handed to the scheduler</h3><p>{e(text)}</p>'
            "<table><thead><tr><th>job</th><th>after</th><th>queued ahead for</th>"
            "<th>start delay</th><th>saved (estimate)</th></tr></thead>"
            f"<tbody>{body}</tbody></table>{more}</div>")


def shorten(name: str, n: int = 38) -> str:
    return name if len(name) <= n else "..." + name[-(n - 3):]


def timeline_html(c: Campaign) -> str:
    jobs = {j.name: j for j in c.jobs}
    bars = [b for j in sorted(c.jobs, key=lambda j: (first_seen(j) or 0.0, j.name))
            if (b := job_bar(j, c.now, ahead_until(j, jobs, c.now))) is not None]
    never = sum(j.state == "pending" for j in c.jobs)
    untimed = c.total - never - len(bars)
    notes = [f"{len(bars)} job(s) drawn, one row each, in the order they were first seen "
             "(submitted or started)."]
    if not bars:
        notes = ["No job has started yet."]
    if never:
        notes.append(f"{never} job(s) never started (pending) are not drawn.")
    if untimed:
        notes.append(f"{untimed} started job(s) have no recorded times and are not drawn.")
    svg = ""
    if len(bars) > MAX_ROWS:
        grouped = step_bars(bars, jobs)
        if len(grouped) > MAX_ROWS:
            notes.append(f"Only the first {MAX_ROWS} of {len(grouped)} steps are drawn.")
            grouped = grouped[:MAX_ROWS]
        notes[0] = (f"{len(bars)} started jobs are too many for one row each (limit {MAX_ROWS}): "
                    f"one row per step instead ({len(grouped)} rows): grey from the first job "
                    "seen to the last end, darker blue where more of the step's jobs were "
                    "running at once (hover for the numbers); the end mark is red when any "
                    "job of the step failed.")
        svg = timeline_svg(grouped, c.now, labels=True, row_h=16, attr="data-step")
    elif bars:
        small = len(bars) <= LABELLED_ROWS
        if not small:
            notes.append(f"More than {LABELLED_ROWS} rows: names are in the tooltips, not beside "
                         "the bars.")
        for b in bars:
            b.tip = job_tip(jobs[b.key])
        svg = timeline_svg(bars, c.now, labels=small, row_h=16 if small else 3)
    tz = time.strftime("%Z, UTC%z")
    legend = ('<span class="key ahead"></span>queued ahead (in the queue on the scheduler\'s '
              "dependency, until its predecessors ended) "
              '<span class="key queued"></span>queued (submitted, not yet seen running) '
              '<span class="key running"></span>running '
              '<span class="key unobserved"></span>submitted &rarr; ended, start not observed '
              "(the job was shorter than the monitor's polling interval) "
              '<span class="key done"></span>ended done <span class="key error"></span>ended in error')
    return (f'<section id="timeline"><h2>Timeline</h2><p class="legend">{legend}</p>'
            f"<p>{e(' '.join(notes))} Times are local ({e(tz)}); hover a bar for details.</p>"
            f'<div class="scroll">{svg}</div>{edges_html(c)}</section>')
