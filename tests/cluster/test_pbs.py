"""The PBS/Torque adapter (jobauto/cluster/schedulers/pbs.py) on captured output of Slurm's PBS
wrappers (tests/data/pbs/) and hand-written PBS Professional and Torque records (HAND_*, each
citing the documentation whose format it follows).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import captured, out

from jobauto.cluster.schedulers.pbs import PbsAdapter, from_slurm, is_pbspro, job_id
from jobauto.core.errors import SchedulerError
from jobauto.core.model import Verdict


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


@pytest.mark.parametrize("name", ["hand-pbspro-depend-hold", "hand-torque-depend-hold"])
def test_pbs_job_waiting_on_its_dependency_is_queued_not_held_nor_an_error(name: str) -> None:
    """`qsub -W depend=afterok:ID`: the server keeps the job in H with a system hold until ID
    ends well (tests/data/pbs/hand-*, written from the PBS Professional and Torque sources).
    That is waiting, not a person's hold and not a stuck job: never deleted after --lost-after."""
    q = PbsAdapter().parse_queue(captured(name, "pbs")).entries
    parent, child = sorted(q)[:2]
    assert q[parent].running and not q[parent].held
    e = q[child]
    assert e.state == "H" and not e.held and not e.error and not e.running
    assert e.reason.startswith("waiting on its dependencies (afterok:" + parent)


def test_pbs_dependency_with_a_user_hold_is_held_and_a_bare_system_hold_an_error() -> None:
    q = PbsAdapter().parse_queue(captured("hand-pbspro-depend-hold", "pbs")).entries
    assert q["4732"].held and not q["4732"].error      # Hold_Types us: its user holds it too
    assert q["4733"].held and q["4733"].error          # s without a dependency: an administrator's
    assert "too many failed attempts" in q["4733"].reason


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
    argv = PbsAdapter().cancel_argv(["5", "12[3]", "7; rm -rf ~", "1.srv", "12[]"])
    assert argv[:2] == ["sh", "-c"] and argv[3:] == ["jobauto-cancel", "5", "12[3]", "12[]"]
    assert captured("qdel", "pbs").rc == 0
    assert PbsAdapter().acct_argv(["4", "4[2]", "$(x)"])[3:] == ["jobauto-acct", "4", "4[2]"]


def test_pbs_on_slurm_wrappers_takes_the_verdict_from_sacct() -> None:
    # the wrappers' qstat shows finished jobs as C without an exit status; sacct has it
    ends = PbsAdapter().parse_acct(captured("acct-sacct", "pbs"))
    assert ends["157"].verdict == Verdict.FAILED and ends["157"].exit_code == 7
    assert ends["159"].verdict == Verdict.WALLTIME and ends["159"].evidence.startswith("sacct")
    assert ends["160"].verdict == Verdict.DONE and ends["160"].name == "jahawg6_1"



def test_pbs_flavour_from_qsub_version() -> None:
    assert is_pbspro(out("pbs_version = 2022.1.1\n"))
    assert not is_pbspro(out("Version: 6.1.3\nCommit: abc\n"))          # Torque
    assert not is_pbspro(out("Unknown option: version\nUsage: ...\n", 2))  # Slurm's wrappers


def test_pbs_depend_args_and_the_dependency_flag() -> None:
    """jobmon --ahead: -W depend=afterok (Slurm's Torque wrapper passes it on as --dependency,
    and then lists the job as Q without a depend attribute: plain queued)."""
    a = PbsAdapter()
    assert a.depend_args(["12", "13"]) == ["-W", "depend=afterok:12:13"]
    q = a.parse_queue(captured("hand-torque-depend-hold", "pbs")).entries
    assert [e.dependency for _, e in sorted(q.items())][:2] == ["", "waiting"]


# -- arrays ------------------------------------------------------------------------------------
def test_pbs_ids_keep_the_task_and_read_the_array_summary_row_as_the_array() -> None:
    assert [job_id(r) for r in ("17.srv", "12[].srv", "12[3].srv", "1234.pbs*", "12[3].se*",
                                "12[3]", " 9")] == ["17", "12", "12[3]", "1234", "12[3]", "12[3]", "9"]
    assert job_id("12[3*") is None and job_id("[3]") is None and job_id("") is None
    assert PbsAdapter().task_id("12", 3) == "12[3]" and from_slurm("12_3") == "12[3]"


def test_pbs_queue_on_the_wrappers_names_tasks_by_squeue_s_map() -> None:
    """Array 3767: task 1 ended (row 3768 C), tasks 2 and 3 run as Slurm's 3769 and 3770, task 4
    waits in 3767's row; the wrappers refuse -t, the queue command maps the rows with squeue."""
    t = captured("pbs-array-qstat-t", "pbs")
    assert t.rc == 2 and "Unknown option: t" in t.stderr
    q = PbsAdapter().parse_queue(captured("pbs-array-queue", "pbs")).entries
    assert {k for k in q if k.startswith("3767")} == {"3767", "3767[2]", "3767[3]", "3767[4]"}
    assert q["3767[2]"].running and q["3767[3]"].running and q["3767[4]"].state == "Q"
    assert q["3767"].running and q["3767"].name == "jacapX1_0"   # the array: its busiest task
    assert "3769" not in q and "3770" not in q and "3768" not in q   # Slurm's own ids are gone
    assert q["3766"].name == "pbs_plain" and q["3766"].state == "Q"   # no array: as it was


def test_pbs_queue_on_the_wrappers_reads_a_never_satisfiable_dependency_from_squeue() -> None:
    """The wrappers' qstat shows a job whose afterok can never be met as plain Q; squeue's map
    (4th column, the reason; N/A for a job of no array) says DependencyNeverSatisfied, and the
    entry says so (run/endings.py then takes a job queued ahead out and submits it again)."""
    text = captured("pbs-array-queue", "pbs").text
    q = PbsAdapter().parse_queue(out(text + "3766 3766 N/A DependencyNeverSatisfied\n")).entries
    assert q["3766"].dependency == "never" and q["3766"].reason == "DependencyNeverSatisfied"
    assert q["3767[4]"].dependency == ""
    q = PbsAdapter().parse_queue(out(text + "3766 3766 N/A Dependency\n")).entries
    assert q["3766"].dependency == "" and q["3766"].state == "Q"


def test_pbs_queue_on_the_wrappers_drops_a_task_row_the_map_does_not_name() -> None:
    """A task that started after squeue answered has a row of its own but no line in the map;
    the pending row it left still names it (the queue command asks squeue first)."""
    text = captured("pbs-array-queue", "pbs").text.replace("3770 3767 3\n", "")
    q = PbsAdapter().parse_queue(out(text)).entries
    assert "3770" not in q and "3767[3]" not in q and "3767[2]" in q
    junk = text.replace("3769 3767 2", "x 3767 2; rm") + "9" * 40 + " 1 1\n"
    assert "3767[2]" not in PbsAdapter().parse_queue(out(junk)).entries


# Hand-written `qstat -t -u` listings of Torque 6 (alternate format, each subjob "ID[N].server")
# and PBS Professional (the array's summary row "ID[].server" in state B, then its subjobs;
# Reference Guide, qstat -t), with one `qstat -f` record for a subjob.
HAND_SUBJOBS = """\

torque01:
                                                                      Req'd    Req'd       Elap
Job ID                  Username    Queue    Jobname          SessID  NDS   TSK   Memory   Time    S   Time
----------------------- ----------- -------- ---------------- ------ ----- ------ --------- --------- - ---------
5130[1].torque01        alice       batch    jaabcX1_0         12345     1      1       --   00:10:00 R  00:00:05
5130[2].torque01        alice       batch    jaabcX1_0           --      1      1       --   00:10:00 Q       --
5130[3].torque01        alice       batch    jaabcX1_0           --      1      1       --   00:10:00 C  00:00:01
5131.torque01           alice       batch    jaabc5_1            --      1      1       --   00:10:00 Q       --
4712[].pbs01    alice    workq    jaarrX1_0     --    1   1    --  01:00 B   --
4712[1].pbs01   alice    workq    jaarrX1_0  2345    1   1    --  01:00 R 00:01
4712[2].pbs01   alice    workq    jaarrX1_0     --    1   1    --  01:00 Q   --
4712[10].pbs01* alice    workq    jaarrX1_0     --    1   1    --  01:00 Q   --
4712[100*       alice    workq    jaarrX1_0     --    1   1    --  01:00 Q   --
Job Id: 4712[2].pbs01
    Job_Name = jaarrX1_0
    job_state = H
    Hold_Types = u
"""


def test_pbs_queue_subjobs_of_torque_and_pbspro() -> None:
    q = PbsAdapter().parse_queue(out(HAND_SUBJOBS)).entries
    assert set(q) == {"5130", "5130[1]", "5130[2]", "5131",
                      "4712", "4712[1]", "4712[2]", "4712[10]"}   # 5130[3] ended; 4712[100* cut
    assert q["5130[1]"].running and q["5130[2]"].state == "Q" and q["5130"].running
    assert q["4712[2]"].held and q["4712"].running and q["4712[1]"].running


def test_pbs_acct_on_the_wrappers_keys_sacct_s_tasks_the_pbs_way() -> None:
    ends = PbsAdapter().parse_acct(captured("pbs-array-acct", "pbs"))
    assert (ends["3767[1]"].verdict, ends["3767[1]"].exit_code) == (Verdict.FAILED, 3)
    assert ends["3767[3]"].verdict == Verdict.CANCELLED and ends["3767[3]"].sched_id == "3767[3]"
    assert "3767[2]" not in ends and not any("_" in k for k in ends)   # task 2 still runs


def test_pbs_acct_subjob_records_of_pbspro() -> None:
    text = pbs_record(4800, 3).replace("Job Id: 4800.pbs01", "Job Id: 4800[2].pbs01")
    assert PbsAdapter().parse_acct(out(text))["4800[2]"].exit_code == 3


def test_pbs_wrappers_qdel_of_a_task_kills_the_array_so_cancel_takes_scancel() -> None:
    assert "isn't numeric" in captured("qdel-task", "pbs").stderr
    # task 2 was running: qdel of task 4 killed it too (task 1 had failed, 3 was cancelled)
    assert "3767_2|jacapX1_0|CANCELLED" in captured("qdel-task-sacct", "pbs").text
    after = captured("pbs-array-after-cancel", "pbs").text
    assert captured("pbs-array-cancel", "pbs").rc == 0
    assert " 3 " not in after and "3767 2 RUNNING" in after and "3767 4 RUNNING" in after


def test_pbs_array_submission_asks_the_flavour_on_the_cluster(tmp_path: Path) -> None:
    """Where jobmon has not asked, the array's qsub takes -J on PBS Pro and -t elsewhere
    (a qsub on PATH that prints what `qsub --version` prints there, then its arguments)."""
    argv = PbsAdapter().array_submit_argv("a.run", "jaX1_0", 3, ["-q", "q"])
    for version, opt in (("pbs_version = 2022.1.1", "-J"), ("Version: 6.1.3", "-t"),
                         ("Unknown option: version", "-t")):
        (tmp_path / "qsub").write_text(f'#!/bin/sh\n[ "$1" = --version ] && echo "{version}" '
                                       '&& exit 0\necho "$@"\n')
        (tmp_path / "qsub").chmod(0o755)
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                             env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
        assert res.stdout.split() == [opt, "1-3", "-N", "jaX1_0", "-q", "q", "a.run"], version
