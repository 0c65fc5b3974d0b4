"""Job-table operations behind `jobauto import|add|export|reset` (and `db_util`)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TextIO

from jobauto.core.errors import ConfigError, StateError
from jobauto.core.model import JobState, TableJob
from jobauto.store import TableStore
from jobauto.table import csvfile as csvtable

STATES = [s.value for s in JobState]
# OWASP "CSV injection": a spreadsheet takes a cell that starts with one of these for a formula
# (the full-width forms too: Excel with a Japanese input method converts them)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def default_db(csv: Path) -> Path:
    return csv.with_suffix(".db")


def default_csv(db: Path) -> Path:
    return db.with_suffix(".csv")


def import_csv(csv: Path, db: Path | None = None, *, unsafe_fs: bool = False) -> tuple[Path, int]:
    """Create a table from a CSV (validated completely first). Returns (db, number of jobs)."""
    db = db or default_db(csv)
    if db.exists():
        raise StateError(f"already exists; add the jobs with: jobauto add {db} {csv}", file=str(db))
    table = csvtable.read(csv)
    TableStore.create(db, table, now=time.time(), unsafe_fs=unsafe_fs).close()
    return db, len(table.rows)


def add_csv(db: Path, csv: Path, *, unsafe_fs: bool = False) -> int:
    store = TableStore(db, unsafe_fs=unsafe_fs)
    try:
        table = csvtable.read(csv, existing=store.ids(), columns=store.columns(),
                              first_row=store.next_row())
        return store.add(table, now=time.time())
    finally:
        store.close()


def check_states(states: list[str], flag: str = "--status") -> list[str]:
    for s in states:
        if s not in STATES:
            raise ConfigError(f"unknown state {s!r} (choose from {', '.join(STATES)})", flag=flag)
    return states


def export(db: Path, out: Path | None = None, states: list[str] | tuple[str, ...] = (), *,
           stream: TextIO | None = None, spreadsheet_safe: bool = False) -> tuple[Path, int]:
    """Write the table as CSV (to STREAM when given, else to OUT): the imported header (an id
    column added when ids were row numbers), then the outcome columns. The file imports again
    as the same jobs, unless SPREADSHEET_SAFE quoted formula-like cells (safe_cell)."""
    states = check_states(list(states))
    out = out or default_csv(db)
    store = TableStore(db, readonly=True)
    try:
        header = store.header()
        columns = store.columns()
        jobs = store.jobs(states)
        id_mode = store.meta("id_mode")
    finally:
        store.close()
    user_index = {c: i for i, c in enumerate(columns)}
    head = [h for h in header if h not in csvtable.OUTPUT]
    if id_mode == "row" and csvtable.ID not in head:
        head = [csvtable.ID, *head]
    head_out = [*head, *csvtable.OUTPUT]
    records = [_record(j, head, user_index) for j in jobs]
    if spreadsheet_safe:
        head_out = [safe_cell(c) for c in head_out]
        records = [[safe_cell(c) for c in rec] for rec in records]
    if stream is None:
        csvtable.write(out, head_out, records)
    else:
        csvtable.write_rows(stream, [head_out, *records])
    return out, len(jobs)


def safe_cell(cell: str) -> str:
    """CELL as a spreadsheet shows text and never runs it: a single quote before a formula-like
    start; a plain number (-1.5, +3, -2e-3) is not a formula and stays a number."""
    if cell.startswith(FORMULA_START) and not NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def _record(job: TableJob, head: list[str], user_index: dict[str, int]) -> list[str]:
    reserved = {csvtable.ID: job.id, csvtable.PRIORITY: str(job.priority),
                csvtable.ESTIMATE: "" if job.estimate_h is None else f"{job.estimate_h:g}",
                csvtable.DEPENDS: " ".join(job.deps)}
    rec = [reserved[h] if h in reserved else job.params[user_index[h]] for h in head]
    elapsed = "" if job.elapsed_s is None else f"{job.elapsed_s:.3f}"
    code = "" if job.exit_code is None else str(job.exit_code)
    return [*rec, job.state.value, code, elapsed, str(job.attempts), job.error]


def reset(db: Path, ids: list[str], states: list[str], *, unsafe_fs: bool = False
          ) -> tuple[list[str], list[str], list[str]]:
    """Make jobs pending. Default: the jobs in error. Returns (reset, refused running, unknown)."""
    states = check_states(states) if states else ([] if ids else ["error"])
    store = TableStore(db, unsafe_fs=unsafe_fs)
    try:
        known = store.ids()
        unknown = [i for i in ids if i not in known]
        if unknown and len(unknown) == len(ids):
            raise ConfigError(f"no such job id(s): {', '.join(unknown[:10])}", flag="JOB")
        done, refused = store.reset([i for i in ids if i in known], states, time.time())
        return done, refused, unknown
    finally:
        store.close()
