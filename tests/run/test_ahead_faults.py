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
        m.tick(10.0)     # Si/qsub.0 went normally; the ahead batch is where it died
    # one level of the chain per ahead batch: Si/qsub.1 first
    assert len(rig.cluster.submitted) == (1 if fault == "ahead.intent" else 2)
    m = revive(monkeypatch, rig)
    now = 20.0
    for _ in range(40):   # an intent not sent is settled after the journal's grace time
        r = m.tick(now)
        if {"Si/qsub.1", "Si/qsub.2"} <= m.ahead:
            break
        now += 10.0
    assert {"Si/qsub.1", "Si/qsub.2"} <= m.ahead, m.ahead
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
