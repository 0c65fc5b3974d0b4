"""Named fault points (jobauto/core/faults.py): JOBAUTO_FAULT=NAME kills the process at that
point as kill -9 does; any other point, or none named, does nothing. The runs killed at every
point are in run/test_opener_faults.py and run/test_cycle_faults.py."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO

from jobauto.core.faults import KILLED, POINTS

SCRIPT = ("import sys\nfrom jobauto.core.faults import point\nprint('before', flush=True)\n"
          "point('cycle.intent')\nprint('after', flush=True)\n")


def run(fault: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO), **({"JOBAUTO_FAULT": fault} if fault else {})}
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          timeout=60)


def test_the_named_point_kills_like_kill_9_and_others_do_nothing() -> None:
    p = run("cycle.intent")
    assert p.returncode == KILLED == 137 and p.stdout == "before\n" and p.stderr == ""
    for other in ("cycle.observed", None):
        p = run(other)
        assert p.returncode == 0 and p.stdout == "before\nafter\n"
    assert "cycle.intent" in POINTS and len(set(POINTS)) == len(POINTS)
