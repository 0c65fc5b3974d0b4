"""`jobauto status` ends 0 whatever the jobs did, as its help says (jobauto/cli/view.py): failed
and blocked jobs are what it shows, not a failure of its own; 2 is for a bad target or flag."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import FAN_IN, failing_tree, import_table, jobauto, jobmon, run_cli


def test_status_is_0_with_failed_and_blocked_jobs_as_its_help_says(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    jobauto("run", "jobs.db", "sh run.sh", cwd=tmp_path, env={"FAIL": "preprocess"}, check_rc=1)
    failing_tree(tmp_path / "L/init")
    jobmon("--ldir=L", f"--rdir={tmp_path / 'R'}", "--scheduler=local", "--interval=1",
           cwd=tmp_path, check_rc=1)
    (run,) = (tmp_path / "L").glob("2*")
    for target in (db, run):
        counts = json.loads(jobauto("status", str(target), "--json", check_rc=0).stdout)["counts"]
        assert counts["error"] == 1 and counts["blocked"] >= 2, counts
        text = jobauto("status", str(target), check_rc=0).stdout
        assert "Error: 1" in text
    for exe, verb in (("progress_viewer", ()), ("db_util", ("stats",))):
        run_cli(exe, *verb, str(db), check_rc=0)
    help_text = jobauto("status", "--help", check_rc=0).stdout
    assert "exit codes: 0 shown, whatever the jobs' states" in help_text
    assert "1 some jobs failed" not in help_text


def test_status_is_2_for_what_is_not_a_run_or_a_table(tmp_path: Path) -> None:
    r = jobauto("status", str(tmp_path / "nope.db"), check_rc=2)
    assert "nope.db" in r.stderr and r.stdout == ""
    assert "2 bad usage or input" in jobauto("status", "--help").stdout
