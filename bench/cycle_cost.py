"""Steady-state cost of one jobmon cycle, and peak memory, at 1k / 10k / 100k jobs.

Each size runs in its own process (so peak RSS is its own) against the in-memory fake cluster:
what is measured is jobauto's CPU per tick (process time), not a scheduler's. Each cycle, K
running jobs finish and K more are submitted. Two shapes: chains (10 steps per directory) and
fan-outs (every job depends on one root). Prints medians over the measured cycles and the ratio
of each size's cost to the 1k run of the same shape (target: <= 0.2 s CPU per cycle and <= 300 MB
at 100k, growing with what changed rather than with the total).

    python bench/cycle_cost.py [--sizes 1000 10000 100000] [--cycles 15] [--finish 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(root: Path, n: int, shape: str) -> list:  # type: ignore[type-arg]
    from jobauto.run.tree import JobSpec
    specs = []
    per_dir = 10 if shape == "chain" else 100
    for i in range(n):
        d, k = divmod(i, per_dir)
        name = f"m{d}/qsub.{k}"
        if shape == "chain":
            deps = (f"m{d}/qsub.finished.{k - 1}",) if k else ()
        else:
            deps = ("m0/qsub.finished.0",) if i else ()
        (root / f"m{d}").mkdir(parents=True, exist_ok=True)
        (root / name).write_text("#!/bin/sh\n")
        # each line relative to the job's own directory, as parse_dependency reads it
        (root / f"m{d}/qsub.dependency.{k}").write_text(
            "".join((x.split("/", 1)[1] if x.startswith(f"m{d}/") else "../" + x) + "\n" for x in deps))
        specs.append(JobSpec(name, deps))
    return specs


def one(n: int, shape: str, cycles: int, finish: int) -> dict:  # type: ignore[type-arg]
    from jobauto.cluster.host import Host
    from jobauto.cluster.schedulers.fake import FakeAdapter, FakeCluster
    from jobauto.cluster.transport.fake import FakeTransport
    from jobauto.run.cycle import Monitor, Settings
    from jobauto.run.mirror import Remote
    from jobauto.run.sync import tree_rows
    from jobauto.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="jobauto-bench-"))
    run = tmp / "run"
    specs = build(run, n, shape)
    store = Store(run / ".jobauto" / "state.db")
    Monitor.create(store, specs, run)
    cluster = FakeCluster()
    remote = Remote(Host(FakeTransport(cluster), FakeAdapter()), "/r/run")
    t0 = time.process_time()
    m = Monitor(run, store, remote, Settings(maxqsub=200))
    load_s = time.process_time() - t0
    rows = tree_rows(run)   # as jobmon's first push records what it sent (run/opener.py)
    cluster.load_tree(run, "/r/run")
    remote.stamp(0)
    with store.transaction():
        store.record_synced(rows, "pushed", 0.0)
    now = 1000.0
    costs = []
    for c in range(cycles + 3):
        for j in cluster.running()[:finish]:
            cluster.finish(j)
        now += 60
        t = time.process_time()
        r = m.tick(now)
        if c >= 3:  # the first cycles fill the queue; measure the steady state
            costs.append(time.process_time() - t)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n": n, "shape": shape, "median_s": statistics.median(costs), "max_s": max(costs),
            "load_s": load_s, "rss_mb": rss_mb, "done": r.counts["done"], "running": r.counts["running"],
            "errors": r.counts["error"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--cycles", type=int, default=15)
    ap.add_argument("--finish", type=int, default=10)
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(int(a.one[0]), a.one[1], a.cycles, a.finish)))
        return
    print(f"{'shape':7} {'jobs':>7} {'cycle CPU median':>17} {'max':>8} {'ratio vs 1k':>11} "
          f"{'load':>7} {'peak RSS':>9}")
    for shape in ("chain", "fanout"):
        base = None
        for n in a.sizes:
            out = subprocess.run([sys.executable, __file__, "--one", str(n), shape, "--cycles",
                                  str(a.cycles), "--finish", str(a.finish)], capture_output=True,
                                 text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
            r = json.loads(out.stdout)
            base = base or r["median_s"]
            print(f"{shape:7} {n:>7} {r['median_s'] * 1000:>14.1f} ms {r['max_s'] * 1000:>5.0f} ms "
                  f"{r['median_s'] / base:>10.2f}x {r['load_s']:>6.2f}s {r['rss_mb']:>6.0f} MB", flush=True)


if __name__ == "__main__":
    main()
