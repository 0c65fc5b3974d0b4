"""The job tree (jobauto/run/tree.py, with core/scripts.py): discovery, dependency files and
placeholders; the templates' shared marker block."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO, make_job

from jobauto.core.errors import ConfigError, TreeError
from jobauto.core.scripts import placeholders
from jobauto.run.tree import check_placeholders, discover, substitute


def test_discovery_any_depth_natural_order_and_output_files_are_not_jobs(tmp_path: Path) -> None:
    for i in (10, 2, 1):
        make_job(tmp_path, f"m/Si/qsub.{i}")
    make_job(tmp_path, "qsub.top")
    (tmp_path / "m/Si/qsub.1.o1234").write_text("output")
    (tmp_path / "m/Si/qsub.7").write_text("no dependency file: not a job")
    names = [j.name for j in discover(tmp_path)]
    assert names == ["qsub.top", "m/Si/qsub.1", "m/Si/qsub.2", "m/Si/qsub.10"]


def test_dependency_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    make_job(tmp_path, "Si/qsub.1", ["qsub.finished.0", "../GaAs/qsub.finished.3", "# comment", "",
                                     "rst.Si"], directive="#jobauto priority=4 estimate=1.5")
    job = discover(tmp_path)[0]
    assert job.deps == ("Si/qsub.finished.0", "GaAs/qsub.finished.3", "Si/rst.Si")
    assert (job.priority, job.estimate_h) == (4, 1.5)


@pytest.mark.parametrize("line", ["/etc/passwd", "../../x", "~/x", "../../init/qsub.finished.0"])
def test_bad_dependency_path_names_file_and_line(tmp_path: Path, line: str) -> None:
    make_job(tmp_path, "Si/qsub.0", ["qsub.finished.x", line])
    with pytest.raises(TreeError) as e:
        discover(tmp_path)
    assert e.value.file == str(tmp_path / "Si/qsub.dependency.0") and e.value.line == 2


def test_bad_directive(tmp_path: Path) -> None:
    make_job(tmp_path, "a/qsub.0", directive="#jobauto priority=high")
    with pytest.raises(TreeError, match="not a number"):
        discover(tmp_path)


@pytest.mark.parametrize("directive,why", [
    ("#jobauto priority=99999999999999999999999", "out of range"),   # no SQLite integer holds it
    ("#jobauto priority=-1000000001", "out of range"),
    ("#jobauto priority=\u00b2", "not a number"),
    ("#jobauto estimate=nan", "not a number of hours"),
    ("#jobauto estimate=-1", "not a number of hours"),
    ("#jobauto estimate=1e999", "not a number of hours"),
])
def test_directive_numbers_are_bounded(tmp_path: Path, directive: str, why: str) -> None:
    make_job(tmp_path, "a/qsub.0", directive=directive)
    with pytest.raises(TreeError, match=why) as e:
        discover(tmp_path)
    assert e.value.line == 1


def test_placeholders_skip_python_dunders() -> None:
    text = "__binpath__/lmf -np __maxcore__ __queue__\nif __name__ == '__main__': pass\n"
    assert placeholders(text) == {"binpath", "maxcore", "queue"}
    assert substitute(text, {"binpath": "/b", "maxcore": "4"}).startswith("/b/lmf -np 4 __queue__")


def test_missing_placeholder_names_file_line_and_flag(tmp_path: Path) -> None:
    make_job(tmp_path, "a/qsub.0", body="echo ok\n__binpath__/lmf -np __maxcore__")
    jobs = discover(tmp_path)
    with pytest.raises(ConfigError) as e:
        check_placeholders(tmp_path, jobs, {"binpath": "/b"})
    assert "--maxcore" in e.value.describe() and e.value.file.endswith("a/qsub.0")
    make_job(tmp_path, "a/qsub.0", body="run __queue__")
    with pytest.raises(ConfigError, match="--define queue=VALUE"):
        check_placeholders(tmp_path, jobs, {})


def test_every_template_and_the_example_share_one_marker_block() -> None:
    """The four templates repeat the block deliberately (templates/README.md, "Why the marker
    block is written out four times"): this keeps the copies identical."""
    import importlib.util
    root = REPO
    blocks = set()
    for t in ("local", "sge", "slurm", "pbs"):
        text = (root / "templates" / f"{t}.sh").read_text()
        blocks.add(text[text.index("# >>> jobauto markers >>>"):text.index("# <<< jobauto markers <<<")])
    assert len(blocks) == 1
    spec = importlib.util.spec_from_file_location("prepare", root / "examples/ecalj/prepare.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    assert mod.MARKERS.startswith(blocks.pop())
