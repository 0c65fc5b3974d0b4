"""`jobauto plan LDIR/init|RUN`: what a run will cost the cluster, before it starts (or what is
left of one): jobs, submissions, scheduler commands, SSH logins, bytes to push, and the remote
metadata operations of one cycle. Reads local files only and contacts nothing: which transport
jobmon will use (--ssh=auto: the user's OpenSSH master when ssh_config gives the host a
ControlPath) is asked of the local ssh client (`ssh -G`), as jobmon asks it (cluster/host.py
`transport_kind`), and the logins are forecast for that transport.

The figures are a forecast from stated assumptions (every job succeeds at its first try, no
reconnects, jobs without `#jobauto estimate=` take --job-hours); `Plan.assumptions` lists them
with the figures. docs/etiquette.md explains each figure and the caps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jobauto.cluster.host import transport_kind
from jobauto.cluster.transport.base import glob_regex
from jobauto.core.config import Options
from jobauto.core.deps import FINISHED, job_of_marker
from jobauto.core.errors import ConfigError
from jobauto.core.layout import state_db
from jobauto.core.model import JobState
from jobauto.run import arrays
from jobauto.run.budget import SLACK_S, WINDOW_S
from jobauto.run.mirror import PUSH_EXCLUDE, TreeShape, scan_cost
from jobauto.run.opener import check_cycles
from jobauto.run.tree import JobSpec, discover
from jobauto.store import open_run_store


@dataclass(frozen=True)
class PlanJob:
    """A job still to run, as the forecast sees it."""

    name: str
    deps: tuple[str, ...]
    estimate_h: float | None = None
    running: bool = False      # already submitted: no submission left, its time still counts


def submissions(root: Path, jobs: Sequence[PlanJob], opts: Options) -> int:
    """How many submissions the jobs to submit take: one per job, except jobs that go as arrays
    (run/arrays.py; `--arrays`, or by default those `jobauto render` made), which take one per
    array of jobs sharing a step and a script shape, each array at most --maxqsub tasks (a free
    slot per task). Assumes the jobs of a shape become ready together, as a sweep's do: a
    lower bound when they do not. ROOT holds the scripts."""
    todo = [j for j in jobs if not j.running]
    made: dict[Path, frozenset[str] | None] = {}
    keyed: dict[tuple[object, ...], int] = {}
    alone = 0
    for j in todo:
        key = None
        if opts.arrays or (opts.arrays is None and arrays.rendered(root, j.name, made)):
            try:
                key = arrays.shape(j.name, (root / j.name).read_text(errors="replace"), [])
            except OSError:
                key = None
        if key is None:
            alone += 1
        else:
            keyed[key] = keyed.get(key, 0) + 1
    per = max(1, min(opts.maxqsub, arrays.MAX_TASKS))
    for n in keyed.values():
        full, rest = divmod(n, per)
        # a last array of one task goes alone (MIN_TASKS), still one submission
        alone += full + (1 if rest else 0)
    return alone


@dataclass
class Plan:
    source: str
    kind: str                    # "new" (init/) or "resume" (what is left of a run)
    jobs: int                    # jobs of the tree or the run
    jobs_left: int               # not done yet (running ones included)
    to_submit: int
    submissions: int
    duration_s: float            # at least this long: the critical path or the work over --maxqsub
    critical_path_s: float
    steps: int                   # jobs on the longest dependency chain
    work_s: float                # the sum of the jobs' times
    cycles: int
    queue_polls: int
    accounting: int              # at most
    scheduler_commands: int
    polls_per_minute: float
    logins: int
    login_parts: dict[str, int]
    bytes_to_push: int
    files_to_push: int
    metadata_per_cycle: int
    shape: dict[str, int]
    settings: dict[str, object]
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    transport: str = "local"     # how jobmon will reach --remote: local, openssh, paramiko

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def make_plan(path: Path, opts: Options, job_hours: float = 1.0) -> Plan:
    """The forecast for PATH: LDIR/init (a new run) or LDIR/DATE (what is left of it)."""
    if not path.is_dir():
        raise ConfigError("no such directory: pass LDIR/init or a run directory LDIR/DATE",
                          file=str(path))
    if state_db(path).exists():
        jobs, done, pushed = _run_jobs(path)
        kind = "resume"
    else:
        specs = _tree_jobs(path)
        jobs, done, pushed = [PlanJob(s.name, s.deps, s.estimate_h) for s in specs], set(), False
        kind = "new"
    files, size, dirs = _push_size(path, pushed)
    return _forecast(path, kind, jobs, done, opts, job_hours, files, size, dirs,
                     transport_kind(opts))


def _tree_jobs(init: Path) -> list[JobSpec]:
    specs = discover(init)
    if not specs:
        raise ConfigError("no jobs found: a job is a file qsub.ID with a sibling "
                          "qsub.dependency.ID", file=str(init))
    check_cycles(init, specs)
    return specs


def _run_jobs(run: Path) -> tuple[list[PlanJob], set[str], bool]:
    store = open_run_store(run, readonly=True)
    try:
        with store.reported():
            all_jobs = store.load_jobs()
            pushed = store.get_meta("pushed") == "1"
    finally:
        store.close()
    done = {j.name for j in all_jobs if j.state == JobState.DONE}
    left = [PlanJob(j.name, tuple(j.deps), j.estimate_h, j.state == JobState.RUNNING)
            for j in all_jobs if j.state in (JobState.PENDING, JobState.RUNNING)]
    return left, done, pushed


def _push_size(root: Path, pushed: bool) -> tuple[int, int, int]:
    """Files and bytes a push of ROOT sends (Remote.push's excludes: PUSH_EXCLUDE), and the
    directories of the tree. A run already pushed sends nothing more (edits aside)."""
    rules = [glob_regex(g) for g in PUSH_EXCLUDE]
    files = size = dirs = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel = "" if rel == "." else rel + "/"
        dirnames[:] = [d for d in dirnames if not any(r.match(rel + d + "/") for r in rules)]
        dirs += 1
        for f in filenames:
            if any(r.match(rel + f) for r in rules):
                continue
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            files += 1
            size += st.st_size
    return (0, 0, dirs) if pushed else (files, size, dirs)


def _longest(jobs: list[PlanJob], secs: dict[str, float], step_s: float) -> tuple[float, int]:
    """The longest chain of jobs left (each job's time plus one cycle to see it end and submit
    the next): its length in seconds and in jobs."""
    names = {j.name for j in jobs}
    needs = {j.name: [p for p in (_producer(d) for d in j.deps) if p in names] for j in jobs}
    best: dict[str, tuple[float, int]] = {}
    for start in names:
        stack = [(start, False)]
        while stack:
            name, expanded = stack.pop()
            if name in best:
                continue
            if not expanded:
                stack.append((name, True))
                stack.extend((p, False) for p in needs[name] if p not in best)
                continue
            s, n = max((best[p] for p in needs[name] if p in best), default=(0.0, 0))
            best[name] = (s + secs[name] + step_s, n + 1)
    return max(best.values(), default=(0.0, 0))


def _producer(dep: str) -> str | None:
    hit = job_of_marker(dep)
    return hit[0] if hit is not None and hit[1] == FINISHED else None


def _forecast(path: Path, kind: str, jobs: list[PlanJob], done: set[str], opts: Options,
              job_hours: float, files: int, size: int, dirs: int, transport: str) -> Plan:
    interval, maxqsub = opts.interval, opts.maxqsub
    cap = opts.max_scheduler_commands_per_minute
    secs = {j.name: (j.estimate_h if j.estimate_h is not None else job_hours) * 3600 for j in jobs}
    subs = submissions(path, jobs, opts)
    cp, steps = _longest(jobs, secs, interval)
    work = sum(secs.values())
    poll_share = max(1, cap // 2)
    window = WINDOW_S + SLACK_S
    # the submissions' half of the cap: more submissions than it allows a window take windows
    by_cap = (math.ceil(subs / (cap - poll_share)) - 1) * window if subs else 0.0
    duration = max(cp, work / maxqsub, by_cap)
    cycles = math.ceil(duration / interval) + 1 if jobs else 0
    poll_every = max(interval, window / poll_share)
    polls = math.ceil(duration / poll_every) + 1 if jobs else 0
    # Grid Engine asks qacct once per job (cluster/host.py CALLS): one call per ended job
    accounting = len(jobs) if opts.scheduler == "sge" else min(len(jobs), polls)
    if opts.scheduler == "pbs":   # qstat, then qstat -f: two calls a listing
        polls *= 2
    if opts.scheduler == "local":   # keeps no accounting to ask
        accounting = 0
    detect = int(opts.scheduler == "auto")   # one shell asking which scheduler answers
    commands = subs + polls + accounting + detect
    # through the user's OpenSSH master every round trip, push and fetch rides its one login
    # (the user's, made before): none of the run's own; paramiko logs in, and so does each rsync
    parts = ({} if transport != "paramiko" else
             {"session": 1, "push": int(files > 0), "fetch at the end": 1})
    names = [j.name for j in jobs]
    watched = {d for j in jobs for d in j.deps if _producer(d) is None}
    job_dirs = {n.rpartition("/")[0] for n in names}
    shape = TreeShape(dirs=dirs, scanned_files=2 * (len(jobs) + len(done)),
                      active_dirs=min(maxqsub, len(job_dirs)), watched=len(watched))
    plan = Plan(
        str(path), kind, len(jobs) + len(done), len(jobs), sum(not j.running for j in jobs), subs,
        duration, cp, steps, work, cycles, polls, accounting, commands,
        round(60 / poll_every, 2), sum(parts.values()), parts, size, files, scan_cost(shape),
        asdict(shape), {"interval": interval, "maxqsub": maxqsub, "remote": opts.remote,
                        "scheduler": opts.scheduler, "ssh": opts.ssh,
                        "max_scheduler_commands_per_minute": cap,
                        "max_logins_per_hour": opts.max_logins_per_hour, "job_hours": job_hours})
    unknown = sum(1 for j in jobs if j.estimate_h is None)
    plan.assumptions = [
        f"{unknown} of {len(jobs)} job(s) have no `#jobauto estimate=`: each counted as "
        f"{job_hours:g} h (--job-hours)" if unknown else "every job's time from its estimate",
        "every job succeeds at its first try (no retries, resets, walltime kills)",
        "one queue listing each cycle while jobs run; an accounting query at most once per "
        "ended job (when a job leaves the queue before its marker is seen)",
        "the master connection stays up (when it goes, jobmon waits for it to be started "
        f"again: ssh -fNM {opts.remote}; no login of its own)" if transport == "openssh" else
        "the connection never drops (each reconnect is one more login; each ProxyJump hop "
        "adds one to every login)",
        "the duration is a lower bound: the longest dependency chain (one --interval per step "
        "to notice an end) or the work spread over --maxqsub, whichever is longer",
    ]
    if kind == "resume":
        plan.assumptions.append("running jobs count with their whole time; no local edit to push")
    if 60 / interval > poll_share * 60 / window:
        plan.warnings.append(
            f"at --interval={interval:g} the queue would be listed {60 / interval:g} times a "
            f"minute; the cap (--max-scheduler-commands-per-minute={cap}) leaves polls "
            f"{poll_share} per {window:g} s, so they are spaced every {poll_every:.1f} s")
    if by_cap > max(cp, work / maxqsub):
        plan.warnings.append(
            f"{subs} submissions at {cap - poll_share} per {window:g} s: the cap, not the "
            "jobs, sets the duration (arrays would take fewer submissions)")
    plan.transport = transport
    if opts.remote is not None and plan.logins > opts.max_logins_per_hour:
        plan.warnings.append(f"{plan.logins} logins: more than --max-logins-per-hour="
                             f"{opts.max_logins_per_hour}; some will wait")
    return plan


def size_text(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def duration_text(s: float) -> str:
    m = round(s / 60)
    return f"{m // 60}h {m % 60:02d}m" if m >= 60 else f"{m}m" if m else f"{s:.0f}s"


def render_text(p: Plan) -> str:
    st = p.settings
    what = ("new run" if p.kind == "new" else "what is left of the run")
    logins = {"local": "none: no --remote, this machine",
              "openssh": "none of its own: every round trip, push and fetch rides your OpenSSH "
                         "master (ssh_config's ControlPath), whose one login you make",
              }.get(p.transport) or " + ".join(f"{n} {k}" for k, n in p.login_parts.items())
    via = "this machine" if p.transport == "local" else f"--ssh={p.transport}"
    if p.transport != "local" and st["ssh"] == "auto":
        via += (" (auto: ssh_config sets a ControlPath for the host)" if p.transport == "openssh"
                else " (auto: ssh_config sets no ControlPath for the host)")
    if p.transport == "paramiko":
        via += "; a login of its own, and one for each rsync"
    lines = [
        f"plan for {p.source} ({what}; a forecast, assumptions below)",
        f"  jobs:                {p.jobs_left} to run of {p.jobs}, {p.to_submit} to submit",
        f"  submissions:         {p.submissions}",
        f"  duration:            at least {duration_text(p.duration_s)} (longest chain "
        f"{duration_text(p.critical_path_s)} over {p.steps} job(s); work "
        f"{duration_text(p.work_s)} over --maxqsub={st['maxqsub']})",
        f"  cycles:              {p.cycles} at --interval={st['interval']:g}",
        f"  scheduler commands:  {p.scheduler_commands} = {p.submissions} submissions + "
        f"{p.queue_polls} queue listings + at most {p.accounting} accounting queries"
        + (" + 1 detection" if p.scheduler_commands > p.submissions + p.queue_polls + p.accounting
           else ""),
        f"  per minute:          {p.polls_per_minute:g} queue listing(s); cap "
        f"{st['max_scheduler_commands_per_minute']} (half polls, half submissions)",
        f"  transport:           {via}",
        f"  SSH logins:          {p.logins} ({logins}); cap {st['max_logins_per_hour']} an hour",
        f"  bytes to push:       {size_text(p.bytes_to_push)} in {p.files_to_push} file(s)",
        f"  remote metadata:     about {p.metadata_per_cycle} operations per cycle (the scan: "
        f"{p.shape['dirs']} directories, {p.shape['scanned_files']} markers and dependency "
        f"files, {p.shape['watched']} watched files)",
        "assumptions:"] + [f"  - {a}" for a in p.assumptions]
    lines += [f"warning: {w}" for w in p.warnings]
    return "\n".join(lines)

