"""`jobauto graph` as a command (jobauto/cli/graph.py) on a real finished ecalj run, a real run
table and a 1,000-job table, through graphviz. The picture itself: view/test_graph.py.
"""

from __future__ import annotations

import hashlib
import os
import pty
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from helpers import FAN_IN, SVG_NS, jobauto, svg_texts

from jobauto.view.graph import PALETTE, to_image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file():
            h.update(str(f).encode() + f.read_bytes())
    return h.hexdigest()


def svg_picture(svg: bytes) -> tuple[dict[str, str], set[str], set[tuple[str, str]]]:
    """(node label -> fill colour, cluster labels, edges as label pairs) of a graphviz SVG."""
    root = ET.fromstring(svg)
    fills: dict[str, str] = {}
    ids: dict[str, str] = {}
    clusters: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for g in root.iter(f"{SVG_NS}g"):
        cls = g.get("class", "")
        texts = ["".join(t.itertext()) for t in g.iter(f"{SVG_NS}text")]
        if cls == "cluster":
            clusters.add(texts[0])
        elif cls.startswith("node") and g.findtext(f"{SVG_NS}title") != "legend":
            shape = next(e for e in g.iter() if e.tag in (f"{SVG_NS}polygon", f"{SVG_NS}path"))
            fills[texts[0]] = shape.get("fill", "")
            ids[g.findtext(f"{SVG_NS}title") or ""] = texts[0]
    for g in root.iter(f"{SVG_NS}g"):
        if g.get("class") == "edge":
            a, b = (g.findtext(f"{SVG_NS}title") or "").split("->")
            edges.add((ids[a], ids[b]))
    return fills, clusters, edges


def test_run_as_dot_and_mermaid(ecalj_run: Path) -> None:
    before = tree_digest(ecalj_run)
    r = jobauto("graph", str(ecalj_run))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("digraph jobauto {")
    assert "jobauto graph: 31 jobs shown as 31 nodes: every job drawn" in r.stderr
    assert r.stdout.count("subgraph cluster_") == 8   # 7 directories and the legend
    assert to_image(r.stdout, "svg").startswith(b"<?xml")
    m = jobauto("graph", str(ecalj_run), "--format", "mermaid", "--collapse", "chains")
    assert m.returncode == 0, m.stderr
    assert m.stdout.startswith("---\ntitle: \"31 jobs shown as 7 nodes: chains")
    assert 'subgraph c3 ["NiO"]' in m.stdout
    assert re.search(r'n\d+\["NiO/qsub.0 … qsub.4 \(5 jobs\)<br/>4 blocked, 1 error<br/>'
                     r'error: NiO/qsub.0"\]:::error', m.stdout)
    assert m.stdout.count(" --> ") == 6
    assert tree_digest(ecalj_run) == before   # looking changes nothing


def test_run_as_svg_has_directory_clusters_and_a_red_error(ecalj_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "dag.svg"
    r = jobauto("graph", str(ecalj_run), "-o", str(out))   # the format from the suffix
    assert r.returncode == 0, r.stderr
    assert f"wrote {out} (svg)" in r.stderr
    fills, clusters, edges = svg_picture(out.read_bytes())
    assert {"Cu", "GaAs", "MgO", "NiO", "Si", "ZnO", "summary"} <= clusters
    assert len(fills) == 31
    assert fills["NiO/qsub.0"] == PALETTE["error"]
    assert fills["NiO/qsub.3"] == PALETTE["blocked"] == fills["summary/qsub.0"]
    assert fills["Si/qsub.4"] == PALETTE["done"]
    assert ("Si/qsub.4", "summary/qsub.0") in edges and ("NiO/qsub.0", "NiO/qsub.1") in edges
    assert len(edges) == 30
    # collapsed: the six chains are one node that spans the directories, striped by state
    g = jobauto("graph", str(ecalj_run), "--collapse", "groups", "--format", "svg", "-o", str(out))
    assert g.returncode == 0, g.stderr
    fills, clusters, edges = svg_picture(out.read_bytes())
    assert set(fills) == {"6 × qsub.0…qsub.4 (30 jobs)", "summary/qsub.0"}
    assert edges == {("6 × qsub.0…qsub.4 (30 jobs)", "summary/qsub.0")}
    texts = svg_texts(out.read_bytes())
    assert "25 done, 4 blocked, 1 error" in texts and "error: NiO/qsub.0" in texts


def test_run_as_png_to_a_file_and_to_a_pipe(ecalj_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "dag.png"
    r = jobauto("graph", str(ecalj_run), "--format", "png", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)
    piped = jobauto("graph", str(ecalj_run), "--format", "png", text=False)
    assert piped.returncode == 0 and piped.stdout.startswith(PNG_MAGIC)


def test_image_to_a_terminal_is_refused(ecalj_run: Path) -> None:
    main, tty = pty.openpty()
    try:
        r = subprocess.run(["jobauto", "graph", str(ecalj_run), "--format", "svg"], stdout=tty,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(tty)
        os.close(main)
    assert r.returncode == 2
    assert "--format: svg is binary or long: write it with -o FILE" in r.stderr


def test_bad_input_exits_2_and_writes_nothing(ecalj_run: Path, tmp_path: Path) -> None:
    r = jobauto("graph", str(ecalj_run), "--format", "pdf")
    assert r.returncode == 2 and "--format" in r.stderr and "invalid choice" in r.stderr
    r = jobauto("graph", str(ecalj_run), "--collapse", "all")
    assert r.returncode == 2 and "--collapse" in r.stderr
    r = jobauto("graph", str(ecalj_run), "--max-nodes", "0")
    assert r.returncode == 2 and "--max-nodes" in r.stderr
    missing = tmp_path / "nope"
    r = jobauto("graph", str(missing))
    assert r.returncode == 2 and f"{missing}: no such run directory or job table" in r.stderr
    r = jobauto("graph", str(tmp_path))
    assert r.returncode == 2 and "not a jobmon run directory" in r.stderr
    out = tmp_path / "no" / "such" / "dir" / "dag.svg"
    r = jobauto("graph", str(ecalj_run), "-o", str(out))
    assert r.returncode == 2
    assert r.stderr.strip() == f"jobauto graph: error: -o: no such directory: {out.parent} (for {out})"
    assert not (tmp_path / "no").exists()
    r = jobauto("graph", str(ecalj_run), "-o", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_without_graphviz_svg_names_the_fix(ecalj_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "dag.svg"
    env = {**os.environ, "PATH": str(tmp_path)}   # no `dot` on PATH
    r = subprocess.run([sys.executable, "-m", "jobauto.cli.jobauto", "graph", str(ecalj_run),
                        "-o", str(out)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    assert "install graphviz: apt install graphviz" in r.stderr
    assert not out.exists()
    # DOT itself needs no graphviz
    r = subprocess.run([sys.executable, "-m", "jobauto.cli.jobauto", "graph", str(ecalj_run)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("digraph")


RECORD = """\
#!/bin/sh
case "$1" in training) echo "failing on purpose" >&2; exit 3;; esac
"""


def test_table_after_a_run(tmp_path: Path) -> None:
    (tmp_path / "fan.csv").write_text(FAN_IN)
    (tmp_path / "run.sh").write_text(RECORD)
    assert jobauto("import", "fan.csv", cwd=tmp_path).returncode == 0
    r = jobauto("run", "fan.db", "bash run.sh", "--parallel", "2", "--quiet", cwd=tmp_path)
    assert r.returncode == 1, r.stderr     # jobC failed, jobD blocked
    r = jobauto("graph", "fan.db", "--format", "svg", "-o", "fan.svg", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    fills, clusters, edges = svg_picture((tmp_path / "fan.svg").read_bytes())
    assert clusters == {"legend"}          # a table has no directories
    assert fills == {"jobA": PALETTE["done"], "jobB": PALETTE["done"], "jobC": PALETTE["error"],
                     "jobD": PALETTE["blocked"]}
    assert edges == {("jobA", "jobC"), ("jobB", "jobC"), ("jobC", "jobD")}
    m = jobauto("graph", "fan.db", "--format", "mermaid", "--collapse", "groups", cwd=tmp_path)
    assert m.returncode == 0, m.stderr
    assert '["2 × depth 0 (2 jobs)<br/>2 done<br/>jobA, jobB"]:::done' in m.stdout
    assert '["jobC … jobD (2 jobs)<br/>1 blocked, 1 error<br/>error: jobC"]:::error' in m.stdout
    assert "subgraph c" not in m.stdout


def test_thousand_job_table_collapses_and_renders(tmp_path: Path) -> None:
    # 200 pipelines of 5 steps, the middle step fanned out 3 ways, all feeding one report:
    # 200 * (1 + 3 + 1) = 1,000 jobs, plus the report
    rows = ["JOBSCHEDULER_JOB_ID,sample,JOBSCHEDULER_DEPENDS_ON"]
    for s in range(200):
        rows += [f"prep{s},{s},", *(f"run{s}_{k},{s},prep{s}" for k in range(3)),
                 f"merge{s},{s},run{s}_0 run{s}_1 run{s}_2"]
    rows.append("report,all," + " ".join(f"merge{s}" for s in range(200)))
    (tmp_path / "big.csv").write_text("\n".join(rows) + "\n")
    assert jobauto("import", "big.csv", cwd=tmp_path).returncode == 0
    r = jobauto("graph", "big.db", "--format", "dot", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "jobauto graph: 1,001 jobs shown as 4 nodes" in r.stderr
    assert "(--collapse none to draw every job)" in r.stderr
    assert "200 × depth 0 (200 jobs)" in r.stdout and "600 × depth 1 (600 jobs)" in r.stdout
    assert r.stdout.count(" -> ") == 3
    svg = to_image(r.stdout, "svg")
    fills, _, edges = svg_picture(svg)
    assert len(fills) == 4 and fills["report"] == PALETTE["waiting"]
    assert fills["200 × depth 0 (200 jobs)"] == PALETTE["ready"]
    # every job drawn: dot still finishes
    r = jobauto("graph", "big.db", "--collapse", "none", "-o", "all.svg", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    fills, _, edges = svg_picture((tmp_path / "all.svg").read_bytes())
    assert len(fills) == 1001 and len(edges) == 200 * 7
