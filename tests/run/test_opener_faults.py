"""Opening a run (jobauto/run/opener.py) when something goes wrong, through the jobmon command on
the local scheduler: killed at each step of creating a run (core/faults.py's points), a store
that is empty, cut short, overwritten or never completed, a disk that is full or read-only,
monitors started at the same moment. Each: what the user sees, the exit code, and that after
the fix-up the message names every job runs once. docs/failure-modes.md has the table.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import (
    check_ran_once,
    dag,
    jobauto,
    jobmon,
    leftovers,
    make_job,
    remount,
    run_cli,
)

CREATION = ["create.copied", "create.store", "create.jobs", "create.renamed", "push.started",
            "push.sent", "push.recorded"]
RESTORE = "restore it from a backup, or start a new run"


def campaign(tmp: Path, ldir: Path | None = None) -> tuple[list[str], Path, int]:
    """Two chains of two logging jobs feeding a summary (5 jobs); jobmon's arguments, the jobs'
    log and the number of jobs."""
    ldir = ldir or tmp / "camp"
    log = tmp / "runs.log"
    n = dag(ldir / "init", log, ["a", "b"], depth=2, sleep=0.1)
    return ([f"--ldir={ldir}", f"--rdir={tmp}/remote", "--scheduler=local", "--interval=0.1",
             "--datedir=r"], log, n)


def one_line_error(p: subprocess.CompletedProcess[str], *parts: str) -> str:
    """The one error line of a refused command (exit 2, no traceback), which holds every part."""
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


@pytest.mark.parametrize("fault", CREATION)
def test_killed_at_each_step_of_creating_a_run_then_resumed_runs_every_job_once(
        tmp_path: Path, fault: str) -> None:
    args, log, n = campaign(tmp_path)
    ldir = tmp_path / "camp"
    p = run_cli("jobmon", *args, env={"JOBAUTO_FAULT": fault}, timeout=120)
    assert p.returncode == 137, p.stdout + p.stderr
    assert not log.exists(), "nothing was submitted before the run was on the cluster"
    p = jobmon(*args, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    check_ran_once(ldir / "r", log, n)
    assert leftovers(ldir) == []


@pytest.mark.parametrize("damage", [
    "empty", "cut at 100 bytes", "cut after page 1", "cut 100 bytes short", "garbage in the header",
    "garbage over page 1's tree header", "garbage over page 2", "garbage over the jobs' rows",
    "no creation record"])
def test_a_damaged_store_is_refused_with_one_line_then_the_backup_finishes_the_run(
        tmp_path: Path, damage: str) -> None:
    """A run store that is empty, cut short, overwritten or never completed is never taken as a
    finished run: jobmon, status and explain refuse it in one line naming it, write nothing
    into it, and the run restored from a backup finishes with every job run once."""
    args, log, n = campaign(tmp_path)
    run = tmp_path / "camp" / "r"
    db = run / ".jobauto" / "state.db"
    jobmon(*args, "--once", check_rc=75)
    time.sleep(0.5)   # the first jobs end; what they left on the cluster is read on resume
    backup = tmp_path / "state.db.backup"
    backup.write_bytes(db.read_bytes())
    size, page = len(backup.read_bytes()), int.from_bytes(backup.read_bytes()[16:18], "big")
    with sqlite3.connect(backup) as con:   # where the jobs' rows are: the end of their page
        jobs_end = con.execute("SELECT rootpage FROM sqlite_master WHERE name='jobs'").fetchone()[0] * page
    con.close()
    with open(db, "r+b") as f:
        cut = {"empty": 0, "cut at 100 bytes": 100, "cut after page 1": page,
               "cut 100 bytes short": size - 100}.get(damage)
        at = {"garbage in the header": 0, "garbage over page 1's tree header": 100,
              "garbage over page 2": page, "garbage over the jobs' rows": jobs_end - 300}.get(damage)
        if cut is not None:
            f.truncate(cut)
        elif at is not None:
            f.seek(at)
            f.write(b"\xa5" * 64)
    if damage == "no creation record":
        with sqlite3.connect(db) as con:
            con.execute("DELETE FROM meta WHERE key='created'")
        con.close()
    before = db.read_bytes()

    p = jobmon(*args, timeout=60)
    line = one_line_error(p, str(db), RESTORE, f"the cluster copy is {tmp_path}/remote/r")
    assert db.read_bytes() == before, "nothing written into it"
    assert not (run / ".jobauto" / "state.db-journal").exists()
    for viewer in (["status", str(run)], ["explain", str(run), "a/qsub.0"], ["report", str(run)]):
        v = jobauto(*viewer, timeout=60)
        assert "Traceback" not in v.stderr, v.stderr
        if damage != "garbage over the jobs' rows":
            # (that only PRAGMA quick_check finds, which viewers skip to stay fast)
            one_line_error(v, str(db), RESTORE)
    assert db.read_bytes() == before
    print(line)

    db.write_bytes(backup.read_bytes())   # the fix-up the message names
    p = jobmon(*args, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    check_ran_once(run, log, n)


def test_init_that_does_not_fit_on_the_disk_leaves_nothing_and_resumes_once_there_is_space(
        tmp_path: Path, small_disk: Callable[..., Path]) -> None:
    disk = small_disk("512k")
    args, log, n = campaign(tmp_path, disk / "camp")
    (disk / "camp/init/a/big.dat").write_bytes(b"x" * 300_000)   # fits once, not twice
    p = jobmon(*args, timeout=60)
    one_line_error(p, str(disk / "camp"), "no space left on device; free space, then resume "
                   "with --datedir=r")
    assert sorted(x.name for x in (disk / "camp").iterdir()) == ["init"], "no half-made run"
    assert leftovers(disk) == [] and not log.exists()
    remount(disk, "size=2m")   # space freed
    p = jobmon(*args, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    check_ran_once(disk / "camp/r", log, n)


@pytest.mark.parametrize("when", ["creating", "resuming"])
def test_a_read_only_ldir_is_one_line_then_writable_again_the_run_finishes(
        tmp_path: Path, small_disk: Callable[..., Path], when: str) -> None:
    disk = small_disk("2m")
    args, log, n = campaign(tmp_path, disk / "camp")
    if when == "resuming":
        jobmon(*args, "--once", check_rc=75)
    remount(disk, "ro")
    p = jobmon(*args, timeout=60)
    one_line_error(p, str(disk / "camp"), "read-only file system; make it writable, then resume "
                   "with --datedir=r")
    remount(disk, "rw")
    p = jobmon(*args, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    check_ran_once(disk / "camp/r", log, n)
    assert leftovers(disk) == []


def start_monitors(args: list[str], k: int) -> list[subprocess.Popen[str]]:
    """K jobmon processes started at the same moment."""
    return [subprocess.Popen(["jobmon", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True) for _ in range(k)]


def test_three_monitors_started_at_once_on_one_ldir_each_get_their_own_run(tmp_path: Path) -> None:
    ldir, log = tmp_path / "camp", tmp_path / "runs.log"
    make_job(ldir / "init", "a/qsub.0", body=f"echo ran >> {log}")
    args = [f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.1"]
    procs = start_monitors(args, 3)
    results = [(p.wait(120), *p.communicate()) for p in procs]
    for rc, out, err in results:
        assert rc == 0 and "Traceback" not in err, (rc, out, err)
    runs = sorted(x for x in ldir.iterdir() if x.name != "init")
    assert len(runs) == 3, runs
    assert log.read_text().split() == ["ran"] * 3, "each run ran its one job once"
    assert leftovers(ldir) == []


def test_monitors_started_at_once_on_one_new_run_one_runs_it_the_others_refuse(
        tmp_path: Path) -> None:
    ldir, log = tmp_path / "camp", tmp_path / "runs.log"
    make_job(ldir / "init", "a/qsub.0", body=f"sleep 2; echo ran >> {log}")
    args = [f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.1",
            "--datedir=r"]
    procs = start_monitors(args, 3)
    results = sorted((p.wait(120), *p.communicate()) for p in procs)
    assert [rc for rc, _, _ in results] == [0, 2, 2], results
    for _, _, err in results[1:]:
        assert "a monitor is already running on this run (pid" in err and len(err.splitlines()) == 1
    assert log.read_text().split() == ["ran"]
    assert leftovers(ldir) == []
