"""jobmon end to end (the cycle, jobauto/run/cycle.py, as jobmon drives it) against real Grid Engine
through the real sshd (tests/cluster/up.sh)."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    TESTS,
    Cluster,
    base_args,
    dag,
    jobauto,
    jobmon,
    kill_9_at_random,
    make_job,
    max_overlap,
    runs_per_job,
    start_jobmon,
)

from jobauto.run import quelist

pytestmark = pytest.mark.cluster
UP = TESTS / "cluster"


def test_dag_on_grid_engine_over_ssh(sge: Cluster, tmp_path: Path) -> None:
    rdir = sge.remote_dir("dag")
    log = sge.path(rdir) / "runs.log"
    ldir = tmp_path / "camp"
    dirs = ["Si", "Ga As", "$(touch PWNED);x", "it's"]
    n = dag(ldir / "init", log, dirs)
    p = jobmon(*base_args(sge, ldir, rdir), "--maxqsub=3", "--ahead=0", "--datedir=r", "--scheduler=auto",
               timeout=300, check_rc=0)
    assert "(sge," in p.stdout and "all jobs done" in p.stdout
    runs = runs_per_job(log)
    assert len(runs) == n and set(runs.values()) == {1}
    # --ahead=0: the bound is --maxqsub's alone (a job queued ahead may start beside them the
    # moment its predecessor ends: docs/decisions.md "Edges to the scheduler")
    assert max_overlap(log) <= 3
    assert not list(sge.path(rdir).rglob("PWNED")) and not list(tmp_path.rglob("PWNED"))
    lines = quelist.parse((ldir / "r" / "quelist").read_text())
    assert len(lines) == n and lines[-1].name == "summary/qsub.0"
    assert all(ln.extra["jobid"].isdigit() and set(ln.times) == {"started", "finished"} for ln in lines)
    for d in dirs:  # markers and the scheduler's output files are back locally
        assert (ldir / "r" / d / "qsub.finished.1").exists()
        assert list((ldir / "r" / d).glob("qsub.1.o*"))


def test_failing_job_on_grid_engine(sge: Cluster, tmp_path: Path) -> None:
    rdir = sge.remote_dir("fail")
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "a/qsub.0", body="exit 5")
    make_job(ldir / "init", "a/qsub.1", ["qsub.finished.0"])
    make_job(ldir / "init", "b/qsub.0")
    p = jobmon(*base_args(sge, ldir, rdir), "--datedir=r", "--scheduler=sge", timeout=120, check_rc=1)
    assert "error    a/qsub.0: failed: exited with code 5" in p.stdout
    assert "blocked  a/qsub.1: by a/qsub.0" in p.stdout


def test_walltime_kill_is_retried_with_the_templates_longer_walltime(sge: Cluster, tmp_path: Path) -> None:
    rdir = sge.remote_dir("wallretry")
    ldir = tmp_path / "camp"
    # h_rt kills with SIGKILL: no marker; qacct says walltime; the retry gets the longer h_rt
    make_job(ldir / "init", "a/qsub.0", script="#!/bin/bash\n#$ -l h_rt=0:0:3\n"
             "#jobauto walltime-retry: -l h_rt=0:1:0\nsleep 8\ntouch qsub.finished.0\n")
    make_job(ldir / "init", "a/qsub.1", ["qsub.finished.0"])
    p = jobmon(*base_args(sge, ldir, rdir), "--datedir=r", "--scheduler=sge", "--retries=1",
               timeout=180, check_rc=0)
    assert "all jobs done" in p.stdout
    ex = jobauto("explain", str(ldir / "r"), "a/qsub.0", check_rc=0).stdout
    assert "walltime" in ex and "qacct" in ex and "walltime-retry" in ex and "-l h_rt=0:1:0" in ex
    assert "automatic retries 1" in ex and "state:      done" in ex


def test_kill_9_then_resume_on_grid_engine_runs_every_job_once(sge: Cluster, tmp_path: Path) -> None:
    rdir = sge.remote_dir("kill")
    log = sge.path(rdir) / "runs.log"
    ldir = tmp_path / "camp"
    n = dag(ldir / "init", log, ["a", "b", "c"], depth=3, sleep=0.5)
    args = [*base_args(sge, ldir, rdir), "--datedir=r", "--maxqsub=4", "--interval=0.3"]
    kill_9_at_random(args, tmp_path / "mon.out", random.Random(11), 12, 0.3, 2.5)
    p = jobmon(*args, timeout=300)
    assert p.returncode == 0, (tmp_path / "mon.out").read_text() + p.stdout + p.stderr
    runs = runs_per_job(log)
    assert len(runs) == n and set(runs.values()) == {1}, runs


@pytest.mark.serial   # restarts the shared sshd
def test_sshd_restart_mid_run_is_survived(sge: Cluster, tmp_path: Path) -> None:
    rdir = sge.remote_dir("sshd")
    log = sge.path(rdir) / "runs.log"
    ldir = tmp_path / "camp"
    n = dag(ldir / "init", log, ["a", "b"], depth=3, sleep=1.5)
    proc = start_jobmon([*base_args(sge, ldir, rdir), "--datedir=r"], tmp_path / "mon.out")
    try:
        time.sleep(4)
        subprocess.run(["bash", str(UP / "restart-sshd.sh")], check=True, capture_output=True, timeout=60)
        assert proc.wait(300) == 0, (tmp_path / "mon.out").read_text()
    finally:
        proc.kill()
    assert set(runs_per_job(log).values()) == {1} and len(runs_per_job(log)) == n


