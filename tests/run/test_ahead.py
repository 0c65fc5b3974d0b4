"""Jobs queued ahead (jobauto/run/ahead.py, jobmon --ahead) against the fake cluster, whose
-hold_jid keeps a job waiting until the jobs it names leave the queue (as Grid Engine does)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Rig, chain, make_job

from jobauto.core.model import JobState, Verdict
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
    assert "queued ahead after Si/qsub.1 (earlier in this batch)" in why   # one batch
    assert f"submitted     scheduler id {third.id}" in why
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


def test_a_delete_that_fails_leaves_the_job_counted_until_it_is_gone(rig: Rig) -> None:
    """The delete of a job queued after a failed one fails (the scheduler timed out): nothing
    is recorded as deleted, and the run does not end with the job left in the queue behind a
    `blocked` line. The next cycle deletes it; a job the queue no longer lists is not deleted
    again."""
    chain(rig.init, "Si", 3)
    m = rig.start()
    m.tick(10.0)
    rig.cluster.finish(rig.job("Si/qsub.0"), rc=3)
    rig.cluster.qdel_fails = True
    r = m.tick(20.0)
    assert rig.states() == {"Si/qsub.0": "error", "Si/qsub.1": "running", "Si/qsub.2": "running"}
    assert len(rig.cluster.queue) == 2 and not r.finished
    [(_, _, why)] = [e for e in m.store.events("Si/qsub.1") if e[1] == "delete-failed"]
    assert "fake said, exit 1: error: commlib error" in why, why
    rig.cluster.qdel_fails = False
    rig.cluster.end(rig.job("Si/qsub.2"), Verdict.CANCELLED)   # gone meanwhile (qdel by hand)
    deletes = len([c for c in rig.transport.commands if c.argv[0] == "fake-qdel"])
    r = m.tick(30.0)
    assert [c.argv[1:] for c in rig.transport.commands if c.argv[0] == "fake-qdel"][deletes:] \
        == [(rig.job("Si/qsub.1").id,)]   # the one still listed, alone
    assert not rig.cluster.queue and r.finished and r.exit_code == 1
    assert rig.states() == {"Si/qsub.0": "error", "Si/qsub.1": "pending", "Si/qsub.2": "pending"}
    [(_, _, gone)] = [e for e in m.store.events("Si/qsub.2") if e[1] == "unhooked"]
    assert gone.endswith(f"job {rig.job('Si/qsub.2').id} no longer in the queue"), gone


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


def test_a_lost_answer_for_a_chain_is_settled_from_the_journal_once(rig: Rig) -> None:
    """The batch of a chain reached the scheduler but its answers were lost, then the monitor
    was killed: the restart confirms each job from the cluster's journal, never submits one
    twice, and each waits on the id its predecessor got in the batch."""
    chain(rig.init, "Si", 3)
    m = rig.start()
    real = m.remote.submit
    m.remote.submit = lambda *a, **k: [None for _ in real(*a, **k)]  # type: ignore[method-assign]
    r = m.tick(10.0)
    assert any("lost the answer" in n for n in r.notes)
    assert all(m.jobs[f"Si/qsub.{i}"].unconfirmed for i in range(3))
    m = rig.new_monitor()
    m.tick(20.0)
    first, second, third = (rig.job(f"Si/qsub.{i}") for i in range(3))
    assert [m.jobs[f"Si/qsub.{i}"].sched_id for i in range(3)] == [first.id, second.id, third.id]
    assert (second.hold, third.hold) == ((first.id,), (second.id,))
    for name in ("Si/qsub.0", "Si/qsub.1", "Si/qsub.2"):
        rig.cluster.finish(rig.job(name))
    r = m.tick(30.0)
    assert r.finished and r.exit_code == 0 and len(rig.cluster.submitted) == 3


def test_pipelines_go_depth_first_each_step_after_the_id_its_predecessor_got(
        tmp_path: Path) -> None:
    """Ready jobs and the chains after them go in one batch, pipeline by pipeline: a
    scheduler that starts waiting jobs in id order then runs a pipeline's next step as soon as
    its last one ends. A job with two predecessors goes after the later one."""
    rig = Rig(tmp_path, maxqsub=3)
    rig.settings.ahead = 10
    for d in "abc":
        chain(rig.init, d, 3)
    make_job(rig.init, "join/qsub.0", ["../a/qsub.finished.2", "../b/qsub.finished.0"])
    m = rig.start()
    r = m.tick(10.0)
    order = [f"{j.dir.rsplit('/', 1)[-1]}/{j.script}" for j in rig.cluster.submitted]
    assert order == ["a/qsub.0", "a/qsub.1", "a/qsub.2", "b/qsub.0", "b/qsub.1", "b/qsub.2",
                     "join/qsub.0", "c/qsub.0", "c/qsub.1", "c/qsub.2"]
    ids = [int(j.id) for j in rig.cluster.submitted]
    assert ids == list(range(ids[0], ids[0] + 10))
    for d in "abc":
        assert rig.job(f"{d}/qsub.1").hold == (rig.job(f"{d}/qsub.0").id,)
        assert rig.job(f"{d}/qsub.2").hold == (rig.job(f"{d}/qsub.1").id,)
    assert set(rig.job("join/qsub.0").hold) == {rig.job("a/qsub.2").id, rig.job("b/qsub.0").id}
    assert (r.counts["running"], r.counts["queued-ahead"]) == (3, 7)
    starts = [c for c in rig.transport.commands if c.argv[3:4] == ("jobauto-mark",)
              and c.argv[-1] == "start"]
    assert len(starts) == 1   # one batch


def test_a_small_room_gives_every_chain_its_next_step_before_any_its_third(
        tmp_path: Path) -> None:
    """--ahead smaller than the chains: each running chain gets its next step queued (none
    waits a cycle for it) before any chain gets a further one; the batch is still in pipeline
    order."""
    rig = Rig(tmp_path, maxqsub=3)
    rig.settings.ahead = 4
    for d in "abc":
        chain(rig.init, d, 4)
    m = rig.start()
    m.tick(10.0)
    order = [f"{j.dir.rsplit('/', 1)[-1]}/{j.script}" for j in rig.cluster.submitted]
    assert order == ["a/qsub.0", "a/qsub.1", "a/qsub.2", "b/qsub.0", "b/qsub.1", "c/qsub.0",
                     "c/qsub.1"]


def test_a_predecessor_refused_in_the_batch_leaves_its_chain_pending_not_rejected(
        rig: Rig) -> None:
    """The scheduler refuses the first job of a chain for now: the jobs after it in the same
    batch get no id to wait on, are not sent (no error, no extra pause), and the whole chain
    goes again, once, when the pause is over."""
    chain(rig.init, "Si", 3)
    m = rig.start()
    rig.cluster.refuse, rig.cluster.refuse_rc = "qsub: queue full, try again", 1
    real = rig.cluster.qsub

    def first_only(argv, cwd):  # type: ignore[no-untyped-def]
        res = real(argv, cwd)
        rig.cluster.refuse = None      # the refusal is for the first submission alone
        return res
    rig.cluster.qsub = first_only  # type: ignore[method-assign]
    r = m.tick(10.0)
    rig.cluster.qsub = real  # type: ignore[method-assign]
    assert not rig.cluster.submitted
    assert rig.states() == {f"Si/qsub.{i}": "pending" for i in range(3)}
    for name in ("Si/qsub.1", "Si/qsub.2"):
        [(_, _, why)] = [e for e in m.store.events(name) if e[1] == "not-submitted"]
        assert why.startswith("jobauto: not sent: no id in this batch for ja"), why
    assert sum("refused" in n for n in r.notes) == 1 and m.paused_until > 10.0
    r = m.tick(m.paused_until + 1)
    assert [j.script for j in rig.cluster.submitted] == ["qsub.0", "qsub.1", "qsub.2"]
    assert rig.job("Si/qsub.2").hold == (rig.job("Si/qsub.1").id,)
    rejected = Rig(rig.init.parent / "rejected")   # refused for good: the chain is blocked
    rejected.settings.ahead = 10
    chain(rejected.init, "Si", 3)
    m = rejected.start()
    rejected.cluster.refuse = "qsub: Unknown option -q nosuch"
    r = m.tick(10.0)
    assert rejected.states()["Si/qsub.0"] == "error" and r.counts["blocked"] == 2


def test_an_unsent_answer_read_back_from_the_journal_is_not_a_rejection(rig: Rig) -> None:
    """The answers of a batch whose first job was refused are lost: the journal says the job
    after it was not sent, and the restart takes that as not submitted (then blocked by the
    refused one), never as a refusal of its own."""
    chain(rig.init, "Si", 2)
    m = rig.start()
    rig.cluster.refuse = "qsub: Unknown option -q nosuch"
    real = m.remote.submit
    m.remote.submit = lambda *a, **k: [None for _ in real(*a, **k)]  # type: ignore[method-assign]
    m.tick(10.0)
    rig.cluster.refuse = None
    rig.monitor = m = rig.new_monitor()
    r = m.tick(20.0)
    assert rig.states() == {"Si/qsub.0": "error", "Si/qsub.1": "pending"}
    assert r.counts["blocked"] == 1 and not rig.cluster.submitted
    kinds = [e[1] for e in m.store.events("Si/qsub.1")]
    assert kinds == ["intent", "not-submitted"], kinds


def test_a_job_after_an_array_task_is_left_to_jobmon(rig: Rig) -> None:
    """A predecessor that goes in an array has no id of its own in the batch: the job after it
    is not queued ahead (nothing is sent for it) and waits for the marker as without --ahead."""
    for i in range(3):
        make_job(rig.init, f"r{i}/qsub.0")
    make_job(rig.init, "post/qsub.1", ["../r1/qsub.finished.0"])
    (rig.init / ".jobauto-rendered").write_text("# rendered\nr0\nr1\nr2\n")
    m = rig.start()
    r = m.tick(10.0)
    assert len(rig.cluster.arrays) == 1 and len(rig.cluster.submitted) == 3
    assert rig.states()["post/qsub.1"] == "pending" and "queued-ahead" not in r.counts
    for j in list(rig.cluster.queue.values()):
        rig.cluster.finish(j)
    m.tick(20.0)
    r = m.tick(30.0)
    assert rig.states()["post/qsub.1"] == "running" and rig.job("post/qsub.1").hold == ()


def test_a_chain_longer_than_ahead_goes_on_after_running_jobs(tmp_path: Path) -> None:
    """--ahead=1: the first batch queues one job after the ready one; when that one runs, the
    next goes ahead after it (the jobs after running jobs, run/ahead.py chains)."""
    rig = Rig(tmp_path)
    rig.settings.ahead = 1
    chain(rig.init, "Si", 3)
    m = rig.start()
    m.tick(10.0)
    assert [j.script for j in rig.cluster.submitted] == ["qsub.0", "qsub.1"]
    rig.cluster.finish(rig.job("Si/qsub.0"))
    r = m.tick(20.0)
    assert [j.script for j in rig.cluster.submitted] == ["qsub.0", "qsub.1", "qsub.2"]
    assert rig.job("Si/qsub.2").hold == (rig.job("Si/qsub.1").id,)
    assert r.counts["queued-ahead"] == 1
