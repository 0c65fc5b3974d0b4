"""What a job script may carry: placeholders (__binpath__ ...) and `#jobauto KEY: ARGS` lines.

Shared by jobmon's tree (filling a copy of init/) and `jobauto render` (writing one)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from jobauto.core.errors import TreeError

PLACEHOLDER = re.compile(r"(?<![A-Za-z0-9_])__([A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*)__(?![A-Za-z0-9_])")
BUILTIN_FLAGS = {"binpath": "--binpath", "pythonpath": "--pythonpath", "maxcore": "--maxcore"}


def _python_dunders() -> frozenset[str]:
    """Names like __init__ that appear in Python code embedded in job scripts: never placeholders."""
    import builtins
    import types

    names: set[str] = {"main", "name", "file", "doc", "all", "version", "author", "path", "spec",
                       "loader", "package", "builtins", "future", "slots", "annotations"}
    for obj in (object, type, int, float, str, list, dict, set, tuple, types.ModuleType,
                BaseException, builtins):
        names.update(n[2:-2] for n in dir(obj) if n.startswith("__") and n.endswith("__"))
    return frozenset(names)


PYTHON_DUNDERS = _python_dunders()


def placeholders(text: str) -> set[str]:
    """Return the placeholder names a script uses (Python dunders excluded)."""
    return {m for m in PLACEHOLDER.findall(text) if m not in PYTHON_DUNDERS or m in BUILTIN_FLAGS}


SCRIPT_DIRECTIVE = re.compile(r"^#jobauto\s+([A-Za-z-]+):(.*)$")
SCRIPT_KEYS = ("walltime-retry",)


def script_directives(text: str, shown: str) -> dict[str, list[str]]:
    """`#jobauto KEY: ARGS` lines of a job script, e.g. `#jobauto walltime-retry: -l h_rt=48:00:00`
    (the qsub arguments added when a job killed at its walltime is tried again)."""
    out: dict[str, list[str]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        m = SCRIPT_DIRECTIVE.match(line)
        if not m:
            continue
        key = m.group(1)
        if key not in SCRIPT_KEYS:
            raise TreeError(f"unknown #jobauto directive {key!r} (known: {', '.join(SCRIPT_KEYS)})",
                            file=shown, line=lineno)
        try:
            out[key] = shlex.split(m.group(2))
        except ValueError as e:
            raise TreeError(f"#jobauto {key}: cannot split the arguments ({e})", file=shown,
                            line=lineno) from None
    return out


def script_directive(path: Path, key: str) -> list[str] | None:
    return script_directives(read_script(path), str(path)).get(key)


def read_script(path: Path) -> str:
    return read_text(path, "job script")


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a job's file; anything that keeps it from being read (a symbolic link to
    nothing, a directory, no permission, bytes that are not UTF-8) is a TreeError naming it."""
    try:  # bytes, then text: no newline translation, so a stray \r is seen where it is
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise TreeError(f"{what} is not UTF-8 text ({e.reason} at byte {e.start})",
                        file=str(path)) from None
    except OSError as e:
        if path.is_symlink() and not path.exists():
            raise TreeError(f"{what} is a symbolic link to {os.readlink(path)!r}, which does not "
                            f"exist", file=str(path)) from None
        raise TreeError(f"cannot read the {what}: {e.strerror or e}", file=str(path)) from None


# Scheduler directives a job script carries, as each scheduler reads them: Grid Engine takes
# `#$` lines anywhere in the file; Slurm and PBS stop at the first command.
ANYWHERE = ("#$",)
HEADER_ONLY = ("#SBATCH", "#PBS")
DIRECTIVES_MAX = 64 << 10   # bytes of directives carried into a wrapper (an argument on the cluster)
DEFAULT_SHELL = "/bin/bash"


def _is_directive(line: str, prefixes: tuple[str, ...]) -> bool:
    return any(line.startswith(p) and (len(line) == len(p) or line[len(p)] in " \t\r")
               for p in prefixes)


def scheduler_directives(text: str, shown: str = "job script") -> list[str]:
    """The `#$`, `#SBATCH` and `#PBS` lines of a job script, verbatim and in order, that its
    scheduler would read: `#SBATCH`/`#PBS` before the first command, `#$` anywhere."""
    out: list[str] = []
    header = True
    for lineno, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if header and stripped and not stripped.startswith("#"):
            header = False
        if _is_directive(line, ANYWHERE) or (header and _is_directive(line, HEADER_ONLY)):
            if "\0" in line:
                raise TreeError("a directive line holds a NUL byte", file=shown, line=lineno)
            out.append(line)
    if sum(len(line.encode()) + 1 for line in out) > DIRECTIVES_MAX:
        raise TreeError(f"the scheduler directives take more than {DIRECTIVES_MAX} bytes",
                        file=shown)
    return out


def interpreter(text: str) -> list[str]:
    """The command that runs a job script whatever its mode: its `#!` line as the kernel reads
    it (the program and at most one argument), else the shell of its `-S` directive (Grid
    Engine, PBS), else bash."""
    first = text.split("\n", 1)[0].rstrip("\r")
    if first.startswith("#!"):
        parts = first[2:].strip().split(None, 1)
        if parts and "\0" not in first:
            return parts
    shell = DEFAULT_SHELL
    for line in scheduler_directives(text):
        try:
            words = shlex.split(line.split(None, 1)[1] if " " in line or "\t" in line else "")
        except ValueError:
            continue
        for flag, value in zip(words, words[1:], strict=False):
            if flag == "-S" and value:
                shell = value.split(",")[0].rsplit(":", 1)[-1] or shell  # [host:]path,...
    return [shell]
