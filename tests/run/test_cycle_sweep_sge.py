"""What each cycle looks at, end to end: jobmon on real Grid Engine through the real sshd
(tests/cluster/up.sh). A job added by hand on the cluster is not found by the per-cycle look;
`jobauto rescan RUN` finds it while the monitor runs; also 100 ms away (far_sshd)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from helpers import SCRIPT, Cluster, base_args, jobauto, make_job, ssh, start_jobmon

from jobauto.run import quelist

pytestmark = pytest.mark.cluster

WAIT = "for i in $(seq 240); do [ -f ../go ] && exit 0; sleep 0.5; done; exit 1"


@pytest.mark.parametrize("far", [False, True], ids=["near", "100ms"])
def test_a_job_added_by_hand_on_the_cluster_is_found_by_rescan(
        far: bool, sge: Cluster, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    c: Cluster = request.getfixturevalue("far_sshd") if far else sge
    rdir = c.remote_dir("rescan")
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "a/qsub.0", body=WAIT)          # runs until ../go exists
    out = tmp_path / "mon.out"
    proc = start_jobmon([*base_args(c, ldir, rdir), "--datedir=r", "--scheduler=sge",
                         "--sweep-every=3600"], out)
    run = ldir / "r"
    try:
        deadline = time.time() + 120
        while "running 1" not in out.read_text() and time.time() < deadline:
            time.sleep(0.5)
        assert "running 1" in out.read_text(), out.read_text()
        # by hand on the cluster: a job, and the dependency file that makes it wait for a
        script = base64.b64encode(SCRIPT.format(body="echo by hand > hand.out", directives="")
                                  .replace("__id__", "0").encode()).decode()
        ssh(f"cd {rdir}/r && mkdir hand && echo {script} | base64 -d > hand/qsub.0"
            " && printf '../a/qsub.finished.0\\n' > hand/qsub.dependency.0")
        time.sleep(4)    # eight cycles: the look reads only a/, the sweep is an hour away
        assert not (run / "hand").exists()
        said = jobauto("rescan", str(run), check_rc=0).stdout
        assert "the running monitor looks at the whole run within two cycles" in said
        deadline = time.time() + 60
        while not (run / "hand" / "qsub.dependency.0").exists() and time.time() < deadline:
            time.sleep(0.5)
        assert (run / "hand" / "qsub.0").exists(), out.read_text()
        ssh(f"touch {rdir}/r/go")
        assert proc.wait(240) == 0, out.read_text()
    finally:
        proc.kill()
        proc.wait()
    lines = {ln.name: ln for ln in quelist.parse((run / "quelist").read_text())}
    assert set(lines) == {"a/qsub.0", "hand/qsub.0"}
    assert "finished" in lines["hand/qsub.0"].times
    # it ran after a ended (with --ahead it may be submitted before: started@ is the submission)
    home = c.path(rdir) / "r"
    assert (home / "hand" / "hand.out").stat().st_mtime >= \
        (home / "a" / "qsub.finished.0").stat().st_mtime
    assert (sge.path(rdir) / "r" / "hand" / "hand.out").read_text() == "by hand\n"
    assert "found on the cluster" in jobauto("explain", str(run), "hand/qsub.0", check_rc=0).stdout
