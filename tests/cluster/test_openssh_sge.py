"""The OpenSSH transport (jobauto/cluster/transport/openssh.py) carrying whole jobmon campaigns on
real Grid Engine: one login (the user's master) for everything, 100 ms away, and a master that
goes away mid-run and is started again.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import (
    HOST,
    REMOTE_USER,
    Cluster,
    DelayRelay,
    Master,
    base_args,
    client_config,
    control_dir,
    jobauto,
    jobmon,
    logins,
    make_job,
    start_jobmon,
)

pytestmark = pytest.mark.cluster


def chain(init: Path, n: int, body: str) -> None:
    """a/qsub.0 .. a/qsub.N-1, each after the one before."""
    for i in range(n):
        make_job(init, f"a/qsub.{i}", [f"qsub.finished.{i - 1}"] if i else [], body.replace("N", str(i)))


def test_a_campaign_100ms_away_through_the_master_logs_in_once(
        sge: Cluster, own_sshd: tuple[int, Path], delay_line: Callable[..., DelayRelay],
        tmp_path: Path) -> None:
    """First push, every cycle, the end-of-run fetch and a later `jobauto fetch`: the sshd logs
    exactly one authentication, the master's, and the delay line relayed one connection."""
    port, sshd_log = own_sshd
    relay = delay_line(0.05, port)
    sockets = control_dir()
    cfg = client_config(tmp_path / "client", relay.port, f"ControlPath {sockets}/%C")
    master = Master(cfg)
    master.start()
    try:
        c = Cluster(cfg, HOST, REMOTE_USER, sge.home)
        rdir, ldir = c.remote_dir("openssh"), tmp_path / "camp"
        chain(ldir / "init", 3, "echo result N > out.dat")
        make_job(ldir / "init", "b/qsub.0", body="echo b > out.dat")
        p = jobmon(*base_args(c, ldir, rdir), "--datedir=r", "--ssh=openssh", "--scheduler=sge",
                   timeout=300, check_rc=0)
        assert "all jobs done" in p.stdout
        assert (ldir / "r" / "a" / "qsub.finished.2").exists()      # the end-of-run fetch
        assert not (ldir / "r" / "a" / "out.dat").exists()           # (markers and outputs only)
        f = jobauto("fetch", str(ldir / "r"), "**/out.dat", f"--remote={HOST}",
                    f"--ssh-config={cfg}", check_rc=0)               # --ssh=auto: the master
        assert "fetched 2 file(s)" in f.stdout, f.stdout
        assert (ldir / "r" / "a" / "out.dat").read_text() == "result 2\n"   # the last job of the chain wrote it
        assert len(logins(sshd_log)) == 1, logins(sshd_log)
        assert relay.connections == 1
    finally:
        master.stop()
        shutil.rmtree(sockets, ignore_errors=True)


def wait_for(what: Callable[[], bool], timeout: float, why: str) -> None:
    deadline = time.time() + timeout
    while not what():
        assert time.time() < deadline, why
        time.sleep(0.2)


def test_the_master_gone_mid_run_is_waited_for_and_the_run_completes(
        sge: Cluster, master_sshd: tuple[Cluster, Master], tmp_path: Path) -> None:
    c, master = master_sshd
    rdir, ldir, out = c.remote_dir("gone"), tmp_path / "camp", tmp_path / "mon.out"
    chain(ldir / "init", 3, "echo N >> ../runs.log; sleep 1")
    proc = start_jobmon([*base_args(c, ldir, rdir), "--datedir=r", "--ssh=openssh",
                         "--scheduler=sge"], out)
    try:
        wait_for(lambda: (c.path(rdir) / "r" / "a" / "qsub.finished.0").exists(), 120,
                 "the first job did not finish")
        master.stop()
        wait_for(lambda: "-fNM" in out.read_text() or proc.poll() is not None, 60,
                 "jobmon did not say the master is gone")
        assert proc.poll() is None, out.read_text()                  # it waits, it does not fail
        master.start()
        assert proc.wait(300) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text()
    gone = [ln for ln in text.splitlines() if "master connection" in ln]
    assert gone and all(ln.startswith("jobmon: cluster unreachable, will retry: the OpenSSH master "
                                      f"connection to {HOST} is gone") for ln in gone), text
    assert f"start it again with: ssh -F {c.ssh_config} -fNM {HOST}" in gone[0]
    assert "all jobs done" in text
    assert (c.path(rdir) / "r" / "runs.log").read_text().split() == ["0", "1", "2"]
