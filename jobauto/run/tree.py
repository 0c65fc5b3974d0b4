"""The job tree of a run directory: discovering jobs, reading dependency files, placeholders."""

from __future__ import annotations

import math
import os
import posixpath
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jobauto.core.deps import DEPENDENCY
from jobauto.core.errors import ConfigError, TreeError
from jobauto.core.layout import STATE_DIR
from jobauto.core.scripts import (
    BUILTIN_FLAGS,
    placeholders,
    read_script,
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
        try:
            text = (root / rel_file).read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise TreeError(f"not UTF-8 text ({e.reason} at byte {e.start})", file=shown) from None
    deps: list[str] = []
    priority, estimate = 0, None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#jobauto"):
            priority, estimate = _directive(line, shown, lineno, priority, estimate)
            continue
        if not line or line.startswith("#"):
            continue
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


# A dependency file may come from a job (one created on the cluster): its numbers are bounded
# before they reach the store, whose integers are 64-bit.
PRIORITY_RANGE = (-10 ** 9, 10 ** 9)


def _directive(line: str, shown: str, lineno: int, priority: int,
               estimate: float | None) -> tuple[int, float | None]:
    for item in line[len("#jobauto"):].split():
        key, _, value = item.partition("=")
        try:
            if key == "priority":
                priority = int(value)
                if not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
                    raise TreeError(f"#jobauto priority={value} is out of range (from "
                                    f"{PRIORITY_RANGE[0]} to {PRIORITY_RANGE[1]})", file=shown,
                                    line=lineno)
            elif key == "estimate":
                estimate = float(value)
                if not math.isfinite(estimate) or estimate < 0:
                    raise TreeError(f"#jobauto estimate={value} is not a number of hours",
                                    file=shown, line=lineno)
            else:
                raise TreeError(f"unknown #jobauto setting {key!r} (known: priority, estimate)",
                                file=shown, line=lineno)
        except ValueError:
            raise TreeError(f"#jobauto {key}={value[:40]!r} is not a number", file=shown,
                            line=lineno) from None
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


def fill_job(root: Path, name: str, values: dict[str, str]) -> None:
    """Replace the placeholders of one job script in place and make it executable."""
    path = root / name
    ident = posixpath.basename(name)[len("qsub."):]
    text = read_script(path)
    new = substitute(text, {**values, "id": ident})
    if new != text:
        path.write_text(new, encoding="utf-8")
    path.chmod(path.stat().st_mode | 0o100)


def copy_init(init: Path, date: Path, jobs: list[JobSpec], values: dict[str, str]) -> None:
    """Copy init/ to DATE/ and fill every job's placeholders (validation happened before)."""
    shutil.copytree(init, date, symlinks=True, ignore=shutil.ignore_patterns(STATE_DIR))
    for job in jobs:
        fill_job(date, job.name, values)


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
