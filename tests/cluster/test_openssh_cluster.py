"""The OpenSSH transport (jobauto/cluster/transport/openssh.py) on the test cluster's sshd: which
transport --ssh=auto picks from ssh_config, and what a command does when the master is gone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import Cluster, Master, client_config, control_dir, logins

from jobauto.cluster.host import open_transport
from jobauto.cluster.transport.openssh import OpenSSHTransport
from jobauto.cluster.transport.ssh import SSHTransport
from jobauto.core.config import Options
from jobauto.core.errors import TransportError
from jobauto.core.model import Command

pytestmark = pytest.mark.cluster


def test_auto_rides_the_master_when_ssh_config_sets_a_controlpath(
        sshd: Cluster, own_sshd: tuple[int, Path], tmp_path: Path) -> None:
    port, log = own_sshd
    sockets = control_dir()   # a socket's path must be short
    with_master = client_config(tmp_path / "m", port, f"ControlPath {sockets}/%C")
    plain = client_config(tmp_path / "p", port)
    master = Master(with_master)
    master.start()
    try:
        t = open_transport(Options(remote=sshd.host, ssh_config=with_master))
        assert isinstance(t, OpenSSHTransport) and t.username == sshd.user
        assert t.run(["echo", "through the master"]).text == "through the master\n"
        assert len(logins(log)) == 1                          # the master's, nothing more
        p = open_transport(Options(remote=sshd.host, ssh_config=plain))
        assert isinstance(p, SSHTransport)
        assert p.run(["echo", "own login"]).text == "own login\n"
        p.close()
        assert len(logins(log)) == 2
        # forced either way
        forced = open_transport(Options(remote=sshd.host, ssh_config=with_master, ssh="paramiko"))
        assert isinstance(forced, SSHTransport)
        forced.close()
        master.stop()
        with pytest.raises(TransportError) as e:
            t.run_many([Command.of(["echo", "x"])])
        assert e.value.transient and "master connection to testhost is gone" in e.value.message
        assert f"ssh -F {with_master} -fNM testhost" in e.value.message
        assert len(logins(log)) == 3                          # (the forced paramiko one)
    finally:
        master.stop()
        shutil.rmtree(sockets, ignore_errors=True)
