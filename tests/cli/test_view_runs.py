"""`jobauto runs [LDIR]` and `jobauto status LDIR` (jobauto/cli/view.py), through the real CLI:
a campaign directory with a live run (a real jobmon on the local scheduler with a long job), a
finished run, a failed run and a damaged one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from helpers import failing_tree, jobauto, jobmon, make_job, start_jobmon


def runs_json(*args: str, cwd: Path | None = None) -> dict:  # type: ignore[type-arg]
    r = jobauto("runs", *args, "--json", cwd=cwd)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return json.loads(r.stdout)


def states(doc: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {r["date"]: r["state"] for r in doc["runs"]}


def snapshot(run: Path) -> list[tuple[str, bytes, int]]:
    """Every file of the run's state directory: bytes and mtime (what looking must keep)."""
    return [(p.name, p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted((run / ".jobauto").iterdir()) if p.is_file()]


def test_a_campaign_with_a_live_a_finished_a_failed_and_a_damaged_run(tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    rdir = f"--rdir={tmp_path}/remote"
    local = ["--scheduler=local", "--interval=0.2"]
    failing_tree(ldir / "init")                                  # 1. failed: exit 7, 2 blocked
    jobmon(f"--ldir={ldir}", rdir, *local, "--datedir=20261201-090000", check_rc=1)
    shutil.rmtree(ldir / "init")
    make_job(ldir / "init", "ok/qsub.0")                         # 2. finished
    jobmon(f"--ldir={ldir}", rdir, *local, "--datedir=20261201-100000", check_rc=0)
    damaged = ldir / "20261201-110000/.jobauto"                  # 3. damaged: its store cut to 0
    damaged.mkdir(parents=True)
    (damaged / "state.db").write_bytes(b"")
    shutil.rmtree(ldir / "init")                                 # 4. live: a long job
    make_job(ldir / "init", "long/qsub.0", body="sleep 120")
    make_job(ldir / "init", "long/qsub.1", ["qsub.finished.0"])
    live = ldir / "20261201-120000"
    mon = start_jobmon([f"--ldir={ldir}", rdir, *local, f"--datedir={live.name}"],
                       tmp_path / "mon.out")
    job_pid = None
    try:
        deadline = time.monotonic() + 60
        while True:
            doc = runs_json(str(ldir))
            row = {r["date"]: r for r in doc["runs"]}.get(live.name)
            if row and row["state"] == "running" and row["counts"]["running"] == 1:
                break
            assert mon.poll() is None and time.monotonic() < deadline, (tmp_path / "mon.out").read_text()
            time.sleep(0.2)
        status = json.loads(jobauto("status", str(live), "--json", check_rc=0).stdout)
        job_pid = int(status["running"][0]["where"])     # the local scheduler's id is its pid
        assert row["pid"] == mon.pid and f"pid {mon.pid}" in row["monitor"]
        assert row["counts"] == {"done": 0, "running": 1, "ready": 0, "waiting": 1,
                                 "blocked": 0, "error": 0}
        assert row["remote_dir"] == f"{tmp_path}/remote/{live.name}" and row["total"] == 2
        assert states(doc) == {"20261201-090000": "failed", "20261201-100000": "finished",
                               "20261201-110000": "damaged", live.name: "running"}
        failed = {r["date"]: r for r in doc["runs"]}["20261201-090000"]
        assert failed["counts"] == {"done": 1, "running": 0, "ready": 0, "waiting": 0,
                                    "blocked": 2, "error": 1}
        assert failed["last_activity"] is not None and failed["pid"] is None
        bad = {r["date"]: r for r in doc["runs"]}["20261201-110000"]
        assert "empty (0 bytes)" in bad["problem"] and str(damaged / "state.db") in bad["problem"]

        # plain text through a pipe; `jobauto status LDIR` and `jobauto runs` in LDIR: the same
        finished_run = ldir / "20261201-100000"
        before = snapshot(finished_run), snapshot(ldir / "20261201-090000")
        text = jobauto("runs", str(ldir), check_rc=0).stdout
        assert "\x1b" not in text
        lines = text.splitlines()
        assert lines[0].split()[:3] == ["RUN", "STATE", "done"] and len(lines) == 5, text
        by_run = {ln.split()[0]: ln for ln in lines[1:]}
        assert f"running (pid {mon.pid})" in by_run[live.name]
        assert by_run["20261201-090000"].split()[1:8] == ["failed", "1", "0", "0", "0", "2", "1"]
        assert "damaged" in by_run["20261201-110000"] and "empty (0 bytes)" in by_run["20261201-110000"]
        assert jobauto("status", str(ldir), check_rc=0).stdout.splitlines()[1:3] == lines[1:3]
        assert states(runs_json(cwd=ldir)) == states(doc)
        assert states(json.loads(jobauto("status", str(ldir), "--json", check_rc=0).stdout)) == states(doc)
        # a terminal gets a rich table (script(1) gives the command a pseudo-terminal)
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        tty = subprocess.run(["script", "-qec", f"jobauto runs {ldir}", "/dev/null"], env={
            **env, "TERM": "xterm-256color", "COLUMNS": "160"}, capture_output=True, text=True,
            timeout=60, stdin=subprocess.DEVNULL)
        assert tty.returncode == 0 and "\x1b[" in tty.stdout and "│" in tty.stdout, tty.stdout
        assert f"runs in {ldir}" in tty.stdout and "finished" in tty.stdout
        assert (snapshot(finished_run), snapshot(ldir / "20261201-090000")) == before

        # the monitor stops (SIGTERM) while its job runs: the run is stopped, with work left
        mon.send_signal(signal.SIGTERM)
        mon.wait(60)
        assert states(runs_json(str(ldir)))[live.name] == "stopped"
    finally:
        if mon.poll() is None:
            mon.kill()
            mon.wait(30)
        if job_pid is not None:
            try:
                os.killpg(job_pid, signal.SIGKILL)   # the job runs under setsid: its group
            except ProcessLookupError:
                pass


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    for args, words in (([str(tmp_path / "nope")], "no such directory"),
                        ([str(tmp_path / "file.txt")], "no such directory"),
                        ([str(tmp_path), "--interval", "0"], "--interval"),
                        (["--nosuch"], "unrecognized arguments")):
        r = jobauto("runs", *args)
        assert r.returncode == 2 and r.stdout == "", (args, r.stdout)
        assert r.stderr.startswith("jobauto runs: error: ") or "usage:" in r.stderr, r.stderr
        assert words in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = jobauto("runs", str(tmp_path / "nope"))
    assert len(r.stderr.splitlines()) == 1


def test_an_empty_directory_has_no_runs_and_status_still_refuses_it(tmp_path: Path) -> None:
    r = jobauto("runs", str(tmp_path), check_rc=0)
    assert r.stdout == f"no runs in {tmp_path}\n"
    assert runs_json(str(tmp_path)) == {"ldir": str(tmp_path), "runs": []}
    r = jobauto("status", str(tmp_path))       # not a run, not a campaign: a typo, most likely
    assert r.returncode == 2 and "not a campaign directory" in r.stderr
    (tmp_path / "init").mkdir()                # a campaign before its first run
    assert jobauto("status", str(tmp_path), check_rc=0).stdout == f"no runs in {tmp_path}\n"
