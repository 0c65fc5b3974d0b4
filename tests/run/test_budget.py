"""The caps (jobauto/run/budget.py) on the fake cluster with an explicit clock: the
scheduler-command budget delays submissions and polls to the next window and never drops one;
the counters are kept in the store's meta, survive a new monitor and are shown by status and
explain."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Rig, chain, make_job

from jobauto.core.errors import TransportError
from jobauto.core.spent import Spent
from jobauto.run.budget import SLACK_S, WINDOW_S, Budget
from jobauto.run.explain import explain
from jobauto.store import Store
from jobauto.view.campaign import gather
from jobauto.view.status import render_json, render_text

FAKE_SCHEDULER = ("fake-qsub", "fake-qstat", "fake-qacct", "fake-qdel")


def scheduler_calls(rig: Rig) -> list[str]:
    """Every scheduler command the fake cluster received, as a shim on its PATH would log them
    (a submission runs inside the journaling wrapper: its argv follows the wrapper's own)."""
    out = []
    for cmd in rig.transport.commands:
        argv = list(cmd.argv)
        if argv[0] in FAKE_SCHEDULER:
            out.append(argv[0])
        elif argv[3:4] == ["jobauto-submit"]:
            out.append(argv[11])  # sh -c OP jobauto-submit JOURNAL TOKEN WRAPPER SCRIPT TEXT AFTER BACK ARGV...
        elif argv[3:4] == ["jobauto-array"]:
            out.append(argv[8])   # sh -c OP jobauto-array JOURNAL TOKEN TABLE WRAPPER ARGV...
    return out


def capped(tmp_path: Path, per_minute: int, n: int) -> Rig:
    rig = Rig(tmp_path, maxqsub=100)
    rig.settings.max_sched_per_minute = per_minute
    for i in range(n):
        make_job(rig.init, f"fan/qsub.{i}")
    return rig


def test_the_budget_delays_submissions_to_the_next_window_and_drops_none(tmp_path: Path) -> None:
    rig = capped(tmp_path, 4, 6)      # half for polls (2), half for submissions (2)
    m = rig.start()
    spent_at: list[tuple[float, int]] = []
    now, seen, notes = 1000.0, 0, []
    for _ in range(100):
        r = m.tick(now)
        calls = scheduler_calls(rig)
        spent_at.append((now, len(calls) - seen))
        seen = len(calls)
        notes += r.notes
        for job in rig.cluster.running():
            rig.cluster.finish(job)
        if r.finished:
            break
        now += 10.0
    assert r.finished and r.exit_code == 0
    # every job submitted exactly once: delayed, never dropped
    assert sorted(j.script for j in rig.cluster.submitted) == sorted(f"qsub.{i}" for i in range(6))
    # never more than the cap in any window of the monitor's clock
    for t, _ in spent_at:
        assert sum(n for u, n in spent_at if t - WINDOW_S < u <= t) <= 4
    # 2 submissions at 1000 s; the next 2 only once the first left the window
    per_tick = [n for _, n in spent_at]
    assert per_tick[0] == 2, per_tick
    assert any("4 ready job(s) wait for the next window of the scheduler-command budget" in n
               for n in notes), notes
    assert now - 1000.0 >= 2 * (WINDOW_S + SLACK_S)   # three windows of two submissions


def test_polls_wait_too_when_their_half_is_spent(tmp_path: Path) -> None:
    rig = capped(tmp_path, 2, 1)     # one poll and one submission a window
    m = rig.start()
    m.tick(0.0)                      # submits
    assert m.tick(10.0).notes == []  # the poll of this window
    r = m.tick(20.0)
    assert any("queue listings and accounting queries wait" in n for n in r.notes), r.notes
    assert scheduler_calls(rig) == ["fake-qsub", "fake-qstat"]
    rig.cluster.finish(rig.cluster.running()[0])
    r = m.tick(30.0)                 # the marker is seen without asking the scheduler
    assert r.finished and r.exit_code == 0


def test_no_cap_no_delay(tmp_path: Path) -> None:
    rig = Rig(tmp_path, maxqsub=100)
    for i in range(30):
        make_job(rig.init, f"fan/qsub.{i}")
    m = rig.start()
    assert m.tick(0.0).counts["running"] == 30


def test_counters_are_kept_in_the_store_survive_a_new_monitor_and_are_shown(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    chain(rig.init, "Si", 3)
    m = rig.start()
    m.tick(100.0)
    rig.cluster.finish(rig.job("Si/qsub.0"))
    m.tick(110.0)
    rig.transport.usage.bytes_pushed += 1234     # as a push over rsync would count it
    m.commit()
    first = len(scheduler_calls(rig))
    assert Spent.from_meta(Store(rig.run / ".jobauto" / "state.db").get_meta).sched_commands == first
    m = rig.new_monitor()                        # a restart: the counters go on from the store
    for t in (120.0, 130.0, 140.0):
        m.tick(t)
        for job in rig.cluster.running():
            rig.cluster.finish(job)
    calls = scheduler_calls(rig)
    assert len(calls) > first
    c = gather(rig.run, now=140.0)
    assert c.spent is not None and c.spent.sched_commands == len(calls)
    assert c.spent.bytes_pushed == 1234 and c.spent.bytes_scanned > 0
    assert c.spent.per_minute(140.0, 10) == len(calls)   # all within the last 10 minutes
    text = render_text(gather(rig.run, now=140.0, summary=True))
    assert f"Cluster: {len(calls)} scheduler commands" in text and "pushed 1.2 KiB" in text
    assert f'"sched_commands": {len(calls)}' in render_json(c)
    shown = "\n".join(explain(rig.run, "Si/qsub.1"))
    assert f"run spent:  {len(calls)} scheduler commands" in shown


def test_damaged_counters_read_as_zero() -> None:
    meta = {"spent.sched_commands": "12x", "spent.logins": "3", "spent.minutes": "[[1, \"a\"]]"}
    s = Spent.from_meta(meta.get)
    assert (s.sched_commands, s.logins, s.minutes) == (0, 3, {})


def test_the_login_cap_refuses_a_login_until_the_hour_has_room() -> None:
    usage = Spent()
    budget = Budget(usage, Spent(), None, 2)
    usage.gate = budget.gate(0.0)
    usage.login()
    usage.login()
    with pytest.raises(TransportError, match="login budget: 2 SSH login"):
        usage.login()
    assert usage.logins == 2                     # a refused login is not counted
    budget.charge(0.0)
    usage.gate = budget.gate(3599.0)
    with pytest.raises(TransportError, match="--max-logins-per-hour=2"):
        usage.login()
    usage.gate = budget.gate(3600.0)
    usage.login()
    assert usage.logins == 3


def test_the_queue_and_the_accounting_take_turns_when_polls_are_short(tmp_path: Path) -> None:
    """At a short --interval the poll half is spent by queue listings; a job that left the queue
    without a marker still gets its accounting record (its verdict). The fake cluster does not
    reproduce the starvation the turns fixed (its slots free together); the real-cluster test
    tests/run/test_arrays_cluster.py[sge] did (a walltime-killed task waited for ever before)."""
    from jobauto.core.model import Verdict

    rig = capped(tmp_path, 40, 1)    # 20 polls a window: queue listings every 0.5 s would take them all
    rig.settings.lost_after_s = 1000.0
    m = rig.start()
    m.tick(0.0)
    rig.cluster.end(rig.cluster.running()[0], Verdict.WALLTIME, 137)   # gone, no marker
    now, r = 0.5, None
    for _ in range(400):             # 200 s of 0.5 s cycles: three windows and more
        r = m.tick(now)
        if r.finished:
            break
        now += 0.5
    assert r is not None and r.finished and r.exit_code == 1, (now, r)
    assert "fake-qacct" in scheduler_calls(rig)
    assert m.jobs["fan/qsub.0"].verdict == Verdict.WALLTIME.value


def test_signal_markers_wait_for_the_accounting_query_the_budget_put_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Failed markers with a signal's exit code wait for the accounting's word on who killed the
    jobs. When the budget lets one query name only some of them (Grid Engine: one qacct per
    id), the others are not given up at --lost-after: their verdicts still come from the
    accounting at a later window, not from the markers."""
    from jobauto.cluster import host
    from jobauto.core.model import Ending, Verdict

    monkeypatch.setitem(host.CALLS, ("fake", "acct"), lambda n: n)   # one command per id
    rig = capped(tmp_path, 40, 2)
    rig.settings.lost_after_s = 5.0
    m = rig.start()
    m.tick(0.0)                      # both go out
    m.budget.per_minute = 2          # then one poll command a minute: one id per query
    now, r = 1.0, None
    for _ in range(600):             # 300 s of 0.5 s cycles, lost-after 5 s
        for fj in rig.cluster.running():
            rig.cluster.finish(fj, rc=137)   # the wrapper survived the kill: failed marker 137
            fj.ending = Ending(fj.id, Verdict.WALLTIME, 137, "sacct: TIMEOUT", name=fj.name)
        r = m.tick(now)
        if r.finished:
            break
        now += 0.5
    assert r is not None and r.finished, now
    for name in ("fan/qsub.0", "fan/qsub.1"):
        job = m.jobs[name]
        assert job.verdict == Verdict.WALLTIME.value and "sacct: TIMEOUT" in job.evidence, \
            (name, job.evidence)


def test_jobauto_set_changes_the_caps_of_the_running_monitor(tmp_path: Path) -> None:
    rig = capped(tmp_path, 4, 6)      # two submissions a window
    m = rig.start()
    m.tick(1000.0)
    assert len(rig.cluster.submitted) == 2
    other = Store(rig.run / ".jobauto" / "state.db")
    other.add_request(0.0, "set", {"values": {"max_scheduler_commands_per_minute": 100,
                                              "max_logins_per_hour": 7}})
    other.close()
    r = m.tick(1010.0)                # the same window: the new cap has room for the rest
    assert len(rig.cluster.submitted) == 6, r.notes
    assert (m.budget.per_minute, m.budget.logins_per_hour) == (100, 7)
    assert any("max-scheduler-commands-per-minute" in n and "-> 100" in n for n in r.notes), r.notes


def test_the_budget_counts_an_array_as_one_command_not_one_per_task(tmp_path: Path) -> None:
    """A rendered sweep under the cap goes as one array: the budget bounds scheduler commands,
    and an array of 50 tasks is one (the 1,000-row bench once went 26 jobs per window, each
    window's room spent as if every task were its own qsub). What does not fit the room (here
    a hand-made job of another shape, after the array) waits for the next window."""
    rig = capped(tmp_path, 4, 0)      # room for 2 submissions a window
    rows = [f"r{i}" for i in range(50)]
    for r in rows:
        make_job(rig.init, f"{r}/qsub.0")
    make_job(rig.init, "solo/qsub.7")
    make_job(rig.init, "late/qsub.8")
    (rig.init / ".jobauto-rendered").write_text("# rendered\n" + "\n".join(rows) + "\n")
    m = rig.start()
    r = m.tick(1000.0)
    assert len(rig.cluster.arrays) == 1, rig.cluster.arrays
    assert len(rig.cluster.submitted) == 51, len(rig.cluster.submitted)   # 50 tasks + 1 job
    assert sorted(scheduler_calls(rig)) == ["fake-qsub", "fake-qsub-array"]
    assert any("1 ready job(s) wait for the next window" in n for n in r.notes), r.notes
    assert sorted(m.jobs[n].state.value for n in ("solo/qsub.7", "late/qsub.8")) == \
        ["pending", "running"]
