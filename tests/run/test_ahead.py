"""Jobs queued ahead (jobauto/run/ahead.py, jobmon --ahead) against the fake cluster, whose
-hold_jid keeps a job waiting until the jobs it names leave the queue (as Grid Engine does)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Rig, chain, make_job

from jobauto.core.model import JobState
from jobauto.run import quelist
from jobauto.run.explain import explain


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = Rig(tmp_path)
    r.settings.ahead = 10
    return r


def test_a_chain_is_queued_at_once_and_runs_each_job_once(rig: Rig) -> None:
    chain(rig.init, "Si", 3)
    m = rig.start()
    r = m.tick(10.0)
    first, second, third = (rig.job(f"Si/qsub.{i}") for i in range(3))
    assert (second.hold, third.hold) == ((first.id,), (second.id,))
    assert (r.counts["running"], r.counts["queued-ahead"], r.counts["waiting"]) == (1, 2, 0)
    assert "queued-ahead 2" in r.count_line
    lines = {ln.name: ln for ln in quelist.parse((rig.run / "quelist").read_text())}
    assert lines["Si/qsub.1"].extra["queue"] == "ahead" and "queue" not in lines["Si/qsub.0"].extra
    assert not m.held   # hqw on a predecessor is the dependency, not a person's hold
    why = "\n".join(explain(rig.run, "Si/qsub.2"))
    assert f"queued-ahead (job {third.id}): waiting in the queue until Si/qsub.finished.1" in why
    assert f"queued ahead after Si/qsub.1 ({second.id})" in why
    rig.cluster.finish(first)
    r = m.tick(20.0)
    assert (r.counts["done"], r.counts["running"], r.counts["queued-ahead"]) == (1, 1, 1)
    rig.cluster.finish(second)
    rig.cluster.finish(third)
    r = m.tick(30.0)
    assert r.finished and r.exit_code == 0
    assert len(rig.cluster.submitted) == 3
    why = "\n".join(explain(rig.run, "Si/qsub.2"))   # the edge, and what it saved
    assert "edge:       queued ahead 20.0 s before Si/qsub.1 ended" in why, why
    assert "what it saved is not known" in why   # every edge went ahead; no settings recorded
    m.store.set_meta("settings", '{"interval": 60}')
    why = "\n".join(explain(rig.run, "Si/qsub.2"))
    assert "saved about 30.0 s: without --ahead it would have been submitted only after half " \
        "of --interval" in why, why
    assert "edge:" not in "\n".join(explain(rig.run, "Si/qsub.0"))   # no predecessor


def test_a_failed_step_takes_its_queued_dependents_out_and_blocks_them(rig: Rig) -> None:
    chain(rig.init, "Si", 3)
    make_job(rig.init, "GaAs/qsub.0", ["rst.GaAs"])   # a plain file: never queued ahead
    m = rig.start()
    m.tick(10.0)
    assert [j.script for j in rig.cluster.submitted] == ["qsub.0", "qsub.1", "qsub.2"]
    rig.cluster.finish(rig.job("Si/qsub.0"), rc=3)
    r = m.tick(20.0)
    assert rig.states() == {"Si/qsub.0": "error", "Si/qsub.1": "pending", "Si/qsub.2": "pending",
                            "GaAs/qsub.0": "pending"}
    assert not rig.cluster.queue                      # both deleted, in one qdel
    assert r.counts["blocked"] == 2 and r.counts["error"] == 1 and "queued-ahead" not in r.counts
    [(_, _, why)] = [e for e in m.store.events("Si/qsub.2") if e[1] == "unhooked"]
    assert why.startswith("queued after Si/qsub.1, which was taken out of the queue; deleted")
    assert r.finished and r.exit_code == 1
    assert "blocked  Si/qsub.2: by Si/qsub.0" in "\n".join(r.summary)


def test_never_satisfiable_with_the_predecessor_done_goes_again_without_it(rig: Rig) -> None:
    chain(rig.init, "Si", 2)
    m = rig.start()
    m.tick(10.0)
    rig.cluster.finish(rig.job("Si/qsub.0"))
    second = rig.job("Si/qsub.1")
    second.state, second.reason = "qw", "DependencyNeverSatisfied"   # Slurm's afterok saw exit 1
    r = m.tick(20.0)
    again = rig.job_latest("Si/qsub.1")
    assert again is not second and again.hold == () and second.id not in rig.cluster.queue
    assert m.jobs["Si/qsub.1"].state == JobState.RUNNING and m.jobs["Si/qsub.1"].sched_id == again.id
    assert r.counts["running"] == 1 and "queued-ahead" not in r.counts


def test_ahead_bounds_the_jobs_waiting_and_zero_is_the_old_way(tmp_path: Path) -> None:
    for ahead, queued in ((2, 2), (0, 0)):
        rig = Rig(tmp_path / str(ahead))
        rig.settings.ahead = ahead
        for d in "abcde":
            chain(rig.init, d, 2)
        m = rig.start()
        r = m.tick(10.0)
        assert r.counts["running"] == 5 and r.counts.get("queued-ahead", 0) == queued
        assert len(rig.cluster.submitted) == 5 + queued


def test_a_restarted_monitor_knows_its_ahead_jobs_from_the_store(rig: Rig) -> None:
    chain(rig.init, "Si", 3)
    rig.start().tick(10.0)
    m = rig.new_monitor()     # what a restart after kill -9 sees
    assert m.ahead == {"Si/qsub.1", "Si/qsub.2"}
    rig.cluster.finish(rig.job("Si/qsub.0"), rc=1)
    r = m.tick(20.0)
    assert r.counts["blocked"] == 2 and not rig.cluster.queue


def test_a_lost_answer_for_an_ahead_job_is_settled_from_the_journal_once(rig: Rig) -> None:
    """The batch of an ahead job reached the scheduler but its answer was lost, then the monitor
    was killed: the restart confirms it from the cluster's journal, never submits it twice, and
    only then queues its own dependent after it."""
    chain(rig.init, "Si", 3)
    m = rig.start()
    real, batches = m.remote.submit, []

    def lossy(batch, entries, arrays=None):  # type: ignore[no-untyped-def]
        batches.append(batch)
        res = real(batch, entries, arrays)
        return res if len(batches) == 1 else [None] * len(res)
    m.remote.submit = lossy  # type: ignore[method-assign]
    r = m.tick(10.0)
    assert any("lost the answer" in n for n in r.notes)
    assert m.jobs["Si/qsub.1"].unconfirmed and len(rig.cluster.submitted) == 2
    m = rig.new_monitor()
    r = m.tick(20.0)
    second, third = rig.job("Si/qsub.1"), rig.job("Si/qsub.2")
    assert m.jobs["Si/qsub.1"].sched_id == second.id and third.hold == (second.id,)
    for name in ("Si/qsub.0", "Si/qsub.1", "Si/qsub.2"):
        rig.cluster.finish(rig.job(name))
    r = m.tick(30.0)
    assert r.finished and r.exit_code == 0 and len(rig.cluster.submitted) == 3
