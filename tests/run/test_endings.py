"""Verdicts, queue states, retries and resets in tick() (jobauto/run/cycle.py), on the fake cluster
with an explicit clock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import RDIR, Rig, jobauto, make_job
from hypothesis import given, settings
from hypothesis import strategies as st

from jobauto.core.model import Ending, JobState, Verdict
from jobauto.run.endings import EXIT_RANGE, parse_failed
from jobauto.run.explain import explain as jobauto_explain
from jobauto.store import Store


def test_accounting_gives_the_verdict_when_no_marker_comes(tmp_path: Path) -> None:
    rig = Rig(tmp_path, lost_after_s=300)
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "a/qsub.1", ["qsub.finished.0"])
    m = rig.start()
    m.tick(0.0)
    rig.cluster.end(rig.job("a/qsub.0"), Verdict.WALLTIME, 137, "qacct: failed=37 h_rt")
    m.tick(10.0)   # gone from the queue: accounting is asked next cycle
    r = m.tick(20.0)
    job = m.jobs["a/qsub.0"]
    assert job.state == JobState.ERROR and job.verdict == "walltime" and job.exit_code == 137
    assert job.evidence == "qacct: failed=37 h_rt" and job.reason.startswith("walltime: killed at")
    # jobmon's wrapper writes markers on every catchable end: the summary says what is left
    assert ("it left the queue without writing a/qsub.finished.0 (killed by SIGKILL at the hard "
            "walltime) (qacct: failed=37 h_rt)") in job.reason
    assert "left the queue without writing a/qsub.finished.0" in "\n".join(r.summary)
    assert r.finished and r.exit_code == 1 and r.counts["blocked"] == 1
    kinds = [k for _, k, _ in rig.store.events("a/qsub.0")]  # type: ignore[union-attr]
    assert kinds[-2:] == ["accounting", "walltime"]


def test_ended_normally_without_marker_waits_then_is_vanished_with_advice(tmp_path: Path) -> None:
    rig = Rig(tmp_path, lost_after_s=100)
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(0.0)
    rig.cluster.end(rig.job("a/qsub.0"), Verdict.DONE, 0, "qacct: exit_status=0")
    for t in (10.0, 20.0, 60.0):
        assert m.tick(t).counts["running"] == 1  # a shared filesystem may show the marker late
    m.tick(111.0)
    job = m.jobs["a/qsub.0"]
    assert job.verdict == "vanished" and "ended normally" in job.reason
    assert "left the queue without writing a/qsub.finished.0" in job.reason


def test_no_record_at_all_is_vanished_after_the_grace(tmp_path: Path) -> None:
    rig = Rig(tmp_path, lost_after_s=100)
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(0.0)
    rig.cluster.queue.clear()
    m.tick(10.0)
    assert m.tick(50.0).counts["running"] == 1
    m.tick(111.0)
    assert m.jobs["a/qsub.0"].verdict == "vanished"
    assert "no accounting record" in m.jobs["a/qsub.0"].evidence
    assert "left the queue without writing a/qsub.finished.0 (killed by SIGKILL?" in m.jobs["a/qsub.0"].reason


def test_a_non_zero_exit_without_markers_keeps_its_code_and_says_no_marker_came(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(0.0)
    rig.cluster.end(rig.job("a/qsub.0"), Verdict.FAILED, 9, "sacct: FAILED 9:0")
    m.tick(1.0)
    m.tick(2.0)
    job = m.jobs["a/qsub.0"]
    assert job.verdict == "failed" and job.exit_code == 9
    assert job.reason.startswith("failed: exited with code 9; it left the queue without writing "
                                 "a/qsub.finished.0 (killed by SIGKILL? walltime?) (sacct: FAILED 9:0)")
    ex = "\n".join(jobauto_explain(rig.run, "a/qsub.0"))
    assert "accounting (rule 2 of 3): it left the queue without writing a/qsub.finished.0" in ex
    assert "exited with a non-zero code, exit code 9" in ex


def test_a_late_marker_overrules_the_accounting_verdict(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "a/qsub.1", ["qsub.finished.0"])
    m = rig.start()
    m.tick(0.0)
    fj = rig.job("a/qsub.0")
    rig.cluster.end(fj, Verdict.NODE_FAILURE, None, "sacct: NODE_FAIL")
    m.tick(1.0)
    m.tick(2.0)
    assert m.jobs["a/qsub.0"].verdict == "node-failure"
    rig.cluster.finish(fj)  # the marker shows up after all
    m.tick(3.0)
    assert m.jobs["a/qsub.0"].state == JobState.DONE
    assert m.jobs["a/qsub.1"].state == JobState.RUNNING


def test_killed_by_signal_marker_is_refined_from_accounting(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(0.0)
    fj = rig.job("a/qsub.0")
    rig.cluster.finish(fj, rc=143)  # scancel: SIGTERM, the template's trap writes the markers
    fj.ending = Ending(fj.id, Verdict.CANCELLED, 0, "sacct: CANCELLED by 1001", name=fj.name)
    m.tick(1.0)
    assert m.jobs["a/qsub.0"].verdict == "failed" and m.jobs["a/qsub.0"].exit_code == 143
    m.tick(2.0)
    job = m.jobs["a/qsub.0"]
    assert job.state == JobState.ERROR and job.verdict == "cancelled" and job.exit_code == 143
    assert "marker a/qsub.failed.0: 143" in job.evidence and "CANCELLED by 1001" in job.evidence


def test_a_record_of_another_job_with_a_reused_id_is_ignored(tmp_path: Path) -> None:
    rig = Rig(tmp_path, lost_after_s=100)
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(0.0)
    fj = rig.job("a/qsub.0")
    rig.cluster.queue.clear()
    fj.ending = Ending(fj.id, Verdict.FAILED, 1, "qacct: old job", name="someone-else")
    m.tick(1.0)
    m.tick(2.0)
    assert m.jobs["a/qsub.0"].state == JobState.RUNNING


def test_held_jobs_are_shown_and_do_not_take_a_slot(tmp_path: Path) -> None:
    rig = Rig(tmp_path, maxqsub=1)
    for i in range(3):
        make_job(rig.init, f"a/qsub.{i}")
    m = rig.start()
    m.tick(0.0)
    rig.cluster.running()[0].state = "hqw"
    r = m.tick(1.0)  # seen held: its slot is free again
    assert r.counts["held"] == 1 and "held 1" in r.count_line
    r = m.tick(2.0)
    assert r.counts["running"] == 2
    line = next(ln for ln in (rig.run / "quelist").read_text().splitlines() if ln.startswith("a/qsub.0"))
    assert "queue=held" in line


def test_eqw_is_reported_then_deleted_with_its_reason_after_the_grace(tmp_path: Path) -> None:
    rig = Rig(tmp_path, lost_after_s=100)
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "b/qsub.0")
    m = rig.start()
    m.tick(0.0)
    fj = rig.job("a/qsub.0")
    fj.state, fj.reason = "Eqw", "error: can't open output file /nonexistent"
    r = m.tick(1.0)
    assert r.counts["queue-error"] == 1 and m.jobs["a/qsub.0"].state == JobState.RUNNING
    rig.cluster.finish(rig.job("b/qsub.0"))
    r = m.tick(101.0)
    job = m.jobs["a/qsub.0"]
    assert job.state == JobState.ERROR and job.verdict == "rejected"
    assert "can't open output file" in job.evidence and fj.id not in rig.cluster.queue
    assert r.finished and r.exit_code == 1


def test_retries_resubmit_after_removing_the_markers(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.settings.retries = 1
    make_job(rig.init, "a/qsub.0")
    (rig.init / "a/qsub.0").write_text((rig.init / "a/qsub.0").read_text()
                                       + "#jobauto walltime-retry: -l h_rt=48:00:00\n")
    m = rig.start()
    m.tick(0.0)
    first = rig.job("a/qsub.0")
    rig.cluster.finish(first, rc=137)
    first.ending = Ending(first.id, Verdict.WALLTIME, 137, "qacct: failed=37", name=first.name)
    m.tick(1.0)   # failed marker with a signal: asks accounting
    m.tick(2.0)   # walltime: retried, markers gone on the cluster and here
    assert f"{RDIR}/a/qsub.failed.0" not in rig.cluster.files
    assert not (rig.run / "a/qsub.failed.0").exists()
    job = m.jobs["a/qsub.0"]
    assert job.state == JobState.RUNNING and job.attempts == 2 and job.retried == 1
    events = rig.store.events("a/qsub.0")  # type: ignore[union-attr]
    assert any(k == "walltime-retry" and "-l h_rt=48:00:00" in d for _, k, d in events)
    rig.cluster.finish(rig.job_latest("a/qsub.0"), rc=2)
    r = m.tick(3.0)
    assert r.finished and r.exit_code == 1 and m.jobs["a/qsub.0"].retried == 1  # no second retry


def test_reset_request_applies_in_the_next_cycle(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "b/qsub.0", body="sleep 1")
    m = rig.start()
    m.tick(0.0)
    rig.cluster.finish(rig.job("a/qsub.0"), rc=3)
    m.tick(1.0)
    assert m.jobs["a/qsub.0"].state == JobState.ERROR
    other = Store(rig.run / ".jobauto" / "state.db")  # jobauto reset, another process
    other.add_request(1.5, "reset", {"jobs": [], "status": ["error"]})
    other.close()
    r = m.tick(2.0)
    assert any("reset 1 job(s)" in n for n in r.notes)
    assert m.jobs["a/qsub.0"].state == JobState.RUNNING and m.jobs["a/qsub.0"].attempts == 2
    assert f"{RDIR}/a/qsub.failed.0" not in rig.cluster.files
    assert rig.store.open_requests() == []  # type: ignore[union-attr]




# What a job writes into its failed marker is untrusted: any bytes give a verdict, never a crash
# that would come back at every cycle and every resume (docs/failure-modes.md).
GARBAGE = [
    (b"7\n", 7, "marker a/qsub.failed.0: 7"),
    (b"  -1 \r\n", -1, "marker a/qsub.failed.0: -1"),
    (b"99999999999999999999999\n", None, "99999999999999999999999 (not an exit code"),
    ("\u00b2\n".encode(), None, "marker a/qsub.failed.0: \u00b2 (not an exit code"),
    ("\u0663\n".encode(), None, "\u0663 (not an exit code"),          # Arabic-Indic three
    (b"+5\n", None, "+5 (not an exit code"),
    (b"\xff\xfe\x00 segfault \x1b[2J\nin line 3", None, "marker a/qsub.failed.0: \ufffd\ufffd segfault [2J in line 3"),
    (b"", None, "marker a/qsub.failed.0: (empty)"),
    (b"x" * 300_000, None, "x" * 200 + "\u2026"),
]


@pytest.mark.parametrize("content,code,evidence", GARBAGE,
                         ids=["code", "negative", "huge", "superscript-two", "arabic-three",
                              "plus", "binary", "empty", "300k"])
def test_any_failed_marker_is_a_verdict_never_a_crash(tmp_path: Path, content: bytes,
                                                      code: int | None, evidence: str) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "b/qsub.0")
    m = rig.start()
    m.tick(0.0)
    rig.cluster.write(f"{RDIR}/a/qsub.failed.0", content)
    rig.cluster.finish(rig.job("a/qsub.0"))
    m.tick(1.0)
    job = m.jobs["a/qsub.0"]
    assert job.state == JobState.ERROR and job.verdict == "failed" and job.exit_code == code
    assert evidence in job.evidence and len(job.evidence) < 400
    assert job.reason.isprintable() and "\x1b" not in job.evidence
    rig.cluster.finish(rig.job("b/qsub.0"))
    r = m.tick(2.0)
    assert r.finished and r.exit_code == 1
    again = rig.new_monitor()  # a resume reads what was stored
    again.restart(3.0)
    assert again.tick(4.0).exit_code == 1 and again.jobs["a/qsub.0"].exit_code == code


def put_obstacle(failed: Path, obstacle: str) -> None:
    """Something at a failed marker's place that cannot be read as a file."""
    if obstacle == "directory":
        failed.mkdir()
        (failed / "core").write_text("x")
    elif obstacle == "fifo":
        os.mkfifo(failed)   # a plain open would wait for a writer for ever
    else:
        failed.symlink_to("/dev/zero" if obstacle == "symlink to /dev/zero" else "/nonexistent/x")


@pytest.mark.parametrize("obstacle", ["directory", "symlink to /dev/zero", "fifo", "dangling symlink"])
def test_a_failed_marker_that_cannot_be_read_makes_the_job_error_with_the_reason(
        tmp_path: Path, obstacle: str) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "b/qsub.0")
    m = rig.start()
    m.tick(0.0)
    put_obstacle(rig.run / "a" / "qsub.failed.0", obstacle)
    rig.cluster.finish(rig.job("a/qsub.0"))
    rig.cluster.finish(rig.job("b/qsub.0"))
    r = m.tick(1.0)
    job = m.jobs["a/qsub.0"]
    assert job.state == JobState.ERROR and job.verdict == "failed" and job.exit_code is None
    assert "a/qsub.failed.0 is there but cannot be read" in job.reason
    assert m.jobs["b/qsub.0"].state == JobState.DONE
    assert r.finished and r.exit_code == 1
    out = jobauto("explain", str(rig.run), "a/qsub.0", check_rc=0).stdout
    assert "a/qsub.failed.0 is there but cannot be read" in out


def test_a_retry_that_cannot_remove_an_unreadable_marker_ends_all_the_same(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.settings.retries = 1
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(0.0)
    put_obstacle(rig.run / "a" / "qsub.failed.0", "directory")
    rig.cluster.finish(rig.job("a/qsub.0"))
    r = m.tick(1.0)        # error, retried: the directory stays, with a warning
    assert m.jobs["a/qsub.0"].state == JobState.RUNNING and m.jobs["a/qsub.0"].retried == 1
    assert any("cannot remove a/qsub.failed.0" in n for n in r.notes), r.notes
    rig.cluster.finish(rig.job_latest("a/qsub.0"))
    r = m.tick(2.0)
    job = m.jobs["a/qsub.0"]
    assert job.state == JobState.ERROR and "cannot be read: it is a directory" in job.reason
    assert r.finished and r.exit_code == 1


@given(st.binary(max_size=5000))
@settings(max_examples=300, deadline=None)
def test_parse_failed_takes_any_bytes(data: bytes) -> None:
    code, detail = parse_failed(data)
    assert code is None or EXIT_RANGE[0] <= code <= EXIT_RANGE[1]
    assert detail.isprintable() and len(detail) <= 250
    if code is not None:
        assert int(data.decode("ascii").strip()) == code


def test_a_marker_stamped_later_than_the_cycle_never_puts_a_dependent_start_before_it(
        tmp_path: Path) -> None:
    """A marker's time is the cluster's clock, read during the cycle's round trip; the dependent
    submitted in that cycle starts at the cycle's time. The predecessor's finish is never shown
    after its dependent's start (quelist's finished@ <= started@)."""
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "a/qsub.1", ["qsub.finished.0"])
    m = rig.start()
    t0 = 1_700_000_000.0
    m.tick(t0)
    rig.cluster.mtime = t0 + 15            # written during the round trip of the cycle at t0 + 10
    rig.cluster.finish(rig.job("a/qsub.0"))
    m.tick(t0 + 10)
    a, b = m.jobs["a/qsub.0"], m.jobs["a/qsub.1"]
    assert a.state == JobState.DONE and b.state == JobState.RUNNING
    assert a.finished_at is not None and b.started_at is not None
    assert a.finished_at <= b.started_at, (a.finished_at, b.started_at)
