"""`jobauto plan`'s forecast (jobauto/run/plan.py) on small trees, each figure computed by hand."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import Rig, chain, make_job

from jobauto.core.config import Options
from jobauto.core.errors import TreeError
from jobauto.run.mirror import TreeShape, scan_cost
from jobauto.run.plan import make_plan, render_text


def tree(init: Path) -> None:
    """a/qsub.0 -> a/qsub.1 -> a/qsub.2 (no estimates) and b/qsub.0 (2 h), which also waits
    for a plain file data/in.txt; plus what a push leaves out."""
    chain(init, "a", 3)
    make_job(init, "b/qsub.0", ["../data/in.txt"], directive="#jobauto estimate=2")
    (init / "data").mkdir()
    (init / "data" / "in.txt").write_text("x" * 1000)


def sizes(root: Path) -> tuple[int, int]:
    files = [Path(d, f) for d, _, fs in os.walk(root) for f in fs]
    return len(files), sum(f.stat().st_size for f in files)


def test_a_new_run_figures_by_hand(tmp_path: Path) -> None:
    init = tmp_path / "init"
    tree(init)
    files, size = sizes(init)
    (init / "quelist").write_text("left over\n")                  # never pushed
    (init / "a" / ".qsub.0.jobauto-tmp.x1").write_text("kill -9")  # never pushed
    p = make_plan(init, Options(remote="cluster", scheduler="sge", interval=60, maxqsub=10))
    assert (p.kind, p.jobs, p.jobs_left, p.to_submit, p.submissions) == ("new", 4, 4, 4, 4)
    # the chain: 3 jobs of 1 h (--job-hours), one 60 s cycle each to see it end
    assert p.critical_path_s == 3 * (3600 + 60) and p.steps == 3
    assert p.work_s == 3 * 3600 + 2 * 3600
    assert p.duration_s == p.critical_path_s         # more than 5 h of work over 10 slots
    assert p.cycles == 183 + 1 and p.queue_polls == 184
    assert p.accounting == 4                          # Grid Engine: one qacct per ended job
    assert p.scheduler_commands == 4 + 184 + 4        # no detection with --scheduler=sge
    assert p.login_parts == {"session": 1, "push": 1, "fetch at the end": 1} and p.logins == 3
    assert (p.files_to_push, p.bytes_to_push) == (files, size)
    # the scan: 4 directories (init, a, b, data), 4 dependency files + 4 markers, 1 watched
    assert p.shape == {"dirs": 4, "scanned_files": 8, "active_dirs": 2, "watched": 1}
    assert p.metadata_per_cycle == 4 * 4 + 8 + 1 == scan_cost(TreeShape(4, 8, 2, 1))
    assert p.warnings == []
    text = render_text(p)
    assert "scheduler commands:  192 = 4 submissions + 184 queue listings + at most 4" in text
    assert "3 of 4 job(s) have no `#jobauto estimate=`: each counted as 1 h" in text


def test_the_cap_stretches_a_burst_and_says_so(tmp_path: Path) -> None:
    init = tmp_path / "init"
    for i in range(10):
        make_job(init, f"s/qsub.{i}")
    p = make_plan(init, Options(interval=1, max_scheduler_commands_per_minute=4), job_hours=0)
    # 2 submissions per 70 s window: 5 windows, the last starting 4 * 70 s after the first
    assert p.duration_s == 280
    # polls: 2 per 70 s window, one every 35 s
    assert p.queue_polls == 280 // 35 + 1 and p.polls_per_minute == round(60 / 35, 2)
    assert p.accounting == 9 and p.scheduler_commands == 10 + 9 + 9 + 1   # + detection
    assert p.logins == 0 and p.login_parts == {}                       # no --remote
    assert any("the cap, not the jobs, sets the duration" in w for w in p.warnings)
    assert any("spaced every 35.0 s" in w for w in p.warnings)


def test_what_is_left_of_a_run(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    chain(rig.init, "Si", 3)
    m = rig.start()
    with rig.store.transaction():                      # as the opener records its first push
        rig.store.set_meta("pushed", "1")
    m.tick(1.0)
    rig.cluster.finish(rig.job("Si/qsub.0"))
    m.tick(2.0)                                        # 1 done, 1 running, 1 waiting
    p = make_plan(rig.run, Options(scheduler="local", interval=10, maxqsub=1), job_hours=0.5)
    assert (p.kind, p.jobs, p.jobs_left, p.to_submit, p.submissions) == ("resume", 3, 2, 1, 1)
    assert p.critical_path_s == 2 * (1800 + 10) and p.steps == 2
    assert p.accounting == 0                           # the local scheduler keeps none
    assert p.bytes_to_push == 0 and p.files_to_push == 0   # already on the cluster
    assert p.shape["scanned_files"] == 2 * 3


def test_a_cycle_or_an_empty_tree_is_refused(tmp_path: Path) -> None:
    init = tmp_path / "init"
    init.mkdir()
    with pytest.raises(Exception, match="no jobs found"):
        make_plan(init, Options())
    make_job(init, "x/qsub.0", ["qsub.finished.1"])
    make_job(init, "x/qsub.1", ["qsub.finished.0"])
    with pytest.raises(TreeError, match="dependency cycle"):
        make_plan(init, Options())


def test_a_rendered_sweep_forecasts_one_submission_per_array(tmp_path: Path) -> None:
    """25 rows of one shape made by `jobauto render` (its marker file in --out): arrays of at most
    --maxqsub tasks; a row of another shape goes alone; --no-arrays is one per job."""
    init = tmp_path / "init"
    for i in range(25):
        make_job(init, f"sweep/row{i}/qsub.0", body=f"echo {i}")
    make_job(init, "sweep/odd/qsub.0", script="#!/bin/bash\n#$ -l h_rt=1:00:00\necho odd\n")
    (init / "sweep" / ".jobauto-rendered").write_text(
        "# rendered\n" + "".join(f"row{i}\n" for i in range(25)) + "odd\n")
    p = make_plan(init, Options(scheduler="sge", maxqsub=10))
    assert p.submissions == 3 + 1          # 10 + 10 + 5 tasks, and the odd one
    assert make_plan(init, Options(scheduler="sge", maxqsub=10, arrays=False)).submissions == 26
    (init / "sweep" / ".jobauto-rendered").unlink()
    assert make_plan(init, Options(scheduler="sge", maxqsub=10)).submissions == 26
    assert make_plan(init, Options(scheduler="sge", maxqsub=10, arrays=True)).submissions == 4
