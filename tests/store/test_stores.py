"""What the two stores share, one suite run over both (a run's state, jobauto/store/run.py `Store`,
and a job table, jobauto/store/table.py `TableStore`, over jobauto/store/sqlite.py): the rollback
journal (never WAL: the file may sit on NFS or Lustre), writes in BEGIN IMMEDIATE transactions
that roll back on error and wait for a lock, read-only opens that change nothing, the
refusals: a missing file read-only, a newer schema, an SQLite file that is not theirs, and a
full disk reported as the OSError any local write gives.

Where they differ today, and so nothing is asserted here: a read-write open of a missing file
creates a run's store but is refused for a table (tables are made by TableStore.create); an older
schema is read as it is and upgraded in place for a run (store/test_run.py) but refused for a
table; a file that is not SQLite at all is "not a jobauto job table" for a table
(cli/test_tables.py) but "not an SQLite database any more" for a run, which checks more before
jobmon writes into it (store/run.py `open_run_store`, run/test_opener_faults.py); a newer
schema's message says "upgrade jobauto" for a run and "use a matching jobauto" for a table.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import FAN_IN, write_file

from jobauto.core.errors import StateError
from jobauto.store import Store, TableStore
from jobauto.table import csvfile


def make_run(tmp: Path) -> Path:
    path = tmp / "run" / ".jobauto" / "state.db"
    Store(path).close()   # a read-write open creates a run's store
    return path


def make_table(tmp: Path) -> Path:
    path = tmp / "jobs.db"
    TableStore.create(path, csvfile.read(write_file(tmp, FAN_IN, "jobs.csv")), now=0.0).close()
    return path


@dataclass(frozen=True)
class Backend:
    """One store, and its spelling of what both do."""

    make: Callable[[Path], Path]                               # a new file under tmp; its path
    open: Callable[..., Any]                                   # (path, readonly=False)
    tx: Callable[[Any], AbstractContextManager[sqlite3.Connection]]
    meta: Callable[[Any, str], str | None]


RUN = Backend(make_run, lambda path, readonly=False: Store(path, readonly=readonly),
              lambda s: s.transaction(), lambda s, key: s.get_meta(key))
TABLE = Backend(make_table, lambda path, readonly=False: TableStore(path, readonly=readonly),
                lambda s: s.tx(), lambda s, key: s.meta(key))
PROBE = "INSERT OR REPLACE INTO meta(key, value) VALUES('probe', ?)"   # both keep meta(key, value)


@pytest.fixture(params=[RUN, TABLE], ids=["run", "table"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def path(backend: Backend, tmp_path: Path) -> Path:
    return backend.make(tmp_path)


@pytest.fixture
def store(backend: Backend, path: Path) -> Iterator[Any]:
    s = backend.open(path)
    yield s
    s.close()


def other(path: Path) -> sqlite3.Connection:
    """Another process's connection: no busy wait, transactions by hand."""
    return sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)


def snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(path.parent))


def set_schema(path: Path, version: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema'", (version,))
    db.close()


def test_the_file_uses_the_rollback_journal_never_wal(store: Any, path: Path) -> None:
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert path.read_bytes()[18:20] == b"\x01\x01"   # file format versions: 1 legacy, 2 WAL
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()


def test_a_write_is_one_begin_immediate_transaction_with_a_journal_beside_the_file(
        backend: Backend, store: Any, path: Path) -> None:
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    o = other(path)
    with backend.tx(store) as db:
        # the write lock is taken at BEGIN, before any statement: another writer is refused at once
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            o.execute("BEGIN IMMEDIATE")
        db.execute(PROBE, ("x",))
        assert Path(f"{path}-journal").exists() and not Path(f"{path}-wal").exists()
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
    assert not Path(f"{path}-journal").exists()
    assert o.execute("SELECT value FROM meta WHERE key='probe'").fetchone() == ("x",)
    o.close()


def test_an_error_in_a_transaction_rolls_it_back(backend: Backend, store: Any) -> None:
    with pytest.raises(RuntimeError), backend.tx(store) as db:
        db.execute(PROBE, ("x",))
        raise RuntimeError("boom")
    assert not store.db.in_transaction
    assert backend.meta(store, "probe") is None
    with backend.tx(store) as db:   # and the next one goes through
        db.execute(PROBE, ("y",))
    assert backend.meta(store, "probe") == "y"


def test_a_locked_database_is_waited_for(backend: Backend, store: Any, path: Path) -> None:
    o = other(path)
    o.execute("BEGIN IMMEDIATE")
    o.execute(PROBE, ("theirs",))
    release = threading.Timer(0.5, lambda: o.execute("COMMIT"))
    t0 = time.monotonic()
    release.start()
    try:
        with backend.tx(store) as db:
            assert db.execute("SELECT value FROM meta WHERE key='probe'").fetchone()[0] == "theirs"
            db.execute(PROBE, ("mine",))
    finally:
        release.join()
    assert time.monotonic() - t0 >= 0.4
    assert backend.meta(store, "probe") == "mine"
    o.close()


def test_a_read_only_open_reads_the_latest_writes_and_can_write_nothing(
        backend: Backend, store: Any, path: Path) -> None:
    ro = backend.open(path, readonly=True)
    try:
        assert backend.meta(ro, "probe") is None
        with backend.tx(store) as db:   # a writer commits while the viewer stays open
            db.execute(PROBE, ("x",))
        assert backend.meta(ro, "probe") == "x"
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ro.db.execute(PROBE, ("y",))
    finally:
        ro.close()
    assert backend.meta(store, "probe") == "x"


def test_a_read_only_open_changes_nothing(backend: Backend, path: Path) -> None:
    before = snapshot(path)
    ro = backend.open(path, readonly=True)
    assert backend.meta(ro, "schema") is not None
    ro.close()
    assert snapshot(path) == before


def test_a_read_only_open_of_a_missing_file_is_refused_and_creates_nothing(
        backend: Backend, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "state.db"
    with pytest.raises(StateError) as e:
        backend.open(missing, readonly=True)
    assert e.value.file == str(missing)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("readonly", [False, True], ids=["read-write", "read-only"])
def test_a_newer_schema_is_refused_and_left_as_it_is(backend: Backend, path: Path,
                                                    readonly: bool) -> None:
    set_schema(path, "99")
    before = snapshot(path)
    with pytest.raises(StateError, match="99") as e:
        backend.open(path, readonly=readonly)
    assert e.value.file == str(path)
    assert snapshot(path) == before


def test_a_read_only_open_refuses_an_sqlite_file_that_is_not_theirs(backend: Backend,
                                                                    tmp_path: Path) -> None:
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE notes(text TEXT)")
    db.close()
    before = snapshot(foreign)
    with pytest.raises(StateError) as e:
        backend.open(foreign, readonly=True)
    assert e.value.file == str(foreign)
    assert snapshot(foreign) == before


def test_a_write_a_full_disk_refuses_is_an_oserror_naming_the_file(
        backend: Backend, small_disk: Callable[..., Path]) -> None:
    """SQLite's "database or disk is full" is the OSError any local write gives (ENOSPC, the
    file), so jobmon stops with its one message; the transaction is rolled back, no journal
    is left, and the next write goes through once there is room."""
    import errno
    disk = small_disk("512k")
    path = backend.make(disk)
    s = backend.open(path)
    try:
        with open(disk / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 512)
            except OSError:
                pass
        with pytest.raises(OSError) as e, backend.tx(s) as db:
            db.execute(PROBE, ("x" * 100_000,))
        assert e.value.errno == errno.ENOSPC and e.value.filename == str(path)
        assert not s.db.in_transaction and not Path(f"{path}-journal").exists()
        (disk / "filler").unlink()
        with backend.tx(s) as db:
            db.execute(PROBE, ("y",))
        assert backend.meta(s, "probe") == "y"
    finally:
        s.close()
