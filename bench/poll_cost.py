"""Status polling cost per monitor cycle with 1,000 submitted, unfinished jobs, per scheduler.

Needs the test cluster (tests/cluster/up.sh sshd sge slurm) and runs as root on its machine;
everything on the cluster happens as `jobauto` over ssh. For each scheduler (Grid Engine, PBS
through Slurm's Torque wrappers, Slurm) it:

1. submits N jobs (`sleep 600`) with jobauto's own Remote.submit over one SSHTransport, in
   batches, named with a prefix unique to this run. By default the job scripts ask for a start
   an hour from now (`#$ -a` / `#SBATCH --begin`), so all N wait in the queue without taking
   the cluster's 4 slots from anyone else; --start-now lets 4 of them run.
2. times whole Remote.observe round trips (median of --cycles): the marker scan alone, the scan
   plus the queue query (want_queue=True, all N jobs), and the scan plus the queue plus
   accounting for --acct jobs that were just cancelled (so they really left the queue). The
   jobauto-side parse (adapter.parse_queue / parse_acct) is timed on its own; the scheduler
   Command objects observe sends are counted, and in one extra cycle each through logging shims
   on PATH, so are the scheduler processes they start on the cluster.
3. the naive baseline in the same run: one status command per job (`qstat -j ID`,
   `squeue -j ID`, `qstat ID`) for --naive jobs, both over the one connection (50 commands in
   one round trip) and with one ssh login each, extrapolated linearly to N.

Every job whose name has this run's prefix is deleted at the end, also on error or ^C, and the
remote directory (~/jobauto-bench/poll-*) is removed. Schedulers run in the order sge, pbs,
slurm: Slurm's Torque `qstat` lists ended jobs (state C) for MinJobAge (300 s), so PBS right
after Slurm would list 1,000 more; the `listed` column shows what the listing held.

    sudo python bench/poll_cost.py [--schedulers sge pbs slurm] [--jobs 1000] [--cycles 7]
                                   [--naive 50] [--acct 50] [--batch 100] [--start-now]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobauto.cluster.host import Host  # noqa: E402
from jobauto.cluster.schedulers import adapter_for  # noqa: E402
from jobauto.cluster.transport.ssh import SSHTransport  # noqa: E402
from jobauto.core.model import Command, CommandResult, Ending, QueueSnapshot  # noqa: E402
from jobauto.run.mirror import OPS, Observation, Remote  # noqa: E402

CLUSTER = Path(os.environ.get("JOBAUTO_TEST_CLUSTER_DIR", "/tmp/jobauto-cluster"))
CFG, HOST = CLUSTER / "ssh_config", "testhost"
TORQUE_BIN = os.environ.get("JOBAUTO_TEST_TORQUE_BIN", "/opt/slurm-torque/bin")
ORDER = ("sge", "pbs", "slurm")
BIN = {"sge": [], "slurm": [], "pbs": [TORQUE_BIN]}
KILL = {"sge": ["qdel"], "slurm": ["scancel"], "pbs": ["qdel"]}
NAIVE = {"sge": ["qstat", "-j"], "slurm": ["squeue", "-j"], "pbs": ["qstat"]}
SHIMMED = ("qstat", "qacct", "squeue", "sacct", "scontrol")
FILE_OPS = {"jobauto-" + name for name in OPS}  # jobauto's own file operations, not the scheduler


def job_script(sched: str, start_now: bool) -> str:
    if start_now:
        return "#!/bin/sh\nsleep 600\n"
    if sched == "sge":
        later = time.strftime("%Y%m%d%H%M", time.localtime(time.time() + 3600))
        return f"#!/bin/sh\n#$ -a {later}\nsleep 600\n"
    return "#!/bin/sh\n#SBATCH --begin=now+1hour\nsleep 600\n"


class Counting(SSHTransport):
    """The real transport, keeping the Command objects of the last batch."""

    last: list[Command] = []

    def run_many(self, commands: list[Command], *, timeout: float | None = None) -> list[CommandResult]:
        self.last = list(commands)
        return super().run_many(commands, timeout=timeout)


def sched_commands(cmds: list[Command]) -> int:
    """Commands that invoke the scheduler: everything but jobauto's own file operations."""
    return sum(1 for c in cmds if not (c.argv[:2] == ("sh", "-c") and len(c.argv) > 3
                                       and c.argv[3] in FILE_OPS))


class Timed:
    """The adapter, with parse_queue/parse_acct timed (and the last queue output kept)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.parse_s: dict[str, float] = {}
        self.queue_out: CommandResult | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def parse_queue(self, result: CommandResult) -> QueueSnapshot:
        self.queue_out = result
        t = time.perf_counter()
        snap: QueueSnapshot = self.inner.parse_queue(result)
        self.parse_s["queue"] = time.perf_counter() - t
        return snap

    def parse_acct(self, result: CommandResult) -> dict[str, Ending]:
        t = time.perf_counter()
        try:
            return self.inner.parse_acct(result)
        finally:
            self.parse_s["acct"] = time.perf_counter() - t


def listed_rows(sched: str, res: CommandResult | None) -> int:
    """How many jobs the scheduler's listing printed (PBS: ended ones in state C too)."""
    if res is None:
        return 0
    text = res.text
    if sched == "sge":
        return text.count("<job_list")
    if sched == "slurm":
        return sum(1 for ln in text.splitlines() if "|" in ln)
    return sum(1 for ln in text.splitlines() if ln[:1].isdigit() and len(ln.split()) >= 6)


@dataclass
class Cycle:
    kind: str
    wall: list[float] = field(default_factory=list)
    parse: list[float] = field(default_factory=list)
    cmds: int = 0
    procs: str = "-"
    ours: int = 0
    listed: int = 0
    note: str = ""


@dataclass
class Result:
    sched: str
    jobs: int
    submit_s: float = 0.0
    cycles: list[Cycle] = field(default_factory=list)
    naive: list[tuple[str, int, float]] = field(default_factory=list)  # (how, jobs, seconds)
    elapsed_s: float = 0.0


class Bench:
    def __init__(self, sched: str, a: argparse.Namespace, tag: str, transport: Counting, home: str) -> None:
        self.sched, self.a, self.t = sched, a, transport
        self.prefix = f"jpc{tag}{sched[:2]}"
        self.rundir = f"jobauto-bench/poll-{tag}-{sched}"
        self.home = home
        self.adapter = Timed(adapter_for(sched))
        self.remote = Remote(Host(transport, self.adapter, user=transport.username,
                                  scheduler_bin=BIN[sched]), self.rundir)
        self.ids: list[str] = []
        self.gen = 0

    # -- cluster side --------------------------------------------------------------------------
    def sh(self, script: str, *args: str, stdin: bytes | None = None) -> CommandResult:
        r = self.t.run(["sh", "-c", script, "jobauto-bench", *args], stdin=stdin)
        if r.rc:
            raise RuntimeError(f"{script[:60]}...: exit {r.rc}: {r.stderr.strip()}")
        return r

    def setup(self) -> None:
        self.sh('mkdir -p -- "$1" && cat > "$1/job.sh" && chmod +x "$1/job.sh"', self.rundir,
                stdin=job_script(self.sched, self.a.start_now).encode())
        self.remote.stamp(0)

    def submit(self, n: int) -> float:
        t0 = time.perf_counter()
        for start in range(0, n, self.a.batch):
            entries: list[tuple[str, str, list[str], str | None]] = [(f"{self.prefix}{i:05d}", "job.sh", [], None) for i in range(start, min(n, start + self.a.batch))]
            for r in self.remote.submit(f"b{start}", entries):
                if r is None or r.sched_id is None:
                    raise RuntimeError(f"submission failed: {r}")
                self.ids.append(r.sched_id)
            print(f"  {self.sched}: submitted {len(self.ids)}/{n}", end="\r", flush=True)
        print()
        return time.perf_counter() - t0

    def queue(self) -> QueueSnapshot:
        argv = self.remote.host.sched(self.adapter.queue_argv(self.remote.host.user))
        return self.adapter.inner.parse_queue(self.t.run(argv))

    def ours(self, snap: QueueSnapshot) -> list[str]:
        return sorted(e.sched_id for e in snap.entries.values() if e.name.startswith(self.prefix))

    def kill(self, ids: list[str]) -> None:
        for i in range(0, len(ids), 200):
            self.t.run(self.remote.host.sched(KILL[self.sched] + ids[i:i + 200]))

    def wait_listed(self, n: int, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while True:
            snap = self.queue()
            k = len(self.ours(snap)) if snap.ok else -1
            if k == n or time.monotonic() > deadline:
                return k
            time.sleep(1)

    def cleanup(self) -> None:
        """Delete this run's jobs (names with its prefix; the submitted ids if the listing
        fails), then the remote directory."""
        for _ in range(10):
            try:
                snap = self.queue()
                left = self.ours(snap) if snap.ok else list(self.ids)
            except Exception as e:  # noqa: BLE001 - keep trying to clean up
                print(f"  {self.sched}: cleanup listing failed: {e}", file=sys.stderr)
                left = list(self.ids)
            if not left:
                break
            try:
                self.kill(left)
            except Exception as e:  # noqa: BLE001
                print(f"  {self.sched}: cleanup kill failed: {e}", file=sys.stderr)
            time.sleep(1)
        else:
            print(f"  {self.sched}: jobs named {self.prefix}* may be left in the queue", file=sys.stderr)
        try:
            self.t.run(["rm", "-rf", "--", self.rundir])
        except Exception as e:  # noqa: BLE001
            print(f"  {self.sched}: could not remove ~/{self.rundir}: {e}", file=sys.stderr)

    # -- measurements --------------------------------------------------------------------------
    def observe(self, remote: Remote, want_queue: bool, acct: list[str] | None) -> tuple[float, Observation]:
        self.gen += 1
        self.adapter.parse_s.clear()
        t = time.perf_counter()
        obs = remote.observe(self.gen, self.gen - 1, [], want_queue, [], acct)
        return time.perf_counter() - t, obs

    def cycles(self, kind: str, want_queue: bool, acct: list[str] | None) -> Cycle:
        c = Cycle(kind)
        self.observe(self.remote, want_queue, acct)  # warm-up, not counted
        for _ in range(self.a.cycles):
            wall, obs = self.observe(self.remote, want_queue, acct)
            c.wall.append(wall)
            c.parse.append(sum(self.adapter.parse_s.values()))
            c.cmds = sched_commands(self.t.last)
        if want_queue:
            snap = obs.queue
            if snap is None or not snap.ok:
                raise RuntimeError(f"queue query failed: {snap.error if snap else 'no answer'}")
            c.ours, c.listed = len(self.ours(snap)), listed_rows(self.sched, self.adapter.queue_out)
        if acct:
            err = f" ({obs.acct_error})" if obs.acct_error else ""
            c.note = f"{len(obs.endings or {})} of {len(acct)} records found{err}"
        c.procs = self.processes(want_queue, acct) if want_queue or acct else "0"
        return c

    def processes(self, want_queue: bool, acct: list[str] | None) -> str:
        """Scheduler processes one such cycle starts on the cluster, counted by shims on PATH
        that log their name and exec the real program."""
        shim = f"{self.home}/{self.rundir}/shim"
        log = f"{shim}/calls.log"
        real = self.t.run(self.remote.host.sched(["sh", "-c", 'for n; do command -v "$n" || echo; done',
                                             "jobauto-bench", *SHIMMED])).text.splitlines()
        lines = [f"mkdir -p {shlex.quote(shim)} && : > {shlex.quote(log)}"]
        for name, path in zip(SHIMMED, real, strict=True):
            if path.startswith("/"):
                body = f'#!/bin/sh\necho {name} >> {shlex.quote(log)}\nexec {shlex.quote(path)} "$@"\n'
                lines.append(f"printf '%s' {shlex.quote(body)} > {shim}/{name} && chmod +x {shim}/{name}")
        self.sh(" && ".join(lines))
        counting = Remote(Host(self.t, self.adapter, user=self.remote.host.user,
                               scheduler_bin=[shim, *BIN[self.sched]]), self.rundir)
        self.observe(counting, want_queue, acct)
        names = self.t.run(["cat", log]).text.split()
        if not names:
            return "0"
        return "+".join(f"{names.count(n)} {n}" for n in SHIMMED if n in names)

    def naive(self, ids: list[str]) -> list[tuple[str, int, float]]:
        cmd = " ".join(NAIVE[self.sched])
        cmds = [Command.of(self.remote.host.sched([*NAIVE[self.sched], i])) for i in ids]
        t = time.perf_counter()
        res = self.t.run_many(cmds)
        one_conn = time.perf_counter() - t
        bad = [r for r in res if r.rc]
        if bad:
            raise RuntimeError(f"{cmd} failed: {bad[0].stderr.strip()}")
        t = time.perf_counter()
        for c in cmds:
            subprocess.run(["ssh", "-F", str(CFG), HOST, shlex.join(c.argv)], check=True,
                           capture_output=True, stdin=subprocess.DEVNULL)
        logins = time.perf_counter() - t
        return [(f"{cmd} ID, 1 connection", len(ids), one_conn),
                (f"{cmd} ID, ssh login each", len(ids), logins)]

    def run(self) -> Result:
        a = self.a
        r = Result(self.sched, a.jobs)
        t0 = time.perf_counter()
        try:
            self.setup()
            r.submit_s = self.submit(a.jobs)
            listed = self.wait_listed(a.jobs)
            if listed != a.jobs:
                print(f"  {self.sched}: the queue lists {listed} of {a.jobs} jobs", file=sys.stderr)
            print(f"  {self.sched}: measuring", flush=True)
            r.cycles.append(self.cycles("scan only", False, None))
            r.cycles.append(self.cycles("scan + queue", True, None))
            r.naive = self.naive(self.ids[-a.naive:])
            gone = self.ids[:a.acct]
            self.kill(gone)
            self.wait_listed(a.jobs - a.acct, timeout=30)
            r.cycles.append(self.cycles(f"scan + queue + acct({a.acct})", True, gone))
        finally:
            print(f"  {self.sched}: deleting {self.prefix}* jobs and ~/{self.rundir}", flush=True)
            self.cleanup()
        r.elapsed_s = time.perf_counter() - t0
        return r


def ms(s: float) -> str:
    return f"{s * 1000:7.0f} ms" if s < 10 else f"{s:8.1f} s"


def report(results: list[Result], a: argparse.Namespace) -> None:
    print(f"\nRemote.observe round trips over one SSH connection, median of {a.cycles} cycles"
          f" (ours/listed: jobs with this run's prefix / jobs the scheduler listed):")
    print(f"{'sched':6} {'cycle':27} {'ours/listed':>11} {'wall median':>11} {'min':>10} {'max':>10} "
          f"{'parse':>9} {'sched cmds':>10}  sched processes")
    for r in results:
        for c in r.cycles:
            ol = f"{c.ours}/{c.listed}" if c.listed else "-"
            print(f"{r.sched:6} {c.kind:27} {ol:>11} {ms(statistics.median(c.wall)):>11} "
                  f"{ms(min(c.wall)):>10} {ms(max(c.wall)):>10} {statistics.median(c.parse) * 1000:6.1f} ms "
                  f"{c.cmds:>10}  {c.procs}{'  ' + c.note if c.note else ''}")
    print(f"\nNaive: one status command per job, measured for {a.naive} jobs and extrapolated "
          f"linearly to {a.jobs} (x{a.jobs / a.naive:g}); ratio against the median scan + queue cycle:")
    print(f"{'sched':6} {'per-job command':33} {'measured':>18} {'extrapolated':>20} {'ratio':>8}")
    for r in results:
        queue = statistics.median(next(c for c in r.cycles if c.kind == "scan + queue").wall)
        for how, n, s in r.naive:
            ext = s * a.jobs / n
            print(f"{r.sched:6} {how:33} {ms(s):>11} /{n:>3} j {ms(ext):>11} /{a.jobs} j {ext / queue:7.0f}x")
    print("\n" + "  ".join(f"{r.sched}: submitted {r.jobs} in {r.submit_s:.1f} s, whole run {r.elapsed_s:.0f} s"
                           for r in results))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schedulers", nargs="+", choices=ORDER, default=list(ORDER))
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=7)
    ap.add_argument("--naive", type=int, default=50, help="jobs the per-job baseline is measured on")
    ap.add_argument("--acct", type=int, default=50, help="jobs cancelled, then asked of accounting")
    ap.add_argument("--batch", type=int, default=100, help="submissions per round trip")
    ap.add_argument("--start-now", action="store_true",
                    help="no deferred start: 4 jobs run (and hold the cluster's slots)")
    a = ap.parse_args()
    if a.cycles < 5:
        ap.error("--cycles must be at least 5")
    if max(a.naive, a.acct) > a.jobs:
        ap.error("--naive and --acct must not exceed --jobs")
    tag = uuid.uuid4().hex[:4]
    transport = Counting(HOST, config_path=CFG)
    home = transport.run(["sh", "-c", "echo $HOME"]).text.strip()
    results = []
    try:
        for sched in (s for s in ORDER if s in a.schedulers):
            results.append(Bench(sched, a, tag, transport, home).run())
    finally:
        transport.close()
        if results:
            report(results, a)


if __name__ == "__main__":
    main()
