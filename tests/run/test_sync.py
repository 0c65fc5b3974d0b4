"""run/sync.py: what the user changes under DATE/ is pushed before its job is submitted, and
never written over by what the cluster sends (on the fake cluster, with an explicit clock)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from helpers import NOW, RDIR, Rig, chain, make_job

from jobauto.core.errors import TransportError
from jobauto.core.model import JobState
from jobauto.run import sync
from jobauto.store import Store


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def edit(path: Path, text: str) -> None:
    """Change a file as an editor does: new content, a later mtime."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_the_first_push_records_every_file_and_hashes_only_scripts_and_dependency_files(
        rig: Rig) -> None:
    make_job(rig.init, "Si/qsub.0")
    (rig.init / "Si" / "input.dat").write_text("x" * 100)
    rig.start()
    assert rig.store is not None
    rec = rig.store.synced()
    assert set(rec) == {"Si/qsub.0", "Si/qsub.dependency.0", "Si/input.dat"}
    assert rec["Si/qsub.0"][2] == sync.sha256(rig.run / "Si/qsub.0")
    assert rec["Si/input.dat"][:2] == (100, (rig.run / "Si/input.dat").stat().st_mtime_ns)
    assert rec["Si/input.dat"][2] is None


def test_a_script_fixed_locally_is_pushed_before_its_job_is_submitted(rig: Rig) -> None:
    chain(rig.init, "Si", 2)
    m = rig.start()
    m.tick(NOW)
    assert rig.transport.pushed_files == []          # nothing changed: nothing pushed
    edit(rig.run / "Si/qsub.1", "#!/bin/sh\necho fixed\n")
    rig.cluster.finish(rig.job("Si/qsub.0"))
    r = m.tick(NOW + 1)
    assert rig.transport.pushed_files == [["Si/qsub.1"]]
    assert rig.cluster.files[f"{RDIR}/Si/qsub.1"] == b"#!/bin/sh\necho fixed\n"
    assert rig.job("Si/qsub.1")                       # submitted after the push
    assert any("pushed 1 file(s) changed locally" in n for n in r.notes)
    assert rig.store is not None
    assert rig.store.synced(["Si/qsub.1"])["Si/qsub.1"][2] == sync.sha256(rig.run / "Si/qsub.1")
    assert ("pushed" in {k for _, k, _ in rig.store.events("Si/qsub.1")})


def test_a_touched_script_with_the_same_content_is_not_pushed(rig: Rig) -> None:
    make_job(rig.init, "Si/qsub.0")
    m = rig.start()
    edit(rig.run / "Si/qsub.0", (rig.run / "Si/qsub.0").read_text())
    m.tick(NOW)
    assert rig.transport.pushed_files == [] and rig.job("Si/qsub.0")


def test_a_changed_dependency_file_changes_what_the_job_waits_for(rig: Rig) -> None:
    make_job(rig.init, "x/qsub.0")
    make_job(rig.init, "z/qsub.0")
    m = rig.start()
    edit(rig.run / "z/qsub.dependency.0", "../x/qsub.finished.0\n")
    m.tick(NOW)
    assert [f"{j.dir}/{j.script}" for j in rig.cluster.submitted] == [f"{RDIR}/x/qsub.0"]
    assert m.jobs["z/qsub.0"].deps == ("x/qsub.finished.0",) and m.jobs["z/qsub.0"].state == JobState.PENDING
    assert rig.cluster.files[f"{RDIR}/z/qsub.dependency.0"] == b"../x/qsub.finished.0\n"
    rig.cluster.finish(rig.job("x/qsub.0"))
    m.tick(NOW + 1)
    assert rig.job("z/qsub.0")
    m.tick(NOW + 2)
    again = rig.new_monitor()                            # the new dependencies were stored
    assert again.jobs["z/qsub.0"].deps == ("x/qsub.finished.0",)


def test_an_unreadable_changed_dependency_file_makes_the_job_an_error(rig: Rig) -> None:
    make_job(rig.init, "z/qsub.0")
    m = rig.start()
    edit(rig.run / "z/qsub.dependency.0", "/abs/path\n")
    m.tick(NOW)
    assert rig.cluster.submitted == []
    job = m.jobs["z/qsub.0"]
    assert job.state == JobState.ERROR and "its changed dependency file" in job.reason


def test_a_failed_push_leaves_the_jobs_ready_and_nothing_half_done(rig: Rig) -> None:
    make_job(rig.init, "Si/qsub.0")
    m = rig.start()
    edit(rig.run / "Si/qsub.0", "#!/bin/sh\necho fixed\n")

    def down(local: Path, remote: str, names: list[str]) -> None:
        raise TransportError("rsync to fake failed (exit 255): connection reset")
    rig.transport.on_push_files = down
    r = m.tick(NOW)
    assert rig.cluster.submitted == [] and m.jobs["Si/qsub.0"].state == JobState.PENDING
    assert r.counts["ready"] == 1 and any("pushing 1 changed file(s)" in n for n in r.notes)
    assert m.jobs["Si/qsub.0"].attempts == 0 and m.jobs["Si/qsub.0"].token is None
    rig.transport.on_push_files = rig.cluster.load_files
    m.tick(NOW + 1)
    assert rig.job("Si/qsub.0") and rig.cluster.files[f"{RDIR}/Si/qsub.0"] == b"#!/bin/sh\necho fixed\n"


def test_the_scan_never_writes_over_a_script_or_dependency_file_changed_locally(rig: Rig) -> None:
    chain(rig.init, "Si", 2)
    m = rig.start()
    edit(rig.run / "Si/qsub.dependency.1", "qsub.finished.0\n# mine\n")
    rig.cluster.write(f"{RDIR}/Si/qsub.dependency.1", b"qsub.finished.0\n# the cluster's\n")
    m.tick(NOW)
    assert (rig.run / "Si/qsub.dependency.1").read_text() == "qsub.finished.0\n# mine\n"


def test_a_run_made_before_schema_5_opens_and_pushes_its_jobs_files_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "Si/qsub.0")
    rig.start()
    assert rig.store is not None
    rig.store.close()
    db = rig.run / ".jobauto/state.db"
    with sqlite3.connect(db) as con:          # as schema 4 left it: no synced table
        con.execute("DROP TABLE synced")
        con.execute("UPDATE meta SET value='4' WHERE key='schema'")
    con.close()
    assert Store(db, readonly=True).synced() == {}
    m = rig.new_monitor()                     # upgraded
    assert rig.store is not None and rig.store.get_meta("schema") == "5"
    m.tick(NOW)
    assert rig.transport.pushed_files == [["Si/qsub.0", "Si/qsub.dependency.0"]]
    assert rig.job("Si/qsub.0")
