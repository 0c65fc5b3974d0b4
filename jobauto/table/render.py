"""Job tables in push mode: one jobmon job directory per CSV row (`jobauto render`).

Each row becomes ``OUT/<job id>/qsub.0`` (the template with the row's parameters filled in) and
``OUT/<job id>/qsub.dependency.0`` (``../<dep id>/qsub.finished.0`` per dependency and a
``#jobauto priority=N estimate=H`` line). Everything is checked before the first file is written;
jobmon fills its own placeholders (``__id__``, ``__binpath__``, ``--define`` keys...) later.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from jobauto.core.deps import DEPENDENCY, FINISHED
from jobauto.core.errors import ConfigError, JobautoError, TableError
from jobauto.core.layout import RENDERED, STATE_DIR
from jobauto.core.model import TableFile, TableRow
from jobauto.core.scripts import BUILTIN_FLAGS, SCRIPT_DIRECTIVE, placeholders, script_directives
from jobauto.table import csvfile as tables

JOB_ID = "0"                      # every rendered job is qsub.0 in its own directory
SCRIPT = "qsub." + JOB_ID
DEPFILE = DEPENDENCY + JOB_ID
QUOTED = "_q"                     # __COLUMN_q__: the value shell-quoted with shlex.quote
NAME_MAX = 255                    # bytes of one path component on common file systems


Part = str | tuple[str, bool]     # template text, or (column, shell-quoted)


@dataclass
class RenderedJob:
    """One row, checked: its directory name and dependency file (the script is made again when
    written, so a table of 100,000 rows does not hold 100,000 scripts in memory)."""

    id: str
    dependency: str
    row: TableRow


@dataclass
class Plan:
    """A validated rendering: the jobs in dependency order and what jobmon will need."""

    table: TableFile
    template: Path
    parts: list[Part]             # the template, split at its column placeholders
    out: Path
    jobs: list[RenderedJob]
    needs: list[str]              # placeholders left for jobmon (sorted), e.g. ["binpath"]
    mode: int                     # permission bits of every qsub.0


def _printable(s: str) -> str:
    return s if s.isprintable() else repr(s)


def read_template(path: Path) -> tuple[str, int]:
    """Return the template's text and the permission bits a job script gets from it."""
    shown = str(path)
    if path.is_dir():
        raise ConfigError("the --template is a directory, not a job script", file=shown)
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode & 0o777
    except OSError as e:
        raise ConfigError(f"cannot read the --template file: {e.strerror}", file=shown) from None
    if data.startswith(b"\xef\xbb\xbf"):
        raise ConfigError("the template starts with a UTF-8 byte-order mark, which hides its #! "
                          "line from the kernel; save it without one", file=shown, line=1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"not UTF-8 text ({e.reason} at byte {e.start})", file=shown,
                          line=line) from None
    if "\x00" in text:
        raise ConfigError("contains a NUL byte: not a job script", file=shown,
                          line=text.count("\n", 0, text.index("\x00")) + 1)
    if "\r\n" in text:
        raise ConfigError("has Windows line endings (CRLF), which bash reads as part of each "
                          "command; convert it, e.g. dos2unix", file=shown,
                          line=text.count("\n", 0, text.index("\r\n")) + 1)
    script_directives(text, shown)
    return text, mode | (mode & 0o444) >> 2     # executable wherever readable


def check_id(ident: str) -> str | None:
    """Say why a job id cannot be a directory name, or return None when it can."""
    if ident in (".", ".."):
        return f"{ident!r} names a directory itself"
    if ident == STATE_DIR:
        return f"{STATE_DIR!r} is jobmon's own state directory"
    if "/" in ident:
        return "contains '/' (a job id is one directory name)"
    if any(unicodedata.category(c) == "Cc" for c in ident):
        return "contains a control character (line break, tab, NUL...)"
    if ident != ident.strip():
        return "starts or ends with white space"
    if ident.startswith("-"):
        return "starts with '-', which commands would take for an option"
    if len(ident.encode("utf-8")) > NAME_MAX:
        return f"is longer than {NAME_MAX} bytes, too long for a directory name"
    return None


def _id_where(tab: TableFile, row: TableRow) -> str:
    if tab.id_mode == "column":
        col = tab.header.index(tables.ID) + 1
        return f"row {row.number}, column {col} ({tables.ID})"
    if tab.id_mode == "first":
        return f"row {row.number}, column {tab.header.index(tab.columns[0]) + 1} ({tab.columns[0]})"
    return f"row {row.number}"


def _check_ids(tab: TableFile) -> None:
    folded: dict[str, TableRow] = {}
    for r in tab.rows:
        why = check_id(r.id)
        if why:
            raise TableError(f"{_id_where(tab, r)}: job id {r.id!r} cannot be a directory name: "
                             f"{why}", file=tab.path, line=r.line)
        key = unicodedata.normalize("NFC", r.id).casefold()
        other = folded.setdefault(key, r)
        if other is not r:
            raise TableError(f"{_id_where(tab, r)}: job id {r.id!r} differs from {other.id!r} "
                             f"(row {other.number}, line {other.line}) only in case or Unicode "
                             f"form: they would be one directory on macOS and Windows",
                             file=tab.path, line=r.line)


def _pattern(columns: list[str]) -> re.Pattern[str]:
    """`__COLUMN__` or `__COLUMN_q__`, with the same word boundaries as jobmon's placeholders."""
    alt = "|".join(re.escape(c) for c in sorted(set(columns), key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_])__({alt})({QUOTED})?__(?![A-Za-z0-9_])")


def _check_template(tab: TableFile, template: Path, text: str, pat: re.Pattern[str]) -> None:
    lines = text.splitlines()

    def line_of(token: str) -> int:
        return next((i for i, ln in enumerate(lines, 1) if token in ln), 1)
    cols = set(tab.columns)
    if "id" in cols and "id" in placeholders(text):
        raise ConfigError(f"__id__ is jobmon's placeholder for the job's ID (the {JOB_ID} of "
                          f"{SCRIPT}, which names its marker files), but {tab.path} has a column "
                          f"'id'; rename that column", file=str(template), line=line_of("__id__"))
    for m in pat.finditer(text):
        name = m.group(1)
        if m.group(2) is None and name.endswith(QUOTED) and name[:-len(QUOTED)] in cols:
            raise ConfigError(f"{m.group(0)} is ambiguous: the CSV has both a column {name!r} "
                              f"and a column {name[:-len(QUOTED)]!r}; rename one",
                              file=str(template), line=line_of(m.group(0)))


def _split(text: str, pat: re.Pattern[str]) -> list[Part]:
    parts: list[Part] = []
    at = 0
    for m in pat.finditer(text):
        parts += [text[at:m.start()], (m.group(1), m.group(2) is not None)]
        at = m.end()
    return [*parts, text[at:]]


def _fill(tab: TableFile, row: TableRow, parts: list[Part], check: bool = False) -> str:
    values = dict(zip(tab.columns, row.params, strict=True))
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        name, quoted = part
        value = values[name]
        found = sorted(placeholders(value)) if check else []
        if found:
            col = tab.header.index(name) + 1
            raise TableError(f"row {row.number}, column {col} ({name}): the value contains "
                             f"__{found[0]}__, which jobmon would take for a placeholder of its "
                             f"own in {row.id}/{SCRIPT}", file=tab.path, line=row.line)
        out.append(shlex.quote(value) if quoted else value)
    return "".join(out)


def _dependency(tab: TableFile, row: TableRow) -> str:
    lines = [f"# jobauto render: row {row.number} (line {row.line}) of "
             f"{_printable(Path(tab.path).name)}"]
    settings = ([f"priority={row.priority}"] if row.priority else []) + \
        ([f"estimate={row.estimate_h!r}"] if row.estimate_h is not None else [])
    if settings:
        lines.append("#jobauto " + " ".join(settings))
    lines += [f"../{d}/{FINISHED}{JOB_ID}" for d in row.deps]
    return "".join(ln + "\n" for ln in lines)


def _in_dependency_order(rows: list[TableRow]) -> list[TableRow]:
    """Rows with every row after its dependencies, otherwise in file order, so a running jobmon
    that watches the output directory never sees a job whose dependency does not exist yet.
    (table.read has rejected cycles.)"""
    by_id = {r.id: r for r in rows}
    placed: set[str] = set()
    out: list[TableRow] = []
    for top in rows:
        stack: list[tuple[TableRow, int]] = [(top, 0)]   # iterative: chains may be long
        while stack:
            r, i = stack.pop()
            if r.id in placed:
                continue
            if i < len(r.deps):
                stack.append((r, i + 1))
                if r.deps[i] not in placed:
                    stack.append((by_id[r.deps[i]], 0))
                continue
            placed.add(r.id)
            out.append(r)
    return out


def _check_out(out: Path, jobs: list[RenderedJob]) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError("the --out path exists and is not a directory", file=str(out))
    taken = [j.id for j in jobs if os.path.lexists(out / j.id)]
    if taken:
        shown = ", ".join(taken[:5]) + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
        raise ConfigError(f"{len(taken)} job director{'y' if len(taken) == 1 else 'ies'} already "
                          f"exist{'s' if len(taken) == 1 else ''}: {shown}; render into a new "
                          f"directory or remove them first", file=str(out))


def plan(csv: Path, template: Path, out: Path) -> Plan:
    """Read and check the CSV, the template and the output directory; write nothing."""
    tab = tables.read(csv)
    if not tab.rows:
        raise TableError("no rows: nothing to render", file=str(csv), line=1)
    _check_ids(tab)
    text, mode = read_template(template)
    pat = _pattern(tab.columns) if tab.columns else re.compile(r"(?!)")
    _check_template(tab, template, text, pat)
    parts = _split(text, pat)
    used = {name + (QUOTED if quoted else "") for name, quoted in
            (p for p in parts if not isinstance(p, str))}
    # values cannot add placeholders (_fill checks), so what is left is the template's own
    needs = placeholders(text) - used - {"id"}
    # a value inside a `#jobauto walltime-retry:` line must still split as shell words
    directives = [ln for ln in text.splitlines() if SCRIPT_DIRECTIVE.match(ln) and pat.search(ln)]
    jobs: list[RenderedJob] = []
    for row in _in_dependency_order(tab.rows):
        script = _fill(tab, row, parts, check=True)
        if directives:
            script_directives(script, f"{template} (for row {row.number}, line {row.line} of "
                                      f"{tab.path})")
        jobs.append(RenderedJob(row.id, _dependency(tab, row), row))
    _check_out(out, jobs)
    return Plan(tab, template, parts, out, jobs, sorted(needs), mode)


def _write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.jobauto-tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write(p: Plan) -> None:
    """Write the planned job directories; on an I/O error remove what was written and raise."""
    made: list[Path] = []
    missing = [d for d in (p.out, *p.out.parents) if not d.exists()]
    try:
        p.out.mkdir(parents=True, exist_ok=True)
        for job in p.jobs:
            d = p.out / job.id
            d.mkdir()
            made.append(d)
            _write(d / SCRIPT, _fill(p.table, job.row, p.parts), p.mode)
            # the dependency file last: a job exists for jobmon only once both files do
            _write(d / DEPFILE, job.dependency, 0o644)
        # jobmon's --arrays defaults to on for the jobs this mark names (run/arrays.py): every
        # row rendered into p.out so far, so that hand-made jobs beside them are never batched
        mark = p.out / RENDERED
        try:
            before = [ln for ln in mark.read_text(encoding="utf-8").splitlines()
                      if ln and not ln.startswith("#")]
        except (OSError, UnicodeDecodeError):
            before = []
        rows = sorted(set(before) | {job.id for job in p.jobs})
        _write(mark, f"# job directories rendered by jobauto render (last from "
               f"{os.path.basename(p.table.path)}); jobmon submits them as arrays\n"
               + "".join(r + "\n" for r in rows), 0o644)
    except OSError as e:
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
        for d in missing:
            try:
                d.rmdir()
            except OSError:
                break
        what = f"{e.filename}: " if e.filename else ""
        raise JobautoError(f"cannot write {what}{e.strerror}; nothing was left behind",
                           file=str(p.out)) from None


def render(csv: Path, template: Path, out: Path) -> Plan:
    """Check everything, then write one job directory per row of the CSV."""
    p = plan(csv, template, out)
    write(p)
    return p


def jobmon_flags(p: Plan) -> list[str]:
    """The flags jobmon will need for the placeholders left in the scripts."""
    flags = []
    for key in sorted(p.needs, key=lambda k: (k not in BUILTIN_FLAGS, k)):
        flag = BUILTIN_FLAGS.get(key)
        if flag:
            flags.append(f"{flag}=VALUE")
            continue
        close = difflib.get_close_matches(key, p.table.columns, n=1)
        hint = f" (not a column of the CSV; did you mean __{close[0]}__?)" if close else ""
        flags.append(f"--define {key}=VALUE{hint}")
    return flags

