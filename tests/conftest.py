"""Shared fixtures. The real test cluster is started by tests/cluster/up.sh (tests/run.sh does it).

Under CI=true a missing sshd or scheduler fails the test; on a developer machine it skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

CLUSTER_DIR = Path(os.environ.get("JOBAUTO_TEST_CLUSTER_DIR", "/tmp/jobauto-cluster"))
SSH_CONFIG = CLUSTER_DIR / "ssh_config"
HOST = "testhost"
REMOTE_USER = "jobauto"


def _missing(what: str) -> None:
    msg = f"test cluster: {what} (start it with: sudo bash tests/cluster/up.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def ssh(cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-F", str(SSH_CONFIG), HOST, cmd], capture_output=True, text=True,
                          check=check, stdin=subprocess.DEVNULL, timeout=120)


@dataclass
class Cluster:
    ssh_config: Path
    host: str
    user: str
    home: Path

    def remote_dir(self, prefix: str = "t") -> str:
        """A fresh directory on the cluster, relative to the remote home."""
        return f"jobauto-tests/{prefix}-{uuid.uuid4().hex[:8]}"

    def path(self, rel: str) -> Path:
        """Where a remote-home-relative path is on this machine (the cluster is local)."""
        return self.home / rel


@pytest.fixture(scope="session")
def sshd() -> Cluster:
    if not SSH_CONFIG.exists():
        _missing(f"no {SSH_CONFIG}")
    try:
        r = ssh("echo ok", check=False)
    except subprocess.TimeoutExpired:
        _missing("sshd does not answer")
    if r.returncode != 0 or r.stdout.strip() != "ok":
        _missing(f"sshd login failed: {r.stderr.strip()}")
    home = Path(ssh("echo $HOME").stdout.strip())
    return Cluster(SSH_CONFIG, HOST, REMOTE_USER, home)


@pytest.fixture(scope="session")
def sge(sshd: Cluster) -> Cluster:
    r = ssh("qstat -help 2>&1 | head -n 1; qstat >/dev/null && echo QSTAT-OK", check=False)
    if "QSTAT-OK" not in r.stdout:
        _missing(f"Grid Engine does not answer: {r.stdout.strip()} {r.stderr.strip()}")
    return sshd


TORQUE_BIN = os.environ.get("JOBAUTO_TEST_TORQUE_BIN", "/opt/slurm-torque/bin")


@pytest.fixture(scope="session")
def slurm(sshd: Cluster) -> Cluster:
    r = ssh("squeue -h -u $(id -un) >/dev/null && sacct -n -X -S now-1minutes >/dev/null && echo SLURM-OK",
            check=False)
    if "SLURM-OK" not in r.stdout:
        _missing(f"Slurm (with accounting) does not answer: {r.stdout.strip()} {r.stderr.strip()}")
    return sshd


@pytest.fixture(scope="session")
def pbs(slurm: Cluster) -> Cluster:
    r = ssh(f"{TORQUE_BIN}/qstat >/dev/null && echo PBS-OK", check=False)
    if "PBS-OK" not in r.stdout:
        _missing(f"the PBS/Torque wrappers do not answer in {TORQUE_BIN}: {r.stderr.strip()}")
    return slurm


@dataclass
class Sched:
    """A real scheduler of the test cluster, and how jobmon is pointed at it."""

    name: str
    cluster: Cluster
    args: list[str]

    def cancel(self, job_id: str) -> None:
        cmd = {"sge": "qdel", "slurm": "scancel", "pbs": f"{TORQUE_BIN}/qdel"}[self.name]
        ssh(f"{cmd} {job_id}")

    def submissions(self, prefix: str) -> list[str]:
        """Job names starting with prefix in the scheduler's own accounting (finished jobs)."""
        if self.name == "sge":
            out = ssh(f"qacct -j '{prefix}*' 2>/dev/null | awk '$1==\"jobname\"{{print $2}}'", check=False).stdout
        else:
            out = ssh("sacct -n -X -P -o JobName -S now-2hours", check=False).stdout
        return [n for n in out.split() if n.startswith(prefix)]


@pytest.fixture(params=["sge", "slurm", "pbs"])
def sched(request: pytest.FixtureRequest) -> Sched:
    c: Cluster = request.getfixturevalue(request.param)
    args = {"sge": ["--scheduler=auto"], "slurm": ["--scheduler=slurm"],
            "pbs": ["--scheduler=pbs", f"--scheduler-bin={TORQUE_BIN}"]}[request.param]
    return Sched(request.param, c, args)


@pytest.fixture(autouse=True)
def _no_user_ssh_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # keep the developer's own ~/.ssh out of the tests: the ssh config is always explicit
    monkeypatch.setenv("HOME", os.environ.get("HOME", str(tmp_path)))


def jobmon(*args: str, cwd: Path | None = None, timeout: float = 300,
           check_rc: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run the jobmon CLI as a user would (a separate process)."""
    exe = shutil.which("jobmon") or "jobmon"
    p = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check_rc is not None:
        assert p.returncode == check_rc, f"rc {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p
