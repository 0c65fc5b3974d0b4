"""tick() (jobauto/run/cycle.py) against a cluster that sends what it should not: a scan whose tar
names files outside the run, in its state directory or through a local symlink, holds links and
devices, lists markers in an unusual order; and a run directory where a job left something in
the way of quelist. Nothing is written where it must not be, nothing raises, the run goes on and
says what it dropped (docs/failure-modes.md, "What the cluster sends")."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from helpers import RDIR, Rig, make_job, make_tar, tar_entry

from jobauto.core.model import JobState, Verdict
from jobauto.store import Store


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def tree_of(root: Path) -> dict[str, bytes | str]:
    """Every entry under root: files with their content, symlinks with their target."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = f"-> {p.readlink()}" if p.is_symlink() else p.read_bytes() if p.is_file() else "dir"
    return out


def test_a_hostile_scan_writes_nothing_outside_the_run_nor_into_its_state(rig: Rig, tmp_path: Path) -> None:
    for name in ("a/qsub.0", "b/qsub.0", "c/qsub.0"):
        make_job(rig.init, name)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("mine\n")
    m = rig.start()
    m.tick(1.0)
    (rig.run / "link").symlink_to(outside)          # e.g. copied from init/: a shared directory
    (rig.run / "c" / "sub").symlink_to(outside)
    state_before = sorted(p.name for p in (rig.run / ".jobauto").iterdir())
    outside_before = tree_of(outside)
    rig.answer_next_scan(make_tar(
        tar_entry("../x/qsub.finished.0"),
        tar_entry("./a/../../qsub.finished.0"),
        tar_entry(str(outside / "qsub.finished.0")),
        tar_entry(".jobauto/state.db", b"not a database"),
        tar_entry("./.jobauto/qsub.finished.0"),
        tar_entry("a/.jobauto/qsub.dependency.7", b""),
        tar_entry("a/qsub.finished.0", kind=tarfile.SYMTYPE, link=str(outside / "keep")),
        tar_entry("a/qsub.failed.0", kind=tarfile.LNKTYPE, link="../../x"),
        tar_entry("a/qsub.dependency.9", kind=tarfile.CHRTYPE),
        tar_entry("link/qsub.finished.1"),
        tar_entry("link/qsub.dependency.2", b""),
        tar_entry("link/qsub.2", b"#!/bin/sh\ntouch PWNED\n"),
        tar_entry("c/sub/deeper/qsub.finished.3"),
        tar_entry("a/qsub.finished.0\nb/qsub.finished.0"),
        tar_entry("a/x" * 2000 + "/qsub.finished.0"),
        tar_entry("a/results.dat", b"not asked for"),
        tar_entry("a/qsub.5", b"#!/bin/sh\n"),      # a script without its dependency file
        tar_entry("b/qsub.finished.0"),               # the one honest entry
    ))
    r = m.tick(2.0)
    assert rig.states() == {"a/qsub.0": "running", "b/qsub.0": "done", "c/qsub.0": "running"}
    assert tree_of(outside) == outside_before
    assert not (tmp_path / "x").exists() and not (tmp_path / "qsub.finished.0").exists()
    assert sorted(p.name for p in (rig.run / ".jobauto").iterdir()) == state_before
    assert not (rig.run / "a" / ".jobauto").exists() and not (rig.run / "a" / "results.dat").exists()
    assert not (rig.run / "a" / "qsub.finished.0").exists() and not (rig.run / "a" / "qsub.5").exists()
    assert set(m.jobs) == {"a/qsub.0", "b/qsub.0", "c/qsub.0"}
    store = Store(rig.run / ".jobauto" / "state.db")     # the store is intact
    assert {j.name: j.state.value for j in store.load_jobs()} == rig.states()
    warnings = [d for _, kind, d in store.events("") if kind == "warning"]
    store.close()
    assert len(warnings) == 17, warnings                 # one per entry not taken
    assert any("symbolic link" in w and "link/qsub.finished.1" in w for w in warnings)
    assert any(".jobauto" in w for w in warnings) and any("leaves the run" in w for w in warnings)
    assert len(r.notes) <= 10 and any("17 in all" in n for n in r.notes), r.notes  # a few lines
    rig.cluster.finish(rig.job("a/qsub.0"))
    rig.cluster.finish(rig.job("c/qsub.0"))
    assert m.tick(3.0).exit_code == 0                     # the run goes on as if nothing happened


def test_finished_listed_before_failed_is_still_a_failure(rig: Rig) -> None:
    """find lists a directory in the file system's order: qsub.finished.ID may come first."""
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "a/qsub.1", ["qsub.finished.0"])
    m = rig.start()
    m.tick(1.0)
    rig.cluster.queue.clear()
    rig.answer_next_scan(make_tar(tar_entry("./a/qsub.finished.0"), tar_entry("./a/qsub.failed.0", b"3\n")))
    r = m.tick(2.0)
    job = m.jobs["a/qsub.0"]
    assert job.state == JobState.ERROR and job.exit_code == 3 and job.verdict == "failed"
    assert (rig.run / "a" / "qsub.failed.0").read_text() == "3\n"
    assert r.finished and r.exit_code == 1 and r.counts["blocked"] == 1


def test_a_damaged_tar_stream_is_a_warning_and_the_next_scan_reads_again(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(1.0)
    rig.cluster.finish(rig.job("a/qsub.0"))
    good = make_tar(tar_entry("./a/qsub.finished.0"))
    rig.answer_next_scan(good[:700])  # cut inside the member: the connection dropped mid-stream
    r = m.tick(2.0)
    assert m.jobs["a/qsub.0"].state == JobState.RUNNING
    assert any("tar" in n for n in r.notes)
    assert m.tick(3.0).exit_code == 0  # the scan of the next cycle covers the same files again


@pytest.mark.parametrize("obstacle", ["quelist", ".quelist.tmp"])
def test_a_directory_where_quelist_goes_is_one_warning_a_cycle(rig: Rig, obstacle: str) -> None:
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "a/qsub.1", ["qsub.finished.0"])
    m = rig.start()
    (rig.run / obstacle).mkdir()       # a job (or a fetch of what a job made) created it
    (rig.run / obstacle / "x").write_text("the job's\n")
    for t in (1.0, 2.0):
        r = m.tick(t)
        said = [n for n in r.notes if "quelist" in n]
        if obstacle == "quelist":
            assert len(said) == 1 and "is a directory" in said[0] and "move it" in said[0], r.notes
        else:
            assert said == [] and (rig.run / "quelist").is_file()   # the temporary file is ours alone
        assert r.counts["running"] == 1
        rig.cluster.finish(rig.job(f"a/qsub.{int(t) - 1}"))
    assert (rig.run / obstacle / "x").read_text() == "the job's\n"
    if obstacle == "quelist":
        (rig.run / "quelist").rename(rig.run / "quelist.job")
    r = m.tick(3.0)
    assert r.exit_code == 0 and not [n for n in r.notes if "quelist" in n]
    assert (rig.run / "quelist").read_text().count("finished@") == 2
    assert sorted(p.name for p in rig.run.iterdir() if "tmp" in p.name) == (
        [".quelist.tmp"] if obstacle == ".quelist.tmp" else [])


def test_a_file_that_cannot_be_written_is_a_warning_and_the_marker_still_counts(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "b/qsub.0")
    m = rig.start()
    m.tick(1.0)
    (rig.run / "a" / "qsub.finished.0").mkdir()     # something local in the marker's way
    rig.cluster.finish(rig.job("a/qsub.0"), rc=4)
    rig.cluster.finish(rig.job("b/qsub.0"))
    r = m.tick(2.0)
    assert m.jobs["a/qsub.0"].state == JobState.ERROR and m.jobs["a/qsub.0"].exit_code == 4
    assert m.jobs["b/qsub.0"].state == JobState.DONE
    assert any("a/qsub.finished.0" in n and "not written" in n for n in r.notes), r.notes
    assert r.finished and r.exit_code == 1
    assert f"{RDIR}/a/qsub.finished.0" in rig.cluster.files


def test_a_job_made_on_the_cluster_with_numbers_out_of_range_is_an_error_job(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(1.0)
    rig.cluster.write(f"{RDIR}/a/qsub.1", b"#!/bin/sh\n")
    rig.cluster.write(f"{RDIR}/a/qsub.dependency.1", b"#jobauto priority=99999999999999999999999\n")
    rig.cluster.finish(rig.job("a/qsub.0"))
    r = m.tick(2.0)
    job = m.jobs["a/qsub.1"]
    assert job.state == JobState.ERROR and "priority must be at most 1000000000, not 99999999999999999999999" in job.reason
    assert r.finished and r.exit_code == 1
    again = rig.new_monitor()    # and the store holds it: a resume reads it back
    assert again.jobs["a/qsub.1"].state == JobState.ERROR and again.tick(3.0).exit_code == 1


def test_a_journal_line_with_a_unicode_digit_for_its_exit_status_is_no_crash(rig: Rig) -> None:
    """The submit journal lies in RDIR/DATE/.jobauto/ on the cluster, where a job can write."""
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "b/qsub.0")
    m = rig.start()
    rig.transport.cut_after = 1  # the batch ran whole; only the start mark came back
    m.tick(1.0)
    rig.transport.down = False
    journal = f"{RDIR}/.jobauto/submit.log"
    lines = rig.cluster.files[journal].decode().splitlines()
    lines = ["\t".join(f[:2] + ["\u00b2"] + f[3:]) if f[0] == "S" and f[1].endswith(
        m.jobs["a/qsub.0"].token or "?") else "\t".join(f) for f in (ln.split("\t") for ln in lines)]
    rig.cluster.files[journal] = ("\n".join(lines) + "\n").encode()
    m.tick(2.0)
    assert m.jobs["b/qsub.0"].state == JobState.RUNNING and m.jobs["b/qsub.0"].sched_id
    # an exit status that is not one counts as a refusal, as before: never submitted twice
    assert m.jobs["a/qsub.0"].state == JobState.ERROR and len(rig.cluster.submitted) == 2


def test_scheduler_output_no_parser_expected_counts_as_unknown(rig: Rig) -> None:
    """A queue listing the adapter cannot split, an accounting record with an exit code no
    store can hold: the answer is unknown (nothing concluded), or the code is, never a crash."""
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "b/qsub.0")
    m = rig.start()
    m.tick(1.0)
    rig.job("a/qsub.0").reason = "a reason\twith a tab"   # one field too many in the listing
    m.tick(2.0)
    assert rig.states() == {"a/qsub.0": "running", "b/qsub.0": "running"}
    events = rig.store.events("")  # type: ignore[union-attr]
    assert any(k == "queue-unknown" and "unreadable queue listing" in d for _, k, d in events)
    rig.job("a/qsub.0").reason = ""
    rig.cluster.end(rig.job("b/qsub.0"), Verdict.FAILED, 10 ** 30, "fake: exit 10**30")
    for t in (3.0, 4.0):
        m.tick(t)
    job = m.jobs["b/qsub.0"]
    assert job.state == JobState.ERROR and job.verdict == "failed" and job.exit_code is None
    assert "exit 10**30" in job.evidence
    rig.cluster.finish(rig.job("a/qsub.0"))
    assert m.tick(5.0).exit_code == 1 and rig.new_monitor().jobs["b/qsub.0"].exit_code is None
