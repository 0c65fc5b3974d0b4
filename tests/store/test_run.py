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
