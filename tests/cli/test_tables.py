"""The job-table commands (jobauto/cli/tables.py): every command of the users' examples, verbatim,
under the seed-compatible names (db_util, job_scheduler, progress_viewer) and as jobauto verbs;
a file that is not a table; a table that may not be written; numeric flags out of range.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    EXPERIMENTS,
    FAN_IN,
    RECORD,
    as_a_user,
    default_signals,
    import_table,
    run_cli,
    runs_log,
    write_file,
)


def test_not_a_table(tmp_path: Path) -> None:
    write_file(tmp_path, "hello", "x.db")
    r = run_cli("progress_viewer", "x.db", cwd=tmp_path)
    assert r.returncode == 2 and "x.db" in r.stderr
    r = run_cli("job_scheduler", "missing.db", "true", cwd=tmp_path)
    assert r.returncode == 2 and "missing.db" in r.stderr and "jobauto import" in r.stderr


@pytest.mark.parametrize("verbs", ["aliases", "jobauto"])
def test_user_examples_verbatim(tmp_path: Path, verbs: str) -> None:
    """Every command of ../shared/user-examples/job-tables.md, in their order."""
    (tmp_path / "experiments.csv").write_text(EXPERIMENTS)
    (tmp_path / "run.sh").write_text(RECORD)
    a = verbs == "aliases"

    def cmd(line: str, fail: str = "evaluation") -> subprocess.CompletedProcess[str]:
        if not a:
            line = (line.replace("db_util stats", "jobauto status").replace("db_util ", "jobauto ")
                    .replace("job_scheduler ", "jobauto run ")
                    .replace("progress_viewer ", "jobauto status "))
        return subprocess.run(line, shell=True, cwd=tmp_path, capture_output=True, text=True,
                              timeout=60, env={**os.environ, "FAIL": fail})

    assert cmd("db_util import experiments.csv").returncode == 0
    assert (tmp_path / "experiments.db").exists()
    r = cmd('job_scheduler experiments.db "bash run.sh"')
    assert r.returncode == 1
    assert runs_log(tmp_path) == ["start preprocess data1", "end preprocess data1",
                             "start training model1", "end training model1",
                             "start evaluation results"]
    assert cmd('job_scheduler experiments.db "bash run.sh" --parallel 4').returncode == 1
    w = subprocess.Popen(("progress_viewer" if a else "jobauto status") + " experiments.db --watch",
                         shell=True, cwd=tmp_path, stdout=subprocess.PIPE, text=True,
                         start_new_session=True, preexec_fn=default_signals)
    time.sleep(1.5)
    os.killpg(w.pid, signal.SIGINT)
    out, _ = w.communicate(timeout=10)
    assert "Pending: 0\n  - Ready: 0" in out and "Error: 1" in out
    assert cmd("db_util export experiments.db").returncode == 0
    exported = (tmp_path / "experiments.csv").read_text().splitlines()
    assert exported[0].startswith("param1,param2,JOBSCHEDULER_PRIORITY")
    assert exported[1].startswith("preprocess,data1,5,0.5,,done,0,")
    assert cmd("db_util export experiments.db done.csv --status done").returncode == 0
    assert len((tmp_path / "done.csv").read_text().splitlines()) == 3
    assert cmd("db_util export experiments.db error.csv --status error").returncode == 0
    err = (tmp_path / "error.csv").read_text().splitlines()
    assert len(err) == 2 and err[1].startswith("evaluation,results,1,0.3,training,error,3,")
    assert "failing on purpose" in err[1]
    assert cmd("db_util reset experiments.db --status error").returncode == 0
    (tmp_path / "runs.log").unlink()
    r = subprocess.run(('job_scheduler' if a else 'jobauto run') + ' experiments.db "bash run.sh"',
                       shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert runs_log(tmp_path) == ["start evaluation results", "end evaluation results"]
    (tmp_path / "new_jobs.csv").write_text(
        "param1,param2,JOBSCHEDULER_DEPENDS_ON\nplot,figure1,evaluation\n")
    assert cmd("db_util add experiments.db new_jobs.csv").returncode == 0
    (tmp_path / "jobs.csv").write_text(FAN_IN)
    assert cmd("db_util import jobs.csv").returncode == 0
    r = cmd('job_scheduler jobs.db "bash run.sh" --max-runtime 86400 --margin-time 300', fail="")
    assert r.returncode == 0, r.stderr
    r = cmd('job_scheduler experiments.db "bash run.sh" --parallel 4', fail="")
    assert r.returncode == 0, r.stderr
    assert "end plot figure1" in runs_log(tmp_path)
    s = cmd("db_util stats experiments.db" if a else "jobauto status experiments.db")
    assert s.returncode == 0 and "Done: 4" in s.stdout


def _listing(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize(("verb", "what"), [("import", "directory"), ("add", "file"),
                                            ("add", "directory"), ("reset", "file"),
                                            ("reset", "directory")])
def test_a_read_only_table_is_refused_in_one_line_and_nothing_changes(tmp_path: Path, verb: str,
                                                                      what: str) -> None:
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file permissions cannot apply")
    db = import_table(tmp_path, FAN_IN)
    write_file(tmp_path, "JOBSCHEDULER_JOB_ID,task\njobE,more\n", "more.csv")
    argv = {"import": ["import", "more.csv"], "add": ["add", db.name, "more.csv"],
            "reset": ["reset", db.name, "jobA", "--status", "pending"]}[verb]
    locked = tmp_path if what == "directory" else db
    before = _listing(tmp_path)
    locked.chmod(0o555 if what == "directory" else 0o444)
    try:
        r = run_cli(*as_a_user("jobauto", *argv), cwd=tmp_path)
    finally:
        locked.chmod(0o755 if what == "directory" else 0o644)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
    expect = {"file": f"jobauto {verb}: error: jobs.db: the job table is read-only",
              "directory": (f"jobauto import: error: more.db: cannot create the job table in "
                            f"{tmp_path}: Permission denied" if verb == "import" else
                            f"jobauto {verb}: error: jobs.db: the job table's directory {tmp_path} "
                            "is read-only")}[what]
    assert r.stderr.startswith(expect), r.stderr
    assert _listing(tmp_path) == before


@pytest.mark.parametrize(("flag", "value", "expect"), [
    ("--parallel", "nan", "--parallel: must be a finite number, not nan"),
    ("--parallel", "1.5", "--parallel: must be a whole number, not 1.5"),
    ("--parallel", "99999999999999999999", "--parallel: must be at most 4096"),
    ("--parallel", "two", "--parallel: invalid value 'two': not a number"),
    ("--max-runtime", "inf", "--max-runtime: must be a finite number, not inf"),
    ("--max-runtime", "nan", "--max-runtime: must be a finite number, not nan"),
    ("--margin-time", "-5", "--margin-time: must be at least 0, not -5"),
    ("--heartbeat", "nan", "--heartbeat: must be a finite number, not nan"),
    ("--heartbeat", "0", "--heartbeat: must be at least 0.1, not 0"),
    ("--heartbeat", "1e400", "--heartbeat: must be a finite number, not 1e400"),
])
def test_run_refuses_a_bad_number_in_one_line_and_runs_nothing(tmp_path: Path, flag: str,
                                                               value: str, expect: str) -> None:
    db = import_table(tmp_path, FAN_IN)
    before = _listing(tmp_path)
    r = run_cli("jobauto", "run", db.name, "bash run.sh", flag, value, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"jobauto run: error: {expect}"), r.stderr
    assert len(r.stderr.splitlines()) == 1 and runs_log(tmp_path) == []
    assert _listing(tmp_path) == before
