"""A job table on a file system whose locks do not reach other hosts (jobauto/store/sqlite.py
`require_shared_locks`): one directory of the test cluster mounted twice with sshfs, like two
hosts sharing a directory whose fcntl locks each keep to themselves (NFS nolock, Lustre
localflock). Every table command refuses it with one line and exit 2; --unsafe-fs accepts it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import EXPERIMENTS, RECORD, jobauto, run_cli, runs_log

pytestmark = pytest.mark.cluster

# holds an exclusive fcntl lock on the file argv[1] until its stdin closes
HOLD = ("import fcntl, sys; f = open(sys.argv[1], 'r+'); fcntl.lockf(f, fcntl.LOCK_EX); "
        "print('locked', flush=True); sys.stdin.read()")


def test_a_lock_taken_through_one_mount_is_not_seen_through_the_other(
        sshfs_twice: tuple[Path, Path]) -> None:
    """What SQLite would rely on, and why the tables below are refused."""
    a, b = sshfs_twice
    (a / "lockfile").write_text("x")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(a / "lockfile")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        for mount, seen in ((a, True), (b, False)):
            fd = os.open(mount / "lockfile", os.O_RDWR)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                taken = True
            except OSError:
                taken = False
            finally:
                os.close(fd)
            assert taken is not seen, mount
    finally:
        holder.communicate("")


def test_every_table_command_refuses_the_mount_in_one_line(sshfs_twice: tuple[Path, Path]) -> None:
    a, b = sshfs_twice
    (a / "experiments.csv").write_text(EXPERIMENTS)
    (a / "run.sh").write_text(RECORD)
    p = jobauto("import", "experiments.csv", cwd=a, check_rc=2)
    assert not (a / "experiments.db").exists()
    jobauto("import", "experiments.csv", "--unsafe-fs", cwd=a, check_rc=0)
    for argv in (["jobauto", "run", "experiments.db", "sh run.sh"],
                 ["job_scheduler", "experiments.db", "sh run.sh"],
                 ["jobauto", "add", "experiments.db", "experiments.csv"],
                 ["jobauto", "reset", "experiments.db"],
                 ["jobauto", "status", "experiments.db"],
                 ["db_util", "stats", "experiments.db"],
                 ["progress_viewer", "experiments.db"]):
        p = run_cli(*argv, cwd=b)
        assert p.returncode == 2, (argv, p.stdout, p.stderr)
        [line] = p.stderr.splitlines()
        assert line.startswith(f"{argv[0]}") and f"the job table is on {b} (fuse.sshfs, options " in line
        assert "user_id=" in line and "another directory" in line and "--unsafe-fs" in line
        assert "Traceback" not in p.stdout + p.stderr
    assert runs_log(a) == []  # nothing ran


def test_unsafe_fs_accepts_the_risk(sshfs_twice: tuple[Path, Path]) -> None:
    a, b = sshfs_twice
    (a / "experiments.csv").write_text(EXPERIMENTS)
    (a / "run.sh").write_text(RECORD)
    jobauto("import", "experiments.csv", "--unsafe-fs", cwd=a, check_rc=0)
    jobauto("run", "experiments.db", "sh run.sh", "--unsafe-fs", "--quiet", cwd=b, check_rc=0)
    assert [ln.split()[1] for ln in runs_log(b) if ln.startswith("end")] == \
        ["preprocess", "training", "evaluation"]
    p = jobauto("status", "experiments.db", "--unsafe-fs", cwd=a, check_rc=0)
    assert "Done: 3" in p.stdout
