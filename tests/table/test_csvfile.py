"""Job-table CSVs (jobauto/table/csvfile.py): ids, columns, validation of every error case (row
and column named), and through the CLI: exit 2, nothing written. Adding and exporting tables:
table/test_ops.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import EXPERIMENTS, FAN_IN, run_cli, write_file

from jobauto.core.errors import TableError
from jobauto.table import csvfile as csvtable


def test_ids_from_first_column_when_unique(tmp_path: Path) -> None:
    t = csvtable.read(write_file(tmp_path, EXPERIMENTS))
    assert t.id_mode == "first"
    assert [r.id for r in t.rows] == ["preprocess", "training", "evaluation"]
    assert t.columns == ["param1", "param2"]
    assert t.rows[1].params == ("training", "model1")
    assert (t.rows[1].priority, t.rows[1].estimate_h, t.rows[1].deps) == (3, 2.0, ("preprocess",))


def test_ids_from_id_column(tmp_path: Path) -> None:
    t = csvtable.read(write_file(tmp_path, FAN_IN))
    assert t.id_mode == "column"
    assert t.columns == ["task"]
    assert t.rows[2].deps == ("jobA", "jobB")
    assert t.rows[2].params == ("training",)


def test_ids_are_row_numbers_when_first_column_repeats(tmp_path: Path) -> None:
    t = csvtable.read(write_file(tmp_path, "x,y,JOBSCHEDULER_DEPENDS_ON\na,1,\na,2,1\nb,3,1 2\n"))
    assert t.id_mode == "row"
    assert [r.id for r in t.rows] == ["1", "2", "3"]
    assert t.rows[2].deps == ("1", "2")


def test_columns_keep_order_and_odd_names(tmp_path: Path) -> None:
    hostile = 'z col,"a;DROP TABLE jobs;--",JOBSCHEDULER_DEPENDS_ON,Ä\n1,"x, y",,ü\n'
    t = csvtable.read(write_file(tmp_path, hostile))
    assert t.columns == ["z col", "a;DROP TABLE jobs;--", "Ä"]
    assert t.rows[0].params == ("1", "x, y", "ü")


def test_quoted_field_with_newline(tmp_path: Path) -> None:
    t = csvtable.read(write_file(tmp_path, 'name,text\na,"line1\nline2"\nb,plain\n'))
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
    path = write_file(tmp_path, text)
    with pytest.raises(TableError) as e:
        csvtable.read(path)
    msg = e.value.describe()
    assert expect in msg
    assert msg.startswith(f"{path}:{line}:" if line else f"{path}:")


@pytest.mark.parametrize("case", ["duplicate id", "cycle", "bom", "latin1", "ragged short", "priority"])
def test_cli_import_refuses_and_writes_nothing(tmp_path: Path, case: str) -> None:
    text, _line, expect = BAD[case]
    write_file(tmp_path, text, "bad.csv")
    for argv in (["jobauto", "import", "bad.csv"], ["db_util", "import", "bad.csv"]):
        r = run_cli(*argv, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "bad.csv:" in r.stderr and expect in r.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


