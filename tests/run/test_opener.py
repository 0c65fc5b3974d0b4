"""Opening a run (jobauto/run/opener.py) as jobmon does on the local scheduler: a first push cut
short is done again on resume.
"""

from __future__ import annotations

from pathlib import Path

from helpers import chain, jobmon


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
