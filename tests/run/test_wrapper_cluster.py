"""Plain job scripts (commands and directives, no marker code) through jobmon's wrapper
(jobauto/run/wrapper.py) on real Grid Engine, Slurm and the PBS wrappers, over sshd: the right
verdicts for done, failed and walltime-killed jobs, the directives kept, and seed-style scripts
that write their own markers still getting exactly one set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import Sched, base_args, jobauto, jobmon, make_job, template_script

pytestmark = pytest.mark.cluster

# a short walltime each scheduler enforces: Grid Engine's h_rt kills with SIGKILL (no marker can
# be written); Slurm (and PBS on Slurm) sends SIGTERM first, which the wrapper turns into markers
WALLTIME = {"sge": "#$ -l h_rt=0:0:3\n", "slurm": "#SBATCH --time=1\n",
            "pbs": "#PBS -l walltime=00:01:00\n"}
# the script's own output name (Slurm: --output; Grid Engine: jobmon's -o; PBS: -j oe, by job name)
OUTPUT = {"sge": "#$ -j y\n", "slurm": "#SBATCH --output=qsub.0.o%j\n", "pbs": "#PBS -j oe\n"}
HOSTILE = "it's a $(touch PWNED) dir"


def plain(body: str, head: str = "") -> str:
    return f"#!/bin/bash\n{head}{body}\n"


def test_plain_scripts_get_their_verdicts_and_seed_scripts_one_set_of_markers(
        sched: Sched, tmp_path: Path) -> None:
    c = sched.cluster
    rdir = c.remote_dir(f"wrap-{sched.name}")
    ldir = tmp_path / "camp"
    init = ldir / "init"
    make_job(init, f"{HOSTILE}/qsub.0", script=plain('echo "$PWD" > where', OUTPUT[sched.name]))
    make_job(init, "fail/qsub.0", script=plain("echo failing; exit 3"))
    make_job(init, "wall/qsub.0", script=plain("sleep 300", WALLTIME[sched.name]))
    make_job(init, "py/qsub.0", script="#!/usr/bin/env python3\nopen('py.txt', 'w').write('ok')\n")
    (init / "py" / "qsub.0").chmod(0o644)                     # not executable: still runs
    make_job(init, "seed/qsub.0", script=template_script("echo seed > seed.txt"))
    make_job(init, "seedfail/qsub.0", script=template_script("exit 4"))
    for d in ("fail", "wall", "seed"):
        make_job(init, f"{d}/qsub.1", ["qsub.finished.0"], script=plain("true"))
    p = jobmon(*base_args(c, ldir, rdir), "--datedir=r", "--lost-after=240", *sched.args,
               timeout=400, check_rc=1)
    out = p.stdout
    assert "error    fail/qsub.0: failed: exited with code 3 (marker fail/qsub.failed.0: 3)" in out, out
    assert "error    wall/qsub.0: walltime: killed at its walltime limit" in out, out
    assert "error    seedfail/qsub.0: failed: exited with code 4" in out, out
    for d in ("fail", "wall"):
        assert f"blocked  {d}/qsub.1: by {d}/qsub.0" in out
    for done in (f"{HOSTILE}/qsub.0", "py/qsub.0", "seed/qsub.0", "seed/qsub.1"):
        assert f" {done}:" not in out  # done jobs are not in the summary
    remote = c.path(rdir) / "r"
    assert not list(remote.rglob("PWNED")) and not list(tmp_path.rglob("PWNED"))
    assert (remote / HOSTILE / "where").read_text() == f"{remote / HOSTILE}\n"
    assert (remote / "py" / "py.txt").read_text() == "ok"
    # markers: the wrapper's for plain scripts, the script's own (and only those) for seed ones
    def marks(d: str) -> dict[str, str]:
        return {f.name: f.read_text() for f in sorted((remote / d).glob("qsub.f*.0"))}
    assert marks(HOSTILE) == {"qsub.finished.0": "0\n"}
    assert marks("fail") == {"qsub.failed.0": "3\n", "qsub.finished.0": "3\n"}
    assert marks("seedfail") == {"qsub.failed.0": "4\n", "qsub.finished.0": "4\n"}
    assert marks("seed") == {"qsub.finished.0": "0\n"}
    outputs = {d: "".join(f.read_text(errors="replace") for f in sorted((remote / d).iterdir())
                          if re.search(r"\.[oe][0-9]+$|^slurm-[0-9]+\.out$", f.name))  # NAME.oJOBID
               for d in ("seed", "fail", HOSTILE)}
    assert "jobauto: qsub.0 ended with exit code 0" in outputs["seed"]
    assert "it wrote its own markers" in outputs["seed"] and "jobauto: job 0 ended" in outputs["seed"]
    assert "failing" in outputs["fail"] and "ended with exit code 3" in outputs["fail"]
    if sched.name in ("sge", "slurm"):  # the names users know: qsub.ID.oJOBID
        assert list((remote / HOSTILE).glob("qsub.0.o[0-9]*"))
    # the wrapper sits beside the script, hidden; it is never fetched
    assert (remote / "fail" / ".qsub.0.run").exists() and not (ldir / "r" / "fail" / ".qsub.0.run").exists()
    run = ldir / "r"
    ex = jobauto("explain", str(run), "fail/qsub.0", check_rc=0).stdout
    assert "markers (rule 1 of 3)" in ex and "verdict:    failed, exit code 3" in ex, ex
    ex = jobauto("explain", str(run), "wall/qsub.0", check_rc=0).stdout
    assert "verdict:    walltime" in ex, ex
    if sched.name == "sge":  # SIGKILL at h_rt: no marker, and jobmon says so
        assert "it left the queue without writing wall/qsub.finished.0" in ex, ex
        assert "accounting (rule 2 of 3)" in ex and "qacct" in ex, ex
        assert "left the queue without writing wall/qsub.finished.0 (killed by SIGKILL at the hard walltime)" in out
    else:  # SIGTERM at the limit: the wrapper's markers, refined by the accounting
        assert "markers (rule 1 of 3)" in ex and "exit code 143" in ex and "sacct" in ex, ex
        assert marks("wall") == {"qsub.failed.0": "143\n", "qsub.finished.0": "143\n"}
