"""jobmon --ahead on real Grid Engine, Slurm and the PBS wrappers, over sshd: one short run per
scheduler holds a chain that finishes, a chain whose middle step fails, and a chain whose step
writes a failed marker but exits 0 (the scheduler's afterok is satisfied; the markers are not)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Sched, base_args, jobauto, jobmon, make_job

from jobauto.run import quelist
from jobauto.store import Store

pytestmark = pytest.mark.cluster


def test_chains_queued_ahead_finish_fail_and_are_taken_out(sched: Sched, tmp_path: Path) -> None:
    c = sched.cluster
    rdir = c.remote_dir(f"ahead-{sched.name}")
    ldir = tmp_path / "camp"
    init = ldir / "init"
    bodies = {"ok": ["sleep 1"] * 3,
              "mid": ["sleep 2", "sleep 2; exit 3", "touch ran", "touch ran"],
              "lie": ["sleep 2; echo lie > qsub.failed.0; exit 0", "touch ran"]}
    for d, steps in bodies.items():
        for i, body in enumerate(steps):
            make_job(init, f"{d}/qsub.{i}", [f"qsub.finished.{i - 1}"] if i else [], body)
    p = jobmon(*base_args(c, ldir, rdir), "--datedir=r", "--ahead=10", *sched.args,
               timeout=240, check_rc=1)
    assert "queued-ahead" in p.stdout   # the count line shows jobs waiting on the scheduler
    run = ldir / "r"
    store = Store(run / ".jobauto" / "state.db")
    states = {j.name: j.state.value for j in store.load_jobs()}
    assert states == {"ok/qsub.0": "done", "ok/qsub.1": "done", "ok/qsub.2": "done",
                      "mid/qsub.0": "done", "mid/qsub.1": "error", "mid/qsub.2": "pending",
                      "mid/qsub.3": "pending", "lie/qsub.0": "error", "lie/qsub.1": "pending"}
    # each was queued ahead, then taken out of the queue: blocked, never run, no marker
    for name in ("mid/qsub.2", "mid/qsub.3", "lie/qsub.1"):
        kinds = [k for _, k, d in store.events(name)]
        assert "unhooked" in kinds, (name, kinds)
        assert any("queued ahead after" in d for _, k, d in store.events(name) if k == "intent")
    home = c.path(rdir) / "r"
    assert not list(home.rglob("ran"))
    assert not (home / "mid" / "qsub.finished.2").exists() and not (home / "lie" / "qsub.finished.1").exists()
    assert any("queued ahead after ok/qsub.0" in d for _, k, d in store.events("ok/qsub.1"))
    assert "blocked  mid/qsub.3: by mid/qsub.1" in p.stdout
    assert "blocked  lie/qsub.1: by lie/qsub.0" in p.stdout
    lines = {ln.name: ln for ln in quelist.parse((run / "quelist").read_text())}
    assert set(lines) == set(states) and "queue" not in lines["mid/qsub.2"].extra
    why = jobauto("explain", str(run), "mid/qsub.2", check_rc=0).stdout
    assert "blocked" in why and "unhooked" in why
