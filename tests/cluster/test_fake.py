"""The fake cluster and its adapter (jobauto/cluster/schedulers/fake.py); that it answers like
the real ones is checked by run/test_mirror.py.
"""

from __future__ import annotations

import pytest

from jobauto.cluster.schedulers.fake import FakeAdapter, FakeCluster
from jobauto.core.errors import SchedulerError
from jobauto.core.model import Command, CommandResult, Ending, Verdict


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
