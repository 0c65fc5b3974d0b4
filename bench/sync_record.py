"""What recording the first push costs (run/sync.py tree_rows + the synced table), and a
submission's check of its jobs' files, at 1k / 10k / 100k jobs.

Each job is a directory holding its script (~2 KiB), its dependency file and one input file of
4 KiB: the script and the dependency file are hashed, the input only stat'ed. Prints the CPU and
wall time of tree_rows, of writing its rows, and of changed_locally over 10 jobs' files.

    python bench/sync_record.py [--sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def build(root: Path, n: int) -> None:
    script = "#!/bin/sh\n" + "echo work\n" * 200
    for i in range(n):
        d = root / f"d{i // 100}" / f"j{i}"
        d.mkdir(parents=True)
        (d / "qsub.0").write_text(script)
        (d / "qsub.dependency.0").write_text("")
        (d / "input.dat").write_bytes(b"x" * 4096)


def measure(n: int) -> None:
    from jobauto.run import sync
    from jobauto.store import Store
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "r"
        build(run, n)
        store = Store(run / ".jobauto" / "state.db")
        c0, w0 = time.process_time(), time.perf_counter()
        rows = sync.tree_rows(run)
        c1, w1 = time.process_time(), time.perf_counter()
        with store.transaction():
            store.record_synced(rows, "pushed", 0.0)
        c2 = time.process_time()
        names = [r[0] for r in rows[:30]]
        sync.changed_locally(store, run, names)
        c3 = time.process_time()
        print(f"{n:>7} jobs, {len(rows):>7} files: tree_rows {c1 - c0:6.2f} s CPU ({w1 - w0:6.2f} s "
              f"wall); record {c2 - c1:5.2f} s CPU; check of 10 jobs {1000 * (c3 - c2):5.1f} ms CPU")
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    for n in ap.parse_args().sizes:
        measure(n)


if __name__ == "__main__":
    main()
