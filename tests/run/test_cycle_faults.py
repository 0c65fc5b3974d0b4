"""A cycle (jobauto/run/cycle.py, submitting.py) when something goes wrong, through the jobmon
command on the local scheduler: killed at each step of a cycle (core/faults.py's points), the
local disk filling up or turning read-only during a cycle, no room for the end-of-run fetch.
Each: what the user sees, the exit code, and that after the fix-up the message names every job
runs once. docs/failure-modes.md has the table.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import (
    check_ran_once,
    dag,
    fill_disk_command,
    job_body,
    jobmon,
    leftovers,
    make_job,
    remount,
    run_cli,
)

CYCLE = ["cycle.observed", "cycle.learned", "cycle.intent", "cycle.submitted", "cycle.quelist"]


def args_for(tmp: Path, ldir: Path) -> list[str]:
    return [f"--ldir={ldir}", f"--rdir={tmp}/remote", "--scheduler=local", "--interval=0.1",
            "--datedir=r"]


def refused(p: subprocess.CompletedProcess[str], *parts: str) -> None:
    """Exit 2 with one error line (no traceback) holding every part."""
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, p.stdout + p.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])


@pytest.mark.parametrize("cycle", ["first", "later"])
@pytest.mark.parametrize("fault", CYCLE)
def test_killed_at_each_step_of_a_cycle_then_resumed_runs_every_job_once(
        tmp_path: Path, fault: str, cycle: str) -> None:
    """kill -9 (JOBAUTO_FAULT) at each step of the first cycle of a new run, or of the first
    cycle after a resume while jobs run; the resume finishes with every job run once."""
    ldir, log = tmp_path / "camp", tmp_path / "runs.log"
    n = dag(ldir / "init", log, ["a", "b"], depth=2, sleep=0.3)
    args = args_for(tmp_path, ldir)
    if cycle == "later":
        jobmon(*args, "--once", check_rc=75)   # the first jobs are submitted and running
    p = run_cli("jobmon", *args, env={"JOBAUTO_FAULT": fault}, timeout=120)
    assert p.returncode == 137, p.stdout + p.stderr
    p = jobmon(*args, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    check_ran_once(ldir / "r", log, n)


def test_a_disk_that_fills_during_a_cycle_stops_it_with_one_line_then_the_resume_goes_on(
        tmp_path: Path, small_disk: Callable[..., Path]) -> None:
    disk = small_disk("1m")
    ldir, log = disk / "camp", tmp_path / "runs.log"
    make_job(ldir / "init", "fill/qsub.0", body=fill_disk_command(disk) + "\n" + job_body(log, "fill", 0.1))
    make_job(ldir / "init", "next/qsub.0", ["../fill/qsub.finished.0"], job_body(log, "next", 0.1))
    make_job(ldir / "init", "side/qsub.0", body=job_body(log, "side", 1.0))
    args = args_for(tmp_path, ldir)
    p = jobmon(*args, timeout=120)
    refused(p, str(ldir / "r"), "no space left on device; free space, then resume with --datedir=r")
    assert leftovers(disk) == []
    (disk / "filler").unlink()
    p = jobmon(*args, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    check_ran_once(ldir / "r", log, 3)


def test_a_state_directory_made_unwritable_during_a_cycle_stops_it_then_the_resume_goes_on(
        tmp_path: Path) -> None:
    """(A file system cannot be remounted read-only under a process writing to it: the job makes
    the run's .jobauto/ immutable instead, which root cannot write either.)"""
    if os.geteuid() != 0:
        pytest.skip("chattr +i needs root")
    ldir, log = tmp_path / "camp", tmp_path / "runs.log"
    state = ldir / "r" / ".jobauto"
    make_job(ldir / "init", "ro/qsub.0", body=f"chattr +i {state}\n" + job_body(log, "ro", 0.1))
    make_job(ldir / "init", "next/qsub.0", ["../ro/qsub.finished.0"], job_body(log, "next", 0.1))
    args = args_for(tmp_path, ldir)
    try:
        p = jobmon(*args, timeout=120)
        refused(p, f"{state}: permission denied; make it writable, then resume with --datedir=r")
    finally:
        subprocess.run(["chattr", "-i", str(state)], check=False)
    p = jobmon(*args, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    check_ran_once(ldir / "r", log, 2)
    assert leftovers(ldir) == []


def test_results_that_do_not_fit_stop_the_end_of_run_fetch_then_the_resume_fetches_them(
        tmp_path: Path, small_disk: Callable[..., Path]) -> None:
    disk = small_disk("512k")
    ldir, log = disk / "camp", tmp_path / "runs.log"
    make_job(ldir / "init", "a/qsub.0", body="head -c 700000 /dev/zero > big.out\n" + job_body(log, "a", 0.1))
    args = [*args_for(tmp_path, ldir), "--fetch-all"]
    p = jobmon(*args, timeout=120)
    refused(p, str(ldir / "r/a/big.out"), "no space left on device; free space, then resume with "
            "--datedir=r")
    assert "all jobs done" in p.stdout and not (ldir / "r/a/big.out").exists()
    assert leftovers(disk) == []
    remount(disk, "size=2m")
    p = jobmon(*args, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (ldir / "r/a/big.out").stat().st_size == 700_000
    check_ran_once(ldir / "r", log, 1)
