"""list_runs (jobauto/view/runs.py): every run of a campaign directory from real stores: counts
that agree with gather's, the state of each run, damaged runs as one row each, runs being
created, and nothing written while looking."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest

from jobauto.core.layout import BUILDING, CREATING, lock_path
from jobauto.core.lock import Lock, exclusive
from jobauto.core.model import Job, JobState
from jobauto.core.states import COUNT_KEYS
from jobauto.store import Store
from jobauto.view.campaign import gather
from jobauto.view.runs import list_runs, render_json, render_text, summarize

STATES = [JobState.DONE, JobState.RUNNING, JobState.ERROR, JobState.PENDING, JobState.PENDING]


def make_run(ldir: Path, name: str, jobs: list[Job], *, files: list[str] = (),  # type: ignore[assignment]
             meta: dict[str, str] | None = None, events: list[float] = ()) -> Path:  # type: ignore[assignment]
    """A run directory as jobmon leaves it: its store with the jobs and the creation record."""
    run = ldir / name
    store = Store(run / ".jobauto/state.db")
    with store.transaction():
        store.save_jobs(jobs)
        store.set_meta("created", str(len(jobs)))
        store.set_meta("rundir", f"/work/me/foobar/{name}")
        for k, v in (meta or {}).items():
            store.set_meta(k, v)
        store.add_files(files)
        store.add_events([(at, "a/qsub.1", "submitted", "") for at in events])
    store.close()
    return run


def chain(states: list[JobState]) -> list[Job]:
    return [Job(i + 1, f"a/qsub.{i}", s, (f"a/qsub.finished.{i - 1}",) if i else ())
            for i, s in enumerate(states)]


@pytest.mark.parametrize("seed", range(6))
def test_counts_agree_with_gather_on_random_runs(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    n = 300
    names = [f"d{i % 17}/qsub.{i}" for i in range(n)]
    jobs = []
    for i, name in enumerate(names):   # acyclic: only earlier jobs; plus files and missing jobs
        deps = [f"d{k % 17}/qsub.finished.{k}" for k in rnd.sample(range(i), min(i, rnd.choice(
            [0, 1, 1, 2, 3])))]
        if rnd.random() < 0.1:
            deps.append(f"d{i % 17}/rst.{i}")                   # a plain file
        if rnd.random() < 0.05:
            deps.append(f"gone/qsub.finished.{i}")              # no job writes it
        if deps and rnd.random() < 0.05:
            deps.append(deps[0])                                 # the same path twice
        jobs.append(Job(i + 1, name, rnd.choice(STATES), tuple(deps)))
    run = make_run(tmp_path, "r", jobs, files=[f"d{i % 17}/rst.{i}" for i in range(0, n, 2)]
                   + ["gone/qsub.finished.7"])
    row = summarize(run)
    c = gather(run)
    # `jobauto runs` counts a job queued ahead (jobmon --ahead) with the running ones
    assert row.counts == {k: c.counts[k] + (c.counts.get("queued-ahead", 0) if k == "running" else 0)
                          for k in COUNT_KEYS}
    assert row.total == n and row.counts["blocked"] > 0 and row.counts["ready"] > 0


def test_each_state_of_a_run(tmp_path: Path) -> None:
    D, R, E, P = JobState.DONE, JobState.RUNNING, JobState.ERROR, JobState.PENDING
    make_run(tmp_path, "1-finished", chain([D, D, D]))
    make_run(tmp_path, "2-failed", chain([D, E, P, P]))            # error, two blocked
    make_run(tmp_path, "3-stopped-ready", chain([D, P, P]))         # resume would submit
    make_run(tmp_path, "4-stopped-running", chain([R, P]))          # a job still out there
    stuck = [Job(1, "a/qsub.0", P, ("a/never.dat",))]                # waits on a file, nothing runs
    make_run(tmp_path, "5-failed-stuck", stuck)
    asked = make_run(tmp_path, "6-stopped-reset", chain([D, E, P]))
    s = Store(asked / ".jobauto/state.db")
    s.add_request(time.time(), "reset", {"jobs": ["a/qsub.1"]})    # applied by the next monitor
    s.close()
    live = make_run(tmp_path, "7-running", chain([D, P]))
    lock = Lock(lock_path(live))
    lock.acquire()
    try:
        rows = {r.date: r for r in list_runs(tmp_path)}
    finally:
        lock.release()
    assert {d: r.state for d, r in rows.items()} == {
        "1-finished": "finished", "2-failed": "failed", "3-stopped-ready": "stopped",
        "4-stopped-running": "stopped", "5-failed-stuck": "failed", "6-stopped-reset": "stopped",
        "7-running": "running"}
    assert rows["7-running"].pid == os.getpid() and str(os.getpid()) in rows["7-running"].monitor
    assert all(r.pid is None and r.monitor == "" for d, r in rows.items() if d != "7-running")
    assert rows["2-failed"].counts == {"done": 1, "running": 0, "ready": 0, "waiting": 0,
                                       "blocked": 2, "error": 1}
    assert rows["5-failed-stuck"].counts["waiting"] == 1
    assert rows["1-finished"].remote_dir == "/work/me/foobar/1-finished"
    text = render_text(tmp_path, list(rows.values()))
    assert f"running (pid {os.getpid()})" in text and "7-running" in text


def test_damaged_runs_are_one_row_each_and_the_others_still_show(tmp_path: Path) -> None:
    make_run(tmp_path, "good", chain([JobState.DONE]))
    for name, content in (("empty", b""), ("garbage", b"not a database at all" * 10)):
        (tmp_path / name / ".jobauto").mkdir(parents=True)
        (tmp_path / name / ".jobauto/state.db").write_bytes(content)
    (tmp_path / "nostore/.jobauto").mkdir(parents=True)
    cut = make_run(tmp_path, "cut", chain([JobState.DONE] * 200))
    db = cut / ".jobauto/state.db"
    db.write_bytes(db.read_bytes()[:4096])
    noread = make_run(tmp_path, "unreadable", chain([JobState.DONE]))
    (noread / ".jobauto/state.db").chmod(0)
    (tmp_path / "init").mkdir()                      # the prepared tree: not a run
    (tmp_path / "notes").mkdir()                     # any other directory: not a run
    try:
        rows = {r.date: r for r in list_runs(tmp_path)}
    finally:
        (noread / ".jobauto/state.db").chmod(0o644)
    assert set(rows) == {"good", "empty", "garbage", "nostore", "cut", "unreadable"}
    assert rows["good"].state == "finished" and rows["good"].problem == ""
    bad = {d: r for d, r in rows.items() if d != "good"}
    if os.geteuid() == 0:           # root reads a file of mode 0
        bad.pop("unreadable")
    for d, r in bad.items():
        assert r.state == "damaged", (d, r)
        assert str(tmp_path / d) in r.problem and "\n" not in r.problem, r.problem
    assert "empty (0 bytes)" in rows["empty"].problem
    assert rows["empty"].counts == dict.fromkeys(COUNT_KEYS, 0) and rows["empty"].pid is None
    assert set(json.loads(render_json(tmp_path, [rows["empty"]]))["runs"][0]) == set(
        json.loads(render_json(tmp_path, [rows["good"]]))["runs"][0])   # one shape for all
    assert "no .jobauto/state.db" in rows["nostore"].problem
    lines = render_text(tmp_path, list(rows.values())).splitlines()
    assert len(lines) == 1 + len(rows)               # the header, then one line a run


def test_a_run_being_created_is_listed_while_its_creator_holds_ldir(tmp_path: Path) -> None:
    make_run(tmp_path, "old", chain([JobState.DONE]))
    building = tmp_path / f".20261201-120000{BUILDING}"
    (building / ".jobauto").mkdir(parents=True)      # a copy under way, store not written yet
    assert [r.date for r in list_runs(tmp_path)] == ["old"]   # a leftover: not a run
    with exclusive(tmp_path / CREATING):
        rows = list_runs(tmp_path)
    assert [(r.date, r.state) for r in rows] == [("20261201-120000", "creating"), ("old", "finished")]
    assert rows[0].pid == os.getpid()


def test_last_activity_is_the_latest_event_or_quelist(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r", chain([JobState.DONE, JobState.PENDING]),
                   events=[1_700_000_000.0, 1_700_000_500.0])
    assert summarize(run).last_activity == 1_700_000_500.0
    (run / "quelist").write_text("a/qsub.0 started@2023-11-14T22:13:20\n")
    os.utime(run / "quelist", (1_700_000_900.0, 1_700_000_900.0))
    assert summarize(run).last_activity == 1_700_000_900.0
    bare = make_run(tmp_path, "bare", chain([JobState.PENDING]))
    assert summarize(bare).last_activity is None


def test_json_is_the_documented_shape(tmp_path: Path) -> None:
    make_run(tmp_path, "r", chain([JobState.DONE, JobState.ERROR]), meta={"remote": "tsubame"})
    doc = json.loads(render_json(tmp_path, list_runs(tmp_path)))
    assert doc["ldir"] == str(tmp_path)
    (run,) = doc["runs"]
    assert set(run) == {"date", "path", "state", "pid", "monitor", "counts", "total",
                        "last_activity", "remote_dir", "host", "problem"}
    assert run["counts"] == {"done": 1, "running": 0, "ready": 0, "waiting": 0, "blocked": 0,
                             "error": 1}
    assert (run["state"], run["host"], run["total"]) == ("failed", "tsubame", 2)
    assert "tsubame:/work/me/foobar/r" in render_text(tmp_path, list_runs(tmp_path))


def test_the_host_comes_from_the_runs_recorded_settings(tmp_path: Path) -> None:
    make_run(tmp_path, "r", chain([JobState.DONE]),
             meta={"settings": json.dumps({"remote": "fugaku", "maxqsub": 10})})
    (row,) = list_runs(tmp_path)
    assert row.host == "fugaku"


def test_looking_writes_nothing(tmp_path: Path) -> None:
    runs = [make_run(tmp_path, f"r{i}", chain(s)) for i, s in
            enumerate([[JobState.DONE], [JobState.ERROR, JobState.PENDING], [JobState.PENDING]])]

    def snap() -> list[tuple[str, bytes, int]]:
        return [(str(p), p.read_bytes(), p.stat().st_mtime_ns)
                for r in runs for p in sorted((r / ".jobauto").iterdir())]
    before = snap()
    list_runs(tmp_path)
    assert snap() == before


def test_no_such_directory_is_one_error(tmp_path: Path) -> None:
    from jobauto.core.errors import StateError
    with pytest.raises(StateError, match="no such directory"):
        list_runs(tmp_path / "nope")
