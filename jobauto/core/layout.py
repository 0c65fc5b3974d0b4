"""Where a run keeps its own state: names shared by jobmon, its viewers and the store."""

from __future__ import annotations

from pathlib import Path

STATE_DIR = ".jobauto"      # LDIR/DATE/.jobauto/ and RDIR/DATE/.jobauto/: never a job's, never synced
STATE_DB = "state.db"       # the run store, in STATE_DIR
LOCK = "lock"               # the monitor's lock file, in STATE_DIR
LOG = "jobmon.log"          # a detached monitor's output (--daemon), in STATE_DIR
PID = "jobmon.pid"          # a detached monitor's process id, in STATE_DIR
BUILDING = ".jobauto-new"          # LDIR/.DATE.jobauto-new/: a run being created (run/opener.py)
CREATING = ".jobauto-creating"     # LDIR/.jobauto-creating: held by the monitor creating a run


def state_dir(run_dir: Path) -> Path:
    return run_dir / STATE_DIR


def state_db(run_dir: Path) -> Path:
    return run_dir / STATE_DIR / STATE_DB


def lock_path(run_dir: Path) -> Path:
    return run_dir / STATE_DIR / LOCK


def log_path(run_dir: Path) -> Path:
    return run_dir / STATE_DIR / LOG


def pid_path(run_dir: Path) -> Path:
    return run_dir / STATE_DIR / PID

# Written by `jobauto render` in its --out directory: jobmon's --arrays is on by default for the
# jobs under it (run/arrays.py).
RENDERED = ".jobauto-rendered"
