"""The table worker (jobauto/table/worker.py) as `jobauto run` / `job_scheduler` start it: order,
parameters, failures and blocked jobs, --max-runtime, signals, and recovery of dead or silent
workers. Many workers killed at random: table/test_worker_stress.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from helpers import FAN_IN, import_table, run_cli, runs_log

from jobauto.core.model import JobState
from jobauto.store import TableStore


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=tmp_path, env=env, timeout=timeout)


def states(db: Path) -> dict[str, str]:
    return {j.id: j.state.value for j in TableStore(db).jobs()}


def test_fan_in_runs_in_dependency_order_and_parallel(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    r = run(tmp_path, "job_scheduler", db.name, "bash run.sh", "--parallel", "4", env={"SLEEP": "0.5"})
    assert r.returncode == 0, r.stderr
    lines = runs_log(tmp_path)
    pos = {ln: i for i, ln in enumerate(lines)}
    # jobA and jobB ran at the same time: both started before either ended
    assert max(pos["start preprocess"], pos["start load_data"]) < min(pos["end preprocess"],
                                                                        pos["end load_data"])
    assert pos["start training"] > max(pos["end preprocess"], pos["end load_data"])
    assert pos["start evaluation"] > pos["end training"]
    assert len(lines) == 8
    assert "all 4 jobs done" in r.stderr


def test_error_blocks_dependents_and_the_worker_stops_by_itself(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    r = run(tmp_path, "job_scheduler", db.name, "bash run.sh", env={"FAIL": "training"})
    assert r.returncode == 1
    assert "nothing left to run: 1 in error, 1 blocked (by jobC)" in r.stderr
    assert states(db) == {"jobA": "done", "jobB": "done", "jobC": "error", "jobD": "pending"}
    job = {j.id: j for j in TableStore(db).jobs()}["jobC"]
    assert job.exit_code == 3 and job.error == "exit 3: failing on purpose: training"
    assert job.elapsed_s is not None and job.elapsed_s >= 0
    view = run(tmp_path, "progress_viewer", db.name).stdout
    assert "  - Blocked: 1    ← blocked by an error (jobC)" in view
    assert "jobC: exit 3: failing on purpose: training" in view
    # rerun only the failures
    assert run(tmp_path, "db_util", "reset", db.name, "--status", "error").returncode == 0
    (tmp_path / "runs.log").unlink()
    r = run(tmp_path, "job_scheduler", db.name, "bash run.sh")
    assert r.returncode == 0, r.stderr
    assert runs_log(tmp_path) == ["start training", "end training", "start evaluation", "end evaluation"]


def test_parameters_are_arguments_never_re_split(tmp_path: Path) -> None:
    csv = 'name,value\na,"two words"\nb,"$(touch pwned); `touch pwned2`"\nc,\n'
    db = import_table(tmp_path, csv)
    (tmp_path / "args.py").write_text(
        "import sys, json\nopen('args.log', 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    r = run(tmp_path, "jobauto", "run", db.name, f"{sys.executable} args.py")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "args.log").read_text().splitlines() == [
        '["a", "two words"]', '["b", "$(touch pwned); `touch pwned2`"]', '["c", ""]']
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    run(tmp_path, "jobauto", "reset", db.name, "--status", "done")
    (tmp_path / "args.log").unlink()
    r = run(tmp_path, "jobauto", "run", db.name, sys.executable, "args.py", "--named-args")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "args.log").read_text().splitlines()[0] == '["--name", "a", "--value", "two words"]'


def test_job_environment_and_priority_order(tmp_path: Path) -> None:
    csv = "JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_PRIORITY\nlow,1,0\nhigh,2,9\nmid,3,5\nmid2,4,5\n"
    db = import_table(tmp_path, csv)
    r = run(tmp_path, "jobauto", "run", db.name, "--", "sh", "-c",
            'echo "$JOBAUTO_JOB_ID $JOBAUTO_ATTEMPT $1" >> env.log', "sh")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "env.log").read_text().splitlines() == ["high 1 2", "mid 1 3", "mid2 1 4",
                                                               "low 1 1"]


def test_bad_command_and_flags_are_refused_before_anything_runs(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    for args, expect in ((["no-such-command-xyz"], "COMMAND: command 'no-such-command-xyz' not found"),
                         (["true", "--parallel", "0"], "--parallel: must be at least 1"),
                         (["true", "--max-runtime", "10", "--margin-time", "20"], "--margin-time"),
                         (["true", "--max-runtime", "-1"], "--max-runtime")):
        r = run(tmp_path, "job_scheduler", db.name, *args)
        assert r.returncode == 2 and expect in r.stderr, r.stderr
    assert set(states(db).values()) == {"pending"}
    assert TableStore(db).workers() == []


def test_max_runtime_never_starts_what_cannot_finish(tmp_path: Path) -> None:
    # estimates in hours: 0.0005 h = 1.8 s; 0.01 h = 36 s cannot fit in 6 - 1 s
    csv = ("JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_ESTIMATE_TIME\n"
           "a,1,0.0005\nb,2,0.01\nc,3,0.0005\nd,4,0.0005\ne,5,0.0005\n")
    db = import_table(tmp_path, csv)
    t0 = time.monotonic()
    r = run(tmp_path, "job_scheduler", db.name, "bash run.sh", "--max-runtime", "6",
            "--margin-time", "1", env={"SLEEP": "1.5"})
    took = time.monotonic() - t0
    assert took < 6 + 1.5, (took, r.stderr)   # the worker itself (plus interpreter start-up)
    st = states(db)
    assert st["b"] == "pending"               # never started: 36 s estimate
    assert "start 2" not in runs_log(tmp_path)
    done = [k for k, v in st.items() if v == "done"]
    assert 2 <= len(done) <= 3
    assert "nothing fits" in r.stderr or "time is up" in r.stderr
    assert r.returncode == 0


def test_max_runtime_stops_a_job_that_overruns_its_estimate(tmp_path: Path) -> None:
    csv = "JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_ESTIMATE_TIME\nslow,1,0.0001\n"
    db = import_table(tmp_path, csv)
    t0 = time.monotonic()
    r = run(tmp_path, "job_scheduler", db.name, "bash run.sh", "--max-runtime", "3",
            "--margin-time", "2", env={"SLEEP": "30"})
    took = time.monotonic() - t0
    assert took < 3 + 1.5, (took, r.stderr)
    job = TableStore(db).jobs()[0]
    assert job.state == JobState.PENDING and "max-runtime" in job.error
    assert runs_log(tmp_path) == ["start 1"]


def test_sigterm_returns_running_jobs_to_pending(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    p = subprocess.Popen(["jobauto", "run", db.name, "bash run.sh", "--parallel", "2"], cwd=tmp_path,
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "SLEEP": "31.7"})
    deadline = time.time() + 20
    while time.time() < deadline and len(runs_log(tmp_path)) < 2:
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=20)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "2 returned to pending" in err
    assert set(states(db).values()) == {"pending"}
    w = TableStore(db).workers()[0]
    assert w.state == "stopped"
    # the jobs' processes are gone
    time.sleep(0.5)
    out = subprocess.run(["pgrep", "-f", "sleep 31.7"], capture_output=True, text=True).stdout
    assert not out.strip()


def two_jobs_running(tmp_path: Path, db: Path, sleep: float) -> subprocess.Popen[bytes]:
    """A worker with --parallel 2 whose jobs sleep `sleep` s, once both slots are busy."""
    p = subprocess.Popen(["jobauto", "run", db.name, "bash run.sh", "--parallel", "2"], cwd=tmp_path,
                         stderr=subprocess.DEVNULL, env={**os.environ, "SLEEP": str(sleep)})
    deadline = time.time() + 20
    while time.time() < deadline and len(runs_log(tmp_path)) < 2:
        time.sleep(0.05)
    return p


def test_killed_worker_on_this_host_its_commands_finish_and_count(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    p = two_jobs_running(tmp_path, db, sleep=2)
    p.kill()
    p.wait()
    assert sorted(states(db).values()) == ["pending", "pending", "running", "running"]
    # a new worker at once: the orphans still run here, it waits for them and never takes them
    r = run(tmp_path, "jobauto", "run", db.name, "bash run.sh", "--parallel", "2",
            env={"SLEEP": "0"})
    assert r.returncode == 0, r.stderr
    assert "is gone" in r.stderr and "jobA: recorded done" in r.stderr
    assert sorted(runs_log(tmp_path)) == sorted(f"{k} {t}" for k in ("start", "end") for t in
                                           ("preprocess", "load_data", "training", "evaluation"))
    assert [j.attempts for j in TableStore(db).jobs()] == [1, 1, 1, 1]
    assert TableStore(db).workers()[0].state == "lost"


def test_orphan_that_did_not_finish_runs_again(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    p = subprocess.Popen(["jobauto", "run", db.name, "bash run.sh"], cwd=tmp_path,
                         stderr=subprocess.DEVNULL, env={**os.environ, "SLEEP": "30"},
                         start_new_session=True)
    deadline = time.time() + 20
    while time.time() < deadline and not runs_log(tmp_path):
        time.sleep(0.05)
    # the node is lost: the worker and its job's processes die together
    p.kill()
    p.wait()
    kill_processes_in(tmp_path)   # its job's processes (only this test's: tests run side by side)
    time.sleep(0.3)
    r = run(tmp_path, "jobauto", "run", db.name, "bash run.sh", env={"SLEEP": "0"})
    assert r.returncode == 0, r.stderr
    assert "jobA: returned to pending" in r.stderr
    assert runs_log(tmp_path).count("start preprocess") == 2 and runs_log(tmp_path).count("end preprocess") == 1


def kill_processes_in(d: Path) -> None:
    """SIGKILL every process whose working directory is D (or below it)."""
    for pid in os.listdir("/proc"):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if pid.isdigit() and int(pid) != os.getpid() and (cwd == str(d) or cwd.startswith(f"{d}/")):
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass


def _fake_worker(db: Path, host_key: str, beat_s: float) -> int:
    """A worker row of another host, running jobA, that never beats again."""
    store = TableStore(db)
    wid = store.register("otherhost", host_key, 1, beat_s, 1, "", time.time())
    job = store.claim(wid, time.time())
    assert job is not None and job.id == "jobA"
    return wid


def test_silent_worker_on_another_host_is_lost_after_its_heartbeats(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    _fake_worker(db, "otherhost|boot|1", 0.5)
    t0 = time.monotonic()
    r = run(tmp_path, "jobauto", "run", db.name, "bash run.sh", "--heartbeat", "0.2")
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "heartbeat 0 unchanged" in r.stderr and "jobA: returned to pending" in r.stderr, r.stderr
    assert took >= 4 * 0.5          # it was watched on this host's clock for 4 of its beats
    assert states(db) == dict.fromkeys(["jobA", "jobB", "jobC", "jobD"], "done")


def test_slow_but_alive_worker_keeps_its_job(tmp_path: Path) -> None:
    csv = "JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_DEPENDS_ON\nlong,1,\nafter,2,long\n"
    db = import_table(tmp_path, csv)
    slow = subprocess.Popen(["jobauto", "run", db.name, "bash run.sh", "--heartbeat", "0.2"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SLEEP": "3", "JOBAUTO_TEST_HOST": "x"})
    deadline = time.time() + 20
    while time.time() < deadline and not runs_log(tmp_path):
        time.sleep(0.05)
    # a second worker waits for the long job (its dependent is waiting) and never takes it
    r = run(tmp_path, "jobauto", "run", db.name, "bash run.sh", "--heartbeat", "0.2")
    slow.communicate(timeout=30)
    assert r.returncode == 0 and slow.returncode == 0
    assert runs_log(tmp_path).count("start 1") == 1
    assert {j.id: j.attempts for j in TableStore(db).jobs()} == {"long": 1, "after": 1}


def test_worker_declared_lost_kills_its_jobs_and_records_nothing(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    p = subprocess.Popen(["jobauto", "run", db.name, "bash run.sh", "--heartbeat", "0.2"],
                         cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "SLEEP": "30"})
    deadline = time.time() + 20
    while time.time() < deadline and not runs_log(tmp_path):
        time.sleep(0.05)
    store = TableStore(db)
    w = store.workers()[0]
    assert store.declare_lost(w.id, store.workers()[0].beat, time.time(), "test")
    _, err = p.communicate(timeout=20)
    assert p.returncode == 1, err
    assert "declared lost" in err
    assert states(db)["jobA"] == "pending"
    assert not any(ln.startswith("end") for ln in runs_log(tmp_path))


def test_status_while_running_and_watch(tmp_path: Path) -> None:
    db = import_table(tmp_path, FAN_IN)
    p = two_jobs_running(tmp_path, db, sleep=3)
    out = run(tmp_path, "jobauto", "status", db.name).stdout
    assert "Running: 2" in out and "  - Waiting: 2" in out
    assert f"worker 1 {socket.gethostname()}:{p.pid}" in out
    watch = subprocess.Popen(["progress_viewer", db.name, "--watch", "--interval", "0.2"],
                             cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    watch.terminate()
    text, _ = watch.communicate(timeout=10)
    assert text.count("Pending: 2") >= 2
    p.terminate()
    p.wait(timeout=20)


