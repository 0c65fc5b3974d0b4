"""A jobmon run's state database: schema, version, rows, and the check that it is whole.

A run's store is complete only once its creation record is in (meta `created`: the number of
jobs the run was created with, committed with the jobs, last). `open_run_store`, the door every
command uses to an existing run, refuses a store that is empty, not SQLite, damaged, or without
that record (store/whole.py), before anything is written into it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from jobauto.core.errors import StateError
from jobauto.core.layout import state_db
from jobauto.core.model import Job, JobState
from jobauto.store.sqlite import connect, reported, transaction
from jobauto.store.whole import damage

SCHEMA_VERSION = 5      # 4: the creation record (meta `created`); 5: the synced table
RESTORE = "restore it from a backup, or start a new run (jobmon without --datedir)"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    deps TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    estimate_h REAL,
    ready_seq INTEGER,
    sched_id TEXT,
    token TEXT,
    batch TEXT,
    intent_at REAL,
    started_at REAL,
    finished_at REAL,
    failed_at REAL,
    running_at REAL,
    spre_at REAL,
    missing_since REAL,
    reason TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    verdict TEXT NOT NULL DEFAULT '',
    exit_code INTEGER,
    evidence TEXT NOT NULL DEFAULT '',
    retried INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_job ON events(job);
-- what jobmon last pushed or fetched of each file below DATE/ (run/sync.py): a local file whose
-- size and mtime differ from its row, and for a job script or dependency file whose sha256 does
-- too, was changed by the user since: it is pushed before its job is submitted, never fetched over
CREATE TABLE IF NOT EXISTS synced(
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT,
    how TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS requests(
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    args TEXT NOT NULL,
    done_at REAL,
    result TEXT NOT NULL DEFAULT ''
);
"""

# Columns added after schema 1, as (table, column, definition), for ALTER TABLE on old stores.
ADDED_COLUMNS = [
    ("jobs", "verdict", "TEXT NOT NULL DEFAULT ''"),
    ("jobs", "exit_code", "INTEGER"),
    ("jobs", "evidence", "TEXT NOT NULL DEFAULT ''"),
    ("jobs", "retried", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "running_at", "REAL"),
]

JOB_COLUMNS = [f.name for f in fields(Job)]
VIEW_COLUMNS = ("name", "state", "deps", "sched_id", "started_at", "running_at", "finished_at",
                "failed_at", "estimate_h", "attempts", "verdict", "exit_code", "reason", "evidence")


def _to_row(job: Job) -> tuple[object, ...]:
    out: list[object] = []
    for name in JOB_COLUMNS:
        v = getattr(job, name)
        if name == "deps":
            v = json.dumps(list(v))
        elif name == "state":
            v = v.value
        out.append(v)
    return tuple(out)


def _from_row(row: sqlite3.Row) -> Job:
    have = row.keys()  # a read-only look at an older store lacks the columns added since
    kw = {name: row[name] for name in JOB_COLUMNS if name in have}
    kw["deps"] = tuple(json.loads(kw["deps"]))
    kw["state"] = JobState(kw["state"])
    return Job(**kw)


class Store:
    """A run's state database (rollback journal: the file may live on a network filesystem)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        if readonly:
            if not path.exists():
                raise StateError("no jobauto state here (not a run directory?)", file=str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        with reported(path):
            self.db = connect(path, readonly=readonly)
            if not readonly:
                self._migrate()
            else:
                self._check_version()

    def close(self) -> None:
        self.db.close()

    def reported(self):  # type: ignore[no-untyped-def]
        """A context in which SQLite's errors say what they mean for this file (sqlite.reported)."""
        return reported(self.path)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with transaction(self.db, self.path) as db:
            yield db

    def _version(self) -> int:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0]) if row else 0

    def _check_version(self) -> None:
        v = self._version()
        # older stores are readable as they are (later schemas only added columns, with defaults)
        if v < 1 or v > SCHEMA_VERSION:
            hint = ("; resume the run once with jobmon --datedir to upgrade it" if v < SCHEMA_VERSION
                    else "; upgrade jobauto")
            raise StateError(f"state schema version {v}, this jobauto reads {SCHEMA_VERSION}{hint}",
                             file=str(self.path))

    def _migrate(self) -> None:
        v = self._version()
        if v > SCHEMA_VERSION:
            raise StateError(f"state was written by a newer jobauto (schema {v}); upgrade jobauto",
                             file=str(self.path))
        if v < SCHEMA_VERSION:
            with self.transaction() as db:
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                for table, col, decl in ADDED_COLUMNS:
                    have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                    if col not in have:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")
                if 1 <= v < 4 and self.get_meta("tag") is not None:
                    # made before the creation record: its jobs were committed with its tag
                    db.execute("INSERT OR IGNORE INTO meta(key, value) SELECT 'created', COUNT(*) "
                               "FROM jobs")
                db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('schema', ?)",
                           (str(SCHEMA_VERSION),))

    # -- meta --------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    # -- jobs --------------------------------------------------------------------------------
    def load_jobs(self) -> list[Job]:
        out = []
        for r in self.db.execute("SELECT * FROM jobs ORDER BY id"):
            try:
                out.append(_from_row(r))
            except (ValueError, TypeError) as e:   # a state or a dependency list that is not ours
                raise StateError(f"the run's state is damaged (job {r['id']}: {e}); {RESTORE}",
                                 file=str(self.path)) from None
        return out

    def view_rows(self, *, done: bool = True) -> list[tuple[Any, ...]]:
        """Every job (done=False: every job not done) as a plain tuple of what a viewer shows
        (VIEW_COLUMNS; deps as stored, JSON), in id order: at 100,000 jobs several times faster
        than `load_jobs()`."""
        cur = self.db.cursor()
        cur.row_factory = None
        where = "" if done else " WHERE state != 'done'"
        return cur.execute(f"SELECT {', '.join(VIEW_COLUMNS)} FROM jobs{where} ORDER BY id").fetchall()

    def done_rows(self) -> list[tuple[Any, ...]]:
        """(name, finished_at, start) of every done job; start: first seen running, else
        submitted. What a summary needs of them."""
        cur = self.db.cursor()
        cur.row_factory = None
        return cur.execute("SELECT name, finished_at, COALESCE(running_at, started_at) FROM jobs "
                           "WHERE state = 'done'").fetchall()

    def save_jobs(self, jobs: Iterable[Job]) -> None:
        """Insert or update jobs (call inside a transaction)."""
        cols = ", ".join(JOB_COLUMNS)
        marks = ", ".join("?" for _ in JOB_COLUMNS)
        self.db.executemany(f"INSERT OR REPLACE INTO jobs({cols}) VALUES({marks})",
                            [_to_row(j) for j in jobs])

    def next_job_id(self) -> int:
        row = self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM jobs").fetchone()
        return int(row[0])

    # -- files and events --------------------------------------------------------------------
    def load_files(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT path FROM files")}

    def add_files(self, paths: Iterable[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO files(path) VALUES(?)", [(p,) for p in paths])

    def add_events(self, events: Iterable[tuple[float, str, str, str]]) -> None:
        self.db.executemany("INSERT INTO events(at, job, kind, detail) VALUES(?, ?, ?, ?)",
                            list(events))

    # -- synced: what was last pushed or fetched of each file (run/sync.py) ------------------
    def synced(self, paths: Iterable[str] | None = None) -> dict[str, tuple[int, int, str | None]]:
        """(size, mtime_ns, sha256) of each recorded path (of PATHS only, when given). A store
        made before schema 5 (read-only) has none."""
        cur = self.db.cursor()
        cur.row_factory = None
        try:
            if paths is None:
                rows = cur.execute("SELECT path, size, mtime_ns, sha256 FROM synced").fetchall()
            else:
                rows = []
                wanted = list(dict.fromkeys(paths))
                for i in range(0, len(wanted), 500):
                    part = wanted[i:i + 500]
                    rows += cur.execute("SELECT path, size, mtime_ns, sha256 FROM synced WHERE "
                                        f"path IN ({', '.join('?' for _ in part)})", part).fetchall()
        except sqlite3.OperationalError:
            return {}
        return {r[0]: (int(r[1]), int(r[2]), r[3]) for r in rows}

    def record_synced(self, rows: Iterable[tuple[str, int, int, str | None]], how: str,
                      at: float) -> None:
        """Record (path, size, mtime_ns, sha256) as pushed or fetched (HOW) at AT (call inside a
        transaction)."""
        self.db.executemany("INSERT OR REPLACE INTO synced(path, size, mtime_ns, sha256, how, at) "
                            "VALUES(?, ?, ?, ?, ?, ?)", [(*r, how, at) for r in rows])

    # -- requests: changes asked for by other processes (jobauto reset), applied by the monitor --
    def add_request(self, at: float, kind: str, args: dict[str, object]) -> int:
        with self.transaction() as db:
            cur = db.execute("INSERT INTO requests(at, kind, args) VALUES(?, ?, ?)",
                             (at, kind, json.dumps(args)))
            return int(cur.lastrowid or 0)

    def has_open_requests(self) -> bool:
        """Whether a request waits: a cheap look for a waiting monitor (False when the store
        cannot answer now, e.g. locked by a writer: the next look or cycle sees it)."""
        try:
            return self.db.execute("SELECT 1 FROM requests WHERE done_at IS NULL LIMIT 1"
                                   ).fetchone() is not None
        except sqlite3.Error:
            return False

    def open_requests(self) -> list[tuple[int, str, dict[str, object]]]:
        return [(r[0], r[1], json.loads(r[2])) for r in
                self.db.execute("SELECT id, kind, args FROM requests WHERE done_at IS NULL ORDER BY id")]

    def close_request(self, rid: int, at: float, result: str) -> None:
        """Mark a request applied (call inside a transaction)."""
        self.db.execute("UPDATE requests SET done_at=?, result=? WHERE id=?", (at, result, rid))

    def requests(self) -> list[tuple[int, float, str, dict[str, object], float | None, str]]:
        return [(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in
                self.db.execute("SELECT id, at, kind, args, done_at, result FROM requests ORDER BY id")]

    def events(self, job: str) -> list[tuple[float, str, str]]:
        return [(r[0], r[1], r[2]) for r in
                self.db.execute("SELECT at, kind, detail FROM events WHERE job=? ORDER BY id", (job,))]

    # -- a run at a glance (jobauto runs): counted in SQL, never every job's row -------------
    def state_counts(self) -> dict[str, int]:
        """The number of jobs in each stored state."""
        return {r[0]: r[1] for r in self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")}

    def open_rows(self) -> list[tuple[str, str, str]]:
        """(name, state, deps as stored) of every job not done, in id order; deps only for the
        pending jobs ("[]" for the others: nobody asks what they need)."""
        cur = self.db.cursor()
        cur.row_factory = None
        return cur.execute("SELECT name, state, CASE state WHEN 'pending' THEN deps ELSE '[]' END "
                           "FROM jobs WHERE state != 'done' ORDER BY id").fetchall()

    def among(self, what: str, names: list[str]) -> set[str]:
        """Which of NAMES are done jobs (WHAT "done") or known files (WHAT "files")."""
        q = ("SELECT name FROM jobs WHERE state = 'done' AND name IN ({})" if what == "done"
             else "SELECT path FROM files WHERE path IN ({})")
        out: set[str] = set()
        for i in range(0, len(names), 500):    # under SQLite's limit of bound parameters
            part = names[i:i + 500]
            out.update(r[0] for r in self.db.execute(q.format(",".join("?" * len(part))), part))
        return out

    def last_event_at(self) -> float | None:
        """When the latest event was recorded (the last one written: no scan of the events)."""
        try:
            row = self.db.execute("SELECT at FROM events ORDER BY id DESC LIMIT 1").fetchone()
        except sqlite3.OperationalError:   # a store older than its events, read as it is
            return None
        return float(row[0]) if row else None

    def open_request_count(self) -> int:
        """Requests (jobauto reset, ...) that no monitor has applied yet."""
        try:
            q = self.db.execute("SELECT COUNT(*) FROM requests WHERE done_at IS NULL")
        except sqlite3.OperationalError:   # a store older than requests, read as it is
            return 0
        return int(q.fetchone()[0])


def open_run_store(run_dir: Path, *, readonly: bool, cluster_copy: str | None = None) -> Store:
    """The store of run directory LDIR/DATE; an error naming it when it is not a run, or when it
    is damaged or incomplete (damage(); thorough for a writer). CLUSTER_COPY, where the run's
    mirror is, goes into that message."""
    db = state_db(run_dir)
    if not db.exists():
        raise StateError("not a jobmon run directory (no .jobauto/state.db): pass LDIR/DATE",
                         file=str(run_dir))
    problem = damage(db, thorough=not readonly)
    if problem:
        where = f"; the cluster copy is {cluster_copy}" if cluster_copy else ""
        raise StateError(f"{problem}; {RESTORE}{where}", file=str(db))
    return Store(db, readonly=readonly)
