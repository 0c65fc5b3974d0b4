"""`jobauto report`: one self-contained HTML page about a campaign (run or table).

`build(c, dag, tails)` is pure: a gathered `view.Campaign`, the DAG picture and the failed jobs'
output tails in, the page out. `make(c)` gathers those two (graphviz, files) and calls it. The
page loads nothing: no scripts, no external CSS, fonts or images, and a Content-Security-Policy
that forbids any fetch, so it can be mailed or opened offline. Every user string is escaped.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path

from jobauto.core.errors import ConfigError
from jobauto.core.states import COUNT_KEYS as STATES
from jobauto.view.campaign import Campaign, JobView, assign_depth_steps
from jobauto.view.graph import BORDER, PALETTE
from jobauto.view.status import STATE_HELP, duration, percent, rate_lines

TAIL_BYTES = 4096        # of a failed job's output shown in the page
MAX_ROWS = 2000          # timeline rows drawn one per job; above, one row per step
LABELLED_ROWS = 200      # up to this many rows carry the job name beside the bar
FULL_FAILURES = 100      # failures shown in full; the rest in one table
MAX_STEPS = 500          # rows of the steps table (a table's deep chain has one step per depth)


@dataclass
class Dag:
    """The DAG section's content: an SVG, or the DOT text and why there is no picture."""
    dot: str = ""
    caption: str = ""
    svg: str | None = None
    note: str = ""


@dataclass
class Tail:
    path: str
    text: str
    truncated: bool


def e(s: object) -> str:
    return escape(str(s), quote=True)


def dur(s: float | None) -> str:
    """status.duration, with tenths under 10 s (short jobs are common in tables)."""
    return f"{s:.1f}s" if s is not None and 0 <= s < 10 else duration(s)


def clock(t: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return "-" if t is None else time.strftime(fmt, time.localtime(t))


# -- summary ------------------------------------------------------------------------------------
def summary_html(c: Campaign) -> str:
    k = c.counts
    kind = "jobmon run directory" if c.kind == "run" else "job table"
    rows = [("done", "Done", ""), ("running", "Running", ""), ("pending", "Pending", "")]
    rows += [(s, f"&nbsp;&nbsp;{s.title()}", STATE_HELP[s]) for s in ("ready", "waiting", "blocked")]
    rows += [("error", "Error", "")]
    total = max(c.total, 1)
    table = "".join(
        f'<tr class="{key}"><th scope="row">{label}</th><td class="n">{k.get(key, 0)}</td>'
        f'<td class="n">{100 * k.get(key, 0) / total:.0f}%</td><td>{e(help_)}'
        + (f" ({e(', '.join(c.blocked_by[:5]))}{' ...' if len(c.blocked_by) > 5 else ''})"
           if key == "blocked" and c.blocked_by else "") + "</td></tr>"
        for key, label, help_ in rows)
    bar = "".join(f'<div class="seg {s}" style="width:{100 * k.get(s, 0) / total:.3f}%" '
                  f'title="{s}: {k.get(s, 0)}"></div>' for s in STATES if k.get(s, 0))
    legend = " ".join(f'<span class="key {s}"></span>{s} {k.get(s, 0)}' for s in STATES)
    first = min((t for j in c.jobs if (t := first_seen(j)) is not None), default=None)
    last = max((j.ended_at for j in c.jobs if j.ended_at is not None), default=None)
    facts = [("Target", e(c.path)), ("Kind", kind),
             ("Generated", e(clock(c.now))),
             ("Monitor" if c.kind == "run" else "Workers", e(c.driver or "-")),
             ("Jobs", f"{c.total}, {k['done']} done ({percent(c):.0f}%)")]
    if first is not None:
        end = c.now if k["running"] or last is None else last
        facts.append(("Wall time", f"{e(clock(first))} to {e(clock(end))} ({duration(end - first)})"))
    facts += [("Rates", e(line)) for line in rate_lines(c)]
    dl = "".join(f"<dt>{a}</dt><dd>{b}</dd>" for a, b in facts)
    out = [f'<section id="summary"><h2>Summary</h2><dl class="facts">{dl}</dl>',
           f'<div class="bar" role="img" aria-label="jobs by state">{bar}</div>',
           f'<p class="legend">{legend}</p>',
           f'<table class="counts"><tbody>{table}</tbody>'
           f'<tfoot><tr><th scope="row">Total</th><td class="n">{c.total}</td><td></td><td></td>'
           "</tr></tfoot></table>"]
    runs = c.running()
    if runs:
        head = "worker" if c.kind == "table" else "scheduler id"
        body = "".join(f"<tr><td>{e(j.name)}</td><td>{e(j.where or '-')}</td>"
                       f"<td>{e(clock(j.started_at or j.queued_at))}</td></tr>" for j in runs[:50])
        more = f"<p>... and {len(runs) - 50} more.</p>" if len(runs) > 50 else ""
        out.append(f"<h3>Running ({len(runs)})</h3><table><thead><tr><th>job</th><th>{head}</th>"
                   f"<th>since</th></tr></thead><tbody>{body}</tbody></table>{more}")
    return "".join(out) + "</section>"


# -- timeline -----------------------------------------------------------------------------------
@dataclass
class Bar:
    """One timeline row: segments (kind, from, to) with kind queued/running/unobserved."""
    key: str          # the job's name, or the step's for grouped rows
    state: str
    segments: list[tuple[str, float, float]]
    end: float | None  # where the outcome mark goes (finished jobs)
    tip: str
    density: list[tuple[float, float, float]] | None = None   # step rows: (from, to, share busy)


def first_seen(j: JobView) -> float | None:
    return j.queued_at if j.queued_at is not None else j.started_at


def job_bar(j: JobView, now: float) -> Bar | None:
    """The bar of a job that started (or was submitted); None for jobs never started."""
    if j.state == "pending":
        return None
    q, s, t = j.queued_at, j.started_at, j.ended_at
    finished = j.state in ("done", "error") and t is not None
    segs: list[tuple[str, float, float]] = []
    if s is not None:
        if q is not None and q < s:
            segs.append(("queued", q, s))
        segs.append(("running", s, max(t if t is not None else now, s)))
    elif q is not None:
        segs.append(("unobserved", q, max(t, q)) if finished and t is not None else ("queued", q, now))
    else:
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
            ran = [seg for seg in b.segments if seg[0] != "queued"]
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


def shorten(name: str, n: int = 38) -> str:
    return name if len(name) <= n else "..." + name[-(n - 3):]


def timeline_html(c: Campaign) -> str:
    jobs = {j.name: j for j in c.jobs}
    bars = [b for j in sorted(c.jobs, key=lambda j: (first_seen(j) or 0.0, j.name))
            if (b := job_bar(j, c.now)) is not None]
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
    legend = ('<span class="key queued"></span>queued (submitted, not yet seen running) '
              '<span class="key running"></span>running '
              '<span class="key unobserved"></span>submitted &rarr; ended, start not observed '
              "(the job was shorter than the monitor's polling interval) "
              '<span class="key done"></span>ended done <span class="key error"></span>ended in error')
    return (f'<section id="timeline"><h2>Timeline</h2><p class="legend">{legend}</p>'
            f"<p>{e(' '.join(notes))} Times are local ({e(tz)}); hover a bar for details.</p>"
            f'<div class="scroll">{svg}</div></section>')


# -- DAG ----------------------------------------------------------------------------------------
def inline_svg(svg: str) -> str | None:
    """An SVG document as an element to inline: prolog, doctype and comments before <svg> go."""
    start = svg.find("<svg")
    if start < 0 or re.search(r"<script|\son\w+\s*=|javascript:", svg, re.I):
        return None   # graphviz never writes these: refuse anything that is not a plain picture
    return svg[start:]


def dag_html(d: Dag) -> str:
    cap = f'<p class="caption">{e(d.caption)}</p>' if d.caption else ""
    if d.svg is not None:
        body = f'<div class="scroll dag">{d.svg}</div>'
    elif not d.dot:
        body = f'<p class="note">No picture: {e(d.note)}</p>'
    else:
        body = (f'<p class="note">No picture: {e(d.note)}. Install graphviz (Debian/Ubuntu: '
                "<code>apt install graphviz</code>; conda: <code>conda install graphviz</code>) "
                "and run <code>jobauto report</code> again, or paste the DOT source below into "
                f"<code>dot -Tsvg</code>.</p><pre>{e(d.dot)}</pre>")
    return f'<section id="dag"><h2>Dependency graph</h2>{cap}{body}</section>'


DAG_NODES_DRAWN = 2000   # past this, a picture is neither quick to lay out nor readable


def make_dag(c: Campaign) -> Dag:
    """Lay out and draw the DAG with graphviz; without graphviz, the DOT text and a note."""
    from jobauto.view import graph
    pic = graph.layout(c, collapse="auto", max_nodes=150)
    if len(pic.nodes) > DAG_NODES_DRAWN:
        return Dag("", pic.caption, None,
                   f"{len(pic.nodes):,} nodes are left after collapsing, more than the report "
                   f"draws ({DAG_NODES_DRAWN:,}: graphviz would take minutes and the picture would "
                   "be unreadable); draw it on its own with jobauto graph PATH --format svg "
                   "-o dag.svg")
    dot = graph.to_dot(pic)
    try:
        raw = graph.to_image(dot, "svg")
    except ConfigError as err:
        return Dag(dot, pic.caption, None, err.describe())
    svg = inline_svg(raw.decode("utf-8", "replace"))
    return Dag(dot, pic.caption, svg, "" if svg is not None else "graphviz wrote no usable SVG")


# -- failures -----------------------------------------------------------------------------------
def blockers(c: Campaign) -> dict[str, list[str]]:
    """Each error that blocks jobs -> the blocked jobs, following dependencies transitively."""
    by_name = {j.name: j for j in c.jobs}
    roots: dict[str, frozenset[str]] = {}
    for j in c.jobs:
        stack = [(j.name, False)]
        while stack:   # iterative: chains of 100,000 jobs must not hit the recursion limit
            name, expanded = stack.pop()
            job = by_name[name]
            if name in roots:
                continue
            if job.state == "error":
                roots[name] = frozenset([name])
                continue
            deps = [d for d in job.deps if d in by_name and by_name[d].state != "done"]
            if expanded or job.derived != "blocked":
                roots[name] = (frozenset().union(*(roots.get(d, frozenset()) for d in deps))
                               if job.derived == "blocked" else frozenset())
                continue
            stack.append((name, True))
            stack.extend((d, False) for d in deps if d not in roots)
    out: dict[str, list[str]] = {}
    for j in c.jobs:
        if j.derived == "blocked":
            for r in sorted(roots.get(j.name, ())):
                out.setdefault(r, []).append(j.name)
    return out


def failure_html(j: JobView, tail: Tail | None) -> str:
    facts = [("verdict", j.verdict or "failed"),
             ("exit code", "-" if j.exit_code is None else j.exit_code),
             ("reason", j.reason or "-"), ("attempts", j.attempts), ("where", j.where or "-"),
             ("submitted", clock(j.queued_at)), ("started", clock(j.started_at)),
             ("ended", clock(j.ended_at)), ("took", dur(j.duration()))]
    dl = "".join(f"<dt>{a}</dt><dd>{e(b)}</dd>" for a, b in facts
                 if not (a in ("submitted", "started") and b == "-"))
    out = [f'<article class="failure" data-job="{e(j.name)}"><h3>{e(j.name)}</h3>'
           f'<dl class="facts">{dl}</dl>']
    if j.evidence:
        out.append(f"<h4>Evidence</h4><pre>{e(j.evidence)}</pre>")
    if tail is not None:
        cut = f" (last {TAIL_BYTES // 1024} KB)" if tail.truncated else ""
        out.append(f"<h4>Output: <code>{e(tail.path)}</code>{cut}</h4>"
                   + (f"<pre>{e(tail.text)}</pre>" if tail.text.strip() else "<p>(empty)</p>"))
    return "".join(out) + "</article>"


def failures_html(c: Campaign, tails: dict[str, Tail]) -> str:
    fails = c.failures()
    out = ['<section id="failures"><h2>Failures</h2>']
    if not fails:
        out.append("<p>No job failed.</p>")
    for j in fails[:FULL_FAILURES]:
        out.append(failure_html(j, tails.get(j.name)))
    if len(fails) > FULL_FAILURES:
        rows = "".join(f"<tr><td>{e(j.name)}</td><td>{e(j.verdict or 'failed')}</td>"
                       f"<td>{e('-' if j.exit_code is None else j.exit_code)}</td>"
                       f"<td>{e(j.reason)}</td></tr>" for j in fails[FULL_FAILURES:])
        out.append(f"<h3>{len(fails) - FULL_FAILURES} more failures</h3><table><thead><tr>"
                   "<th>job</th><th>verdict</th><th>exit</th><th>reason</th></tr></thead>"
                   f"<tbody>{rows}</tbody></table>")
    blocked = blockers(c)
    if blocked:
        n = sum(j.derived == "blocked" for j in c.jobs)
        out.append(f"<h3>Blocked jobs ({n})</h3><p>They will not run until the error that "
                   "blocks them is reset (<code>jobauto reset</code>).</p><table><thead><tr>"
                   "<th>error</th><th>blocks</th><th>jobs</th></tr></thead><tbody>")
        for root in sorted(blocked, key=lambda r: (-len(blocked[r]), r)):
            names = blocked[root]
            shown = ", ".join(names[:50]) + (f" and {len(names) - 50} more" if len(names) > 50
                                             else "")
            out.append(f'<tr data-blocker="{e(root)}"><td>{e(root)}</td>'
                       f'<td class="n">{len(names)}</td><td>{e(shown)}</td></tr>')
        out.append("</tbody></table>")
    return "".join(out) + "</section>"


def read_tail(path: Path, limit: int = TAIL_BYTES) -> Tail | None:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - limit, 0))
            data = f.read(limit)
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    if size > limit and "\n" in text:
        text = text.split("\n", 1)[1]   # a cut first line is noise
    return Tail(str(path), text, size > limit)


def output_tails(c: Campaign) -> dict[str, Tail]:
    """The last bytes of each failed job's output: a table's DB.jobs/ROW.ATTEMPT.err, a run's
    scheduler output file (qsub.ID.oJOBID and the like) when it is in the run directory."""
    fails = c.failures()[:FULL_FAILURES]
    out: dict[str, Tail] = {}
    root = Path(c.path)
    if c.kind == "table" and fails:
        from jobauto.store import TableStore
        store = TableStore(root, readonly=True)
        try:
            rows = {j.id: j.row for j in store.jobs()}
        finally:
            store.close()
        jobdir = root.parent / (root.name + ".jobs")
        for j in fails:
            row = rows.get(j.name)
            if row is None:
                continue
            found = [jobdir / f"{row}.{j.attempts}.err", *newest(jobdir.glob(f"{row}.*.err"))]
            tail = next((t for p in found if (t := read_tail(p)) is not None), None)
            if tail is not None:
                out[j.name] = tail
    for j in fails if c.kind == "run" else []:
        d = (root / j.name).parent
        step = Path(j.name).name
        named = [d / n for n in (f"{step}.o{j.where}", f"{step}.e{j.where}", f"slurm-{j.where}.out")]
        found = [p for p in named if j.where and p.is_file()] or newest(
            p for p in d.glob(glob_escape(step) + ".[oe]*") if p.is_file())
        tail = next((t for p in found if (t := read_tail(p)) is not None), None)
        if tail is not None:
            out[j.name] = tail
    return out


def newest(paths: Iterable[Path]) -> list[Path]:
    """Newest first; a file removed meanwhile (a worker cleaning up) is left out."""
    dated = []
    for p in paths:
        try:
            dated.append((p.stat().st_mtime, p))
        except OSError:
            continue
    return [p for _, p in sorted(dated, key=lambda x: x[0], reverse=True)]


def glob_escape(s: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", s)


# -- steps --------------------------------------------------------------------------------------
def step_stats(c: Campaign) -> list[dict[str, object]]:
    """Per step: jobs, done, error and the durations (s) of its done jobs."""
    groups: dict[str, list[JobView]] = {}
    for j in c.jobs:
        groups.setdefault(j.step or "(no step)", []).append(j)
    out: list[dict[str, object]] = []
    for step in sorted(groups, key=step_key):
        js = groups[step]
        ds = sorted(t for j in js if j.state == "done" and (t := j.duration()) is not None)
        out.append({"step": step, "jobs": len(js), "done": sum(j.state == "done" for j in js),
                    "error": sum(j.state == "error" for j in js),
                    "min": ds[0] if ds else None, "median": statistics.median(ds) if ds else None,
                    "mean": statistics.fmean(ds) if ds else None,
                    "p90": ds[math.ceil(0.9 * len(ds)) - 1] if ds else None,
                    "max": ds[-1] if ds else None})
    return out


def steps_html(c: Campaign) -> str:
    cols = ("min", "median", "mean", "p90", "max")
    stats = step_stats(c)
    rows = "".join(
        f'<tr data-step="{e(s["step"])}"><td>{e(s["step"])}</td><td class="n">{s["jobs"]}</td>'
        f'<td class="n">{s["done"]}</td><td class="n">{s["error"]}</td>'
        + "".join(f'<td class="n">{dur(s[k])}</td>' for k in cols)  # type: ignore[arg-type]
        + "</tr>" for s in stats[:MAX_STEPS])
    more = (f"<p>... and {len(stats) - MAX_STEPS} more steps (a deep dependency graph: only the "
            f"first {MAX_STEPS} are listed).</p>" if len(stats) > MAX_STEPS else "")
    what = ("the job's file name in its directory (qsub.0, qsub.1, ...: the same position in "
            "every directory)" if c.kind == "run" else
            "the job's depth in the dependency graph (depth 0: no dependencies)")
    note = ("For runs, a job whose start was not observed (shorter than the polling interval) "
            "counts from its submission, so it may include queue time." if c.kind == "run" else
            "Durations are measured by the worker.")
    return (f'<section id="steps"><h2>Steps</h2><p>A step is {what}.</p><table class="steps">'
            "<thead><tr><th>step</th><th>jobs</th><th>done</th><th>error</th>"
            + "".join(f"<th>{k}</th>" for k in cols) + f"</tr></thead><tbody>{rows}</tbody></table>{more}"
            f'<p class="foot">Durations are those of done jobs (p90: nearest rank). {note}</p>'
            "</section>")


# -- page ---------------------------------------------------------------------------------------
CSS = """
:root{--queued:#c5ccd3;--unobserved:#a5d6a7}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;
padding:0 16px 40px;color:#222;background:#fff}
h1{font-size:22px;margin:18px 0 4px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
nav a{margin-right:14px}code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:8px;overflow:auto;white-space:pre-wrap;
word-break:break-all;max-height:400px}
table{border-collapse:collapse;margin:8px 0}th,td{padding:3px 10px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dl.facts dt{font-weight:600;color:#555}dl.facts dd{margin:0;word-break:break-all}
.bar{display:flex;height:22px;border:1px solid #ccc;border-radius:4px;overflow:hidden;margin:10px 0 4px}
.seg{height:100%}.seg+.seg{border-left:1px solid #fff}
.key{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:-1px;
border-radius:2px;border:1px solid #999}.key.queued{background:var(--queued)}
.key.unobserved{background:repeating-linear-gradient(45deg,var(--unobserved) 0 3px,#fff 3px 6px)}
.scroll{overflow:auto;max-height:900px;border:1px solid #eee}.dag svg{max-width:100%;height:auto}
svg.timeline rect.queued,svg.timeline rect.span{fill:var(--queued)}
svg.timeline rect.busy{fill:var(--running-line)}svg.timeline rect.running{fill:var(--running)}
svg.timeline rect.unobserved{fill:url(#jobauto-hatch);stroke:#81c784;stroke-width:.5}
svg.timeline .unobserved-bg{fill:#e8f5e9}svg.timeline .hatch-line{stroke:#66bb6a;stroke-width:2}
svg.timeline rect.end.done{fill:var(--done-line)}svg.timeline rect.end.error{fill:var(--error)}
svg.timeline g:hover rect{opacity:.7}svg.timeline .tick{stroke:#e5e5e5}
svg.timeline .now{stroke:#e65100;stroke-dasharray:4 3}
svg.timeline text{font:11px system-ui,sans-serif;fill:#333}svg.timeline text.axis{text-anchor:middle;fill:#666}
svg.timeline text.name{text-anchor:end}
article.failure{border-left:4px solid var(--error-line);padding:2px 12px;margin:14px 0;background:#fffafa}
article.failure h3{margin:6px 0;color:var(--error-line);word-break:break-all}
.note{background:#fff8e1;border:1px solid #ffe082;padding:8px}.caption,.foot{color:#555}
@media print{.scroll{max-height:none;overflow:visible}nav{display:none}}
"""
# The DAG's colours (graph.PALETTE, BORDER) everywhere: one colour per state on the whole page.
CSS += ":root{" + "".join(f"--{k}:{v};--{k}-line:{BORDER[k]};" for k, v in PALETTE.items()) + "}"
CSS += "".join(f".seg.{k},.key.{k}{{background:var(--{k})}}tr.{k} th{{color:var(--{k}-line)}}"
               for k in PALETTE)
# Nothing may be fetched: not even by mistake (a stray URL in a job name stays text anyway).
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def build(c: Campaign, dag: Dag, tails: dict[str, Tail]) -> str:
    """The whole page. For tables, names each job's step by its DAG depth first."""
    if c.kind == "table":
        assign_depth_steps(c.jobs)
    nav = "".join(f'<a href="#{s}">{s.title()}</a>'
                  for s in ("summary", "timeline", "dag", "failures", "steps"))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>jobauto report: {e(c.path)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>jobauto report: {e(c.path)}</h1><nav>{nav}</nav></header>\n"
            + "\n".join([summary_html(c), timeline_html(c), dag_html(dag), failures_html(c, tails),
                         steps_html(c)])
            + f'\n<footer><p class="foot">Generated by jobauto at {e(clock(c.now))}. '
            "Self-contained: this file loads nothing from the network.</p></footer></body></html>\n")


def make(c: Campaign) -> str:
    """The page for a gathered campaign: draws the DAG and reads the failures' output."""
    return build(c, make_dag(c), output_tails(c))

