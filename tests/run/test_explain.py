"""`jobauto explain` and `jobauto reset` on a run (jobauto/run/explain.py, behind cli/runs.py) and
--retries, through the CLI on the local scheduler."""

from __future__ import annotations

import time
from pathlib import Path

from helpers import jobauto, jobmon, make_job, start_jobmon

# fails on its first run, succeeds after: the flag file survives in the job's directory
FLAKY = 'if [ ! -e tried ]; then touch tried; exit 3; fi\necho second try ok'


def args(tmp: Path, *more: str) -> list[str]:
    return [f"--ldir={tmp / 'camp'}", f"--rdir={tmp / 'r'}", "--scheduler=local",
            "--interval=0.2", "--datedir=run", *more]


def test_explain_then_reset_then_resume_finishes_the_run(tmp_path: Path) -> None:
    init = tmp_path / "camp" / "init"
    make_job(init, "Si/qsub.0", body=FLAKY)
    make_job(init, "Si/qsub.1", ["qsub.finished.0"])
    jobmon(*args(tmp_path), timeout=60, check_rc=1)
    run = tmp_path / "camp" / "run"

    out = jobauto("explain", str(run), "Si/qsub.0", check_rc=0).stdout
    assert "state:      error" in out and "verdict:    failed, exit code 3" in out
    assert "markers (rule 1 of 3)" in out and "evidence:   marker Si/qsub.failed.0: 3" in out
    assert "intent" in out and "submitted" in out and "failed" in out
    out = jobauto("explain", str(run), "Si/qsub.1", check_rc=0).stdout
    assert "pending (blocked)" in out and "blocked by failed job(s): Si/qsub.0" in out
    assert "depends:    Si/qsub.finished.0 (error)" in out

    out = jobauto("reset", str(run), check_rc=0).stdout
    assert "1 job(s) to reset: Si/qsub.0" in out and "no monitor is running" in out
    assert (run / "Si/qsub.failed.0").exists()  # the monitor removes markers, not reset
    assert "request:    reset #1" in jobauto("explain", str(run), "Si/qsub.0", check_rc=0).stdout
    p = jobmon(*args(tmp_path), timeout=60, check_rc=0)
    assert "reset 1 job(s)" in p.stdout
    assert not (run / "Si/qsub.failed.0").exists() and not (tmp_path / "r/run/Si/qsub.failed.0").exists()
    line = next(ln for ln in (run / "quelist").read_text().splitlines() if ln.startswith("Si/qsub.0 "))
    assert "finished@" in line and "attempt=2" in line
    out = jobauto("explain", str(run), str(run / "Si/qsub.finished.0"), check_rc=0).stdout
    assert "state:      done" in out and "jobauto reset (request 1); was error (failed)" in out


def test_reset_while_the_monitor_runs(tmp_path: Path) -> None:
    init = tmp_path / "camp" / "init"
    make_job(init, "a/qsub.0", body=FLAKY)
    make_job(init, "a/qsub.1", ["qsub.finished.0"])
    make_job(init, "slow/qsub.0", body="sleep 6")
    out = tmp_path / "out.txt"
    proc = start_jobmon(args(tmp_path), out)
    run = tmp_path / "camp" / "run"
    deadline = time.time() + 30
    while time.time() < deadline and not (run / "a/qsub.failed.0").exists():
        time.sleep(0.1)
    assert (run / "a/qsub.failed.0").exists(), out.read_text()
    assert "the running monitor applies it" in jobauto("reset", str(run), "a/qsub.0", check_rc=0).stdout
    assert proc.wait(timeout=60) == 0, out.read_text()
    assert "reset 1 job(s)" in out.read_text()
    assert (run / "a/qsub.finished.1").exists()


def test_retries_rerun_a_failed_job_automatically(tmp_path: Path) -> None:
    init = tmp_path / "camp" / "init"
    make_job(init, "a/qsub.0", body=FLAKY)
    make_job(init, "a/qsub.1", ["qsub.finished.0"])
    jobmon(*args(tmp_path, "--retries=1"), timeout=60, check_rc=0)
    out = jobauto("explain", str(tmp_path / "camp/run"), "a/qsub.0", check_rc=0).stdout
    assert "retry" in out and "automatic retries 1" in out and "submissions 2" in out


def test_retries_give_up_after_n(tmp_path: Path) -> None:
    make_job(tmp_path / "camp" / "init", "a/qsub.0", body="exit 4")
    p = jobmon(*args(tmp_path, "--retries=2"), timeout=60, check_rc=1)
    assert "error    a/qsub.0: failed: exited with code 4" in p.stdout
    out = jobauto("explain", str(tmp_path / "camp/run"), "a/qsub.0", check_rc=0).stdout
    assert "submissions 3" in out and "automatic retries 2" in out


def test_bad_reset_and_explain_input_exit_2(tmp_path: Path) -> None:
    make_job(tmp_path / "camp" / "init", "a/qsub.0")
    jobmon(*args(tmp_path), timeout=60, check_rc=0)
    run = tmp_path / "camp" / "run"
    before = (run / ".jobauto/state.db").read_bytes()
    p = jobauto("explain", str(run), "nope/qsub.9", check_rc=2)
    assert "no job 'nope/qsub.9'" in p.stderr and str(run) in p.stderr
    p = jobauto("reset", str(run), "--status", "running", check_rc=2)
    assert "--status" in p.stderr
    p = jobauto("reset", str(tmp_path), check_rc=2)
    assert "not a jobmon run directory" in p.stderr
    p = jobauto("reset", str(run), "b/qsub.0", check_rc=2)
    assert "no job 'b/qsub.0'" in p.stderr
    assert (run / ".jobauto/state.db").read_bytes() == before
