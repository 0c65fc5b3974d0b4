"""Notifications (jobauto/run/notify.py) through the jobmon command on real Grid Engine over the
test cluster's sshd: many jobs that fail in the same cycle are one batched message, the run's
end another, and a second hook that fails changes nothing but the log. (The jobs are submitted
by a first `--once` cycle and the test waits for all their markers: the cluster's 4 slots are
shared, so only a resume proves that their endings arrive in one cycle.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import Cluster, base_args, hook_calls, jobmon, make_job, recording_hook

pytestmark = pytest.mark.cluster


def test_failures_of_one_cycle_are_one_message_then_the_end_on_grid_engine(
        sge: Cluster, tmp_path: Path) -> None:
    rdir = sge.remote_dir("notify")
    ldir = tmp_path / "camp"
    n = 12
    for i in range(n):
        make_job(ldir / "init", f"bad{i:02d}/qsub.0", body="exit 9")
    make_job(ldir / "init", "after/qsub.0", ["../bad00/qsub.finished.0"])
    args = [*base_args(sge, ldir, rdir), "--datedir=r", "--scheduler=sge", "--maxqsub=20"]
    # one cycle submits them all; the monitor then learns of every ending in its next cycle
    jobmon(*args, "--once", timeout=120, check_rc=75)
    markers = [sge.path(rdir) / f"r/bad{i:02d}/qsub.finished.0" for i in range(n)]
    deadline = time.time() + 240
    while not all(m.exists() for m in markers) and time.time() < deadline:
        time.sleep(1)
    assert all(m.exists() for m in markers)
    hook = recording_hook(tmp_path)
    broken = recording_hook(tmp_path, "broken", "exit 1")
    p = jobmon(*args, f"--notify={hook}", f"--notify={broken} --loud", timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    calls = hook_calls(tmp_path / "hook.log")
    assert [c[0].split()[1] for c in calls] == ["failed", "stuck"], [c[0] for c in calls]
    failed = calls[0][2]
    assert failed["count"] == n and calls[0][1]["JOBAUTO_COUNT"] == str(n)
    assert sorted(j["name"] for j in failed["jobs"]) == [f"bad{i:02d}/qsub.0" for i in range(n)]  # type: ignore[union-attr]
    assert all(j["exit_code"] == 9 and j["verdict"] == "failed" for j in failed["jobs"])  # type: ignore[union-attr]
    assert f"{n} jobs failed: " in str(failed["title"]) and f"and {n - 5} more" in str(failed["title"])
    stuck = calls[1][2]
    assert stuck["exit_code"] == 1 and "blocked  after/qsub.0: by bad00/qsub.0" in stuck["summary"]  # type: ignore[operator]
    # the failing hook was given both, failed both times, and the run went on to its end
    assert [c[0] for c in hook_calls(tmp_path / "broken.log")] == [
        f"== failed r {n} args: --loud", f"== stuck r {n + 1} args: --loud"]
    assert f"jobmon: notify: could not send failed ({n} jobs) to command broken: exit 1" in p.stdout
    assert "jobmon: notify: could not send stuck to command broken: exit 1" in p.stdout
    assert "jobmon: notify: sent stuck to command hook" in p.stdout
