"""The loop around tick (jobauto/run/daemon.py) as jobmon runs it on the local scheduler: one
monitor per run (the lock), SIGTERM stops it after its cycle, --daemon detaches and logs.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from helpers import chain, jobmon, make_job, run_cli, start_jobmon


def test_second_monitor_is_refused_and_sigterm_stops_cleanly(tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    chain(ldir / "init", "a", 3, body="sleep 1")
    args = [f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.3",
            "--datedir=r"]
    first = start_jobmon(args, tmp_path / "first.out")
    try:
        for _ in range(100):
            if (ldir / "r/quelist").exists():
                break
            time.sleep(0.1)
        p = jobmon(*args, timeout=30)
        assert p.returncode == 2 and "a monitor is already running on this run (pid" in p.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 128 + signal.SIGTERM
        assert "stopped by signal 15" in (tmp_path / "first.out").read_text()
    finally:
        first.kill()
    p = jobmon(*args, timeout=60, check_rc=0)
    assert "resuming" in p.stdout and "spre@" in (ldir / "r/quelist").read_text()


def log_once_done(log: Path, timeout_s: float = 20.0) -> str:
    """The detached monitor's log once it says the run is done (or the timeout passed)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and not (log.exists() and "all jobs done" in log.read_text()):
        time.sleep(0.1)
    return log.read_text() if log.exists() else ""


def test_daemon_mode_detaches_and_logs(tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    chain(ldir / "init", "a", 2)
    p = jobmon(f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.2",
               "--datedir=r", "--daemon", timeout=30, check_rc=0)
    assert "detaching" in p.stdout
    log = ldir / "r/.jobauto/jobmon.log"
    assert "all jobs done" in log_once_done(log)
    # the pid file lived while the daemon ran (its pid is in the log) and is gone once it ended
    pid = re.search(r"detached: pid (\d+)", log.read_text())
    assert pid is not None
    pid_file = ldir / "r/.jobauto/jobmon.pid"
    for _ in range(100):
        if not pid_file.exists():
            break
        time.sleep(0.1)
    assert not pid_file.exists()


def test_a_daemon_that_cannot_go_on_says_why_in_one_line_and_removes_its_pid_file(
        tmp_path: Path) -> None:
    """The store is overwritten under a running --daemon monitor: its log ends with one line
    naming the file and what to do (no traceback), and its pid file is gone."""
    ldir = tmp_path / "camp"
    chain(ldir / "init", "a", 3, body="sleep 1")
    jobmon(f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.2",
           "--datedir=r", "--daemon", timeout=30, check_rc=0)
    log, db = ldir / "r/.jobauto/jobmon.log", ldir / "r/.jobauto/state.db"
    pid_file = ldir / "r/.jobauto/jobmon.pid"
    for _ in range(200):
        if log.exists() and "running 1" in log.read_text():
            break
        time.sleep(0.1)
    assert pid_file.exists()
    with open(db, "r+b") as f:
        f.write(b"\xa5" * 100)   # what an editor or a bad copy does to the file
    for _ in range(200):
        if "error:" in log.read_text() and not pid_file.exists():
            break
        time.sleep(0.1)
    text = log.read_text()
    errors = [ln for ln in text.splitlines() if "error" in ln.lower() and "error 0" not in ln]
    assert errors == [f"jobmon: error: {db}: not an SQLite database any more (file is not a "
                      "database); restore it from a backup"], text
    assert "Traceback" not in text and not pid_file.exists()


def test_daemon_mode_keeps_the_users_umask_for_the_jobs_it_starts(tmp_path: Path) -> None:
    """Without --remote the detached monitor starts the jobs itself: they get the umask of the
    user who started jobmon, not one of the daemon's own."""
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "u/qsub.0", body="umask > umask.out")
    args = [f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.2",
            "--datedir=r", "--daemon"]
    run_cli("sh", "-c", 'umask 027; exec jobmon "$@"', "jobmon", *args, timeout=30, check_rc=0)
    log = ldir / "r/.jobauto/jobmon.log"
    assert "all jobs done" in log_once_done(log)
    assert (tmp_path / "remote/r/u/umask.out").read_text().strip() == "0027"
