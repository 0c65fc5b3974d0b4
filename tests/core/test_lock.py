"""The lock module (jobauto/core/lock.py): `exclusive`, the lock monitors creating runs in one
LDIR take (one at a time; the file exists only while held), and `clear_stale`. The run lock
itself is tested through jobmon (run/test_daemon.py, run/test_opener_faults.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers import REPO

from jobauto.core.lock import clear_stale, exclusive


def test_exclusive_lets_one_holder_in_at_a_time_and_removes_its_file(tmp_path: Path) -> None:
    path = tmp_path / ".jobauto-creating"
    inside: list[int] = []
    most = [0]
    waited: list[str] = []

    def hold(k: int) -> None:
        with exclusive(path, wait=lambda: waited.append(f"{k}")):
            inside.append(k)
            most[0] = max(most[0], len(inside))
            time.sleep(0.2)
            inside.remove(k)

    threads = [threading.Thread(target=hold, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and waited and not path.exists()


def test_clear_stale_removes_only_a_lock_file_nobody_holds(tmp_path: Path) -> None:
    path = tmp_path / ".jobauto-creating"
    code = (f"import os, time\nfrom pathlib import Path\nfrom jobauto.core.lock import exclusive\n"
            f"with exclusive(Path({str(path)!r})):\n    print('in', flush=True)\n    time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "in\n"
        clear_stale(path)
        assert path.exists(), "held: not stale"
    finally:
        holder.kill()   # killed while holding it: the file stays, unheld
        holder.wait()
    assert path.exists()
    clear_stale(path)
    assert not path.exists()
