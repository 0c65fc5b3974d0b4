"""Job-table CSV files: read and validate completely (nothing is written before), and write.

The header is user parameter columns plus optional reserved columns (SPEC "Job tables"). Every
message names the file, the line, and the row and column it is about. Column names are data:
they are kept in order and never reach SQL.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from jobauto.core.config import INTEGER, setting, shorten
from jobauto.core.deps import Graph
from jobauto.core.errors import TableError
from jobauto.core.model import TableFile, TableRow

ID = "JOBSCHEDULER_JOB_ID"
PRIORITY = "JOBSCHEDULER_PRIORITY"
ESTIMATE = "JOBSCHEDULER_ESTIMATE_TIME"
DEPENDS = "JOBSCHEDULER_DEPENDS_ON"
RESERVED = (ID, PRIORITY, ESTIMATE, DEPENDS)
# Written by export; accepted (and ignored) by import, so an exported file imports again.
STATUS = "JOBSCHEDULER_STATUS"
OUTPUT = (STATUS, "JOBSCHEDULER_EXIT_CODE", "JOBSCHEDULER_ELAPSED", "JOBSCHEDULER_ATTEMPTS",
          "JOBSCHEDULER_ERROR")
PREFIX = "JOBSCHEDULER_"

BOMS = {b"\xef\xbb\xbf": "UTF-8", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def _where(row: int, col: int, name: str) -> str:
    return f"row {row}, column {col} ({_label(name)})"


def _label(text: str) -> str:
    """A column name or id as a one-line message shows it: as it is, or quoted when it holds a
    line break or another character that cannot be seen."""
    return text if text.isprintable() else repr(text)


def _decode(path: Path, data: bytes) -> str:
    for bom, kind in BOMS.items():
        if data.startswith(bom):
            fix = (f"; remove it, e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' {path}" if kind == "UTF-8"
                   else "; save the file as UTF-8")
            raise TableError(f"row 0, column 1: the file starts with a {kind} byte-order mark "
                             f"(as spreadsheet programs write); it would become part of the first "
                             f"column's name{fix}", file=str(path), line=1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise TableError(f"byte 0x{data[e.start]:02x} at column {col} (character position) is not "
                         f"UTF-8; save the file as UTF-8", file=str(path), line=line) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise TableError("contains a NUL byte: not a text CSV file", file=str(path), line=line)
    return text


def _records(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """(line, fields) of every non-blank record, header first."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    out: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for rec in reader:
            if rec and any(f.strip() for f in rec):
                out.append((line, rec))
            line = reader.line_num + 1
    except csv.Error as e:
        raise TableError(f"malformed CSV ({e})", file=str(path), line=reader.line_num) from None
    return out


def _header(path: Path, line: int, header: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        if not name.strip():
            raise TableError(f"column {i} of the header has no name", file=str(path), line=line)
        if name != name.strip() and name.strip().startswith(PREFIX):
            raise TableError(f"column {i} ({name!r}) has spaces around its name", file=str(path),
                             line=line)
        if name.startswith(PREFIX) and name not in RESERVED and name not in OUTPUT:
            raise TableError(f"column {i} ({_label(name)}): unknown reserved column (known: "
                             f"{', '.join(RESERVED)})", file=str(path), line=line)
        if name in seen:
            raise TableError(f"column {i} ({_label(name)}) repeats column {seen[name]}", file=str(path),
                             line=line)
        seen[name] = i


def read(path: Path, *, existing: dict[str, int] | None = None,
         columns: list[str] | None = None, first_row: int = 1) -> TableFile:
    """Read and validate a job CSV. To add to a table, pass its ids (`existing`: id -> row), its
    user columns (the file must have the same, in any order) and the row number to start at."""
    existing = existing or {}
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TableError(f"cannot read: {e.strerror}", file=str(path)) from None
    recs = _records(path, _decode(path, data))
    if not recs:
        raise TableError("empty file: the first line must be the header", file=str(path), line=1)
    hline, header = recs[0]
    _header(path, hline, header)
    user = [i for i, n in enumerate(header) if not n.startswith(PREFIX)]
    names = [header[i] for i in user]
    if columns is not None and set(names) != set(columns):
        missing = [c for c in columns if c not in names]
        extra = [c for c in names if c not in columns]
        raise TableError("the parameter columns differ from the table's"
                         + (f"; missing: {', '.join(map(_label, missing))}" if missing else "")
                         + (f"; not in the table: {', '.join(map(_label, extra))}" if extra else ""),
                         file=str(path), line=hline)
    order = [user[names.index(c)] for c in columns] if columns is not None else user
    col = {n: i for i, n in enumerate(header)}

    rows: list[TableRow] = []
    for number, (line, rec) in enumerate(recs[1:], 1):
        if len(rec) != len(header):
            raise TableError(f"row {number} has {len(rec)} fields, the header has {len(header)}",
                             file=str(path), line=line)
        rows.append(_row(path, line, number, rec, col, order))

    table = TableFile(str(path), header, [header[i] for i in order], "row", rows)
    _assign_ids(table, col, existing, first_row)
    _check_deps(table, col, existing)
    return table


def _row(path: Path, line: int, number: int, rec: list[str], col: dict[str, int],
         order: list[int]) -> TableRow:
    def err(name: str, msg: str) -> TableError:
        return TableError(f"{_where(number, col[name] + 1, name)}: {msg}", file=str(path), line=line)

    def checked(name: str, key: str, raw: str) -> float:
        # the range of every numeric setting is core.config's (SQLite's INTEGER ends at 2**63)
        return setting(key, raw, name=_where(number, col[name] + 1, name), file=str(path),
                       line=line, error=TableError)

    priority = 0
    if PRIORITY in col and rec[col[PRIORITY]].strip():
        raw = rec[col[PRIORITY]].strip()
        try:
            int(raw)
        except ValueError:  # also past Python's digit limit: then the range check says so
            if not INTEGER.fullmatch(raw):
                raise err(PRIORITY, f"{shorten(raw)!r} is not an integer (higher runs first)") from None
        priority = int(checked(PRIORITY, "priority", raw))
    estimate = None
    if ESTIMATE in col and rec[col[ESTIMATE]].strip():
        raw = rec[col[ESTIMATE]].strip()
        try:
            estimate = float(raw)
        except ValueError:
            raise err(ESTIMATE, f"{shorten(raw)!r} is not a number of hours") from None
        if not math.isfinite(estimate) or estimate < 0:
            raise err(ESTIMATE, f"{shorten(raw)!r} is not a non-negative number of hours")
        estimate = float(checked(ESTIMATE, "estimate", raw))
    deps = tuple(dict.fromkeys(rec[col[DEPENDS]].split())) if DEPENDS in col else ()
    ident = rec[col[ID]].strip() if ID in col else ""
    if ID in col:
        if not ident:
            raise err(ID, "empty job id")
        if any(c.isspace() for c in ident):
            raise err(ID, f"job id {ident!r} contains white space (dependencies are "
                          f"space-separated ids)")
    return TableRow(ident, tuple(rec[i] for i in order), priority, estimate, deps, line, number)


def _assign_ids(table: TableFile, col: dict[str, int], existing: dict[str, int], first_row: int) -> None:
    path = table.path
    if ID in col:
        table.id_mode = "column"
        seen: dict[str, TableRow] = {}
        for r in table.rows:
            where = _where(r.number, col[ID] + 1, ID)
            if r.id in seen:
                raise TableError(f"{where}: duplicate job id {r.id!r} (also row {seen[r.id].number}, "
                                 f"line {seen[r.id].line})", file=path, line=r.line)
            if r.id in existing:
                raise TableError(f"{where}: job id {r.id!r} is already in the table (row "
                                 f"{existing[r.id]})", file=path, line=r.line)
            seen[r.id] = r
        return
    firsts = [r.params[0] for r in table.rows] if table.columns else []
    if (firsts and all(v.strip() for v in firsts) and len(set(firsts)) == len(firsts)
            and not any(v in existing for v in firsts)):
        table.id_mode = "first"
        for r in table.rows:
            r.id = r.params[0]
        return
    table.id_mode = "row"
    for i, r in enumerate(table.rows):
        r.id = str(first_row + i)
        if r.id in existing:
            raise TableError(f"row {r.number}: its id would be its row number in the table, "
                             f"{r.id!r}, which is already a job id; add a {ID} column",
                             file=path, line=r.line)


def _check_deps(table: TableFile, col: dict[str, int], existing: dict[str, int]) -> None:
    path = table.path
    ids = {r.id for r in table.rows} | set(existing)
    how = {"column": f"the {ID} column",
           "first": f"the first column's values ({_label(table.columns[0]) if table.columns else ''}), "
                    f"because they are unique",
           "row": "row numbers, because the first column's values are not unique"}[table.id_mode]
    for r in table.rows:
        for d in r.deps:
            if d not in ids:
                raise TableError(f"{_where(r.number, col[DEPENDS] + 1, DEPENDS)}: unknown job id "
                                 f"{d!r} (ids here are {how})", file=path, line=r.line)
    g = Graph(by_id=True)
    for r in table.rows:
        g.add(r.id, r.deps)
    for d in existing:
        if d not in g.nodes:
            g.add(d, ())
    cycle = g.find_cycle()
    if cycle:
        by_id = {r.id: r for r in table.rows}
        first = by_id[cycle[0]]
        shown = " -> ".join(f"{_label(c)} (row {by_id[c].number})" for c in cycle)
        raise TableError(f"{_where(first.number, col[DEPENDS] + 1, DEPENDS)}: dependency cycle: "
                         f"{shown}", file=path, line=first.line)


def write(path: Path, header: list[str], records: Iterable[list[str]]) -> None:
    """Write a CSV atomically: a reader sees the old file or the whole new one. A target that is
    not a regular file (/dev/stdout, a pipe) is written directly."""
    path = Path(path)
    if path.exists() and not path.is_file():
        with open(path, "w", encoding="utf-8", newline="") as f:
            write_rows(f, [header, *records])
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            write_rows(f, [header, *records])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_rows(f: TextIO, rows: Iterable[list[str]]) -> None:
    """Write CSV rows; a row with a carriage return in a cell is quoted whole: csv quotes a CR
    only when it is part of the line ending, and an unquoted CR ends the row for every reader
    (docs/failure-modes.md "Job tables")."""
    plain = csv.writer(f, lineterminator="\n")
    quoted = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        (quoted if any("\r" in c for c in row) else plain).writerow(row)
