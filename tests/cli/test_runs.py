"""`jobauto cancel`, `jobauto set`, `jobauto resume` and `jobauto explain RUN` (jobauto/cli/runs.py,
run/control.py) through the CLI, on this machine's local scheduler: separate processes, a real
monitor, real jobs. Grid Engine and Slurm: run/test_control_cluster.py."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from helpers import (
    chain,
    job_body,
    jobauto,
    jobmon,
    make_job,
    max_overlap,
    start_jobmon,
    template_script,
)


def base(tmp_path: Path, *more: str) -> list[str]:
    return [f"--ldir={tmp_path / 'camp'}", f"--rdir={tmp_path / 'remote'}", "--scheduler=local",
            "--datedir=r", *more]


def status(run: Path) -> dict[str, int]:
    p = jobauto("status", str(run), "--json", check_rc=0)
    counts: dict[str, int] = json.loads(p.stdout)["counts"]
    return counts


def wait_for(check, timeout_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout_s
    while not check():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_set_without_a_monitor_then_resume_with_only_ldir_and_datedir(tmp_path: Path) -> None:
    log = tmp_path / "times.log"
    for i in range(6):
        make_job(tmp_path / "camp/init", f"fan/qsub.{i}", body=job_body(log, f"f{i}", 1.0))
    jobmon(*base(tmp_path, "--maxqsub=1", "--interval=0.3", "--initonly"), check_rc=0)
    run = tmp_path / "camp/r"
    for bad, said in (("maxqsub=0", "maxqsub must be at least 1, not 0"),
                      ("intervall=2", "did you mean 'interval'?"),
                      ("rdir=/x", "rdir cannot change")):
        p = jobauto("set", str(run), "maxqsub=3", bad, check_rc=2)
        assert said in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = jobauto("set", str(run), "maxqsub=3", "lost-after=120", check_rc=0)
    assert "maxqsub 1 -> 3; lost-after 300 -> 120" in p.stdout and "no monitor" in p.stdout
    p = jobmon(f"--ldir={tmp_path / 'camp'}", "--datedir=r", check_rc=0)   # no --rdir, --scheduler
    assert "all jobs done" in p.stdout
    assert max_overlap(log) <= 3
    text = jobauto("explain", str(run), check_rc=0).stdout
    assert "maxqsub        3" in text and "recorded at creation: " in text
    assert "jobauto set (no monitor running): maxqsub 1 -> 3" in text
    assert "Settings: maxqsub=3 interval=0.3 lost-after=120" in jobauto("status", str(run)).stdout


def test_a_flag_on_resume_overrides_and_is_recorded_and_resume_needs_a_run(tmp_path: Path) -> None:
    chain(tmp_path / "camp/init", "a", 2)
    jobmon(*base(tmp_path, "--interval=0.3", "--initonly"), check_rc=0)
    run = tmp_path / "camp/r"
    p = jobauto("resume", str(run), "--maxqsub=4", check_rc=0)
    assert "settings changed on resume: maxqsub 10 -> 4" in p.stdout and "all jobs done" in p.stdout
    assert "resume: maxqsub 10 -> 4" in jobauto("explain", str(run), check_rc=0).stdout
    p = jobauto("resume", str(tmp_path / "camp"), check_rc=2)
    assert "not a jobmon run directory" in p.stderr


def test_a_run_made_before_settings_were_recorded_needs_its_flags_once(tmp_path: Path) -> None:
    chain(tmp_path / "camp/init", "a", 1)
    jobmon(*base(tmp_path, "--interval=0.3", "--initonly"), check_rc=0)
    run = tmp_path / "camp/r"
    db = sqlite3.connect(run / ".jobauto/state.db")
    with db:
        db.execute("DELETE FROM meta WHERE key='settings'")
    db.close()
    p = jobmon(f"--ldir={tmp_path / 'camp'}", "--datedir=r", check_rc=2)
    assert "--rdir: is required" in p.stderr
    p = jobauto("resume", str(run), check_rc=2)
    assert "made before jobmon recorded a run's settings" in p.stderr
    jobmon(*base(tmp_path, "--interval=0.3"), check_rc=0)          # with its flags: recorded
    assert "recorded at resume" in jobauto("explain", str(run), check_rc=0).stdout


def test_cancel_without_a_monitor_kills_the_job_and_blocks_its_dependents(tmp_path: Path) -> None:
    # the templates' marker block: a SIGTERM writes qsub.failed (143) and qsub.finished
    make_job(tmp_path / "camp/init", "a/qsub.0", script=template_script("sleep 300"))
    make_job(tmp_path / "camp/init", "a/qsub.1", ["qsub.finished.0"])
    make_job(tmp_path / "camp/init", "b/qsub.0", script=template_script("sleep 300"))
    jobmon(*base(tmp_path, "--interval=0.3", "--once"), check_rc=75)
    run = tmp_path / "camp/r"
    store = sqlite3.connect(run / ".jobauto/state.db")
    pids = dict(store.execute("SELECT name, sched_id FROM jobs WHERE state='running'"))
    store.close()
    assert set(pids) == {"a/qsub.0", "b/qsub.0"} and all(alive(int(p)) for p in pids.values())
    p = jobauto("cancel", str(run), "--status", "bogus", check_rc=2)
    assert "--status: cannot cancel jobs in state 'bogus'" in p.stderr
    p = jobauto("cancel", str(run), "a/qsub.0", check_rc=0)
    assert "cancelled 1 job(s)" in p.stdout
    wait_for(lambda: not alive(int(pids["a/qsub.0"])), 30)
    assert alive(int(pids["b/qsub.0"]))
    counts = status(run)
    assert counts["cancelled"] == 1 and counts["blocked"] == 1 and counts["running"] == 1
    text = jobauto("explain", str(run), "a/qsub.0", check_rc=0).stdout
    assert "verdict:    cancelled" in text and "cancelled by jobauto cancel (request 1)" in text
    p = jobauto("cancel", str(run), check_rc=0)                      # the rest of the run
    assert "cancelled the whole run" in p.stdout
    wait_for(lambda: not alive(int(pids["b/qsub.0"])), 30)
    counts = status(run)
    assert counts["cancelled"] == 3 and counts["running"] == 0 and counts["blocked"] == 0
    p = jobmon(f"--ldir={tmp_path / 'camp'}", "--datedir=r", check_rc=1)   # its markers came
    assert "cancelled a/qsub.0:" in p.stdout and "cancelled a/qsub.1:" in p.stdout
    assert (run / "a/qsub.failed.0").read_text().strip() == "143"


def test_cancel_of_the_whole_run_through_its_monitor_ends_it_with_exit_1(tmp_path: Path) -> None:
    for i in range(4):
        make_job(tmp_path / "camp/init", f"fan/qsub.{i}", body="sleep 300")
    make_job(tmp_path / "camp/init", "after/qsub.0", ["../fan/qsub.finished.0"])
    mon = start_jobmon(base(tmp_path, "--interval=30", "--maxqsub=2"), tmp_path / "mon.out")
    run = tmp_path / "camp/r"
    try:
        wait_for(lambda: (run / "quelist").exists() and status(run)["running"] == 2)
        p = jobauto("cancel", str(run), check_rc=0)   # the monitor is waiting 30 s: woken
        assert "cancelled the whole run (5 job(s) cancelled)" in p.stdout
        assert mon.wait(60) == 1
    finally:
        if mon.poll() is None:
            mon.kill()
    out = (tmp_path / "mon.out").read_text()
    assert "cancelled 5" in out and "cancelled fan/qsub.0:" in out
    assert status(run)["cancelled"] == 5


def test_set_interval_and_maxqsub_reach_a_running_monitor(tmp_path: Path) -> None:
    log = tmp_path / "times.log"
    for i in range(8):
        make_job(tmp_path / "camp/init", f"fan/qsub.{i}", body=job_body(log, f"f{i}", 1.5))
    mon = start_jobmon(base(tmp_path, "--interval=3600", "--maxqsub=1"), tmp_path / "mon.out")
    run = tmp_path / "camp/r"
    try:
        wait_for(lambda: log.exists())
        p = jobauto("set", str(run), "interval=0.3", "maxqsub=4", check_rc=0)
        assert "set interval 3600 -> 0.3; maxqsub 1 -> 4" in p.stdout
        assert mon.wait(120) == 0          # an interval of an hour would not have ended it
    finally:
        if mon.poll() is None:
            mon.kill()
    assert 2 <= max_overlap(log) <= 4
    assert os.path.exists(run / "fan/qsub.finished.7")
