"""Shared fixtures (plain helpers are in helpers.py). The real test cluster is started by
tests/cluster/up.sh (tests/run.sh does it).

Under CI=true a missing sshd or scheduler fails the test; on a developer machine it skips.
`small_disk` mounts a tmpfs (a disk to fill up or make read-only); it needs root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("helpers", "faults")

from helpers import (  # noqa: E402
    HOST,
    REMOTE_USER,
    SSH_CONFIG,
    SSH_PORT,
    TORQUE_BIN,
    Cluster,
    DelayRelay,
    Master,
    Sched,
    client_config,
    control_dir,
    ecalj_demo,
    private_sshd,
    ssh,
    stop,
)


def _missing(what: str) -> None:
    msg = f"test cluster: {what} (start it with: sudo bash tests/cluster/up.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


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


@pytest.fixture
def sshfs_twice(sshd: Cluster, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """One fresh directory of the test cluster mounted twice with sshfs, as two hosts would mount
    one shared directory: an fcntl lock taken through one mount is not seen through the other."""
    if shutil.which("sshfs") is None or not os.path.exists("/dev/fuse"):
        _missing("no sshfs or no /dev/fuse (install sshfs: sudo bash tests/tools.sh)")
    rel = sshd.remote_dir("fs")
    ssh(f"mkdir -p {rel}")
    mounts: list[Path] = []
    try:
        for name in ("a", "b"):
            mnt = tmp_path / f"host-{name}"
            mnt.mkdir()
            p = subprocess.run(["sshfs", "-F", str(sshd.ssh_config), f"{sshd.host}:{rel}", str(mnt)],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
            if p.returncode != 0:
                _missing(f"sshfs could not mount {sshd.host}:{rel}: {p.stderr.strip()}")
            mounts.append(mnt)
        yield mounts[0], mounts[1]
    finally:
        for mnt in mounts:
            if subprocess.run(["fusermount", "-u", str(mnt)], capture_output=True).returncode:
                subprocess.run(["fusermount", "-u", "-z", str(mnt)], capture_output=True)


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


@pytest.fixture(scope="session")
def ecalj(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The ecalj demo with NiO broken (helpers.ecalj_demo), run once for the tests that only read
    it: (run directory, what run-local.sh printed)."""
    return ecalj_demo(tmp_path_factory.mktemp("ecalj"))


@pytest.fixture(scope="session")
def ecalj_run(ecalj: tuple[Path, str]) -> Path:
    """The run directory of `ecalj`."""
    return ecalj[0]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """A factory of small disks: `small_disk(size="512k")` mounts a fresh tmpfs of that size
    under tmp_path and returns it, to be filled up or remounted read-only (helpers.remount); all
    are unmounted at the end. Mounting needs root: skipped otherwise (CI runs as root)."""
    mounted: list[Path] = []

    def mount(size: str = "512k", name: str = "disk") -> Path:
        if os.geteuid() != 0:
            pytest.skip("a small disk is a tmpfs mounted by the test: needs root")
        d = tmp_path / f"{name}{len(mounted)}"
        d.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], check=True)
        mounted.append(d)
        return d

    try:
        yield mount
    finally:
        for d in reversed(mounted):
            subprocess.run(["umount", "-l", str(d)], check=False)


@pytest.fixture
def delay_line() -> Iterator[Callable[..., DelayRelay]]:
    """A factory of delay lines (helpers.DelayRelay): `delay_line(delay_s=0.05, port=SSH_PORT)`
    relays 127.0.0.1:relay.port to 127.0.0.1:port adding delay_s each way; all closed at the
    end. bench/ scripts use helpers.DelayRelay directly."""
    relays: list[DelayRelay] = []

    def make(delay_s: float = 0.05, port: int = SSH_PORT) -> DelayRelay:
        relays.append(DelayRelay(("127.0.0.1", port), delay_s))
        return relays[-1]

    try:
        yield make
    finally:
        for r in relays:
            r.close()


@pytest.fixture
def far_sshd(sshd: Cluster, delay_line: Callable[..., DelayRelay], tmp_path: Path) -> Cluster:
    """The test cluster 100 ms away: its sshd behind a delay line of 50 ms each way."""
    relay = delay_line(0.05)
    return Cluster(client_config(tmp_path / "far", relay.port), sshd.host, sshd.user, sshd.home)


@pytest.fixture
def master_sshd(sshd: Cluster, tmp_path: Path) -> Iterator[tuple[Cluster, Master]]:
    """The test cluster through a user's OpenSSH master: a Cluster whose ssh_config sets a
    ControlPath, and the Master (running) that the test may stop and start again."""
    sockets = control_dir()
    cfg = client_config(tmp_path / "master", SSH_PORT, f"ControlPath {sockets}/%C")
    master = Master(cfg, sshd.host)
    master.start()
    try:
        yield Cluster(cfg, sshd.host, sshd.user, sshd.home), master
    finally:
        master.stop()
        shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture
def own_sshd(sshd: Cluster, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A private sshd (helpers.private_sshd: the test cluster's configuration on a port of its
    own, its own log): (port, log). Needs root (CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("a private sshd needs root")
    proc, port, log = private_sshd(tmp_path / "own-sshd")
    try:
        yield port, log
    finally:
        stop(proc)
