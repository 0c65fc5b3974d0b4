"""A run's state database (jobauto/store/run.py): an old schema read as it is, upgraded in place.
What it shares with the table store: store/test_stores.py.
"""

from __future__ import annotations

from pathlib import Path

from jobauto.store import Store


def test_a_schema_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3
    db = tmp_path / "state.db"
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES('schema', '1');
        CREATE TABLE jobs(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, state TEXT NOT NULL,
            deps TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0, estimate_h REAL, ready_seq INTEGER,
            sched_id TEXT, token TEXT, batch TEXT, intent_at REAL, started_at REAL, finished_at REAL,
            failed_at REAL, spre_at REAL, missing_since REAL, reason TEXT NOT NULL DEFAULT '',
            attempts INTEGER NOT NULL DEFAULT 0);
        INSERT INTO jobs(id, name, state, deps) VALUES(1, 'a/qsub.0', 'error', '[]');
    """)
    con.close()
    before = db.read_bytes()
    ro = Store(db, readonly=True)  # status and explain read an old run as it is, changing nothing
    [job] = ro.load_jobs()
    assert job.verdict == "" and job.running_at is None
    ro.close()
    assert db.read_bytes() == before
    store = Store(db)
    [job] = store.load_jobs()
    assert job.verdict == "" and job.retried == 0 and store.open_requests() == []
    store.close()


def made_run(tmp_path: Path, created: int | None = 2, schema: str | None = None) -> Path:
    """A run directory whose store holds two jobs, the creation record CREATED (None: none) and,
    when given, an older SCHEMA number."""
    from jobauto.core.model import Job
    run = tmp_path / "r"
    store = Store(run / ".jobauto" / "state.db")
    with store.transaction():
        store.save_jobs([Job(1, "a/qsub.0", deps=()), Job(2, "a/qsub.1", deps=("a/qsub.finished.0",))])
        store.set_meta("tag", "abcd")
        if created is not None:
            store.set_meta("created", str(created))
        if schema is not None:
            store.set_meta("schema", schema)
    store.close()
    return run


def test_a_run_store_is_opened_only_whole(tmp_path: Path) -> None:
    """open_run_store refuses, naming the file, a store without its creation record, with fewer
    jobs than it was created with, or with a job whose state is not one of ours, and writes
    nothing into it; a whole one opens."""
    import sqlite3

    import pytest

    from jobauto.core.errors import StateError
    from jobauto.store import open_run_store
    open_run_store(made_run(tmp_path / "ok"), readonly=False).close()
    cases = {"no creation record": made_run(tmp_path / "none", created=None),
             "lost jobs (2 of the 3": made_run(tmp_path / "lost", created=3)}
    bad = made_run(tmp_path / "bad")
    with sqlite3.connect(bad / ".jobauto/state.db") as con:
        con.execute("UPDATE jobs SET state='dxne' WHERE id=2")
    con.close()
    cases["1 job(s) with an unreadable state"] = bad
    for why, run in cases.items():
        db = run / ".jobauto" / "state.db"
        before = db.read_bytes()
        with pytest.raises(StateError, match=r"restore it from a backup") as e:
            open_run_store(run, readonly=False, cluster_copy="host:/work/r")
        assert why in e.value.message and "the cluster copy is host:/work/r" in e.value.message
        assert e.value.file == str(db) and db.read_bytes() == before
    with pytest.raises(StateError, match="job 2: 'dxne' is not a valid JobState"):
        Store(bad / ".jobauto/state.db").load_jobs()   # what a reader would have choked on


def test_a_store_made_before_the_creation_record_is_whole_and_gets_one(tmp_path: Path) -> None:
    """Schema 3 stores have no creation record; one whose jobs were committed (with its tag) is
    whole, and the upgrade records how many jobs it has."""
    from jobauto.store import open_run_store
    run = made_run(tmp_path, created=None, schema="3")
    store = open_run_store(run, readonly=False)
    assert store.get_meta("created") == "2" and store.get_meta("schema") == "5"
    store.close()
