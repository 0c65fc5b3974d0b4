"""Jobs queued ahead (jobmon --ahead) in `jobauto status` (text, --json, rich), the report's
summary and timeline (the queued-ahead span, the edges handed to the scheduler and the time
each saved) and the quelist, through the commands, on a run made against the fake cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers import Rig, chain, jobauto, rich_counts, strip, text_counts
from rich.console import Console

from jobauto.run import quelist
from jobauto.view.campaign import gather
from jobauto.view.status import render_rich

T0 = 1_800_000_000.0


def test_status_report_and_quelist_show_jobs_queued_ahead(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.settings.ahead = 1      # a/qsub.1 goes ahead, b/qsub.1 waits for jobmon's cycle
    chain(rig.init, "a", 2)
    chain(rig.init, "b", 2)
    m = rig.start()
    r = m.tick(T0 + 10)
    assert (r.counts["running"], r.counts["queued-ahead"], r.counts["waiting"]) == (2, 1, 1)
    m.commit()
    run = str(rig.run)
    text = jobauto("status", run, check_rc=0).stdout
    assert text_counts(text) == {"done": 0, "running": 2, "pending": 1, "ready": 0,
                                 "waiting": 1, "blocked": 0, "error": 0}
    assert re.search(r"^Queued ahead: 1 ", text, re.M)
    ahead_id = rig.job("a/qsub.1").id
    assert re.search(rf"^  a/qsub\.1  job {ahead_id} after a/qsub\.0 ", text, re.M)
    running = text.split("Running jobs:")[1].split("Queued ahead (")[0]
    assert "a/qsub.0" in running and "a/qsub.1" not in running
    doc = json.loads(jobauto("status", run, "--json", check_rc=0).stdout)
    assert doc["counts"]["running"] == 2 and doc["counts"]["queued-ahead"] == 1
    assert [(j["name"], j["state"], j["after"], j["where"]) for j in doc["queued_ahead"]] == [
        ("a/qsub.1", "queued-ahead", ["a/qsub.0"], ahead_id)]
    assert "a/qsub.1" not in [j["name"] for j in doc["running"]]
    console = Console(record=True, width=160, force_terminal=True)
    console.print(render_rich(gather(rig.run, summary=True)))
    shown = strip(console.export_text())
    assert rich_counts(shown)["running"] == 2 and re.search(r"^\s*Queued ahead\s+1\s", shown, re.M)
    assert "Queued ahead (1)" in shown
    assert "a/qsub.1" in shown.split("Queued ahead (1)")[1]
    lines = {ln.name: ln for ln in quelist.parse((rig.run / "quelist").read_text())}
    assert lines["a/qsub.1"].extra["queue"] == "ahead" and "queue" not in lines["a/qsub.0"].extra
    # a/qsub.0 and b/qsub.0 end at T0 + 15 (their markers' time); a/qsub.1 was in the queue
    # since T0 + 10, b/qsub.1 is submitted by the cycle at T0 + 20: 5 s after its predecessor
    rig.cluster.mtime = T0 + 15
    for name in ("a/qsub.0", "b/qsub.0"):
        rig.cluster.finish(rig.job(name))
    m.tick(T0 + 20)
    for name in ("a/qsub.1", "b/qsub.1"):
        rig.cluster.finish(rig.job(name))
    r = m.tick(T0 + 30)
    assert r.finished and r.exit_code == 0
    m.commit()
    assert "Queued ahead" not in jobauto("status", run, check_rc=0).stdout
    out = tmp_path / "report.html"
    jobauto("report", run, "-o", str(out), check_rc=0)
    html = out.read_text()
    edges = html.split('<div id="ahead-edges">')[1].split("</div>")[0]
    assert "1 dependency edge(s) were handed to the scheduler" in edges
    assert "saved about 5.0s per edge" in edges and "1 edge(s) jobmon handled itself" in edges
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>", edges)
    # queued ahead 5 s; first seen running by the cycle at T0 + 20, 5 s after a/qsub.0's end
    assert rows == [("a/qsub.1", "a/qsub.0", "5.0s", "5.0s")]
    # the timeline draws a/qsub.1's wait in the queue on the scheduler's dependency
    bar = re.search(r'<g data-job="a/qsub.1".*?</g>', html, re.S)
    assert bar is not None and 'class="ahead"' in bar.group(0)
    other = re.search(r'<g data-job="b/qsub.1".*?</g>', html, re.S)
    assert other is not None and 'class="ahead"' not in other.group(0)
