"""Claim throughput of a job table: 1, 4 and 16 concurrent claimers on a 10,000-job table.

A claimer is a process with its own TableStore that loops on `claim(..., finished=previous)`:
one BEGIN IMMEDIATE transaction per job that records the previous job as done and claims the
next ready one, exactly the transaction a `jobauto run` slot makes between two jobs (the job
itself is not run: this is the store's ceiling, not a worker's). A claim that finds nothing ready
while other claimers still hold jobs (the DAG's tail) is retried after 1 ms and counted as empty.

Two tables of --jobs jobs, imported through `jobauto import`'s own code from a generated CSV:

- dag: groups of 10, seven independent jobs (priority 0-4, seeded random), one fan-in needing
  all seven, then a chain of two after it; the fan-ins and chains have priority 5, so a claim
  walks past the waiting ones before it finds a ready job (the claim query's worst habit);
- flat: the same priorities, no dependencies.

Every (directory, shape, claimers) runs --runs times on a fresh copy of the imported table, in
rounds (each claimer count once per round, so other work on the machine spreads over all);
printed: claims/s as total claims / wall time from the first claim to the last (median, min,
max of the runs), the ratio against 1 claimer on the same directory and shape, the median and
99th percentile of one claim transaction, the claimers' CPU time per claim, empty claims, and
the load average (this machine is shared: a high load marks a disturbed figure).

Directories: `--dir LABEL=PATH`, repeatable; by default a local disk (/var/tmp) and a tmpfs
(/dev/shm). NFS is measured only when given (`--dir nfs=/mnt/jobauto-nfs`, an export mounted
over loopback: bench/README.md); without it the output says why it was not measured.

    python bench/table_claims.py [--jobs 10000] [--claimers 1 4 16] [--runs 3]
                                 [--shapes dag flat] [--dir disk=/var/tmp] [--dir nfs=/mnt/x]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobauto.core.model import JobState  # noqa: E402
from jobauto.store import TableStore  # noqa: E402
from jobauto.store.sqlite import filesystem  # noqa: E402
from jobauto.table.ops import import_csv  # noqa: E402

GROUP = 10
ROOTS = 7


def write_csv(path: Path, n: int, shape: str, seed: int = 1) -> None:
    """The table's CSV: id, one parameter, priority, dependencies (dag only)."""
    rnd = random.Random(seed)
    lines = ["JOBSCHEDULER_JOB_ID,x,JOBSCHEDULER_PRIORITY,JOBSCHEDULER_DEPENDS_ON"]
    for i in range(n):
        g, k = divmod(i, GROUP)
        if k < ROOTS or shape == "flat":
            prio, deps = rnd.randint(0, 4), ""
        elif k == ROOTS:
            prio, deps = 5, " ".join(f"g{g}-{r}" for r in range(ROOTS) if g * GROUP + r < n)
        else:
            prio, deps = 5, f"g{g}-{k - 1}"
        lines.append(f"g{g}-{k},{i},{prio},{deps}")
    path.write_text("\n".join(lines) + "\n")


def claimer(db: str, barrier: mp.synchronize.Barrier, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Claim and finish jobs until nothing is pending; report claims, empty claims, start, end,
    latencies and CPU seconds."""
    store = TableStore(Path(db))
    wid = store.register(socket.gethostname(), "bench", os.getpid(), 30.0, 1, "bench", time.time())
    finished: tuple[int, JobState, int | None, float, str] | None = None
    claims = empty = 0
    lat: list[float] = []
    barrier.wait()
    start, cpu0 = time.monotonic(), time.process_time()
    while True:
        t = time.monotonic()
        job = store.claim(wid, time.time(), None, finished)
        lat.append(time.monotonic() - t)
        finished = None
        if job is None:
            if not store.counts().get("pending"):
                break                      # the rest is done or held by other claimers
            empty += 1
            time.sleep(0.001)
            continue
        claims += 1
        finished = (job.row, JobState.DONE, 0, 0.0, "")
    end, cpu = time.monotonic(), time.process_time() - cpu0
    store.close()
    out.put((claims, empty, start, end, lat, cpu))


@dataclass
class Config:
    label: str
    fs: str
    shape: str
    claimers: int
    rates: list[float] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)     # claimers' CPU seconds per claim
    load: list[float] = field(default_factory=list)    # 1-minute load average after each run


def run_once(pristine: Path, work: Path, n: int, jobs: int) -> tuple[float, int, list[float], float]:
    db = work / "run.db"
    for old in (db, work / "run.db-journal"):
        if old.exists():
            old.unlink()
    shutil.copyfile(pristine, db)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(n)
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=claimer, args=(str(db), barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"a claimer exited with {p.exitcode}")
    store = TableStore(db, readonly=True)
    counts = store.counts()
    store.close()
    claims = sum(r[0] for r in results)
    if claims != jobs or counts != {"done": jobs}:
        raise RuntimeError(f"{claims} claims, table {counts}: expected {jobs} done")
    wall = max(r[3] for r in results) - min(r[2] for r in results)
    cpu = sum(r[5] for r in results) / claims
    return claims / wall, sum(r[1] for r in results), [x for r in results for x in r[4]], cpu


def nfs_note(labels: list[str]) -> str:
    if "nfs" in labels:
        return ""
    try:
        kinds = Path("/proc/filesystems").read_text().split()
    except OSError:
        kinds = []
    if "nfs" not in kinds and "nfs4" not in kinds:
        return ("nfs: not measured: this kernel has no NFS client ('nfs' is not in "
                "/proc/filesystems) and " + ("no NFS server ('nfsd' missing too)"
                                             if "nfsd" not in kinds else "a server only"))
    return "nfs: not measured: pass --dir nfs=MOUNTPOINT (an export mounted over loopback)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--claimers", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--shapes", nargs="+", choices=("dag", "flat"), default=["dag", "flat"])
    ap.add_argument("--dir", action="append", default=[], metavar="LABEL=PATH",
                    help="where the table lives (repeatable; default disk=/var/tmp tmpfs=/dev/shm)")
    a = ap.parse_args()
    if a.runs < 3:
        ap.error("--runs must be at least 3 (the figure is a median)")
    dirs = [d.split("=", 1) for d in a.dir] or [["disk", "/var/tmp"], ["tmpfs", "/dev/shm"]]
    if any(len(d) != 2 for d in dirs):
        ap.error("--dir takes LABEL=PATH")
    print(f"{a.jobs} jobs, claimers {a.claimers}, median of {a.runs} runs; "
          f"{os.cpu_count()} CPUs, SQLite {__import__('sqlite3').sqlite_version}", flush=True)
    configs: list[Config] = []
    for label, base in dirs:
        work = Path(tempfile.mkdtemp(prefix="jobauto-claims-", dir=base))
        fs = filesystem(work / "x.db")
        try:
            for shape in a.shapes:
                csv, pristine = work / f"{shape}.csv", work / f"{shape}.db"
                write_csv(csv, a.jobs, shape)
                import_csv(csv, pristine)
                group = [Config(label, fs, shape, n) for n in a.claimers]
                for i in range(a.runs):     # rounds: every claimer count once per round
                    for c in group:
                        rate, empty, lat, cpu = run_once(pristine, work, c.claimers, a.jobs)
                        c.rates.append(rate)
                        c.empty.append(empty)
                        c.lat.extend(lat)
                        c.cpu.append(cpu)
                        c.load.append(os.getloadavg()[0])
                    print(f"  {label} {shape} round {i + 1}: " + ", ".join(
                        f"{c.claimers} claimer(s) {c.rates[-1]:.0f}/s" for c in group), flush=True)
                configs += group
        finally:
            shutil.rmtree(work, ignore_errors=True)
    report(configs)
    note = nfs_note([d[0] for d in dirs])
    if note:
        print(f"\n{note}")


def report(configs: list[Config]) -> None:
    print(f"\n{'dir':6} {'shape':5} {'claimers':>8} {'claims/s':>9} {'min':>7} {'max':>7} "
          f"{'vs 1':>6} {'claim p50':>10} {'p99':>9} {'CPU/claim':>10} {'empty':>6} {'load':>5}  "
          f"filesystem")
    base: dict[tuple[str, str], float] = {}
    for c in configs:
        med = statistics.median(c.rates)
        base.setdefault((c.label, c.shape), med)
        lat = sorted(c.lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(f"{c.label:6} {c.shape:5} {c.claimers:>8} {med:>9.0f} {min(c.rates):>7.0f} "
              f"{max(c.rates):>7.0f} {med / base[(c.label, c.shape)]:>5.2f}x "
              f"{statistics.median(lat) * 1000:>7.2f} ms {p99 * 1000:>6.1f} ms "
              f"{statistics.median(c.cpu) * 1000:>7.2f} ms {statistics.median(c.empty):>6.0f} "
              f"{max(c.load):>5.1f}  {c.fs}")
    print("\nclaim p50/p99: one claim transaction (lock wait included), all runs; CPU/claim: the "
          "claimers' CPU time per claim; empty: claims that found nothing ready (median per run); "
          "load: highest 1-minute load average seen after a run (other work on the machine).")

if __name__ == "__main__":
    main()
