"""The run's mirror on the cluster (jobauto/run/mirror.py, `Remote`) over every backend: one
contract, three clusters: the fake, this machine, and Grid Engine, Slurm and the PBS wrappers over
the real sshd (those skip without the test cluster). Grid Engine is reached three ways: paramiko
(`sge`), the user's OpenSSH master (`openssh`, cluster/transport/openssh.py) and paramiko 100 ms
away (`far`, through a delay line).

The fake cluster is only trustworthy while it answers like the real ones; this suite runs the
same operations against all of them.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import time
from pathlib import Path

import pytest
from helpers import TORQUE_BIN, Cluster, make_job, make_tar, tar_entry
from hypothesis import given, settings
from hypothesis import strategies as st

from jobauto.cluster.host import Host
from jobauto.cluster.schedulers import adapter_for
from jobauto.cluster.schedulers.common import UNSENT, UNSENT_RC, batch_id
from jobauto.cluster.schedulers.fake import FakeAdapter, FakeCluster
from jobauto.cluster.transport.base import BatchCut
from jobauto.cluster.transport.fake import FakeTransport
from jobauto.core.deps import scan_kind
from jobauto.core.files import check_name
from jobauto.core.model import Command, Verdict
from jobauto.run import mirror
from jobauto.run.endings import parse_failed
from jobauto.run.mirror import Remote, scan_command
from jobauto.run.scantar import FILE_MAX, LIMITS, MARKER_MAX, MAX_WARNINGS, parse_tar
from jobauto.run.tree import fill_job
from jobauto.run.wrapper import wrapper_text

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
            from jobauto.cluster.transport.openssh import OpenSSHTransport
            from jobauto.cluster.transport.ssh import SSHTransport
            sched = kind if kind in ("sge", "slurm", "pbs") else "sge"
            c: Cluster = request.getfixturevalue(sched)
            if kind == "openssh":
                c = request.getfixturevalue("master_sshd")[0]
            elif kind == "far":
                c = request.getfixturevalue("far_sshd")
            self.transport = (OpenSSHTransport if kind == "openssh" else SSHTransport)(
                c.host, config_path=c.ssh_config)
            self.rundir = c.remote_dir("contract")
            self.remote = Remote(Host(self.transport, adapter_for(sched), user=self.transport.username,
                                      scheduler_bin=[TORQUE_BIN] if kind == "pbs" else []),
                                 self.rundir)

    def put(self, rel: str, size: int, first: bytes = b"") -> None:
        """Write a file of `size` bytes on the cluster: `first`, then "x" up to the size."""
        if self.cluster is not None:
            self.cluster.write(f"{self.rundir}/{rel}", first + b"x" * (size - len(first)))
            return
        script = ('mkdir -p -- "${1%/*}" && { printf "%s" "$2"; head -c "$3" /dev/zero | tr "\\0" x; } > "$1"')
        res = self.transport.run_many([Command.of(
            ["sh", "-c", script, "put", f"{self.rundir}/{rel}", first.decode(), str(size - len(first))])])
        assert res[0].rc == 0, res[0].stderr

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


@pytest.fixture(params=["fake", "local", "sge", "slurm", "pbs", "openssh", "far"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    b = Backend(request.param, request, tmp_path)
    yield b
    b.transport.close()


@pytest.mark.parametrize("backend", ["local", "sge", "slurm", "openssh", "far"], indirect=True)  # the fake runs only our ops
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
    results = backend.remote.submit("b-1", [(t, f"{n}/qsub.0", [], None) for t, n in zip(tokens, NAMES, strict=True)])
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
    [res] = backend.remote.submit("b-2", [("jacontractx_1", "a/qsub.missing", [], None)])
    assert res is not None and res.sched_id is None and res.error and not res.transient


@pytest.mark.parametrize("backend", ["fake", "sge", "slurm", "pbs"], indirect=True)  # local: no queue
def test_a_submission_hands_its_id_to_those_queued_after_it_in_the_same_batch(
        backend: Backend, tmp_path: Path) -> None:
    """jobmon --ahead sends a chain in one batch (run/ahead.py chains): each job waits on the id
    its predecessor got a moment before, read from the journal by the batch itself. The chain
    then runs in order; a job whose predecessor got no id is not sent, and says why."""
    local = tmp_path / "run"
    steps = ["a", "b", "c", "d"]
    for n, body in zip(steps, ["sleep 4", "true", "true", "true"], strict=True):
        make_job(local, f"{n}/qsub.0", body=body)
        fill_job(local, f"{n}/qsub.0", {})
    backend.remote.push(local)
    backend.remote.stamp(0)
    tok = {n: f"jacontractch{n}_1" for n in steps}
    dep = backend.remote.adapter.depend_args
    entries = [(tok["a"], "a/qsub.0", [], None),
               (tok["b"], "b/qsub.0", dep([batch_id(tok["a"])]) or [], None),
               (tok["c"], "c/qsub.0", dep([batch_id(tok["b"])]) or [], None),
               (tok["d"], "d/qsub.0", dep([batch_id("jacontractnever_1")]) or [], None)]
    results = backend.remote.submit("b-ch", entries, after={
        tok["b"]: [tok["a"]], tok["c"]: [tok["b"]], tok["d"]: ["jacontractnever_1"]})
    ra, rb, rc, rd = results
    assert ra and rb and rc and ra.sched_id and rb.sched_id and rc.sched_id, results
    assert rd is not None and rd.unsent and rd.sched_id is None
    assert rd.error == f"{UNSENT} jacontractnever_1"
    if backend.cluster is not None:   # the fake runs nothing by itself: its holds say it
        held = {j.dir.rsplit("/", 1)[-1]: j.hold for j in backend.cluster.submitted}
        assert held == {"a": (), "b": (ra.sched_id,), "c": (rb.sched_id,)}
    files = backend.wait_finished(steps[:3], [1])
    a, b, c = (files[f"{n}/qsub.finished.0"][0] for n in steps[:3])
    assert a <= b <= c, (a, b, c)     # b waited for a's 4 s, c for b (whole seconds in tar)
    obs = backend.remote.observe(90, None, [], False, [tok["d"]])
    assert [ln[:3] for ln in obs.journal] == [["S", tok["d"], str(UNSENT_RC)]]
    assert "d/qsub.finished.0" not in obs.files


def test_a_wrapped_submission_writes_the_wrapper_beside_the_script_and_runs_it(
        backend: Backend, tmp_path: Path) -> None:
    """The wrapper travels in the submit command, is written beside the script and submitted in
    its place; a plain script (no marker code) gets its markers from it."""
    local = tmp_path / "run"
    body = "#!/bin/sh\necho plain > out.txt\n"
    for n in NAMES:
        make_job(local, f"{n}/qsub.0", script=body)
    backend.remote.push(local)
    backend.remote.stamp(0)
    tokens = [f"jacontractw{i}_1" for i in range(len(NAMES))]
    results = backend.remote.submit("b-w", [
        (t, f"{n}/qsub.0", [], wrapper_text(body, f"{n}/qsub.0", backend.rundir))
        for t, n in zip(tokens, NAMES, strict=True)])
    assert all(r is not None and r.sched_id for r in results), results
    files = backend.wait_finished(NAMES, [1])
    wrappers = [f"{n}/.qsub.0.run" for n in NAMES]
    obs = backend.remote.observe(100, None, wrappers, False, [])
    assert obs.existing == set(wrappers)
    assert not any(".qsub.0.run" in p for p in obs.files)     # never taken by the scan
    if backend.cluster is not None:
        assert [j.wrapper for j in backend.cluster.submitted] == [".qsub.0.run"] * len(NAMES)
    else:  # written by the wrapper from the exit status: the script has no marker code
        assert all(files[f"{n}/qsub.finished.0"][1] == b"0\n" for n in NAMES)
        assert not list(tmp_path.rglob("PWNED"))
    [res] = backend.remote.submit("b-w2", [("jacontractwx_1", "plain/qsub.missing", [],
                                            wrapper_text(body, "plain/qsub.missing", backend.rundir))])
    assert res is not None and res.sched_id is None and not res.transient
    assert res.error and "no such job script" in res.error


RUNNING = {"r", "RUNNING", "R"}


@pytest.mark.parametrize("backend", ["fake", "sge", "slurm", "pbs", "openssh"],  # local: no accounting
                         indirect=True)
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
    results = backend.remote.submit("b-3", [(tokens[0], "fail/qsub.0", [], None), (tokens[1], "sleep/qsub.0", [], None)])
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


# -- parse_tar: the scan's tar stream is untrusted input (docs/failure-modes.md) -------------------
def test_parse_tar_keeps_only_what_the_scan_asks_for() -> None:
    scan = parse_tar(make_tar(
        tar_entry("./a/qsub.finished.0", mtime=1_700_000_123.0),
        tar_entry("./a/qsub.failed.0", b"3\n"),
        tar_entry("./b/qsub.dependency.1", b"../a/qsub.finished.0\n"),
        tar_entry("./b/qsub.1", b"#!/bin/sh\n"),
        tar_entry("./sp ace/it's/qsub.finished.x-1", mtime=-5),          # bad mtime: unknown
        tar_entry("../x/qsub.finished.0"),
        tar_entry("/etc/qsub.finished.0"),
        tar_entry("a/../../qsub.finished.0"),
        tar_entry(".jobauto/state.db", b"garbage"),
        tar_entry("a/.jobauto/qsub.finished.0"),
        tar_entry("a/qsub.finished.1", kind=tarfile.SYMTYPE, link="/etc/passwd"),
        tar_entry("a/qsub.finished.2", kind=tarfile.LNKTYPE, link="a/qsub.finished.0"),
        tar_entry("a/qsub.finished.3", kind=tarfile.CHRTYPE),
        tar_entry("a/qsub.finished.4", kind=tarfile.FIFOTYPE),
        tar_entry("a/qsub.finished.5", kind=tarfile.DIRTYPE),
        tar_entry("a/qsub.finished\n.6"),
        tar_entry("a/qsub.finished.\x007"),
        tar_entry("a/" + "x" * 300 + "/qsub.finished.8"),
        tar_entry("a/" + "y/" * 2100 + "qsub.finished.9"),
        tar_entry("a/out.dat", b"results"),
        tar_entry("a/qsub.5", b"#!/bin/sh\n"),               # no dependency file beside it
        tar_entry(".", kind=tarfile.DIRTYPE),
    ))
    assert scan.files == {"a/qsub.finished.0": (1_700_000_123.0, b""),
                          "a/qsub.failed.0": (1_700_000_000.0, b"3\n"),
                          "b/qsub.dependency.1": (1_700_000_000.0, b"../a/qsub.finished.0\n"),
                          "b/qsub.1": (1_700_000_000.0, b"#!/bin/sh\n"),
                          "sp ace/it's/qsub.finished.x-1": (0.0, b"")}
    assert scan.dropped == 17 and len(scan.warnings) == 17
    assert all(w.startswith("the cluster sent '") and "\n" not in w for w in scan.warnings)
    for why in ("leaves the run directory", "absolute", "state directory", "a symbolic link",
                "a hard link", "a device or FIFO", "a directory", "NUL or a line break",
                "over 255 bytes", "bytes long", "not a marker", "without its dependency file"):
        assert any(why in w for w in scan.warnings), why


def test_parse_tar_counts_what_it_does_not_list() -> None:
    scan = parse_tar(make_tar(*(tar_entry(f"../{i}") for i in range(500))))
    assert scan.files == {} and scan.dropped == 500
    assert len(scan.warnings) == MAX_WARNINGS + 1 and "500 entries" in scan.warnings[-1]


class HugeMemberTar(io.RawIOBase):
    """A tar stream of one member of `size` bytes (zeros, made as they are read, never held),
    then a small marker: what a job that filled its marker with 300 MB sends."""

    def __init__(self, name: str, size: int) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        self.head = info.tobuf(format=tarfile.GNU_FORMAT)
        self.size = size + (-size % tarfile.BLOCKSIZE)
        self.tail = make_tar(tar_entry("./b/qsub.finished.0"))
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray) -> int:  # type: ignore[override]
        head_end = len(self.head)
        zeros_end = head_end + self.size
        if self.pos < head_end:
            chunk = self.head[self.pos:self.pos + len(buf)]
        elif self.pos < zeros_end:
            chunk = bytes(min(len(buf), zeros_end - self.pos))
        else:
            chunk = self.tail[self.pos - zeros_end:self.pos - zeros_end + len(buf)]
        buf[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


@pytest.mark.parametrize("name,kept", [("./a/qsub.failed.0", 64 << 10),
                                       ("./a/qsub.dependency.0", None)])
def test_parse_tar_reads_only_the_head_of_a_huge_member(monkeypatch: pytest.MonkeyPatch,
                                                        name: str, kept: int | None) -> None:
    reads: list[int] = []
    real = tarfile.TarFile.extractfile

    def counted(self: tarfile.TarFile, member: tarfile.TarInfo) -> object:
        f = real(self, member)
        assert f is not None
        read = f.read

        def limited(n: int = -1) -> bytes:
            reads.append(n)
            assert 0 <= n <= max(LIMITS.values()), f"read({n}) of a member of {member.size} bytes"
            return read(n)
        f.read = limited  # type: ignore[method-assign]
        return f

    monkeypatch.setattr(tarfile.TarFile, "extractfile", counted)
    scan = parse_tar(io.BufferedReader(HugeMemberTar(name, 300 << 20), 1 << 16))
    assert "b/qsub.finished.0" in scan.files   # what follows the huge member is still read
    path = name[2:]
    if kept is None:
        assert path not in scan.files and "over the limit" in scan.warnings[0]
    else:
        assert scan.files[path][1] == bytes(kept) and "only its first 65536 bytes" in scan.warnings[0]
    assert all(n <= 64 << 10 for n in reads), reads


def test_scan_sends_no_more_than_the_monitor_reads(backend: Backend) -> None:
    """A 5 MB failed marker comes as its head, a 5 MB dependency file (and its script) not at all
    but named in a warning; the whole answer stays near the head's size."""
    backend.transport.run_many([Command.of(["rm", "-rf", "--", backend.rundir])])
    backend.remote.stamp(1)
    time.sleep(0.02)
    big = 5 << 20
    names = [f"{n}/qsub.failed.0" for n in [*NAMES, "-n x"]]
    for name in names[:2]:
        backend.put(name, 10, b"7\n")
    backend.put(names[-1], big, b"7\n")
    backend.put(f"{NAMES[3]}/qsub.finished.0", 0)
    backend.put(f"{NAMES[2]}/qsub.dependency.1", big)
    backend.put(f"{NAMES[2]}/qsub.1", 10)
    res = backend.transport.run_many([scan_command(backend.rundir, 2, 1)])[0]
    assert res.rc == 0, res.stderr
    assert len(res.stdout) < MARKER_MAX + (16 << 10), len(res.stdout)
    scan = parse_tar(res.stdout)
    assert set(scan.files) == {*names[:2], names[-1], f"{NAMES[3]}/qsub.finished.0"}
    head = scan.files[names[-1]][1]
    assert len(head) == MARKER_MAX and head.startswith(b"7\nxxx")
    assert parse_failed(head) == parse_failed(b"7\n" + b"x" * (big - 2))
    assert sorted(scan.warnings) == sorted([   # in the order find lists them: each once
        f"the cluster sent {names[-1]!r} of {big} bytes: only its first {MARKER_MAX} bytes are kept",
        f"the cluster sent {NAMES[2] + '/qsub.dependency.1'!r}: not taken ({big} bytes, over the "
        f"limit of {FILE_MAX})"])
    # the cut copies are gone from the cluster
    if backend.cluster is None:
        left = backend.transport.run_many([Command.of(
            ["sh", "-c", 'ls -A -- "$1/.jobauto/heads"; exit 0', "ls", backend.rundir])])[0]
        assert left.text.strip() == ""


def test_the_look_reads_only_the_directories_named(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-cycle look: markers and new jobs in the named directories (not below them), in
    as many commands as the argument limit needs, all in one round trip; the sweep finds the
    rest. No cut copies are made when nothing is over the limit."""
    backend.transport.run_many([Command.of(["rm", "-rf", "--", backend.rundir])])
    backend.remote.stamp(1)
    time.sleep(0.02)
    d = NAMES[3]
    for rel in ["a/qsub.finished.0", f"{d}/qsub.failed.1", f"{d}/qsub.finished.1", "a/qsub.dependency.1",
                "a/qsub.1", "a/sub/qsub.finished.0", "b/qsub.finished.0", "qsub.finished.9", "a/out.txt"]:
        backend.put(rel, 3, b"0\n")
    monkeypatch.setattr(mirror, "LOOK_ARGV_MAX", 12)     # a command per directory
    before = getattr(backend.transport, "round_trips", 0)
    obs = backend.remote.observe(2, 1, [], False, [], look=["a", d, "", "nothing/here"],
                                 sweep_base=1, sweep=False)
    assert getattr(backend.transport, "round_trips", 0) - before in (0, 1)
    assert set(obs.files) == {"a/qsub.finished.0", f"{d}/qsub.failed.1", f"{d}/qsub.finished.1",
                              "a/qsub.dependency.1", "a/qsub.1", "qsub.finished.9"}
    assert obs.warnings == []
    obs = backend.remote.observe(3, 1, [], False, [], look=["a"], sweep_base=1, sweep=True)
    assert {"a/sub/qsub.finished.0", "b/qsub.finished.0"} <= set(obs.files)
    if backend.cluster is None:
        left = backend.transport.run_many([Command.of(
            ["sh", "-c", 'ls -A -- "$1/.jobauto"; exit 0', "ls", backend.rundir])])[0]
        assert "heads" not in left.text.split()


@pytest.mark.parametrize("cut", [0, 100, 512, 700, 1024, 1500])
def test_parse_tar_of_a_stream_cut_short_keeps_what_came_whole(cut: int) -> None:
    data = make_tar(tar_entry("./a/qsub.finished.0"), tar_entry("./b/qsub.failed.0", b"1" * 600))
    scan = parse_tar(data[:cut])
    assert set(scan.files) <= {"a/qsub.finished.0", "b/qsub.failed.0"}
    if cut < 1024 + 1024 and cut:
        assert any("unreadable" in w for w in scan.warnings), scan.warnings


@pytest.mark.parametrize("name", ["./a/qsub.finished.0", "./a/qsub.dependency.0", "./a/other"])
def test_parse_tar_of_a_member_claiming_more_than_the_stream_holds_ends(name: str) -> None:
    """A header claiming 10**20 bytes: skipping it block by block would never end."""
    info = tarfile.TarInfo(name)
    info.pax_headers = {"size": "99999999999999999999"}
    data = info.tobuf(format=tarfile.PAX_FORMAT) + b"12\n".ljust(512, b"\0") + bytes(1024)
    scan = parse_tar(data)
    assert scan.files in ({}, {"a/qsub.finished.0": (0.0, b"12\n" + bytes(509 + 1024))})
    assert any("unreadable" in w for w in scan.warnings), scan.warnings


@given(st.binary(max_size=3000))
@settings(max_examples=300, deadline=None)
def test_parse_tar_takes_any_bytes(data: bytes) -> None:
    scan = parse_tar(data)
    assert all(check_name(p) == p for p in scan.files)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=80), st.binary(max_size=64),
                          st.sampled_from([tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                                           tarfile.DIRTYPE, tarfile.CHRTYPE])), max_size=8))
@settings(max_examples=200, deadline=None)
def test_parse_tar_takes_any_member_names(members: list[tuple[str, bytes, bytes]]) -> None:
    """Arbitrary names (with `/`, `..`, NUL, line breaks, lone surrogates ...) in a valid tar."""
    entries = []
    for name, data, kind in members:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            continue   # a tar cannot hold a name that is not text
        entries.append(tar_entry(name, data, kind=kind, link="x"))
    scan = parse_tar(make_tar(*entries))
    for path, (_, data) in scan.files.items():
        assert check_name(path) == path and scan_kind(path) is not None
        assert not path.startswith(("/", "../", ".jobauto")) and len(data) <= 64


PAX_KEYS = ["path", "linkpath", "size", "mtime", "uid", "uname", "GNU.sparse.map",
            "GNU.sparse.size", "GNU.sparse.realsize", "GNU.sparse.offset", "hdrcharset", "x"]


PAX_VALUES = st.one_of(st.text(max_size=30), st.sampled_from(
    ["99999999999999999999", "-1", "1e400", "nan", "0,99999999999999", "4,1", "../x", ".jobauto/x"]))


@given(st.lists(st.tuples(st.dictionaries(st.sampled_from(PAX_KEYS), PAX_VALUES, max_size=4),
                          st.integers(0, 511), st.binary(min_size=1, max_size=4)), max_size=4))
@settings(max_examples=300, deadline=None)
def test_parse_tar_takes_any_headers(edits: list[tuple[dict[str, str], int, bytes]]) -> None:
    """Members whose pax records and header bytes are garbage but whose checksums are right, so
    that tarfile reads on into them."""
    out = b""
    for pax, at, junk in edits:
        info = tarfile.TarInfo("./a/qsub.failed.0")
        info.size, info.pax_headers = 3, pax
        try:
            blocks = bytearray(info.tobuf(format=tarfile.PAX_FORMAT))
        except (ValueError, UnicodeError):
            continue
        last = len(blocks) - tarfile.BLOCKSIZE       # the member's own header: spoil a field
        blocks[last + at:last + at + len(junk)] = junk
        blocks[last + 148:last + 156] = b" " * 8
        blocks[last + 148:last + 155] = b"%06o\0" % (sum(blocks[last:last + 512]) & 0o777777)
        out += bytes(blocks[:last + 512]) + b"12\n".ljust(512, b"\0")
    scan = parse_tar(out + bytes(1024))
    assert all(check_name(p) == p for p in scan.files)


def teardown_module() -> None:
    shutil.rmtree("/tmp/jobauto-contract", ignore_errors=True)


@pytest.mark.parametrize("backend", ["fake", "sge", "slurm", "pbs"], indirect=True)  # local: no arrays
def test_an_array_runs_each_task_in_its_job_directory_with_its_own_id(
        backend: Backend, tmp_path: Path) -> None:
    """One array submission (run/arrays.py): each task runs its own job's script in the job's
    directory and writes its markers; the queue, the accounting and the cancel know each task
    by its own id."""
    from jobauto.run import arrays

    local = tmp_path / "run"
    bodies = {"ok": "exit 0", "bad": "exit 3", "long": "sleep 300"}
    names = [f"{n}/qsub.0" for n in bodies]
    for n, body in bodies.items():
        make_job(local, f"{n}/qsub.0", script=f"#!/bin/sh\n{body}\n")
    backend.remote.push(local)
    backend.remote.stamp(0)
    text = "#!/bin/sh\nexit 0\n"
    [g], alone, _ = arrays.group([(n, arrays.shape(n, text, []), text, []) for n in names])
    assert g.jobs == names and not alone
    name = "jacontractXa_0"
    [res] = backend.remote.submit("b-a", [], [(name, arrays.task_table(g.jobs),
                                               arrays.array_wrapper(g, name, backend.rundir),
                                               [], len(g.jobs))])
    assert res is not None and res.sched_id, res
    ids = [backend.remote.adapter.task_id(arrays.array_id(res.sched_id), t) for t in (1, 2, 3)]
    fc = backend.cluster
    if fc is not None:  # the fake runs nothing by itself
        fc.finish(fc.queue[ids[0]])
        fc.finish(fc.queue[ids[1]], rc=3)
    deadline = time.time() + 120
    cancelled = False
    endings: dict = {}
    files: dict = {}
    gen = 1
    while time.time() < deadline:
        gen += 1
        obs = backend.remote.observe(gen, gen - 2, [], True, [name], ids)
        files.update(obs.files)
        assert obs.queue is not None and obs.queue.ok
        assert any(ln[:3] == ["S", name, "0"] for ln in obs.journal)
        entry = obs.queue.entries.get(ids[2])
        if not cancelled and entry is not None and entry.state in RUNNING:
            assert entry.name == name
            assert backend.remote.cancel([ids[2]]).rc == 0
            cancelled = True
        endings = obs.endings or {}
        if cancelled and all(i in endings for i in ids) and "bad/qsub.finished.0" in files:
            break
        time.sleep(1)
    assert cancelled and all(i in endings for i in ids), (obs.queue, endings)
    assert endings[ids[0]].verdict == Verdict.DONE
    assert endings[ids[1]].verdict == Verdict.FAILED and endings[ids[1]].exit_code == 3
    assert endings[ids[2]].verdict == Verdict.CANCELLED
    assert all(endings[i].name in (name, "") for i in ids)
    assert "ok/qsub.finished.0" in files and "bad/qsub.failed.0" in files
    # scancel's SIGTERM reaches the wrapper, which writes the markers of a killed job
    assert files.get("long/qsub.finished.0", (0, b"143\n"))[1] != b"0\n"
    if fc is None:  # the task's output lands in its job's directory
        got = backend.transport.run_many([Command.of(
            ["sh", "-c", 'cd "$1" && ls', "ls", f"{backend.rundir}/bad"])])[0].text
        assert f"qsub.0.e{arrays.array_id(res.sched_id)}.2" in got, got
