"""`jobauto runs LDIR` over a campaign with one 100,000-job run and many small ones: the real CLI.

The big run is bench/status_big.py's (20,000 chains of 5 jobs: done 66,000, running 500, ready
5,500, waiting 20,000, blocked 6,000, error 2,000); beside it, --small runs of 10 jobs each (all
done). Timed, each --repeat times: `jobauto runs LDIR` (text) and `--json`, with the same baselines
as status_big.py (`python -c "import jobauto"`), and `jobauto status RUN` of the big run alone
for comparison (it reads every job). Figures are the median wall and CPU (user + sys) times.

    python bench/runs_big.py [--jobs 100000] [--small 50] [--repeat 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from status_big import CHAIN, CPU, build_run, wall  # noqa: E402

from jobauto.core.model import Job, JobState  # noqa: E402
from jobauto.store import Store  # noqa: E402


def small_run(ldir: Path, name: str, n: int) -> None:
    store = Store(ldir / name / ".jobauto" / "state.db")
    with store.transaction():
        store.save_jobs([Job(i, f"a/qsub.{i}", JobState.DONE, ()) for i in range(1, n + 1)])
        store.set_meta("created", str(n))
        store.set_meta("rundir", f"/work/foobar/{name}")
    store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    exe = shutil.which("jobauto")
    if exe is None:
        sys.exit("jobauto is not installed (pip install -e .)")
    d = Path(tempfile.mkdtemp(prefix="runs-big-", dir=args.dir))
    try:
        run = build_run(d, args.jobs // CHAIN)
        ldir = run.parent
        for i in range(args.small):
            small_run(ldir, f"20261122-{i:06d}", 10)
        rows = [("python -c 'import jobauto'", wall([sys.executable, "-c", "import jobauto"], args.repeat)),
                (f"jobauto runs ({1 + args.small} runs)", wall([exe, "runs", str(ldir)], args.repeat)),
                ("jobauto runs --json", wall([exe, "runs", str(ldir), "--json"], args.repeat)),
                (f"jobauto status RUN ({args.jobs} jobs)", wall([exe, "status", str(run)], args.repeat))]
        print(f"{'command':40} {'wall median':>12} {'CPU median':>12}")
        for label, ms in rows:
            print(f"{label:40} {statistics.median(ms):9.0f} ms {statistics.median(CPU[id(ms)]):9.0f} ms")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
