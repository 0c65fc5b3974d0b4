"""The dependency engine (jobauto/core/deps.py): ready / waiting / blocked, incremental updates,
cycles."""

from __future__ import annotations

from jobauto.core.deps import Graph, job_of_marker, marker_path
from jobauto.core.model import Derived, JobState


def test_marker_paths_map_to_jobs() -> None:
    assert marker_path("Si/qsub.3") == "Si/qsub.finished.3"
    assert marker_path("qsub.x") == "qsub.finished.x"
    assert job_of_marker("Si/qsub.failed.3") == ("Si/qsub.3", "qsub.failed.")
    assert job_of_marker("Si/rst.Si") is None


def test_chain_becomes_ready_step_by_step() -> None:
    g = Graph()
    g.add("a/qsub.0", [])
    g.add("a/qsub.1", ["a/qsub.finished.0"])
    assert g.derived("a/qsub.0") == Derived.READY and g.derived("a/qsub.1") == Derived.WAITING
    g.set_state("a/qsub.0", JobState.RUNNING)
    g.set_state("a/qsub.0", JobState.DONE)
    assert g.derived("a/qsub.1") == Derived.READY
    assert g.summary() == {"done": 1, "running": 0, "ready": 1, "waiting": 0, "blocked": 0, "error": 0}


def test_error_blocks_transitively_and_reset_unblocks() -> None:
    g = Graph()
    g.add("a/qsub.0", [])
    g.add("a/qsub.1", ["a/qsub.finished.0"])
    g.add("b/qsub.0", ["a/qsub.finished.1", "x/file"])
    g.set_state("a/qsub.0", JobState.ERROR)
    assert g.derived("a/qsub.1") == Derived.BLOCKED and g.derived("b/qsub.0") == Derived.BLOCKED
    assert g.root_errors("b/qsub.0") == ["a/qsub.0"]
    g.set_state("a/qsub.0", JobState.PENDING)
    assert g.blocked == set() and g.derived("a/qsub.0") == Derived.READY


def test_job_added_later_takes_over_its_marker_path() -> None:
    g = Graph()
    g.add("b/qsub.0", ["a/qsub.finished.0"])
    assert g.watched_files() == {"a/qsub.finished.0"}
    g.add("a/qsub.0", [], JobState.ERROR)
    assert g.derived("b/qsub.0") == Derived.BLOCKED and g.watched_files() == set()


def test_plain_files_and_watch_list_only_for_almost_ready_jobs() -> None:
    g = Graph()
    g.add("a/qsub.0", [])
    g.add("a/qsub.1", ["a/qsub.finished.0", "a/rst"])
    g.add("b/qsub.0", ["b/input"])
    assert g.watched_files() == {"b/input"}
    g.file_seen("b/input")
    assert g.derived("b/qsub.0") == Derived.READY
    g.set_state("a/qsub.0", JobState.DONE)
    assert g.watched_files() == {"a/rst"}
    assert g.why("a/qsub.1") == ["needs a/rst: no such file yet, and no job of the run writes it"]


def test_cycle_is_found() -> None:
    g = Graph()
    g.add("a/qsub.0", ["a/qsub.finished.2"])
    g.add("a/qsub.1", ["a/qsub.finished.0"])
    g.add("a/qsub.2", ["a/qsub.finished.1"])
    g.add("b/qsub.0", [])
    cycle = g.find_cycle()
    assert cycle is not None and cycle[0] == cycle[-1] and len(cycle) == 4
    g2 = Graph()
    g2.add("a/qsub.0", [])
    g2.add("a/qsub.1", ["a/qsub.finished.0"])
    assert g2.find_cycle() is None


def test_incremental_cost_does_not_touch_unrelated_jobs() -> None:
    g = Graph()
    for i in range(1000):
        g.add(f"d{i}/qsub.0", [])
        g.add(f"d{i}/qsub.1", [f"d{i}/qsub.finished.0"])
    g.changed.clear()
    g.set_state("d7/qsub.0", JobState.DONE)
    assert g.changed == {"d7/qsub.0", "d7/qsub.1"}


def test_a_job_that_only_now_waits_for_a_file_is_unasked_until_the_files_are_asked_for() -> None:
    """The cycle asks the cluster for the watched files before it learns this cycle's markers:
    a job whose last job dependency finished meanwhile has not had its file looked for, and the
    run must not be called stuck for it (tests/cli/test_jobmon.py runs it end to end)."""
    g = Graph()
    g.add("a/qsub.0", [])
    g.add("a/qsub.1", ["a/qsub.finished.0", "a/rst.a"])
    g.add("a/qsub.2", ["a/never.dat"])
    assert g.unasked == {"a/qsub.2"}
    assert g.ask_files() == ["a/never.dat"] and g.unasked == set()
    g.set_state("a/qsub.0", JobState.RUNNING)
    g.set_state("a/qsub.0", JobState.DONE)
    assert g.unasked == {"a/qsub.1"}
    assert g.ask_files() == ["a/never.dat", "a/rst.a"] and g.unasked == set()
    g.file_seen("a/rst.a")
    assert g.derived("a/qsub.1") == Derived.READY and g.unasked == set()
