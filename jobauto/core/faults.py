"""Named fault points: the steps of creating a run and of a cycle, where a test can kill jobmon.

`point(name)` ends the process at once, as kill -9 does (no cleanup, no flush), when the
environment variable JOBAUTO_FAULT equals NAME; otherwise it does nothing. The variable is read
once, at import. tests/run/test_opener_faults.py and test_cycle_faults.py kill jobmon at every
point and resume it; docs/failure-modes.md lists the points and what a resume does after each.
"""

from __future__ import annotations

import os

KILLED = 137    # what a shell reports for a process killed by SIGKILL (128 + 9)

POINTS = (
    "create.copied",      # init/ copied to the hidden .DATE.jobauto-new/
    "create.store",       # the store file made (schema only)
    "create.jobs",        # jobs and the creation record committed
    "create.renamed",     # the run renamed to DATE, nothing on the cluster yet
    "push.started",       # the first push about to begin: nothing on the cluster yet
    "push.sent",          # the tree is on the cluster; the store does not say so yet
    "push.recorded",      # the store says pushed
    "cycle.observed",     # a cycle asked the cluster; nothing of it committed
    "cycle.learned",      # what the cycle observed is committed
    "cycle.intent",       # submission intents committed, the batch not sent
    "cycle.submitted",    # the batch returned; its answers not committed
    "cycle.quelist",      # quelist written
    "ahead.intent",       # intents of a batch with jobs queued ahead (jobmon --ahead) committed, not sent
    "ahead.submitted",    # that batch returned; its answers not committed
    "ahead.deleted",      # jobs queued after one that did not end done deleted from the queue;
                          # their move back to pending not committed
    "ahead.unhooked",     # that move committed
)

_WANTED = os.environ.get("JOBAUTO_FAULT", "")


def point(name: str) -> None:
    """Die here, like kill -9, when JOBAUTO_FAULT names this point."""
    if _WANTED and name == _WANTED:
        os._exit(KILLED)
