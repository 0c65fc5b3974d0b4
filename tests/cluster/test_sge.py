"""The Grid Engine adapter (jobauto/cluster/schedulers/sge.py) on captured real output
(tests/data/sge/, see the README.md there).

Records no test cluster can produce (an out-of-memory kill, a node failure) are hand-written
inline strings named HAND_*, each citing the documentation whose format it follows.
"""

from __future__ import annotations

import pytest
from helpers import captured, out

from jobauto.cluster.schedulers.sge import SgeAdapter
from jobauto.core.errors import SchedulerError
from jobauto.core.model import CommandResult, Ending, Verdict


def test_sge_submit_argv_keeps_familiar_output_names_and_extra_args_last() -> None:
    argv = SgeAdapter().submit_argv("qsub.3", "jaab12_1", ["-g", "tga-x"])
    assert argv == ["qsub", "-terse", "-cwd", "-N", "jaab12_1", "-o", "qsub.3.o$JOB_ID",
                    "-e", "qsub.3.e$JOB_ID", "-g", "tga-x", "qsub.3"]


@pytest.mark.parametrize("name", ["qsub-terse", "qsub-terse-array", "qsub-plain", "qsub-plain-array"])
def test_sge_parse_submit_terse_and_plain_single_and_array(name: str) -> None:
    res = captured(name)
    number = res.text.split()[2] if res.text.startswith("Your") else res.text.strip()
    assert SgeAdapter().parse_submit(res) == number.split(".")[0]
    assert number.split(".")[0].isdigit()


@pytest.mark.parametrize("name", ["qsub-bad-option", "qsub-missing-script"])
def test_sge_submit_errors_are_permanent_with_the_message(name: str) -> None:
    res = captured(name)
    with pytest.raises(SchedulerError) as e:
        SgeAdapter().parse_submit(res)
    assert not e.value.transient and e.value.rc == res.rc
    assert (res.stderr.split() or res.text.split())[0] in e.value.message


def test_sge_transient_refusals() -> None:
    res = CommandResult(("qsub",), 1, b"", "error: commlib error: got select error (Connection refused)\n"
                        "unable to contact qmaster using port 6444 on host \"vm\"")
    with pytest.raises(SchedulerError) as e:
        SgeAdapter().parse_submit(res)
    assert e.value.transient


def test_sge_unparsable_accepted_output_is_unknown_not_error() -> None:
    res = CommandResult(("qsub",), 0, b"Job accepted by the gateway\n")
    with pytest.raises(SchedulerError) as e:
        SgeAdapter().parse_submit(res)
    assert e.value.transient


def test_sge_queue_empty_running_pending() -> None:
    a = SgeAdapter()
    assert a.parse_queue(captured("qstat-empty-xml")) == a.parse_queue(out(""))
    assert a.parse_queue(captured("qstat-empty-xml")).entries == {}
    q = a.parse_queue(captured("qstat-running-pending-xml"))
    states = sorted(e.state for e in q.entries.values())
    assert q.ok and states == ["qw", "qw", "r", "r", "r", "r"]
    assert all(e.name.startswith("run") and not e.held and not e.error for e in q.entries.values())


def test_sge_queue_held_is_held_and_eqw_is_an_error() -> None:
    a = SgeAdapter()
    [held] = a.parse_queue(captured("qstat-held-xml")).entries.values()
    assert (held.state, held.held, held.error) == ("hqw", True, False)
    [eqw] = a.parse_queue(captured("qstat-eqw-xml")).entries.values()
    assert (eqw.state, eqw.held, eqw.error) == ("Eqw", False, True)


def test_sge_queue_array_is_one_job_and_mixed_queue_keeps_each_kind() -> None:
    a = SgeAdapter()
    arr = a.parse_queue(captured("qstat-array-xml"))
    [entry] = arr.entries.values()
    assert entry.state == "r" and entry.name == "arr_busy"
    mixed = a.parse_queue(captured("qstat-mixed-xml")).by_name()
    assert set(mixed) == {"mix_eqw", "mix_a", "mix_b", "mix_arr", "mix_pending", "mix_held"}
    assert mixed["mix_eqw"].error and mixed["mix_held"].held and mixed["mix_arr"].state == "r"
    assert not any(e.held or e.error for n, e in mixed.items() if n not in ("mix_eqw", "mix_held"))


def test_sge_queue_failure_is_unknown_not_empty() -> None:
    q = SgeAdapter().parse_queue(CommandResult(("qstat",), 1, b"", "error: unable to contact qmaster"))
    assert not q.ok and "unable to contact qmaster" in q.error


def sge_ending(name: str) -> Ending:
    [end] = SgeAdapter().parse_acct(captured(name)).values()
    return end


def test_sge_acct_done_failed_and_array() -> None:
    ok = sge_ending("qacct-ok")
    assert (ok.verdict, ok.exit_code) == (Verdict.DONE, 0)
    # the capture holds an earlier job's record with the same id first: the last job counts
    assert "jobname=ok" in ok.evidence
    exit3 = sge_ending("qacct-exit3")
    assert (exit3.verdict, exit3.exit_code) == (Verdict.FAILED, 3)
    arr = sge_ending("qacct-array")
    assert arr.verdict == Verdict.DONE and "3 tasks" in arr.evidence and "jobname=arr" in arr.evidence


def test_sge_acct_h_rt_and_s_rt_are_walltime_qdel_is_cancelled() -> None:
    hrt = sge_ending("qacct-hrt")
    assert (hrt.verdict, hrt.exit_code) == (Verdict.WALLTIME, 137)
    assert "failed=37 (qmaster enforced h_rt, h_cpu, or h_vmem limit) exit_status=137" in hrt.evidence
    srt = sge_ending("qacct-srt")
    assert (srt.verdict, srt.exit_code) == (Verdict.WALLTIME, 138)
    qdel = sge_ending("qacct-qdel")
    assert (qdel.verdict, qdel.exit_code) == (Verdict.CANCELLED, 137)
    assert "assumedly after job" in qdel.evidence


def test_sge_acct_command_output_for_several_ids_and_an_unknown_one() -> None:
    """The real output of SgeAdapter.acct_argv: one qacct per id, an unknown id only on stderr."""
    res = captured("acct-several")
    ends = SgeAdapter().parse_acct(res)
    verdicts = sorted(e.verdict.value for e in ends.values())
    assert verdicts == ["cancelled", "done", "done", "failed", "walltime", "walltime"]
    assert "999999" not in ends and "not found" in res.stderr
    assert all(e.sched_id == jid and "." not in jid for jid, e in ends.items())
    # each record's jobname; 206 and 208 also have an earlier job's record (jacontract0_1,
    # jacontract2_1) under the same id: the name is the last job's
    assert {jid: e.name for jid, e in ends.items()} == {
        "206": "ok", "208": "arr", "210": "exit3", "211": "hrt", "212": "srt", "213": "to_delete"}


@pytest.mark.parametrize(("name", "jobname"), [
    ("qacct-ok", "ok"), ("qacct-exit3", "exit3"), ("qacct-array", "arr"), ("qacct-hrt", "hrt"),
    ("qacct-srt", "srt"), ("qacct-qdel", "to_delete")])
def test_sge_acct_names_the_job_of_the_record(name: str, jobname: str) -> None:
    """qacct's `jobname` (padded with blanks in the capture): ids are reused, names are not."""
    assert sge_ending(name).name == jobname


def test_sge_acct_unknown_id_is_no_record_but_a_broken_qacct_is_an_error() -> None:
    a = SgeAdapter()
    assert a.parse_acct(captured("qacct-unknown")) == {}
    with pytest.raises(SchedulerError):
        a.parse_acct(out("", 0, "error: can't open accounting file: No such file or directory"))


# Hand-written: qacct(1) records in the layout of the captures (tests/data/sge/qacct-hrt.out);
# failed codes from the Grid Engine admin guide's "qacct -j failed field codes" table
# (37 qmaster enforced limit, 26 opening output file); h_vmem as in queue_conf(5) limits.
HAND_QACCT = """==============================================================
jobname      {name}
jobnumber    {num}
taskid       {task}
qsub_time    Sat Nov 21 16:34:12 2026
failed       {failed}
exit_status  {status}
ru_wallclock {wall}s
category     {category}
"""


def hand_qacct(num: int, failed: str, status: int, category: str = "NONE", wall: int = 5,
               task: str = "undefined", name: str = "ja1_1") -> str:
    return HAND_QACCT.format(num=num, failed=failed, status=status, category=category,
                             wall=wall, task=task, name=name)


def test_sge_acct_memory_limit_node_failure_and_failed_array_task() -> None:
    enforced = "37  : qmaster enforced h_rt, h_cpu, or h_vmem limit"
    text = (hand_qacct(1, enforced, 137, "-l h_vmem=1G")
            + hand_qacct(2, enforced, 137, "-l h_rt=3600,h_vmem=1G", wall=60)
            + hand_qacct(3, enforced, 137, "-l h_rt=60,h_vmem=1G", wall=61)
            + hand_qacct(4, "26  : opening output file", 0)
            + hand_qacct(5, "0", 152, "-l s_cpu=60")
            + hand_qacct(6, "0", 0, task="1") + hand_qacct(6, "0", 2, task="2")
            + hand_qacct(6, "0", 0, task="3"))
    ends = SgeAdapter().parse_acct(out(text))
    assert ends["1"].verdict == Verdict.OOM
    assert ends["2"].verdict == Verdict.OOM        # ran 60 s of its hour: the memory limit
    assert ends["3"].verdict == Verdict.WALLTIME   # ran to its h_rt
    assert ends["4"].verdict == Verdict.NODE_FAILURE and "opening output file" in ends["4"].evidence
    assert ends["5"].verdict == Verdict.WALLTIME
    assert (ends["6"].verdict, ends["6"].exit_code) == (Verdict.FAILED, 2)
    assert "task 6.2 of 3" in ends["6"].evidence


def test_sge_acct_rescheduled_job_counts_its_last_run() -> None:
    text = hand_qacct(7, "25  : rescheduling", 0) + hand_qacct(7, "0", 0)
    assert SgeAdapter().parse_acct(out(text))["7"].verdict == Verdict.DONE


def test_sge_acct_every_verdict_carries_the_name_and_an_array_its_tasks_name() -> None:
    enforced = "37  : qmaster enforced h_rt, h_cpu, or h_vmem limit"
    text = (hand_qacct(1, enforced, 137, "-l h_vmem=1G", name="jamem_1")
            + hand_qacct(4, "26  : opening output file", 0, name="janode_1")
            + hand_qacct(5, "100 : assumedly after job", 137, name="jadel_1")
            + hand_qacct(6, "0", 0, task="1", name="jaarr_1")
            + hand_qacct(6, "0", 2, task="2", name="jaarr_1"))
    ends = SgeAdapter().parse_acct(out(text))
    assert {jid: (e.verdict, e.name) for jid, e in ends.items()} == {
        "1": (Verdict.OOM, "jamem_1"), "4": (Verdict.NODE_FAILURE, "janode_1"),
        "5": (Verdict.CANCELLED, "jadel_1"), "6": (Verdict.FAILED, "jaarr_1")}


def test_sge_cancel_prints_the_error_reason_then_deletes() -> None:
    argv = SgeAdapter().cancel_argv(["221"])
    assert argv[:2] == ["sh", "-c"] and argv[-1] == "221"
    res = captured("cancel-eqw")
    reason = [ln for ln in captured("qstat-j-eqw").text.splitlines() if ln.startswith("error reason")]
    assert reason and "can't open output file" in reason[0]
    first, last = res.text.splitlines()[0], res.text.splitlines()[-1]
    assert first.startswith("job ") and "can't open output file" in first
    assert "deleted job" in last




def test_qstat_lists_each_task_of_an_array_under_its_own_id() -> None:
    """Two running tasks on lines of their own, the pending rest as one range (3-6:1). Only
    jobmon's arrays (named jaTAGXBATCH_K) are split: the capture under such a name."""
    from jobauto.cluster.schedulers.sge import SgeAdapter
    res = captured("qstat-array-tasks-xml")
    other = SgeAdapter().parse_queue(res).entries   # another array: one entry
    assert [k for k, e in other.items() if e.name == "probe5"] == ["1434"]
    res = CommandResult(res.argv, res.rc, res.stdout.replace(b"probe5", b"jaabcdX1_0"))
    snap = SgeAdapter().parse_queue(res)
    tasks = {k: e for k, e in snap.entries.items() if "." in k}
    jid = "1434"
    assert sorted(tasks) == [f"{jid}.{t}" for t in range(1, 7)]
    assert tasks[f"{jid}.1"].running and tasks[f"{jid}.2"].running
    assert not tasks[f"{jid}.3"].running and tasks[f"{jid}.6"].state == "qw"
    assert all(e.name == "jaabcdX1_0" for e in tasks.values())


def test_qacct_of_an_array_has_each_task_under_its_own_id() -> None:
    from jobauto.cluster.schedulers.sge import SgeAdapter, task_list
    res = captured("qacct-array-tasks")
    res = CommandResult(res.argv, res.rc, res.stdout.replace(b"probe ", b"jaabcdX1_0"))
    ends = SgeAdapter().parse_acct(res)
    assert ends["1377.1"].verdict == Verdict.DONE and ends["1377.3"].verdict == Verdict.DONE
    assert ends["1377.2"].verdict == Verdict.FAILED and ends["1377.2"].exit_code == 3
    assert ends["1377.2"].sched_id == "1377.2" and ends["1377.2"].name == "jaabcdX1_0"
    assert task_list("1,3-7:2") == [1, 3, 5, 7] and task_list("1-999999999") == []


def test_sge_hold_jid_args_and_the_hqw_it_shows() -> None:
    """jobmon --ahead: -hold_jid with every predecessor; Grid Engine lists such a job as hqw,
    which qstat -xml does not tell from a user's hold (the monitor reads it for an ahead job)."""
    a = SgeAdapter()
    assert a.depend_args(["12", "13"]) == ["-hold_jid", "12,13"]
    q = a.parse_queue(captured("qstat-hold-jid-xml")).by_name()
    assert q["ahead_a"].running and not q["ahead_a"].held
    assert [(q[n].state, q[n].held, q[n].error) for n in ("ahead_b", "ahead_c")] == [("hqw", True, False)] * 2
