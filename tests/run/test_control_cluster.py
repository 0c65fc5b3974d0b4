"""`jobauto cancel`, `jobauto set` and `jobauto resume` (jobauto/run/control.py and the monitor's
side, run/cancelling.py, run/settings.py) through the CLI against the real Grid Engine and Slurm
through the real sshd (tests/cluster/up.sh)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from helpers import (
    Cluster,
    base_args,
    job_body,
    jobauto,
    jobmon,
    make_job,
    ssh,
    start_jobmon,
    template_script,
)

pytestmark = pytest.mark.cluster
QUEUE = {"sge": "qstat -u '*'", "slurm": "squeue -h -o %i"}
FLAGS = {"sge": ["--scheduler=sge"], "slurm": ["--scheduler=slurm"]}


def queued(sched: str, ids: list[str]) -> set[str]:
    """Which of IDS the scheduler still lists."""
    out = ssh(QUEUE[sched]).stdout
    words = {w for line in out.splitlines() for w in line.split()[:1]}
    return {i for i in ids if i in words}


def jobs(run: Path) -> dict[str, tuple[str, str, str | None, float | None]]:
    """name -> (state, verdict, scheduler id, submitted at) from the run's store."""
    db = sqlite3.connect(run / ".jobauto/state.db")
    try:
        return {r[0]: r[1:] for r in db.execute(
            "SELECT name, state, verdict, sched_id, started_at FROM jobs")}
    finally:
        db.close()


def counts(run: Path) -> dict[str, int]:
    out: dict[str, int] = json.loads(jobauto("status", str(run), "--json", check_rc=0).stdout)["counts"]
    return out


def wait_for(check, timeout_s: float = 180.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout_s
    while not check():
        assert time.time() < deadline, "timed out"
        time.sleep(0.5)


@pytest.mark.parametrize("name", ["sge", "slurm"])
def test_cancel_one_job_then_the_whole_run_through_the_monitor(
        name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    c: Cluster = request.getfixturevalue(name)
    rdir = c.remote_dir("cancel")
    ldir = tmp_path / "camp"
    for d in ("a", "b"):
        make_job(ldir / "init", f"{d}/qsub.0", script=template_script("sleep 600"))
        make_job(ldir / "init", f"{d}/qsub.1", ["qsub.finished.0"])
    for i in range(3):
        make_job(ldir / "init", f"later/qsub.{i}")
    run = ldir / "r"
    mon = start_jobmon([*base_args(c, ldir, rdir), *FLAGS[name], "--maxqsub=2", "--interval=20",
                        "--datedir=r"], tmp_path / "mon.out")
    try:
        wait_for(lambda: run.exists() and all(jobs(run)[f"{d}/qsub.0"][2] for d in "ab"))
        ids = {n: jobs(run)[n][2] or "" for n in ("a/qsub.0", "b/qsub.0")}
        assert queued(name, list(ids.values())) == set(ids.values())
        p = jobauto("cancel", str(run), "a/qsub.0", check_rc=0)    # the monitor waits 20 s: woken
        assert "cancelled 1 job(s)" in p.stdout
        # Grid Engine lists a deleted running job (state dr) until its execd has killed it
        wait_for(lambda: queued(name, [ids["a/qsub.0"]]) == set())
        assert queued(name, [ids["b/qsub.0"]]) == {ids["b/qsub.0"]}
        state = jobs(run)
        assert state["a/qsub.0"][:2] == ("error", "cancelled")
        n = counts(run)
        assert n["cancelled"] == 1 and n["blocked"] == 1 and n["error"] == 0
        p = jobauto("cancel", str(run), check_rc=0)
        assert "cancelled the whole run" in p.stdout
        assert mon.wait(120) == 1                                   # documented: 1
    finally:
        if mon.poll() is None:
            mon.kill()
    wait_for(lambda: queued(name, list(ids.values())) == set())   # qstat/squeue: none left
    state = jobs(run)
    assert {state[f"{d}/qsub.{i}"][:2] for d in "ab" for i in (0, 1)} == {("error", "cancelled")}
    assert {s[:2] for s in state.values()} <= {("error", "cancelled"), ("done", "done")}
    out = (tmp_path / "mon.out").read_text()
    assert "cancelled b/qsub.0:" in out and "cancelled b/qsub.1:" in out
    text = jobauto("explain", str(run), "b/qsub.0", check_rc=0).stdout
    assert f"{name} cancel, exit 0" in text and "verdict:    cancelled" in text


def test_cancel_without_a_monitor_on_grid_engine(sge: Cluster, tmp_path: Path) -> None:
    rdir = sge.remote_dir("cancel-direct")
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "a/qsub.0", script=template_script("sleep 600"))
    make_job(ldir / "init", "a/qsub.1", ["qsub.finished.0"])
    jobmon(*base_args(sge, ldir, rdir), "--scheduler=sge", "--datedir=r", "--once", check_rc=75)
    run = ldir / "r"
    wait_for(lambda: jobs(run)["a/qsub.0"][2] is not None, 10)
    jid = jobs(run)["a/qsub.0"][2] or ""
    assert queued("sge", [jid]) == {jid}
    p = jobauto("cancel", str(run), "a/qsub.0", check_rc=0)
    assert "cancelled 1 job(s)" in p.stdout
    wait_for(lambda: queued("sge", [jid]) == set())   # a deleted running job lists as dr a while
    assert counts(run)["cancelled"] == 1 and counts(run)["blocked"] == 1
    # the run is resumed with nothing but --ldir and --datedir: it ends, 1 (cancelled, blocked)
    p = jobmon(f"--ldir={ldir}", "--datedir=r", timeout=120, check_rc=1)
    assert "cancelled a/qsub.0:" in p.stdout and "blocked  a/qsub.1: by a/qsub.0" in p.stdout


def overlap_at(log: Path, label: str) -> int:
    """How many jobs of a job_body log were running when LABEL started (itself included)."""
    events = [ln.split() for ln in log.read_text().splitlines()]
    start = next(float(t) for s, t, lab in events if s == "+" and lab == label)
    began = {lab: float(t) for s, t, lab in events if s == "+"}
    ended = {lab: float(t) for s, t, lab in events if s == "-"}
    return sum(1 for lab, t in began.items() if t <= start < ended.get(lab, float("inf")))


def test_set_maxqsub_raised_and_lowered_and_interval_on_grid_engine(sge: Cluster, tmp_path: Path) -> None:
    rdir = sge.remote_dir("set")
    log = sge.path(rdir) / "times.log"
    ldir = tmp_path / "camp"
    n = 14
    for i in range(n):
        make_job(ldir / "init", f"fan/qsub.{i:02d}", body=job_body(log, f"fan/qsub.{i:02d}", 3))
    run = ldir / "r"
    mon = start_jobmon([*base_args(sge, ldir, rdir), "--scheduler=sge", "--maxqsub=1",
                        "--interval=600", "--datedir=r"], tmp_path / "mon.out")
    try:
        wait_for(lambda: log.exists())
        p = jobauto("set", str(run), "maxqsub=4", "interval=1", check_rc=0)
        assert "maxqsub 1 -> 4" in p.stdout and "interval 600 -> 1" in p.stdout
        raised = time.time()
        wait_for(lambda: counts(run)["done"] >= 6)                  # interval 600 would not get here
        p = jobauto("set", str(run), "maxqsub=2", check_rc=0)
        assert "maxqsub 4 -> 2" in p.stdout
        lowered = time.time()
        assert mon.wait(300) == 0
    finally:
        if mon.poll() is None:
            mon.kill()
    state = jobs(run)
    after_raise = [j for j, s in state.items() if s[3] and raised < s[3] < lowered]
    after_lower = [j for j, s in state.items() if s[3] and s[3] > lowered]
    assert after_raise and after_lower
    # the jobs' own record: the concurrency each job saw when it started follows the setting
    assert max(overlap_at(log, j) for j in after_raise) >= 2
    assert max(overlap_at(log, j) for j in state) <= 4
    assert all(overlap_at(log, j) <= 2 for j in after_lower)
    text = jobauto("explain", str(run), check_rc=0).stdout
    assert "maxqsub        2" in text and "maxqsub 4 -> 2" in text
    assert "Settings: maxqsub=2 interval=1" in jobauto("status", str(run), check_rc=0).stdout
