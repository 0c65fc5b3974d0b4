"""Arrays for sweeps (jobauto/run/arrays.py) through the jobmon CLI against the real Grid Engine,
Slurm and Slurm's PBS/Torque wrappers over sshd (tests/cluster/up.sh): a `jobauto render` sweep
goes as a few array submissions, and each row keeps its own verdict, its `jobauto explain`, its
`jobauto cancel` and its blocked dependents. The same 100 ms away (far_sshd), on Grid Engine,
without the walltime-killed row: the smallest case for latency (the 30 s walltime is the cost)."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest
from helpers import TORQUE_BIN, Cluster, base_args, jobauto, start_jobmon

pytestmark = pytest.mark.cluster

# One walltime for the whole sweep (the directives are the array's shape, so every row shares
# them): Grid Engine kills at h_rt with SIGKILL; Slurm's shortest limit is a minute, SIGTERM first
# (the PBS wrappers' sbatch reads #PBS lines).
WALLTIME = {"sge": "#$ -l h_rt=0:0:30", "slurm": "#SBATCH --time=1",
            "pbs": "#PBS -l walltime=00:01:00"}
FLAGS = {"sge": ["--scheduler=sge"], "slurm": ["--scheduler=slurm"],
         "pbs": ["--scheduler=pbs", f"--scheduler-bin={TORQUE_BIN}"]}
TASK_ID = {"sge": r"(\d+)\.(\d+)", "slurm": r"(\d+)_(\d+)", "pbs": r"(\d+)\[(\d+)\]"}
TEMPLATE = """#!/bin/bash
{walltime}
case __what_q__ in
  fail) echo failing; exit 3;;
  wall) sleep 300;;
  cancel) touch started; sleep 600;;
  *) echo "row $(basename "$PWD") ok";;
esac
"""
OK_ROWS = [f"ok{i:02d}" for i in range(12)]
# row -> (what it does, what it waits for); the failing, walltime-killed and cancelled rows each
# block one dependent; two rows wait on done rows and are done too
ROWS = {"wall": ("wall", ""), "cancel": ("cancel", ""), "fail": ("fail", "")} | {
    r: ("ok", "") for r in OK_ROWS} | {
    "after-fail": ("ok", "fail"), "after-wall": ("ok", "wall"), "after-cancel": ("ok", "cancel"),
    "after-ok0": ("ok", "ok00"), "after-ok1": ("ok", "ok01 ok02")}


def states(run: Path) -> dict[str, tuple[str, str, str | None]]:
    """name -> (state, verdict, scheduler id) from the run's store."""
    db = sqlite3.connect(run / ".jobauto/state.db")
    try:
        return {r[0]: r[1:] for r in db.execute("SELECT name, state, verdict, sched_id FROM jobs")}
    finally:
        db.close()


def wait_for(check, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout_s
    while not check():
        assert time.time() < deadline, "timed out"
        time.sleep(0.5)


@pytest.mark.parametrize(("name", "far"), [("sge", False), ("slurm", False), ("pbs", False),
                                            ("sge", True)],
                         ids=["sge", "slurm", "pbs", "sge-100ms"])
def test_a_rendered_sweep_goes_as_arrays_and_each_row_keeps_its_verdict(
        name: str, far: bool, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    c: Cluster = request.getfixturevalue(name)
    if far:
        c = request.getfixturevalue("far_sshd")
    killed = () if far else ("wall",)
    rows = {r: v for r, v in ROWS.items() if r not in ("wall", "after-wall") or killed}
    ended = (*killed, "cancel", "fail")
    rdir = c.remote_dir(f"arrays-{name}")
    ldir = tmp_path / "camp"
    ldir.mkdir()
    csv = "JOBSCHEDULER_JOB_ID,what,JOBSCHEDULER_DEPENDS_ON\n" + "".join(
        f"{r},{what},{deps}\n" for r, (what, deps) in rows.items())
    (tmp_path / "sweep.csv").write_text(csv)
    (tmp_path / "job.sh").write_text(TEMPLATE.format(walltime=WALLTIME[name]))
    p = jobauto("render", "sweep.csv", "--template", "job.sh", "--out", str(ldir / "init"),
                cwd=tmp_path, check_rc=0)
    assert f"{len(rows)} jobs from sweep.csv" in p.stdout
    run = ldir / "r"
    remote = c.path(rdir) / "r"
    out = tmp_path / "mon.out"
    mon = start_jobmon([*base_args(c, ldir, rdir), *FLAGS[name], "--maxqsub=100", "--datedir=r",
                        "--lost-after=240"], out)
    try:
        wait_for(lambda: (remote / "cancel" / "started").exists(), 240)   # the row runs: cancel it
        p = jobauto("cancel", str(run), "cancel/qsub.0", check_rc=0)
        assert "cancelled 1 job(s)" in p.stdout, p.stdout
        assert mon.wait(150) == 1, out.read_text()          # documented: 1, some jobs failed
    finally:
        if mon.poll() is None:
            mon.kill()
    text = out.read_text()
    st = states(run)
    # the rows went as array tasks: each has its task's own scheduler id (4711.3, 4711_3, 4711[3])
    tasks = {r: re.fullmatch(TASK_ID[name], st[f"{r}/qsub.0"][2] or "")
             for r in (*ended, *OK_ROWS)}
    assert all(tasks.values()), st
    first = {m.group(1) for m in tasks.values() if m}
    assert len(first) == 1, first     # all 15 (14) ready rows: one array
    # each row its own verdict, and its dependent blocked by it
    assert st["fail/qsub.0"][:2] == ("error", "failed")
    if killed:
        assert st["wall/qsub.0"][:2] == ("error", "walltime")
    assert st["cancel/qsub.0"][:2] == ("error", "cancelled")
    for r in ended:
        assert st[f"after-{r}/qsub.0"][:3] == ("pending", "", None), st    # never submitted
        assert f"blocked  after-{r}/qsub.0: by {r}/qsub.0" in text, text
    done = [*OK_ROWS, "after-ok0", "after-ok1"]
    assert {st[f"{r}/qsub.0"][:2] for r in done} == {("done", "done")}, st
    for r in OK_ROWS:  # each task ran its own row in its own directory: qsub.0.oARRAY.TASK
        array, task = tasks[r].groups()   # type: ignore[union-attr]
        got = remote / r / f"qsub.0.o{array}.{task}"
        assert got.read_text() == f"row {r} ok\n", sorted(f.name for f in (remote / r).iterdir())
    counts = json.loads(jobauto("status", str(run), "--json", check_rc=0).stdout)["counts"]
    assert counts["done"] == len(done) and counts["blocked"] == len(ended) and counts["cancelled"] == 1
    ex = jobauto("explain", str(run), "fail/qsub.0", check_rc=0).stdout
    assert "verdict:    failed, exit code 3" in ex, ex
    if killed:
        ex = jobauto("explain", str(run), "wall/qsub.0", check_rc=0).stdout
        assert "verdict:    walltime" in ex, ex
    ex = jobauto("explain", str(run), "cancel/qsub.0", check_rc=0).stdout
    assert "verdict:    cancelled" in ex and f"{name} cancel" in ex, ex
    # scheduler submissions, from the cluster's submit journal: far fewer than the jobs
    journal = (remote / ".jobauto" / "submit.log").read_text().splitlines()
    submits = [ln.split("\t") for ln in journal if ln.startswith("S\t")]
    assert all(s[2] == "0" for s in submits), submits
    assert len(submits) <= 4 and len(rows) == 20 - 2 * far, submits
