"""`jobauto export DB -` writes to stdout; `--spreadsheet-safe` quotes formula-like cells for
spreadsheet users (OWASP "CSV injection"), and without it an export imports again unchanged
(jobauto/cli/tables.py, jobauto/table/ops.py)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from helpers import import_table, jobauto, run_cli

# parameters a user may well have (negative energies) and ones a spreadsheet would run
HOSTILE = """\
JOBSCHEDULER_JOB_ID,formula,energy,note
a,=1+2,-3.5,@SUM(A1:A9)
b,+cmd|' /C calc'!A0,+7,-2+3
c,"\tlead tab","-1e-3",plain
d,plain,0.5,＝HYPERLINK("x")
"""
# a carriage return in a cell: what csv writers get wrong
CR = 'JOBSCHEDULER_JOB_ID,note\nc,"\rlead cr"\nd,"mid\rcr"\n'


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_dash_writes_to_stdout_the_bytes_of_the_file(tmp_path: Path) -> None:
    import_table(tmp_path, HOSTILE)
    r = jobauto("export", "jobs.db", "-", cwd=tmp_path, check_rc=0, text=False)
    assert not (tmp_path / "-").exists()
    assert r.stderr.decode() == "jobauto export: 4 jobs written to stdout\n"
    jobauto("export", "jobs.db", "out.csv", cwd=tmp_path, check_rc=0)
    assert r.stdout == (tmp_path / "out.csv").read_bytes()
    assert rows(r.stdout.decode())[1][:4] == ["a", "=1+2", "-3.5", "@SUM(A1:A9)"]
    done = jobauto("export", "jobs.db", "-", "--status", "done", cwd=tmp_path, check_rc=0)
    assert len(rows(done.stdout)) == 1          # the header only
    assert run_cli("db_util", "export", "jobs.db", "-", cwd=tmp_path, check_rc=0).stdout == \
        r.stdout.decode()


def test_a_file_named_dash_is_dot_slash_dash(tmp_path: Path) -> None:
    import_table(tmp_path, HOSTILE)
    r = jobauto("export", "jobs.db", "./-", cwd=tmp_path, check_rc=0)
    assert r.stdout.startswith("jobauto export: 4 jobs written to ")
    assert rows((tmp_path / "-").read_text())[0][0] == "JOBSCHEDULER_JOB_ID"


def test_by_default_every_cell_is_kept_and_the_export_imports_again(tmp_path: Path) -> None:
    import_table(tmp_path, HOSTILE)
    jobauto("export", "jobs.db", "out.csv", cwd=tmp_path, check_rc=0)
    out = rows((tmp_path / "out.csv").read_text())
    assert [r[:4] for r in out] == rows(HOSTILE)
    jobauto("import", "out.csv", "again.db", cwd=tmp_path, check_rc=0)
    jobauto("export", "again.db", "again.csv", cwd=tmp_path, check_rc=0)
    assert (tmp_path / "again.csv").read_text() == (tmp_path / "out.csv").read_text()


def test_spreadsheet_safe_quotes_formula_like_cells_and_keeps_numbers(tmp_path: Path) -> None:
    import_table(tmp_path, HOSTILE)
    r = jobauto("export", "jobs.db", "-", "--spreadsheet-safe", cwd=tmp_path, check_rc=0)
    out = {row[0]: row[1:4] for row in rows(r.stdout)[1:]}
    assert out == {"a": ["'=1+2", "-3.5", "'@SUM(A1:A9)"],
                   "b": ["'+cmd|' /C calc'!A0", "+7", "'-2+3"],
                   "c": ["'\tlead tab", "-1e-3", "plain"],
                   "d": ["plain", "0.5", "'＝HYPERLINK(\"x\")"]}
    jobauto("export", "jobs.db", "safe.csv", "--spreadsheet-safe", cwd=tmp_path, check_rc=0)
    assert (tmp_path / "safe.csv").read_text() == r.stdout
    help_text = jobauto("export", "--help").stdout
    assert "--spreadsheet-safe" in help_text and "single quote" in help_text


def test_a_carriage_return_in_a_cell_survives_an_export_to_stdout(tmp_path: Path) -> None:
    import_table(tmp_path, CR)
    out = jobauto("export", "jobs.db", "-", cwd=tmp_path, check_rc=0, text=False).stdout.decode()
    assert [r[:2] for r in rows(out)[1:]] == [["c", "\rlead cr"], ["d", "mid\rcr"]]
    safe = jobauto("export", "jobs.db", "-", "--spreadsheet-safe", cwd=tmp_path, check_rc=0,
                   text=False).stdout.decode()
    assert [r[1] for r in rows(safe)[1:]] == ["'\rlead cr", "mid\rcr"]
    (tmp_path / "out.csv").write_text(out, newline="")
    jobauto("import", "out.csv", "again.db", cwd=tmp_path, check_rc=0)


def test_a_carriage_return_in_a_cell_survives_an_export_to_a_file(tmp_path: Path) -> None:
    import_table(tmp_path, CR)
    jobauto("export", "jobs.db", "out.csv", cwd=tmp_path, check_rc=0)
    jobauto("import", "out.csv", "again.db", cwd=tmp_path, check_rc=0)
