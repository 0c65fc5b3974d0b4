"""gather (jobauto/view/campaign.py): the numbers of a campaign read from real stores at a fixed
now (throughput, time and work left), and derived states that agree with the dependency
engine (deps.Graph) on random tables and runs.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from helpers import NOW

from jobauto.core.deps import Graph
from jobauto.core.model import Job, JobState
from jobauto.core.states import AHEAD
from jobauto.run.explain import graph_of
from jobauto.store import Store, TableStore
from jobauto.table.ops import import_csv
from jobauto.view.campaign import Campaign, gather
from jobauto.view.status import render_text, to_json

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


def graph_view(g: Graph, run: bool = False) -> tuple[dict[str, str], dict[str, int], list[str]]:
    derived = {n: (d.value if (d := g.derived(n)) else "") for n in g.nodes}
    s = g.summary()
    counts = {**s, "pending": s["ready"] + s["waiting"] + s["blocked"]}
    # jobmon's rule (run/ahead.py): a running job that needs a job not done is queued ahead
    ahead = [n for n, node in g.nodes.items()
             if run and node.state == JobState.RUNNING and node.unmet_jobs]
    derived.update(dict.fromkeys(ahead, AHEAD))
    if ahead:
        counts["running"] -= len(ahead)
        counts[AHEAD] = len(ahead)
    return derived, counts, sorted({r for b in g.blocked for r in g.root_errors(b)})


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
        store.set_meta("created", str(len(jobs)))   # the creation record jobmon writes last
        store.add_files([f"d{i % 17}/rst.{i}" for i in range(0, n, 2)] + ["gone/qsub.finished.7"])
    store.close()
    c = gather(run, now=NOW)
    ro = Store(run / ".jobauto/state.db", readonly=True)
    g = graph_of(ro, {j.name: j for j in ro.load_jobs()})
    ro.close()
    derived, counts, roots = graph_view(g, run=True)
    assert {j.name: j.derived for j in c.jobs} == derived
    assert c.counts == counts and list(c.counts) == list(counts)
    assert c.blocked_by == roots and counts["blocked"] > 0
    assert {j.name: j.deps for j in c.jobs} == {
        n: [p.name for d in node.deps if (p := g.producer(d)) is not None]
        for n, node in g.nodes.items()}
    same_summary(run, c)


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
