"""`jobauto workers`, decided before anything is sent: what the options mean (checked, each
error naming its flag), the walltime rule (--max-runtime = walltime - a safety margin), and the
batch script every task of the array runs. No I/O here; arrays.py checks on the cluster, writes
the script and submits it.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from jobauto.core.errors import ConfigError

WALLTIME = re.compile(r"(?:(\d+)-)?(\d+):([0-5]?\d):([0-5]?\d)")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,62}")
# The batch task stops at --max-runtime = walltime - safety: 5 % of the walltime, at least 30 s
# (Python's start, the last jobs' SIGTERM and their return to pending), at most 5 minutes.
SAFETY_FRACTION = 0.05
SAFETY_MIN_S = 30
SAFETY_MAX_S = 300


@dataclass
class WorkersOptions:
    db: str | None
    command: list[str]
    n: int = 1
    remote: str | None = None
    user: str | None = None
    ssh_config: Path | None = None
    scheduler: str = "auto"
    scheduler_bin: list[str] = field(default_factory=list)
    walltime: str | None = None
    margin_s: float = 0.0
    parallel: int = 1
    named_args: bool = False
    qsub_args: list[str] = field(default_factory=list)
    jobauto: str = "jobauto"
    workdir: str | None = None
    log_dir: str | None = None
    setup: list[str] = field(default_factory=list)
    name: str | None = None
    dry_run: bool = False
    unsafe_fs: bool = False       # jobauto run/status --unsafe-fs on the cluster


@dataclass
class Plan:
    """What the options mean, checked before anything is sent."""

    db: str                      # as given, ~/ and relative paths still to resolve
    workdir: str
    log_dir: str
    command: list[str]
    jobauto: list[str]
    job_name: str
    walltime_s: int | None
    max_runtime_s: int | None


@dataclass
class Paths:
    """The absolute paths on the cluster, and jobauto's executable there."""

    db: str
    workdir: str
    log_dir: str
    jobauto: str = ""



# -- validation (no I/O) ---------------------------------------------------------------------------
def parse_walltime(text: str) -> int:
    """[D-]HH:MM:SS as seconds; anything else is a ConfigError naming --walltime."""
    m = WALLTIME.fullmatch(text.strip())
    if m is None:
        raise ConfigError(f"{text!r} is not a wall-clock time: use HH:MM:SS (hours may exceed 24) "
                          "or D-HH:MM:SS, e.g. 24:00:00 or 1-00:00:00", flag="--walltime")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    total = ((d * 24 + h) * 60 + mi) * 60 + s
    if total <= 0:
        raise ConfigError("must be longer than zero", flag="--walltime")
    return total


def safety_s(walltime_s: int) -> int:
    """Seconds between a task's --max-runtime and its walltime."""
    return int(min(max(round(walltime_s * SAFETY_FRACTION), SAFETY_MIN_S), SAFETY_MAX_S))


def default_job_name(db: str) -> str:
    """w-<table name>, cut to 15 characters (old PBS limit), in characters every qsub takes."""
    stem = posixpath.basename(db.rstrip("/"))
    stem = stem[:-3] if stem.endswith(".db") else stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_.-") or "table"
    return ("w-" + stem)[:15]


def _no_newline(value: str, flag: str) -> None:
    if "\n" in value or "\r" in value or "\0" in value:
        raise ConfigError("must not contain a line break", flag=flag)


def plan(o: WorkersOptions) -> Plan:
    """Validate the options; raise ConfigError naming the flag before anything is sent."""
    if not o.db:
        raise ConfigError("is required: the job table's path on the cluster (relative to the "
                          "remote home, or to here without --remote)", flag="--db")
    _no_newline(o.db, "--db")
    if o.n < 1:
        raise ConfigError(f"must be at least 1 (got {o.n})", flag="-n")
    if o.parallel < 1:
        raise ConfigError(f"must be at least 1 (got {o.parallel})", flag="--parallel")
    if o.margin_s < 0:
        raise ConfigError("must not be negative", flag="--margin-time")
    if o.scheduler not in ("auto", "sge", "slurm", "pbs", "local"):
        raise ConfigError(f"unknown scheduler {o.scheduler!r} (choose from auto, sge, slurm, "
                          "pbs, local)", flag="--scheduler")
    if not o.command or not any(w.strip() for w in o.command):
        raise ConfigError("missing: give the command after --, e.g. -- bash run.sh",
                          flag="COMMAND")
    if len(o.command) == 1:
        try:
            if not shlex.split(o.command[0]):
                raise ConfigError("the command is empty", flag="COMMAND")
        except ValueError as e:
            raise ConfigError(f"cannot split the command {o.command[0]!r}: {e}",
                              flag="COMMAND") from None
    try:
        jobauto = shlex.split(o.jobauto)
    except ValueError as e:
        raise ConfigError(f"cannot split {o.jobauto!r}: {e}", flag="--jobauto") from None
    if not jobauto:
        raise ConfigError("is empty", flag="--jobauto")
    for value, flag in ((o.workdir, "--workdir"), (o.log_dir, "--log-dir")):
        if value is not None:
            if not value.strip():
                raise ConfigError("is empty", flag=flag)
            _no_newline(value, flag)
    for d in o.scheduler_bin:
        _no_newline(d, "--scheduler-bin")
    name = o.name or default_job_name(o.db)
    if not NAME.fullmatch(name):
        raise ConfigError(f"{name!r} is not a job name every scheduler takes: a letter, then "
                          "letters, digits, _ . - (at most 63)", flag="--name")
    walltime_s = max_runtime = None
    if o.walltime is not None:
        walltime_s = parse_walltime(o.walltime)
        max_runtime = walltime_s - safety_s(walltime_s)
        if max_runtime <= o.margin_s:
            raise ConfigError(f"{o.walltime} leaves a worker {max(max_runtime, 0)} s after the "
                              f"{safety_s(walltime_s)} s safety margin, not more than "
                              f"--margin-time {o.margin_s:g}: ask for more", flag="--walltime")
    return Plan(o.db, o.workdir or "", o.log_dir or "", list(o.command), jobauto, name,
                walltime_s, max_runtime)


# -- what runs on the cluster --------------------------------------------------------------------
def run_argv(o: WorkersOptions, p: Plan, paths: Paths) -> list[str]:
    """One task's worker: options first, then `--`, so no table or command word is an option."""
    argv = [paths.jobauto or p.jobauto[0], *p.jobauto[1:], "run", "--parallel", str(o.parallel)]
    if p.max_runtime_s is not None:
        argv += ["--max-runtime", str(p.max_runtime_s)]
    argv += ["--margin-time", f"{o.margin_s:g}"]
    if o.named_args:
        argv.append("--named-args")
    if o.unsafe_fs:
        argv.append("--unsafe-fs")
    return [*argv, "--", paths.db, *p.command]


def _comment(text: str) -> str:
    return " ".join(text.split())


def script_text(o: WorkersOptions, p: Plan, paths: Paths, submit: list[str], scheduler: str,
                walltime_args: list[str], now: float) -> str:
    """The batch script every task of the array runs."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
    if p.walltime_s is None:
        limit = "none asked (no --walltime): the queue's default applies; no --max-runtime"
    else:
        limit = (f"{o.walltime} ({_comment(shlex.join(walltime_args)) or 'not enforced here'}), "
                 f"so --max-runtime {p.max_runtime_s} s = walltime - {safety_s(p.walltime_s)} s")
    more = ("Running that line again there starts more workers." if scheduler == "local" else
            "Running that line again there adds more workers (so does `jobauto workers`).")
    lines = [
        "#!/bin/bash",
        f"# Pull workers for a jobauto table, written by `jobauto workers` at {stamp}.",
        f"# Each of the {o.n} task(s) runs one `jobauto run` with --parallel {o.parallel}; "
        "they share the table.",
        f"#   table:    {paths.db}",
        f"#   workdir:  {paths.workdir}",
        f"#   walltime: {limit}",
        f"# Submitted ({scheduler}) from {paths.log_dir} with:",
        f"#   {_comment(shlex.join(submit))}",
        f"# {more}",
        *o.setup,
        f"cd -- {shlex.quote(paths.workdir)} || exit 1",
        "exec " + shlex.join(run_argv(o, p, paths)),
    ]
    return "\n".join(lines) + "\n"

