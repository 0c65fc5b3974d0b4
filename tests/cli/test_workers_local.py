"""`jobauto workers --scheduler local`: the queue and stop commands it prints work as printed
(jobauto/table/arrays.py describe): ps lists the workers, kill ends them and their jobs return
to pending."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from helpers import import_table, jobauto, stub

TWO_SLOW_JOBS = "JOBSCHEDULER_JOB_ID,x\na,1\nb,2\n"


def alive(pid: int) -> bool:
    """Whether PID runs (a zombie, waiting for init to reap it, has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(what: str, cond: object, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def counts(db: Path) -> dict[str, int]:
    return json.loads(jobauto("status", str(db), "--json", check_rc=0).stdout)["counts"]  # type: ignore[no-any-return]


def test_the_printed_queue_and_stop_commands_work(tmp_path: Path) -> None:
    db = import_table(tmp_path, TWO_SLOW_JOBS)
    stub(tmp_path / "job.sh", 'echo "start $1" >> started\nexec sleep 300\n')
    r = jobauto("workers", "--scheduler", "local", "--db", str(db), "-n", "2", "--", "./job.sh",
                cwd=tmp_path, check_rc=0)
    pids = [int(p) for p in re.search(r"pids ([\d ]+)\n", r.stdout).group(1).split()]  # type: ignore[union-attr]
    said = dict(re.findall(r"^  (queue|stop): +(.*?)(?:   \(.*)?$", r.stdout, flags=re.M))
    assert said["stop"] == "kill " + " ".join(map(str, pids)), r.stdout
    assert said["queue"].startswith("ps ") and ",".join(map(str, pids)) in said["queue"]
    wait_for("both jobs to run", lambda: counts(db)["running"] == 2)

    queue = subprocess.run(said["queue"], shell=True, capture_output=True, text=True, timeout=30)
    assert queue.returncode == 0, queue.stderr
    listed = {int(line.split()[0]) for line in queue.stdout.splitlines()[1:]}
    assert listed == set(pids), queue.stdout

    stop = subprocess.run(said["stop"], shell=True, capture_output=True, text=True, timeout=30)
    assert (stop.returncode, stop.stderr) == (0, "")
    wait_for("the workers to end", lambda: not any(alive(p) for p in pids))
    after = counts(db)
    assert (after["running"], after["pending"]) == (0, 2), after   # the jobs return to pending
    sleeps = subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True, text=True)
    assert not [p for p in sleeps.stdout.split() if _in(tmp_path, int(p))]   # the jobs ended too
    assert (tmp_path / "started").read_text().count("start") == 2
    gone = subprocess.run(said["queue"], shell=True, capture_output=True, text=True, timeout=30)
    # ended (a zombie until init reaps it, which some containers' init does late)
    assert [ln for ln in gone.stdout.splitlines()[1:] if "<defunct>" not in ln] == []


def _in(directory: Path, pid: int) -> bool:
    """Whether PID runs in DIRECTORY (a job of this test, not another test's sleep)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == directory and alive(pid)
    except OSError:
        return False
