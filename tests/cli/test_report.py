"""`jobauto report` as a command (jobauto/cli/report.py) on real finished runs and tables, then the
page in a real browser (headless chromium): its DOM and a screenshot. The page builders on
hand-made campaigns: view/test_report.py."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from helpers import (
    EXPERIMENTS,
    HOSTILE_HTML,
    ecalj_demo,
    jobauto,
    jobmon,
    make_job,
    parse,
    section,
)

from jobauto.view.campaign import gather
from jobauto.view.graph import PALETTE


# -- the CLI on real runs and tables ------------------------------------------------------------
def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return jobauto("report", *args, cwd=cwd)


@pytest.fixture(scope="module")
def ecalj_fetched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ecalj demo with NiO broken (its own run: this one changes it), and the scheduler
    output files fetched afterwards."""
    work = tmp_path_factory.mktemp("ecalj")
    run, _ = ecalj_demo(work)
    jobmon(f"--ldir={work}/foobar", f"--rdir={work}/remote/foobar", f"--datedir={run.name}",
           "--initonly", "--fetch=qsub.*.o*", check_rc=0)
    return run


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EXPERIMENTS with training failing: one done, one error, one blocked."""
    work = tmp_path_factory.mktemp("table")
    (work / "x.csv").write_text(EXPERIMENTS)
    (work / "run.sh").write_text('echo "out $1"\n[ "$1" = training ] && '
                                 '{ echo "failing on purpose: $1" >&2; exit 3; }\nexit 0\n')
    subprocess.run(["jobauto", "import", "x.csv"], cwd=work, check=True, capture_output=True)
    r = subprocess.run(["jobauto", "run", "x.db", "bash run.sh", "--parallel", "2"], cwd=work,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    return work / "x.db"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run whose directory names are hostile; jobs long enough to be seen running."""
    work = tmp_path_factory.mktemp("hostile")
    init = work / "camp" / "init"
    for i, d in enumerate(HOSTILE_HTML):
        make_job(init, f"{d}/qsub.0", [], "sleep 2" + ("\necho broken >&2; exit 4" if i == 0
                                                         else ""))
        make_job(init, f"{d}/qsub.1", ["qsub.finished.0"], "sleep 0.2")
    jobmon(f"--ldir={work}/camp", f"--rdir={work}/remote", "--scheduler=local", "--interval=0.2",
           "--datedir=run1", "--fetch=qsub.*.o*", timeout=120, check_rc=1)
    return work / "camp" / "run1"


def test_report_of_a_finished_run_with_a_failure(ecalj_fetched: Path, tmp_path: Path) -> None:
    r = cli(str(ecalj_fetched), "-o", "r.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "jobauto report: wrote r.html (31 jobs)"
    html = (tmp_path / "r.html").read_text()
    assert f"<title>jobauto report: {ecalj_fetched}</title>" in html
    summary = "".join(parse(section(html, "summary")).text)
    assert "31, 25 done (81%)" in summary and "blocked by an error (NiO/qsub.0)" in summary
    assert "jobmon not running" in summary
    failures = "".join(parse(section(html, "failures")).text)
    assert "NiO/qsub.0" in failures and "failed: exited with code 1" in failures
    assert "marker NiO/qsub.failed.0: 1" in failures                     # evidence
    assert "lmfa: error: POSCAR not found" in failures                    # the job's own output
    assert re.search(r"NiO/qsub\.0\.o\d+", failures)
    assert "NiO/qsub.1, NiO/qsub.2, NiO/qsub.3, NiO/qsub.4, summary/qsub.0" in failures
    assert re.findall(r'<tr data-step="([^"]*)"', html) == [f"qsub.{i}" for i in range(5)]
    assert len(re.findall(r"<g data-job=", section(html, "timeline"))) == 26
    dag = section(html, "dag")
    assert "<svg" in dag and "31 jobs shown as 31 nodes" in dag and "<?xml" not in dag


def test_report_of_a_table_shows_the_failed_jobs_stderr(table: Path, tmp_path: Path) -> None:
    r = cli(str(table), cwd=tmp_path)       # default output: report.html here
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "jobauto report: wrote report.html (3 jobs)"
    html = (tmp_path / "report.html").read_text()
    failures = "".join(parse(section(html, "failures")).text)
    assert "exit 3: failing on purpose: training" in failures
    assert f"{table}.jobs/2.1.err" in failures       # the worker's stderr file, named
    assert "evaluation" in failures                  # blocked by training
    assert re.findall(r'<tr data-step="([^"]*)"', html) == ["depth 0", "depth 1", "depth 2"]
    assert re.findall(r'<g data-job="([^"]*)"', html) == ["preprocess", "training"]
    assert [f.name for f in tmp_path.iterdir()] == ["report.html"]    # no temporary file left


def test_report_while_a_worker_runs(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("JOBSCHEDULER_JOB_ID,secs\nquick,0\nslow,300\n")
    subprocess.run(["jobauto", "import", "t.csv"], cwd=tmp_path, check=True, capture_output=True)
    worker = subprocess.Popen(["jobauto", "run", "t.db", "sleep", "--label", "w<1>"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        for _ in range(600):   # until the worker has taken the slow job (not a timing claim)
            if {j.name: j.state for j in gather(tmp_path / "t.db").jobs}["slow"] == "running":
                break
            subprocess.run(["sleep", "0.1"])
        r = cli("t.db", cwd=tmp_path)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "report.html").read_text()
    summary = "".join(parse(section(html, "summary")).text)
    assert "1 worker(s) alive, 1 slot(s)" in summary and "Running (1)" in summary
    assert "w<1>" in summary                                  # the worker's label, as text
    timeline = section(html, "timeline")
    assert re.findall(r'<g data-job="([^"]*)" data-state="([^"]*)"', timeline) == [
        ("quick", "done"), ("slow", "running")]
    assert '<line class="now"' in timeline


def test_bad_input_exit_2_and_writes_nothing(ecalj_fetched: Path, tmp_path: Path) -> None:
    r = cli(str(tmp_path / "nope"), "-o", "r.html", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert str(tmp_path / "nope") in r.stderr and "no such run directory or job table" in r.stderr
    r = cli(str(tmp_path), "-o", "r.html", cwd=tmp_path)          # a directory, not a run
    assert r.returncode == 2 and "not a jobmon run directory" in r.stderr
    (tmp_path / "notes.txt").write_text("not a table\n")
    r = cli("notes.txt", "-o", "r.html", cwd=tmp_path)
    assert r.returncode == 2 and "notes.txt" in r.stderr
    r = cli(str(ecalj_fetched), "-o", str(tmp_path / "missing" / "r.html"), cwd=tmp_path)
    assert r.returncode == 2 and "-o/--output" in r.stderr and f"no such directory: {tmp_path / 'missing'}" in r.stderr
    (tmp_path / "adir").mkdir()
    r = cli(str(ecalj_fetched), "-o", "adir", cwd=tmp_path)
    assert r.returncode == 2 and "-o/--output" in r.stderr and "is a directory" in r.stderr
    assert sorted(f.name for f in tmp_path.rglob("*")) == ["adir", "notes.txt"]


def test_without_graphviz_the_page_shows_the_dot_source(ecalj_fetched: Path, tmp_path: Path) -> None:
    # PATH without dot (but with jobauto's python): the report is still written
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = shutil.which("jobauto")
    assert exe
    (bindir / "jobauto").symlink_to(exe)
    env = {**os.environ, "PATH": f"{bindir}:/nonexistent"}
    r = subprocess.run([str(bindir / "jobauto"), "report", str(ecalj_fetched), "-o", "r.html"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    dag = section((tmp_path / "r.html").read_text(), "dag")
    assert "<svg" not in dag and "digraph" in dag and "Install graphviz" in dag


# -- in a real browser --------------------------------------------------------------------------
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "chromium is not installed (tests/tools.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def browse(html: Path, tmp_path: Path, *extra: str) -> str:
    r = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", *extra,
                        html.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def png_size_and_colours(png: Path) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values in the image data (blank: ~1)."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return width, height, len(set(zlib.decompress(idat)))


def test_in_the_browser_run_report(ecalj_fetched: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert cli(str(ecalj_fetched), "-o", str(out), cwd=tmp_path).returncode == 0
    dom = browse(out, tmp_path, "--dump-dom")
    for name in ("summary", "timeline", "dag", "failures", "steps"):
        assert f'<section id="{name}">' in dom
    c = gather(ecalj_fetched)
    started = sum(j.state != "pending" for j in c.jobs)
    assert started == 26
    timeline = section(dom, "timeline")
    assert len(re.findall(r"<g data-job=", timeline)) == started
    assert len(re.findall(r'data-state="error"', timeline)) == 1
    assert "<title>" in timeline
    dag = section(dom, "dag")
    assert "<svg" in dag
    labels = set(re.findall(r"<text[^>]*>([^<]*)</text>", dag))
    assert {"Si", "GaAs", "MgO", "NiO", "ZnO", "Cu", "summary"} <= labels   # cluster labels
    assert f'fill="{PALETTE["error"]}"' in dag                              # the failed node
    failures = section(dom, "failures")
    assert 'data-job="NiO/qsub.0"' in failures and "<dd>failed</dd>" in failures
    assert len(re.findall(r"<tr data-step=", section(dom, "steps"))) == 5
    shot = tmp_path / "shot.png"
    browse(out, tmp_path, f"--screenshot={shot}", "--window-size=1400,2000")
    width, height, colours = png_size_and_colours(shot)
    assert (width, height) == (1400, 2000) and colours > 20


def test_in_the_browser_hostile_names_stay_text(hostile_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    r = cli(str(hostile_run), "-o", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    dom = browse(out, tmp_path, "--dump-dom")
    assert "<script" not in dom.lower()      # nothing became an element
    assert "&lt;script&gt;alert(1)&lt;/script&gt;/qsub.0" in section(dom, "failures")
    p = parse(dom)
    drawn = {a["data-job"] for t, a in p.tags if t == "g" and "data-job" in a}
    assert drawn == {f"{d}/qsub.{i}" for d in HOSTILE_HTML[1:] for i in (0, 1)} | {HOSTILE_HTML[0] + "/qsub.0"}
    # jobs longer than the polling interval were seen running: solid running bars
    assert "running" in {a.get("class") for t, a in p.tags if t == "rect"}
    text = "".join(p.text)
    assert "broken" in text                   # the failed job's scheduler output, fetched


