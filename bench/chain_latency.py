"""Chains of short jobs through jobmon --ahead, against a bare native-dependency loop on the
cluster host in the same run; Grid Engine and Slurm (issue 15, "How it is checked").

Needs the test cluster (tests/cluster/up.sh sshd sge slurm); leaves its settings alone (4
slots). The tree: P pipelines (--pipelines, 100) of S steps (--steps, 5); step i of pipeline p
is `pNNN/qsub.i` with `qsub.dependency.i` naming `qsub.finished.{i-1}` (step 0: empty), as
tests/helpers.py `make_job` writes them. Each script appends `+ EPOCH.NS pNNN/i` to the tree's
`stamps` file (an absolute path on the cluster), sleeps 1 s, appends `- EPOCH.NS pNNN/i` and
touches its own `qsub.finished.i`. Per scheduler and repeat, the sides take turns:

- bare:    the tree is copied to the cluster first (not timed); then one ssh login runs a shell
           loop that submits each pipeline as a native chain (`qsub -terse -hold_jid ID` /
           `sbatch --parsable --dependency=afterok:ID`), keeping at most Q of its jobs in the
           queue (a whole pipeline when there is room; the queue counted once a second while
           there is none). Done when all P*S markers exist (the cluster's home is this machine's).
           `--bare-order step` (also run by default) submits step by step instead (step 0 of
           every pipeline, then step 1, ...): the order in which jobmon's cycle hands them over.
- jobauto: `jobmon --maxqsub=M --ahead=A` with jobmon's default `--interval` (60 s; not
           passed unless --interval is given) on the same tree, until it exits 0. With M = 100
           every first step goes in the first cycle; with A = P*(S-1) = 400 every later step
           goes ahead in the same batch, pipeline by pipeline (run/ahead.py `chains`: depth
           first, each step after the id its predecessor got in the batch). Q = M + A is the
           bare loop's queue footprint.
           `--max-scheduler-commands-per-minute` is raised to 2*P*S + 100 (printed): submissions
           get half of it, and the default 60 would let 30 of the 500 submissions go a minute.
           Its scheduler commands are counted by logging shims first on PATH (--scheduler-bin,
           as bench/arrays.py).

Figures, from the stamps (the cluster's clock, which is this machine's), median of --repeat:
- all done: start of the side (the ssh login / jobmon's start, which includes its push) until
  the LAST job's end stamp: the cluster's work is done. Ratio jobauto/bare (target <= 1.05).
- jobmon exit: until jobmon exits 0; adds up to one --interval to see the last marker, and the
  end-of-run fetch. Ratio against bare's all done, shown as measured.
- edge: for each pipeline and step i >= 1, start(i) - end(i-1); median over all edges, ratio
  jobauto/bare (target <= 1.2). On 4 slots most of an edge is the wait for a slot, so the order
  in which the scheduler got the jobs weighs as much as the edge's own cost: hence both bare
  orders. `>=30s` counts edges that waited at least half a default interval.
- runs: job starts seen; more than P*S would be a job run twice.

What it made under ~/jobauto-bench/chain-OWN-* and /tmp/jobauto-bench/chain-OWN-* is removed at
the end (OWN: this run's own tag); if it fails, it cancels the jobs of its own names only.

    python bench/chain_latency.py [--pipelines 100] [--steps 5] [--repeat 3]
        [--schedulers sge slurm] [--ahead A] [--maxqsub M] [--interval S]
        [--bare-order pipeline step]
"""

from __future__ import annotations

import argparse
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from testcluster import CFG, HOST, LOCAL, SHIMMED, remove_own, shims, ssh

OWN = uuid.uuid4().hex[:4]   # this run's directories (chain-OWN-*) and bare job name, the only ones it removes
BARE_NAME = f"c{OWN}b"
SCRIPT = """#!/bin/sh
echo "+ $(date +%s.%N) {label}" >> {stamps}
sleep 1
echo "- $(date +%s.%N) {label}" >> {stamps}
touch qsub.finished.{i}
"""
# sh bare.sh SCHED Q STEPS ORDER NAME, in the tree's root on the cluster; `pipelines` lists the dirs
BARE = r"""#!/bin/sh
echo $$ > loop.pid
sched=$1 q=$2 steps=$3 order=$4 name=$5
sub() {  # DIR STEP [PREV_ID] -> the new job's id
  if [ "$sched" = sge ]; then
    (cd "$1" && qsub -terse -cwd -S /bin/sh -o /dev/null -e /dev/null -N "$name" ${3:+-hold_jid "$3"} "qsub.$2")
  else
    (cd "$1" && sbatch --parsable -o /dev/null -e /dev/null -J "$name" ${3:+--dependency=afterok:$3} "qsub.$2")
  fi
}
queued() {
  if [ "$sched" = sge ]; then qstat -xml -u "$(id -un)" | grep -c "<JB_name>$name</JB_name>"
  else squeue -h -u "$(id -un)" -n "$name" | wc -l; fi
}
n=0
room() {  # wait until $1 more fit in the queue
  while [ $((n + $1)) -gt "$q" ]; do sleep 1; n=$(queued); done
  n=$((n + $1))
}
if [ "$order" = pipeline ]; then
  for p in $(cat pipelines); do
    room "$steps"; prev= i=0
    while [ $i -lt "$steps" ]; do prev=$(sub "$p" $i "$prev") || exit 1; i=$((i + 1)); done
  done
else
  i=0
  while [ $i -lt "$steps" ]; do
    for p in $(cat pipelines); do
      room 1; prev=
      [ $i -gt 0 ] && prev=$(cat "$p/.id.$((i - 1))")
      sub "$p" $i "$prev" > "$p/.id.$i" || exit 1
    done
    i=$((i + 1))
  done
fi
"""


def tree(root: Path, pipelines: int, steps: int, stamps: str) -> list[str]:
    """The P x S chains under root; returns the pipelines' directories."""
    dirs = [f"p{k:03d}" for k in range(pipelines)]
    for d in dirs:
        (root / d).mkdir(parents=True)
        for i in range(steps):
            (root / d / f"qsub.{i}").write_text(SCRIPT.format(label=f"{d}/{i}", stamps=stamps, i=i))
            (root / d / f"qsub.dependency.{i}").write_text(f"qsub.finished.{i - 1}\n" if i else "")
    return dirs


def stamps(path: Path, t0: float, steps: int, intents: dict[str, float] | None = None) -> dict[str, float]:
    """Figures of one side from its stamps: last end, median / p90 / max edge, runs; with
    INTENTS (pNNN/i -> first submission, jobmon's store), the later steps submitted before their
    predecessor's end (ahead) and the others' median predecessor end -> submission."""
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    runs = 0
    for ln in path.read_text().splitlines():
        m = re.fullmatch(r"([+-]) (\d+\.\d+) (p\d+/\d+)", ln.strip())
        if not m:
            continue
        t = float(m[2])
        if m[1] == "+":
            runs += 1
            start.setdefault(m[3], t)
        else:
            end[m[3]] = t
    edges = sorted(start[f"{p}/{i}"] - end[f"{p}/{i - 1}"]
                   for p in {k.split("/")[0] for k in start} for i in range(1, steps)
                   if f"{p}/{i}" in start and f"{p}/{i - 1}" in end)
    out = {"done": max(end.values()) - t0, "edge": statistics.median(edges),
           "p90": edges[int(0.9 * (len(edges) - 1))], "max": edges[-1],
           "slow": sum(e >= 30 for e in edges), "runs": runs}
    if intents is not None:
        late = [intents[f"{p}/{i}"] - end[f"{p}/{i - 1}"] for p, i in
                ((k.split("/")[0], int(k.split("/")[1])) for k in start) if i and f"{p}/{i}" in intents and f"{p}/{i - 1}" in end]
        out["ahead"] = sum(x < 0 for x in late)
        out["late"] = statistics.median([x for x in late if x >= 0] or [0.0])
    return out


def wait_markers(path: Path, n: int, t0: float, loop: subprocess.Popen[str], timeout_s: float = 3600) -> None:
    while sum(1 for _ in path.glob("p*/qsub.finished.*")) < n:
        if loop.poll():   # a refused submission ends the loop: no more markers will come
            raise RuntimeError(f"bare loop exited {loop.returncode}: {loop.communicate()[1][-500:]}")
        if time.time() - t0 > timeout_s:
            raise RuntimeError(f"not done after {timeout_s:.0f} s: {path}")
        time.sleep(0.2)


def bare(sched: str, a: argparse.Namespace, order: str, home: Path) -> dict[str, float]:
    tag = f"chain-{OWN}-bare-{uuid.uuid4().hex[:6]}"
    root, rel = LOCAL / tag, f"jobauto-bench/{tag}"
    dirs = tree(root, a.pipelines, a.steps, str(home / rel / "stamps"))
    (root / "pipelines").write_text("".join(d + "\n" for d in dirs))
    (root / "bare.sh").write_text(BARE)
    ssh(f"mkdir -p {rel}")
    subprocess.run(["rsync", "-a", "-e", f"ssh -F {CFG}", f"{root}/", f"{HOST}:{rel}/"], check=True)
    t0 = time.time()
    loop = subprocess.Popen(["ssh", "-F", str(CFG), HOST, f"cd {rel} && sh bare.sh {sched} "
                             f"{a.maxqsub + a.ahead} {a.steps} {order} {BARE_NAME}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_markers(home / rel, a.pipelines * a.steps, t0, loop)
        out, err = loop.communicate(timeout=60)
    except BaseException:
        ssh(f"kill $(cat {rel}/loop.pid) 2>/dev/null; true")   # it would go on submitting
        raise
    finally:
        if loop.poll() is None:
            loop.kill()
    if loop.returncode != 0:
        raise RuntimeError(f"bare loop exited {loop.returncode}: {out[-500:]} {err[-500:]}")
    return stamps(home / rel / "stamps", t0, a.steps)


def jobauto(sched: str, a: argparse.Namespace, home: Path, ldirs: list[Path]) -> dict[str, float]:
    tag = f"chain-{OWN}-ja-{uuid.uuid4().hex[:6]}"
    ldir, rel = LOCAL / tag, f"jobauto-bench/{tag}"
    ldirs.append(ldir)
    tree(ldir / "init", a.pipelines, a.steps, str(home / rel / "stamps"))
    shim = shims(rel)
    argv = [sys.executable, "-m", "jobauto.cli.jobmon", f"--ldir={ldir}", f"--rdir={rel}",
            f"--remote={HOST}", f"--ssh-config={CFG}", f"--maxqsub={a.maxqsub}",
            f"--ahead={a.ahead}", f"--max-scheduler-commands-per-minute={a.cmds}",
            "--datedir=r", f"--scheduler={sched}", f"--scheduler-bin={home / shim}"]
    if a.interval:
        argv.append(f"--interval={a.interval}")
    t0 = time.time()
    p = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=3600)
    exit_s = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError(f"jobmon exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    calls = (home / shim / "calls.log").read_text().split()
    with sqlite3.connect(ldir / "r" / ".jobauto" / "state.db") as c:
        intents = {j.replace("/qsub.", "/"): t for j, t in
                   c.execute("SELECT job, MIN(at) FROM events WHERE kind = 'intent' GROUP BY job")}
    r = stamps(home / rel / "stamps", t0, a.steps, intents)
    r["exit"] = exit_s
    r["cmds"] = len(calls)
    r["calls"] = " + ".join(f"{calls.count(c)} {c}" for c in SHIMMED if c in calls)  # type: ignore[assignment]
    r["cycles"] = sum(ln.startswith("done ") for ln in p.stdout.splitlines())
    r["intent_cycles"] = len({round(t) for t in intents.values()})
    return r


def our_queue(sched: str, names: tuple[str, ...]) -> list[str]:
    """Ids of the jobs in the queue whose name starts with one of names (this run's only)."""
    if sched == "slurm":
        rows = [ln.split(None, 1) for ln in ssh("squeue -h -u jobauto -o '%i %j'").splitlines()]
    else:
        rows = [(re.findall(r"<JB_job_number>(\d+)<", j) + [""])[:1] + re.findall(r"<JB_name>([^<]*)<", j)[:1]
                for j in re.findall(r"<job_list.*?</job_list>", ssh("qstat -xml -u jobauto"), re.S)]
    return list(dict.fromkeys(r[0] for r in rows if len(r) == 2 and r[1].startswith(names)))


def cancel_own(sched: str, ldirs: list[Path]) -> None:
    names = [BARE_NAME]
    for ldir in ldirs:
        db = ldir / "r" / ".jobauto" / "state.db"
        if db.exists():
            with sqlite3.connect(db) as c:
                row = c.execute("SELECT value FROM meta WHERE key = 'tag'").fetchone()
            if row and row[0]:
                names.append(f"ja{row[0]}")
    ids = our_queue(sched, tuple(names))
    if ids:
        ssh(("scancel " if sched == "slurm" else "qdel ") + " ".join(ids))
        print(f"  cancelled {len(ids)} leftover job(s) of this run", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipelines", type=int, default=100)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--schedulers", nargs="+", default=["sge", "slurm"], choices=["sge", "slurm"])
    ap.add_argument("--maxqsub", type=int, default=100, help="jobmon's --maxqsub (M)")
    ap.add_argument("--ahead", type=int, help="jobmon's --ahead (A; default P*(S-1))")
    ap.add_argument("--interval", type=float, help="jobmon's --interval (default: not passed, 60 s)")
    ap.add_argument("--bare-order", nargs="+", default=["pipeline", "step"], choices=["pipeline", "step"])
    a = ap.parse_args()
    if a.ahead is None:
        a.ahead = a.pipelines * (a.steps - 1)
    a.cmds = 2 * a.pipelines * a.steps + 100
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # kill PID: cancel and clean up too
    home = Path(ssh("echo $HOME").strip())
    print(f"{a.pipelines} pipelines x {a.steps} steps of 1-s jobs; jobmon --maxqsub={a.maxqsub} "
          f"--ahead={a.ahead} --interval={a.interval or 'default (60)'} "
          f"--max-scheduler-commands-per-minute={a.cmds}; bare queue <= {a.maxqsub + a.ahead}",
          flush=True)
    table = []
    try:
        for sched in a.schedulers:
            ldirs: list[Path] = []
            res: dict[str, list[dict[str, float]]] = {}
            try:
                for _ in range(a.repeat):
                    for order in a.bare_order:
                        r = bare(sched, a, order, home)
                        res.setdefault(f"bare/{order}", []).append(r)
                        print(f"  {sched} bare/{order:8} all done {r['done']:6.1f} s  edge median "
                              f"{r['edge']:5.1f} s  p90 {r['p90']:5.1f}  max {r['max']:5.1f}  "
                              f">=30s {r['slow']:.0f}  runs {r['runs']:.0f}", flush=True)
                    r = jobauto(sched, a, home, ldirs)
                    res.setdefault("jobauto", []).append(r)
                    print(f"  {sched} jobauto        all done {r['done']:6.1f} s  edge median "
                          f"{r['edge']:5.1f} s  p90 {r['p90']:5.1f}  max {r['max']:5.1f}  "
                          f">=30s {r['slow']:.0f}  runs {r['runs']:.0f}  exit {r['exit']:6.1f} s  "
                          f"cycles {r['cycles']:.0f}  ahead {r['ahead']:.0f}/{a.pipelines * (a.steps - 1)} "
                          f"(others: end->submit {r['late']:.1f} s)  submitted at {r['intent_cycles']:.0f} s-marks  "
                          f"commands {r['cmds']:.0f} ({r['calls']})", flush=True)
            except BaseException:
                cancel_own(sched, ldirs)
                raise
            table.append(summary(sched, res, a))
    finally:
        remove_own(f"chain-{OWN}-")
    print(f"\n{a.pipelines} x {a.steps} jobs, median of {a.repeat}:")
    print("\n".join(table))


def summary(sched: str, res: dict[str, list[dict[str, float]]], a: argparse.Namespace) -> str:
    def med(side: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in res[side])
    ja = res["jobauto"]
    cmds = statistics.median(float(r["cmds"]) for r in ja)
    lines = [f"{sched:6} jobauto        all done {med('jobauto', 'done'):6.1f} s   jobmon exit "
             f"{med('jobauto', 'exit'):6.1f} s   edge median {med('jobauto', 'edge'):5.1f} s   "
             f"scheduler commands {cmds:g}"]
    for side in (s for s in res if s != "jobauto"):
        d, e = med(side, "done"), med(side, "edge")
        lines.append(f"{sched:6} {side:14} all done {d:6.1f} s   -> jobauto {med('jobauto', 'done') / d:4.2f}x "
                     f"(target <= 1.05), exit {med('jobauto', 'exit') / d:4.2f}x;   edge median {e:5.1f} s"
                     f"   -> jobauto {med('jobauto', 'edge') / e:4.2f}x (target <= 1.2)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
