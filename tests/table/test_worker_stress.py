"""The table worker (jobauto/table/worker.py) under stress: 16 workers (4 processes x --parallel 4)
on a 2,000-job DAG, killed -9 at random and restarted: every job's command runs to completion
exactly once, no job is lost, no dependency is violated, and the jobs behind a failure are
reported blocked."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import pytest

from jobauto.store import TableStore

pytestmark = pytest.mark.slow

N = 2000
FAILING = "j40"

# "start ID PID" then "end ID PID" lines; a single short write with O_APPEND is atomic, and the
# order of lines in the file is the order in which they happened.
RECORD = """\
#!/bin/sh
echo "start $1 $$" >> runs.log
i=0; while [ $i -lt "$2" ]; do i=$((i+1)); done
[ "$1" = "FAILING" ] && exit 5
echo "end $1 $$" >> runs.log
""".replace("FAILING", FAILING)


def make_table(tmp_path: Path, rng: random.Random) -> dict[str, list[str]]:
    deps: dict[str, list[str]] = {}
    lines = ["JOBSCHEDULER_JOB_ID,id,spin,JOBSCHEDULER_PRIORITY,JOBSCHEDULER_DEPENDS_ON"]
    for i in range(N):
        ident = f"j{i}"
        d = sorted({f"j{rng.randrange(i)}" for _ in range(rng.choice((0, 1, 1, 2, 3)))} if i else set())
        deps[ident] = d
        lines.append(f"{ident},{ident},{rng.randrange(0, 3000)},{rng.randrange(3)},{' '.join(d)}")
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "rec.sh").write_text(RECORD)
    r = subprocess.run(["jobauto", "import", "big.csv"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return deps


def start_worker(tmp_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["jobauto", "run", "big.db", "sh rec.sh", "--parallel", "4", "--quiet",
                             "--heartbeat", "1"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_kill_9_at_random_every_job_once(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    deps = make_table(tmp_path, rng)
    workers = [start_worker(tmp_path) for _ in range(4)]
    kills = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.3, 1.2))
        live = [w for w in workers if w.poll() is None]
        if not live:
            break
        if kills < 12:
            victim = rng.choice(live)
            victim.kill()
            victim.wait()
            kills += 1
            workers.remove(victim)
            workers.append(start_worker(tmp_path))
    for w in workers:
        w.wait(timeout=120)
    # one more worker after the last kill: it recovers whatever the last victim held
    last = subprocess.run(["jobauto", "run", "big.db", "sh rec.sh", "--parallel", "4", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert last.returncode == 1, last.stderr   # one job fails on purpose

    assert kills >= 5
    log = (tmp_path / "runs.log").read_text().splitlines()
    ends: dict[str, int] = {}
    starts: dict[str, list[int]] = {}
    for pos, line in enumerate(log):
        kind, ident, _pid = line.split()
        if kind == "end":
            assert ident not in ends, f"{ident} ran to completion twice"
            ends[ident] = pos
        else:
            starts.setdefault(ident, []).append(pos)

    # who is blocked by the failing job
    blocked: set[str] = set()
    for i in range(N):
        ident = f"j{i}"
        if any(d == FAILING or d in blocked for d in deps[ident]):
            blocked.add(ident)
    jobs = {j.id: j for j in TableStore(tmp_path / "big.db").jobs()}
    for ident, job in jobs.items():
        if ident == FAILING:
            assert job.state.value == "error" and job.exit_code == 5
        elif ident in blocked:
            assert job.state.value == "pending" and ident not in starts, ident
        else:
            assert job.state.value == "done", (ident, job)
            assert ident in ends, f"{ident} is done but its command never completed"
    # no dependency violated: every start of a job comes after the end of each of its deps
    for ident, poss in starts.items():
        for d in deps[ident]:
            assert d in ends and all(p > ends[d] for p in poss), (ident, d)
    assert len(ends) == N - 1 - len(blocked)
    assert blocked and f"{len(blocked)} blocked (by {FAILING})" in last.stderr, last.stderr
    restarted = sum(1 for p in starts.values() if len(p) > 1)
    print(f"\n{kills} kills, {restarted} jobs restarted after their worker died, "
          f"{len(blocked)} blocked")
