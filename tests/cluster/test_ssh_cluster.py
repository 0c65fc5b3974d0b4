"""The SSH transport (jobauto/cluster/transport/ssh.py) against the real sshd of the test
cluster: an unknown host key refused with advice, ProxyJump and reconnecting.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Cluster, jobmon, make_job

pytestmark = pytest.mark.cluster


def test_unknown_host_key_is_refused_with_advice(sge: Cluster, tmp_path: Path) -> None:
    cfg = tmp_path / "ssh_config"
    text = sge.ssh_config.read_text()
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    cfg.write_text("\n".join(ln for ln in text.splitlines() if "UserKnownHostsFile" not in ln)
                   + f"\n    UserKnownHostsFile {empty}\n")
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "a/qsub.0")
    p = jobmon(f"--ldir={ldir}", "--rdir=x", f"--remote={sge.host}", f"--ssh-config={cfg}", timeout=60)
    assert p.returncode == 2
    assert "is not in known_hosts" in p.stderr and "SHA256:" in p.stderr and "ssh-keyscan" in p.stderr
    assert not (ldir / "x").exists() and len(list(ldir.iterdir())) == 1


def test_proxyjump_and_reconnect_through_the_real_sshd(sshd: Cluster, tmp_path: Path) -> None:
    from jobauto.cluster.transport.ssh import SSHTransport
    cfg = tmp_path / "ssh_config"
    base = sshd.ssh_config.read_text()
    body = base.split("\n", 1)[1]  # the settings of "Host testhost"
    cfg.write_text(base + "\nHost jumped\n" + body + "    ProxyJump testhost\n")
    t = SSHTransport("jumped", config_path=cfg)
    try:
        assert t.run(["echo", "via jump"]).text == "via jump\n"
        assert len(t._clients) == 2  # the jump host's connection and the tunnelled one
        t._clients[-1].close()  # the connection drops: the next command reconnects
        assert t.run(["echo", "again"]).text == "again\n" and t.connects == 2
    finally:
        t.close()
