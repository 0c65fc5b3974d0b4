"""A `jobauto render` sweep of N trivial jobs through jobmon with arrays, against one bare array
submission of the same jobs on the cluster host; Grid Engine and Slurm.

Needs the test cluster (tests/cluster/up.sh sshd sge slurm); leaves its settings alone (4
slots). Per scheduler and repeat, in turn:

- bare:    the rendered tree is copied to the cluster first (not timed); then one ssh login runs
           one `qsub -t 1-N` / `sbatch --array=1-N` of a script whose task K runs row K's
           `qsub.0` in its directory and writes its `qsub.finished.0`. Done when all N markers
           exist on the cluster (the cluster's disk is this machine's): the scheduler's own pace.
- jobauto: `jobmon --maxqsub=N --interval=I` on the rendered tree (push, arrays, polling,
           fetch of markers and output), done when jobmon exits 0. Every scheduler command it
           runs goes through logging shims first on PATH (--scheduler-bin): submit, queue,
           accounting and the rest are counted per program.

I (--interval) defaults to the bare run's median / 15, rounded to 0.5 s: the choice a user makes
for a sweep of known length (a few queue polls per expected run, one poll's latency at the
end). Medians over --repeat runs, ratio against bare. What it made under ~/jobauto-bench/arrays-OWN-*
and /tmp/jobauto-bench/arrays-OWN-* is removed at the end (OWN: this run's own tag).

    python bench/arrays.py [--jobs 1000] [--repeat 3] [--schedulers sge slurm] [--interval S]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import time
import uuid
from pathlib import Path

from testcluster import CFG, HOST, LOCAL, SHIMMED, remove_own, shims, ssh

OWN = uuid.uuid4().hex[:4]   # this run's directories (arrays-OWN-*), the only ones it removes
TEMPLATE = "#!/bin/sh\necho __x_q__ > out.txt\n"
SUBMIT = {"sge": "qsub -terse -cwd -S /bin/sh -o /dev/null -e /dev/null -t 1-{n} bare.sh",
          "slurm": "sbatch --parsable -o /dev/null -e /dev/null --array=1-{n} bare.sh"}
BARE = """#!/bin/sh
d=$(sed -n "${SGE_TASK_ID:-$SLURM_ARRAY_TASK_ID}p" rows)
cd "$d" && sh ./qsub.0; echo $? > qsub.finished.0
"""


def render(root: Path, n: int) -> None:
    """A sweep of n rows rendered as a user does: ROOT/init/rK/qsub.0."""
    root.mkdir(parents=True)
    with (root / "sweep.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["JOBSCHEDULER_JOB_ID", "x"])
        w.writerows([f"r{k}", str(k)] for k in range(n))
    (root / "job.sh").write_text(TEMPLATE)
    subprocess.run(["jobauto", "render", "sweep.csv", "--template", "job.sh", "--out", "init"],
                   cwd=root, check=True, capture_output=True)


def wait_markers(path: Path, n: int, t0: float, timeout_s: float = 3600) -> float:
    while sum(1 for _ in path.glob("r*/qsub.finished.0")) < n:
        if time.time() - t0 > timeout_s:
            raise RuntimeError(f"not done after {timeout_s:.0f} s: {path}")
        time.sleep(0.2)
    return time.time() - t0


def bare(sched: str, n: int, home: Path) -> float:
    tag = f"arrays-{OWN}-bare-{uuid.uuid4().hex[:6]}"
    root = LOCAL / tag
    render(root, n)
    (root / "init" / "rows").write_text("".join(f"r{k}\n" for k in range(n)))
    (root / "init" / "bare.sh").write_text(BARE)
    rel = f"jobauto-bench/{tag}"
    ssh(f"mkdir -p {rel}")
    subprocess.run(["rsync", "-a", "-e", f"ssh -F {CFG}", f"{root}/init/", f"{HOST}:{rel}/"], check=True)
    t0 = time.time()
    ssh(f"cd {rel} && {SUBMIT[sched].format(n=n)}")
    return wait_markers(home / rel, n, t0)


def jobauto(sched: str, n: int, interval: float, home: Path) -> tuple[float, dict[str, int], int]:
    tag = f"arrays-{OWN}-ja-{uuid.uuid4().hex[:6]}"
    ldir = LOCAL / tag
    render(ldir, n)
    rel = f"jobauto-bench/{tag}"
    shim = shims(rel)
    t0 = time.time()
    p = subprocess.run(["jobmon", f"--ldir={ldir}", f"--rdir={rel}", f"--remote={HOST}",
                        f"--ssh-config={CFG}", f"--maxqsub={n}", f"--interval={interval}",
                        "--datedir=r", f"--scheduler={sched}", f"--scheduler-bin={home / shim}"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=3600)
    done = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError(f"jobmon exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    calls = (home / shim / "calls.log").read_text().split()
    journal = (home / rel / "r" / ".jobauto" / "submit.log").read_text().splitlines()
    return done, {c: calls.count(c) for c in SHIMMED if c in calls}, \
        sum(1 for ln in journal if ln.startswith("S\t"))


def wait_queue_empty(sched: str) -> None:
    cmd = {"sge": "qstat -u jobauto", "slurm": "squeue -h -u jobauto"}[sched]
    deadline = time.time() + 600
    while ssh(cmd).strip() and time.time() < deadline:
        time.sleep(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--schedulers", nargs="+", default=["sge", "slurm"], choices=["sge", "slurm"])
    ap.add_argument("--interval", type=float, help="jobmon's --interval (default: bare median / 15)")
    a = ap.parse_args()
    home = Path(ssh("echo $HOME").strip())
    rows = []
    try:
        for sched in a.schedulers:
            b: list[float] = []
            for _ in range(a.repeat):
                wait_queue_empty(sched)
                b.append(bare(sched, a.jobs, home))
                print(f"  {sched} bare     all done {b[-1]:6.1f} s", flush=True)
            interval = a.interval or max(0.5, round(statistics.median(b) / 15 * 2) / 2)
            j: list[tuple[float, dict[str, int], int]] = []
            for _ in range(a.repeat):
                wait_queue_empty(sched)
                j.append(jobauto(sched, a.jobs, interval, home))
                print(f"  {sched} jobauto  all done {j[-1][0]:6.1f} s  commands {j[-1][1]}"
                      f"  submissions {j[-1][2]}", flush=True)
            bm, jm = statistics.median(b), statistics.median(r[0] for r in j)
            cmds = statistics.median(sum(r[1].values()) for r in j)
            mid = sorted(j, key=lambda r: sum(r[1].values()))[len(j) // 2][1]
            rows.append(f"{sched:6} {a.jobs:5}  bare {bm:6.1f} s  jobauto {jm:6.1f} s ({jm / bm:4.2f}x)  "
                        f"interval {interval:g} s  scheduler commands {cmds:g} "
                        f"({' + '.join(f'{v} {k}' for k, v in mid.items())})")
    finally:
        remove_own(f"arrays-{OWN}-")
    print(f"\n{a.jobs} jobs, median of {a.repeat}:")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
