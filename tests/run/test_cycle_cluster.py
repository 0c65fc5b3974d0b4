"""jobmon end to end (the cycle, jobauto/run/cycle.py, as jobmon drives it) on real Grid Engine,
real Slurm and the PBS wrappers, over sshd: the same checks on each."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest
from faults import CutTransport
from helpers import (
    HOST,
    SSH_CONFIG,
    Cluster,
    Sched,
    base_args,
    dag,
    job_body,
    jobauto,
    jobmon,
    make_job,
    max_overlap,
    runs_per_job,
    ssh,
    start_jobmon,
    template_script,
)

from jobauto.core.config import Options
from jobauto.run import quelist

pytestmark = pytest.mark.cluster

WALLTIME = {"sge": "#$ -l h_rt=0:0:3\n", "slurm": "#SBATCH --time=1\n",
            "pbs": "#PBS -l walltime=00:01:00\n"}
INVALID = {"sge": "#$ -l no_such_resource=1\n", "slurm": "#SBATCH --partition=no_such_partition\n",
           "pbs": "#PBS -q no_such_queue\n"}


def test_dag_runs_in_order_with_hostile_names(sched: Sched, tmp_path: Path) -> None:
    c = sched.cluster
    rdir = c.remote_dir(f"dag-{sched.name}")
    log = c.path(rdir) / "runs.log"
    ldir = tmp_path / "camp"
    dirs = ["Si", "Ga As", "$(touch PWNED);x", "it's"]
    n = dag(ldir / "init", log, dirs)
    p = jobmon(*base_args(c, ldir, rdir), "--maxqsub=3", "--ahead=0", "--datedir=r", *sched.args,
               timeout=300, check_rc=0)
    assert f"({sched.name}," in p.stdout and "all jobs done" in p.stdout
    runs = runs_per_job(log)
    assert len(runs) == n and set(runs.values()) == {1}
    # --ahead=0: the bound is --maxqsub's alone (a job queued ahead may start beside them the
    # moment its predecessor ends: docs/decisions.md "Edges to the scheduler")
    assert max_overlap(log) <= 3
    assert not list(c.path(rdir).rglob("PWNED")) and not list(tmp_path.rglob("PWNED"))
    lines = quelist.parse((ldir / "r" / "quelist").read_text())
    assert len(lines) == n and lines[-1].name == "summary/qsub.0"
    assert all(ln.extra["jobid"].isdigit() and set(ln.times) == {"started", "finished"} for ln in lines)


def _jobid(ql: Path, name: str, timeout: float = 120) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ql.exists():
            for ln in quelist.parse(ql.read_text()):
                if ln.name == name and "jobid" in ln.extra:
                    return ln.extra["jobid"]
        time.sleep(0.2)
    raise AssertionError(f"{name} was never submitted")


def test_every_ending_gets_its_verdict_with_evidence(sched: Sched, tmp_path: Path) -> None:
    """Walltime kill, a non-zero exit without markers, a cancel: right verdict, dependents
    blocked, the run finishes, explain shows the scheduler's record."""
    c = sched.cluster
    rdir = c.remote_dir(f"verdict-{sched.name}")
    ldir = tmp_path / "camp"
    init = ldir / "init"
    # the templates' marker block: a warning signal (Slurm's SIGTERM at the limit, scancel) still
    # writes failed markers, refined from accounting; SIGKILL (Grid Engine) leaves none
    make_job(init, "wall/qsub.0", script=template_script("sleep 300", WALLTIME[sched.name]))
    # no marker code: jobmon's wrapper writes them (run/wrapper.py)
    make_job(init, "exit/qsub.0", script="#!/bin/bash\necho no markers here\nexit 7\n")
    make_job(init, "cancel/qsub.0", script=template_script("touch started; sleep 300"))
    make_job(init, "ok/qsub.0")
    for d in ("wall", "exit", "cancel", "ok"):
        make_job(init, f"{d}/qsub.1", ["qsub.finished.0"])
    out = tmp_path / "mon.out"
    proc = start_jobmon([*base_args(c, ldir, rdir), "--datedir=r", "--lost-after=240", *sched.args], out)
    try:
        jid = _jobid(ldir / "r" / "quelist", "cancel/qsub.0")
        started = c.path(rdir) / "r" / "cancel" / "started"
        deadline = time.time() + 240   # 4 slots, shared with side-by-side tests' walltime jobs
        while not started.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert started.exists(), out.read_text()
        sched.cancel(jid)
        assert proc.wait(timeout=400) == 1, out.read_text()
    finally:
        proc.kill()
    text = out.read_text()
    assert "error    wall/qsub.0: walltime: killed at its walltime limit" in text, text
    assert "error    exit/qsub.0: failed: exited with code 7" in text, text
    # a qdel by hand: Grid Engine's SIGKILL leaves no marker (the verdict is `cancelled`, counted
    # apart); Slurm's SIGTERM lets the script write a failed marker, refined from accounting
    assert re.search(r"^  (cancelled |error    )cancel/qsub\.0: cancelled", text, re.M), text
    for d in ("wall", "exit", "cancel"):
        assert f"blocked  {d}/qsub.1: by {d}/qsub.0" in text
    assert "ok/qsub.1" not in text  # done
    run = ldir / "r"
    tool = {"sge": "qacct", "slurm": "sacct", "pbs": "sacct"}[sched.name]  # PBS on Slurm: sacct
    for name, verdict in (("wall/qsub.0", "walltime"), ("cancel/qsub.0", "cancelled")):
        ex = jobauto("explain", str(run), name, check_rc=0).stdout
        assert f"verdict:    {verdict}" in ex and "evidence:" in ex, ex
        assert "accounting" in ex and tool in ex, ex
    ex = jobauto("explain", str(run), "exit/qsub.0", check_rc=0).stdout
    assert "verdict:    failed, exit code 7" in ex and "markers (rule 1 of 3)" in ex, ex
    # the queue showed the walltime job running: the adapter's running flag gave its start
    from jobauto.view.campaign import gather
    wall = {j.name: j for j in gather(run).jobs}["wall/qsub.0"]
    assert wall.queued_at is not None and wall.started_at is not None and wall.ended_at is not None
    assert wall.queued_at <= wall.started_at <= wall.ended_at + 1  # markers' mtimes: whole seconds


def test_invalid_script_is_an_error_with_the_schedulers_message(sched: Sched, tmp_path: Path) -> None:
    c = sched.cluster
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "bad/qsub.0", head=INVALID[sched.name])
    make_job(ldir / "init", "good/qsub.0")
    p = jobmon(*base_args(c, ldir, c.remote_dir("invalid")), "--datedir=r", *sched.args,
               timeout=120, check_rc=1)
    line = next(ln for ln in p.stdout.splitlines() if "bad/qsub.0" in ln)
    assert "error    bad/qsub.0: rejected" in line and "no_such" in line, p.stdout


def _accounted(sched: Sched, prefix: str, n: int, timeout: float = 60) -> Counter[str]:
    """Submissions per job (token without its attempt number) in the scheduler's accounting."""
    deadline = time.time() + timeout
    while True:
        names = sched.submissions(prefix)
        if len(names) >= n or time.time() > deadline:
            return Counter(name.rsplit("_", 1)[0] for name in names)
        time.sleep(1)


@pytest.mark.parametrize("ahead", [0, 10])
def test_exactly_once_when_the_connection_is_cut_at_every_step(
        sched: Sched, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ahead: int) -> None:
    """Layers of two jobs; the first submission batch of each layer loses its connection at a
    different step. Every job runs once and the scheduler accepted each job exactly once. With
    --ahead, the whole chain goes in the first batch (each layer after the ids the batch itself
    handed on); it loses its connection halfway, after 6 of its 12 submissions were answered."""
    from jobauto.cluster import host
    from jobauto.run import opener as runner
    from jobauto.run.submitting import START_GRACE_S

    c = sched.cluster
    # a batch of 2: start mark, 2 submissions, end mark; with --ahead one batch of 12
    steps, cuts = [-1, 0, 1, 2, 3, 4], ([-1, 0, 1, 2, 3, 4] if ahead == 0 else [7])
    rdir = c.remote_dir(f"cut{ahead}-{sched.name}")
    log = c.path(rdir) / "runs.log"
    ldir = tmp_path / "camp"
    for layer in range(len(steps)):
        for j in range(2):
            deps = [f"../l{layer - 1}/qsub.finished.{k}" for k in range(2)] if layer else []
            make_job(ldir / "init", f"l{layer}/qsub.{j}", deps, job_body(log, f"l{layer}/{j}", 0.2))
    transports: list[CutTransport] = []

    def cut_transport(opts: Options) -> CutTransport:
        t = CutTransport(opts.remote or "", user=opts.user, config_path=opts.ssh_config)
        t.connect()
        transports.append(t)
        return t

    monkeypatch.setattr(host, "open_transport", cut_transport)
    opts = Options(ldir=ldir, rdir=rdir, remote=c.host, ssh_config=c.ssh_config, datedir="r",
                   maxqsub=2, lost_after=3600, scheduler=sched.name, ahead=ahead,
                   scheduler_bin=[a.split("=", 1)[1] for a in sched.args if a.startswith("--scheduler-bin=")])
    run = runner.open_run(opts, log=lambda s: None)
    t = transports[0]
    first_try = re.compile(rb"ja\w+_1\b")
    offset = 0.0
    pending_steps = list(cuts)
    orig = t._outgoing

    def outgoing(data: bytes) -> bytes:
        # cut only a layer's first batch, never the resubmission that may follow a cut
        if pending_steps and b"jobauto-submit" in data and first_try.search(data):
            t.arm(pending_steps.pop(0))
        return orig(data)

    t._outgoing = outgoing  # type: ignore[method-assign]
    try:
        deadline = time.time() + 300
        result = None
        while time.time() < deadline:
            result = run.monitor.tick(time.time() + offset)
            if result.finished:
                break
            if any(j.unconfirmed for j in run.monitor.jobs.values()):
                offset += START_GRACE_S + 1  # let an unstarted batch's grace run out at once
            time.sleep(0.3)
        assert result is not None and result.finished and result.exit_code == 0, result
    finally:
        t.close()
        run.store.close()
    assert t.cuts == cuts
    runs = runs_per_job(log)
    assert len(runs) == 2 * len(steps) and set(runs.values()) == {1}, runs
    tag = run.monitor.tag
    per_job = _accounted(sched, f"ja{tag}", 2 * len(steps))
    assert len(per_job) == 2 * len(steps) and set(per_job.values()) == {1}, per_job


@pytest.mark.serial   # sets Grid Engine's global max_u_jobs
def test_refusal_at_a_user_limit_backs_off_and_the_run_completes(sge_limit: int, tmp_path: Path) -> None:
    """Grid Engine refuses submissions over max_u_jobs: the run waits, says why, and finishes."""
    ldir = tmp_path / "camp"
    for i in range(4):
        make_job(ldir / "init", f"a/qsub.{i}", body="sleep 1")
    p = jobmon(f"--ldir={ldir}", f"--rdir=jobauto-tests/limit-{time.time_ns()}", f"--remote={HOST}",
               f"--ssh-config={SSH_CONFIG}", "--interval=0.5", "--scheduler=sge", "--datedir=r",
               timeout=300, check_rc=0)
    assert "not submitting: the scheduler refused a submission" in p.stdout
    assert "all jobs done" in p.stdout


@pytest.fixture
def sge_limit(sge: object) -> object:
    """Grid Engine's global max_u_jobs set to 1 for the test, restored after."""
    before = ssh("qconf -sconf global | awk '$1==\"max_u_jobs\"{print $2}'").stdout.strip() or "0"
    _set_max_u_jobs(1)
    try:
        yield 1
    finally:
        _set_max_u_jobs(int(before))


def _set_max_u_jobs(n: int) -> None:
    import subprocess
    # qconf -Mconf takes the configuration's name from the file's name
    subprocess.run(["bash", "-c", f"d=$(mktemp -d) && qconf -sconf global | sed 's/^max_u_jobs .*/"
                    f"max_u_jobs {n}/' > $d/global && qconf -Mconf $d/global; rc=$?; rm -rf $d; exit $rc"],
                   check=True, capture_output=True, timeout=60)


def test_unreadable_and_slow_qsub_answers_are_settled_without_duplicates(
        sge: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A qsub (wrapped through --scheduler-bin) that prints garbage after submitting, or that
    hangs past the submit timeout: the outcome is unknown, settled from the journal and the
    queue by name; every job is accepted exactly once (qacct) and the run completes."""
    import os
    import shutil

    from jobauto.run import mirror as remote
    from jobauto.run import opener as runner
    c: Cluster = sge  # type: ignore[assignment]
    base = c.remote_dir("wrapped")
    bindir = c.path(base) / "bin"
    bindir.mkdir(parents=True)
    (bindir / "qsub").write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '  *1_1*|*3_1*) /usr/bin/qsub "$@" >/dev/null && echo "Grid Engine says: hello";;\n'
        '  *2_1*|*4_1*) /usr/bin/qsub "$@"; rc=$?; sleep 8; exit $rc;;\n'
        '  *) exec /usr/bin/qsub "$@";;\n'
        "esac\n")
    (bindir / "qsub").chmod(0o755)
    for p in (c.path(base), bindir):
        shutil.chown(p, "jobauto", "jobauto")
    rdir = f"{base}/runs"
    log = c.path(rdir) / "runs.log"
    ldir = tmp_path / "camp"
    for i in range(4):
        make_job(ldir / "init", f"a/qsub.{i}", body=job_body(log, f"a/{i}", 0.2))
    monkeypatch.setattr(remote, "SUBMIT_TIMEOUT_S", 2.0)
    monkeypatch.setattr(remote, "SUBMIT_PER_JOB_S", 0.5)
    opts = Options(ldir=ldir, rdir=rdir, remote=HOST, ssh_config=SSH_CONFIG, datedir="r",
                   maxqsub=4, lost_after=3600, scheduler="sge",
                   scheduler_bin=[os.path.join(str(c.home), base, "bin")])
    run = runner.open_run(opts, log=lambda s: None)
    try:
        deadline = time.time() + 180
        offset = 0.0
        notes: list[str] = []
        while time.time() < deadline:
            r = run.monitor.tick(time.time() + offset)
            notes += r.notes
            if r.finished:
                break
            time.sleep(0.5)
        assert r.finished and r.exit_code == 0, (r, notes)
    finally:
        run.remote.transport.close()
        run.store.close()
    assert any("lost the answer" in n for n in notes), notes
    runs = runs_per_job(log)
    assert len(runs) == 4 and set(runs.values()) == {1}, runs
    per_job = _accounted(Sched("sge", c, []), f"ja{run.monitor.tag}", 4)
    assert len(per_job) == 4 and set(per_job.values()) == {1}, per_job
