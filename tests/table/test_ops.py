"""Table operations (jobauto/table/ops.py) through the CLI: add validated against the table and
changing nothing on error, import refusing an existing table, export that imports again as the
same jobs.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from helpers import EXPERIMENTS, FAN_IN, run_cli, write_file

from jobauto.store import TableStore


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_add_validates_against_the_table_and_changes_nothing_on_error(tmp_path: Path) -> None:
    write_file(tmp_path, FAN_IN, "jobs.csv")
    assert run_cli("db_util", "import", "jobs.csv", cwd=tmp_path).returncode == 0
    before = digest(tmp_path / "jobs.db")
    cases = {
        "dup.csv": ("JOBSCHEDULER_JOB_ID,task\njobA,again\n", "already in the table"),
        "cols.csv": ("JOBSCHEDULER_JOB_ID,other\njobE,x\n", "parameter columns differ"),
        "dep.csv": ("JOBSCHEDULER_JOB_ID,task,JOBSCHEDULER_DEPENDS_ON\njobE,x,jobZ\n", "unknown job id 'jobZ'"),
    }
    for name, (text, expect) in cases.items():
        write_file(tmp_path, text, name)
        r = run_cli("db_util", "add", "jobs.db", name, cwd=tmp_path)
        assert r.returncode == 2 and expect in r.stderr and f"{name}:" in r.stderr, r.stderr
        assert digest(tmp_path / "jobs.db") == before
    write_file(tmp_path, "task,JOBSCHEDULER_JOB_ID,JOBSCHEDULER_DEPENDS_ON\nplot,jobE,jobD\n", "new.csv")
    r = run_cli("jobauto", "add", "jobs.db", "new.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    store = TableStore(tmp_path / "jobs.db")
    jobs = {j.id: j for j in store.jobs()}
    assert jobs["jobE"].deps == ("jobD",) and jobs["jobE"].params == ("plot",) and jobs["jobE"].row == 5


def test_add_without_id_column_numbers_rows_after_the_table(tmp_path: Path) -> None:
    write_file(tmp_path, "x,y\na,1\na,2\n", "t.csv")
    assert run_cli("jobauto", "import", "t.csv", cwd=tmp_path).returncode == 0
    write_file(tmp_path, "x,JOBSCHEDULER_DEPENDS_ON\nb,1\nb,3\n", "n.csv")
    # columns differ (y missing): refused
    assert run_cli("jobauto", "add", "t.db", "n.csv", cwd=tmp_path).returncode == 2
    write_file(tmp_path, "y,x,JOBSCHEDULER_DEPENDS_ON\n9,b,1\n8,b,3\n", "n.csv")
    r = run_cli("jobauto", "add", "t.db", "n.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    jobs = TableStore(tmp_path / "t.db").jobs()
    assert [(j.id, j.params, j.deps) for j in jobs][2:] == [("3", ("b", "9"), ("1",)),
                                                           ("4", ("b", "8"), ("3",))]


def test_import_refuses_an_existing_table(tmp_path: Path) -> None:
    write_file(tmp_path, EXPERIMENTS, "experiments.csv")
    assert run_cli("db_util", "import", "experiments.csv", cwd=tmp_path).returncode == 0
    before = digest(tmp_path / "experiments.db")
    r = run_cli("db_util", "import", "experiments.csv", cwd=tmp_path)
    assert r.returncode == 2 and "already exists" in r.stderr
    assert digest(tmp_path / "experiments.db") == before


def test_export_imports_again_as_the_same_jobs(tmp_path: Path) -> None:
    for text in (EXPERIMENTS, FAN_IN, "x,y,JOBSCHEDULER_DEPENDS_ON\na,1,\na,2,1\n"):
        d = tmp_path / hashlib.md5(text.encode()).hexdigest()[:6]
        d.mkdir()
        write_file(d, text, "in.csv")
        assert run_cli("jobauto", "import", "in.csv", "a.db", cwd=d).returncode == 0
        assert run_cli("jobauto", "export", "a.db", "out.csv", cwd=d).returncode == 0
        assert run_cli("jobauto", "import", "out.csv", "b.db", cwd=d).returncode == 0
        a = [(j.id, j.params, j.priority, j.estimate_h, j.deps) for j in TableStore(d / "a.db").jobs()]
        b = [(j.id, j.params, j.priority, j.estimate_h, j.deps) for j in TableStore(d / "b.db").jobs()]
        assert a == b


def test_export_to_stdout_leaves_dev_stdout_alone(tmp_path: Path) -> None:
    write_file(tmp_path, FAN_IN, "jobs.csv")
    assert run_cli("jobauto", "import", "jobs.csv", cwd=tmp_path).returncode == 0
    r = subprocess.run("jobauto export jobs.db /dev/stdout | cat", shell=True, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("JOBSCHEDULER_JOB_ID,task,JOBSCHEDULER_DEPENDS_ON")
    assert len(r.stdout.splitlines()) == 6   # header, 4 jobs, the summary line
    assert Path("/dev/stdout").is_symlink()
