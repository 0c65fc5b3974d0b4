"""The batch guard (jobauto/cluster/transport/base.py) on the real test cluster: jobs that jobmon
submits through it see the remote user's login umask, not the guard's private 077, on Grid
Engine, Slurm, the PBS wrappers and the local scheduler.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Cluster, Sched, base_args, jobmon, make_job, ssh

pytestmark = pytest.mark.cluster

# the job records the umask it runs with and the mode of a file it makes
BODY = "umask > umask.out\ntouch made"


def job_umask(c: Cluster, tmp_path: Path, name: str, args: list[str]) -> tuple[str, int]:
    """Run one job with jobmon; its umask and the mode of the file it made."""
    rdir = c.remote_dir(f"umask-{name}")
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "u/qsub.0", body=BODY)
    jobmon(*base_args(c, ldir, rdir), "--datedir=r", *args, timeout=300, check_rc=0)
    job_dir = c.path(rdir) / "r" / "u"
    return (job_dir / "umask.out").read_text().strip(), (job_dir / "made").stat().st_mode & 0o777


def login_umask() -> str:
    return ssh("sh -c umask").stdout.strip()


def test_a_job_sees_the_login_umask(sched: Sched, tmp_path: Path) -> None:
    mask, mode = job_umask(sched.cluster, tmp_path, sched.name, sched.args)
    assert mask == login_umask()
    assert mode == 0o666 & ~int(mask, 8)


def test_a_local_scheduler_job_sees_the_login_umask(sshd: Cluster, tmp_path: Path) -> None:
    mask, mode = job_umask(sshd, tmp_path, "local", ["--scheduler=local"])
    assert mask == login_umask()
    assert mode == 0o666 & ~int(mask, 8)


def test_a_job_submitted_through_the_openssh_master_sees_the_login_umask(
        master_sshd: tuple[Cluster, object], sge: Cluster, tmp_path: Path) -> None:
    c, _ = master_sshd
    mask, mode = job_umask(c, tmp_path, "openssh", ["--ssh=openssh", "--scheduler=sge"])
    assert mask == login_umask()
    assert mode == 0o666 & ~int(mask, 8)
