"""`jobauto explain RUNDIR JOB`: why a job is in its state, read from the store alone.

It works while a monitor runs: it only reads. Changing a run from outside (`jobauto reset`)
goes through a request to the monitor: run/requests.py.
"""

from __future__ import annotations

from pathlib import Path

from jobauto.core import edges
from jobauto.core.deps import FAILED, FINISHED, Graph, marker_path
from jobauto.core.errors import ConfigError, StateError
from jobauto.core.model import MEANING, Derived, Job, JobState, Verdict
from jobauto.core.spent import Spent
from jobauto.core.states import AHEAD
from jobauto.run import settings
from jobauto.run.quelist import fmt_time
from jobauto.store import Store, open_run_store


def find_job(jobs: dict[str, Job], name: str, run_dir: Path) -> Job:
    """A job by its name (`Si/qsub.1`), also given as a path to its script or a marker."""
    cand = name.strip().rstrip("/")
    if cand.startswith(str(run_dir) + "/"):
        cand = cand[len(str(run_dir)) + 1:]
    cand = cand.removeprefix("./")
    for kind in (FINISHED, FAILED, "qsub.dependency."):
        head, _, base = cand.rpartition("/")
        if base.startswith(kind):
            cand = (head + "/" if head else "") + "qsub." + base[len(kind):]
    if cand in jobs:
        return jobs[cand]
    raise ConfigError(f"no job {name!r} in this run (jobs are named like "
                      f"{next(iter(jobs), 'dir/qsub.0')!r})", file=str(run_dir))


def graph_of(store: Store, jobs: dict[str, Job]) -> Graph:
    g = Graph()
    for job in jobs.values():
        g.add(job.name, job.deps, job.state)
    for path in store.load_files():
        g.file_seen(path)
    return g


def rule(job: Job, g: Graph) -> str:
    """Which rule produced the job's state, in words."""
    ev = job.evidence
    if job.state == JobState.DONE:
        return "markers (rule 1 of 3): qsub.finished appeared and no qsub.failed"
    if job.state == JobState.ERROR:
        if not job.verdict:
            return f"the job could not be read or run: {job.reason}"
        v = Verdict(job.verdict)
        if ev.startswith("marker"):
            how = "markers (rule 1 of 3): qsub.failed appeared"
            if "; " in ev:
                how += f"; the scheduler's accounting then said: {MEANING[v]}"
            return how
        if v == Verdict.CANCELLED and ev.startswith("jobauto cancel"):
            return (f"cancelled by {ev.split(';')[0]}; what needs it is blocked (jobauto reset "
                    "makes it pending again)")
        if v == Verdict.REJECTED:
            return f"the scheduler {'refused the submission' if ev.startswith('submission') else 'could not run it'}: {job.reason}"
        marker = marker_path(job.name)
        if v == Verdict.VANISHED:
            return (f"vanished (rule 3 of 3): it left the queue without writing {marker}, and no "
                    "failure record appeared within --lost-after (killed by SIGKILL? walltime? "
                    "node failure?)")
        code = f", exit code {job.exit_code}" if job.exit_code is not None else ""
        return (f"accounting (rule 2 of 3): it left the queue without writing {marker} (killed "
                f"by SIGKILL? walltime?); the scheduler's accounting says: {MEANING[v]}{code}")
    if job.state == JobState.RUNNING:
        if job.sched_id is None:
            return ("submitted, but the answer was lost: the monitor settles it from the cluster's "
                    "journal or the scheduler's queue before anything is submitted again")
        if job.missing_since is not None:
            return (f"running; not listed by the scheduler since {fmt_time(job.missing_since)}: "
                    "waiting for a marker or an accounting record")
        waits = [p for p in g.nodes[job.name].unmet_jobs]
        if waits:   # submitted with the scheduler's dependency (--ahead): a running job not done
            return (f"{AHEAD} (job {job.sched_id}): waiting in the queue until {', '.join(sorted(waits))} "
                    "is there; taken out of the queue and blocked if that job does not end done")
        return "running: waiting for its markers"
    d = g.derived(job.name)
    if d == Derived.READY:
        return "pending, ready: every dependency is met; submitted when a --maxqsub slot is free"
    if d == Derived.BLOCKED:
        return f"pending, blocked by failed job(s): {', '.join(g.root_errors(job.name))}"
    return "pending, waiting: " + "; ".join(g.why(job.name))


def explain(run_dir: Path, name: str | None) -> list[str]:
    """A job's history and rule; without NAME, the run's settings and their history."""
    store = open_run_store(run_dir, readonly=True)
    try:
        with store.reported():
            return _explain(store, run_dir, name) if name else _explain_run(store, run_dir)
    finally:
        store.close()


REQUESTS_SHOWN = 10


def _explain_run(store: Store, run_dir: Path) -> list[str]:
    """The run's recorded settings, where they came from and when they changed; its requests."""
    values = settings.read(store)
    out = [f"{run_dir}   (on the cluster: {store.get_meta('rundir') or '?'}, "
           f"{store.get_meta('scheduler') or '?'})"]
    if values is None:
        out.append("settings:   not recorded (a run made before jobmon recorded them: resume it "
                   "once with its flags)")
    else:
        out.append("settings:")
        out += [f"  {k.replace('_', '-'):<14} {settings.shown(v, k)}" for k, v in sorted(values.items())]
    history = [(at, detail) for at, kind, detail in store.events("") if kind == settings.EVENT]
    if history:
        out.append("settings history:")
        out += [f"  {fmt_time(at)}  {detail}" for at, detail in history]
    reqs = store.requests()[-REQUESTS_SHOWN:]
    if reqs:
        out.append("requests:")
    for rid, at, kind, _, done_at, result in reqs:
        how = f"applied {fmt_time(done_at)}: {result}" if done_at is not None else \
            "not applied yet (the monitor applies it at its next cycle)"
        out.append(f"  #{rid} {kind} of {fmt_time(at)}: {how}")
    return out


def _explain(store: Store, run_dir: Path, name: str) -> list[str]:
    jobs = {j.name: j for j in store.load_jobs()}
    job = find_job(jobs, name, run_dir)
    g = graph_of(store, jobs)
    out = [f"{job.name}   (job {job.id} of {run_dir})",
           f"state:      {job.state.value}" + (f" ({g.derived(job.name).value})"  # type: ignore[union-attr]
                                               if job.state == JobState.PENDING else ""),
           f"rule:       {rule(job, g)}"]
    if job.verdict:
        last = "verdict:   " if job.state in (JobState.DONE, JobState.ERROR) else "last end:  "
        code = f", exit code {job.exit_code}" if job.exit_code is not None else ""
        out.append(f"{last} {job.verdict}{code}")
        out.append(f"evidence:   {job.evidence}")
    if job.reason:
        out.append(f"reason:     {job.reason}")
    sub = [f"submissions {job.attempts}"]
    if job.sched_id:
        sub.append(f"scheduler id {job.sched_id}")
    if job.token:
        sub.append(f"name {job.token}")
    if job.retried:
        sub.append(f"automatic retries {job.retried}")
    out.append("scheduler:  " + ", ".join(sub))
    for dep in job.deps:
        prod = g.producer(dep)
        state = (prod.state.value if prod else
                 "exists" if dep in g.files else "not seen yet")
        out.append(f"depends:    {dep} ({state})")
    out += edge_lines(store, jobs, g, job)
    spent = Spent.from_meta(store.get_meta)
    out.append(f"run spent:  {spent.sched_commands} scheduler commands (at most "
               f"{spent.peak_minute()} in a minute of the last hour), {spent.logins} SSH logins, "
               f"{spent.bytes_pushed} bytes pushed, {spent.bytes_pulled} pulled, "
               f"{spent.bytes_scanned} in scans")
    out.append("history:")
    for at, kind, detail in store.events(job.name):
        out.append(f"  {fmt_time(at)}  {kind:<13} {detail}")
    for rid, at, kind, args, done_at, _ in store.requests():
        named = args.get("jobs") or []
        if done_at is None and kind in ("reset", "cancel") and (
                job.name in named or not named):  # type: ignore[operator]
            out.append(f"request:    {kind} #{rid} of {fmt_time(at)} not applied yet (the "
                       "monitor applies it at its next cycle)")
    return out


def _edge(g: Graph, jobs: dict[str, Job], job: Job) -> edges.Item | None:
    """The edge of a submitted job, read from the store (core/edges.py `item`)."""
    if job.state == JobState.PENDING:
        return None
    return edges.item(job.name, job.started_at, job.running_at,
                      [(p.name, p.state == JobState.DONE, jobs[p.name].finished_at)
                       for d in job.deps if (p := g.producer(d)) is not None])


def edge_lines(store: Store, jobs: dict[str, Job], g: Graph, job: Job) -> list[str]:
    """For a job queued ahead of its predecessor's end (jobmon --ahead): how long it waited in
    the queue, when it started, and what the edge saved, by the report's rule."""
    mine = _edge(g, jobs, job)
    handed = edges.split([mine])[0] if mine else []
    if not handed:
        return []
    edge = handed[0]
    own = edges.split(e for j in jobs.values() if (e := _edge(g, jobs, j)) is not None)[1]
    try:
        interval = (settings.read(store) or {}).get("interval")
    except StateError:
        interval = None   # damaged: explain of the run says so; the median of own edges stays
    cost, basis = edges.cost(own, interval)
    out = [f"edge:       queued ahead {edge.ahead_s:.1f} s before {edge.after} ended (handed to "
           "the scheduler's dependency)"]
    if edge.delay_s is not None:
        out.append(f"            started at most {max(edge.delay_s, 0.0):.1f} s after it ended "
                   "(first seen running)")
    if cost is not None:
        out.append(f"            saved about {cost:.1f} s: without --ahead it would have been "
                   f"submitted only after {basis}")
    else:
        out.append("            what it saved is not known: no edge of this run was handled by "
                   "jobmon itself, and the run has no recorded --interval")
    return out
