"""Arrays for sweeps (jobauto/run/arrays.py): grouping, task tables, the array's wrapper, and
a run whose render-made jobs go to the fake cluster as one array, each keeping its own verdict."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers import make_job

from jobauto.run import arrays

TEXT = "#!/bin/sh\n#$ -l h_rt=0:10:00\necho hi\n"


def items(names: list[str], text: str = TEXT, extra: list[str] | None = None
          ) -> list[tuple[str, tuple[object, ...] | None, str, list[str]]]:
    return [(n, arrays.shape(n, text, extra or []), text, extra or []) for n in names]


def test_jobs_of_one_step_and_shape_share_an_array_in_order() -> None:
    other = "#!/bin/sh\n#$ -l h_rt=1:00:00\necho hi\n"
    rows = items(["a/qsub.0", "b/qsub.0"]) + items(["c/qsub.0"], other) + items(["d/qsub.0"])
    rows += items(["e/qsub.1"]) + items(["f/qsub.0"], extra=["-l", "h_rt=2:00:00"])
    groups, alone, _ = arrays.group(rows)
    assert [g.jobs for g in groups] == [["a/qsub.0", "b/qsub.0", "d/qsub.0"]]
    assert groups[0].directives == ["#$ -l h_rt=0:10:00"] and groups[0].interp == ["/bin/sh"]
    assert alone == ["c/qsub.0", "e/qsub.1", "f/qsub.0"]


def test_a_name_a_table_cannot_carry_goes_alone_and_arrays_are_bounded() -> None:
    assert arrays.shape("a\tb/qsub.0", TEXT, []) is None
    names = [f"r{i}/qsub.0" for i in range(arrays.MAX_TASKS + 1)]
    groups, alone, _ = arrays.group(items(names))
    assert [len(g.jobs) for g in groups] == [arrays.MAX_TASKS] and len(alone) == 1


def test_a_limit_bounds_the_submissions_and_an_open_array_takes_more_for_free() -> None:
    """LIMIT counts submissions: the 2nd shape's array is the 2nd command, c goes later, but
    d joins the first array already open; with no shape (None) a job costs one command too."""
    other = "#!/bin/sh\n#$ -l h_rt=1:00:00\n"
    rows = items(["a/qsub.0", "b/qsub.0"]) + items(["x/qsub.0", "y/qsub.0"], other)
    rows += items(["c/qsub.1"]) + items(["d/qsub.0"]) + [("z\tz/qsub.0", None, TEXT, [])]
    groups, alone, later = arrays.group(rows, limit=2)
    assert [g.jobs for g in groups] == [["a/qsub.0", "b/qsub.0", "d/qsub.0"],
                                        ["x/qsub.0", "y/qsub.0"]]
    assert alone == [] and later == ["c/qsub.1", "z\tz/qsub.0"]
    names = [f"r{i}/qsub.0" for i in range(1000)]
    groups, alone, later = arrays.group(items(names), limit=1)
    assert [len(g.jobs) for g in groups] == [1000] and not alone and not later


def test_tokens_name_the_array_and_the_task() -> None:
    assert arrays.split_token("jaabcdX1_0.12") == ("jaabcdX1_0", 12)
    assert arrays.split_token("jaabcd1z_2") == ("jaabcd1z_2", None)
    assert arrays.submitted_name(None) == ""
    assert [arrays.array_id(i) for i in ("4711.3", "4711_3", "4711.1-3:1", "4711")] == ["4711"] * 4


def test_the_array_wrapper_runs_the_job_of_its_task_in_its_directory(tmp_path: Path) -> None:
    """Run by sh as the scheduler would: task 2 runs b/qsub.0 (exit 3) in b/ and writes b's
    markers and output; task 1 is left alone."""
    run = tmp_path / "run dir"
    make_job(run, "a/qsub.0", script="#!/bin/sh\necho a > out\n")
    make_job(run, "b b/qsub.0", script="#!/bin/sh\necho b > out; echo said; exit 3\n")
    [g], _, _ = arrays.group(items(["a/qsub.0", "b b/qsub.0"], "#!/bin/sh\n"))
    (run / arrays.ARRAYS_DIR).mkdir(parents=True)
    (run / arrays.ARRAYS_DIR / "arr.tasks").write_text(arrays.task_table(g.jobs))
    wrapper = run / arrays.ARRAYS_DIR / "arr.run"
    wrapper.write_text(arrays.array_wrapper(g, "arr", str(run)))
    env = {**os.environ, "SGE_TASK_ID": "2", "JOB_ID": "77"}
    res = subprocess.run(["sh", str(wrapper)], cwd=wrapper.parent, env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 3, res.stderr
    assert (run / "b b" / "out").read_text() == "b\n"
    assert (run / "b b" / "qsub.failed.0").read_text() == "3\n"
    assert (run / "b b" / "qsub.finished.0").read_text() == "3\n"
    assert (run / "b b" / "qsub.0.o77.2").read_text() == "said\n"
    assert not (run / "a" / "out").exists()
    bad = subprocess.run(["sh", str(wrapper)], cwd=wrapper.parent,
                         env={**env, "SGE_TASK_ID": "9"}, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "not in the task table" in bad.stderr


def test_a_rendered_sweep_goes_as_one_array_and_each_job_keeps_its_verdict(tmp_path: Path) -> None:
    """Four render-made jobs and one that waits on the second: one array submission of four
    tasks; a task that failed, one killed at its walltime and one deleted each end their own
    job (and the failed one blocks its dependent), the fourth is done."""
    from helpers import Rig

    from jobauto.core.model import Verdict

    rig = Rig(tmp_path, lost_after_s=10)
    rows = [f"r{i}/qsub.0" for i in range(4)]
    for n in rows:
        make_job(rig.init, n)
    make_job(rig.init, "post/qsub.1", deps=["../r1/qsub.finished.0"])
    (rig.init / ".jobauto-rendered").write_text("# rendered\nr0\nr1\nr2\nr3\n")
    m = rig.start()
    real = m.remote.submit

    def lossy(*args, **kw):  # type: ignore[no-untyped-def]
        rig.transport.cut_after = 1  # the batch runs whole; only its start mark is answered
        return real(*args, **kw)
    m.remote.submit = lossy  # type: ignore[method-assign]
    r = m.tick(1.0)
    m.remote.submit = real  # type: ignore[method-assign]
    assert any("lost the answer" in n for n in r.notes)
    assert len(rig.cluster.arrays) == 1 and len(rig.cluster.submitted) == 4
    rig.transport.down = False
    m.tick(2.0)  # settled from the journal: each job gets its task's id, nothing resubmitted
    arr = rig.cluster.arrays[0]
    assert [m.jobs[n].sched_id for n in rows] == [f"{arr}.{t}" for t in (1, 2, 3, 4)]
    assert len(rig.cluster.arrays) == 1 and len(rig.cluster.submitted) == 4
    fc = rig.cluster
    fc.finish(fc.queue[f"{arr}.1"])
    fc.finish(fc.queue[f"{arr}.2"], rc=3)
    fc.end(fc.queue[f"{arr}.3"], Verdict.WALLTIME, 137)
    fc.end(fc.queue[f"{arr}.4"], Verdict.CANCELLED)
    now = 3.0
    for _ in range(6):
        now += 10
        r = m.tick(now)
    jobs = m.jobs
    assert jobs["r0/qsub.0"].state.value == "done"
    assert (jobs["r1/qsub.0"].state.value, jobs["r1/qsub.0"].verdict) == ("error", "failed")
    assert jobs["r2/qsub.0"].verdict == "walltime" and jobs["r3/qsub.0"].verdict == "cancelled"
    assert r.counts["blocked"] == 1 and r.finished, r.counts


def test_only_the_directories_render_wrote_count_as_rendered(tmp_path: Path) -> None:
    """Hand-made jobs beside rendered rows in one init/ are never batched by default."""
    from jobauto.run.arrays import rendered

    (tmp_path / "init").mkdir()
    mark = tmp_path / "init" / ".jobauto-rendered"
    cache: dict[Path, frozenset[str] | None] = {}
    assert not rendered(tmp_path, "init/row1/qsub.0", cache)          # no mark
    mark.write_text("# job directories rendered by jobauto render\nrow1\nrow2\n")
    cache.clear()
    assert rendered(tmp_path, "init/row1/qsub.0", cache)
    assert not rendered(tmp_path, "init/handmade/qsub.0", cache)
    mark.write_text("jobs rendered from t.csv by jobauto render\n")   # older mark: names none
    cache.clear()
    assert not rendered(tmp_path, "init/row1/qsub.0", cache)
