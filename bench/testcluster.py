"""What the benches that run on the test cluster (tests/cluster/up.sh sshd sge slurm) share:
where it is, one ssh command on it, and logging shims that count the scheduler commands a
run makes (put first on PATH with jobmon's --scheduler-bin), and the removal of what a run made."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

CLUSTER = Path(os.environ.get("JOBAUTO_TEST_CLUSTER_DIR", "/tmp/jobauto-cluster"))
CFG, HOST = CLUSTER / "ssh_config", "testhost"
LOCAL = Path("/tmp/jobauto-bench")
SHIMMED = ("qsub", "qstat", "qacct", "qdel", "sbatch", "squeue", "sacct", "scontrol", "scancel")


def ssh(cmd: str, timeout: float = 300) -> str:
    """Run CMD on the cluster host as its user; its standard output."""
    return subprocess.run(["ssh", "-F", str(CFG), HOST, cmd], capture_output=True, text=True,
                          check=True, stdin=subprocess.DEVNULL, timeout=timeout).stdout


def shims(rel: str) -> str:
    """Logging shims for the scheduler's programs in ~/REL/shim (each call appends its name to
    ~/REL/shim/calls.log); returns the directory."""
    shim = f"{rel}/shim"
    real = ssh("for n in " + " ".join(SHIMMED) + '; do command -v "$n" || echo; done').splitlines()
    lines = [f"mkdir -p {shim} && : > {shim}/calls.log"]
    for name, path in zip(SHIMMED, real, strict=True):
        if path.startswith("/"):
            body = f'#!/bin/sh\necho {name} >> "$HOME/{shim}/calls.log"\nexec {shlex.quote(path)} "$@"\n'
            lines.append(f"printf '%s' {shlex.quote(body)} > {shim}/{name} && chmod +x {shim}/{name}")
    ssh(" && ".join(lines))
    return shim


def remove_own(prefix: str) -> None:
    """Remove what one bench run made, ~/jobauto-bench/PREFIX* on the cluster and LOCAL/PREFIX*
    here: only its own (PREFIX carries the run's tag), since another run may go beside it."""
    ssh(f"rm -rf jobauto-bench/{shlex.quote(prefix)}*")
    for d in LOCAL.glob(f"{prefix}*"):
        shutil.rmtree(d, ignore_errors=True)
