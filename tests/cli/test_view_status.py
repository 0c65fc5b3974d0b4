"""`jobauto status` (and `progress_viewer`, `db_util stats`): the pure renderers on hand-built
campaigns, the numbers gathered from real stores, and the CLI on a real ecalj run and real tables
(pipe, pty with and without NO_COLOR, --json, while jobmon or workers run, bad input)."""

from __future__ import annotations

import io
import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from helpers import FAN_IN, REPO, chain, jobmon, make_job
from rich.console import Console

from jobauto.core.deps import Graph
from jobauto.core.model import Job, JobState
from jobauto.core.states import COUNT_KEYS
from jobauto.run.explain import graph_of
from jobauto.store import Store, TableStore
from jobauto.table.ops import import_csv
from jobauto.view.campaign import Campaign, JobView, gather
from jobauto.view.status import render_json, render_rich, render_text, to_json

NOW = 1_800_000_000.0
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
KEYS = ("done", "running", "pending", "ready", "waiting", "blocked", "error")

# Records each run ("start ARGS" / "end ARGS"); sleeps $SLEEP; fails on $FAIL (as test_table_run).
RUN_SH = """\
#!/bin/sh
echo "start $*" >> runs.log
sleep "${SLEEP:-0}"
case "$1" in ${FAIL:-__none__}) echo "failing on purpose: $1" >&2; exit 3;; esac
echo "end $*" >> runs.log
"""


# -- helpers -----------------------------------------------------------------------------------
def strip(s: str) -> str:
    return ANSI.sub("", s).replace("\r\n", "\n")


def text_counts(text: str) -> dict[str, int]:
    """The counts of the plain view: `Done: 3`, `  - Blocked: 1    ← ...`."""
    out = {}
    for m in re.finditer(r"^(?:  - )?(Done|Running|Pending|Ready|Waiting|Blocked|Error): (\d+)",
                         text, re.M):
        out[m.group(1).lower()] = int(m.group(2))
    assert set(out) == set(KEYS), text
    return out


def rich_counts(text: str) -> dict[str, int]:
    """The counts of the rich view (escapes stripped): `  Blocked    1  ━━━ blocked by ...`."""
    out = {}
    for m in re.finditer(r"^\s*(Done|Running|Pending|Ready|Waiting|Blocked|Error)\s+(\d+)\s",
                         text, re.M):
        out[m.group(1).lower()] = int(m.group(2))
    assert set(out) == set(KEYS), text
    return out


def count_line_counts(stdout: str) -> dict[str, int]:
    """The last count line jobmon printed (`done 3 running 0 ready 0 waiting 0 blocked 1 error 1`)."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("done ")]
    assert lines, stdout
    words = lines[-1].split()
    out = {}
    for key, value in zip(words[::2], words[1::2], strict=False):
        if not value.isdigit():
            break
        out[key] = int(value)
    assert set(out) >= set(COUNT_KEYS), lines[-1]
    return out


def status(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
           exe: str = "jobauto", verb: tuple[str, ...] = ("status",)
           ) -> subprocess.CompletedProcess[str]:
    """The real CLI, stdout to a pipe."""
    return subprocess.run([exe, *verb, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def status_json(target: Path) -> dict:  # type: ignore[type-arg]
    r = status(str(target), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def run_pty(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run a command with stdout on a pseudo-terminal of 120x40; return (rc, what it wrote)."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    p = subprocess.Popen(args, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         env=env)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if p.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:   # EIO: the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        rc = p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    assert p.stderr is not None
    err = p.stderr.read().decode()
    assert rc == 0, err
    return rc, b"".join(chunks).decode("utf-8", "replace")


def tty_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS",
                                                            "LINES", "TERM")}
    return {**env, "TERM": "xterm-256color", **extra}


def snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    """A file's bytes, its mtime and its directory's listing: what a read-only viewer must keep."""
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(path.parent))


def table(tmp_path: Path, csv: str, name: str = "jobs") -> Path:
    (tmp_path / f"{name}.csv").write_text(csv)
    (tmp_path / "run.sh").write_text(RUN_SH)
    r = subprocess.run(["jobauto", "import", f"{name}.csv"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return tmp_path / f"{name}.db"


def campaign(kind: str, jobs: list[JobView], **kw: object) -> Campaign:
    counts = {k: 0 for k in COUNT_KEYS}
    for j in jobs:
        counts[j.derived or j.state] += 1
    counts["pending"] = counts["ready"] + counts["waiting"] + counts["blocked"]
    path = "/home/me/foobar/20261121-100000" if kind == "run" else "/home/me/sweep.db"
    return Campaign(kind, path, NOW, jobs, counts, **kw)  # type: ignore[arg-type]


def rich_str(c: Campaign, **kw: int) -> str:
    buf = io.StringIO()
    Console(file=buf, width=120, force_terminal=True).print(render_rich(c, **kw))
    return buf.getvalue()


# -- pure: hand-built campaigns ----------------------------------------------------------------
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


# -- numbers gathered from real stores, at a fixed now -----------------------------------------
RATE_CSV = """\
JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_DEPENDS_ON
a1,1,
a2,2,
a3,3,
a4,4,
a5,5,
a6,6,
a7,7,
a8,8,
b,9,a5
c,10,a6
"""


@pytest.fixture
def rated_table(tmp_path: Path) -> Path:
    """A table driven through the real store API with explicit times around NOW."""
    (tmp_path / "t.csv").write_text(RATE_CSV)
    db, _ = import_csv(tmp_path / "t.csv", None)
    s = TableStore(db)
    w = s.register("node1", "node1-boot", 4242, 30.0, 1, "", NOW - 3000)
    for ident, start, end, state, err in (("a1", -2100, -2000, JobState.DONE, ""),
                                          ("a2", -700, -600, JobState.DONE, ""),
                                          ("a3", -400, -300, JobState.DONE, ""),
                                          ("a4", -160, -60, JobState.DONE, ""),
                                          ("a5", -130, -30, JobState.ERROR, "exit 3: boom")):
        job = s.claim(w, NOW + start)
        assert job is not None and job.id == ident
        assert s.finish(w, NOW + end, job.row, state, 3 if err else 0, 100.0, err)
    job = s.claim(w, NOW - 120)
    assert job is not None and job.id == "a6"   # left running
    s.close()
    return db


def test_throughput_and_time_left_over_the_last_15_minutes(rated_table: Path) -> None:
    c = gather(rated_table, now=NOW)
    assert c.counts == {"done": 4, "running": 1, "ready": 2, "waiting": 1, "blocked": 1,
                        "error": 1, "pending": 4}
    assert c.blocked_by == ["a5"]
    # a2, a3, a4 and a5 ended in the window (a1 did not): 4 jobs over 600 s
    assert c.rate_per_h == pytest.approx(24.0)
    # running a6, ready a7 a8, waiting c (b is blocked: it will not run): 4 jobs at 24/h
    assert c.left_s == pytest.approx(600.0)
    assert c.work_left_h == pytest.approx(4 * 100 / 3600)
    assert c.work_basis == "mean duration of 4 finished job(s)" and c.slots == 1
    text = render_text(c)
    assert "Throughput: 24.0 jobs/h (last 15 min); time left at this rate: 10m00s" in text
    assert "Work left: 6m40s by mean duration of 4 finished job(s), 6m40s over 1 slot(s)" in text
    assert "Workers: 1 worker(s) alive, 1 slot(s)" in text
    assert "  a6  worker 1 node1:4242  2m00s" in text
    same_summary(rated_table, c)
    assert "  a5: exit 3: boom" in text
    d = to_json(c)
    assert d["rate_per_h"] == pytest.approx(24.0) and d["time_left_s"] == pytest.approx(600.0)
    # the window slides with now: at NOW+840 only a4 (at its edge) and a5 count, over 900 s
    later = gather(rated_table, now=NOW + 840)
    assert later.rate_per_h == pytest.approx(2 / 900 * 3600)
    assert later.left_s == pytest.approx(4 / later.rate_per_h * 3600)
    # nothing ended in the last 15 minutes: no rate, no time left, no throughput line
    idle = gather(rated_table, now=NOW + 1000)
    assert idle.rate_per_h is None and idle.left_s is None
    assert "Throughput" not in render_text(idle)
    assert "  a6  worker 1 node1:4242  18m40s" in render_text(idle)


def test_estimates_give_the_work_left(tmp_path: Path) -> None:
    csv = ("JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_ESTIMATE_TIME,JOBSCHEDULER_DEPENDS_ON\n"
           "p,1,0.5,\nq,2,2.0,p\nr,3,,p\n")
    (tmp_path / "e.csv").write_text(csv)
    db, _ = import_csv(tmp_path / "e.csv", None)
    c = gather(db, now=NOW)
    assert c.work_left_h == pytest.approx(2.5) and c.work_basis == "estimates"
    assert c.rate_per_h is None and "Work left: 2h30m by estimates" in render_text(c)


# -- gather's derived states are deps.Graph's ------------------------------------------------
STATES = [JobState.DONE, JobState.DONE, JobState.RUNNING, JobState.ERROR, JobState.PENDING,
          JobState.PENDING, JobState.PENDING]


def graph_view(g: Graph) -> tuple[dict[str, str], dict[str, int], list[str]]:
    derived = {n: (d.value if (d := g.derived(n)) else "") for n in g.nodes}
    s = g.summary()
    return derived, {**s, "pending": s["ready"] + s["waiting"] + s["blocked"]}, sorted(
        {r for b in g.blocked for r in g.root_errors(b)})


@pytest.mark.parametrize("seed", range(6))
def test_derived_states_agree_with_the_dependency_engine_on_a_table(tmp_path: Path,
                                                                    seed: int) -> None:
    rnd = __import__("random").Random(seed)
    n = 300
    lines = ["JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_DEPENDS_ON"]
    order = list(range(n))
    rnd.shuffle(order)    # a job needs jobs before it in this order: on earlier and later rows
    rank = {k: r for r, k in enumerate(order)}
    for i in range(n):
        deps = [f"j{order[rnd.randrange(rank[i])]}" for _ in range(rnd.choice([0, 1, 1, 2, 3]))
                if rank[i]]
        lines.append(f"j{i},{i},{' '.join(deps)}")     # sometimes the same id twice
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    r = subprocess.run(["jobauto", "import", "r.csv"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    db = tmp_path / "r.db"
    with sqlite3.connect(db) as con:
        con.executemany("UPDATE jobs SET state=? WHERE id=?",
                        [(rnd.choice(STATES).value, f"j{i}") for i in range(n)])
    con.close()
    c = gather(db, now=NOW)
    derived, counts, roots = graph_view(Graph.of_table(TableStore(db).jobs()))
    assert {j.name: j.derived for j in c.jobs} == derived
    assert c.counts == counts and list(c.counts) == list(counts)
    assert c.blocked_by == roots and counts["blocked"] > 0
    same_summary(db, c)


def same_summary(path: Path, full: Campaign) -> None:
    """gather(summary=True), what status uses, leaves the done jobs out and changes no number."""
    s = gather(path, now=full.now, summary=True)
    assert to_json(s) == to_json(full)
    assert {j.name: j.derived for j in s.jobs} == {j.name: j.derived for j in full.jobs
                                                   if j.state != "done"}
    assert s.unlisted_done == full.counts["done"] and s.total == full.total


@pytest.mark.parametrize("seed", range(6))
def test_derived_states_agree_with_the_dependency_engine_on_a_run(tmp_path: Path,
                                                                  seed: int) -> None:
    rnd = __import__("random").Random(seed)
    n = 300
    names = [f"d{i % 17}/qsub.{i}" for i in range(n)]
    jobs = []
    for i, name in enumerate(names):   # acyclic: only earlier jobs; plus files and missing jobs
        deps = [f"d{k % 17}/qsub.finished.{k}" for k in rnd.sample(range(i), min(i, rnd.choice(
            [0, 1, 1, 2, 3])))]
        if rnd.random() < 0.1:
            deps.append(f"d{i % 17}/rst.{i}")                   # a plain file
        if rnd.random() < 0.05:
            deps.append(f"gone/qsub.finished.{i}")              # no job writes it
        if deps and rnd.random() < 0.05:
            deps.append(deps[0])                                 # the same path twice
        jobs.append(Job(i + 1, name, rnd.choice(STATES), tuple(deps)))
    run = tmp_path / "r"
    store = Store(run / ".jobauto/state.db")
    with store.transaction():
        store.save_jobs(jobs)
        store.add_files([f"d{i % 17}/rst.{i}" for i in range(0, n, 2)] + ["gone/qsub.finished.7"])
    store.close()
    c = gather(run, now=NOW)
    ro = Store(run / ".jobauto/state.db", readonly=True)
    g = graph_of(ro, {j.name: j for j in ro.load_jobs()})
    ro.close()
    derived, counts, roots = graph_view(g)
    assert {j.name: j.derived for j in c.jobs} == derived
    assert c.counts == counts and list(c.counts) == list(counts)
    assert c.blocked_by == roots and counts["blocked"] > 0
    assert {j.name: j.deps for j in c.jobs} == {
        n: [p.name for d in node.deps if (p := g.producer(d)) is not None]
        for n, node in g.nodes.items()}
    same_summary(run, c)


# -- a real ecalj run with one failure ---------------------------------------------------------
@pytest.fixture(scope="module")
def ecalj(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo campaign with NiO broken: (run directory, what run-local.sh printed)."""
    work = tmp_path_factory.mktemp("ecalj")
    p = subprocess.run(["bash", str(REPO / "examples/ecalj/run-local.sh"), str(work), "--break",
                        "NiO"], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert p.returncode == 1, p.stdout + p.stderr
    runs = sorted((work / "foobar").glob("2*"))
    assert len(runs) == 1, runs
    return runs[0], p.stdout


def test_run_through_a_pipe_is_plain_text(ecalj: tuple[Path, str]) -> None:
    run, out = ecalj
    r = status(str(run))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == f"{run}: 31 jobs, 25 done (81%)"
    assert "  - Blocked: 5    ← blocked by an error (NiO/qsub.0)" in lines
    assert "Monitor: jobmon not running" in lines
    assert lines[lines.index("Last failures:") + 1] == (
        "  NiO/qsub.0: failed: exited with code 1 (marker NiO/qsub.failed.0: 1)")
    # the same numbers as jobmon's own last count line, and as --json
    counts = text_counts(r.stdout)
    d = status_json(run)
    assert {k: d["counts"][k] for k in KEYS} == counts
    assert {k: counts[k] for k in COUNT_KEYS} == {k: count_line_counts(out)[k] for k in COUNT_KEYS}
    assert d["counts"] == {"done": 25, "running": 0, "ready": 0, "waiting": 0, "blocked": 5,
                           "error": 1, "pending": 5}
    assert d["kind"] == "run" and d["total"] == 31 and d["blocked_by"] == ["NiO/qsub.0"]
    (fail,) = d["failures"]
    assert fail["name"] == "NiO/qsub.0" and fail["verdict"] == "failed" and fail["exit_code"] == 1
    assert fail["where"].isdigit()   # the local scheduler's id


def test_run_on_a_pty_with_no_color_is_plain_text(ecalj: tuple[Path, str]) -> None:
    run, _ = ecalj
    _, out = run_pty(["jobauto", "status", str(run)], tty_env(NO_COLOR="1"))
    assert "\x1b" not in out
    piped = status(str(run)).stdout
    assert text_counts(out.replace("\r\n", "\n")) == text_counts(piped)
    assert f"{run}: 31 jobs, 25 done (81%)" in out


def test_run_on_a_pty_is_the_rich_view(ecalj: tuple[Path, str]) -> None:
    run, _ = ecalj
    _, raw = run_pty(["jobauto", "status", str(run)], tty_env())
    assert "\x1b[" in raw
    text = strip(raw)
    assert str(run) in text and "Monitor: jobmon not running" in text
    assert rich_counts(text) == text_counts(status(str(run)).stdout)
    assert re.search(r"NiO/qsub\.0\s+failed\s+1\s+failed: exited with code 1", text)
    assert "81% done" in text
    assert max(len(ln) for ln in text.splitlines()) <= 120   # fits the terminal's width


def test_run_throughput_from_the_stored_ends_at_a_fixed_now(ecalj: tuple[Path, str]) -> None:
    run, _ = ecalj
    with sqlite3.connect(f"file:{run}/.jobauto/state.db?mode=ro", uri=True) as db:
        ends = [r[0] for r in db.execute(
            "SELECT CASE state WHEN 'done' THEN finished_at ELSE COALESCE(failed_at, finished_at) "
            "END FROM jobs WHERE state IN ('done', 'error')")]
    assert len(ends) == 26 and None not in ends
    now = max(ends) + 300
    c = gather(run, now=now)
    assert c.rate_per_h == pytest.approx(26 / (now - min(ends)) * 3600)
    assert c.left_s is None            # nothing left that will run: 5 blocked behind NiO
    assert f"Throughput: {c.rate_per_h:.1f} jobs/h (last 15 min)" in render_text(c)
    last = sorted(ends)[-3]            # a window holding only the last three ends
    c = gather(run, now=last + 900)
    assert c.rate_per_h == pytest.approx(sum(e >= last for e in ends) / 900 * 3600)
    same_summary(run, c)
    assert gather(run, now=max(ends) + 901).rate_per_h is None


# -- counts agree with jobmon's own count line -------------------------------------------------
def test_counts_equal_jobmons_last_count_line(tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "Si/qsub.0", body="exit 7")
    make_job(ldir / "init", "Si/qsub.1", ["qsub.finished.0"])
    make_job(ldir / "init", "GaAs/qsub.0", ["../Si/qsub.finished.1"])
    make_job(ldir / "init", "ok/qsub.0")
    make_job(ldir / "init", "ok/qsub.1", ["qsub.finished.0"])
    p = jobmon(f"--ldir={ldir}", f"--rdir={tmp_path}/r", "--scheduler=local", "--interval=0.2",
               "--datedir=r", timeout=60, check_rc=1)
    line = count_line_counts(p.stdout)
    assert line == {"done": 2, "running": 0, "ready": 0, "waiting": 0, "blocked": 2, "error": 1}
    r = status(str(ldir / "r"))
    assert r.returncode == 0, r.stderr
    d = status_json(ldir / "r")
    assert {k: d["counts"][k] for k in COUNT_KEYS} == line
    assert {k: text_counts(r.stdout)[k] for k in COUNT_KEYS} == line
    assert d["blocked_by"] == ["Si/qsub.0"]
    assert "  Si/qsub.0: failed: exited with code 7" in r.stdout


# -- tables ------------------------------------------------------------------------------------
def test_table_text_json_and_progress_viewer_agree(tmp_path: Path) -> None:
    db = table(tmp_path, FAN_IN)
    r = subprocess.run(["jobauto", "run", db.name, "bash run.sh"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, env={**os.environ, "FAIL": "training"})
    assert r.returncode == 1, r.stderr
    text = status(db.name, cwd=tmp_path)
    assert text.returncode == 0 and "\x1b" not in text.stdout
    counts = text_counts(text.stdout)
    assert counts == {"done": 2, "running": 0, "pending": 1, "ready": 0, "waiting": 0,
                      "blocked": 1, "error": 1}
    assert "  - Blocked: 1    ← blocked by an error (jobC)" in text.stdout
    assert "  jobC: exit 3: failing on purpose: training" in text.stdout
    assert "Workers: 0 worker(s) alive, 0 slot(s)" in text.stdout
    d = status_json(db)
    assert {k: d["counts"][k] for k in KEYS} == counts and d["kind"] == "table"
    assert d["failures"][0]["exit_code"] == 3 and d["failures"][0]["where"] == ""
    # the seed-compatible viewers are the same view
    for exe, verb in (("progress_viewer", ()), ("db_util", ("stats",))):
        other = status(db.name, cwd=tmp_path, exe=exe, verb=verb)
        assert other.returncode == 0, other.stderr
        assert text_counts(other.stdout) == counts
        keep = [ln for ln in text.stdout.splitlines() if not ln.startswith("Throughput")]
        assert [ln for ln in other.stdout.splitlines() if not ln.startswith("Throughput")] == keep


def test_table_on_a_pty(tmp_path: Path) -> None:
    db = table(tmp_path, FAN_IN)
    _, plain = run_pty(["progress_viewer", str(db)], tty_env(NO_COLOR="1"))
    assert "\x1b" not in plain and "Pending: 4" in plain and "  - Ready: 2" in plain
    _, raw = run_pty(["progress_viewer", str(db)], tty_env())
    assert "\x1b[" in raw
    assert rich_counts(strip(raw)) == {"done": 0, "running": 0, "pending": 4, "ready": 2,
                                       "waiting": 2, "blocked": 0, "error": 0}


def test_table_status_while_a_worker_runs_is_read_only(tmp_path: Path) -> None:
    csv = "JOBSCHEDULER_JOB_ID,n,JOBSCHEDULER_DEPENDS_ON\n" + "".join(
        f"j{i},{i},{'j0' if i else ''}\n" for i in range(6))
    db = table(tmp_path, csv)
    worker = subprocess.Popen(["jobauto", "run", db.name, "bash run.sh", "--parallel", "2"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "SLEEP": "0.6"})
    seen: list[dict] = []  # type: ignore[type-arg]
    try:
        while worker.poll() is None:
            seen.append(status_json(db))
            r = status(str(db))
            assert r.returncode == 0, r.stderr
            text_counts(r.stdout)
        out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    assert "all 6 jobs done" in err
    # every job ran once: status never got in the worker's way
    runs = (tmp_path / "runs.log").read_text().splitlines()
    assert sorted(runs) == sorted([f"start {i}" for i in range(6)] + [f"end {i}" for i in range(6)])
    done = [d["counts"]["done"] for d in seen]
    assert done == sorted(done) and len(seen) >= 2
    running = [j for d in seen for j in d["running"]]
    assert running and all(re.fullmatch(r"1 \S+:\d+", j["where"]) for j in running)
    assert all(d["driver"] == "1 worker(s) alive, 2 slot(s)" for d in seen if d["running"])
    # with no writer, looking changes nothing: not the bytes, not the mtime, no journal left
    before = snapshot(db)
    for args in ([str(db)], [str(db), "--json"]):
        assert status(*args).returncode == 0
    assert status(str(db), exe="progress_viewer", verb=()).returncode == 0
    run_pty(["jobauto", "status", str(db)], tty_env())
    assert snapshot(db) == before
    final = status_json(db)
    assert final["counts"]["done"] == 6 and final["driver"] == "0 worker(s) alive, 0 slot(s)"


def test_run_status_while_jobmon_runs_is_read_only(tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    chain(ldir / "init", "a", 3, body="sleep 0.6")
    make_job(ldir / "init", "b/qsub.0", body="sleep 0.6")
    run = ldir / "r"
    out = tmp_path / "mon.out"
    mon = subprocess.Popen(["jobmon", f"--ldir={ldir}", f"--rdir={tmp_path}/remote",
                            "--scheduler=local", "--interval=0.3", "--datedir=r"],
                           stdout=out.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    seen: list[dict] = []  # type: ignore[type-arg]
    try:
        while mon.poll() is None:
            if (run / ".jobauto/state.db").exists():
                seen.append(status_json(run))
                r = status(str(run))
                assert r.returncode == 0, r.stderr
            else:
                time.sleep(0.05)
        assert mon.wait(60) == 0, out.read_text()
    finally:
        if mon.poll() is None:
            mon.send_signal(signal.SIGTERM)
            mon.wait(30)
    assert seen
    assert any(d["driver"].startswith("jobmon running (") for d in seen)
    running = [j for d in seen for j in d["running"]]
    assert running and all(j["where"] for j in running if j["started_at"] is not None)
    done = [d["counts"]["done"] for d in seen]
    assert done == sorted(done)
    # jobmon's last count line and a status after it agree
    assert {k: status_json(run)["counts"][k] for k in COUNT_KEYS} == count_line_counts(out.read_text())
    state = run / ".jobauto/state.db"
    before = snapshot(state)
    for args in ([str(run)], [str(run), "--json"]):
        assert status(*args).returncode == 0
    run_pty(["jobauto", "status", str(run)], tty_env())
    assert snapshot(state) == before
    assert status_json(run)["driver"] == "jobmon not running"


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["missing", "plain-dir", "csv", "empty-file", "run-state-db"])
def test_bad_target_exit_2_naming_it(tmp_path: Path, case: str) -> None:
    target = {"missing": tmp_path / "nope.db", "plain-dir": tmp_path / "dir",
              "csv": tmp_path / "jobs.csv", "empty-file": tmp_path / "empty.db",
              "run-state-db": tmp_path / "r/.jobauto/state.db"}[case]
    if case == "plain-dir":
        target.mkdir()
    elif case == "csv":
        target.write_text(FAN_IN)
    elif case == "empty-file":
        target.touch()
    elif case == "run-state-db":
        target.parent.mkdir(parents=True)
        with sqlite3.connect(target) as db:
            db.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.close()
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    for exe, verb in (("jobauto", ("status",)), ("progress_viewer", ())):
        for extra in ((), ("--json",)):
            r = status(str(target), *extra, exe=exe, verb=verb)
            assert r.returncode == 2, (r.stdout, r.stderr)
            assert r.stdout == ""
            assert str(target) in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
            assert "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing   # nothing created
    if case == "missing":
        assert "no such run directory or job table" in r.stderr


@pytest.mark.parametrize("value", ["0", "-1"])
def test_interval_must_be_positive(tmp_path: Path, value: str) -> None:
    db = table(tmp_path, FAN_IN)
    for extra in (("--watch",), ("--json",), ()):
        r = status(str(db), "--interval", value, *extra)
        assert r.returncode == 2 and r.stdout == ""
        assert f"--interval must be positive, not {value}" in r.stderr


def test_help_has_an_example() -> None:
    r = status("--help")
    assert r.returncode == 0 and "jobauto status experiments.db" in r.stdout
