"""The job tree of a run directory: discovering jobs, reading dependency files, placeholders."""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jobauto.core.config import setting
from jobauto.core.deps import DEPENDENCY
from jobauto.core.errors import ConfigError, TreeError
from jobauto.core.layout import STATE_DIR
from jobauto.core.scripts import (
    BUILTIN_FLAGS,
    placeholders,
    read_script,
    read_text,
    script_directives,
)


@dataclass(frozen=True)
class JobSpec:
    """A job found in a tree: its name (path of qsub.ID), dependency paths and directives."""

    name: str
    deps: tuple[str, ...]
    priority: int = 0
    estimate_h: float | None = None


def _natural_key(s: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def iter_job_files(root: Path, subdir: str = "") -> Iterator[str]:
    """Yield job names (``dir/qsub.ID``) under root/subdir in a stable, natural order."""
    top = root / subdir if subdir else root
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted((d for d in dirnames if d != STATE_DIR), key=_natural_key)
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel.replace(os.sep, "/")
        present = set(filenames)
        for f in sorted(filenames, key=_natural_key):
            if f.startswith(DEPENDENCY) and len(f) > len(DEPENDENCY):
                ident = f[len(DEPENDENCY):]
                if "qsub." + ident in present:
                    yield posixpath.join(rel, "qsub." + ident) if rel else "qsub." + ident


def check_name(name: str, where: str) -> None:
    if "\n" in name or "\r" in name:
        raise TreeError(f"job name {name!r} contains a line break; rename it", file=where)


def parse_dependency(root: Path, name: str, text: str | None = None) -> JobSpec:
    """Read the dependency file of job `name`; paths become relative to the run directory."""
    d = posixpath.dirname(name)
    ident = posixpath.basename(name)[len("qsub."):]
    rel_file = posixpath.join(d, DEPENDENCY + ident) if d else DEPENDENCY + ident
    shown = str(root / rel_file)
    check_name(name, shown)
    if text is None:
        text = read_text(root / rel_file, "dependency file")
    if text.startswith(BOM):  # docs/decisions.md: a leading byte-order mark is dropped
        text = text[1:]
    deps: list[str] = []
    priority, estimate = 0, None
    # lines end at \n only (\r\n too), so that line numbers are an editor's
    for lineno, raw in enumerate(text.split("\n"), 1):
        if "\x00" in raw:
            raise TreeError(f"a NUL byte at column {raw.index(chr(0)) + 1}: not a text file",
                            file=shown, line=lineno)
        line = raw.strip()
        if line.startswith("#jobauto"):
            line = _content(raw, shown, lineno)
            priority, estimate = _directive(line, shown, lineno, priority, estimate)
            continue
        if not line or line.startswith("#"):
            continue
        line = _content(raw, shown, lineno)
        if line.startswith("/") or line.startswith("~"):
            raise TreeError(f"dependency path {line!r} is absolute; write it relative to this file",
                            file=shown, line=lineno)
        path = posixpath.normpath(posixpath.join(d, line))
        if path == ".." or path.startswith("../") or path == ".":
            raise TreeError(f"dependency path {line!r} leaves the run directory", file=shown, line=lineno)
        if path == STATE_DIR or path.startswith(STATE_DIR + "/"):
            raise TreeError(f"dependency path {line!r} points into jobauto's own state", file=shown,
                            line=lineno)
        deps.append(path)
    return JobSpec(name, tuple(deps), priority, estimate)


BOM = "\ufeff"
COMMENT = re.compile(r"\s#")  # a comment after a path: `qsub.finished.0   # the step before`
# control and format characters (zero-width spaces and joiners, byte-order marks, direction
# marks), surrogates, line and paragraph separators; spaces other than " " are checked apart
INVISIBLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}
CONTROL = {"\t": "TAB", "\r": "CARRIAGE RETURN", "\x0b": "VERTICAL TAB", "\x0c": "FORM FEED"}


def _content(raw: str, shown: str, lineno: int) -> str:
    """The line without white space around it and without a comment after it; a character
    that cannot be seen in an editor (zero-width, byte-order mark, control, a space that is not
    a space) is refused: inside a path it makes a dependency that never comes."""
    lead = len(raw) - len(raw.lstrip())
    body = COMMENT.split(raw.strip(), maxsplit=1)[0].rstrip()
    for i, ch in enumerate(body):
        kind = unicodedata.category(ch)
        if kind in INVISIBLE or (kind == "Zs" and ch != " "):
            what = CONTROL.get(ch, "") or unicodedata.name(ch, "a control character")
            if ch == BOM:
                what += ", a byte-order mark"
            raise TreeError(f"invisible character U+{ord(ch):04X} ({what}) at column "
                            f"{lead + i + 1}: it would become part of the dependency and never "
                            f"be met; delete it", file=shown, line=lineno)
    return body


def _directive(line: str, shown: str, lineno: int, priority: int,
               estimate: float | None) -> tuple[int, float | None]:
    for item in line[len("#jobauto"):].split():
        key, _, value = item.partition("=")
        if key in ("priority", "estimate"):
            got = setting(key, value, name=f"#jobauto {key}", file=shown, line=lineno,
                          error=TreeError)
            if key == "priority":
                priority = int(got)
            else:
                estimate = float(got)
        else:
            raise TreeError(f"unknown #jobauto setting {key!r} (known: priority, estimate)",
                            file=shown, line=lineno)
    return priority, estimate


def discover(root: Path, subdir: str = "") -> list[JobSpec]:
    """Find and parse every job under root (a run directory or init/)."""
    return [parse_dependency(root, name) for name in iter_job_files(root, subdir)]


def check_placeholders(root: Path, jobs: list[JobSpec], values: dict[str, str]) -> None:
    """Raise ConfigError naming the file and flag of the first placeholder that has no value."""
    for job in jobs:
        path = root / job.name
        text = read_script(path)
        script_directives(text, str(path))
        for key in sorted(placeholders(text)):
            if key == "id" or key in values:
                continue
            flag = BUILTIN_FLAGS.get(key, f"--define {key}=VALUE")
            lineno = next(i for i, ln in enumerate(text.splitlines(), 1) if f"__{key}__" in ln)
            raise ConfigError(f"placeholder __{key}__ has no value: pass {flag}", file=str(path),
                              line=lineno)


def substitute(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"__{key}__", value)
    return text


def fill_job(root: Path, name: str, values: dict[str, str], source: Path | None = None) -> None:
    """Fill the placeholders of one job script (read from SOURCE, default the script itself) and
    make it executable. A job script or dependency file that is a symbolic link becomes a
    regular file of the same content: a link's target (a shared template) is never written."""
    path = root / name
    src = source or path
    ident = posixpath.basename(name)[len("qsub."):]
    text = read_script(src)
    new = substitute(text, {**values, "id": ident})
    mode = (src.stat().st_mode & 0o7777) | 0o100
    if new != text or path.is_symlink():
        _replace(path, new.encode("utf-8"), mode)
    else:
        path.chmod(mode)
    dep = path.with_name(DEPENDENCY + ident)
    if dep.is_symlink():
        dep_src = (source.with_name(DEPENDENCY + ident) if source is not None else dep)
        data = read_text(dep_src, "dependency file").encode("utf-8")
        _replace(dep, data, dep_src.stat().st_mode & 0o7777)


def _replace(path: Path, data: bytes, mode: int) -> None:
    """Put DATA at PATH as a new regular file: a symbolic link there is replaced, never followed."""
    tmp = path.with_name(f".{path.name}.jobauto-tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise TreeError(f"cannot write the filled job file: {e.strerror or e}", file=str(path)) from None


def copy_init(init: Path, date: Path, jobs: list[JobSpec], values: dict[str, str]) -> None:
    """Copy init/ to DATE/ and fill every job's placeholders (validation happened before). Other
    symbolic links are copied as links; a job's script and dependency file become regular files,
    filled from init/'s content."""
    shutil.copytree(init, date, symlinks=True, ignore=shutil.ignore_patterns(STATE_DIR))
    for job in jobs:
        fill_job(date, job.name, values, source=init / job.name)


def validate_tree(root: Path, values: dict[str, str]) -> list[JobSpec]:
    """Discover and check a tree completely; raise on the first problem, change nothing."""
    if not root.is_dir():
        raise TreeError("no such directory: prepare the job tree there first", file=str(root))
    jobs = discover(root)
    if not jobs:
        raise TreeError("no jobs found: a job is a file qsub.ID with a sibling qsub.dependency.ID",
                        file=str(root))
    check_placeholders(root, jobs, values)
    return jobs
