"""`db_util reset DB` and `jobauto reset DB` (jobauto/cli/tables.py): the seed's default (every
job not running back to pending; a live worker's job never taken) against jobauto's own (the
jobs in error), on a table with a real live worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import import_table, run_cli

from jobauto.core.model import JobState
from jobauto.store import TableStore

# claimed in priority order: ok and bad by hand, live by a real worker, lost by hand; p1, p2
# stay pending
CSV = """\
JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_PRIORITY
ok,1,9
bad,2,8
live,3,7
lost,4,6
p1,5,1
p2,6,1
"""


def states(db: Path) -> dict[str, str]:
    s = TableStore(db, readonly=True)
    try:
        return {j.id: j.state.value for j in s.jobs()}
    finally:
        s.close()


@pytest.fixture
def table(tmp_path: Path):  # type: ignore[no-untyped-def]
    """done ok, error bad, lost running on a worker declared lost, live running on a real
    `job_scheduler` process, p1 and p2 pending."""
    db = import_table(tmp_path, CSV)
    s = TableStore(db)
    now = time.time()
    w = s.register("here", "here-boot", 1, 30.0, 1, "", now)
    for ident, state in (("ok", JobState.DONE), ("bad", JobState.ERROR)):
        job = s.claim(w, now)
        assert job is not None and job.id == ident
        assert s.finish(w, now, job.row, state, 3 if state == JobState.ERROR else 0, 1.0, "boom")
    s.stop_worker(w, now, "done")
    s.close()
    # a real worker takes live; it looks for lost workers at its start and then only every
    # --heartbeat seconds, so the job of the worker declared lost below stays as it is
    (tmp_path / "long.sh").write_text("echo $$ >> pids\nsleep 120\n")
    worker = subprocess.Popen(["job_scheduler", str(db), "sh long.sh", "--parallel", "1",
                               "--heartbeat", "3600"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while states(db)["live"] != "running":
            assert worker.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        s = TableStore(db)
        gone = s.register("there", "there-boot", 2, 30.0, 1, "", now)
        job = s.claim(gone, now)
        assert job is not None and job.id == "lost"
        assert s.declare_lost(gone, 0, now, "silent for 4 heartbeats")   # as a worker would
        s.close()
        assert states(db) == {"ok": "done", "bad": "error", "lost": "running",
                              "live": "running", "p1": "pending", "p2": "pending"}
        yield db
    finally:
        worker.send_signal(signal.SIGTERM)       # a worker stopped so ends its jobs, and exits
        try:
            worker.wait(60)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            pids = tmp_path / "pids"
            for pid in pids.read_text().split() if pids.exists() else []:   # the job: own session
                try:
                    os.killpg(os.getpgid(int(pid)), signal.SIGKILL)
                except ProcessLookupError:
                    pass


def test_db_util_reset_without_status_is_the_seeds_every_job_not_running(table: Path) -> None:
    r = run_cli("db_util", "reset", str(table), check_rc=0)
    assert r.stdout.splitlines() == ["db_util reset: 3 job(s) pending again: ok, bad, lost",
                                     "db_util reset: 1 running job(s) left alone (their "
                                     "workers are alive)"]
    assert r.stderr == ""
    assert states(table) == {"ok": "pending", "bad": "pending", "lost": "pending",
                             "live": "running", "p1": "pending", "p2": "pending"}
    progress = json.loads(run_cli("jobauto", "status", str(table), "--json", check_rc=0).stdout)
    assert progress["counts"]["running"] == 1 and progress["counts"]["pending"] == 5


def test_jobauto_reset_keeps_its_default_the_jobs_in_error(table: Path) -> None:
    r = run_cli("jobauto", "reset", str(table), check_rc=0)
    assert r.stdout == "jobauto reset: 1 job(s) pending again: bad\n"
    assert states(table) == {"ok": "done", "bad": "pending", "lost": "running",
                             "live": "running", "p1": "pending", "p2": "pending"}
    r = run_cli("db_util", "reset", str(table), "--status", "done", check_rc=0)
    assert r.stdout == "db_util reset: 1 job(s) pending again: ok\n"   # --status: as asked
    assert states(table)["live"] == "running" and states(table)["lost"] == "running"


def test_each_reset_documents_its_default() -> None:
    seed = run_cli("db_util", "reset", "--help", check_rc=0).stdout
    own = run_cli("jobauto", "reset", "--help", check_rc=0).stdout
    assert "Default (the seed's db_util): every job that is not running" in " ".join(seed.split())
    assert "Default: the jobs in error" in " ".join(own.split())
    assert "db_util reset experiments.db                    # every job not running" in seed
