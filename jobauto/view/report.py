"""`jobauto report`: one self-contained HTML page about a campaign (run or table).

`build(c, dag, tails)` is pure: a gathered `view.Campaign`, the DAG picture and the failed jobs'
output tails in, the page out. `make(c)` gathers those two (graphviz, files) and calls it. The
page loads nothing: no scripts, no external CSS, fonts or images, and a Content-Security-Policy
that forbids any fetch, so it can be mailed or opened offline. Every user string is escaped.

The page's sections are here (summary, DAG, failures with their output tails, steps) but the
timeline, which is timeline.py; markup.py has the escaping and time formats they share.
"""

from __future__ import annotations

import math
import os
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from jobauto.core.errors import ConfigError
from jobauto.core.states import AHEAD
from jobauto.core.states import COUNT_KEYS as STATES
from jobauto.view.campaign import Campaign, JobView, assign_depth_steps
from jobauto.view.graph import BORDER, PALETTE
from jobauto.view.markup import clock, dur, e
from jobauto.view.status import STATE_HELP, duration, percent, rate_lines
from jobauto.view.timeline import first_seen, step_key, timeline_html

TAIL_BYTES = 4096        # of a failed job's output shown in the page
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


# -- summary ------------------------------------------------------------------------------------
def summary_html(c: Campaign) -> str:
    k = c.counts
    kind = "jobmon run directory" if c.kind == "run" else "job table"
    rows = [("done", "Done", ""), ("running", "Running", "")]
    if k.get(AHEAD):
        rows += [(AHEAD, "Queued ahead", STATE_HELP[AHEAD])]
    rows += [("pending", "Pending", "")]
    rows += [(s, f"&nbsp;&nbsp;{s.title()}", STATE_HELP[s]) for s in ("ready", "waiting", "blocked")]
    rows += [("error", "Error", "")]
    total = max(c.total, 1)
    table = "".join(
        f'<tr class="{key}"><th scope="row">{label}</th><td class="n">{k.get(key, 0)}</td>'
        f'<td class="n">{100 * k.get(key, 0) / total:.0f}%</td><td>{e(help_)}'
        + (f" ({e(', '.join(c.blocked_by[:5]))}{' ...' if len(c.blocked_by) > 5 else ''})"
           if key == "blocked" and c.blocked_by else "") + "</td></tr>"
        for key, label, help_ in rows)
    shown = [s for t in STATES for s in ((t, AHEAD) if t == "running" else (t,))]
    bar = "".join(f'<div class="seg {"ahead" if s == AHEAD else s}" '
                  f'style="width:{100 * k.get(s, 0) / total:.3f}%" '
                  f'title="{s}: {k.get(s, 0)}"></div>' for s in shown if k.get(s, 0))
    legend = " ".join(f'<span class="key {s}"></span>{s} {k.get(s, 0)}' for s in STATES)
    first = min((t for j in c.jobs if (t := first_seen(j)) is not None), default=None)
    last = max((j.ended_at for j in c.jobs if j.ended_at is not None), default=None)
    facts = [("Target", e(c.path)), ("Kind", kind),
             ("Generated", e(clock(c.now))),
             ("Monitor" if c.kind == "run" else "Workers", e(c.driver or "-")),
             ("Jobs", f"{c.total}, {k['done']} done ({percent(c):.0f}%)")]
    if first is not None:
        end = c.now if k["running"] or k.get(AHEAD) or last is None else last
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
    from jobauto.view.collapse import layout
    pic = layout(c, collapse="auto", max_nodes=150)
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
:root{--queued:#c5ccd3;--unobserved:#a5d6a7;--ahead:#90caf9}
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
.key.ahead,.seg.ahead{background:var(--ahead)}svg.timeline rect.ahead{fill:var(--ahead)}
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

