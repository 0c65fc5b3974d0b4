"""Per-job overhead of `jobauto run` against GNU parallel running the same commands.

N jobs of one command (default 2,000), run by:

- `parallel -j16 -N0 CMD :::: ids` — the baseline: GNU parallel, 16 at a time (-N0: one input
  line per job, nothing appended, so both runners execute exactly CMD). GNU parallel starts every
  job through a shell: its default here (bash, from $SHELL), and again with PARALLEL_SHELL=/bin/sh
  (dash, cheaper to start); the ratios are against the faster of the two;
- `jobauto run --parallel 16 --quiet DB CMD` — one worker process with 16 slots;
- four `jobauto run --parallel 4 --quiet DB CMD` started together (4 processes x 4 slots).

The table has only a JOBSCHEDULER_JOB_ID column, so jobauto appends no parameters either. It is
imported once (`jobauto import`'s code) and copied fresh for every run, as the id file is
written once for parallel: setup is not timed, everything from starting the runner to its exit
is (interpreter start-up and jobauto's end-of-run checks included). The runners take turns
within each of --runs rounds, after one small warm-up run each; figures are medians. The load
average printed after each round shows whether other work shared the machine.

Per job: wall / N. Overhead per job: (wall - ideal) / N, where ideal is what a runner that
costs nothing would need: the command's own wall time spread over the 16 slots, or its CPU time
spread over the machine's CPUs, whichever is longer (both measured in the same run by starting
the command --seq times in a row with posix_spawn). On a 2-CPU machine `/bin/true` is bound by
CPU, `sleep 0.01` by the slots. CPU/job is everything the runner and its commands used
(RUSAGE_CHILDREN), minus the command's own CPU: the runner's CPU per job. The ratio against
parallel is given for both the wall per job and the overhead per job; the target is the
overhead within 2x of parallel's with 16 workers.

    python bench/table_vs_parallel.py [--jobs 2000] [--runs 3] [--commands true sleep10]
                                      [--dir /var/tmp] [--seq 300] [--jobauto DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from jobauto.store import TableStore  # noqa: E402
from jobauto.store.sqlite import filesystem  # noqa: E402
from jobauto.table.ops import import_csv  # noqa: E402

COMMANDS = {"true": ["/bin/true"], "sleep10": ["/bin/sleep", "0.01"]}
SLOTS = 16
LAUNCH = "import sys; from jobauto.cli.jobauto import main; sys.exit(main(sys.argv[1:]))"


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def command_cost(cmd: list[str], n: int) -> tuple[float, float]:
    """Wall and CPU seconds of one run of cmd, started n times in a row with posix_spawn."""
    walls = []
    cpu0 = children_cpu()
    for _ in range(n):
        t = time.perf_counter()
        pid = os.posix_spawn(cmd[0], cmd, os.environ)
        _, status = os.waitpid(pid, 0)
        walls.append(time.perf_counter() - t)
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError(f"{cmd} failed")
    return statistics.median(walls), (children_cpu() - cpu0) / n


@dataclass
class Runner:
    name: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)


class Bench:
    def __init__(self, work: Path, jobs: int, cmd: list[str], jobauto: Path) -> None:
        self.work, self.jobs, self.cmd = work, jobs, cmd
        self.env = dict(os.environ, PYTHONPATH=str(jobauto))
        self.ids = work / "ids"
        self.ids.write_text("".join(f"j{i}\n" for i in range(1, jobs + 1)))
        csv = work / "jobs.csv"
        csv.write_text("JOBSCHEDULER_JOB_ID\n" + self.ids.read_text())
        self.pristine = work / "pristine.db"
        import_csv(csv, self.pristine)
        small = work / "small.csv"
        small.write_text("JOBSCHEDULER_JOB_ID\n" + "".join(f"j{i}\n" for i in range(1, 51)))
        self.small = work / "small.db"
        import_csv(small, self.small)

    def fresh(self, pristine: Path) -> Path:
        db = self.work / "run.db"
        for p in (db, self.work / "run.db-journal"):
            if p.exists():
                p.unlink()
        shutil.copyfile(pristine, db)
        return db

    def parallel(self, ids: Path) -> list[list[str]]:
        return [["parallel", f"-j{SLOTS}", "-N0", *self.cmd, "::::", str(ids)]]

    def jobauto(self, db: Path, procs: int) -> list[list[str]]:
        one = [sys.executable, "-c", LAUNCH, "run", "--parallel", str(SLOTS // procs), "--quiet",
               "--", str(db), *self.cmd]
        return [one] * procs

    def argvs(self, name: str, small: bool) -> list[list[str]]:
        if name.startswith("parallel"):
            if small:
                (self.work / "ids.small").write_text("".join(f"j{i}\n" for i in range(1, 51)))
                return self.parallel(self.work / "ids.small")
            return self.parallel(self.ids)
        db = self.fresh(self.small if small else self.pristine)
        return self.jobauto(db, 1 if name == "jobauto 1x16" else 4)

    def once(self, name: str, small: bool = False) -> tuple[float, float]:
        """Wall and CPU seconds of one run (all processes started together, all waited for)."""
        argvs = self.argvs(name, small)
        cpu0 = children_cpu()
        t = time.perf_counter()
        env = dict(self.env, PARALLEL_SHELL="/bin/sh") if name == "parallel sh" else self.env
        procs = [subprocess.Popen(a, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for a in argvs]
        errs = [p.communicate()[1] for p in procs]
        wall = time.perf_counter() - t
        cpu = children_cpu() - cpu0
        for p, e in zip(procs, errs, strict=True):
            if p.returncode:
                raise RuntimeError(f"{name}: exit {p.returncode}: {e.decode(errors='replace')[-500:]}")
        if not name.startswith("parallel"):
            store = TableStore(self.work / "run.db", readonly=True)
            counts = store.counts()
            store.close()
            want = 50 if small else self.jobs
            if counts != {"done": want}:
                raise RuntimeError(f"{name}: table {counts}, expected {want} done")
        return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--commands", nargs="+", choices=list(COMMANDS), default=list(COMMANDS))
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp"), help="where the table lives")
    ap.add_argument("--seq", type=int, default=300, help="sequential runs to time the command alone")
    ap.add_argument("--jobauto", type=Path, default=REPO,
                    help="directory holding the jobauto package to run (default: this checkout)")
    a = ap.parse_args()
    if a.runs < 3:
        ap.error("--runs must be at least 3 (the figure is a median)")
    if not shutil.which("parallel"):
        sys.exit("GNU parallel is not installed (apt-get install parallel)")
    version = subprocess.run(["parallel", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    cpus = len(os.sched_getaffinity(0))
    work = Path(tempfile.mkdtemp(prefix="jobauto-vs-parallel-", dir=a.dir))
    print(f"{a.jobs} jobs, median of {a.runs} rounds; {cpus} CPUs; {version}; parallel's shell: "
          f"{os.environ.get('PARALLEL_SHELL') or os.environ.get('SHELL', '/bin/sh')}, then /bin/sh; "
          f"table on {filesystem(work / 'run.db')}; jobauto from {a.jobauto}", flush=True)
    names = ["parallel", "parallel sh", "jobauto 1x16", "jobauto 4x4"]
    try:
        for key in a.commands:
            cmd = COMMANDS[key]
            (work / key).mkdir()
            bench = Bench(work / key, a.jobs, cmd, a.jobauto)
            t_cmd, cpu_cmd = command_cost(cmd, a.seq)
            ideal = a.jobs * max(t_cmd / SLOTS, cpu_cmd / cpus)
            runners = [Runner(n) for n in names]
            for r in runners:
                bench.once(r.name, small=True)
            loads = []
            for i in range(a.runs):
                for r in runners:
                    wall, cpu = bench.once(r.name)
                    r.walls.append(wall)
                    r.cpus.append(cpu)
                loads.append(os.getloadavg()[0])
                print(f"  {' '.join(cmd)}: round {i + 1}: "
                      + ", ".join(f"{r.name} {r.walls[-1]:.2f} s" for r in runners)
                      + f"; load {loads[-1]:.1f}", flush=True)
            report(cmd, a.jobs, cpus, t_cmd, cpu_cmd, ideal, runners)
            print(f"1-minute load average after the rounds: {min(loads):.1f}-{max(loads):.1f} "
                  f"(this run's own processes count too; more than {cpus} means other work)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(cmd: list[str], jobs: int, cpus: int, t_cmd: float, cpu_cmd: float, ideal: float,
           runners: list[Runner]) -> None:
    print(f"\n{' '.join(cmd)}: alone {t_cmd * 1000:.2f} ms wall, {cpu_cmd * 1000:.2f} ms CPU per run; "
          f"ideal for {jobs} jobs on {SLOTS} slots and {cpus} CPUs: {ideal:.2f} s")
    print(f"{'runner':13} {'wall':>8} {'min':>7} {'max':>7} {'per job':>9} {'vs par':>7} "
          f"{'overhead/job':>12} {'vs par':>7} {'runner CPU/job':>14}")
    best = min((r for r in runners if r.name.startswith("parallel")),
               key=lambda r: statistics.median(r.walls))
    base_wall = statistics.median(best.walls) / jobs
    base_over = base_wall - ideal / jobs
    for r in runners:
        wall = statistics.median(r.walls)
        per, over = wall / jobs, (wall - ideal) / jobs
        cpu = statistics.median(r.cpus) / jobs - cpu_cmd
        print(f"{r.name:13} {wall:>6.2f} s {min(r.walls):>5.2f} s {max(r.walls):>5.2f} s "
              f"{per * 1000:>6.2f} ms {per / base_wall:>6.2f}x {over * 1000:>9.2f} ms "
              f"{over / base_over:>6.2f}x {cpu * 1000:>11.2f} ms")
    print(f"vs par: against {best.name!r}, the faster GNU parallel")


if __name__ == "__main__":
    main()
