"""The scheduler-command cap on real Grid Engine through the jobmon CLI: a shim directory first
on the remote PATH (--scheduler-bin) logs each qsub/qstat/qacct/qdel call with its time, then
runs the real one. The cap holds in every minute of the shim's log, every job ends, and
`jobauto status` shows the count the shim logged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import Cluster, base_args, jobauto, jobmon, make_job

pytestmark = pytest.mark.cluster

CAP = 6
SHIM = """#!/bin/sh
echo "$(date +%s.%N) {name}" >> "$(dirname "$0")/calls.log"
exec /usr/bin/{name} "$@"
"""


def test_the_cap_holds_at_the_scheduler_and_status_shows_what_it_logged(
        sge: Cluster, tmp_path: Path) -> None:
    base = sge.remote_dir("budget")
    shim = sge.path(base) / "bin"
    shim.mkdir(parents=True)
    for name in ("qsub", "qstat", "qacct", "qdel"):
        (shim / name).write_text(SHIM.format(name=name))
        (shim / name).chmod(0o755)
    for p in (sge.path(base), shim):
        shutil.chown(p, sge.user, sge.user)
    ldir = tmp_path / "camp"
    for i in range(5):
        make_job(ldir / "init", f"s{i}/qsub.0", body="sleep 1")
    p = jobmon(*base_args(sge, ldir, f"{base}/runs"), "--scheduler=sge", f"--scheduler-bin={shim}",
               "--datedir=r", f"--max-scheduler-commands-per-minute={CAP}", timeout=400,
               check_rc=0)
    assert "all jobs done" in p.stdout
    # half the cap for submissions: 3 at once, the others waited for the next window
    assert "ready job(s) wait for the next window of the scheduler-command budget" in p.stdout
    log = (shim / "calls.log").read_text().split("\n")
    calls = [(float(t), name) for t, name in (ln.split() for ln in log if ln)]
    # (more than 5 when Grid Engine refused one for a while: another test may set max_u_jobs)
    assert sum(1 for _, n in calls if n == "qsub") >= 5
    times = sorted(t for t, _ in calls)
    for i, t in enumerate(times):
        in_minute = sum(1 for u in times[i:] if u < t + 60.0)
        assert in_minute <= CAP, f"{in_minute} scheduler calls in the minute after {t}: {calls}"
    status = json.loads(jobauto("status", str(ldir / "r"), "--json", check_rc=0).stdout)
    assert status["spent"]["sched_commands"] == len(calls), (status["spent"], calls)
    assert status["spent"]["logins"] >= 2       # the session and the first push (rsync)
    assert status["spent"]["bytes_pushed"] > 0 and status["spent"]["bytes_scanned"] > 0
