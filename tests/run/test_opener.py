"""Opening a run (jobauto/run/opener.py) as jobmon does on the local scheduler: a creation
killed midway leaves no half-made run; a first push cut short is done again on resume.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from helpers import chain, jobmon, make_job, start_jobmon


def test_a_first_push_cut_short_is_done_again_on_resume(tmp_path: Path) -> None:
    """kill -9 during the very first push left a run whose tree never fully reached the cluster;
    the store remembers the push was not finished and the resume pushes again."""
    import shutil as sh
    import sqlite3
    ldir = tmp_path / "camp"
    chain(ldir / "init", "Si", 2)
    args = [f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.1",
            "--datedir=r"]
    jobmon(*args, "--initonly", check_rc=0)
    # what a kill during the push leaves: the store says "not pushed", the cluster has nothing
    con = sqlite3.connect(ldir / "r" / ".jobauto" / "state.db")
    con.execute("UPDATE meta SET value='0' WHERE key='pushed'")
    con.commit()
    con.close()
    sh.rmtree(tmp_path / "remote" / "r")
    p = jobmon(*args, timeout=120, check_rc=0)
    assert "first push to the cluster did not finish" in p.stdout
    assert (tmp_path / "remote" / "r" / "Si" / "qsub.finished.1").exists()


def test_a_creation_killed_at_any_moment_leaves_no_half_made_run(tmp_path: Path) -> None:
    """kill -9 while a run is being created (copying init/, writing the store) leaves either no
    run or a complete one: the resume neither says "all jobs done" for a half-made store nor
    refuses a half-copied DATE/, and every job runs once."""
    ldir, log = tmp_path / "camp", tmp_path / "runs.log"
    for d in range(60):
        make_job(ldir / "init", f"m{d}/qsub.0", body=f"echo m{d} >> {log}")
    args = [f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.1",
            "--datedir=r", "--maxqsub=20"]
    for delay in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4):
        proc = start_jobmon(args, tmp_path / "mon.out")
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        run = ldir / "r"
        assert not run.exists() or (run / ".jobauto" / "state.db").exists()
        if run.exists():
            break
    p = jobmon(*args, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = log.read_text().split()
    assert sorted(lines) == sorted(f"m{d}" for d in range(60)), "every job once"
    assert [x.name for x in ldir.iterdir() if x.name.startswith(".")] == []


def test_a_first_push_cut_before_a_scripts_mode_is_done_again_on_resume(tmp_path: Path) -> None:
    """kill -9 inside the first push can leave a script on the cluster with its content but not
    yet its mode (same size, same second): the resume's push copies it again, and the job runs
    instead of waiting for ever for its marker."""
    import sqlite3
    ldir = tmp_path / "camp"
    chain(ldir / "init", "Si", 2)
    args = [f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.1",
            "--datedir=r"]
    jobmon(*args, "--initonly", check_rc=0)
    remote = tmp_path / "remote" / "r" / "Si" / "qsub.0"
    st = (ldir / "r" / "Si" / "qsub.0").stat()
    remote.chmod(0o644)
    os.utime(remote, (st.st_atime, st.st_mtime))
    con = sqlite3.connect(ldir / "r" / ".jobauto" / "state.db")
    con.execute("UPDATE meta SET value='0' WHERE key='pushed'")
    con.commit()
    con.close()
    jobmon(*args, timeout=60, check_rc=0)
    assert (tmp_path / "remote" / "r" / "Si" / "qsub.finished.1").exists()
