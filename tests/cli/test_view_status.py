"""`jobauto status` (and `progress_viewer`, `db_util stats`) as a command (jobauto/cli/view.py): on
a real ecalj run and real tables, through a pipe, on a pty with and without NO_COLOR, --json, while
jobmon or workers run, bad input. The renderers: view/test_status.py; gather: view/test_campaign.py;
--watch in a real terminal: cli/test_view_watch.py."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    FAN_IN,
    KEYS,
    chain,
    failing_tree,
    import_table,
    jobmon,
    make_job,
    rich_counts,
    run_cli,
    start_jobmon,
    strip,
    text_counts,
)

from jobauto.core.states import COUNT_KEYS


def count_line_counts(stdout: str) -> dict[str, int]:
    """The last count line jobmon printed (`done 3 running 0 ready 0 waiting 0 blocked 1 error 1`)."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("done ")]
    assert lines, stdout
    words = lines[-1].split()
    out = {}
    for key, value in zip(words[::2], words[1::2], strict=False):
        if not value.isdigit():
            break
        out[key] = int(value)
    assert set(out) >= set(COUNT_KEYS), lines[-1]
    return out


def status(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
           exe: str = "jobauto", verb: tuple[str, ...] = ("status",)
           ) -> subprocess.CompletedProcess[str]:
    """The real CLI, stdout to a pipe."""
    return run_cli(exe, *verb, *args, cwd=cwd, env=env, timeout=60)


def status_json(target: Path) -> dict:  # type: ignore[type-arg]
    r = status(str(target), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def run_pty(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run a command with stdout on a pseudo-terminal of 120x40; return (rc, what it wrote)."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    p = subprocess.Popen(args, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         env=env)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if p.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:   # EIO: the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        rc = p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    assert p.stderr is not None
    err = p.stderr.read().decode()
    assert rc == 0, err
    return rc, b"".join(chunks).decode("utf-8", "replace")


def tty_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS",
                                                            "LINES", "TERM")}
    return {**env, "TERM": "xterm-256color", **extra}


def snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    """A file's bytes, its mtime and its directory's listing: what a read-only viewer must keep."""
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(os.listdir(path.parent))


# -- a real ecalj run with one failure ---------------------------------------------------------
def test_run_through_a_pipe_is_plain_text(ecalj: tuple[Path, str]) -> None:
    run, out = ecalj
    r = status(str(run))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == f"{run}: 31 jobs, 25 done (81%)"
    assert "  - Blocked: 5    ← blocked by an error (NiO/qsub.0)" in lines
    assert "Monitor: jobmon not running" in lines
    assert lines[lines.index("Last failures:") + 1] == (
        "  NiO/qsub.0: failed: exited with code 1 (marker NiO/qsub.failed.0: 1)")
    # the same numbers as jobmon's own last count line, and as --json
    counts = text_counts(r.stdout)
    d = status_json(run)
    assert {k: d["counts"][k] for k in KEYS} == counts
    assert {k: counts[k] for k in COUNT_KEYS} == {k: count_line_counts(out)[k] for k in COUNT_KEYS}
    assert d["counts"] == {"done": 25, "running": 0, "ready": 0, "waiting": 0, "blocked": 5,
                           "error": 1, "pending": 5}
    assert d["kind"] == "run" and d["total"] == 31 and d["blocked_by"] == ["NiO/qsub.0"]
    (fail,) = d["failures"]
    assert fail["name"] == "NiO/qsub.0" and fail["verdict"] == "failed" and fail["exit_code"] == 1
    assert fail["where"].isdigit()   # the local scheduler's id


def test_run_on_a_pty_with_no_color_is_plain_text(ecalj: tuple[Path, str]) -> None:
    run, _ = ecalj
    _, out = run_pty(["jobauto", "status", str(run)], tty_env(NO_COLOR="1"))
    assert "\x1b" not in out
    piped = status(str(run)).stdout
    assert text_counts(out.replace("\r\n", "\n")) == text_counts(piped)
    assert f"{run}: 31 jobs, 25 done (81%)" in out


def test_run_on_a_pty_is_the_rich_view(ecalj: tuple[Path, str]) -> None:
    run, _ = ecalj
    _, raw = run_pty(["jobauto", "status", str(run)], tty_env())
    assert "\x1b[" in raw
    text = strip(raw)
    assert str(run) in text and "Monitor: jobmon not running" in text
    assert rich_counts(text) == text_counts(status(str(run)).stdout)
    assert re.search(r"NiO/qsub\.0\s+failed\s+1\s+failed: exited with code 1", text)
    assert "81% done" in text
    assert max(len(ln) for ln in text.splitlines()) <= 120   # fits the terminal's width


# -- counts agree with jobmon's own count line -------------------------------------------------
def test_counts_equal_jobmons_last_count_line(tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    failing_tree(ldir / "init")
    make_job(ldir / "init", "ok/qsub.1", ["qsub.finished.0"])
    p = jobmon(f"--ldir={ldir}", f"--rdir={tmp_path}/r", "--scheduler=local", "--interval=0.2",
               "--datedir=r", timeout=60, check_rc=1)
    line = count_line_counts(p.stdout)
    assert line == {"done": 2, "running": 0, "ready": 0, "waiting": 0, "blocked": 2, "error": 1}
    r = status(str(ldir / "r"))
    assert r.returncode == 0, r.stderr
    d = status_json(ldir / "r")
    assert {k: d["counts"][k] for k in COUNT_KEYS} == line
    assert {k: text_counts(r.stdout)[k] for k in COUNT_KEYS} == line
    assert d["blocked_by"] == ["Si/qsub.0"]
    assert "  Si/qsub.0: failed: exited with code 7" in r.stdout


# -- tables ------------------------------------------------------------------------------------
def test_table_text_json_and_progress_viewer_agree(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    r = subprocess.run(["jobauto", "run", db.name, "bash run.sh"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, env={**os.environ, "FAIL": "training"})
    assert r.returncode == 1, r.stderr
    text = status(db.name, cwd=tmp_path)
    assert text.returncode == 0 and "\x1b" not in text.stdout
    counts = text_counts(text.stdout)
    assert counts == {"done": 2, "running": 0, "pending": 1, "ready": 0, "waiting": 0,
                      "blocked": 1, "error": 1}
    assert "  - Blocked: 1    ← blocked by an error (jobC)" in text.stdout
    assert "  jobC: exit 3: failing on purpose: training" in text.stdout
    assert "Workers: 0 worker(s) alive, 0 slot(s)" in text.stdout
    d = status_json(db)
    assert {k: d["counts"][k] for k in KEYS} == counts and d["kind"] == "table"
    assert d["failures"][0]["exit_code"] == 3 and d["failures"][0]["where"] == ""
    # the seed-compatible viewers are the same view
    for exe, verb in (("progress_viewer", ()), ("db_util", ("stats",))):
        other = status(db.name, cwd=tmp_path, exe=exe, verb=verb)
        assert other.returncode == 0, other.stderr
        assert text_counts(other.stdout) == counts
        keep = [ln for ln in text.stdout.splitlines() if not ln.startswith("Throughput")]
        assert [ln for ln in other.stdout.splitlines() if not ln.startswith("Throughput")] == keep


def test_table_on_a_pty(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    _, plain = run_pty(["progress_viewer", str(db)], tty_env(NO_COLOR="1"))
    assert "\x1b" not in plain and "Pending: 4" in plain and "  - Ready: 2" in plain
    _, raw = run_pty(["progress_viewer", str(db)], tty_env())
    assert "\x1b[" in raw
    assert rich_counts(strip(raw)) == {"done": 0, "running": 0, "pending": 4, "ready": 2,
                                       "waiting": 2, "blocked": 0, "error": 0}


def test_table_status_while_a_worker_runs_is_read_only(tmp_path: Path) -> None:
    csv = "JOBSCHEDULER_JOB_ID,n,JOBSCHEDULER_DEPENDS_ON\n" + "".join(
        f"j{i},{i},{'j0' if i else ''}\n" for i in range(6))
    db = import_table(tmp_path, csv)
    worker = subprocess.Popen(["jobauto", "run", db.name, "bash run.sh", "--parallel", "2"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "SLEEP": "0.6"})
    seen: list[dict] = []  # type: ignore[type-arg]
    try:
        while worker.poll() is None:
            seen.append(status_json(db))
            r = status(str(db))
            assert r.returncode == 0, r.stderr
            text_counts(r.stdout)
        out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    assert "all 6 jobs done" in err
    # every job ran once: status never got in the worker's way
    runs = (tmp_path / "runs.log").read_text().splitlines()
    assert sorted(runs) == sorted([f"start {i}" for i in range(6)] + [f"end {i}" for i in range(6)])
    done = [d["counts"]["done"] for d in seen]
    assert done == sorted(done) and len(seen) >= 2
    running = [j for d in seen for j in d["running"]]
    assert running and all(re.fullmatch(r"1 \S+:\d+", j["where"]) for j in running)
    assert all(d["driver"] == "1 worker(s) alive, 2 slot(s)" for d in seen if d["running"])
    # with no writer, looking changes nothing: not the bytes, not the mtime, no journal left
    before = snapshot(db)
    for args in ([str(db)], [str(db), "--json"]):
        assert status(*args).returncode == 0
    assert status(str(db), exe="progress_viewer", verb=()).returncode == 0
    run_pty(["jobauto", "status", str(db)], tty_env())
    assert snapshot(db) == before
    final = status_json(db)
    assert final["counts"]["done"] == 6 and final["driver"] == "0 worker(s) alive, 0 slot(s)"


def test_run_status_while_jobmon_runs_is_read_only(tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    chain(ldir / "init", "a", 3, body="sleep 0.6")
    make_job(ldir / "init", "b/qsub.0", body="sleep 0.6")
    run = ldir / "r"
    out = tmp_path / "mon.out"
    mon = start_jobmon([f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local",
                        "--interval=0.3", "--datedir=r"], out)
    seen: list[dict] = []  # type: ignore[type-arg]
    try:
        while mon.poll() is None:
            if (run / ".jobauto/state.db").exists():
                seen.append(status_json(run))
                r = status(str(run))
                assert r.returncode == 0, r.stderr
            else:
                time.sleep(0.05)
        assert mon.wait(60) == 0, out.read_text()
    finally:
        if mon.poll() is None:
            mon.send_signal(signal.SIGTERM)
            mon.wait(30)
    assert seen
    assert any(d["driver"].startswith("jobmon running (") for d in seen)
    running = [j for d in seen for j in d["running"]]
    assert running and all(j["where"] for j in running if j["started_at"] is not None)
    done = [d["counts"]["done"] for d in seen]
    assert done == sorted(done)
    # jobmon's last count line and a status after it agree
    assert {k: status_json(run)["counts"][k] for k in COUNT_KEYS} == count_line_counts(out.read_text())
    state = run / ".jobauto/state.db"
    before = snapshot(state)
    for args in ([str(run)], [str(run), "--json"]):
        assert status(*args).returncode == 0
    run_pty(["jobauto", "status", str(run)], tty_env())
    assert snapshot(state) == before
    assert status_json(run)["driver"] == "jobmon not running"


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["missing", "plain-dir", "csv", "empty-file", "run-state-db"])
def test_bad_target_exit_2_naming_it(tmp_path: Path, case: str) -> None:
    target = {"missing": tmp_path / "nope.db", "plain-dir": tmp_path / "dir",
              "csv": tmp_path / "jobs.csv", "empty-file": tmp_path / "empty.db",
              "run-state-db": tmp_path / "r/.jobauto/state.db"}[case]
    if case == "plain-dir":
        target.mkdir()
    elif case == "csv":
        target.write_text(FAN_IN)
    elif case == "empty-file":
        target.touch()
    elif case == "run-state-db":
        target.parent.mkdir(parents=True)
        with sqlite3.connect(target) as db:
            db.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.close()
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    for exe, verb in (("jobauto", ("status",)), ("progress_viewer", ())):
        for extra in ((), ("--json",)):
            r = status(str(target), *extra, exe=exe, verb=verb)
            assert r.returncode == 2, (r.stdout, r.stderr)
            assert r.stdout == ""
            assert str(target) in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
            assert "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing   # nothing created
    if case == "missing":
        assert "no such run directory or job table" in r.stderr


@pytest.mark.parametrize("value", ["0", "-1"])
def test_interval_must_be_positive(tmp_path: Path, value: str) -> None:
    db = import_table(tmp_path, FAN_IN)
    for extra in (("--watch",), ("--json",), ()):
        r = status(str(db), "--interval", value, *extra)
        assert r.returncode == 2 and r.stdout == ""
        assert f"--interval must be positive, not {value}" in r.stderr


@pytest.mark.parametrize(("value", "expect"), [
    ("nan", "--interval must be a finite number, not nan"),
    ("inf", "--interval must be a finite number, not inf"),
    ("0.01", "--interval must be at least 0.1, not 0.01"),
    ("1e9", "--interval must be at most 86400, not 1e9"),
    ("soon", "--interval='soon' is not a number"),
])
def test_interval_is_a_finite_number_in_range(tmp_path: Path, value: str, expect: str) -> None:
    db = import_table(tmp_path, FAN_IN)
    for extra in (("--watch",), ("--json", "--watch"), ()):
        r = status(str(db), "--interval", value, *extra)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr == f"jobauto status: error: {expect}\n"


def test_help_has_an_example() -> None:
    r = status("--help")
    assert r.returncode == 0 and "jobauto status experiments.db" in r.stdout
