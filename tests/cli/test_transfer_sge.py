"""Fix and rerun, `jobauto fetch` and `jobauto clean --remote` through the CLI, against real Grid
Engine through the real sshd (tests/cluster/up.sh)."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
from helpers import Cluster, base_args, jobauto, jobmon, make_job, ssh, start_jobmon

pytestmark = pytest.mark.cluster


def connect(c: Cluster) -> list[str]:
    return [f"--remote={c.host}", f"--ssh-config={c.ssh_config}"]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and ".jobauto" not in p.parts}


def test_fix_and_rerun_on_grid_engine(sge: Cluster, tmp_path: Path) -> None:
    """A job fails; the user fixes its script under DATE/, resets it; the fixed script is what
    runs; the fix survives the end-of-run fetch and --initonly, even against another copy."""
    rdir = sge.remote_dir("fix")
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "a/qsub.0", body="echo broken > proof.txt\nexit 4")
    make_job(ldir / "init", "a/qsub.1", ["qsub.finished.0"], body="cat proof.txt > seen.txt")
    args = [*base_args(sge, ldir, rdir), "--datedir=r", "--scheduler=sge", "--fetch-all"]
    p = jobmon(*args, timeout=180, check_rc=1)
    assert "error    a/qsub.0: failed: exited with code 4" in p.stdout
    script = ldir / "r/a/qsub.0"
    fixed = script.read_text().replace("echo broken > proof.txt\nexit 4", "echo fixed > proof.txt")
    script.write_text(fixed)
    jobauto("reset", str(ldir / "r"), "a/qsub.0", check_rc=0)
    p = jobmon(*args, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "pushed 1 file(s) changed locally before submitting: a/qsub.0" in p.stdout
    far = sge.path(rdir) / "r/a"
    assert (far / "proof.txt").read_text() == "fixed\n" == (far / "seen.txt").read_text()
    assert (ldir / "r/a/seen.txt").read_text() == "fixed\n"       # fetched at the end
    assert script.read_text() == fixed                             # and the fix kept
    # a second fix, not pushed yet, while the cluster's copy changed too: --initonly keeps ours
    script.write_text(fixed + "# second fix\n")
    ssh(f"echo '# the cluster copy' >> {rdir}/r/a/qsub.0")
    p = jobmon(*args, "--initonly", timeout=120, check_rc=0)
    assert "kept 1 local file(s) changed since they were last pushed or fetched" in p.stdout
    assert script.read_text() == fixed + "# second fix\n"
    p = jobauto("explain", str(ldir / "r"), "a/qsub.0", check_rc=0)
    assert "changed locally, pushed before submitting" in p.stdout


FIGURES = re.compile(r"(\d+) file\(s\), (\d+) bytes")


def test_fetch_dry_run_figures_are_what_the_fetch_then_moves(sge: Cluster, tmp_path: Path) -> None:
    rdir = sge.remote_dir("fetch")
    ldir = tmp_path / "camp"
    for i, n in enumerate((10, 3000, 200000)):
        make_job(ldir / "init", f"d{i}/qsub.0", body=f"head -c {n} /dev/urandom > out.bin; "
                                                      f"mkdir -p sub; echo {i} > sub/n.txt")
    jobmon(*base_args(sge, ldir, rdir), "--datedir=r", "--scheduler=sge", timeout=180, check_rc=0)
    run = ldir / "r"
    assert not (run / "d2/out.bin").exists()                       # not by default
    before = snapshot(run)
    dry = jobauto("fetch", str(run), "--all", "--dry-run", *connect(sge), check_rc=0)
    assert "--dry-run: nothing moved" in dry.stdout and snapshot(run) == before
    shown = FIGURES.search(dry.stdout)
    assert shown, dry.stdout
    p = jobauto("fetch", str(run), "--all", *connect(sge), check_rc=0)
    moved = re.search(r"fetched (\d+) file\(s\), (\d+) bytes", p.stdout)   # rsync's own count
    assert moved and moved.groups() == shown.groups(), (dry.stdout, p.stdout)
    after = snapshot(run)
    new = [k for k in after if before.get(k) != after[k]]
    assert len(new) == int(shown[1]) and sum(after[k][0] for k in new) == int(shown[2])
    assert (run / "d2/out.bin").stat().st_size == 200000
    again = jobauto("fetch", str(run), "--all", "--dry-run", *connect(sge), check_rc=0)
    assert again.stdout.startswith(f"{run}: 0 file(s), 0 bytes to fetch")
    bad = jobauto("fetch", str(run), "../outside", *connect(sge))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert snapshot(run) == after


def test_clean_remote_is_refused_while_jobs_run_then_removes_the_run(sge: Cluster, tmp_path: Path) -> None:
    rdir = sge.remote_dir("clean")
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "a/qsub.0", body="sleep 300")
    args = [*base_args(sge, ldir, rdir), "--datedir=r", "--scheduler=sge"]
    proc = start_jobmon(args, tmp_path / "mon.out")
    run, far = ldir / "r", sge.path(rdir) / "r"
    deadline = time.monotonic() + 120
    while "jobid=" not in _read(run / "quelist") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "jobid=" in _read(run / "quelist"), (tmp_path / "mon.out").read_text()
    job_id = re.search(r"jobid=(\d+)", _read(run / "quelist"))[1]   # type: ignore[index]
    p = jobauto("clean", str(run), f"--remote={sge.host}", f"--ssh-config={sge.ssh_config}")
    assert p.returncode == 1 and "stop it first" in p.stderr and far.is_dir(), p.stderr
    proc.send_signal(signal.SIGTERM)          # the monitor stops; its job goes on in the queue
    proc.wait(timeout=60)
    p = jobauto("clean", str(run), f"--remote={sge.host}", f"--ssh-config={sge.ssh_config}")
    assert p.returncode == 1 and far.is_dir(), p.stdout + p.stderr
    assert "1 job(s) of the run are queued or running on the cluster: a/qsub.0" in p.stderr
    ssh(f"qdel {job_id}")
    deadline = time.monotonic() + 60
    while job_id in ssh("qstat", check=False).stdout and time.monotonic() < deadline:
        time.sleep(0.5)
    p = jobauto("clean", str(run), f"--remote={sge.host}", f"--ssh-config={sge.ssh_config}",
                "--dry-run", check_rc=0)
    assert "--dry-run: nothing removed" in p.stdout and far.is_dir()
    assert re.search(r"\d+ file\(s\), \d+ bytes", p.stdout)
    p = jobauto("clean", str(run), f"--remote={sge.host}", f"--ssh-config={sge.ssh_config}",
                check_rc=0)
    assert "removed" in p.stdout and not far.exists() and (run / "a/qsub.0").exists()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
