"""`jobauto cancel` as the monitor applies it (jobauto/run/cancelling.py): tick(now) against the
fake cluster with an explicit clock; the request is what the command records (run/control.py)."""

from __future__ import annotations

from pathlib import Path

from helpers import RDIR, Rig, chain, make_job

from jobauto.core.model import JobState
from jobauto.run import quelist
from jobauto.store import Store


def request(rig: Rig, args: dict[str, object]) -> int:
    """What `jobauto cancel` records from another process."""
    other = Store(rig.run / ".jobauto" / "state.db")
    rid = other.add_request(0.0, "cancel", args)
    other.close()
    return rid


def result(rig: Rig, rid: int) -> str | None:
    assert rig.store is not None
    return next(r[5] for r in rig.store.requests() if r[0] == rid) or None


def test_one_running_job_is_deleted_recorded_cancelled_and_its_dependents_blocked(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    chain(rig.init, "Si", 3)
    make_job(rig.init, "ok/qsub.0", body="sleep 100")
    m = rig.start()
    m.tick(10.0)
    si0 = rig.job("Si/qsub.0")
    rid = request(rig, {"jobs": ["Si/qsub.0"]})
    r = m.tick(20.0)
    assert si0.id not in rig.cluster.queue                      # deleted from the queue
    assert rig.cluster.queue                                    # ok/qsub.0 still runs
    job = m.jobs["Si/qsub.0"]
    assert job.state == JobState.ERROR and job.verdict == "cancelled"
    assert "jobauto cancel (request" in job.evidence and f"deleted job {si0.id}" in job.evidence
    assert r.counts["cancelled"] == 1 and r.counts["error"] == 0 and r.counts["blocked"] == 2
    assert "cancelled 1 job(s)" in r.notes
    assert result(rig, rid) == "cancelled 1 job(s)"
    assert "cancelled" in r.count_line
    assert [e for e in m.store.events("Si/qsub.0") if e[1] == "cancelled"]
    line = quelist.parse((rig.run / "quelist").read_text())[0]
    assert line.extra["reason"] == "cancelled" and "failed" in line.times
    rig.cluster.finish(rig.job("ok/qsub.0"))
    r = m.tick(30.0)
    assert r.finished and r.exit_code == 1
    assert any(s.startswith("cancelled Si/qsub.0:") for s in r.summary)
    assert any(s.startswith("blocked  Si/qsub.1: by Si/qsub.0") for s in r.summary)


def test_pending_jobs_are_cancelled_and_never_submitted(tmp_path: Path) -> None:
    rig = Rig(tmp_path, maxqsub=1)
    for i in range(3):
        make_job(rig.init, f"fan/qsub.{i}")
    m = rig.start()
    m.tick(10.0)
    assert len(rig.cluster.submitted) == 1
    request(rig, {"jobs": ["fan/qsub.1", "fan/qsub.2"]})
    m.tick(20.0)
    assert m.jobs["fan/qsub.1"].verdict == m.jobs["fan/qsub.2"].verdict == "cancelled"
    assert "not submitted" in m.jobs["fan/qsub.1"].evidence
    rig.cluster.finish(rig.job("fan/qsub.0"))
    r = m.tick(30.0)
    assert len(rig.cluster.submitted) == 1 and r.finished and r.exit_code == 1


def test_the_whole_run_stops_submitting_and_ends_once_nothing_runs(tmp_path: Path) -> None:
    rig = Rig(tmp_path, maxqsub=2)
    for i in range(5):
        make_job(rig.init, f"fan/qsub.{i}")
    chain(rig.init, "c", 2)
    m = rig.start()
    m.tick(10.0)
    rid = request(rig, {"all": True})
    r = m.tick(20.0)
    assert not rig.cluster.queue and len(rig.cluster.submitted) == 2
    assert r.finished and r.exit_code == 1
    assert r.counts["cancelled"] == 7 and r.counts["done"] == 0
    assert "whole run" in (result(rig, rid) or "")


def test_a_submission_whose_answer_was_lost_is_found_in_the_queue_and_cancelled(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0", body="sleep 100")
    m = rig.start()
    real = m.remote.submit
    m.remote.submit = lambda batch, entries, *a, **k: [real(batch, entries, *a, **k) and None for _ in entries]  # type: ignore[method-assign]
    m.tick(10.0)                                  # submitted, but the answer was lost
    del m.remote.submit
    assert m.jobs["a/qsub.0"].unconfirmed and rig.cluster.queue
    rid = request(rig, {"all": True})
    r = m.tick(20.0)                              # settled from the journal, then cancelled
    assert not rig.cluster.queue
    assert m.jobs["a/qsub.0"].verdict == "cancelled" and result(rig, rid)
    assert r.finished and r.exit_code == 1


def test_an_unsettled_submission_keeps_the_request_open_until_it_is_known(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0", body="sleep 100")
    m = rig.start()
    real = m.remote.submit
    m.remote.submit = lambda batch, entries, *a, **k: [real(batch, entries, *a, **k) and None for _ in entries]  # type: ignore[method-assign]
    m.tick(10.0)
    del m.remote.submit
    rig.cluster.files = {k: v for k, v in rig.cluster.files.items() if ".jobauto" not in k}
    rig.cluster.qstat_fails = True                # no journal, no queue: nothing is known
    rid = request(rig, {"jobs": ["a/qsub.0"]})
    m.tick(11.0)
    assert m.jobs["a/qsub.0"].state == JobState.RUNNING and result(rig, rid) is None
    assert rig.cluster.queue and any(e[1] == "cancel-waiting" for e in m.store.events("a/qsub.0"))
    rig.cluster.qstat_fails = False
    r = m.tick(12.0)                              # the queue shows it by its token
    assert not rig.cluster.queue and m.jobs["a/qsub.0"].verdict == "cancelled"
    assert result(rig, rid) == "cancelled 1 job(s)" and r.finished


def test_markers_after_a_cancel_a_finished_one_wins_a_failed_one_does_not(tmp_path: Path) -> None:
    """A finished marker written before the cancel (the job was ending: its work is done) wins;
    one written after it does not: a script that traps EXIT and reads `$?` when TERM kills it
    sees the last command's 0 and writes a finished marker alone (the real-cluster cancel test
    on Slurm came back done so). A failed marker after the cancel leaves it cancelled too."""
    rig = Rig(tmp_path)
    for d in ("done", "trap", "lie"):
        make_job(rig.init, f"{d}/qsub.0")
    m = rig.start()
    m.tick(10.0)
    request(rig, {"all": True})
    m.tick(20.4)
    rig.cluster.mtime = 19.0
    rig.cluster.write(f"{RDIR}/done/qsub.finished.0")               # it was ending: work done
    m.tick(30.0)
    rig.cluster.mtime = 20.0           # the same second as the cancel (a tar keeps whole seconds)
    rig.cluster.write(f"{RDIR}/trap/qsub.failed.0", b"143\n")        # SIGTERM trapped
    rig.cluster.write(f"{RDIR}/trap/qsub.finished.0")
    rig.cluster.write(f"{RDIR}/lie/qsub.finished.0")                # its EXIT trap read 0
    m.tick(40.0)
    assert m.jobs["done/qsub.0"].state == JobState.DONE
    assert m.jobs["trap/qsub.0"].verdict == "cancelled"
    assert m.jobs["lie/qsub.0"].verdict == "cancelled"
    assert any("stays cancelled" in e[2] for e in m.store.events("trap/qsub.0"))
    assert any("written after the cancel" in e[2] for e in m.store.events("lie/qsub.0"))


def test_a_cancelled_job_reset_runs_again(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    request(rig, {"jobs": ["a/qsub.0"]})
    m.tick(10.0)                                  # cancelled before it was submitted
    assert m.jobs["a/qsub.0"].verdict == "cancelled" and not rig.cluster.submitted
    other = Store(rig.run / ".jobauto" / "state.db")
    other.add_request(0.0, "reset", {"jobs": [], "status": ["error"]})
    other.close()
    m.tick(20.0)
    assert m.jobs["a/qsub.0"].state == JobState.RUNNING and "a/qsub.0" not in m.cancelled
    rig.cluster.finish(rig.job("a/qsub.0"))
    r = m.tick(30.0)
    assert r.finished and r.exit_code == 0 and "cancelled" not in r.counts
