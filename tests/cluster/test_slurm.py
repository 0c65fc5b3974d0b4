"""The Slurm adapter (jobauto/cluster/schedulers/slurm.py) on captured real output (tests/data/slurm/)
and hand-written records (HAND_*, each citing the documentation whose format it follows).
"""

from __future__ import annotations

import pytest
from helpers import captured, joined, out

from jobauto.cluster.schedulers.slurm import SlurmAdapter
from jobauto.core.errors import SchedulerError
from jobauto.core.model import CommandResult, Ending, Verdict


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


def test_squeue_and_sacct_know_each_task_of_an_array_by_its_own_id() -> None:
    """squeue: the pending rest 1306_[2-4%1] and the running 1306_1; sacct: one line per task."""
    from jobauto.cluster.schedulers.slurm import SlurmAdapter, array_tasks
    a = SlurmAdapter()

    def named(name: str) -> CommandResult:  # the capture as if jobmon had named the array
        res = captured(name, "slurm")
        return CommandResult(res.argv, res.rc, res.stdout.replace(b"probe3", b"jaabcdX1_0"))
    assert list(a.parse_queue(captured("squeue-array-tasks", "slurm")).entries) == ["1306"]
    snap = a.parse_queue(named("squeue-array-tasks"))
    assert snap.entries["1306_1"].running and snap.entries["1306_1"].name == "jaabcdX1_0"
    assert {k for k in snap.entries if "_" in k} == {"1306_1", "1306_2", "1306_3", "1306_4"}
    assert not snap.entries["1306_4"].running
    ends = a.parse_acct(named("sacct-array-tasks"))
    assert ends["1306_1"].verdict == Verdict.DONE
    assert ends["1306_2"].verdict == Verdict.FAILED and ends["1306_2"].exit_code == 3
    assert "1306_3" not in ends and "1306" not in ends   # a task still runs
    assert array_tasks("12_[1-3,7%2]") == [1, 2, 3, 7] and array_tasks("12") == []
    assert a.task_id("1306", 2) == "1306_2"


def test_slurm_dependency_args_and_a_job_waiting_on_its_dependency() -> None:
    """jobmon --ahead: afterok on every predecessor; a job waiting on it is queued (not held, not
    an error); one whose afterok failed is flagged never (and stays an error for a job jobmon
    did not submit ahead)."""
    a = SlurmAdapter()
    assert a.depend_args(["12", "13"]) == ["--dependency=afterok:12:13"]
    q = a.parse_queue(captured("squeue-dependency", "slurm")).entries
    assert (q["3737"].dependency, q["3737"].held, q["3737"].error) == ("waiting", False, False)
    assert (q["3739"].dependency, q["3739"].error) == ("never", True)
    assert q["3736"].dependency == "" and q["3736"].running
