"""The job tree (jobauto/run/tree.py, with core/scripts.py): discovery, dependency files and
placeholders; bad input in them (invisible characters, numbers out of range, symbolic links),
also as arbitrary text; the templates' shared marker block."""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path

import pytest
from helpers import REPO, Rig, make_job
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobauto.core.config import LIMITS
from jobauto.core.errors import ConfigError, JobautoError, TreeError
from jobauto.core.layout import STATE_DIR
from jobauto.core.model import JobState
from jobauto.core.scripts import placeholders
from jobauto.run.tree import (
    INVISIBLE,
    check_placeholders,
    copy_init,
    discover,
    fill_job,
    parse_dependency,
    substitute,
    validate_tree,
)


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
    ("#jobauto priority=99999999999999999999999", "must be at most 1000000000"),  # no SQLite integer holds it
    ("#jobauto priority=-1000000001", "must be at least -1000000000"),
    ("#jobauto priority=\u00b2", "not a number"),
    ("#jobauto estimate=nan", "must be a finite number"),
    ("#jobauto estimate=-1", "must be at least 0"),
    ("#jobauto estimate=1e999", "must be a finite number"),
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


def test_every_template_shares_one_work_block_and_writes_no_markers() -> None:
    """The four templates repeat the work block deliberately (templates/README.md, "Why the
    work block is written out four times"): this keeps the copies identical. Markers are the
    wrapper's (run/wrapper.py): no template writes one, or jobmon would write none."""
    blocks = set()
    for t in ("local", "sge", "slurm", "pbs"):
        text = (REPO / "templates" / f"{t}.sh").read_text()
        blocks.add(text[text.index("# >>> your work >>>"):])
        assert text.rstrip().endswith("# <<< your work <<<")
        assert "qsub.finished" not in text and "qsub.failed" not in text and "trap" not in text
    assert len(blocks) == 1


# -- bad input in dependency files -------------------------------------------------------------
def test_a_comment_after_a_path_is_not_part_of_it(tmp_path: Path) -> None:
    """docs/file-formats.md's own example: without this, `qsub.finished.0   # the step before`
    is a file no job writes, and the run is stuck."""
    make_job(tmp_path, "Si/qsub.1", ["qsub.finished.0            # the previous step",
                                     "../GaAs/qsub.finished.3\t# another material",
                                     "odd#name", "#jobauto priority=5 estimate=2.0  # urgent"])
    job = discover(tmp_path)[0]
    assert job.deps == ("Si/qsub.finished.0", "GaAs/qsub.finished.3", "Si/odd#name")
    assert (job.priority, job.estimate_h) == (5, 2.0)


def test_a_leading_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    make_job(tmp_path, "Si/qsub.1", ["\ufeff#jobauto priority=2", "qsub.finished.0"])
    make_job(tmp_path, "Si/qsub.2", ["\ufeffqsub.finished.1", "rst.Si\r"])
    jobs = discover(tmp_path)
    assert (jobs[0].deps, jobs[0].priority) == (("Si/qsub.finished.0",), 2)
    assert jobs[1].deps == ("Si/qsub.finished.1", "Si/rst.Si")


@pytest.mark.parametrize(("char", "code"), [
    ("\ufeff", "U+FEFF (ZERO WIDTH NO-BREAK SPACE, a byte-order mark)"),
    ("\u200b", "U+200B (ZERO WIDTH SPACE)"), ("\u200d", "U+200D (ZERO WIDTH JOINER)"),
    ("\u2060", "U+2060 (WORD JOINER)"), ("\u202e", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("\u00a0", "U+00A0 (NO-BREAK SPACE)"), ("\t", "U+0009 (TAB)"),
    ("\r", "U+000D (CARRIAGE RETURN)"), ("\x1b", "U+001B (a control character)"), ("\u2028", "U+2028 (LINE SEPARATOR)"),
])
def test_an_invisible_character_is_refused_with_file_line_and_column(tmp_path: Path, char: str,
                                                                     code: str) -> None:
    make_job(tmp_path, "Si/qsub.1", ["qsub.finished.0", f"rst{char}.Si"])
    with pytest.raises(TreeError) as e:
        discover(tmp_path)
    msg = e.value.describe()
    assert msg.startswith(f"{tmp_path}/Si/qsub.dependency.1:2: invisible character {code}")
    assert "at column 4" in msg and "\n" not in msg


def test_invisible_characters_in_a_directive_and_nul_anywhere_are_refused(tmp_path: Path) -> None:
    make_job(tmp_path, "a/qsub.0", ["#jobauto priority=1\u200b"])
    with pytest.raises(TreeError, match=r"qsub.dependency.0:1: invisible character U\+200B"):
        discover(tmp_path)
    make_job(tmp_path, "a/qsub.0", ["# a comment", "x\x00y"])
    with pytest.raises(TreeError, match=r"qsub.dependency.0:2: a NUL byte at column 2"):
        discover(tmp_path)
    make_job(tmp_path, "a/qsub.0", ["# a comment with a zero\u200bwidth space is harmless"])
    assert discover(tmp_path)[0].deps == ()


@pytest.mark.parametrize(("directive", "expect"), [
    ("#jobauto priority=12345678901234567890", "#jobauto priority must be at most 1000000000"),
    ("#jobauto priority=-12345678901234567890", "#jobauto priority must be at least -1000000000"),
    ("#jobauto priority=1.5", "#jobauto priority must be a whole number, not 1.5"),
    ("#jobauto priority=high", "#jobauto priority='high' is not a number"),
    ("#jobauto estimate=inf", "#jobauto estimate must be a finite number, not inf"),
    ("#jobauto estimate=nan", "#jobauto estimate must be a finite number, not nan"),
    ("#jobauto estimate=-1", "#jobauto estimate must be at least 0, not -1"),
    ("#jobauto estimate=1e9", "#jobauto estimate must be at most 100000, not 1e9"),
])
def test_a_directive_out_of_range_names_file_and_line(tmp_path: Path, directive: str,
                                                      expect: str) -> None:
    make_job(tmp_path, "a/qsub.0", directive=directive)
    with pytest.raises(TreeError) as e:
        discover(tmp_path)
    assert e.value.describe().startswith(f"{tmp_path}/a/qsub.dependency.0:1: {expect}")


# -- symbolic links ------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["dependency", "script"])
def test_a_dangling_link_is_an_error_naming_the_file(tmp_path: Path, which: str) -> None:
    make_job(tmp_path, "Si/qsub.3")
    link = tmp_path / "Si" / ("qsub.dependency.3" if which == "dependency" else "qsub.3")
    link.unlink()
    link.symlink_to("missing")
    with pytest.raises(TreeError) as e:
        validate_tree(tmp_path, {})
    assert e.value.describe() == (f"{link}: {'dependency file' if which == 'dependency' else 'job script'} "
                                  "is a symbolic link to 'missing', which does not exist")


def _shared(ldir: Path) -> tuple[Path, Path]:
    shared = ldir / "shared"
    shared.mkdir(parents=True)
    template, deps = shared / "template.sh", shared / "deps"
    template.write_text("#!/bin/sh\necho __id__ __binpath__\n")
    template.chmod(0o640)
    deps.write_text("qsub.finished.0\n")
    return template, deps


def test_a_linked_script_becomes_a_filled_regular_file_and_the_target_is_untouched(tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    template, deps = _shared(ldir)
    make_job(ldir / "init", "Si/qsub.0")
    make_job(ldir / "init", "Si/qsub.1")
    (ldir / "init/Si/qsub.1").unlink()
    (ldir / "init/Si/qsub.1").symlink_to("../../shared/template.sh")
    (ldir / "init/Si/qsub.dependency.1").unlink()
    (ldir / "init/Si/qsub.dependency.1").symlink_to("../../shared/deps")
    (ldir / "init/Si/data").symlink_to("../../shared")   # other links stay links
    specs = validate_tree(ldir / "init", {"binpath": "/b"})
    copy_init(ldir / "init", ldir / "run", specs, {"binpath": "/b"})
    script = ldir / "run/Si/qsub.1"
    assert not script.is_symlink() and script.read_text() == "#!/bin/sh\necho 1 /b\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o740
    assert not (ldir / "run/Si/qsub.dependency.1").is_symlink()
    assert (ldir / "run/Si/qsub.dependency.1").read_text() == "qsub.finished.0\n"
    assert (ldir / "run/Si/data").is_symlink()
    assert template.read_text() == "#!/bin/sh\necho __id__ __binpath__\n"
    assert stat.S_IMODE(template.stat().st_mode) == 0o640
    assert (ldir / "init/Si/qsub.1").is_symlink()


def test_a_linked_job_added_while_the_run_goes_on_never_writes_its_target(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    template, _ = _shared(tmp_path)
    template.write_text("#!/bin/sh\necho __id__\n")
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    m.tick(1.0)
    make_job(rig.run, "b/qsub.0", ["../a/qsub.finished.0"])
    os.replace(rig.run / "b/qsub.0", rig.run / "b/old")
    (rig.run / "b/qsub.0").symlink_to(template)
    make_job(rig.run, "b/qsub.1")
    (rig.run / "b/qsub.1").unlink()
    (rig.run / "b/qsub.1").symlink_to("nowhere")
    os.utime(rig.run / "b", None)
    m.tick(2.0)
    assert template.read_text() == "#!/bin/sh\necho __id__\n"
    assert not (rig.run / "b/qsub.0").is_symlink()
    assert (rig.run / "b/qsub.0").read_text() == "#!/bin/sh\necho 0\n"
    bad = m.jobs["b/qsub.1"]
    assert bad.state == JobState.ERROR
    assert bad.reason == (f"{rig.run}/b/qsub.1: job script is a symbolic link to 'nowhere', "
                          "which does not exist")


def test_fill_job_replaces_a_link_to_a_script_inside_the_run(tmp_path: Path) -> None:
    make_job(tmp_path, "qsub.0", body="echo __id__")
    make_job(tmp_path, "qsub.1")
    (tmp_path / "qsub.1").unlink()
    (tmp_path / "qsub.1").symlink_to("qsub.0")
    fill_job(tmp_path, "qsub.1", {})
    assert "echo 1" in (tmp_path / "qsub.1").read_text()
    assert "echo __id__" in (tmp_path / "qsub.0").read_text()


# -- arbitrary input: a dependency or a refusal of one line, never anything else -------------
FILE_SETTINGS = settings(max_examples=250, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])
LINE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
PIECES = st.sampled_from(["qsub.finished.0", "../b/x", "/abs", "~/x", "..", STATE_DIR, "#", "",
                          " ", "\ufeff", "\u200b", "\x00", "\r", "\t", "#jobauto",
                          "priority=", "estimate=", "1e400", "nan", "9" * 25, "-", "."])
DEP_TEXT = st.lists(st.one_of(LINE, st.lists(PIECES, max_size=6).map("".join)),
                    max_size=8).map("\n".join)


def _check_parse(root: Path, data: bytes) -> None:
    (root / "d").mkdir(exist_ok=True)
    (root / "d" / "qsub.0").write_text("#!/bin/sh\n")
    dep = root / "d" / "qsub.dependency.0"
    dep.write_bytes(data)
    try:
        spec = parse_dependency(root, "d/qsub.0")
    except JobautoError as e:
        assert type(e) is TreeError
        msg = e.describe()
        assert msg.startswith(f"{dep}:") and "\n" not in msg
        return
    for path in spec.deps:
        assert not path.startswith(("/", "../")) and path not in ("..", ".")
        assert path != STATE_DIR and not path.startswith(STATE_DIR + "/")
        assert path == path.strip() and not any(
            unicodedata.category(c) in INVISIBLE or unicodedata.category(c) == "Zs" and c != " "
            for c in path)
    low, high = LIMITS["priority"].low, LIMITS["priority"].high
    assert isinstance(spec.priority, int) and low <= spec.priority <= high
    assert spec.estimate_h is None or 0 <= spec.estimate_h <= LIMITS["estimate"].high


@FILE_SETTINGS
@given(text=DEP_TEXT)
def test_any_dependency_text_parses_or_is_refused_in_one_line(tmp_path: Path, text: str) -> None:
    _check_parse(tmp_path, text.encode("utf-8"))


@FILE_SETTINGS
@given(data=st.binary(max_size=200))
def test_any_dependency_bytes_parse_or_are_refused_in_one_line(tmp_path: Path, data: bytes) -> None:
    _check_parse(tmp_path, data)


@FILE_SETTINGS
@given(items=st.lists(st.tuples(st.sampled_from(["priority", "estimate", "prio", ""]),
                                st.sampled_from(["=", ""]),
                                st.one_of(st.integers().map(str), st.floats().map(str),
                                          st.text(max_size=12), st.sampled_from(["9" * 30, "1e999"]))),
                      max_size=4))
def test_any_jobauto_line_parses_or_is_refused_in_one_line(tmp_path: Path,
                                                           items: list[tuple[str, str, str]]) -> None:
    line = "#jobauto " + " ".join(k + eq + v for k, eq, v in items)
    _check_parse(tmp_path, (line + "\nqsub.finished.x\n").encode("utf-8", "surrogatepass"))
