"""run/transfer.py: the fetch policy, the plan a fetch moves exactly, local changes kept, and
removing the cluster's copy (on this machine's transport: real files, real copies)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import NOW, make_job

from jobauto.cluster.host import Host
from jobauto.cluster.schedulers.base import adapter_for
from jobauto.cluster.transport.local import LocalTransport
from jobauto.core.errors import ConfigError, StateError, TransportError
from jobauto.core.layout import lock_path, state_db
from jobauto.core.lock import Lock
from jobauto.run import sync, transfer
from jobauto.run.cycle import Monitor
from jobauto.run.mirror import Remote
from jobauto.run.tree import discover
from jobauto.store import Store


class Made:
    def __init__(self, tmp: Path) -> None:
        self.run = tmp / "camp" / "r"
        self.far = tmp / "remote" / "r"
        make_job(self.run, "a/qsub.0")
        self.store = Store(state_db(self.run))
        with self.store.transaction():
            self.store.set_meta("rundir", str(self.far))
            self.store.set_meta("scheduler", "local")
        Monitor.create(self.store, discover(self.run), self.run)
        shutil.copytree(self.run, self.far, ignore=shutil.ignore_patterns(".jobauto"))
        with self.store.transaction():
            self.store.record_synced(sync.tree_rows(self.run), "pushed", NOW)
        for name, size in (("a/qsub.finished.0", 0), ("a/qsub.0.o4711", 50), ("a/big.bin", 1000),
                           ("a/sub/x.dat", 7), (".jobauto/submit.log", 30),
                           ("a/.qsub.0.run", 40)):   # the wrapper jobmon wrote at submission
            (self.far / name).parent.mkdir(parents=True, exist_ok=True)
            (self.far / name).write_bytes(b"r" * size)
        self.remote = Remote(Host(LocalTransport(), adapter_for("local")), str(self.far))

    def plan(self, globs: list[str] = [], **kw: bool) -> transfer.Plan:  # noqa: B006
        return transfer.plan_fetch(self.remote, self.run, self.store,
                                   transfer.check_globs(globs, "GLOB"), **kw)


@pytest.fixture
def made(tmp_path: Path) -> Made:
    return Made(tmp_path)


def names(plan: transfer.Plan) -> set[str]:
    return {f.name for f in plan.files}


def test_the_default_brings_markers_and_the_schedulers_output_only(made: Made) -> None:
    assert names(made.plan()) == {"a/qsub.finished.0", "a/qsub.0.o4711"}
    assert names(made.plan(["**/*.dat"])) == {"a/qsub.finished.0", "a/qsub.0.o4711", "a/sub/x.dat"}
    assert names(made.plan(["**/*.dat"], default=False)) == {"a/sub/x.dat"}
    every = made.plan(everything=True)
    assert names(every) == {"a/qsub.finished.0", "a/qsub.0.o4711", "a/big.bin", "a/sub/x.dat"}
    assert every.same == 2       # the script and its dependency file, as pushed
    assert names(made.plan(["**"], default=False)) == names(every)   # never jobmon's wrapper


def test_a_fetch_moves_exactly_what_its_plan_showed_then_nothing(made: Made) -> None:
    plan = made.plan(everything=True)
    assert (len(plan.files), plan.bytes) == (4, 1057)
    assert transfer.fetch(made.remote, made.run, made.store, plan, NOW) == (4, 1057)
    assert (made.run / "a/big.bin").read_bytes() == b"r" * 1000
    assert not (made.run / ".jobauto/submit.log").exists()
    again = made.plan(everything=True)
    assert again.files == [] and again.same == 6
    assert made.store.synced(["a/big.bin"])["a/big.bin"][0] == 1000   # recorded as fetched


def test_a_file_changed_locally_is_kept_and_said_so(made: Made) -> None:
    (made.run / "a/qsub.0").write_text("#!/bin/sh\necho my fix\n")
    (made.far / "a/qsub.0").write_text("#!/bin/sh\necho the cluster's\n")
    plan = made.plan(everything=True)
    assert plan.kept == ["a/qsub.0"] and "a/qsub.0" not in names(plan)
    assert any("kept 1 local file(s)" in ln and "'a/qsub.0'" in ln for ln in transfer.plan_lines(plan))
    transfer.fetch(made.remote, made.run, made.store, plan, NOW)
    assert (made.run / "a/qsub.0").read_text() == "#!/bin/sh\necho my fix\n"
    assert ("kept-local" in {k for _, k, _ in made.store.events("a/qsub.0")})


def test_a_file_fetched_then_changed_locally_is_kept_too(made: Made) -> None:
    transfer.fetch(made.remote, made.run, made.store, made.plan(everything=True), NOW)
    (made.run / "a/sub/x.dat").write_text("edited here")
    (made.far / "a/sub/x.dat").write_text("rewritten there, longer")
    assert made.plan(everything=True).kept == ["a/sub/x.dat"]


@pytest.mark.parametrize("glob", ["", "../x", "a/../../b", "/", "a\nb"])
def test_a_glob_that_names_nothing_below_the_run_is_refused(glob: str) -> None:
    with pytest.raises(ConfigError, match="is not a glob of files below the run") as e:
        transfer.check_globs(["*.dat", glob], "--fetch")
    assert e.value.flag == "--fetch"


def test_a_run_gone_from_the_cluster_says_so(made: Made) -> None:
    shutil.rmtree(made.far)
    with pytest.raises(TransportError, match="is not on localhost"):
        made.plan()


def test_clean_takes_the_runs_lock_and_removes_only_the_run(made: Made) -> None:
    for wrong in (str(made.far.parent), "/", "r/.."):
        with pytest.raises(StateError, match="is not named for the run; nothing removed"):
            transfer.check_rundir(made.run, wrong)
    monitor = Lock(lock_path(made.run))
    monitor.acquire()
    try:
        with pytest.raises(transfer.Refused, match="stop it first") as e:
            transfer.hold(made.run)
        assert e.value.exit_code == 1
    finally:
        monitor.release()
    lock = transfer.hold(made.run)
    lock.release()
    assert transfer.running_on_cluster(made.remote, made.store) == []
    transfer.remove(made.remote, made.store, NOW)
    assert not made.far.exists() and made.far.parent.exists()
    assert made.store.get_meta("remote_removed") == str(NOW) and os.path.isdir(made.run)
