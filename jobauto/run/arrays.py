"""Arrays for sweeps: ready jobs of one step and one shape go to the scheduler as one array job.

A job's *step* is its script's file name (`qsub.ID`: every row of a `jobauto render` sweep is
`qsub.0`); its *shape* is what one submission must share: the scheduler directives of its script
(verbatim), the interpreter that runs it, and the extra submit options it gets (a walltime
retry's). Jobs of one step and one shape submitted in the same cycle become one array; task N
runs the job on line N of the array's task table through the array's wrapper, which is the
job wrapper of run/wrapper.py with its job read from the table. docs/decisions.md says why.

Every job of an array keeps its own state, verdict, retries and cancel: its token is the
array's name (the scheduler's job name, journaled once) plus `.TASK`, its scheduler id the
task's own (`4711.3` Grid Engine, `4711_3` Slurm, `4711[3]` PBS).
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass
from pathlib import Path

from jobauto.core.errors import TreeError
from jobauto.core.layout import RENDERED
from jobauto.core.scripts import interpreter, scheduler_directives
from jobauto.run.wrapper import BODY, job_dir

ARRAYS_DIR = ".jobauto/arrays"   # the arrays' wrappers, task tables and own output, on the cluster
MIN_TASKS = 2                    # fewer ready jobs of a shape go one by one
MAX_TASKS = 1000                 # tasks of one array (the task table travels as one argument)
TABLE_MAX = 96 << 10             # bytes of one task table (below Linux's 128 KiB per argument)
# A task's index and its array's id: Grid Engine, Slurm (also under Slurm's Torque wrappers,
# which set no PBS_* variables), Torque (PBS_ARRAYID; PBS_JOBID 12[3].server), PBS Pro
# (PBS_ARRAY_INDEX; PBS_JOBID 12[3].server). The array's id is cut at its first [ or .
TASK_VARS = "${SGE_TASK_ID:-${SLURM_ARRAY_TASK_ID:-${PBS_ARRAYID:-${PBS_ARRAY_INDEX:-}}}}"
ARRAY_VARS = "${JOB_ID:-${SLURM_ARRAY_JOB_ID:-${PBS_JOBID:-0}}}"


def split_token(token: str | None) -> tuple[str, int | None]:
    """A job's token as (the name it was submitted under, its task or None): an array task's
    token is `NAME.TASK`, a job's own token has no dot."""
    name, dot, task = (token or "").rpartition(".")
    if dot and task.isdigit() and task.isascii() and name:
        return name, int(task)
    return token or "", None


def submitted_name(token: str | None) -> str:
    """The scheduler's job name (and the journal's key) of a job's submission."""
    return split_token(token)[0]


def array_id(sched_id: str) -> str:
    """The array's own id in a task's or an array's id: 4711.3, 4711_3, 4711.1-3:1 -> 4711."""
    digits = ""
    for c in sched_id.strip():
        if not ("0" <= c <= "9"):
            break
        digits += c
    return digits or sched_id


@dataclass
class Group:
    """Jobs submitted as one array: task i+1 is jobs[i]."""

    key: tuple[object, ...]
    jobs: list[str]
    directives: list[str]
    interp: list[str]
    extra: list[str]
    table_bytes: int = 0   # of its task table so far (at most TABLE_MAX)


def shape(name: str, text: str, extra: list[str]) -> tuple[object, ...] | None:
    """The key that jobs of one array share, None for a job that must go alone (a name a task
    table cannot carry, directives that cannot travel)."""
    if any(c in name for c in "\t\n\r"):
        return None
    try:
        directives = scheduler_directives(text, name)
    except TreeError:
        return None
    step = posixpath.basename(name)
    return (step, tuple(directives), tuple(interpreter(text)), tuple(extra))


def rendered(run_dir: Path, name: str, cache: dict[Path, frozenset[str] | None]) -> bool:
    """Whether job `name` was made by `jobauto render`: its --out directory (the parent of the
    job's directory) holds RENDERED, and RENDERED names the job's directory (hand-made jobs
    beside rendered rows are not batched by default)."""
    job_dir = (run_dir / name).parent
    d = job_dir.parent
    if d not in cache:
        try:
            text = (d / RENDERED).read_text(encoding="utf-8", errors="replace")
        except OSError:
            cache[d] = None
        else:
            cache[d] = frozenset(ln for ln in text.splitlines() if ln and not ln.startswith("#"))
    names = cache[d]
    return names is not None and job_dir.name in names


def group(items: list[tuple[str, tuple[object, ...] | None, str, list[str]]],
          limit: int | None = None) -> tuple[list[Group], list[str], list[str]]:
    """Split (job name, shape, script text, extra args) into arrays, jobs that go alone, and
    jobs left for later, keeping the order of first appearance; an array has MIN_TASKS to
    MAX_TASKS tasks and a task table of at most TABLE_MAX bytes. LIMIT bounds the submissions
    (scheduler commands: an array is one, whatever its tasks): a job that would need one more
    is left for later, one that joins an array already open is not."""
    groups: dict[tuple[object, ...], list[Group]] = {}
    order: list[Group] = []
    alone: list[str] = []
    later: list[str] = []
    for name, key, text, extra in items:
        full = limit is not None and len(alone) + len(order) >= limit
        if key is None:
            (later if full else alone).append(name)
            continue
        runs = groups.setdefault(key, [])
        g = runs[-1] if runs else None
        line = len(table_line(name).encode())
        if g is None or len(g.jobs) >= MAX_TASKS or g.table_bytes + line > TABLE_MAX:
            if full:
                later.append(name)
                continue
            g = Group(key, [], scheduler_directives(text, name), interpreter(text), list(extra))
            runs.append(g)
            order.append(g)
        g.jobs.append(name)
        g.table_bytes += line
    arrays = [g for g in order if len(g.jobs) >= MIN_TASKS]
    alone += [n for g in order if len(g.jobs) < MIN_TASKS for n in g.jobs]
    return arrays, alone, later


def table_line(name: str) -> str:
    d, base = posixpath.split(name)
    return f"{d or '.'}\t{base}\n"


def task_table(names: list[str]) -> str:
    """Line N: the job of task N, as `DIR<TAB>qsub.ID` (DIR relative to the run directory)."""
    return "".join(table_line(n) for n in names)


def array_wrapper(g: Group, name: str, rundir: str) -> str:
    """The script the array submits: each task finds its job on its line of the task table,
    sends its output to the job's directory (qsub.ID.oARRAY.TASK, .e likewise) and then runs
    as the job's own wrapper does (run/wrapper.py): in the job's directory, writing its markers."""
    root = job_dir(rundir, "x")
    tables = job_dir(rundir, posixpath.join(ARRAYS_DIR, "x"))
    head = ["#!/bin/sh", *g.directives,
            f"# Written by jobmon for array {name}: task N runs the job on line N of "
            f"{name}.tasks (docs/file-formats.md).",
            f"jobauto_task={TASK_VARS}",
            f"jobauto_array={ARRAY_VARS}",
            "jobauto_array=${jobauto_array%%[[.]*}",
            "case $jobauto_task in ''|*[!0-9]*) "
            'echo "jobauto: not started as a task of an array" >&2; exit 1;; esac',
            f'jobauto_line=$(sed -n "${{jobauto_task}}{{p;q;}}" {tables}/{shlex.quote(name + ".tasks")})',
            'jobauto_rel=${jobauto_line%%"$(printf \'\\t\')"*}',
            'jobauto_script=${jobauto_line#*"$(printf \'\\t\')"}',
            'if [ -z "$jobauto_line" ] || [ "$jobauto_rel" = "$jobauto_line" ]; then '
            'echo "jobauto: task $jobauto_task is not in the task table" >&2; exit 1; fi',
            f'jobauto_dir={root}/$jobauto_rel',
            'jobauto_ident=${jobauto_script#qsub.}',
            'jobauto_finished=qsub.finished.$jobauto_ident',
            'jobauto_failed=qsub.failed.$jobauto_ident',
            'exec >"$jobauto_dir/$jobauto_script.o$jobauto_array.$jobauto_task" '
            '2>"$jobauto_dir/$jobauto_script.e$jobauto_array.$jobauto_task"',
            f'set -- {shlex.join(g.interp)} "./$jobauto_script"']
    return "\n".join(head) + "\n" + BODY


def job_token(name: str, task: int) -> str:
    return f"{name}.{task}"
