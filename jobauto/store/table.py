"""A job table's database: jobs, their dependencies, the workers that run them, and events.

Any number of worker processes on any number of hosts share the file, which may sit on NFS or
Lustre: rollback journal, short BEGIN IMMEDIATE transactions (sqlite.py). Parameters are stored
as a JSON list and column names as data; no user string ever becomes SQL.

A job is claimed, finished, released or recovered in one transaction each, and only by a worker
that still holds it (``WHERE worker=? AND state='running'``): a worker declared lost cannot
overwrite what another did with its job.

Kept whole past 400 lines: the schema and every statement that reads or changes it belong together.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jobauto.core.errors import StateError
from jobauto.core.model import JobState, TableFile, TableJob, Worker
from jobauto.store.sqlite import connect, reported, require_shared_locks, retrying, transaction

SCHEMA_VERSION = 1
KIND = "jobauto-table"

SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE jobs(
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    params TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    estimate_h REAL,
    deps TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'pending',
    worker INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    elapsed_s REAL,
    exit_code INTEGER,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX jobs_claim ON jobs(state, priority DESC, row);
CREATE INDEX jobs_worker ON jobs(worker) WHERE worker IS NOT NULL;
CREATE TABLE deps(job INTEGER NOT NULL, dep INTEGER NOT NULL, PRIMARY KEY(job, dep)) WITHOUT ROWID;
CREATE INDEX deps_dep ON deps(dep);
CREATE TABLE workers(
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    host_key TEXT NOT NULL,
    pid INTEGER NOT NULL,
    beat INTEGER NOT NULL DEFAULT 0,
    beat_s REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'alive',
    parallel INTEGER NOT NULL DEFAULT 1,
    started_at REAL,
    label TEXT NOT NULL DEFAULT ''
);
CREATE TABLE events(
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    job INTEGER,
    worker INTEGER,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
"""

# A job is ready when it is pending and every job it needs is done (blocked jobs are pending
# jobs whose dependencies include an error: never ready either). deps.Graph is the engine for
# ready/waiting/blocked; this is the same rule for "ready", as one indexed query, so that a claim
# does not have to load the table. tests/store/test_table.py checks that the two agree.
READY = """
    j.state = 'pending' AND NOT EXISTS (
        SELECT 1 FROM deps d JOIN jobs p ON p.row = d.dep WHERE d.job = j.row AND p.state != 'done')
"""

JOB_FIELDS = ("row, id, params, priority, estimate_h, deps, state, worker, attempts, started_at, "
              "finished_at, elapsed_s, exit_code, error")

VIEW_FIELDS = ("id, deps, state, worker, attempts, started_at, finished_at, elapsed_s, exit_code, "
               "error, estimate_h")


def _job(r: sqlite3.Row) -> TableJob:
    return TableJob(r["row"], r["id"], tuple(json.loads(r["params"])), r["priority"], r["estimate_h"],
                    tuple(r["deps"].split()), JobState(r["state"]), r["worker"], r["attempts"],
                    r["started_at"], r["finished_at"], r["elapsed_s"], r["exit_code"], r["error"])


def _worker(r: sqlite3.Row) -> Worker:
    return Worker(r["id"], r["host"], r["pid"], r["host_key"], r["beat"], r["beat_s"], r["state"],
                  r["parallel"], r["started_at"], r["label"])


class TableStore:
    """One connection to a job table (one per thread)."""

    def __init__(self, path: Path, *, readonly: bool = False, unsafe_fs: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StateError("no such job table (create it with: jobauto import FILE.csv)",
                             file=str(path))
        if not readonly:
            require_shared_locks(self.path, unsafe_fs=unsafe_fs)
            _check_writable(self.path)
        try:
            self.db = connect(self.path, readonly=readonly)
            kind = self.db.execute("SELECT value FROM meta WHERE key='kind'").fetchone()
        except sqlite3.DatabaseError as e:
            if "malformed" in str(e):
                raise StateError(f"the job table is damaged ({e}); restore it from a backup",
                                 file=str(path)) from None
            raise StateError(f"not a jobauto job table ({e})", file=str(path)) from None
        if kind is None or kind[0] != KIND:
            raise StateError("not a jobauto job table", file=str(path))
        with reported(self.path):
            version = int(self.meta("schema") or 0)
        if version != SCHEMA_VERSION:
            raise StateError(f"job table schema {version}, this jobauto reads {SCHEMA_VERSION}; "
                             f"use a matching jobauto", file=str(path))

    def close(self) -> None:
        self.db.close()

    def reported(self):  # type: ignore[no-untyped-def]
        """A context in which SQLite's errors say what they mean for this file (sqlite.reported)."""
        return reported(self.path)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with transaction(self.db, self.path) as db:
                yield db
        except sqlite3.OperationalError as e:  # the table became read-only after it was opened
            if "readonly" not in str(e) and "unable to open" not in str(e):
                raise
            raise StateError(f"cannot write the job table ({e})", file=str(self.path)) from None

    # -- creating and adding -----------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, table: TableFile, *, now: float, unsafe_fs: bool = False) -> TableStore:
        """Write a new table file atomically: it appears whole or not at all."""
        path = Path(path)
        if path.exists():
            raise StateError("already exists; add jobs with: jobauto add "
                             f"{path} FILE.csv, or remove it first", file=str(path))
        require_shared_locks(path, unsafe_fs=unsafe_fs)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as e:
            raise StateError(f"cannot create the job table in {path.parent.absolute()}: {e.strerror}",
                             file=str(path)) from None
        os.close(fd)
        try:
            db = sqlite3.connect(tmp, isolation_level=None)
            db.execute("PRAGMA journal_mode=DELETE")
            db.executescript(SCHEMA)
            db.execute("BEGIN")
            meta = {"kind": KIND, "schema": str(SCHEMA_VERSION), "header": json.dumps(table.header),
                    "columns": json.dumps(table.columns), "id_mode": table.id_mode,
                    "source": str(table.path), "created_at": repr(now)}
            db.executemany("INSERT INTO meta(key, value) VALUES(?, ?)", meta.items())
            _insert(db, table, {})
            db.execute("COMMIT")
            db.close()
            if path.exists():
                raise StateError("appeared while importing; not replaced", file=str(path))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return cls(path, unsafe_fs=unsafe_fs)

    def add(self, table: TableFile, *, now: float) -> int:
        """Add validated rows (validated against this table's ids and columns)."""
        with self.tx() as db:
            have = dict(db.execute("SELECT id, row FROM jobs").fetchall())
            if set(have) & {r.id for r in table.rows}:   # someone added the same ids meanwhile
                raise StateError("the table changed while adding; run the command again",
                                 file=str(self.path))
            _insert(db, table, have)
            db.execute("INSERT INTO events(at, kind, detail) VALUES(?, 'added', ?)",
                       (now, f"{len(table.rows)} jobs from {table.path}"))
        return len(table.rows)

    # -- reading -----------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def columns(self) -> list[str]:
        return list(json.loads(self.meta("columns") or "[]"))

    def header(self) -> list[str]:
        return list(json.loads(self.meta("header") or "[]"))

    def ids(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT id, row FROM jobs").fetchall())

    def next_row(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(row), 0) + 1 FROM jobs").fetchone()[0])

    def jobs(self, states: Iterable[str] = ()) -> list[TableJob]:
        states = list(states)
        if states:
            marks = ",".join("?" for _ in states)
            cur = self.db.execute(f"SELECT {JOB_FIELDS} FROM jobs WHERE state IN ({marks}) "
                                  f"ORDER BY row", states)
        else:
            cur = self.db.execute(f"SELECT {JOB_FIELDS} FROM jobs ORDER BY row")
        return [_job(r) for r in cur]

    def view_rows(self, *, done: bool = True) -> list[tuple[Any, ...]]:
        """Every job (done=False: every job not done) as a plain tuple of what a viewer shows (VIEW_FIELDS, no parameters), in
        table order: at 100,000 jobs several times faster than `jobs()`."""
        cur = self.db.cursor()
        cur.row_factory = None
        where = "" if done else " WHERE state != 'done'"
        return cur.execute(f"SELECT {VIEW_FIELDS} FROM jobs{where} ORDER BY row").fetchall()

    def done_rows(self) -> list[tuple[Any, ...]]:
        """(id, finished_at, elapsed_s) of every done job: what a summary needs of them."""
        cur = self.db.cursor()
        cur.row_factory = None
        return cur.execute("SELECT id, finished_at, elapsed_s FROM jobs WHERE state = 'done'").fetchall()

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())

    def workers(self, states: Iterable[str] = ()) -> list[Worker]:
        states = list(states)
        q = "SELECT * FROM workers"
        if states:
            q += f" WHERE state IN ({','.join('?' for _ in states)})"
        return [_worker(r) for r in self.db.execute(q + " ORDER BY id", states)]

    def events(self, kinds: Iterable[str] = (), limit: int | None = None
               ) -> list[tuple[float, int | None, int | None, str, str]]:
        kinds = list(kinds)
        q = "SELECT at, job, worker, kind, detail FROM events"
        if kinds:
            q += f" WHERE kind IN ({','.join('?' for _ in kinds)})"
        q += " ORDER BY id DESC"
        if limit:
            q += f" LIMIT {int(limit)}"
        return [tuple(r) for r in self.db.execute(q, kinds)]  # type: ignore[misc]

    # -- workers -----------------------------------------------------------------------------
    def register(self, host: str, host_key: str, pid: int, beat_s: float, parallel: int,
                 label: str, now: float) -> int:
        with self.tx() as db:
            cur = db.execute("INSERT INTO workers(host, host_key, pid, beat_s, parallel, started_at, "
                             "label) VALUES(?, ?, ?, ?, ?, ?, ?)",
                             (host, host_key, pid, beat_s, parallel, now, label))
            wid = int(cur.lastrowid or 0)
            db.execute("INSERT INTO events(at, worker, kind, detail) VALUES(?, ?, 'worker', ?)",
                       (now, wid, f"started on {host} pid {pid}" + (f" ({label})" if label else "")))
        return wid

    def beat(self, worker: int) -> bool:
        """Advance the heartbeat counter; False when this worker was declared lost."""
        with self.tx() as db:
            cur = db.execute("UPDATE workers SET beat = beat + 1 WHERE id=? AND state='alive'",
                             (worker,))
        return cur.rowcount == 1

    def stop_worker(self, worker: int, now: float, detail: str) -> None:
        with self.tx() as db:
            db.execute("UPDATE workers SET state='stopped' WHERE id=? AND state='alive'", (worker,))
            db.execute("INSERT INTO events(at, worker, kind, detail) VALUES(?, ?, 'stopped', ?)",
                       (now, worker, detail))

    def declare_lost(self, worker: int, beat: int, now: float, why: str) -> bool:
        """Mark a silent or dead worker lost, if its counter is still `beat`. Its running jobs
        become orphans, resolved by `resolve_orphan` (they may still be running, or have ended)."""
        with self.tx() as db:
            cur = db.execute("UPDATE workers SET state='lost' WHERE id=? AND beat=? AND state='alive'",
                             (worker, beat))
            if cur.rowcount != 1:
                return False
            db.execute("INSERT INTO events(at, worker, kind, detail) VALUES(?, ?, 'lost', ?)",
                       (now, worker, why))
        return True

    def orphans(self) -> list[tuple[TableJob, str]]:
        """Running jobs whose worker is not alive, with that worker's host key ('' if unknown)."""
        rows = retrying(lambda: self.db.execute(
            f"SELECT {', '.join('j.' + f for f in JOB_FIELDS.split(', '))}, "
            f"COALESCE(w.host_key, '') AS host_key FROM jobs j LEFT JOIN workers w ON w.id = j.worker "
            f"WHERE j.state = 'running' AND (w.id IS NULL OR w.state != 'alive') ORDER BY j.row"
        ).fetchall(), self.path)
        return [(_job(r), r["host_key"]) for r in rows]

    def resolve_orphan(self, job: TableJob, now: float, why: str,
                       outcome: tuple[JobState, int | None, float | None, str] | None) -> bool:
        """Record how an orphan ended (`outcome`, read from what its command left), or return it
        to pending when it did not finish. Only if it is still the same attempt of the same worker."""
        with self.tx() as db:
            if outcome is None:
                cur = db.execute("UPDATE jobs SET state='pending', worker=NULL, error=? WHERE row=? "
                                 "AND state='running' AND attempts=? AND worker IS ?",
                                 (f"returned to pending: {why}", job.row, job.attempts, job.worker))
                kind, detail = "recovered", why
            else:
                state, code, elapsed, error = outcome
                cur = db.execute("UPDATE jobs SET state=?, worker=NULL, finished_at=?, elapsed_s=?, "
                                 "exit_code=?, error=? WHERE row=? AND state='running' AND attempts=? "
                                 "AND worker IS ?", (state.value, now, elapsed, code, error, job.row,
                                                     job.attempts, job.worker))
                kind, detail = state.value, f"{why}; recorded from what the command left"
            if cur.rowcount != 1:
                return False
            db.execute("INSERT INTO events(at, job, worker, kind, detail) VALUES(?, ?, ?, ?, ?)",
                       (now, job.row, job.worker, kind, detail))
        return True

    # -- running jobs ------------------------------------------------------------------------
    def claim(self, worker: int, now: float, time_left_s: float | None = None,
              finished: tuple[int, JobState, int | None, float, str] | None = None
              ) -> TableJob | None:
        """Claim the best ready job (priority, then table order) that fits in `time_left_s`, in
        one transaction; `finished` records the worker's previous job in the same transaction."""
        with self.tx() as db:
            if finished is not None:
                self._finish(db, worker, now, *finished)
            if time_left_s is None:
                r = db.execute(f"SELECT {JOB_FIELDS} FROM jobs j WHERE {READY} "
                               f"ORDER BY priority DESC, row LIMIT 1").fetchone()
            else:
                r = db.execute(f"SELECT {JOB_FIELDS} FROM jobs j WHERE {READY} "
                               f"AND COALESCE(estimate_h, 0) * 3600.0 <= ? "
                               f"ORDER BY priority DESC, row LIMIT 1", (time_left_s,)).fetchone()
            if r is None:
                return None
            db.execute("UPDATE jobs SET state='running', worker=?, attempts=attempts+1, started_at=?, "
                       "finished_at=NULL, elapsed_s=NULL, exit_code=NULL, error='' WHERE row=?",
                       (worker, now, r["row"]))
            db.execute("INSERT INTO events(at, job, worker, kind) VALUES(?, ?, ?, 'started')",
                       (now, r["row"], worker))
        job = _job(r)
        job.state, job.worker, job.attempts, job.started_at = JobState.RUNNING, worker, job.attempts + 1, now
        return job

    def finish(self, worker: int, now: float, row: int, state: JobState, exit_code: int | None,
               elapsed_s: float, error: str) -> bool:
        with self.tx() as db:
            return self._finish(db, worker, now, row, state, exit_code, elapsed_s, error)

    def _finish(self, db: sqlite3.Connection, worker: int, now: float, row: int, state: JobState,
                exit_code: int | None, elapsed_s: float, error: str) -> bool:
        cur = db.execute("UPDATE jobs SET state=?, worker=NULL, finished_at=?, elapsed_s=?, "
                         "exit_code=?, error=? WHERE row=? AND worker=? AND state='running'",
                         (state.value, now, elapsed_s, exit_code, error, row, worker))
        if cur.rowcount != 1:
            return False   # taken from us (declared lost): what we did is not recorded
        db.execute("INSERT INTO events(at, job, worker, kind, detail) VALUES(?, ?, ?, ?, ?)",
                   (now, row, worker, state.value, error if state == JobState.ERROR else ""))
        return True

    def release(self, worker: int, rows: Iterable[int], now: float, why: str) -> int:
        """Return this worker's running jobs to pending (it is stopping before they ended)."""
        n = 0
        with self.tx() as db:
            for row in rows:
                cur = db.execute("UPDATE jobs SET state='pending', worker=NULL, error=? "
                                 "WHERE row=? AND worker=? AND state='running'",
                                 (f"returned to pending: {why}", row, worker))
                if cur.rowcount == 1:
                    n += 1
                    db.execute("INSERT INTO events(at, job, worker, kind, detail) "
                               "VALUES(?, ?, ?, 'released', ?)", (now, row, worker, why))
        return n

    def reset(self, ids: list[str], states: list[str], now: float) -> tuple[list[str], list[str]]:
        """Make jobs pending again: the named ones (all when none) in `states`. Running jobs are
        reset only when their worker is not alive. Returns (reset ids, refused ids)."""
        with self.tx() as db:
            alive = {r[0] for r in db.execute("SELECT id FROM workers WHERE state='alive'")}
            if ids:
                marks = ",".join("?" for _ in ids)
                rows = db.execute(f"SELECT row, id, state, worker FROM jobs WHERE id IN ({marks})",
                                  ids).fetchall()
            else:
                rows = db.execute("SELECT row, id, state, worker FROM jobs").fetchall()
            done, refused = [], []
            for row, ident, state, worker in rows:
                if states and state not in states:
                    continue
                if state == "running" and worker in alive:
                    refused.append(ident)
                    continue
                if state == "pending":
                    continue
                db.execute("UPDATE jobs SET state='pending', worker=NULL, started_at=NULL, "
                           "finished_at=NULL, elapsed_s=NULL, exit_code=NULL, error='' WHERE row=?",
                           (row,))
                db.execute("INSERT INTO events(at, job, kind, detail) VALUES(?, ?, 'reset', ?)",
                           (now, row, f"was {state}"))
                done.append(ident)
        return done, refused

    def claimable(self, time_left_s: float | None) -> bool:
        """Is there a ready job that fits in the time left?"""
        q = f"SELECT 1 FROM jobs j WHERE {READY}"
        args: tuple[float, ...] = ()
        if time_left_s is not None:
            q += " AND COALESCE(estimate_h, 0) * 3600.0 <= ?"
            args = (time_left_s,)
        return retrying(lambda: self.db.execute(q + " LIMIT 1", args).fetchone() is not None,
                        self.path)


def _check_writable(path: Path) -> None:
    """Refuse a table this process may not write, before anything is read or changed."""
    if not os.access(path, os.W_OK):
        raise StateError("the job table is read-only: no permission to write it (chmod u+w, or "
                         "work on a copy)", file=str(path))
    if not os.access(path.parent, os.W_OK):
        raise StateError(f"the job table's directory {path.parent.absolute()} is read-only, and SQLite writes "
                         "a journal beside the table (move the table, or work on a copy)",
                         file=str(path))


def _insert(db: sqlite3.Connection, table: TableFile, have: dict[str, int]) -> None:
    start = int(db.execute("SELECT COALESCE(MAX(row), 0) + 1 FROM jobs").fetchone()[0])
    rows = {r.id: start + i for i, r in enumerate(table.rows)}
    db.executemany("INSERT INTO jobs(row, id, params, priority, estimate_h, deps) "
                   "VALUES(?, ?, ?, ?, ?, ?)",
                   [(rows[r.id], r.id, json.dumps(list(r.params)), r.priority, r.estimate_h,
                     " ".join(r.deps)) for r in table.rows])
    db.executemany("INSERT INTO deps(job, dep) VALUES(?, ?)",
                   [(rows[r.id], rows.get(d) or have[d]) for r in table.rows for d in r.deps])
