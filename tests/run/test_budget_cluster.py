"""The caps (jobauto/run/budget.py) on the real test cluster through the jobmon CLI.

The scheduler-command cap, on Grid Engine and on Slurm 100 ms away (one run each: the latency
variant rides the Slurm case to keep CI short): a shim directory first on the remote PATH
(--scheduler-bin) logs each scheduler call with its time, then runs the real one. The cap holds
in every minute of the shim's log, every job ends, and `jobauto status` shows the count the
shim logged.

The login cap, through a private sshd whose log counts the logins, with the paramiko transport
(each rsync is a login of its own): a job added locally mid-run needs a push past the cap, waits
for the login budget, and is pushed, submitted and done once `jobauto set` raises the cap in
the running monitor; the sshd never logged more logins than the cap in force.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import (
    HOST,
    REMOTE_USER,
    Cluster,
    base_args,
    client_config,
    jobauto,
    jobmon,
    logins,
    make_job,
    ssh,
    start_jobmon,
)

pytestmark = pytest.mark.cluster

CAP = 6
SHIM = """#!/bin/sh
echo "$(date +%s.%N) {name}" >> "$(dirname "$0")/calls.log"
exec /usr/bin/{name} "$@"
"""
# Every scheduler command jobmon counts (cluster/host.py): Slurm's scontrol is only the
# accounting's fallback when sacct fails, not counted, so not shimmed.
COMMANDS = {"sge": ("qsub", "qstat", "qacct", "qdel"),
            "slurm": ("sbatch", "squeue", "sacct", "scancel")}
SUBMIT = {"sge": "qsub", "slurm": "sbatch"}


@pytest.mark.parametrize(("name", "far"), [("sge", False), ("slurm", True)],
                         ids=["sge", "slurm-100ms"])
def test_the_cap_holds_at_the_scheduler_and_status_shows_what_it_logged(
        name: str, far: bool, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    c: Cluster = request.getfixturevalue(name)
    if far:
        c = request.getfixturevalue("far_sshd")
    base = c.remote_dir("budget")
    shim = c.path(base) / "bin"
    shim.mkdir(parents=True)
    for cmd in COMMANDS[name]:
        (shim / cmd).write_text(SHIM.format(name=cmd))
        (shim / cmd).chmod(0o755)
    for p in (c.path(base), shim):
        shutil.chown(p, c.user, c.user)
    ldir = tmp_path / "camp"
    for i in range(5):
        make_job(ldir / "init", f"s{i}/qsub.0", body="sleep 1")
    p = jobmon(*base_args(c, ldir, f"{base}/runs"), f"--scheduler={name}",
               f"--scheduler-bin={shim}", "--datedir=r",
               f"--max-scheduler-commands-per-minute={CAP}", timeout=400, check_rc=0)
    assert "all jobs done" in p.stdout
    # half the cap for submissions: 3 at once, the others waited for the next window
    assert "ready job(s) wait for the next window of the scheduler-command budget" in p.stdout
    log = (shim / "calls.log").read_text().split("\n")
    calls = [(float(t), cmd) for t, cmd in (ln.split() for ln in log if ln)]
    # (more than 5 when the scheduler refused one for a while: another test may set max_u_jobs)
    assert sum(1 for _, n in calls if n == SUBMIT[name]) >= 5, calls
    times = sorted(t for t, _ in calls)
    for i, t in enumerate(times):
        in_minute = sum(1 for u in times[i:] if u < t + 60.0)
        assert in_minute <= CAP, f"{in_minute} scheduler calls in the minute after {t}: {calls}"
    status = json.loads(jobauto("status", str(ldir / "r"), "--json", check_rc=0).stdout)
    assert status["spent"]["sched_commands"] == len(calls), (status["spent"], calls)
    assert status["spent"]["logins"] >= 2       # the session and the first push (rsync)
    assert status["spent"]["bytes_pushed"] > 0 and status["spent"]["bytes_scanned"] > 0


WAIT = "for i in $(seq 240); do [ -f ../go ] && exit 0; sleep 0.5; done; exit 1"


def wait_for(what: Callable[[], bool], timeout: float, why: Callable[[], str]) -> None:
    deadline = time.time() + timeout
    while not what():
        assert time.time() < deadline, why()
        time.sleep(0.2)


def test_the_login_cap_holds_at_the_sshd_and_delays_a_push_until_it_is_raised(
        sge: Cluster, own_sshd: tuple[int, Path], tmp_path: Path) -> None:
    port, sshd_log = own_sshd
    c = Cluster(client_config(tmp_path / "client", port), HOST, REMOTE_USER, sge.home)
    rdir, ldir, out = c.remote_dir("logins"), tmp_path / "camp", tmp_path / "mon.out"
    make_job(ldir / "init", "a/qsub.0", body=WAIT)          # runs until ../go exists
    run, remote = ldir / "r", c.path(rdir) / "r"
    proc = start_jobmon([*base_args(c, ldir, rdir), "--datedir=r", "--scheduler=sge",
                         "--ssh=paramiko", "--max-logins-per-hour=2"], out)
    try:
        wait_for(lambda: "running 1" in out.read_text(), 120, out.read_text)
        assert len(logins(sshd_log)) == 2, logins(sshd_log)   # the session and the first push
        make_job(run, "late/qsub.0", body="echo late > late.out")   # added locally mid-run
        wait_for(lambda: "waiting for the login budget: 2 SSH login(s) in the last hour "
                 "(--max-logins-per-hour=2)" in out.read_text(), 60, out.read_text)
        time.sleep(2)                    # a few more cycles: still waiting, nothing pushed
        assert not (remote / "late").exists()
        assert len(logins(sshd_log)) == 2, logins(sshd_log)
        said = jobauto("set", str(run), "max-logins-per-hour=4", check_rc=0).stdout
        assert "max-logins-per-hour 2 -> 4" in said, said
        wait_for(lambda: (remote / "late" / "late.out").exists(), 120, out.read_text)
        ssh(f"touch {rdir}/r/go")
        assert proc.wait(120) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "all jobs done" in out.read_text()
    # the delayed push, then the end-of-run fetch (never held: docs/etiquette.md): 4 = the cap
    assert len(logins(sshd_log)) == 4, logins(sshd_log)
    assert (run / "late" / "qsub.finished.0").exists()
    status = json.loads(jobauto("status", str(run), "--json", check_rc=0).stdout)
    assert status["counts"]["done"] == 2, status["counts"]
