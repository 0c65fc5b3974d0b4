"""`jobauto status` (and `progress_viewer`): a Campaign as plain text, a rich view or JSON.

Pure: each function takes a gathered `view.Campaign` and returns text or a renderable, so the
same numbers reach every screen and the tests need no terminal.
"""

from __future__ import annotations

import json
from typing import Any

from jobauto.core.states import AHEAD
from jobauto.view.campaign import RATE_WINDOW_S, Campaign, JobView

STATE_STYLE = {"done": "green", "running": "cyan", AHEAD: "blue", "ready": "bold",
               "waiting": "yellow", "blocked": "dark_orange", "error": "bold red"}
STATE_HELP = {"ready": "can run now", "waiting": "waiting for dependencies",
              "blocked": "blocked by an error",
              AHEAD: "in the queue, starts when the jobs it needs end (--ahead)"}


def duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = max(s, 0.0)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    if s < 86400:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    return f"{int(s // 86400)}d{int(s % 86400 // 3600):02d}h"


def percent(c: Campaign) -> float:
    return 100.0 * c.counts["done"] / c.total if c.total else 100.0


def elapsed(c: Campaign, j: JobView) -> float | None:
    start = j.started_at if j.started_at is not None else j.queued_at
    return None if start is None else c.now - start


def running_note(j: JobView) -> str:
    """A running job of a run that the queue has not shown running yet is still queued."""
    return "queued" if j.queued_at is not None and j.started_at is None else ""


def ahead_text(c: Campaign, j: JobView) -> str:
    """`job 123 after a/qsub.0, a/qsub.1`: what a queued-ahead job waits for in the queue."""
    return f"job {j.where or '(submitting)'} after {', '.join(c.waits_on(j)) or '?'}"


def failure_text(j: JobView) -> str:
    verdict = j.verdict or "failed"
    if j.reason.startswith((verdict, "exit ")):
        return j.reason  # it already says how the job ended
    code = f" (exit {j.exit_code})" if j.exit_code is not None else ""
    return f"{verdict}{code}: {j.reason or 'no message'}"


def progress_text(c: Campaign, width: int = 40) -> str:
    n = round(width * percent(c) / 100)
    return f"[{'#' * n}{'-' * (width - n)}] {percent(c):.0f}%"


def rate_lines(c: Campaign) -> list[str]:
    out = []
    if c.rate_per_h is not None:
        out.append(f"Throughput: {c.rate_per_h:.1f} jobs/h (last {RATE_WINDOW_S / 60:.0f} min)"
                   + (f"; time left at this rate: {duration(c.left_s)}" if c.left_s else ""))
    if c.work_left_h is not None:
        per = (f", {duration(c.work_left_h * 3600 / c.slots)} over {c.slots} slot(s)"
               if c.slots else "")
        out.append(f"Work left: {duration(c.work_left_h * 3600)} by {c.work_basis}{per}")
    return out


SETTINGS_SHOWN = ("maxqsub", "interval", "lost_after", "retries")  # of a run's settings


def settings_line(c: Campaign) -> str:
    """`Settings: maxqsub=10 interval=60 ...` (a run's recorded settings), or ""."""
    if not c.settings:
        return ""
    def fmt(v: object) -> str:
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    shown = [f"{k.replace('_', '-')}={fmt(c.settings[k])}" for k in SETTINGS_SHOWN if k in c.settings]
    return f"Settings: {' '.join(shown)} (all, and when they changed: jobauto explain RUN)"


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def spent_line(c: Campaign) -> str | None:
    """What a run spent on the cluster (docs/etiquette.md), in one line; None for a table."""
    s = c.spent
    if s is None:
        return None
    return (f"Cluster: {s.sched_commands} scheduler commands ({s.per_minute(c.now)} in the last "
            f"minute, {s.per_minute(c.now, 10)} in the last 10, at most {s.peak_minute()} in a "
            f"minute of the last hour), {s.logins} SSH logins, pushed {size(s.bytes_pushed)}, "
            f"pulled {size(s.bytes_pulled)}, scans {size(s.bytes_scanned)}")


def spent_json(c: Campaign) -> dict[str, Any] | None:
    s = c.spent
    if s is None:
        return None
    return {**s.counters(), "last_minute": s.per_minute(c.now),
            "last_10_minutes": s.per_minute(c.now, 10), "peak_minute": s.peak_minute()}


def render_text(c: Campaign, *, failures: int = 5, running: int = 10) -> str:
    k = c.counts
    blocked = (f" ({', '.join(c.blocked_by[:5])}{' ...' if len(c.blocked_by) > 5 else ''})"
               if c.blocked_by else "")
    lines = [f"{c.path}: {c.total} jobs, {k['done']} done ({percent(c):.0f}%)",
             progress_text(c),
             f"Done: {k['done']}",
             f"Running: {k['running']}"]
    if k.get(AHEAD):
        lines.append(f"Queued ahead: {k[AHEAD]}    ← {STATE_HELP[AHEAD]}")
    lines += [f"Pending: {k['pending']}",
             f"  - Ready: {k['ready']}      ← can run now",
             f"  - Waiting: {k['waiting']}    ← waiting for dependencies",
             f"  - Blocked: {k['blocked']}    ← blocked by an error{blocked}",
             f"Error: {k['error']}"]
    if k.get("cancelled"):
        lines.append(f"Cancelled: {k['cancelled']}    ← jobauto cancel; blocks what needs them")
    lines.append(("Workers: " if c.kind == "table" else "Monitor: ") + c.driver)
    if settings_line(c):
        lines.append(settings_line(c))
    lines += rate_lines(c)
    if (line := spent_line(c)) is not None:
        lines.append(line)
    def run_line(j: JobView) -> str:
        est = f" (estimate {duration(j.estimate_h * 3600)})" if j.estimate_h is not None else ""
        who = f"worker {j.where}" if c.kind == "table" else f"job {j.where or '(submitting)'}"
        note = running_note(j)
        return f"  {j.name}  {who}  {note + ' ' if note else ''}{duration(elapsed(c, j))}{est}"

    for title, jobs, show in (
            ("Running jobs:", c.running(), run_line),
            ("Queued ahead (waiting in the queue on the scheduler's dependency):", c.ahead(),
             lambda j: f"  {j.name}  {ahead_text(c, j)}  {duration(elapsed(c, j))}")):
        if jobs:
            lines.append(title)
            lines.extend(show(j) for j in jobs[:running])
            if len(jobs) > running:
                lines.append(f"  ... and {len(jobs) - running} more")
    fails = c.failures()
    if fails:
        lines.append("Last failures:")
        for j in fails[:failures]:
            lines.append(f"  {j.name}: {failure_text(j)}")
        if len(fails) > failures:
            more = (f"jobauto export {c.path} error.csv --status error" if c.kind == "table"
                    else f"grep failed@ {c.path}/quelist")
            lines.append(f"  ... and {len(fails) - failures} more ({more})")
    return "\n".join(lines)


def to_json(c: Campaign, *, failures: int = 20, running: int = 100) -> dict[str, Any]:
    def job(j: JobView) -> dict[str, Any]:
        return {"name": j.name, "state": j.state, "where": j.where, "verdict": j.verdict,
                "exit_code": j.exit_code, "reason": j.reason, "queued_at": j.queued_at,
                "started_at": j.started_at, "ended_at": j.ended_at,
                "elapsed_s": elapsed(c, j) if j.state == "running" else j.duration(),
                "estimate_h": j.estimate_h, "attempts": j.attempts}

    return {"kind": c.kind, "path": c.path, "now": c.now, "total": c.total,
            "counts": c.counts, "percent_done": round(percent(c), 2),
            "blocked_by": c.blocked_by, "driver": c.driver, "slots": c.slots,
            "rate_per_h": c.rate_per_h, "time_left_s": c.left_s, "work_left_h": c.work_left_h,
            "work_basis": c.work_basis, "settings": c.settings, "spent": spent_json(c),
            "running": [job(j) for j in c.running()[:running]],
            "queued_ahead": [{**job(j), "state": AHEAD, "after": c.waits_on(j)}
                             for j in c.ahead()[:running]],
            "failures": [job(j) for j in c.failures()[:failures]]}


def render_json(c: Campaign) -> str:
    return json.dumps(to_json(c), sort_keys=True)


def render_rich(c: Campaign, *, failures: int = 5, running: int = 10) -> Any:
    """The terminal view: counts with bars, a progress bar, running jobs, failures, rates."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    k = c.counts
    head = Text.assemble((c.path, "bold"), f"  {c.total} jobs  ",
                         ("Workers: " if c.kind == "table" else "Monitor: ") + c.driver)
    counts = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
    counts.add_column("state")
    counts.add_column("n", justify="right")
    counts.add_column("bar", width=30)
    counts.add_column("help", style="dim")
    for key, label in (("done", "Done"), ("running", "Running"), (AHEAD, "Queued ahead"),
                       ("pending", "Pending"),
                       ("ready", "  Ready"), ("waiting", "  Waiting"), ("blocked", "  Blocked"),
                       ("error", "Error"), ("cancelled", "Cancelled")):
        if key not in k:
            continue
        n = k[key]
        style = STATE_STYLE.get(key, "")
        bar = ProgressBar(total=max(c.total, 1), completed=n, width=30, complete_style=style or "white",
                          finished_style=style or "white")
        extra = STATE_HELP.get(key, "")
        if key == "blocked" and c.blocked_by:
            extra += f" ({', '.join(c.blocked_by[:3])}{' ...' if len(c.blocked_by) > 3 else ''})"
        counts.add_row(Text(label, style=style), str(n), bar, extra)
    progress = Table.grid(padding=(0, 1))
    progress.add_row(ProgressBar(total=max(c.total, 1), completed=k["done"], width=50,
                                 complete_style="green", finished_style="green"),
                     Text(f"{percent(c):.0f}% done", style="bold"))
    parts: list[Any] = [head, progress, counts]
    if settings_line(c):
        parts.append(Text(settings_line(c), style="dim"))
    for line in rate_lines(c):
        parts.append(Text(line))
    if (spent := spent_line(c)) is not None:
        parts.append(Text(spent, style="dim"))
    runs = c.running()
    if runs:
        t = Table(title=f"Running ({len(runs)})", title_justify="left", box=None, pad_edge=False)
        t.add_column("job", style="cyan", overflow="fold")
        t.add_column("worker" if c.kind == "table" else "scheduler id")
        t.add_column("elapsed", justify="right")
        t.add_column("estimate", justify="right")
        for j in runs[:running]:
            note = running_note(j)
            t.add_row(j.name, j.where or "(submitting)",
                      (note + " " if note else "") + duration(elapsed(c, j)),
                      duration(j.estimate_h * 3600) if j.estimate_h is not None else "-")
        if len(runs) > running:
            t.add_row(f"... and {len(runs) - running} more", "", "", "")
        parts.append(t)
    ahead = c.ahead()
    if ahead:
        t = Table(title=f"Queued ahead ({len(ahead)})", title_justify="left", box=None,
                  pad_edge=False)
        t.add_column("job", style="blue", overflow="fold")
        t.add_column("scheduler id, waiting for", overflow="fold")
        t.add_column("in queue", justify="right")
        for j in ahead[:running]:
            t.add_row(j.name, ahead_text(c, j), duration(elapsed(c, j)))
        if len(ahead) > running:
            t.add_row(f"... and {len(ahead) - running} more", "", "")
        parts.append(t)
    fails = c.failures()
    if fails:
        t = Table(title=f"Last failures ({len(fails)})", title_justify="left", box=None,
                  pad_edge=False)
        t.add_column("job", style="red", overflow="fold")
        t.add_column("verdict")
        t.add_column("exit", justify="right")
        t.add_column("reason", overflow="fold")
        for j in fails[:failures]:
            t.add_row(j.name, j.verdict or "failed", "-" if j.exit_code is None else str(j.exit_code),
                      j.reason or "-")
        parts.append(t)
    return Group(*parts)
