"""The run's mirror on the cluster (jobauto/run/mirror.py, `Remote`) over every backend: one
contract, three clusters: the fake, this machine, and Grid Engine, Slurm and the PBS wrappers over
the real sshd (those skip without the test cluster).

The fake cluster is only trustworthy while it answers like the real ones; this suite runs the
same operations against all of them.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from helpers import TORQUE_BIN, Cluster, make_job

from jobauto.cluster.host import Host
from jobauto.cluster.schedulers import adapter_for
from jobauto.cluster.schedulers.fake import FakeAdapter, FakeCluster
from jobauto.cluster.transport.base import BatchCut
from jobauto.cluster.transport.fake import FakeTransport
from jobauto.core.model import Command, Verdict
from jobauto.run.mirror import Remote
from jobauto.run.tree import fill_job

NAMES = ["plain", "sp ace", "it's", "$(touch PWNED);x"]


class Backend:
    def __init__(self, kind: str, request: pytest.FixtureRequest, tmp: Path) -> None:
        self.kind = kind
        self.cluster: FakeCluster | None = None
        if kind == "fake":
            self.cluster = FakeCluster()
            fc = self.cluster
            self.transport = FakeTransport(fc, on_push=lambda local, remote: fc.load_tree(local, remote))
            self.rundir = "/remote/run"
            self.remote = Remote(Host(self.transport, FakeAdapter()), self.rundir)
        elif kind == "local":
            from jobauto.cluster.transport.local import LocalTransport
            self.transport = LocalTransport()
            self.rundir = str(tmp / "remote")
            self.remote = Remote(Host(self.transport, adapter_for("local")), self.rundir)
        else:  # a real scheduler through the real sshd
            from jobauto.cluster.transport.ssh import SSHTransport
            c: Cluster = request.getfixturevalue(kind)
            self.transport = SSHTransport(c.host, config_path=c.ssh_config)
            self.rundir = c.remote_dir("contract")
            self.remote = Remote(Host(self.transport, adapter_for(kind), user=self.transport.username,
                                      scheduler_bin=[TORQUE_BIN] if kind == "pbs" else []),
                                 self.rundir)

    def wait_finished(self, names: list[str], gen: list[int]) -> dict[str, tuple[float, bytes]]:
        """Let the jobs end (the fake is told to; real ones are waited for)."""
        if self.cluster is not None:
            for j in list(self.cluster.queue.values()):
                self.cluster.finish(j)
        found: dict[str, tuple[float, bytes]] = {}
        deadline = time.time() + 60
        while time.time() < deadline:
            gen[0] += 1
            obs = self.remote.observe(gen[0], gen[0] - 2, [], False, [])
            found.update(obs.files)
            if all(f"{n}/qsub.finished.0" in found for n in names):
                return found
            time.sleep(0.3)
        raise AssertionError(f"jobs did not finish: {sorted(found)}")


@pytest.fixture(params=["fake", "local", "sge", "slurm", "pbs"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    b = Backend(request.param, request, tmp_path)
    yield b
    b.transport.close()


@pytest.mark.parametrize("backend", ["local", "sge", "slurm"], indirect=True)  # the fake runs only our ops
def test_batch_results_in_order_with_cwd_and_binary_output(backend: Backend, tmp_path: Path) -> None:
    cmds = [Command.of(["printf", "a\\0b"]), Command.of(["sh", "-c", "echo err >&2; exit 3"]),
            Command.of(["pwd"], cwd="/tmp"), Command.of(["echo", "$(id);`id`"])]
    res = backend.transport.run_many(cmds)
    assert [r.rc for r in res] == [0, 3, 0, 0]
    assert res[0].stdout == b"a\0b" and res[1].stderr == "err\n" and res[2].text == "/tmp\n"
    assert res[3].text == "$(id);`id`\n"


def test_push_scan_submit_queue_journal(backend: Backend, tmp_path: Path) -> None:
    local = tmp_path / "run"
    for n in NAMES:
        make_job(local, f"{n}/qsub.0", body="echo done > out.txt")
        fill_job(local, f"{n}/qsub.0", {})
    backend.remote.push(local)
    backend.remote.stamp(0)
    gen = [1]
    obs = backend.remote.observe(1, 0, [f"{NAMES[1]}/qsub.0", "nothing/here"], True, [])
    assert obs.files == {} and obs.existing == {f"{NAMES[1]}/qsub.0"} and obs.queue and obs.queue.ok
    tokens = [f"jacontract{i}_1" for i in range(len(NAMES))]
    results = backend.remote.submit("b-1", [(t, f"{n}/qsub.0", []) for t, n in zip(tokens, NAMES, strict=True)])
    assert all(r is not None and r.sched_id for r in results)
    ids = {r.sched_id for r in results if r is not None}
    files = backend.wait_finished(NAMES, gen)
    assert all(files[f"{n}/qsub.finished.0"][1] == b"" for n in NAMES)
    gen[0] += 1
    obs = backend.remote.observe(gen[0], gen[0] - 1, [], True, tokens + ["b-1"])
    assert obs.queue is not None and obs.queue.ok
    # jobs that already wrote their markers may linger in the queue a moment (state t on SGE)
    assert {e.name for e in obs.queue.entries.values() if e.sched_id in ids} <= set(tokens)
    journal = {tuple(ln[:3]) for ln in obs.journal}
    assert ("B", "b-1", "start") in journal and ("B", "b-1", "end") in journal
    assert {(ln[1], ln[3]) for ln in obs.journal if ln[0] == "S"} == set(
        zip(tokens, [r.sched_id for r in results if r is not None], strict=True))
    # an incremental scan no longer reports what was seen two scans ago
    gen[0] += 1
    assert backend.remote.observe(gen[0], gen[0] - 1, [], False, []).files == {}
    if backend.kind != "fake":
        assert not list(tmp_path.rglob("PWNED"))


def test_rejected_submission_is_reported_with_the_message(backend: Backend, tmp_path: Path) -> None:
    local = tmp_path / "run"
    make_job(local, "a/qsub.0")
    fill_job(local, "a/qsub.0", {})
    backend.remote.push(local)
    [res] = backend.remote.submit("b-2", [("jacontractx_1", "a/qsub.missing", [])])
    assert res is not None and res.sched_id is None and res.error and not res.transient


RUNNING = {"r", "RUNNING", "R"}


@pytest.mark.parametrize("backend", ["fake", "sge", "slurm", "pbs"], indirect=True)  # local: no accounting
def test_accounting_of_a_failed_and_a_cancelled_job(backend: Backend, tmp_path: Path) -> None:
    """The fake's accounting must say what real accounting says: a job that exits 3 without
    markers is failed(3), a running job deleted by the adapter's cancel is cancelled, and each
    record names its job."""
    local = tmp_path / "run"
    for name, body in (("fail", "exit 3"), ("sleep", "sleep 300")):
        (local / name).mkdir(parents=True)
        (local / name / "qsub.0").write_text(f"#!/bin/sh\n{body}\n")
        (local / name / "qsub.0").chmod(0o755)
        (local / name / "qsub.dependency.0").write_text("")
    backend.remote.push(local)
    backend.remote.stamp(0)
    tokens = ["jacontractf_1", "jacontracts_1"]
    results = backend.remote.submit("b-3", [(tokens[0], "fail/qsub.0", []), (tokens[1], "sleep/qsub.0", [])])
    fail_id, sleep_id = (r.sched_id for r in results if r is not None)
    assert fail_id and sleep_id
    fc = backend.cluster
    if fc is not None:  # the fake runs nothing by itself
        fc.end(fc.queue[fail_id], Verdict.FAILED, 3)
    deadline = time.time() + 120
    cancelled = False
    endings: dict = {}
    while time.time() < deadline:
        obs = backend.remote.observe(1, 0, [], True, [], [fail_id, sleep_id])
        assert obs.queue is not None and obs.queue.ok
        entry = obs.queue.entries.get(sleep_id)
        if not cancelled and entry is not None and entry.state in RUNNING:
            assert backend.remote.cancel([sleep_id]).rc == 0
            cancelled = True
        endings = obs.endings or {}
        if cancelled and fail_id in endings and sleep_id in endings:
            break
        time.sleep(1)
    assert cancelled and fail_id in endings and sleep_id in endings, (obs.queue, endings)
    assert endings[fail_id].verdict == Verdict.FAILED and endings[fail_id].exit_code == 3
    assert endings[sleep_id].verdict == Verdict.CANCELLED
    for jid, token in ((fail_id, tokens[0]), (sleep_id, tokens[1])):
        assert endings[jid].name in (token, "")  # "": sacct has not named it yet ("allocation")
    assert endings[fail_id].evidence


# real connections are cut by tests/faults.py (run/test_cycle_cluster.py) and by the kill -9
# and sshd restart tests of run/test_cycle_sge.py
@pytest.mark.parametrize("backend", ["fake"], indirect=True)
def test_cut_connection_keeps_partial_results(backend: Backend, tmp_path: Path) -> None:
    ft = backend.transport
    assert isinstance(ft, FakeTransport)
    local = tmp_path / "run"
    make_job(local, "a/qsub.0")
    backend.remote.push(local)
    ft.cut_after = 1
    with pytest.raises(BatchCut) as e:
        ft.run_many([Command.of(["fake-qstat"])] * 3)
    assert len(e.value.partial) == 1


def teardown_module() -> None:
    shutil.rmtree("/tmp/jobauto-contract", ignore_errors=True)
