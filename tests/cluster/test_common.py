"""What the adapters share (jobauto/cluster/schedulers/common.py): arrays combined into one
ending, and which refusals of a submission are transient.
"""

from __future__ import annotations

import pytest
from helpers import out

from jobauto.cluster.schedulers.common import combine, fail, is_transient
from jobauto.core.model import Ending, Verdict


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
