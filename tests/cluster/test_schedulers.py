"""What every scheduler adapter does (jobauto/cluster/schedulers/: adapter_for, parse_detect, the
adapter protocol of base.py): ids as separate arguments, detection, walltime and array options,
array submissions (the workers' arrays, table/test_arrays.py) on captured and written output.
"""

from __future__ import annotations

import pytest
from helpers import DATA, captured, out

from jobauto.cluster.schedulers import adapter_for, parse_detect
from jobauto.cluster.schedulers.base import NAMES
from jobauto.cluster.schedulers.local import LocalAdapter
from jobauto.cluster.schedulers.pbs import PbsAdapter
from jobauto.cluster.schedulers.sge import SgeAdapter
from jobauto.cluster.schedulers.slurm import SlurmAdapter, slurm_time
from jobauto.core.errors import SchedulerError
from jobauto.core.model import CommandResult


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



def test_walltime_directives_per_scheduler() -> None:
    assert SgeAdapter().walltime_args(90) == ["-l", "h_rt=0:01:30"]
    assert SgeAdapter().walltime_args(2 * 86400 + 5) == ["-l", "h_rt=48:00:05"]
    assert SlurmAdapter().walltime_args(90) == ["--time=0-00:01:30"]
    assert SlurmAdapter().walltime_args(2 * 86400 + 3723) == ["--time=2-01:02:03"]
    assert PbsAdapter().walltime_args(2 * 86400 + 5) == ["-l", "walltime=48:00:05"]
    assert LocalAdapter().walltime_args(90) == []
    assert slurm_time(59) == "0-00:00:59"


def test_array_options_per_scheduler() -> None:
    assert SgeAdapter().array_args(4) == ["-t", "1-4"]
    assert SlurmAdapter().array_args(4) == ["--array=1-4"]
    assert PbsAdapter().array_args(4) == ["-t", "1-4"]            # Torque, Slurm's wrappers
    assert PbsAdapter(pro=True).array_args(4) == ["-J", "1-4"]    # PBS Pro / OpenPBS
    assert PbsAdapter(pro=True).array_args(1) == []               # one worker: a plain job
    assert PbsAdapter().array_args(1) == ["-t", "1-1"]
    assert LocalAdapter().array_args(4) == []


def test_array_submit_argv_per_scheduler_extra_last_script_last() -> None:
    extra = ["-l", "h_rt=1:00:00", "-g", "grp"]
    assert SgeAdapter().array_submit_argv("worker-1.sh", "w-t", 3, extra) == [
        "qsub", "-terse", "-cwd", "-S", "/bin/bash", "-N", "w-t", "-t", "1-3",
        "-o", "w-t.o$JOB_ID.$TASK_ID", "-e", "w-t.e$JOB_ID.$TASK_ID", *extra, "worker-1.sh"]
    assert SlurmAdapter().array_submit_argv("worker-1.sh", "w-t", 3, ["-p", "short"]) == [
        "sbatch", "--parsable", "-J", "w-t", "--array=1-3", "-o", "w-t.o%A.%a",
        "-e", "w-t.e%A.%a", "-p", "short", "worker-1.sh"]
    assert PbsAdapter(pro=False).array_submit_argv("worker-1.sh", "w-t", 3, ["-q", "q"]) == [
        "qsub", "-N", "w-t", "-t", "1-3", "-q", "q", "worker-1.sh"]
    # flavour not asked (jobmon): the command asks qsub --version on the cluster (test_pbs.py)
    assert PbsAdapter().array_submit_argv("worker-1.sh", "w-t", 3, ["-q", "q"])[3:] == [
        "jobauto-array", "1-3", "-N", "w-t", "-q", "q", "worker-1.sh"]
    assert PbsAdapter(pro=True).array_submit_argv("worker-1.sh", "w-t", 3, []) == [
        "qsub", "-N", "w-t", "-J", "1-3", "worker-1.sh"]
    local = LocalAdapter().array_submit_argv("worker-1.sh", "w-t", 3, ["ignored"])
    assert local[:2] == ["sh", "-c"] and local[3:] == ["jobauto-local", "3", "w-t", "worker-1.sh"]


@pytest.mark.parametrize("name", ["sge", "slurm", "pbs", "local", "fake"])
def test_every_adapter_submits_arrays(name: str) -> None:
    a = adapter_for(name)
    argv = a.array_submit_argv("worker-1.sh", "w-t", 2, [])
    assert argv[-1] == "worker-1.sh" and "w-t" in argv


def test_parse_array_submit_on_captured_output() -> None:
    # qsub -terse -t 1-3 prints "208.1-3:1"; without -terse 'Your job-array 209.1-3:1 ...'
    assert SgeAdapter().parse_array_submit(captured("qsub-terse-array", "sge")) == "208"
    assert SgeAdapter().parse_array_submit(captured("qsub-plain-array", "sge")) == "209"
    assert SlurmAdapter().parse_array_submit(captured("sbatch-parsable-array", "slurm")) == "66"
    assert PbsAdapter().parse_array_submit(captured("qsub-array", "pbs")) == "58"


def test_parse_array_submit_written_forms() -> None:
    assert SgeAdapter().parse_array_submit(out("4711.1-3:1\n")) == "4711"
    assert SlurmAdapter().parse_array_submit(out("12\n")) == "12"
    assert SlurmAdapter().parse_array_submit(out("12;cluster\n")) == "12"
    # Torque and PBS Pro print "N[].server"
    assert PbsAdapter().parse_array_submit(out("12[].host\n")) == "12"
    assert PbsAdapter(pro=True).parse_array_submit(out("13[].pbs01.example\n")) == "13"
    assert LocalAdapter().parse_array_submit(out("101 102 103\n")) == "101 102 103"


def test_parse_array_submit_refusals_are_errors_with_the_message() -> None:
    with pytest.raises(SchedulerError, match="invalid option"):
        SgeAdapter().parse_array_submit(captured("qsub-bad-option", "sge"))
    with pytest.raises(SchedulerError, match="Invalid partition"):
        SlurmAdapter().parse_array_submit(out("", 1, "sbatch: error: Batch job submission failed: "
                                                     "Invalid partition name specified"))
    with pytest.raises(SchedulerError):
        PbsAdapter().parse_array_submit(captured("qsub-bad-option", "pbs"))
    with pytest.raises(SchedulerError):
        LocalAdapter().parse_array_submit(out("", 1, "no such script: x"))
    with pytest.raises(SchedulerError):
        LocalAdapter().parse_array_submit(out("garbage\n"))
