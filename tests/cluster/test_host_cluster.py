"""Joining an adapter to a host (jobauto/cluster/host.py) on the real test cluster: the scheduler
detected on the real hosts.
"""

from __future__ import annotations

import pytest
from helpers import HOST, SSH_CONFIG, TORQUE_BIN

from jobauto.core.config import Options

pytestmark = pytest.mark.cluster


def test_auto_detection_on_the_real_hosts(slurm: object) -> None:
    """Grid Engine wins where its qstat answers; where the first qstat on PATH is not Grid
    Engine's (Slurm's Torque wrappers) and sbatch exists, it is Slurm."""
    from jobauto.cluster.host import choose_scheduler
    from jobauto.cluster.transport.ssh import SSHTransport
    t = SSHTransport(HOST, config_path=SSH_CONFIG)
    try:
        assert choose_scheduler(Options(remote=HOST), t) == "sge"
        assert choose_scheduler(Options(remote=HOST, scheduler_bin=[TORQUE_BIN]), t) == "slurm"
    finally:
        t.close()
