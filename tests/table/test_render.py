"""`jobauto render` (jobauto/table/render.py, and its command cli/render.py): a job-table CSV as a
jobmon tree (push mode from a table)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import EXPERIMENTS, FAN_IN, TEMPLATES, jobmon

from jobauto.cli.jobauto import main as jobauto_main
from jobauto.core.errors import JobautoError
from jobauto.run import tree
from jobauto.table import render as rd


def _files(tmp_path: Path, csv: str, template: str) -> tuple[Path, Path]:
    c, t = tmp_path / "jobs.csv", tmp_path / "job.sh"
    c.write_text(csv)
    t.write_text(template)
    return c, t


def _snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = jobauto_main(["render", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_experiments_table_becomes_a_tree_jobmon_discovers(tmp_path: Path) -> None:
    csv, tpl = _files(tmp_path, EXPERIMENTS,
                      "#!/bin/bash\necho run __param1__ __param2__ as __id__ with __binpath__\n")
    out = tmp_path / "camp/init"
    plan = rd.render(csv, tpl, out)
    assert [j.id for j in plan.jobs] == ["preprocess", "training", "evaluation"]
    assert plan.needs == ["binpath"]
    jobs = {j.name: j for j in tree.discover(out)}
    assert jobs == {
        "preprocess/qsub.0": tree.JobSpec("preprocess/qsub.0", (), 5, 0.5),
        "training/qsub.0": tree.JobSpec("training/qsub.0", ("preprocess/qsub.finished.0",), 3, 2.0),
        "evaluation/qsub.0": tree.JobSpec("evaluation/qsub.0", ("training/qsub.finished.0",), 1, 0.3),
    }
    assert (out / "training/qsub.0").read_text() == \
        "#!/bin/bash\necho run training model1 as __id__ with __binpath__\n"
    assert (out / "training/qsub.dependency.0").read_text() == (
        "# jobauto render: row 2 (line 3) of jobs.csv\n"
        "#jobauto priority=3 estimate=2.0\n"
        "../preprocess/qsub.finished.0\n")
    assert (out / "training/qsub.0").stat().st_mode & 0o100


def test_fan_in_table_with_explicit_ids(tmp_path: Path) -> None:
    csv, tpl = _files(tmp_path, FAN_IN, "#!/bin/bash\necho __task__\n")
    out = tmp_path / "init/fan"           # any depth below init/
    rd.render(csv, tpl, out)
    jobs = {j.name: j for j in tree.discover(tmp_path / "init")}
    assert jobs["fan/jobC/qsub.0"].deps == ("fan/jobA/qsub.finished.0", "fan/jobB/qsub.finished.0")
    assert jobs["fan/jobD/qsub.0"].deps == ("fan/jobC/qsub.finished.0",)
    assert all((j.priority, j.estimate_h) == (0, None) for j in jobs.values())
    assert "#jobauto" not in (out / "jobA/qsub.dependency.0").read_text()  # only keys with values
    assert (out / "jobC/qsub.0").read_text() == "#!/bin/bash\necho training\n"


def test_rows_are_written_after_their_dependencies(tmp_path: Path) -> None:
    csv, tpl = _files(tmp_path, "JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_DEPENDS_ON\n"
                      "last,1,mid\nmid,2,first\nfirst,3,\nalone,4,\n", "echo __x__\n")
    plan = rd.plan(csv, tpl, tmp_path / "init")
    assert [j.id for j in plan.jobs] == ["first", "mid", "last", "alone"]
    assert not (tmp_path / "init").exists()  # plan writes nothing


def test_values_verbatim_and_shell_quoted(tmp_path: Path) -> None:
    hostile = ["$(touch PWNED)", "it's", 'say "hi"; rm -rf /nonexistent', "two\nlines", "", "a b"]
    rows = "".join(f'j{i},"{v.replace(chr(34), chr(34) * 2)}"\n' for i, v in enumerate(hostile))
    template = ("#!/bin/bash\n"
                "printf '%s\\n' __value_q__ > got.txt\n"
                "# verbatim: [__value__]; not columns: __id__ __binpath__ __walltime__ x__value__\n"
                'if [ "__name__" = "__main__" ]; then :; fi\n')
    csv, tpl = _files(tmp_path, "JOBSCHEDULER_JOB_ID,value\n" + rows, template)
    out = tmp_path / "init"
    plan = rd.render(csv, tpl, out)
    assert plan.needs == ["binpath", "walltime"]
    for i, v in enumerate(hostile):
        text = (out / f"j{i}/qsub.0").read_text()
        assert f"# verbatim: [{v}]; not columns: __id__ __binpath__ __walltime__ x__value__" in text
        assert '"__name__" = "__main__"' in text
        subprocess.run(["bash", "qsub.0"], cwd=out / f"j{i}", check=True, timeout=30)
        assert (out / f"j{i}/got.txt").read_text() == v + "\n"
    assert not list(tmp_path.rglob("PWNED"))


def test_new_ids_may_join_an_existing_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv, tpl = _files(tmp_path, FAN_IN, "echo __task__\n")
    out = tmp_path / "camp/init"
    (out / "Si").mkdir(parents=True)
    rc, stdout, err = _cli(capsys, str(csv), "--template", str(tpl), "--out", str(out))
    assert (rc, err) == (0, "")
    assert stdout.splitlines() == [f"jobauto render: 4 jobs from {csv} into {out}",
                                   f"next: jobmon --ldir={tmp_path}/camp --rdir=REMOTE_DIR "
                                   "[--remote=HOST] ..."]
    # and the mark that lets jobmon submit the rows as arrays (run/arrays.py)
    assert sorted(p.name for p in out.iterdir()) == [".jobauto-rendered", "Si", "jobA", "jobB",
                                                     "jobC", "jobD"]
    # it names the rows only: the hand-made Si/ beside them is never batched with them
    named = [ln for ln in (out / ".jobauto-rendered").read_text().splitlines()
             if not ln.startswith("#")]
    assert named == ["jobA", "jobB", "jobC", "jobD"]


def test_write_error_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv, tpl = _files(tmp_path, FAN_IN, "echo __task__\n")
    calls: list[Path] = []
    real = rd._write

    def failing(path: Path, text: str, mode: int) -> None:
        calls.append(path)
        if len(calls) == 5:
            raise OSError(28, "No space left on device", str(path))
        real(path, text, mode)
    monkeypatch.setattr(rd, "_write", failing)
    with pytest.raises(JobautoError, match="No space left on device; nothing was left behind"):
        rd.render(csv, tpl, tmp_path / "camp/init")
    assert not (tmp_path / "camp").exists()


def _bad_case(tmp_path: Path, case: str) -> tuple[list[str], str]:
    """Arguments for a bad input and the start of the expected message."""
    template = "#!/bin/bash\necho __task__\n"
    csv_text = FAN_IN
    out = tmp_path / "camp/init"
    c, t = tmp_path / "jobs.csv", tmp_path / "job.sh"
    expect = ""
    bad_ids = {"slash": "a/b", "dotdot": "..", "dot": ".", "dash": "-rf", "state": ".jobauto"}
    if case in bad_ids:
        csv_text = f"JOBSCHEDULER_JOB_ID,task\nok,x\n{bad_ids[case]},y\n"
        expect = f"{c}:3: row 2, column 1 (JOBSCHEDULER_JOB_ID): job id {bad_ids[case]!r} cannot be"
    elif case == "newline":        # ids from the first column (no JOBSCHEDULER_JOB_ID)
        csv_text = 'name,task\nok,x\n"a\nb",y\n'
        expect = f"{c}:3: row 2, column 1 (name): job id 'a\\nb' cannot be a directory name: " \
                 "contains a control character"
    elif case == "case":
        csv_text = "JOBSCHEDULER_JOB_ID,task\nSi,x\nsi,y\n"
        expect = f"{c}:3: row 2, column 1 (JOBSCHEDULER_JOB_ID): job id 'si' differs from 'Si'"
    elif case == "nocsv":
        c = tmp_path / "missing.csv"
        expect = f"{c}: cannot read: No such file or directory"
    elif case == "unknowndep":
        csv_text = FAN_IN.replace("jobA jobB", "jobA jobX")
        expect = f"{c}:4: row 3, column 3 (JOBSCHEDULER_DEPENDS_ON): unknown job id 'jobX'"
    elif case == "cycle":
        csv_text = FAN_IN.replace("jobA,preprocess,", "jobA,preprocess,jobD")
        expect = f"{c}:2: row 1, column 3 (JOBSCHEDULER_DEPENDS_ON): dependency cycle"
    elif case == "badpriority":
        csv_text = EXPERIMENTS.replace("training,model1,3", "training,model1,high")
        template = "echo __param1__\n"
        expect = f"{c}:3: row 2, column 3 (JOBSCHEDULER_PRIORITY): 'high' is not an integer"
    elif case == "norows":
        csv_text = "JOBSCHEDULER_JOB_ID,task\n"
        expect = f"{c}:1: no rows: nothing to render"
    elif case == "notemplate":
        t = tmp_path / "nope.sh"
        expect = f"{t}: cannot read the --template file: No such file or directory"
    elif case == "templatedir":
        t = tmp_path
        expect = f"{t}: the --template is a directory"
    elif case == "latin1":
        template = "#!/bin/bash\n# caf\xe9\n"
        expect = f"{t}:2: not UTF-8 text"
    elif case == "crlf":
        template = "#!/bin/bash\r\necho __task__\r\n"
        expect = f"{t}:1: has Windows line endings (CRLF)"
    elif case == "idcolumn":
        csv_text = "id,task\nx1,a\nx2,b\n"
        template = "#!/bin/bash\njobauto_id='__id__'\n"
        expect = f"{t}:2: __id__ is jobmon's placeholder for the job's ID"
    elif case == "placeholdervalue":
        csv_text = FAN_IN.replace("load_data", "__data__")
        expect = f"{c}:3: row 2, column 2 (task): the value contains __data__"
    elif case == "directive":
        csv_text = FAN_IN.replace("load_data", "it's")
        template = "#!/bin/bash\n#jobauto walltime-retry: -N __task__\n"
        expect = f"{t} (for row 2, line 3 of {c}):2: #jobauto walltime-retry: cannot split"
    elif case == "existing":
        (out / "jobC").mkdir(parents=True)
        expect = f"{out}: 1 job directory already exists: jobC"
    elif case == "outfile":
        out = tmp_path / "file"
        out.write_text("x")
        expect = f"{out}: the --out path exists and is not a directory"
    if case != "templatedir" and case != "notemplate":
        t.write_bytes(template.encode("latin-1" if case == "latin1" else "utf-8"))
    if case != "nocsv":
        c.write_text(csv_text)
    return [str(c), "--template", str(t), "--out", str(out)], expect


BAD = ["slash", "dotdot", "dot", "dash", "state", "newline", "case", "nocsv", "unknowndep", "cycle",
       "badpriority", "norows", "notemplate", "templatedir", "latin1", "crlf", "idcolumn",
       "placeholdervalue", "directive", "existing", "outfile"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    args, expect = _bad_case(tmp_path, case)
    before = _snapshot(tmp_path)
    rc, out, err = _cli(capsys, *args)
    assert rc == 2 and out == ""
    assert err.startswith(f"jobauto render: error: {expect}"), err
    assert len(err.strip().splitlines()) == 1
    assert _snapshot(tmp_path) == before


def _template(work: str) -> str:
    """templates/local.sh (no marker code: jobmon's wrapper writes them) with `work` in place
    of its example echo."""
    text = (TEMPLATES / "local.sh").read_text()
    start = text.index('echo "job __id__: replace this line')
    end = text.index("\n", start)
    return text[:start] + work + text[end:]


def test_render_then_jobmon_runs_the_rows_in_dependency_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ldir, log = tmp_path / "camp", tmp_path / "runs.log"
    for name, csv, work in [
            ("exp", EXPERIMENTS, "    echo \"start $(basename \"$PWD\") \"__param1_q__ __param2_q__"
                                 " >> __log__\n    sleep 0.2\n"
                                 "    echo \"end $(basename \"$PWD\")\" >> __log__"),
            ("fan", FAN_IN, "    echo \"start $(basename \"$PWD\") \"__task_q__ >> __log__\n"
                            "    sleep 0.2\n    echo \"end $(basename \"$PWD\")\" >> __log__")]:
        (tmp_path / f"{name}.csv").write_text(csv)
        (tmp_path / f"{name}.sh").write_text(_template(work))
        rc, out, err = _cli(capsys, str(tmp_path / f"{name}.csv"), "--template",
                            str(tmp_path / f"{name}.sh"), "--out", str(ldir / "init" / name))
        assert rc == 0, err
        assert "jobmon will need: --binpath=VALUE, --maxcore=VALUE, --define log=VALUE" in out
    p = jobmon(f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local",
               "--interval=0.2", "--datedir=r", "--binpath=/usr/bin", "--maxcore=1",
               f"--define=log={log}", timeout=120, check_rc=0)
    assert "all jobs done" in p.stdout
    lines = log.read_text().splitlines()
    assert sorted(ln for ln in lines if ln.startswith("start")) == [
        "start evaluation evaluation results", "start jobA preprocess", "start jobB load_data",
        "start jobC training", "start jobD evaluation", "start preprocess preprocess data1",
        "start training training model1"]

    def at(event: str, job: str) -> int:
        return next(i for i, ln in enumerate(lines) if ln.split()[:2] == [event, job])
    for job, deps in {"training": ["preprocess"], "evaluation": ["training"],
                      "jobC": ["jobA", "jobB"], "jobD": ["jobC"]}.items():
        assert all(at("end", d) < at("start", job) for d in deps), lines
    assert (ldir / "r/exp/evaluation/qsub.finished.0").read_text() == "0\n"
