"""Whether a run's store is whole: empty, not SQLite, damaged, cut short, or never completely
created. Read-only; store/run.py's open_run_store asks it before anything is written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from jobauto.core.model import JobState
from jobauto.store.sqlite import connect

SQLITE_MAGIC = b"SQLite format 3\0"
STATES = tuple(s.value for s in JobState)


def damage(path: Path, *, thorough: bool) -> str | None:
    """What makes the run store at PATH unusable, or None when it is whole: empty, not SQLite,
    damaged (with THOROUGH, PRAGMA quick_check and every job's state and dependency list), or
    never completely created. Writes nothing (a read-write connection, when thorough, may roll
    back what a killed monitor left half-written: SQLite's own recovery)."""
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as e:
        return f"the run's state cannot be read ({e.strerror})"
    if not head:
        return "the run's state is empty (0 bytes)"
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        return "the run's state is not an SQLite database any more (overwritten or cut short)"
    try:
        db = connect(path, readonly=not thorough)
        try:
            return _damage(db, path, thorough)
        finally:
            db.close()
    except sqlite3.Error as e:
        return f"the run's state is damaged ({e})"


def _cut_short(path: Path) -> str | None:
    """The file is shorter than its header says (SQLite would read the missing end as zeros).
    Not while a journal is beside it: a monitor killed mid-commit left it for SQLite to undo."""
    if Path(f"{path}-journal").exists():
        return None
    with open(path, "rb") as f:
        head = f.read(100)
        size = f.seek(0, 2)
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    if head[24:28] == head[92:96] and size < page * pages:   # the header's size is valid
        return f"the run's state is cut short ({size} of {page * pages} bytes)"
    return None


def _damage(db: sqlite3.Connection, path: Path, thorough: bool) -> str | None:
    if thorough:
        found = [r[0] for r in db.execute("PRAGMA quick_check(5)")]   # also undoes a killed commit
        if found != ["ok"]:
            return f"the run's state is damaged (quick_check: {found[0].splitlines()[-1]})"
    cut = _cut_short(path)
    if cut:
        return cut
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"meta", "jobs"} <= tables:
        return "the run's state has no jobs table (it was never completely created)"
    meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('schema', 'created', 'tag')"))
    jobs = int(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
    created = meta.get("created")
    if created is None:
        legacy = meta.get("schema", "0").isdigit() and int(meta.get("schema", "0")) < 4
        if not (legacy and "tag" in meta and jobs):
            return "the run's state has no creation record (it was never completely created)"
    elif not created.isdigit() or jobs < int(created):
        return f"the run's state has lost jobs ({jobs} of the {created} it was created with)"
    if thorough:
        marks = ", ".join("?" for _ in STATES)
        try:
            bad = db.execute(f"SELECT COUNT(*) FROM jobs WHERE state NOT IN ({marks}) OR name IS "
                             "NULL OR NOT json_valid(deps)", STATES).fetchone()[0]
        except sqlite3.OperationalError as e:
            if "json_valid" not in str(e):   # an SQLite built without JSON: states only
                raise
            bad = db.execute(f"SELECT COUNT(*) FROM jobs WHERE state NOT IN ({marks}) OR name IS "
                             "NULL", STATES).fetchone()[0]
        if bad:
            return f"the run's state is damaged ({bad} job(s) with an unreadable state or dependencies)"
    return None
