"""What each cycle looks at (jobauto/run/cycle.py, run/mirror.py, run/pickup.py): only the
directories of the run's running jobs on the cluster and DATE/ itself here; the whole run at the
sweep (--sweep-every) and on `jobauto rescan`. Against the fake cluster, with an explicit clock."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from helpers import RDIR, Rig, jobauto, make_job

from jobauto.core.model import Command, CommandResult, JobState
from jobauto.run.requests import request_rescan

EVERY = 900.0


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = Rig(tmp_path)
    r.settings.sweep_every_s = EVERY
    return r


def sweeps(rig: Rig) -> int:
    """How many scans of the whole tree the cluster ran."""
    return sum(1 for c in rig.transport.commands if c.argv[3:4] == ("jobauto-scan",))


def test_each_cycle_looks_only_in_the_running_jobs_directories(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "b/qsub.0")
    make_job(rig.init, "c/qsub.0", ["../a/qsub.finished.0"])
    m = rig.start()
    m.tick(1000.0)
    rig.cluster.scans.clear()
    m.tick(1010.0)
    assert rig.cluster.scans == [[f"{RDIR}/a", f"{RDIR}/b"]]
    rig.cluster.finish(rig.job("a/qsub.0"))
    m.tick(1020.0)     # a's marker is found by the look; c goes in
    assert m.jobs["a/qsub.0"].state == JobState.DONE
    m.tick(1030.0)
    assert rig.cluster.scans[-1] == [f"{RDIR}/b", f"{RDIR}/c"]
    assert sweeps(rig) == 0


def test_the_sweep_comes_at_its_cadence_and_finds_what_no_running_job_made(rig: Rig) -> None:
    """A marker of a job this run never submitted (written by hand on the cluster), and a job
    added by hand in a new directory there: not found by the per-cycle look, found by the sweep."""
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "w/qsub.0", ["../a/qsub.finished.0"])   # waits for a
    m = rig.start()
    now = 1000.0
    m.tick(now)
    rig.cluster.write(f"{RDIR}/w/qsub.finished.0")                   # by hand
    rig.cluster.write(f"{RDIR}/new/qsub.0", b"#!/bin/sh\n")
    rig.cluster.write(f"{RDIR}/new/qsub.dependency.0", b"")
    while now < 1000.0 + EVERY - 60:
        now += 60
        m.tick(now)
        assert "new/qsub.0" not in m.jobs and m.jobs["w/qsub.0"].state == JobState.PENDING
    assert sweeps(rig) == 0
    now += 60
    r = m.tick(now)
    assert sweeps(rig) == 1
    assert m.jobs["w/qsub.0"].state == JobState.DONE
    assert "new/qsub.0" in m.jobs and (rig.run / "new" / "qsub.0").exists()
    assert r.counts["running"] == 2           # a, and the new job
    for _ in range(5):
        now += 60
        m.tick(now)
    assert sweeps(rig) == 1                   # the next one is EVERY seconds later
    m.tick(now + EVERY)
    assert sweeps(rig) == 2


def test_rescan_sweeps_at_the_cycle_after_the_request(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(1000.0)
    rig.cluster.write(f"{RDIR}/new/qsub.0", b"#!/bin/sh\n")
    rig.cluster.write(f"{RDIR}/new/qsub.dependency.0", b"")
    request_rescan(rig.run)
    m.tick(1010.0)                  # the request is taken
    assert "new/qsub.0" not in m.jobs and sweeps(rig) == 0
    m.tick(1020.0)
    assert "new/qsub.0" in m.jobs and sweeps(rig) == 1
    m.tick(1030.0)
    assert sweeps(rig) == 1


def test_a_rescan_without_a_monitor_is_made_when_the_run_resumes(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(1000.0)
    rig.store.close()   # the monitor stopped
    rig.cluster.write(f"{RDIR}/new/qsub.0", b"#!/bin/sh\n")
    rig.cluster.write(f"{RDIR}/new/qsub.dependency.0", b"")
    out = jobauto("rescan", str(rig.run), check_rc=0).stdout
    assert "no monitor is running" in out and "--datedir=run" in out
    m = rig.new_monitor()
    m.tick(1010.0)
    m.tick(1020.0)
    assert "new/qsub.0" in m.jobs and sweeps(rig) == 1


def test_the_sweep_cadence_survives_a_restart(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(1000.0)
    m.tick(1000.0 + EVERY)
    assert sweeps(rig) == 1
    m = rig.new_monitor()
    m.tick(1000.0 + EVERY + 60)    # resumed a minute after the sweep: not due yet
    assert sweeps(rig) == 1
    m.tick(1000.0 + 2 * EVERY)
    assert sweeps(rig) == 2


def test_the_first_cycles_bring_back_nothing_the_monitor_pushed(rig: Rig) -> None:
    for i in range(20):
        make_job(rig.init, f"d{i}/qsub.0", body="x" * 1000)
    members: list[str] = []
    real = rig.transport.handler

    def handler(cmd: Command) -> CommandResult:
        res = real(cmd)
        if cmd.argv[3:4] in (("jobauto-scan",), ("jobauto-look",)):
            with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
                members.extend(tar.getnames())
        return res
    rig.transport.handler = handler
    m = rig.start()
    m.tick(1000.0)
    m.tick(1010.0)
    request_rescan(rig.run)
    m.tick(1020.0)
    m.tick(1030.0)     # the sweep: what changed since the push, which is nothing
    assert sweeps(rig) == 1
    assert members == []


def test_a_marker_after_a_verdict_from_accounting_is_still_looked_for(rig: Rig) -> None:
    """A job the scheduler says was killed is an error; its marker, late on a slow shared file
    system, overrules that verdict: its directory stays in the look for --lost-after."""
    make_job(rig.init, "a/qsub.0")
    make_job(rig.init, "b/qsub.0")
    m = rig.start()
    m.tick(1000.0)
    from jobauto.core.model import Verdict
    rig.cluster.end(rig.job("a/qsub.0"), Verdict.WALLTIME, None, "fake: walltime")
    for t in (1010.0, 1020.0, 1030.0):
        m.tick(t)
    assert m.jobs["a/qsub.0"].state == JobState.ERROR
    rig.cluster.write(f"{RDIR}/a/qsub.finished.0")   # the marker shows late
    m.tick(1040.0)
    assert m.jobs["a/qsub.0"].state == JobState.DONE
    assert sweeps(rig) == 0


def test_a_job_added_locally_in_a_nested_directory_waits_for_the_sweep(rig: Rig) -> None:
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(1000.0)
    make_job(rig.run, "top/qsub.0")            # a new directory in DATE/: the next cycle
    make_job(rig.run, "a/deep/qsub.0")         # deeper: the sweep
    m.tick(1010.0)
    assert "top/qsub.0" in m.jobs and "a/deep/qsub.0" not in m.jobs
    m.tick(1000.0 + EVERY)
    assert "a/deep/qsub.0" in m.jobs
