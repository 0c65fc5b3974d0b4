"""core.states.TRANSITIONS: every move the monitor makes is listed, and only listed moves happen."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_job

from jobauto.cluster.host import Host
from jobauto.cluster.schedulers.fake import FakeAdapter, FakeCluster, FakeJob
from jobauto.cluster.transport.fake import FakeTransport
from jobauto.core.model import JobState, Verdict
from jobauto.core.states import TRANSITIONS, BadMove, check_move
from jobauto.run.cycle import Monitor, Settings
from jobauto.run.mirror import Remote
from jobauto.run.submitting import START_GRACE_S
from jobauto.run.tree import copy_init, discover
from jobauto.store import Store

RDIR = "/remote/run"
Move = tuple[str, str, str]


def monitor(tmp: Path, cluster: FakeCluster, settings: Settings) -> tuple[Monitor, list[Move]]:
    """A new run of the jobs under tmp/init on the fake cluster, and the list of its moves."""
    run = tmp / "run"
    specs = discover(tmp / "init")
    copy_init(tmp / "init", run, specs, {})
    store = Store(run / ".jobauto" / "state.db")
    Monitor.create(store, specs, run)
    transport = FakeTransport(cluster, on_push=lambda local, remote: cluster.load_tree(local, remote))
    m = Monitor(run, store, Remote(Host(transport, FakeAdapter()), RDIR), settings)
    m.remote.push(run)
    m.remote.stamp(0)
    moves: list[Move] = []
    move = m.move

    def spy(job, state, now, kind, detail):  # type: ignore[no-untyped-def]
        moves.append((job.state.value, state.value, kind))
        move(job, state, now, kind, detail)
    m.move = spy  # type: ignore[method-assign]
    return m, moves


def request(m: Monitor, args: dict[str, object]) -> None:
    """What `jobauto reset` does from another process."""
    other = Store(m.run_dir / ".jobauto" / "state.db")
    other.add_request(0.0, "reset", args)
    other.close()


def test_a_run_makes_every_listed_move_and_no_other(tmp_path: Path) -> None:
    init = tmp_path / "init"
    for d in ("ok", "bad", "cut", "late"):
        make_job(init, f"{d}/qsub.0")
    for d in ("hold", "byhand", "byhand2"):  # wait for a file that never comes
        make_job(init, f"{d}/qsub.0", ["never.txt"])
    cluster = FakeCluster()
    # the sweep every cycle: markers written by hand for jobs never submitted are seen at once
    m, moves = monitor(tmp_path, cluster, Settings(lost_after_s=100, retries=1, sweep_every_s=0))

    def fake(name: str) -> FakeJob:
        return [j for j in cluster.submitted if f"{j.dir}/{j.script}" == f"{RDIR}/{name}"][-1]

    m.tick(0.0)
    cluster.finish(fake("ok/qsub.0"))
    cluster.finish(fake("bad/qsub.0"), rc=3)           # failed, then retried
    cluster.end(fake("cut/qsub.0"), Verdict.CANCELLED)
    cluster.end(fake("late/qsub.0"), Verdict.CANCELLED)
    m.tick(10.0)
    m.tick(20.0)                                         # accounting: cancelled
    assert m.jobs["cut/qsub.0"].verdict == m.jobs["late/qsub.0"].verdict == "cancelled"
    for marker in ("cut/qsub.failed.0", "cut/qsub.finished.0", "late/qsub.finished.0",
                   "byhand/qsub.finished.0", "byhand2/qsub.failed.0", "byhand2/qsub.finished.0"):
        cluster.write(f"{RDIR}/{marker}", b"9\n" if "failed" in marker else b"")
    cluster.queue.pop(fake("bad/qsub.0").id)            # the retry vanishes
    m.tick(30.0)                                         # markers overrule; markers of pending jobs
    assert m.jobs["late/qsub.0"].state == JobState.DONE
    assert m.jobs["byhand/qsub.0"].state == JobState.DONE
    m.tick(140.0)
    assert m.jobs["bad/qsub.0"].verdict == "vanished"
    request(m, {"jobs": [], "status": ["done", "error", "pending"]})
    cluster.refuse = "Unable to run job: job rejected: max_u_jobs limit reached"
    m.tick(150.0)                                        # reset, then refused for now
    assert m.jobs["ok/qsub.0"].state == JobState.PENDING
    cluster.refuse = "qsub: invalid option -- 'Z'"
    make_job(m.run_dir, "new/qsub.0", ["/etc/passwd"])  # added during the run, unreadable
    m.tick(200.0)
    assert m.jobs["new/qsub.0"].state == m.jobs["ok/qsub.0"].state == JobState.ERROR
    cluster.refuse = None
    m.remote.submit = lambda batch, entries: [None for _ in entries]  # type: ignore[method-assign]
    request(m, {"jobs": ["ok/qsub.0"], "status": []})
    m.tick(210.0)                                        # the answer is lost
    del m.remote.submit
    m.tick(211.0 + START_GRACE_S)                        # it never arrived: pending again
    assert m.jobs["ok/qsub.0"].state == JobState.RUNNING

    assert {(old, new) for old, new, _ in moves} == set(TRANSITIONS)
    for old, new, kind in moves:
        assert kind in TRANSITIONS[(old, new)], (old, new, kind)


def test_the_verdicts_that_end_a_running_job_are_its_error_kinds() -> None:
    assert TRANSITIONS[("running", "error")] == {v.value for v in Verdict} - {"done"}
    assert {s for move in TRANSITIONS for s in move} == {s.value for s in JobState}


def test_an_unlisted_move_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with pytest.raises(BadMove, match="done -> running"):
        check_move("done", "running", "intent")
    with pytest.raises(BadMove):
        check_move("pending", "running", "reset")  # a listed move, but not on this event
    make_job(tmp_path / "init", "a/qsub.0")
    cluster = FakeCluster()
    m, moves = monitor(tmp_path, cluster, Settings())
    m.tick(0.0)
    cluster.finish(cluster.submitted[0])
    m.tick(1.0)
    job = m.jobs["a/qsub.0"]
    with pytest.raises(BadMove):
        m.move(job, JobState.RUNNING, 2.0, "intent", "again")
    assert job.state == JobState.DONE and moves[-1] == ("done", "running", "intent")
    assert m.graph.summary()["done"] == 1 and not m.events
