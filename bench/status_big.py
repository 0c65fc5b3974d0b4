"""`jobauto status` on a 100,000-job table and a 100,000-job run: the real CLI, wall time.

Both campaigns have the same shape and the same mix of states: 20,000 chains of 5 jobs (job k of
a chain needs job k-1), and per chain, by its number i:

- i % 10 in 0..5 (60%): all 5 done;
- i % 10 == 6 (10%): 2 done, the 3rd running when i % 40 == 6 (500 jobs) else ready, 2 waiting;
- i % 10 == 7 (10%): 1 done, the 2nd in error, the 3 after it blocked (2,000 errors, 6,000 blocked);
- i % 10 in 8, 9 (20%): untouched (1 ready, 4 waiting).

That is done 66,000, running 500, ready 5,500, waiting 20,000, blocked 6,000, error 2,000. Finish
times are spread over the last 10 hours (so some fall in the 15-minute throughput window), run
times 5 to 30 minutes, errors carry a two-line message.

(a) table: the CSV is written and imported with `jobauto import` (the real command), then the
    states are set with sqlite3 in one transaction, as workers would have left them: done and
    error rows get started_at, finished_at, elapsed_s, attempts, exit_code (and error); running
    rows get started_at, attempts and a worker among 50 registered alive workers of 10 slots.
(b) run: LDIR/DATE/.jobauto/state.db written with jobauto.store.Store and jobauto.core.model.Job, as
    jobmon would have left it (names m{i}/qsub.{k}, deps m{i}/qsub.finished.{k-1}, relative to
    the run directory as the store keeps them; submitted,
    first-seen-running, finished/failed times, scheduler ids, verdicts, markers as evidence).

Timed, each --repeat times (median, min, max of the wall clock of the whole process, stdout to a
pipe; and the median of its CPU time, user + sys, steadier on a shared machine):
`jobauto status TARGET`, `jobauto status TARGET --json`, and two baselines in the same run:
`python -c "import jobauto"` (interpreter and package start-up) and `python -c` opening the
store with sqlite3 and counting its rows by state (the least a status could do).

    python bench/status_big.py [--jobs 100000] [--repeat 5] [--dir DIR] [--profile]

--profile also prints the top of a cProfile of gather + render_text for each target.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobauto.core.model import Job, JobState  # noqa: E402
from jobauto.store import Store  # noqa: E402

CHAIN = 5
NOW = time.time()
TARGET_MS = 1000.0


def plan(n_chains: int) -> list[list[str]]:
    """The stored state of every job, chain by chain ('pending' for ready, waiting, blocked)."""
    out = []
    for i in range(n_chains):
        r = i % 10
        if r <= 5:
            s = ["done"] * 5
        elif r == 6:
            s = ["done", "done", "running" if i % 40 == 6 else "pending", "pending", "pending"]
        elif r == 7:
            s = ["done", "error", "pending", "pending", "pending"]
        else:
            s = ["pending"] * 5
        out.append(s[:CHAIN])
    return out


def expected(n_chains: int) -> dict[str, int]:
    c = {"done": 0, "running": 0, "ready": 0, "waiting": 0, "blocked": 0, "error": 0}
    for states in plan(n_chains):
        bad = False
        prev_done = True
        for s in states:
            if s != "pending":
                c[s] += 1
            elif bad:
                c["blocked"] += 1
            else:
                c["ready" if prev_done else "waiting"] += 1
            bad = bad or s == "error"
            prev_done = s == "done"
    return c


def times(rnd: random.Random) -> tuple[float, float, float]:
    """(started, finished, elapsed) of a finished job: within the last 10 hours."""
    end = NOW - rnd.uniform(0, 36000)
    elapsed = rnd.uniform(300, 1800)
    return end - elapsed, end, elapsed


# -- (a) a table ---------------------------------------------------------------------------------
def build_table(d: Path, n_chains: int) -> tuple[Path, float]:
    csv = d / "big.csv"
    with csv.open("w") as f:
        f.write("JOBSCHEDULER_JOB_ID,material,step,JOBSCHEDULER_ESTIMATE_TIME,"
                "JOBSCHEDULER_DEPENDS_ON\n")
        for i in range(n_chains):
            for k in range(CHAIN):
                f.write(f"c{i}_{k},m{i},{k},0.25,{f'c{i}_{k - 1}' if k else ''}\n")
    t = time.perf_counter()
    r = subprocess.run([str(Path(sys.executable).parent / "jobauto") if (
        Path(sys.executable).parent / "jobauto").exists() else "jobauto", "import", str(csv)],
        capture_output=True, text=True)
    took = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"jobauto import failed: {r.stderr}")
    db = d / "big.db"
    rnd = random.Random(1)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("BEGIN")
    workers = 50
    con.executemany("INSERT INTO workers(id, host, host_key, pid, beat_s, state, parallel, "
                    "started_at, label) VALUES(?, ?, ?, ?, 30, 'alive', 10, ?, ?)",
                    [(w, f"node{w:03d}", f"node{w:03d}-boot", 10000 + w, NOW - 40000,
                      f"array 4711.{w}") for w in range(1, workers + 1)])
    done, running, errors = [], [], []
    for i, states in enumerate(plan(n_chains)):
        for k, s in enumerate(states):
            ident = f"c{i}_{k}"
            if s == "done":
                done.append((*times(rnd), ident))
            elif s == "error":
                st, en, el = times(rnd)
                errors.append((st, en, el, f"Traceback ...\nexit 1: lmf diverged in m{i} step {k}",
                               ident))
            elif s == "running":
                running.append((1 + len(running) % workers, NOW - rnd.uniform(0, 1800), ident))
    con.executemany("UPDATE jobs SET state='done', attempts=1, exit_code=0, started_at=?, "
                    "finished_at=?, elapsed_s=? WHERE id=?", done)
    con.executemany("UPDATE jobs SET state='error', attempts=1, exit_code=1, started_at=?, "
                    "finished_at=?, elapsed_s=?, error=? WHERE id=?", errors)
    con.executemany("UPDATE jobs SET state='running', attempts=1, worker=?, started_at=? "
                    "WHERE id=?", running)
    con.execute("COMMIT")
    con.close()
    return db, took


# -- (b) a run -----------------------------------------------------------------------------------
def build_run(d: Path, n_chains: int) -> Path:
    run = d / "foobar" / "20261121-100000"
    run.mkdir(parents=True)
    rnd = random.Random(2)
    jobs = []
    seq = 0
    for i, states in enumerate(plan(n_chains)):
        for k, s in enumerate(states):
            seq += 1
            name = f"m{i}/qsub.{k}"
            job = Job(seq, name, JobState(s), (f"m{i}/qsub.finished.{k - 1}",) if k else (),
                      estimate_h=0.25)
            if s in ("done", "error", "running"):
                job.sched_id = str(100000 + seq)
                job.token = f"ja{seq}_1"
                job.attempts = 1
            if s in ("done", "error"):
                st, en, _ = times(rnd)
                job.intent_at = job.started_at = st - rnd.uniform(1, 120)
                job.running_at = st
                if s == "done":
                    job.finished_at = en
                    job.verdict, job.exit_code = "done", 0
                    job.evidence = f"marker m{i}/qsub.finished.{k}"
                else:
                    job.failed_at = job.finished_at = en
                    job.verdict, job.exit_code = "failed", 1
                    job.evidence = f"marker m{i}/qsub.failed.{k}: 1"
                    job.reason = f"failed: exited with code 1 ({job.evidence})"
            elif s == "running":
                job.intent_at = job.started_at = NOW - rnd.uniform(0, 1800)
                job.running_at = job.started_at + 30 if seq % 3 else None   # some still queued
            jobs.append(job)
    store = Store(run / ".jobauto" / "state.db")
    with store.transaction():
        store.save_jobs(jobs)
        store.set_meta("created", str(len(jobs)))   # the creation record jobmon writes last
    store.close()
    return run


# -- timing --------------------------------------------------------------------------------------
CPU: dict[int, list[float]] = {}   # id(wall list) -> CPU ms of the same runs


def wall(argv: list[str], repeat: int) -> list[float]:
    """Wall ms of each run; the process's CPU ms (user + sys) kept in CPU: steadier when other
    work shares the machine."""
    out, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        r = subprocess.run(argv, capture_output=True, text=True)
        out.append((time.perf_counter() - t) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
        if r.returncode != 0:
            sys.exit(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr}")
    CPU[id(out)] = cpu
    return out


COUNT_ROWS = ("import sqlite3, sys; db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', "
              "uri=True); print(dict(db.execute('SELECT state, COUNT(*) FROM jobs GROUP BY state')))")


def profile(target: Path) -> None:
    import cProfile
    import pstats

    from jobauto.view.campaign import gather
    from jobauto.view.status import render_text
    pr = cProfile.Profile()
    pr.enable()
    render_text(gather(target))
    pr.disable()
    pstats.Stats(pr).sort_stats("cumulative").print_stats(18)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, help="where to build (default: a temporary directory)")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    # the console script next to this python (not a pyenv shim, which adds ~0.1 s of bash)
    exe = Path(sys.executable).parent / "jobauto"
    exe_s = str(exe) if exe.exists() else shutil.which("jobauto")
    if exe_s is None:
        sys.exit("jobauto is not installed (pip install -e .)")
    n_chains = args.jobs // CHAIN
    base = Path(tempfile.mkdtemp(prefix="status-big-", dir=args.dir))
    try:
        t = time.perf_counter()
        db, import_s = build_table(base, n_chains)
        table_s = time.perf_counter() - t
        t = time.perf_counter()
        run = build_run(base, n_chains)
        run_s = time.perf_counter() - t
        want = expected(n_chains)
        print(f"jobs {n_chains * CHAIN:,} ({n_chains:,} chains of {CHAIN}); expected counts {want}")
        print(f"built: table {table_s:.1f} s (jobauto import {import_s:.1f} s), run {run_s:.1f} s; "
              f"load {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}, "
              f"sqlite {sqlite3.sqlite_version}")
        py = sys.executable
        rows = [("python -c 'import jobauto'", wall([py, "-c", "import jobauto"], args.repeat),
                 None)]
        for label, target, store in (("table", db, db), ("run", run, run / ".jobauto/state.db")):
            r = subprocess.run([exe_s, "status", str(target), "--json"], capture_output=True,
                               text=True)
            got = json.loads(r.stdout)["counts"]
            if {k: got[k] for k in want} != want:
                sys.exit(f"{label}: status counts {got} != expected {want}")
            count = wall([py, "-c", COUNT_ROWS, str(store)], args.repeat)
            rows.append((f"{label}: python+sqlite3 count by state", count, None))
            rows.append((f"{label}: jobauto status", wall([exe_s, "status", str(target)],
                                                          args.repeat), count))
            rows.append((f"{label}: jobauto status --json",
                         wall([exe_s, "status", str(target), "--json"], args.repeat), count))
        start = statistics.median(rows[0][1])
        print(f"\n{'command':42} {'median':>9} {'min':>9} {'max':>9} {'CPU med':>9} "
              f"{'x import':>9} {'x count':>8}  target (wall median)")
        for label, ms, ref in rows:
            med = statistics.median(ms)
            vs = f"{med / statistics.median(ref):7.1f}x" if ref else f"{'':8}"
            goal = ("" if ref is None else "ok (< 1 s)" if med < TARGET_MS else "OVER 1 s")
            print(f"{label:42} {med:7.0f}ms {min(ms):7.0f}ms {max(ms):7.0f}ms "
                  f"{statistics.median(CPU[id(ms)]):7.0f}ms {med / start:8.1f}x {vs}  {goal}")
        print(f"\n(median of {args.repeat}; wall time of the whole process, stdout to a pipe; "
              f"load {os.getloadavg()[0]:.2f})")
        if args.profile:
            for target in (db, run):
                print(f"\n== cProfile: gather + render_text of {target.name}")
                profile(target)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
