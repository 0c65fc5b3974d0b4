"""The status views (jobauto/view/status.py): plain text, the rich view and JSON of hand-built
campaigns at a fixed now. The command: cli/test_view_status.py.
"""

from __future__ import annotations

import io
import json
import re

from helpers import KEYS, NOW, make_campaign, rich_counts, strip, text_counts
from rich.console import Console

from jobauto.view.campaign import Campaign, JobView
from jobauto.view.status import render_json, render_rich, render_text, to_json


def campaign(kind: str, jobs: list[JobView], **kw: object) -> Campaign:
    path = "/home/me/foobar/20261121-100000" if kind == "run" else "/home/me/sweep.db"
    return make_campaign(kind, jobs, path, NOW, **kw)


def rich_str(c: Campaign, **kw: int) -> str:
    buf = io.StringIO()
    Console(file=buf, width=120, force_terminal=True).print(render_rich(c, **kw))
    return buf.getvalue()


def run_campaign() -> Campaign:
    jobs = [
        JobView("Si/qsub.0", "done", group="Si", step="qsub.0", where="4700", queued_at=NOW - 900,
                started_at=NOW - 880, ended_at=NOW - 600, verdict="done", exit_code=0),
        JobView("Si/qsub.1", "running", group="Si", step="qsub.1", where="4711",
                queued_at=NOW - 200, started_at=NOW - 125, estimate_h=0.5, attempts=1),
        JobView("GaAs/qsub.0", "running", group="GaAs", step="qsub.0", where="4712",
                queued_at=NOW - 30, attempts=1),               # submitted, not yet seen running
        JobView("NiO/qsub.0", "error", group="NiO", step="qsub.0", where="4701",
                queued_at=NOW - 800, started_at=NOW - 790, ended_at=NOW - 500, verdict="walltime",
                exit_code=137, reason="killed at its walltime limit", attempts=1),
        JobView("MgO/qsub.0", "error", group="MgO", step="qsub.0", where="4702",
                queued_at=NOW - 800, started_at=NOW - 795, ended_at=NOW - 100, verdict="failed",
                exit_code=1, reason="failed: exited with code 1 (marker MgO/qsub.failed.0: 1)"),
        JobView("NiO/qsub.1", "pending", derived="blocked", deps=["NiO/qsub.0"]),
        JobView("NiO/qsub.2", "pending", derived="blocked", deps=["NiO/qsub.1"]),
        JobView("MgO/qsub.1", "pending", derived="blocked", deps=["MgO/qsub.0"]),
        JobView("Si/qsub.2", "pending", derived="waiting", deps=["Si/qsub.1"]),
        JobView("Cu/qsub.0", "pending", derived="ready"),
    ]
    return campaign("run", jobs, blocked_by=["MgO/qsub.0", "NiO/qsub.0"],
                    driver="jobmon running (pid 99 on vm)")


def test_text_counts_pending_split_and_blocked_by() -> None:
    c = run_campaign()
    text = render_text(c)
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == "/home/me/foobar/20261121-100000: 10 jobs, 1 done (10%)"
    assert lines[1] == "[####------------------------------------] 10%"
    assert lines[2:10] == [
        "Done: 1",
        "Running: 2",
        "Pending: 5",
        "  - Ready: 1      ← can run now",
        "  - Waiting: 1    ← waiting for dependencies",
        "  - Blocked: 3    ← blocked by an error (MgO/qsub.0, NiO/qsub.0)",
        "Error: 2",
        "Monitor: jobmon running (pid 99 on vm)",
    ]
    assert text_counts(text) == {k: c.counts[k] for k in KEYS}


def test_text_running_jobs_scheduler_id_elapsed_and_queued() -> None:
    text = render_text(run_campaign())
    run = text.splitlines()[text.splitlines().index("Running jobs:") + 1:][:2]
    # oldest first; elapsed from `now`: since first seen running, else since submitted (queued)
    assert run == ["  Si/qsub.1  job 4711  2m05s (estimate 30m00s)",
                   "  GaAs/qsub.0  job 4712  queued 30s"]


def test_text_failures_newest_first_with_verdict_exit_code_and_reason() -> None:
    text = render_text(run_campaign())
    fails = text.splitlines()[text.splitlines().index("Last failures:") + 1:]
    assert fails == [
        # the reason already says how it ended: shown as it is
        "  MgO/qsub.0: failed: exited with code 1 (marker MgO/qsub.failed.0: 1)",
        "  NiO/qsub.0: walltime (exit 137): killed at its walltime limit",
    ]


def test_text_limits_and_what_to_run_for_the_rest() -> None:
    jobs = [JobView(f"j{i}", "error", ended_at=NOW - i, exit_code=i, verdict="failed",
                    reason=f"exit {i}: boom {i}") for i in range(8)]
    jobs += [JobView(f"r{i}", "running", where=f"{i} node{i}:10{i}", started_at=NOW - 10 * i)
             for i in range(4)]
    c = campaign("table", jobs, blocked_by=[], driver="2 worker(s) alive, 4 slot(s)", slots=4)
    text = render_text(c, failures=3, running=2)
    lines = text.splitlines()
    assert "Workers: 2 worker(s) alive, 4 slot(s)" in lines
    i = lines.index("Running jobs:")
    assert lines[i + 1:i + 4] == ["  r3  worker 3 node3:103  30s", "  r2  worker 2 node2:102  20s",
                                  "  ... and 2 more"]
    i = lines.index("Last failures:")
    assert lines[i + 1:] == ["  j0: exit 0: boom 0", "  j1: exit 1: boom 1", "  j2: exit 2: boom 2",
                             "  ... and 5 more (jobauto export /home/me/sweep.db error.csv "
                             "--status error)"]
    run = campaign("run", jobs[:7])
    assert render_text(run, failures=2).endswith(
        "... and 5 more (grep failed@ /home/me/foobar/20261121-100000/quelist)")


def test_text_long_blocked_by_list_is_cut() -> None:
    jobs = [JobView(f"e{i}", "error", ended_at=NOW) for i in range(7)]
    jobs += [JobView(f"b{i}", "pending", derived="blocked", deps=[f"e{i}"]) for i in range(7)]
    c = campaign("table", jobs, blocked_by=[f"e{i}" for i in range(7)])
    assert "  - Blocked: 7    ← blocked by an error (e0, e1, e2, e3, e4 ...)" in render_text(c)


def test_json_counts_running_and_failures() -> None:
    c = run_campaign()
    d = json.loads(render_json(c))
    assert d == json.loads(json.dumps(to_json(c)))
    assert d["kind"] == "run" and d["total"] == 10 and d["now"] == NOW
    assert d["counts"] == {"done": 1, "running": 2, "ready": 1, "waiting": 1, "blocked": 3,
                           "error": 2, "pending": 5}
    assert d["percent_done"] == 10.0 and d["blocked_by"] == ["MgO/qsub.0", "NiO/qsub.0"]
    assert [(j["name"], j["where"], j["elapsed_s"]) for j in d["running"]] == [
        ("Si/qsub.1", "4711", 125.0), ("GaAs/qsub.0", "4712", 30.0)]
    assert d["running"][1]["started_at"] is None and d["running"][1]["queued_at"] == NOW - 30
    assert [(j["name"], j["verdict"], j["exit_code"], j["reason"], j["elapsed_s"])
            for j in d["failures"]] == [
        ("MgO/qsub.0", "failed", 1, "failed: exited with code 1 (marker MgO/qsub.failed.0: 1)", 695.0),
        ("NiO/qsub.0", "walltime", 137, "killed at its walltime limit", 290.0)]
    assert d["rate_per_h"] is None and d["time_left_s"] is None


def test_rich_view_has_the_same_content_in_colour() -> None:
    c = run_campaign()
    raw = rich_str(c)
    assert "\x1b[" in raw
    text = strip(raw)
    assert "/home/me/foobar/20261121-100000" in text and "Monitor: jobmon running (pid 99 on vm)" in text
    assert rich_counts(text) == {k: c.counts[k] for k in KEYS}
    assert "10% done" in text
    assert re.search(r"Blocked\s+3\s.*blocked by an error \(MgO/qsub.0, NiO/qsub.0\)", text)
    assert "Running (2)" in text and "Last failures (2)" in text
    assert re.search(r"Si/qsub\.1\s+4711\s+2m05s\s+30m00s", text)
    assert re.search(r"GaAs/qsub\.0\s+4712\s+queued 30s\s+-", text)
    assert re.search(r"NiO/qsub\.0\s+walltime\s+137\s+killed at its walltime limit", text)
    assert re.search(r"MgO/qsub\.0\s+failed\s+1\s+failed: exited with code 1", text)
    assert text.index("MgO/qsub.0  ") < text.index("NiO/qsub.0  ")   # newest failure first
    # the limits apply to the rich view too
    text = strip(rich_str(c, failures=1, running=1))
    assert "GaAs/qsub.0" not in text and "... and 1 more" in text and "NiO/qsub.0 " not in text


def test_empty_campaign_renders() -> None:
    c = campaign("table", [], driver="0 worker(s) alive, 0 slot(s)")
    assert render_text(c).splitlines()[0] == "/home/me/sweep.db: 0 jobs, 0 done (100%)"
    assert json.loads(render_json(c))["total"] == 0
    assert "0 jobs" in strip(rich_str(c))
