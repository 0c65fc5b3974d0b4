"""Job-table CSVs (jobauto/table/csvfile.py): ids, columns, validation of every error case (row
and column named), and through the CLI: exit 2, nothing written. Adding and exporting tables:
table/test_ops.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import EXPERIMENTS, FAN_IN, run_cli, write_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobauto.core.config import LIMITS
from jobauto.core.errors import JobautoError, TableError
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
    "huge priority": (EXPERIMENTS.replace(",3,2.0,", f",{10**30},2.0,"), 3, "row 2, column 3 (JOBSCHEDULER_PRIORITY) must be at most 1000000000, not 1000000000000000000000000000000"),
    "huge negative priority": (EXPERIMENTS.replace(",3,2.0,", ",-99999999999999999999,2.0,"), 3, "row 2, column 3 (JOBSCHEDULER_PRIORITY) must be at least -1000000000"),
    "priority past int's digits": (EXPERIMENTS.replace(",3,2.0,", "," + "9" * 5000 + ",2.0,"), 3, "must be at most 1000000000, not " + "9" * 40 + "..."),
    "huge estimate": (EXPERIMENTS.replace(",0.3,", ",1e300,"), 4, "row 3, column 4 (JOBSCHEDULER_ESTIMATE_TIME) must be at most 100000, not 1e300"),
    "inf estimate": (EXPERIMENTS.replace(",0.3,", ",inf,"), 4, "not a non-negative number"),
    "newline in a repeated column": ('"a\nb","a\nb"\n1,2\n', 1, "column 2 ('a\\nb') repeats column 1"),
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


@pytest.mark.parametrize("case", ["duplicate id", "cycle", "bom", "latin1", "ragged short", "priority",
                                  "huge priority", "huge estimate"])
def test_cli_import_refuses_and_writes_nothing(tmp_path: Path, case: str) -> None:
    text, _line, expect = BAD[case]
    write_file(tmp_path, text, "bad.csv")
    for argv in (["jobauto", "import", "bad.csv"], ["db_util", "import", "bad.csv"]):
        r = run_cli(*argv, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "bad.csv:" in r.stderr and expect in r.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]




# -- arbitrary input: a table or a refusal of one line naming the file, never anything else ----
CELL = st.one_of(st.text(max_size=8), st.sampled_from([
    "", "a", "a b", '"', '""', "\n", "\r", "\x00", "\ufeff", "1", "-1", "1.5", "nan", "inf",
    "9" * 25, "1e400", "JOBSCHEDULER_JOB_ID", "JOBSCHEDULER_PRIORITY", "JOBSCHEDULER_DEPENDS_ON",
    "JOBSCHEDULER_ESTIMATE_TIME", "JOBSCHEDULER_STATUS", "JOBSCHEDULER_X"]))
ROWS = st.lists(st.lists(CELL, min_size=1, max_size=5), max_size=6)
CSV_SETTINGS = settings(max_examples=300, deadline=None, database=None,
                        suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check_read(path: Path) -> None:
    try:
        table = csvtable.read(path)
    except JobautoError as e:
        assert type(e) is TableError
        msg = e.describe()
        assert msg.startswith(f"{path}:") and "\n" not in msg
        return
    low, high = LIMITS["priority"].low, LIMITS["priority"].high
    for row in table.rows:
        assert low <= row.priority <= high
        assert row.estimate_h is None or 0 <= row.estimate_h <= LIMITS["estimate"].high
    assert len({r.id for r in table.rows}) == len(table.rows)


@CSV_SETTINGS
@given(rows=ROWS, sep=st.sampled_from([",", ";"]), end=st.sampled_from(["\n", "\r\n", ""]))
def test_any_csv_text_reads_or_is_refused_in_one_line(tmp_path: Path, rows: list[list[str]],
                                                      sep: str, end: str) -> None:
    text = "\n".join(sep.join(row) for row in rows) + end
    _check_read(write_file(tmp_path, text))


@CSV_SETTINGS
@given(rows=ROWS)
def test_any_quoted_csv_reads_or_is_refused_in_one_line(tmp_path: Path, rows: list[list[str]]) -> None:
    import csv
    import io
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    _check_read(write_file(tmp_path, buf.getvalue()))


@CSV_SETTINGS
@given(data=st.binary(max_size=300))
def test_any_csv_bytes_read_or_are_refused_in_one_line(tmp_path: Path, data: bytes) -> None:
    _check_read(write_file(tmp_path, data))
