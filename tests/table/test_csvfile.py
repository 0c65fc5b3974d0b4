"""Job-table CSVs: ids, validation of every error case (row and column named, exit 2, nothing
written), add, export round trip. Through the CLI where a user would use it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from helpers import EXPERIMENTS, FAN_IN

from jobauto.core.errors import TableError
from jobauto.store import TableStore
from jobauto.table import csvfile as csvtable


def write(tmp_path: Path, text: str | bytes, name: str = "t.csv") -> Path:
    p = tmp_path / name
    if isinstance(text, str):
        p.write_text(text, encoding="utf-8")
    else:
        p.write_bytes(text)
    return p


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60)


def test_ids_from_first_column_when_unique(tmp_path: Path) -> None:
    t = csvtable.read(write(tmp_path, EXPERIMENTS))
    assert t.id_mode == "first"
    assert [r.id for r in t.rows] == ["preprocess", "training", "evaluation"]
    assert t.columns == ["param1", "param2"]
    assert t.rows[1].params == ("training", "model1")
    assert (t.rows[1].priority, t.rows[1].estimate_h, t.rows[1].deps) == (3, 2.0, ("preprocess",))


def test_ids_from_id_column(tmp_path: Path) -> None:
    t = csvtable.read(write(tmp_path, FAN_IN))
    assert t.id_mode == "column"
    assert t.columns == ["task"]
    assert t.rows[2].deps == ("jobA", "jobB")
    assert t.rows[2].params == ("training",)


def test_ids_are_row_numbers_when_first_column_repeats(tmp_path: Path) -> None:
    t = csvtable.read(write(tmp_path, "x,y,JOBSCHEDULER_DEPENDS_ON\na,1,\na,2,1\nb,3,1 2\n"))
    assert t.id_mode == "row"
    assert [r.id for r in t.rows] == ["1", "2", "3"]
    assert t.rows[2].deps == ("1", "2")


def test_columns_keep_order_and_odd_names(tmp_path: Path) -> None:
    hostile = 'z col,"a;DROP TABLE jobs;--",JOBSCHEDULER_DEPENDS_ON,Ä\n1,"x, y",,ü\n'
    t = csvtable.read(write(tmp_path, hostile))
    assert t.columns == ["z col", "a;DROP TABLE jobs;--", "Ä"]
    assert t.rows[0].params == ("1", "x, y", "ü")


def test_quoted_field_with_newline(tmp_path: Path) -> None:
    t = csvtable.read(write(tmp_path, 'name,text\na,"line1\nline2"\nb,plain\n'))
    assert t.rows[0].params == ("a", "line1\nline2")
    assert t.rows[1].line == 4


# -- every error case: file:line, row and column, exit 2, nothing written ------------------------
BAD = {
    "duplicate id": ("JOBSCHEDULER_JOB_ID,x\na,1\nb,2\na,3\n", 4, "row 3, column 1 (JOBSCHEDULER_JOB_ID): duplicate job id 'a' (also row 1"),
    "unknown dependency": (FAN_IN.replace("jobA jobB", "jobA jobX"), 4, "row 3, column 3 (JOBSCHEDULER_DEPENDS_ON): unknown job id 'jobX'"),
    "cycle": ("JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_DEPENDS_ON\na,1,c\nb,2,a\nc,3,b\n", None, "dependency cycle"),
    "self dependency": ("JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_DEPENDS_ON\na,1,a\n", 2, "row 1, column 3 (JOBSCHEDULER_DEPENDS_ON): dependency cycle: a (row 1) -> a (row 1)"),
    "priority": (EXPERIMENTS.replace(",3,2.0,", ",high,2.0,"), 3, "row 2, column 3 (JOBSCHEDULER_PRIORITY): 'high' is not an integer"),
    "estimate": (EXPERIMENTS.replace(",0.3,", ",soon,"), 4, "row 3, column 4 (JOBSCHEDULER_ESTIMATE_TIME): 'soon' is not a number of hours"),
    "negative estimate": (EXPERIMENTS.replace(",0.3,", ",-1,"), 4, "not a non-negative number"),
    "nan estimate": (EXPERIMENTS.replace(",0.3,", ",nan,"), 4, "not a non-negative number"),
    "ragged short": ("a,b,c\n1,2,3\n4,5\n", 3, "row 2 has 2 fields, the header has 3"),
    "ragged long": ("a,b\n1,2,3\n", 2, "row 1 has 3 fields, the header has 2"),
    "bom": ("\ufeff" + EXPERIMENTS, 1, "row 0, column 1: the file starts with a UTF-8 byte-order mark"),
    "utf16": (EXPERIMENTS.encode("utf-16"), 1, "UTF-16 byte-order mark"),
    "latin1": ("a,b\n1,2\ncaf\xe9,3\n".encode("latin-1"), 3, "byte 0xe9 at column 4"),
    "nul": ("a,b\n1,2\x00\n", 2, "NUL byte"),
    "empty": ("", 1, "empty file"),
    "unknown reserved": ("a,JOBSCHEDULER_PRIORTY\n1,2\n", 1, "column 2 (JOBSCHEDULER_PRIORTY): unknown reserved column"),
    "repeated column": ("a,b,a\n1,2,3\n", 1, "column 3 (a) repeats column 1"),
    "unnamed column": ("a,,c\n1,2,3\n", 1, "column 2 of the header has no name"),
    "empty id": ("JOBSCHEDULER_JOB_ID,x\n,1\n", 2, "row 1, column 1 (JOBSCHEDULER_JOB_ID): empty job id"),
    "id with space": ("JOBSCHEDULER_JOB_ID,x\na b,1\n", 2, "contains white space"),
    "bad quoting": ('a,b\n1,"2\n', None, "malformed CSV"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_csv_is_refused_with_row_and_column(tmp_path: Path, case: str) -> None:
    text, line, expect = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(TableError) as e:
        csvtable.read(path)
    msg = e.value.describe()
    assert expect in msg
    assert msg.startswith(f"{path}:{line}:" if line else f"{path}:")


@pytest.mark.parametrize("case", ["duplicate id", "cycle", "bom", "latin1", "ragged short", "priority"])
def test_cli_import_refuses_and_writes_nothing(tmp_path: Path, case: str) -> None:
    text, _line, expect = BAD[case]
    write(tmp_path, text, "bad.csv")
    for argv in (["jobauto", "import", "bad.csv"], ["db_util", "import", "bad.csv"]):
        r = cli(*argv, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "bad.csv:" in r.stderr and expect in r.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_add_validates_against_the_table_and_changes_nothing_on_error(tmp_path: Path) -> None:
    write(tmp_path, FAN_IN, "jobs.csv")
    assert cli("db_util", "import", "jobs.csv", cwd=tmp_path).returncode == 0
    before = digest(tmp_path / "jobs.db")
    cases = {
        "dup.csv": ("JOBSCHEDULER_JOB_ID,task\njobA,again\n", "already in the table"),
        "cols.csv": ("JOBSCHEDULER_JOB_ID,other\njobE,x\n", "parameter columns differ"),
        "dep.csv": ("JOBSCHEDULER_JOB_ID,task,JOBSCHEDULER_DEPENDS_ON\njobE,x,jobZ\n", "unknown job id 'jobZ'"),
    }
    for name, (text, expect) in cases.items():
        write(tmp_path, text, name)
        r = cli("db_util", "add", "jobs.db", name, cwd=tmp_path)
        assert r.returncode == 2 and expect in r.stderr and f"{name}:" in r.stderr, r.stderr
        assert digest(tmp_path / "jobs.db") == before
    write(tmp_path, "task,JOBSCHEDULER_JOB_ID,JOBSCHEDULER_DEPENDS_ON\nplot,jobE,jobD\n", "new.csv")
    r = cli("jobauto", "add", "jobs.db", "new.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    store = TableStore(tmp_path / "jobs.db")
    jobs = {j.id: j for j in store.jobs()}
    assert jobs["jobE"].deps == ("jobD",) and jobs["jobE"].params == ("plot",) and jobs["jobE"].row == 5


def test_add_without_id_column_numbers_rows_after_the_table(tmp_path: Path) -> None:
    write(tmp_path, "x,y\na,1\na,2\n", "t.csv")
    assert cli("jobauto", "import", "t.csv", cwd=tmp_path).returncode == 0
    write(tmp_path, "x,JOBSCHEDULER_DEPENDS_ON\nb,1\nb,3\n", "n.csv")
    # columns differ (y missing): refused
    assert cli("jobauto", "add", "t.db", "n.csv", cwd=tmp_path).returncode == 2
    write(tmp_path, "y,x,JOBSCHEDULER_DEPENDS_ON\n9,b,1\n8,b,3\n", "n.csv")
    r = cli("jobauto", "add", "t.db", "n.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    jobs = TableStore(tmp_path / "t.db").jobs()
    assert [(j.id, j.params, j.deps) for j in jobs][2:] == [("3", ("b", "9"), ("1",)),
                                                           ("4", ("b", "8"), ("3",))]


def test_import_refuses_an_existing_table(tmp_path: Path) -> None:
    write(tmp_path, EXPERIMENTS, "experiments.csv")
    assert cli("db_util", "import", "experiments.csv", cwd=tmp_path).returncode == 0
    before = digest(tmp_path / "experiments.db")
    r = cli("db_util", "import", "experiments.csv", cwd=tmp_path)
    assert r.returncode == 2 and "already exists" in r.stderr
    assert digest(tmp_path / "experiments.db") == before


def test_export_imports_again_as_the_same_jobs(tmp_path: Path) -> None:
    for text in (EXPERIMENTS, FAN_IN, "x,y,JOBSCHEDULER_DEPENDS_ON\na,1,\na,2,1\n"):
        d = tmp_path / hashlib.md5(text.encode()).hexdigest()[:6]
        d.mkdir()
        write(d, text, "in.csv")
        assert cli("jobauto", "import", "in.csv", "a.db", cwd=d).returncode == 0
        assert cli("jobauto", "export", "a.db", "out.csv", cwd=d).returncode == 0
        assert cli("jobauto", "import", "out.csv", "b.db", cwd=d).returncode == 0
        a = [(j.id, j.params, j.priority, j.estimate_h, j.deps) for j in TableStore(d / "a.db").jobs()]
        b = [(j.id, j.params, j.priority, j.estimate_h, j.deps) for j in TableStore(d / "b.db").jobs()]
        assert a == b


def test_not_a_table(tmp_path: Path) -> None:
    write(tmp_path, "hello", "x.db")
    r = cli("progress_viewer", "x.db", cwd=tmp_path)
    assert r.returncode == 2 and "x.db" in r.stderr
    r = cli("job_scheduler", "missing.db", "true", cwd=tmp_path)
    assert r.returncode == 2 and "missing.db" in r.stderr and "jobauto import" in r.stderr


def test_export_to_stdout_leaves_dev_stdout_alone(tmp_path: Path) -> None:
    write(tmp_path, FAN_IN, "jobs.csv")
    assert cli("jobauto", "import", "jobs.csv", cwd=tmp_path).returncode == 0
    r = subprocess.run("jobauto export jobs.db /dev/stdout | cat", shell=True, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("JOBSCHEDULER_JOB_ID,task,JOBSCHEDULER_DEPENDS_ON")
    assert len(r.stdout.splitlines()) == 6   # header, 4 jobs, the summary line
    assert Path("/dev/stdout").is_symlink()
