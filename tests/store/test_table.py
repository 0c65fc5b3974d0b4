"""The table store (jobauto/store/table.py): its one-query "ready" rule agrees with the dependency engine (deps.Graph), claims
follow priority then table order, and jobs are only changed by the worker that holds them."""

from __future__ import annotations

import random
import time
from pathlib import Path

from jobauto.core.deps import Graph
from jobauto.core.model import JobState
from jobauto.store import TableStore
from jobauto.store.table import READY
from jobauto.table import csvfile as csvtable


def make(tmp_path: Path, n: int, rng: random.Random) -> TableStore:
    lines = ["JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_PRIORITY,JOBSCHEDULER_DEPENDS_ON"]
    for i in range(n):
        deps = {f"j{rng.randrange(i)}" for _ in range(rng.choice((0, 1, 2, 3)))} if i else set()
        lines.append(f"j{i},{i},{rng.randrange(3)},{' '.join(sorted(deps))}")
    csv = tmp_path / "t.csv"
    csv.write_text("\n".join(lines) + "\n")
    return TableStore.create(tmp_path / "t.db", csvtable.read(csv), now=time.time())


def test_ready_query_agrees_with_the_graph(tmp_path: Path) -> None:
    rng = random.Random(7)
    store = make(tmp_path, 400, rng)
    for _round in range(20):
        with store.tx() as db:
            for row in rng.sample(range(1, 401), 60):
                db.execute("UPDATE jobs SET state=? WHERE row=?",
                           (rng.choice(["pending", "running", "done", "done", "error"]), row))
        g = Graph(by_id=True)
        for j in store.jobs():
            g.add(j.id, j.deps, j.state)
        sql = {r[0] for r in store.db.execute(f"SELECT id FROM jobs j WHERE {READY}")}
        assert sql == g.ready


def test_claims_follow_priority_then_table_order_and_respect_time(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_PRIORITY,JOBSCHEDULER_ESTIMATE_TIME\n"
                   "a,1,0,\nb,2,5,1.0\nc,3,5,0.001\nd,4,1,\n")
    store = TableStore.create(tmp_path / "p.db", csvtable.read(csv), now=0)
    w = store.register("h", "k", 1, 30, 1, "", 0)
    order = []
    while (job := store.claim(w, 0, time_left_s=60)) is not None:
        order.append(job.id)
    assert order == ["c", "d", "a"]       # b (1 h) does not fit in 60 s
    assert store.claimable(None) and not store.claimable(60)


def test_only_the_holder_finishes_a_job(tmp_path: Path) -> None:
    store = make(tmp_path, 5, random.Random(1))
    w1 = store.register("h", "k", 1, 30, 1, "", 0)
    w2 = store.register("h", "k", 2, 30, 1, "", 0)
    job = store.claim(w1, 0)
    assert job is not None
    assert not store.finish(w2, 1, job.row, JobState.DONE, 0, 1.0, "")
    assert store.declare_lost(w1, 0, 1, "test")
    assert not store.declare_lost(w1, 0, 1, "again")          # only once
    orphans = store.orphans()
    assert [j.id for j, _key in orphans] == [job.id]
    assert store.resolve_orphan(orphans[0][0], 2, "gone", None)
    assert not store.finish(w1, 3, job.row, JobState.DONE, 0, 1.0, "")   # too late: not recorded
    again = store.claim(w2, 4)
    assert again is not None and again.id == job.id and again.attempts == 2
    assert not store.beat(w1) and store.beat(w2)


def test_a_damaged_table_file_is_one_line_for_status_never_a_traceback(tmp_path: Path) -> None:
    """Garbage over the jobs' rows of a table: `jobauto status` says, in one line naming the
    file, that it is damaged and to restore it (exit 2)."""
    import sqlite3

    from helpers import jobauto
    store = make(tmp_path, 300, random.Random(3))
    store.close()
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as con:
        page = con.execute("PRAGMA page_size").fetchone()[0]
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name='jobs'").fetchone()[0]
    con.close()
    with open(db, "r+b") as f:
        f.seek((root - 1) * page)   # the header of the jobs' root page
        f.write(b"\xa5" * 64)
    p = jobauto("status", str(db))
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert str(db) in lines[0] and "damaged" in lines[0] and "restore it from a backup" in lines[0]
