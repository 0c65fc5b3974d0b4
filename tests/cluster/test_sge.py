"""Scheduler adapters on captured real output (tests/data/, see the README.md there).

Records no test cluster can produce (an out-of-memory kill, PBS Pro and Torque exit codes) are
hand-written inline strings named HAND_*, each citing the documentation whose format it follows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from helpers import DATA

from jobauto.cluster.schedulers import adapter_for, parse_detect
from jobauto.cluster.schedulers.base import NAMES
from jobauto.cluster.schedulers.common import combine, fail, is_transient
from jobauto.cluster.schedulers.fake import FakeAdapter, FakeCluster
from jobauto.cluster.schedulers.local import LocalAdapter
from jobauto.cluster.schedulers.pbs import PbsAdapter
from jobauto.cluster.schedulers.sge import SgeAdapter
from jobauto.cluster.schedulers.slurm import SlurmAdapter
from jobauto.core.errors import SchedulerError
from jobauto.core.model import Command, CommandResult, Ending, Verdict


def captured(name: str, sched: str = "sge", argv: tuple[str, ...] = ("qsub",)) -> CommandResult:
    base = DATA / sched / name
    err = base.with_suffix(".err")
    return CommandResult(argv, int(base.with_suffix(".rc").read_text()),
                         base.with_suffix(".out").read_bytes(), err.read_text() if err.exists() else "")


def joined(sched: str, *names: str) -> CommandResult:
    """Several captures as one command's output, as a script that runs them in turn prints it."""
    parts = [captured(n, sched) for n in names]
    return CommandResult(("sh",), 0, b"".join(p.stdout for p in parts), "".join(p.stderr for p in parts))


def out(text: str, rc: int = 0, err: str = "") -> CommandResult:
    return CommandResult(("sh",), rc, text.encode(), err)


# ----------------------------------------------------------------------------- every adapter
@pytest.mark.parametrize("name", [*NAMES, "fake"])
def test_every_adapter_keeps_ids_as_separate_arguments(name: str) -> None:
    """Ids reach the scheduler as argv elements (positional parameters of any sh -c script),
    never spliced into a script's text."""
    a = adapter_for(name)
    ids = ["101", "102"]
    cancel = a.cancel_argv(ids)
    assert cancel[-2:] == ids or cancel[-2:] == ["-101", "-102"]
    acct = a.acct_argv(ids)
    if acct is not None:
        assert acct[-2:] == ids
        assert all("101" not in arg for arg in acct[:-2])


def test_unknown_scheduler_name() -> None:
    with pytest.raises(Exception, match="unknown scheduler"):
        adapter_for("lsf")


def test_detect_sge_from_qstat_help() -> None:
    head = (DATA / "sge" / "qstat-help-head1.out").read_text()
    assert head.split()[0] in ("SGE", "GE", "OGS", "UGE", "AGE")
    assert parse_detect(CommandResult((), 0, b"sge\n")) == "sge"
    assert parse_detect(CommandResult((), 0, b"none\n")) is None


# ------------------------------------------------------------------------------ Grid Engine
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


# ------------------------------------------------------------------------------------ Slurm
def test_slurm_submit_argv_parsable_named_never_quiet() -> None:
    argv = SlurmAdapter().submit_argv("qsub.3", "jaab12_1", ["-p", "debug"])
    assert argv == ["sbatch", "--parsable", "-J", "jaab12_1", "-p", "debug", "qsub.3"]
    assert "-Q" not in argv and "--quiet" not in argv


def test_slurm_parse_submit_plain_array_and_cluster() -> None:
    a = SlurmAdapter()
    for name in ("sbatch-parsable", "sbatch-parsable-array"):
        res = captured(name, "slurm")
        assert a.parse_submit(res) == res.text.strip()
    # sbatch(1) --parsable: "Outputs only the job id number and the cluster name if present.
    # The values are separated by a semicolon."
    assert a.parse_submit(out("4711;cluster2\n")) == "4711"


@pytest.mark.parametrize("name", ["sbatch-bad-option", "sbatch-missing-script"])
def test_slurm_submit_errors_are_permanent(name: str) -> None:
    res = captured(name, "slurm")
    with pytest.raises(SchedulerError) as e:
        SlurmAdapter().parse_submit(res)
    assert not e.value.transient and res.stderr.split()[1] in e.value.message


def test_slurm_submit_limits_and_timeouts_are_transient() -> None:
    for msg in ("sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission "
                "failed: Job violates accounting/QOS policy (job submit limit, user's size and/or "
                "time limits)", "sbatch: error: Batch job submission failed: Socket timed out on "
                "send/recv operation"):
        with pytest.raises(SchedulerError) as e:
            SlurmAdapter().parse_submit(out("", 1, msg))
        assert e.value.transient


def test_slurm_queue_argv_for_a_user_and_for_the_login_user() -> None:
    a = SlurmAdapter()
    assert a.queue_argv("alice") == ["squeue", "-h", "-u", "alice", "-o", "%i|%j|%T|%r"]
    argv = a.queue_argv(None)
    assert argv[:2] == ["sh", "-c"] and '"$(id -un)"' in argv[2]


def test_slurm_queue_empty_running_pending_and_failure() -> None:
    a = SlurmAdapter()
    assert a.parse_queue(captured("squeue-empty", "slurm")) == a.parse_queue(out(""))
    q = a.parse_queue(captured("squeue-running-pending", "slurm"))
    assert sorted(e.state for e in q.entries.values()) == ["PENDING"] * 2 + ["RUNNING"] * 4
    assert sorted(q.by_name()) == [f"run{i}" for i in range(1, 7)]
    assert not any(e.held or e.error for e in q.entries.values())
    bad = a.parse_queue(captured("squeue-unknown", "slurm"))
    assert not bad.ok and "Invalid job id" in bad.error


def test_slurm_queue_held_and_never_satisfied_dependency() -> None:
    a = SlurmAdapter()
    [held] = a.parse_queue(captured("squeue-held", "slurm")).entries.values()
    assert (held.held, held.error, held.reason) == (True, False, "JobHeldUser")
    [dep] = a.parse_queue(captured("squeue-dep-never", "slurm")).entries.values()
    assert (dep.held, dep.error, dep.reason) == (False, True, "DependencyNeverSatisfied")
    # squeue(1) JOB REASON CODES; a requeued job that failed to launch waits for a release
    [requeued] = a.parse_queue(out("77|ja1_1|PENDING|launch failed requeued held\n")).entries.values()
    assert requeued.held and not requeued.error
    q = a.parse_queue(out("78|ja2_1|PENDING|QOSMaxWallDurationPerJobLimit\n"
                          "79|ja3_1|PENDING|QOSMaxJobsPerUserLimit\n")).entries
    assert q["78"].error  # above a per-job limit: never starts
    assert not q["79"].error and not q["79"].held  # waits for the user's other jobs


@pytest.mark.parametrize("name", ["squeue-array", "squeue-array-r", "squeue-array-throttle"])
def test_slurm_queue_array_is_one_running_job(name: str) -> None:
    res = captured(name, "slurm")
    [entry] = SlurmAdapter().parse_queue(res).entries.values()
    assert entry.state == "RUNNING" and res.text.startswith(entry.sched_id + "_")


@pytest.mark.parametrize("name", ["squeue-mixed", "squeue-mixed-r"])
def test_slurm_queue_mixed(name: str) -> None:
    q = SlurmAdapter().parse_queue(captured(name, "slurm")).by_name()
    assert sorted(q) == ["mix_a", "mix_arr", "mix_held", "mix_pending"]
    assert q["mix_arr"].state == "RUNNING" and q["mix_held"].held
    assert all(e.sched_id.isdigit() for e in q.values())


def slurm_ends(*names: str) -> dict[str, Ending]:
    return SlurmAdapter().parse_acct(joined("slurm", *names))


@pytest.mark.parametrize("source", ["sacct", "scontrol"])
def test_slurm_acct_every_captured_ending(source: str) -> None:
    """sacct's records, and scontrol's (what the command prints when accounting is off)."""
    names = [f"{source}-{n}" for n in ("completed", "failed", "timeout", "cancelled", "array")]
    ends = slurm_ends(*names)
    by_verdict = {e.verdict: e for e in ends.values()}
    assert set(by_verdict) == {Verdict.DONE, Verdict.FAILED, Verdict.WALLTIME, Verdict.CANCELLED}
    assert by_verdict[Verdict.FAILED].exit_code == 3
    arr = [e for e in ends.values() if "tasks" in e.evidence]
    assert len(arr) == 1 and arr[0].verdict == Verdict.DONE and "3 tasks" in arr[0].evidence
    assert all(jid.isdigit() and e.sched_id == jid for jid, e in ends.items())
    assert "TIMEOUT" in by_verdict[Verdict.WALLTIME].evidence
    # sacct's JobName / scontrol's JobName=; the array's from its tasks
    assert {jid: e.name for jid, e in ends.items()} == {
        "64": "ok", "66": "arr", "69": "exit3", "70": "timeout", "71": "cancel"}


def test_slurm_acct_cancelled_by_names_the_user_and_unknown_is_no_record() -> None:
    [can] = slurm_ends("sacct-cancelled").values()
    assert "CANCELLED by 1001" in can.evidence
    assert slurm_ends("sacct-unknown") == {}
    assert SlurmAdapter().parse_acct(captured("scontrol-unknown", "slurm")) == {}


def test_slurm_acct_command_output_for_several_ids() -> None:
    """The real output of SlurmAdapter.acct_argv (sacct for all ids in one call)."""
    ends = SlurmAdapter().parse_acct(captured("acct-several", "slurm"))
    assert sorted(e.verdict.value for e in ends.values()) == [
        "cancelled", "done", "done", "failed", "walltime"]
    assert "999999" not in ends
    assert sorted(e.name for e in ends.values()) == ["arr", "cancel", "exit3", "ok", "timeout"]


def test_slurm_acct_unreachable_controller_is_an_error_not_an_empty_answer() -> None:
    res = out("", 0, "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n")
    with pytest.raises(SchedulerError) as e:
        SlurmAdapter().parse_acct(res)
    assert e.value.transient


# Hand-written: sacct(1) -P lines "JobID|JobName|State|ExitCode|Elapsed" as in the captures;
# states from sacct(1) JOB STATE CODES, ExitCode "exit:signal" (sacct(1) "ExitCode").
HAND_SACCT = """\
30|ja1_1|FAILED|0:9|00:00:05
31|ja2_1|OUT_OF_MEMORY|0:125|00:00:10
32|ja3_1|NODE_FAIL|0:0|00:10:00
33|ja4_1|BOOT_FAIL|0:0|00:00:00
34|ja5_1|DEADLINE|0:0|00:05:00
35|ja6_1|PREEMPTED|0:15|00:02:00
36|ja7_1|RUNNING|0:0|00:01:00
37|ja8_1|PENDING|0:0|00:00:00
38|ja9_1|REQUEUED|0:0|00:00:30
39_1|arr|COMPLETED|0:0|00:00:01
39_2|arr|FAILED|3:0|00:00:01
39_3|arr|TIMEOUT|0:0|00:01:00
40_1|arr2|COMPLETED|0:0|00:00:01
40_[2-5%2]|arr2|PENDING|0:0|00:00:00
41|name|with|pipes|COMPLETED|0:0|00:00:02
42|allocation|FAILED|1:0|00:00:02
43_1|allocation|COMPLETED|0:0|00:00:01
43_2|arr3|COMPLETED|0:0|00:00:01
"""


def test_slurm_acct_signal_exit_other_final_states_and_non_final_ones() -> None:
    ends = SlurmAdapter().parse_acct(out(HAND_SACCT))
    assert (ends["30"].verdict, ends["30"].exit_code) == (Verdict.FAILED, 137)
    assert ends["31"].verdict == Verdict.OOM
    assert ends["32"].verdict == ends["33"].verdict == Verdict.NODE_FAILURE
    assert ends["34"].verdict == Verdict.WALLTIME
    assert ends["35"].verdict == Verdict.CANCELLED and "preempted" in ends["35"].evidence
    assert not {"36", "37", "38", "40"} & set(ends)
    assert (ends["39"].verdict, ends["39"].exit_code) == (Verdict.FAILED, 3)
    assert "task 39_2 of 3" in ends["39"].evidence and "+1 more" in ends["39"].evidence
    assert ends["41"].verdict == Verdict.DONE


def test_slurm_acct_names_and_the_allocation_placeholder_is_unknown() -> None:
    """sacct may show JobName `allocation` right after a job ends: the name is unknown (""),
    not another job's, so the monitor does not reject the record."""
    ends = SlurmAdapter().parse_acct(out(HAND_SACCT))
    assert ends["30"].name == "ja1_1" and ends["39"].name == "arr"
    assert ends["41"].name == "name|with|pipes"
    assert (ends["42"].verdict, ends["42"].exit_code, ends["42"].name) == (Verdict.FAILED, 1, "")
    assert "allocation" in ends["42"].evidence
    assert (ends["43"].verdict, ends["43"].name) == (Verdict.DONE, "arr3")


def test_slurm_cancel() -> None:
    assert SlurmAdapter().cancel_argv(["5", "6"]) == ["scancel", "5", "6"]
    assert captured("scancel", "slurm").rc == 0


# ------------------------------------------------------------------------- PBS / Torque
def test_pbs_submit_argv_names_the_job_and_passes_the_script() -> None:
    argv = PbsAdapter().submit_argv("qsub.3", "jaab12_1", ["-q", "workq"])
    assert argv == ["qsub", "-N", "jaab12_1", "-q", "workq", "qsub.3"]


def test_pbs_parse_submit_wrapper_pbspro_torque_and_arrays() -> None:
    a = PbsAdapter()
    for name in ("qsub", "qsub-array", "qsub-named"):
        res = captured(name, "pbs")
        assert a.parse_submit(res) == res.text.strip()
    # qsub(1B) of PBS Pro and Torque prints "sequence_number.server_name"; arrays "N[].server"
    assert a.parse_submit(out("4711.pbs01.cluster.example\n")) == "4711"
    assert a.parse_submit(out("4712[].pbs01\n")) == "4712"
    assert a.parse_submit(out("4713[]\n")) == "4713"


@pytest.mark.parametrize("name", ["qsub-bad-option", "qsub-missing-script", "qsub-stdin"])
def test_pbs_submit_errors_are_permanent(name: str) -> None:
    res = captured(name, "pbs")
    with pytest.raises(SchedulerError) as e:
        PbsAdapter().parse_submit(res)
    assert not e.value.transient
    if name == "qsub-missing-script":  # the wrapper reports sbatch's error on stdout
        assert "Unable to open file" in e.value.message


def test_pbs_queue_command_output_on_the_wrappers() -> None:
    """The real output of PbsAdapter.queue_argv: finished (C) jobs are gone, names are whole."""
    q = PbsAdapter().parse_queue(captured("pbs-queue", "pbs"))
    assert q.ok and sorted(q.by_name()) == ["pbs_held", "pbs_run"]
    run, held = q.by_name()["pbs_run"], q.by_name()["pbs_held"]
    assert run.state == "R" and held.state == "Q"
    assert not held.held  # the wrappers show a held job as Q and print no Hold_Types
    assert PbsAdapter().parse_queue(captured("qstat-u", "pbs")).by_name().keys() == q.by_name().keys()


def test_pbs_queue_argv_is_one_command_for_the_user() -> None:
    argv = PbsAdapter().queue_argv("alice")
    assert argv[:2] == ["sh", "-c"] and argv[-1] == "alice" and "qstat -u" in argv[2]
    assert PbsAdapter().queue_argv(None)[-1] == ""


# Hand-written, in the layout of PBS Professional's `qstat -u` (alternate format, Jobname cut
# to 10 characters) and `qstat -f` (PBS Professional Reference Guide, qstat): an array (state B)
# with a subjob, a user hold, a system hold and a finished job.
HAND_PBSPRO_QUEUE = """\

pbs01:
                                                            Req'd  Req'd   Elap
Job ID          Username Queue    Jobname    SessID NDS TSK Memory Time  S Time
--------------- -------- -------- ---------- ------ --- --- ------ ----- - -----
4712[].pbs01    alice    workq    jaarr12_1     --    1   1    --  01:00 B   --
4720.pbs01      alice    workq    jauser12_2    --    1   1    --  01:00 H   --
4721.pbs01      alice    workq    jasyst12_3    --    1   1    --  01:00 H   --
4722.pbs01      alice    workq    jadone12_4    --    1   1    --  01:00 F 00:01
Job Id: 4712[].pbs01
    Job_Name = jaarr12_1
    job_state = B
Job Id: 4720.pbs01
    Job_Name = jauser12_23456789
    job_state = H
    Hold_Types = u
Job Id: 4721.pbs01
    Job_Name = jasyst12_3
    job_state = H
    Hold_Types = s
    comment = job held, too many failed attempts to run
"""


def test_pbs_queue_pbspro_names_holds_and_arrays() -> None:
    q = PbsAdapter().parse_queue(out(HAND_PBSPRO_QUEUE)).entries
    assert set(q) == {"4712", "4720", "4721"}
    assert q["4712"].state == "B" and not q["4712"].held
    assert q["4720"].name == "jauser12_23456789" and q["4720"].held and not q["4720"].error
    assert q["4721"].held and q["4721"].error and "too many failed" in q["4721"].reason


def test_pbs_queue_failure_is_unknown_not_empty() -> None:
    q = PbsAdapter().parse_queue(out("", 1, "Connection refused\nqstat: cannot connect to server pbs01"))
    assert not q.ok and "cannot connect" in q.error


def test_pbs_acct_on_the_wrappers_has_no_exit_status_so_no_verdict() -> None:
    """Slurm's wrappers reject -x (the command then runs plain qstat -f) and print finished jobs
    as C without an exit status: that says only that they ended, which the queue says too."""
    x = captured("qstat-x-f", "pbs")
    assert x.rc == 2 and "Unknown option: x" in x.stderr
    a = PbsAdapter()
    for name in ("pbs-acct", "qstat-f-completed", "qstat-f-exit3", "qstat-f-cancelled",
                 "qstat-f-several", "qstat-f-running", "qstat-unknown"):
        assert a.parse_acct(captured(name, "pbs")) == {}, name
    assert "C" in captured("pbs-acct", "pbs").text


# Hand-written `qstat -x -f` records of PBS Professional (Exit_status, job_state F; codes from
# OpenPBS src/include/job.h JOB_EXEC_*; 256 + signal for a job killed by a signal) and
# `qstat -f` records of Torque (exit_status, job_state C; codes from Adaptive Computing's Torque
# "Job exit status" page), reduced to the attributes the adapter reads.
HAND_PBS_RECORD = """\
Job Id: {num}.pbs01
    Job_Name = ja{num}_1
    job_state = {state}
    resources_used.walltime = {used}
    {attr} = {status}
    Resource_List.walltime = 01:00:00
"""


def pbs_record(num: int, status: int, pbspro: bool = True, used: str = "00:10:00") -> str:
    return HAND_PBS_RECORD.format(num=num, status=status, used=used, state="F" if pbspro else "C",
                                  attr="Exit_status" if pbspro else "exit_status")


@pytest.mark.parametrize(("status", "pbspro", "used", "verdict", "code"), [
    (0, True, "00:10:00", Verdict.DONE, 0),
    (3, True, "00:10:00", Verdict.FAILED, 3),
    (-29, True, "01:00:05", Verdict.WALLTIME, -29),
    (-27, True, "00:10:00", Verdict.OOM, -27),
    (-26, True, "00:10:00", Verdict.OOM, -26),
    (-28, True, "00:10:00", Verdict.WALLTIME, -28),
    (-25, True, "00:10:00", Verdict.FAILED, -25),
    (-1, True, "00:00:00", Verdict.NODE_FAILURE, -1),
    (-11, True, "00:00:00", Verdict.NODE_FAILURE, -11),  # PBS Pro: JOB_EXEC_RERUN
    (271, True, "00:10:00", Verdict.CANCELLED, 143),
    (265, True, "00:10:00", Verdict.CANCELLED, 137),
    (271, True, "01:00:01", Verdict.WALLTIME, 143),      # older PBS Pro: SIGTERM at the limit
    (267, True, "00:10:00", Verdict.FAILED, 139),
    (-11, False, "01:00:02", Verdict.WALLTIME, -11),
    (-10, False, "00:10:00", Verdict.OOM, -10),
    (-12, False, "00:10:00", Verdict.WALLTIME, -12),
    (-9, False, "00:00:00", Verdict.NODE_FAILURE, -9),
    (271, False, "00:10:00", Verdict.CANCELLED, 143),
    (0, False, "00:10:00", Verdict.DONE, 0),
])
def test_pbs_acct_exit_status_tables(status: int, pbspro: bool, used: str, verdict: Verdict,
                                     code: int) -> None:
    [end] = PbsAdapter().parse_acct(out(pbs_record(4800, status, pbspro, used))).values()
    assert (end.sched_id, end.verdict, end.exit_code, end.name) == ("4800", verdict, code, "ja4800_1")
    assert f"xit_status={status}" in end.evidence and "Job_Name=ja4800_1" in end.evidence


# Hand-written Torque `qstat -x` (XML) for a finished job, in the element layout of Torque's
# XML output (<Data><Job>, one element per attribute, resources as nested elements).
HAND_TORQUE_XML = (
    "<Data><Job><Job_Id>179.host</Job_Id><Job_Name>ja179_1</Job_Name><job_state>C</job_state>"
    "<resources_used><walltime>00:30:01</walltime></resources_used>"
    "<Resource_List><walltime>00:30:00</walltime></Resource_List>"
    "<exit_status>-11</exit_status></Job>"
    "<Job><Job_Id>180.host</Job_Id><Job_Name>ja180_1</Job_Name><job_state>R</job_state></Job></Data>"
)


def test_pbs_acct_torque_xml_and_unfinished_jobs() -> None:
    ends = PbsAdapter().parse_acct(out(HAND_TORQUE_XML))
    assert set(ends) == {"179"} and ends["179"].verdict == Verdict.WALLTIME
    assert ends["179"].name == "ja179_1"


def test_pbs_acct_name_is_whole_even_when_qstat_wraps_it() -> None:
    """PBS Pro's `qstat -f` continues a long value on the next line (at 80 columns)."""
    text = pbs_record(4801, 0).replace("Job_Name = ja4801_1", "Job_Name = jalong" + "x" * 60
                                       + "\n\tyyyy_1")
    [end] = PbsAdapter().parse_acct(out(text)).values()
    assert end.name == "jalong" + "x" * 60 + "yyyy_1"


def test_pbs_acct_server_down_is_an_error() -> None:
    with pytest.raises(SchedulerError):
        PbsAdapter().parse_acct(out("", 0, "Connection refused\nqstat: cannot connect to server pbs01 "
                                    "(errno=111)\n"))
    assert PbsAdapter().parse_acct(out("", 0, "qstat: Unknown Job Id 999.pbs01\n")) == {}


def test_pbs_cancel() -> None:
    assert PbsAdapter().cancel_argv(["5"]) == ["qdel", "5"]
    assert captured("qdel", "pbs").rc == 0


# ------------------------------------------------------------------------------------ local
def test_local_adapter_parses_ps_and_has_no_accounting() -> None:
    a = LocalAdapter()
    q = a.parse_queue(CommandResult(("ps",), 0, b"  12 Ss\n  13 Z\n 14 R+\n"))
    assert set(q.entries) == {"12", "14"}
    assert a.acct_argv(["12"]) is None and a.parse_acct(out("")) == {}
    assert a.cancel_argv(["12", "14"]) == ["kill", "-TERM", "--", "-12", "-14"]


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs util-linux setsid")
def test_local_cancel_ends_the_job_and_its_children(tmp_path: Path) -> None:
    """A real local job (its pid is its process group) and a child of it both end."""
    script = tmp_path / "qsub.1"
    script.write_text("#!/bin/sh\nsleep 300 &\necho $! > child\nwait\n")
    script.chmod(0o755)
    a = LocalAdapter()
    started = subprocess.run(a.submit_argv("qsub.1", "ja1_1", []), cwd=tmp_path, capture_output=True)
    pid = a.parse_submit(CommandResult((), started.returncode, started.stdout, started.stderr.decode()))
    deadline = time.monotonic() + 5
    while not (tmp_path / "child").exists() or not (tmp_path / "child").read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child = int((tmp_path / "child").read_text())
    assert os.getpgid(int(pid)) == int(pid) == os.getpgid(child)
    assert subprocess.run(a.cancel_argv([pid])).returncode == 0
    for p in (int(pid), child):
        while True:
            try:
                os.kill(p, 0)
            except ProcessLookupError:
                break
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":  # ended, not yet reaped by its parent
                break
            assert time.monotonic() < deadline + 5
            time.sleep(0.02)


# ------------------------------------------------------------------------------------- fake
def run(cluster: FakeCluster, argv: list[str], cwd: str = "/r") -> CommandResult:
    return cluster(Command.of(argv, cwd))


def test_fake_cluster_reports_endings_and_deletes_with_the_reason() -> None:
    c, a = FakeCluster(), FakeAdapter()
    for i in range(4):
        c.write(f"/r/qsub.{i}", b"#!/bin/sh\n")
        run(c, a.submit_argv(f"qsub.{i}", f"ja{i}", []))
    j0, j1, j2, j3 = c.submitted
    c.finish(j0, rc=0)
    c.end(j1, Verdict.WALLTIME, 137, "fake: h_rt")
    j2.state, j2.reason = "Eqw", "can't open output file"
    q = a.parse_queue(run(c, a.queue_argv(None)))
    assert set(q.entries) == {j2.id, j3.id} and q.entries[j2.id].error and not q.entries[j3.id].error
    res = run(c, a.cancel_argv([j2.id]))
    assert "can't open output file" in res.text and j2.id not in c.queue
    ends = a.parse_acct(run(c, a.acct_argv([j0.id, j1.id, j2.id, j3.id]) or []))
    assert {k: e.verdict for k, e in ends.items()} == {
        j0.id: Verdict.DONE, j1.id: Verdict.WALLTIME, j2.id: Verdict.CANCELLED}
    assert ends[j1.id].exit_code == 137 and ends[j1.id].evidence == "fake: h_rt"
    assert {k: e.name for k, e in ends.items()} == {j0.id: "ja0", j1.id: "ja1", j2.id: "ja2"}
    # a test may stand an older job's record (another name) under the id
    j3.ending = Ending(j3.id, Verdict.FAILED, 1, "fake: old\tjob", name="someone-else")
    [old] = a.parse_acct(run(c, a.acct_argv([j3.id]) or [])).values()
    assert (old.name, old.evidence, old.exit_code) == ("someone-else", "fake: old\tjob", 1)
    c.qacct_fails = True
    with pytest.raises(SchedulerError):
        a.parse_acct(run(c, a.acct_argv([j0.id]) or []))


# ------------------------------------------------------------------- common: arrays, refusals
def test_combine_names_the_array_after_its_first_named_task() -> None:
    tasks = [Ending("9_1", Verdict.DONE, 0, "a", ""), Ending("9_2", Verdict.FAILED, 2, "b", "ja9_1"),
             Ending("9_3", Verdict.DONE, 0, "c", "ja9_1")]
    assert combine("9", tasks).name == "ja9_1"
    assert combine("9", [tasks[0], tasks[2]]).name == "ja9_1"
    assert combine("9", tasks[:1]).name == ""


# Refusals as the schedulers print them: Grid Engine's qmaster messages (sge_job.c,
# MSG_JOB_ALLOWEDJOBSPERUSER_UU / ...PERCLUSTER, "unknown resource"), sbatch's "error:" lines
# (the reason line, then slurm_strerror of ESLURM_ACCOUNTING_POLICY / ESLURM_INVALID_PARTITION_NAME).
POLICY = ("sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job "
          "submit limit, user's size and/or time limits)")


@pytest.mark.parametrize("msg", [
    "Unable to run job: job rejected: Only 1 jobs are allowed per user (current job count: 1)\nExiting.",
    "Unable to run job: job rejected: only 1000 jobs are allowed per user (current job count: 1000)",
    "Unable to run job: job rejected: Only 500 jobs are allowed per cluster\nExiting.",
    "sbatch: error: QOSMaxSubmitJobPerUserLimit\n" + POLICY,
    "sbatch: error: AssocMaxSubmitJobLimit\n" + POLICY,
    "sbatch: error: AssocGrpSubmitJobsLimit\n" + POLICY,
    POLICY,  # a Slurm that prints no reason line: taken for the submit limit
])
def test_job_count_limits_are_transient(msg: str) -> None:
    assert is_transient(msg, 1)
    assert fail(out("", 1, msg), "submit").transient


@pytest.mark.parametrize("msg", [
    "sbatch: error: Batch job submission failed: Invalid partition name specified",
    "sbatch: error: invalid partition specified: nosuch",
    'Unable to run job: unknown resource "nosuch".\nExiting.',
    "Unable to run job: job rejected: You try to submit a job with more than 75000 tasks\nExiting.",
    "sbatch: error: QOSMaxWallDurationPerJobLimit\n" + POLICY,
    "sbatch: error: AssocMaxNodesPerJobLimit\n" + POLICY,
    "sbatch: error: QOSMinGRES\n" + POLICY,
])
def test_requests_the_cluster_cannot_grant_are_permanent(msg: str) -> None:
    assert not is_transient(msg, 1)
    assert not fail(out("", 1, msg), "submit").transient


def test_an_unknown_partition_or_resource_is_permanent_whatever_the_exit_code() -> None:
    """Exit code 255 alone counts as transient (ssh's lost connection); the message decides."""
    for msg in ("sbatch: error: Batch job submission failed: Invalid partition name specified",
                'Unable to run job: unknown resource "nosuch".',
                "sbatch: error: QOSMaxWallDurationPerJobLimit\n" + POLICY):
        assert not is_transient(msg, 255)
    assert is_transient("ssh: connect to host x port 22: Connection timed out", 255)


def test_pbs_on_slurm_wrappers_takes_the_verdict_from_sacct() -> None:
    # the wrappers' qstat shows finished jobs as C without an exit status; sacct has it
    ends = PbsAdapter().parse_acct(captured("acct-sacct", "pbs"))
    assert ends["157"].verdict == Verdict.FAILED and ends["157"].exit_code == 7
    assert ends["159"].verdict == Verdict.WALLTIME and ends["159"].evidence.startswith("sacct")
    assert ends["160"].verdict == Verdict.DONE and ends["160"].name == "jahawg6_1"
