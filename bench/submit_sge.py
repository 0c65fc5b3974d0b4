"""Submitting N ready jobs to Grid Engine over sshd: jobauto vs one ssh per job vs a bare loop.

Needs the test cluster (tests/cluster/up.sh sshd sge) and root (to widen all.q for the run).
Three ways, each repeated; medians are printed with ratios against the bare loop, which runs
`cd d && qsub -terse -cwd f` for every job on the cluster host itself and is the limit
(the scheduler's own rate):

- bare:     one ssh login that runs the qsub loop on the cluster
- per-job:  one `ssh host "cd d && qsub -terse -cwd f"` per job (what users write by hand)
- jobauto:  jobmon --maxqsub=N on a tree of N independent jobs

"submitted" is the time until every job was accepted; "all done" until every job's marker
exists. SSH logins are counted from the sshd log ("Accepted publickey").

    sudo python bench/submit_sge.py [--jobs 500] [--repeat 3] [--slots 50]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

CLUSTER = Path(os.environ.get("JOBAUTO_TEST_CLUSTER_DIR", "/tmp/jobauto-cluster"))
CFG, HOST = CLUSTER / "ssh_config", "testhost"
JOB = "#!/bin/bash\ntouch qsub.finished.0\n"


def ssh(cmd: str) -> str:
    return subprocess.run(["ssh", "-F", str(CFG), HOST, cmd], capture_output=True, text=True,
                          check=True, stdin=subprocess.DEVNULL).stdout


def logins() -> int:
    return len(re.findall(r"Accepted publickey", (CLUSTER / "sshd.log").read_text(errors="replace")))


def home() -> Path:
    return Path(ssh("echo $HOME").strip())


def make_tree(root: Path, n: int) -> None:
    for i in range(n):
        d = root / f"j{i}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "qsub.0").write_text(JOB)
        (d / "qsub.dependency.0").write_text("")


def wait_all_done(root: Path, n: int, t0: float) -> float:
    while sum(1 for _ in root.glob("j*/qsub.finished.0")) < n:
        time.sleep(0.2)
    return time.time() - t0


def wait_queue_empty() -> None:
    while ssh("qstat -u jobauto").strip():
        time.sleep(0.5)


def remote_tree(n: int, tag: str) -> tuple[str, Path]:
    rel = f"jobauto-bench/{tag}-{uuid.uuid4().hex[:6]}"
    tmp = Path("/tmp") / rel
    make_tree(tmp, n)
    ssh(f"mkdir -p {rel}")
    subprocess.run(["rsync", "-a", "-e", f"ssh -F {CFG}", f"{tmp}/", f"{HOST}:{rel}/"], check=True)
    return rel, home() / rel


def bare(n: int) -> tuple[float, float, int]:
    rel, path = remote_tree(n, "bare")
    before = logins()
    t0 = time.time()
    ssh(f"cd {rel} && for d in j*; do (cd $d && qsub -terse -cwd -o /dev/null -e /dev/null qsub.0 >/dev/null); done")
    sub = time.time() - t0
    done = wait_all_done(path, n, t0)
    return sub, done, logins() - before


def per_job(n: int) -> tuple[float, float, int]:
    rel, path = remote_tree(n, "perjob")
    before = logins()
    t0 = time.time()
    for i in range(n):
        ssh(f"cd {rel}/j{i} && qsub -terse -cwd -o /dev/null -e /dev/null qsub.0")
    sub = time.time() - t0
    done = wait_all_done(path, n, t0)
    return sub, done, logins() - before


def jobauto(n: int) -> tuple[float, float, int]:
    ldir = Path("/tmp/jobauto-bench") / f"ja-{uuid.uuid4().hex[:6]}"
    make_tree(ldir / "init", n)
    rel = f"jobauto-bench/ja-{ldir.name}"
    before = logins()
    t0 = time.time()
    p = subprocess.Popen(["jobmon", f"--ldir={ldir}", f"--rdir={rel}", f"--remote={HOST}",
                          f"--ssh-config={CFG}", f"--maxqsub={n}", "--interval=0.5", "--datedir=r",
                          "--scheduler=sge", "--qsub-args=-o /dev/null -e /dev/null",
                          "--fetch=nothing-to-fetch"], stdout=subprocess.PIPE, text=True)
    sub = None
    assert p.stdout is not None
    for line in p.stdout:
        m = re.match(r"done (\d+) running (\d+) ready (\d+)", line)
        if m and sub is None and int(m.group(1)) + int(m.group(2)) == n and int(m.group(3)) == 0:
            sub = time.time() - t0
    p.wait()
    done = time.time() - t0
    return sub or done, done, logins() - before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--slots", type=int, default=50)
    ap.add_argument("--skip-per-job", action="store_true", help="skip the slow one-ssh-per-job way")
    a = ap.parse_args()
    subprocess.run(["qconf", "-mattr", "queue", "slots", str(a.slots), "all.q"], capture_output=True, check=True)
    ways = {"bare": bare, "jobauto": jobauto} | ({} if a.skip_per_job else {"per-job": per_job})
    res: dict[str, list[tuple[float, float, int]]] = {k: [] for k in ways}
    try:
        for _ in range(a.repeat):
            for name, fn in ways.items():
                wait_queue_empty()
                res[name].append(fn(a.jobs))
                print(f"  {name:8} submitted {res[name][-1][0]:6.1f} s  all done {res[name][-1][1]:6.1f} s"
                      f"  ssh logins {res[name][-1][2]}", flush=True)
    finally:
        subprocess.run(["qconf", "-mattr", "queue", "slots", "4", "all.q"], capture_output=True)
    b_sub = statistics.median(r[0] for r in res["bare"])
    b_done = statistics.median(r[1] for r in res["bare"])
    print(f"\n{a.jobs} jobs, median of {a.repeat}:")
    for name, rs in res.items():
        sub, done = statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)
        print(f"{name:8} submitted {sub:6.1f} s ({sub / b_sub:4.2f}x bare)  all done {done:6.1f} s "
              f"({done / b_done:4.2f}x bare)  ssh logins {statistics.median(r[2] for r in rs):.0f}")


if __name__ == "__main__":
    sys.exit(main())
