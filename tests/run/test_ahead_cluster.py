"""jobmon --ahead on real Grid Engine, Slurm and the PBS wrappers, over sshd: one short run per
scheduler holds a chain that finishes, a chain whose middle step fails, and a chain whose step
writes a failed marker but exits 0 (the scheduler's afterok is satisfied; the markers are not);
a second one cancels the middle job of a chain queued ahead and kills the monitor -9 while
jobs wait ahead, then resumes it."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    Sched,
    base_args,
    job_body,
    jobauto,
    jobmon,
    make_job,
    runs_per_job,
    ssh,
    start_jobmon,
)

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


QUEUE = {"sge": "qstat -u '*'", "slurm": "squeue -h -o %i", "pbs": "squeue -h -o %i"}


def in_queue(sched: str, ids: list[str]) -> set[str]:
    """Which of IDS the scheduler still lists (the PBS wrappers sit on Slurm)."""
    out = ssh(QUEUE[sched], check=False).stdout
    words = {line.split()[0] for line in out.splitlines() if line.split()}
    return {i for i in ids if i in words}


CANCEL = {"sge": "qdel", "slurm": "scancel", "pbs": "scancel"}


def cancel_left(sched: str, run: Path) -> None:
    """Cancel what a failed test left in the queue (by the ids its store holds): a job queued
    ahead behind a predecessor that will never end well waits there for ever."""
    if not (run / ".jobauto" / "state.db").exists():
        return
    ids = sorted(i for _, i in stored(run).values() if i and i.isdigit())
    if ids:
        ssh(f"{CANCEL[sched]} {' '.join(ids)}", check=False)


def stored(run: Path) -> dict[str, tuple[str, str | None]]:
    """name -> (state, scheduler id), read as the views read it."""
    s = Store(run / ".jobauto" / "state.db", readonly=True)
    try:
        return {j.name: (j.state.value, j.sched_id) for j in s.load_jobs()}
    finally:
        s.close()


def status(run: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(jobauto("status", str(run), "--json", check_rc=0).stdout)
    return out


def wait_for(check: Callable[[], bool], log: Path, timeout_s: float = 120.0) -> None:
    deadline = time.time() + timeout_s
    while not check():
        assert time.time() < deadline, "timed out; the monitor said:\n" + log.read_text()[-4000:]
        time.sleep(0.3)


def test_cancel_in_a_chain_and_kill_9_while_jobs_wait_ahead(
        sched: Sched, tmp_path: Path) -> None:
    """One run: `jobauto cancel` of the middle job of a chain takes its queued-ahead steps out
    of the queue (blocked, never run); then the monitor is killed -9 while two chains wait ahead
    behind a job held by a gate file, and resumed: every job runs exactly once.

    On Slurm and the PBS wrappers this once failed in two CI runs of three: the cancel's TERM
    reached the script's `sleep` before the script, which ran on to exit 0, so the cancelled
    job came back done by its markers (the wrapper now takes exit 0 after TERM as stopped)."""
    c = sched.cluster
    rdir = c.remote_dir(f"ahead-kill-{sched.name}")
    home = c.path(rdir)
    log = home / "runs.log"
    gate = home / "gate"
    ldir = tmp_path / "camp"
    init = ldir / "init"
    for i, body in enumerate([job_body(log, "cx0", 1), job_body(log, "cx1", 300),
                              job_body(log, "cx2"), job_body(log, "cx3")]):
        make_job(init, f"cx/qsub.{i}", [f"qsub.finished.{i - 1}"] if i else [], body)
    for k in ("k0", "k1"):
        # bounded: a test that fails before opening the gate leaves no job waiting for ever
        wait = f"for i in $(seq 1500); do [ -e {gate} ] && break; sleep 0.2; done\n"
        for i in range(3):
            make_job(init, f"{k}/qsub.{i}", [f"qsub.finished.{i - 1}"] if i else [],
                     (wait if i == 0 else "") + job_body(log, f"{k}/{i}", 1))
    args = [*base_args(c, ldir, rdir), "--datedir=r", "--ahead=10", *sched.args]
    run = ldir / "r"
    mon = start_jobmon(args, tmp_path / "mon.out")
    try:
        def cx_ahead() -> bool:
            if not (run / ".jobauto" / "state.db").exists():
                return False
            doc = status(run)
            ahead = {j["name"] for j in doc["queued_ahead"]}
            return (stored(run).get("cx/qsub.0", ("",))[0] == "done"
                    and {"cx/qsub.2", "cx/qsub.3", "k0/qsub.1", "k1/qsub.2"} <= ahead)
        wait_for(cx_ahead, tmp_path / "mon.out")
        before = stored(run)
        ids = [before[f"cx/qsub.{i}"][1] or "" for i in (1, 2, 3)]
        assert all(ids) and in_queue(sched.name, ids[1:]) == set(ids[1:])
        p = jobauto("cancel", str(run), "cx/qsub.1", check_rc=0)
        assert "cancelled 1 job(s)" in p.stdout
        wait_for(lambda: [stored(run)[f"cx/qsub.{i}"][0] for i in (2, 3)] == ["pending"] * 2,
                 tmp_path / "mon.out")
        wait_for(lambda: not in_queue(sched.name, ids), tmp_path / "mon.out")
        doc = status(run)
        assert doc["counts"]["blocked"] == 2 and doc["counts"]["cancelled"] == 1
        # the k chains still wait ahead behind the gate: kill -9 now
        assert doc["counts"]["queued-ahead"] == 4, doc["counts"]
        os.kill(mon.pid, signal.SIGKILL)
        mon.wait()
    finally:
        if mon.poll() is None:
            mon.kill()
            mon.wait()
        if home.exists():
            gate.touch()     # the monitor is dead: its store stays as the kill left it
        if sys.exc_info()[0] is not None:
            cancel_left(sched.name, run)   # failed before the resume: leave no job queued
    killed = stored(run)
    assert all(killed[f"{k}/qsub.{i}"][0] == "running" for k in ("k0", "k1") for i in range(3))
    p = jobmon(*args, timeout=240, check_rc=1)       # resumed; ends 1: a cancelled job
    out = (tmp_path / "mon.out").read_text() + p.stdout
    runs = runs_per_job(log)
    assert {k: v for k, v in runs.items() if k.startswith("k")} == {
        f"{k}/{i}": 1 for k in ("k0", "k1") for i in range(3)}, out
    assert runs["cx0"] == 1 and runs.get("cx1", 0) <= 1 and "cx2" not in runs and "cx3" not in runs
    end = stored(run)
    assert {n: s for n, (s, _) in end.items() if n.startswith("cx")} == {
        "cx/qsub.0": "done", "cx/qsub.1": "error", "cx/qsub.2": "pending", "cx/qsub.3": "pending"}
    assert all(end[f"{k}/qsub.{i}"][0] == "done" for k in ("k0", "k1") for i in range(3))
    # each k job went to the scheduler once: the resumed monitor took the ahead ones over
    assert {end[f"{k}/qsub.{i}"][1] for k in ("k0", "k1") for i in range(3)} == {
        killed[f"{k}/qsub.{i}"][1] for k in ("k0", "k1") for i in range(3)}
    s = Store(run / ".jobauto" / "state.db", readonly=True)
    try:
        for name in ("cx/qsub.2", "cx/qsub.3"):
            assert "unhooked" in [k for _, k, _ in s.events(name)]
        intents = [n for n in end if sum(k == "intent" for _, k, _ in s.events(n)) != 1]
    finally:
        s.close()
    assert intents == [], intents    # one submission each
    assert "blocked  cx/qsub.3: by cx/qsub.1" in p.stdout
