"""The monitor cycle (jobauto/run/cycle.py): tick(now) against the fake cluster, with an explicit
clock. Verdicts, retries and resets: run/test_cycle_verdicts.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import RDIR, Rig, chain, make_job

from jobauto.core.model import JobState
from jobauto.run import quelist
from jobauto.run.mirror import Remote
from jobauto.run.submitting import START_GRACE_S


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_chain_runs_in_order_and_finishes(rig: Rig) -> None:
    chain(rig.init, "Si", 3)
    m = rig.start()
    r = m.tick(1000.0)
    assert r.counts == {"done": 0, "running": 1, "ready": 0, "waiting": 2, "blocked": 0, "error": 0}
    assert [j.script for j in rig.cluster.submitted] == ["qsub.0"]
    rig.cluster.finish(rig.job("Si/qsub.0"))
    r = m.tick(1010.0)
    assert r.counts["done"] == 1 and [j.script for j in rig.cluster.submitted] == ["qsub.0", "qsub.1"]
    rig.cluster.finish(rig.job("Si/qsub.1"))
    m.tick(1020.0)
    rig.cluster.finish(rig.job("Si/qsub.2"))
    r = m.tick(1030.0)
    assert r.finished and r.exit_code == 0
    assert (rig.run / "Si" / "qsub.finished.2").exists()  # markers are brought back
    lines = quelist.parse((rig.run / "quelist").read_text())
    assert [ln.name for ln in lines] == ["Si/qsub.0", "Si/qsub.1", "Si/qsub.2"]
    assert all("started" in ln.times and "finished" in ln.times and ln.extra["jobid"] for ln in lines)


def test_maxqsub_is_never_exceeded(tmp_path: Path) -> None:
    rig = Rig(tmp_path, maxqsub=3)
    for i in range(10):
        make_job(rig.init, f"fan/qsub.{i}")
    m = rig.start()
    now = 0.0
    for _ in range(10):
        now += 10
        r = m.tick(now)
        assert len(rig.cluster.queue) <= 3
        assert r.counts["running"] <= 3
        for j in rig.cluster.running()[:2]:
            rig.cluster.finish(j)
        if r.finished:
            break
    assert r.exit_code == 0 and len(rig.cluster.submitted) == 10


def test_failure_blocks_dependents_and_summary_names_them(rig: Rig) -> None:
    chain(rig.init, "Si", 3)
    make_job(rig.init, "GaAs/qsub.0", ["../Si/qsub.finished.2"])
    m = rig.start()
    m.tick(1.0)
    rig.cluster.finish(rig.job("Si/qsub.0"), rc=3)
    r = m.tick(2.0)
    assert r.finished and r.exit_code == 1
    assert rig.states()["Si/qsub.0"] == "error"
    assert r.counts["blocked"] == 3
    text = "\n".join(r.summary)
    assert "Si/qsub.0: failed: exited with code 3" in text
    assert "blocked  GaAs/qsub.0: by Si/qsub.0" in text
    line = quelist.parse((rig.run / "quelist").read_text())[0]
    assert "failed" in line.times and "finished" not in line.times


def test_priority_then_ready_order(tmp_path: Path) -> None:
    rig = Rig(tmp_path, maxqsub=1)
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "b/qsub.0", directive="#jobauto priority=5")
    make_job(rig.init, "c/qsub.0")
    m = rig.start()
    order = []
    for t in range(1, 5):
        m.tick(float(t))
        order += [f"{j.dir.split('/')[-1]}" for j in rig.cluster.running()]
        for j in rig.cluster.running():
            rig.cluster.finish(j)
    assert order == ["b", "a", "c"]


def test_vanished_job_becomes_error_after_grace(tmp_path: Path) -> None:
    rig = Rig(tmp_path, lost_after_s=300)
    chain(rig.init, "Si", 2)
    m = rig.start()
    m.tick(0.0)
    rig.cluster.queue.clear()  # killed by walltime: no marker
    assert m.tick(10.0).counts["running"] == 1
    assert m.tick(200.0).counts["running"] == 1
    r = m.tick(311.0)
    assert r.finished and r.exit_code == 1
    assert "vanished" in m.jobs["Si/qsub.0"].reason and r.counts["blocked"] == 1


def test_unanswered_queue_query_never_counts_as_vanished(tmp_path: Path) -> None:
    rig = Rig(tmp_path, lost_after_s=10)
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(0.0)
    rig.cluster.qstat_fails = True
    rig.cluster.queue.clear()
    for t in (20.0, 40.0, 60.0):
        assert m.tick(t).counts["running"] == 1


def test_lost_answer_is_recovered_from_the_journal_without_duplicates(rig: Rig) -> None:
    for i in range(4):
        make_job(rig.init, f"d/qsub.{i}")
    m = rig.start()
    rig.transport.cut_after = 2  # the batch ran whole, but the answer stops after 2 results
    r = m.tick(1.0)
    assert any("lost the answer" in n for n in r.notes)
    assert len(rig.cluster.submitted) == 4
    rig.transport.down = False
    r = m.tick(2.0)
    assert len(rig.cluster.submitted) == 4
    assert all(j.sched_id for j in m.jobs.values())
    assert r.counts["running"] == 4


def test_batch_that_never_arrived_is_submitted_again_once(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    rig.transport.down = True
    m.tick(0.0)  # observe fails: nothing recorded
    rig.transport.down = False
    original = rig.cluster.qsub
    rig.cluster.qsub = lambda argv, cwd: (_ for _ in ()).throw(AssertionError)  # type: ignore[method-assign]
    rig.transport.down = False

    # intent committed, then the connection dies before the batch is delivered
    def down_submit(batch, entries):  # type: ignore[no-untyped-def]
        return [None for _ in entries]
    m.remote.submit = down_submit  # type: ignore[method-assign]
    m.tick(1.0)
    assert m.jobs["a/qsub.0"].unconfirmed
    rig.cluster.qsub = original  # type: ignore[method-assign]
    m.remote.submit = Remote.submit.__get__(m.remote)  # type: ignore[method-assign]
    m.tick(2.0)  # within the grace: wait
    assert m.jobs["a/qsub.0"].unconfirmed and not rig.cluster.submitted
    m.tick(2.0 + START_GRACE_S)  # no journal start, not in the queue: safe to submit again
    m.tick(3.0 + START_GRACE_S)
    assert len(rig.cluster.submitted) == 1 and m.jobs["a/qsub.0"].sched_id


def test_crash_after_qsub_before_id_stored(rig: Rig) -> None:
    """kill -9 between qsub returning and the id being stored: restart finds it, no duplicate."""
    for i in range(3):
        make_job(rig.init, f"d/qsub.{i}")
    m = rig.start()

    class Killed(BaseException):
        pass

    real = m.remote.submit

    def submit_then_die(batch, entries):  # type: ignore[no-untyped-def]
        real(batch, entries)
        raise Killed
    m.remote.submit = submit_then_die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        m.tick(1.0)
    assert len(rig.cluster.submitted) == 3
    m2 = rig.new_monitor()
    m2.restart(5.0)
    assert all(j.unconfirmed for j in m2.jobs.values())
    r = m2.tick(5.0)
    assert len(rig.cluster.submitted) == 3 and r.counts["running"] == 3
    assert all(j.sched_id and j.spre_at == 5.0 for j in m2.jobs.values())
    assert "spre@" in (rig.run / "quelist").read_text()


def test_crash_after_intent_before_batch(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    m = rig.start()

    class Killed(BaseException):
        pass

    def die(batch, entries):  # type: ignore[no-untyped-def]
        raise Killed
    m.remote.submit = die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        m.tick(1.0)
    m2 = rig.new_monitor()
    m2.restart(2.0)
    m2.tick(2.0)
    assert not rig.cluster.submitted  # still within the grace period
    m2.tick(3.0 + START_GRACE_S)
    m2.tick(4.0 + START_GRACE_S)
    assert len(rig.cluster.submitted) == 1


def test_transient_refusal_retries_and_says_why(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    rig.cluster.refuse = "Unable to run job: job rejected: max_u_jobs limit reached"
    r = m.tick(1.0)
    assert m.jobs["a/qsub.0"].state == JobState.PENDING
    assert any("submission refused" in n for n in r.notes)
    assert "not submitting: the scheduler refused a submission" in r.count_line
    assert "max_u_jobs" in r.count_line
    rig.cluster.refuse = None
    r = m.tick(2.0)  # backing off: nothing goes out yet, and the count line says why
    assert r.counts["running"] == 0 and "not submitting" in r.count_line
    r = m.tick(1.0 + 30.0)
    assert r.counts["running"] == 1 and "not submitting" not in r.count_line


def test_backoff_doubles_while_refusals_go_on_and_resets_after_success(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "a/qsub.1", ["qsub.finished.0"])
    m = rig.start()
    rig.cluster.refuse = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"
    m.tick(0.0)
    m.tick(30.0)   # second refusal: pause 60 s
    assert m.paused_until == 90.0
    m.tick(89.0)
    assert m.jobs["a/qsub.0"].attempts == 2
    rig.cluster.refuse = None
    m.tick(90.0)
    assert m.jobs["a/qsub.0"].state == JobState.RUNNING and m.backoff_s == 0.0


def test_permanent_rejection_is_an_error_with_the_message(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    rig.cluster.refuse = "qsub: invalid option -- 'Z'"
    r = m.tick(1.0)
    assert r.finished and r.exit_code == 1
    assert "invalid option" in m.jobs["a/qsub.0"].reason


def test_jobs_added_on_the_cluster_and_locally_are_picked_up(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(1.0)
    # a job script that creates the next job on the cluster (dynamic workflows)
    rig.cluster.write(f"{RDIR}/a/qsub.1", b"#!/bin/sh\n")
    rig.cluster.write(f"{RDIR}/a/qsub.dependency.1", b"qsub.finished.0\n")
    # and a user adding a job under LDIR/DATE while it runs
    make_job(rig.run, "b/qsub.0", ["../a/qsub.finished.1"])
    rig.cluster.finish(rig.job("a/qsub.0"))
    r = m.tick(2.0)
    assert set(m.jobs) == {"a/qsub.0", "a/qsub.1", "b/qsub.0"}
    assert (rig.run / "a" / "qsub.1").exists()
    assert f"{RDIR}/b/qsub.0" in rig.cluster.files  # pushed
    assert r.counts["running"] == 1
    rig.cluster.finish(rig.job("a/qsub.1"))
    m.tick(3.0)
    rig.cluster.finish(rig.job("b/qsub.0"))
    assert m.tick(4.0).exit_code == 0


def test_plain_file_dependency_and_stuck_summary(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0", ["rst.a"])
    m = rig.start()
    r = m.tick(1.0)
    assert r.finished and r.exit_code == 1
    assert "needs a/rst.a" in "\n".join(r.summary)
    rig.cluster.write(f"{RDIR}/a/rst.a", b"x")
    r = m.tick(2.0)
    assert r.counts["running"] == 1


def test_state_survives_a_new_monitor(rig: Rig) -> None:
    chain(rig.init, "Si", 2)
    m = rig.start()
    m.tick(1.0)
    rig.cluster.finish(rig.job("Si/qsub.0"))
    m.tick(2.0)
    m2 = rig.new_monitor()
    assert {n: j.state.value for n, j in m2.jobs.items()} == {"Si/qsub.0": "done", "Si/qsub.1": "running"}
    m2.restart(3.0)
    rig.cluster.finish(rig.job("Si/qsub.1"))
    assert m2.tick(4.0).exit_code == 0
    assert len(rig.cluster.submitted) == 2


def test_running_time_is_when_the_queue_first_shows_it_running(rig: Rig) -> None:
    """The report's timeline: submitted (started@) -> first seen running -> finished."""
    from jobauto.view.campaign import gather
    chain(rig.init, "Si", 1)
    m = rig.start()
    m.tick(1000.0)
    job = rig.job("Si/qsub.0")
    job.state = "qw"
    m.tick(1010.0)
    assert m.jobs["Si/qsub.0"].running_at is None
    job.state = "r"
    m.tick(1020.0)
    m.tick(1030.0)  # still running: the first sighting stays
    assert m.jobs["Si/qsub.0"].running_at == 1020.0
    assert [e[1] for e in m.store.events("Si/qsub.0")].count("running") == 1
    rig.cluster.finish(job)
    m.tick(1040.0)
    v = {j.name: j for j in gather(rig.run, now=1050.0).jobs}["Si/qsub.0"]
    assert (v.queued_at, v.started_at, v.state) == (1000.0, 1020.0, "done")
    assert v.ended_at is not None and v.duration() == v.ended_at - 1020.0
