"""jobmon --ahead killed at each of its own fault points (core/faults.py `ahead.*`) and resumed,
on the fake cluster (the local scheduler has no dependency to queue on): the fault point ends
the monitor where kill -9 would (nothing after it runs, the uncommitted is lost), the fake
cluster goes on, and a fresh monitor on the same store finishes the run. Exactly once: each job
reaches the scheduler once, and a job queued after one that failed never runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import Rig, chain

from jobauto.core import faults
from jobauto.run.cycle import Monitor


class Killed(BaseException):
    """The monitor died at a fault point (os._exit in a real jobmon)."""


def kill_at(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    assert name in faults.POINTS
    monkeypatch.setattr(faults, "_WANTED", name)

    def die(code: int) -> None:
        raise Killed(code)
    monkeypatch.setattr(os, "_exit", die)


def revive(monkeypatch: pytest.MonkeyPatch, rig: Rig) -> Monitor:
    monkeypatch.setattr(faults, "_WANTED", "")
    rig.monitor = rig.new_monitor()
    return rig.monitor


def submitted_once(rig: Rig) -> list[str]:
    names = [f"{j.dir}/{j.script}" for j in rig.cluster.submitted]
    assert len(names) == len(set(names)), names
    return sorted(n.rsplit("/", 2)[-2] + "/" + n.rsplit("/", 1)[-1] for n in names)


def chain_of_three(tmp_path: Path) -> tuple[Rig, Monitor]:
    rig = Rig(tmp_path)
    rig.settings.ahead = 10
    chain(rig.init, "Si", 3)
    return rig, rig.start()


@pytest.mark.parametrize("fault", ["ahead.intent", "ahead.submitted"])
def test_killed_while_queueing_ahead_then_resumed_submits_each_job_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    rig, m = chain_of_three(tmp_path)
    kill_at(monkeypatch, fault)
    with pytest.raises(Killed):
        m.tick(10.0)     # the whole chain goes in one batch, where it died
    assert len(rig.cluster.submitted) == (0 if fault == "ahead.intent" else 3)
    m = revive(monkeypatch, rig)
    now = 20.0
    for _ in range(40):   # an intent not sent is settled after the journal's grace time
        r = m.tick(now)
        if all(m.jobs[f"Si/qsub.{i}"].sched_id for i in range(3)):
            break
        now += 10.0
    assert {"Si/qsub.1", "Si/qsub.2"} <= m.ahead, m.ahead
    assert all(m.jobs[f"Si/qsub.{i}"].sched_id for i in range(3))
    for i in range(3):
        rig.cluster.finish(rig.job(f"Si/qsub.{i}"))
    r = m.tick(now + 10)
    assert r.finished and r.exit_code == 0
    assert submitted_once(rig) == ["Si/qsub.0", "Si/qsub.1", "Si/qsub.2"]
    second, third = rig.job("Si/qsub.1"), rig.job("Si/qsub.2")
    assert third.hold == (second.id,)   # queued after the one id its predecessor has


@pytest.mark.parametrize("fault", ["ahead.deleted", "ahead.unhooked"])
def test_killed_while_taking_jobs_out_of_the_queue_then_resumed_blocks_them_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    rig, m = chain_of_three(tmp_path)
    m.tick(10.0)
    assert m.ahead == {"Si/qsub.1", "Si/qsub.2"}
    rig.cluster.finish(rig.job("Si/qsub.0"), rc=3)
    kill_at(monkeypatch, fault)
    with pytest.raises(Killed):
        m.tick(20.0)
    assert not rig.cluster.queue          # the delete reached the scheduler before the kill
    m = revive(monkeypatch, rig)
    assert m.ahead == ({"Si/qsub.1", "Si/qsub.2"} if fault == "ahead.deleted" else set())
    r = m.tick(30.0)
    assert rig.states() == {"Si/qsub.0": "error", "Si/qsub.1": "pending", "Si/qsub.2": "pending"}
    assert r.counts["blocked"] == 2 and "queued-ahead" not in r.counts
    assert r.finished and r.exit_code == 1
    assert submitted_once(rig) == ["Si/qsub.0", "Si/qsub.1", "Si/qsub.2"]
    for name in ("Si/qsub.1", "Si/qsub.2"):
        kinds = [k for _, k, _ in m.store.events(name)]
        assert kinds.count("unhooked") == 1, kinds
    assert not any(rig.cluster.files.get(f"{rig.job(n).dir}/qsub.finished.{n[-1]}") is not None
                   for n in ("Si/qsub.1", "Si/qsub.2"))   # never ran: no marker


def test_a_connection_cut_under_the_ahead_batch_settles_it_from_the_journal(
        tmp_path: Path) -> None:
    """The ahead batch reached the cluster whole but its answer was lost (the connection went
    down after the batch's start mark): the next cycles settle both ahead jobs from the
    cluster's journal, with their ids, and never submit one twice."""
    rig, m = chain_of_three(tmp_path)
    real = m.remote.submit
    calls: list[int] = []

    def lossy(*args, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        rig.transport.cut_after = 1    # the batch runs whole; only its start mark is answered
        return real(*args, **kw)
    m.remote.submit = lossy  # type: ignore[method-assign]
    r = m.tick(10.0)
    m.remote.submit = real  # type: ignore[method-assign]
    assert calls == [1]                # one batch: the chain, depth first
    assert any("lost the answer" in n or "unreachable" in n for n in r.notes), r.notes
    assert [j.script for j in rig.cluster.submitted] == ["qsub.0", "qsub.1", "qsub.2"]
    assert all(m.jobs[f"Si/qsub.{i}"].sched_id is None and m.jobs[f"Si/qsub.{i}"].token
               for i in range(3))
    rig.transport.down = False
    now = 20.0
    for _ in range(6):
        m.tick(now)
        now += 10.0
        if {"Si/qsub.1", "Si/qsub.2"} <= m.ahead:
            break
    assert m.jobs["Si/qsub.1"].sched_id == rig.job("Si/qsub.1").id   # from the journal
    assert {"Si/qsub.1", "Si/qsub.2"} <= m.ahead
    assert rig.job("Si/qsub.2").hold == (rig.job("Si/qsub.1").id,)
    for i in range(3):
        rig.cluster.finish(rig.job(f"Si/qsub.{i}"))
    r = m.tick(now + 10)
    assert r.finished and r.exit_code == 0
    assert submitted_once(rig) == ["Si/qsub.0", "Si/qsub.1", "Si/qsub.2"]


@pytest.mark.parametrize("lost", ["before", "after"])
def test_a_connection_cut_under_the_unhook_deletes_once_and_blocks(
        tmp_path: Path, lost: str) -> None:
    """The delete of the jobs queued after a failed one is cut: before it reached the cluster
    (nothing changed: the next cycle deletes them) or after (deleted, answer lost: the next
    cycle's delete of ids already gone changes nothing on the cluster). Either way both end
    blocked, unhooked once, and never run."""
    rig, m = chain_of_three(tmp_path)
    m.tick(10.0)
    assert m.ahead == {"Si/qsub.1", "Si/qsub.2"}
    rig.cluster.finish(rig.job("Si/qsub.0"), rc=3)
    real = m.remote.cancel

    def cut(ids):  # type: ignore[no-untyped-def]
        if lost == "before":
            rig.transport.down = True
        else:
            rig.transport.cut_after = 0
        return real(ids)
    m.remote.cancel = cut  # type: ignore[method-assign]
    r = m.tick(20.0)
    m.remote.cancel = real  # type: ignore[method-assign]
    assert any("unreachable" in n for n in r.notes), r.notes
    assert rig.states()["Si/qsub.1"] == "running"     # nothing recorded of a delete not answered
    assert bool(rig.cluster.queue) == (lost == "before")
    rig.transport.down = False
    r = m.tick(30.0)
    assert rig.states() == {"Si/qsub.0": "error", "Si/qsub.1": "pending", "Si/qsub.2": "pending"}
    assert not rig.cluster.queue
    assert r.counts["blocked"] == 2 and r.finished and r.exit_code == 1
    assert submitted_once(rig) == ["Si/qsub.0", "Si/qsub.1", "Si/qsub.2"]
    for name in ("Si/qsub.1", "Si/qsub.2"):
        assert [k for _, k, _ in m.store.events(name)].count("unhooked") == 1
    assert not any(rig.cluster.files.get(f"{rig.job(n).dir}/qsub.finished.{n[-1]}") is not None
                   for n in ("Si/qsub.1", "Si/qsub.2"))
