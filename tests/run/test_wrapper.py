"""The wrapper jobmon submits in place of a job script (jobauto/run/wrapper.py): its text, and
generated wrappers run here by dash and bash with plain scripts, seed-style scripts that write
their own markers, and signals."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import RDIR, Rig, default_signals, make_job, template_script

from jobauto.run.wrapper import job_dir, wrapper_name, wrapper_text

SHELLS = [s for s in ("dash", "bash") if shutil.which(s)]
HOSTILE = "it's a $(touch PWNED) dir"


def write_job(base: Path, body: str, *, name: str = f"{HOSTILE}/qsub.0", mode: int = 0o755) -> Path:
    """Write a job script under base and its wrapper beside it; return the wrapper."""
    script = base / name
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(body)
    script.chmod(mode)
    wrapper = script.parent / wrapper_name(script.name)
    wrapper.write_text(wrapper_text(body, name, str(base)))
    return wrapper


def run(shell: str, wrapper: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # started elsewhere, as a scheduler starts a spooled copy (Grid Engine, Slurm) or in $HOME (PBS)
    return subprocess.run([shell, str(wrapper)], cwd=cwd, capture_output=True, text=True,
                          timeout=60, start_new_session=True)


def markers(d: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(d.glob("qsub.f*"))}


def test_the_text_carries_the_directives_first_and_quotes_the_directory() -> None:
    body = "#!/bin/bash\n#$ -l h_rt=1:0:0\n#SBATCH --time=60\n#SBATCH --output=qsub.0.o%j\necho hi\n"
    text = wrapper_text(body, "Si 1/qsub.0", "/w/it's")
    lines = text.splitlines()
    assert lines[:4] == ["#!/bin/sh", "#$ -l h_rt=1:0:0", "#SBATCH --time=60",
                         "#SBATCH --output=qsub.0.o%j"]
    assert "jobauto_dir='/w/it'\"'\"'s/Si 1'" in lines
    assert "set -- /bin/bash \"./$jobauto_script\"" in lines
    # Slurm and PBS read directives up to the first command: none comes before them
    first_command = next(i for i, ln in enumerate(lines) if ln and not ln.startswith("#"))
    assert first_command > 3
    assert job_dir("runs/r", "a/qsub.1") == "\"$HOME\"/runs/r/a"
    assert job_dir("/abs", "qsub.1") == "/abs"
    assert wrapper_name("qsub.17") == ".qsub.17.run"


@pytest.mark.parametrize("shell", SHELLS)
def test_generated_wrappers_are_valid_shell(shell: str, tmp_path: Path) -> None:
    for body in ("#!/bin/bash\necho plain\n", "#!/usr/bin/env python3\nprint(1)\n",
                 template_script("true", "#$ -cwd\n#SBATCH --time=5\n")):
        w = write_job(tmp_path, body)
        subprocess.run([shell, "-n", str(w)], check=True)


@pytest.mark.parametrize("shell", SHELLS)
def test_exit_0_writes_only_finished(shell: str, tmp_path: Path) -> None:
    w = write_job(tmp_path, "#!/bin/bash\necho out; echo err >&2; pwd > where\n")
    p = run(shell, w, tmp_path.parent)
    assert p.returncode == 0, p.stderr
    assert markers(w.parent) == {"qsub.finished.0": "0\n"}
    assert (w.parent / "where").read_text() == f"{w.parent}\n"   # ran in the job's directory
    assert "out" in p.stdout and "err" in p.stderr and "ended with exit code 0" in p.stderr
    assert not list(tmp_path.rglob("PWNED"))
    assert not [f for f in os.listdir(w.parent) if ".tmp." in f]


@pytest.mark.parametrize("shell", SHELLS)
def test_exit_3_writes_failed_then_finished(shell: str, tmp_path: Path) -> None:
    w = write_job(tmp_path, "#!/bin/bash\nexit 3\n")
    (w.parent / "qsub.finished.0").write_text("left by an earlier attempt\n")
    assert run(shell, w, tmp_path).returncode == 3
    assert markers(w.parent) == {"qsub.failed.0": "3\n", "qsub.finished.0": "3\n"}
    assert (w.parent / "qsub.failed.0").stat().st_mtime_ns <= (w.parent / "qsub.finished.0").stat().st_mtime_ns


def test_a_script_that_is_not_executable_and_has_no_shebang_runs_with_bash(tmp_path: Path) -> None:
    w = write_job(tmp_path, "echo ${BASH_VERSION:+bash} > shell\nexit 4\n", mode=0o644)
    assert run("sh", w, tmp_path).returncode == 4
    assert (w.parent / "shell").read_text() == "bash\n"
    assert markers(w.parent) == {"qsub.failed.0": "4\n", "qsub.finished.0": "4\n"}


@pytest.mark.skipif(not shutil.which("python3"), reason="needs python3")
def test_a_python_script_runs_with_its_shebang_even_when_not_executable(tmp_path: Path) -> None:
    w = write_job(tmp_path, "#!/usr/bin/env python3\nimport sys\nopen('py', 'w').write('yes')\n"
                            "sys.exit(3)\n", mode=0o600)
    assert run("sh", w, tmp_path).returncode == 3
    assert (w.parent / "py").read_text() == "yes"
    assert markers(w.parent) == {"qsub.failed.0": "3\n", "qsub.finished.0": "3\n"}


def test_a_missing_directory_writes_nothing_and_fails(tmp_path: Path) -> None:
    w = write_job(tmp_path, "#!/bin/sh\ntrue\n")
    moved = tmp_path / "elsewhere"
    w.parent.rename(moved)
    p = run("sh", moved / w.name, tmp_path)
    assert p.returncode == 1 and "cannot enter the job directory" in p.stderr
    assert markers(moved) == {}


def test_a_relative_run_directory_is_under_home(tmp_path: Path) -> None:
    body = "#!/bin/sh\ntouch here\n"
    (tmp_path / "runs" / "r" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "r" / "a" / "qsub.0").write_text(body)
    w = tmp_path / "w.run"
    w.write_text(wrapper_text(body, "a/qsub.0", "runs/r"))
    p = subprocess.run(["sh", str(w)], cwd="/", env={**os.environ, "HOME": str(tmp_path)},
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "runs/r/a/here").exists() and (tmp_path / "runs/r/a/qsub.finished.0").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_a_script_that_writes_its_own_markers_is_left_alone(shell: str, tmp_path: Path) -> None:
    w = write_job(tmp_path, "#!/bin/bash\necho mine > qsub.finished.0\nexit 5\n")
    assert run(shell, w, tmp_path).returncode == 5
    assert markers(w.parent) == {"qsub.finished.0": "mine\n"}   # no failed marker added
    # the seed-style marker block of examples/ecalj: its own markers, exactly one set
    w = write_job(tmp_path, template_script("exit 6").replace("__id__", "2"), name="seed/qsub.2")
    p = run(shell, w, tmp_path)
    assert p.returncode == 6 and "wrote its own markers" in p.stderr
    assert markers(w.parent) == {"qsub.failed.2": "6\n", "qsub.finished.2": "6\n"}


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGUSR1, 138),
                                           (signal.SIGINT, 143), (signal.SIGXCPU, 152)])
def test_a_catchable_signal_is_passed_on_and_markers_are_written(
        shell: str, sig: signal.Signals, code: int, tmp_path: Path) -> None:
    w = write_job(tmp_path, "#!/bin/bash\nsleep 300 &\necho $! > pid\nwait\n")
    proc = subprocess.Popen([shell, str(w)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=default_signals)
    try:
        _wait_for(w.parent / "pid")
        sleeper = int((w.parent / "pid").read_text())
        proc.send_signal(sig)   # only the wrapper: it passes the signal on
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    # INT reaches a background child as TERM (it ignores INT); the script's own work gets TERM
    assert proc.returncode in (code, 143), err
    got = markers(w.parent)
    assert got["qsub.finished.0"] == got["qsub.failed.0"] == f"{proc.returncode}\n", err
    assert f"got SIG{sig.name[3:]}" in err.decode()
    assert _gone(sleeper)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                           (signal.SIGUSR1, 0)])
def test_a_script_that_exits_0_after_a_stopping_signal_is_not_done(
        shell: str, sig: signal.Signals, code: int, tmp_path: Path) -> None:
    """The scheduler's cancel (Slurm: TERM to every process of the job) may kill the script's
    `sleep` before the script itself, which then runs on and exits 0: the job was stopped, not
    done (jobauto cancel of a job on Slurm came back `done` by its markers). A script that
    exits 0 after TERM, INT, HUP or XCPU ends as that signal; USR1/USR2 are warnings a script
    may catch and finish its work after."""
    w = write_job(tmp_path, "#!/bin/bash\ntrap 'exit 0' TERM HUP USR1\n"
                  "sleep 300 &\necho $! > pid\nwait\nwait\n")
    proc = subprocess.Popen([shell, str(w)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=default_signals)
    try:
        _wait_for(w.parent / "pid")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    got = markers(w.parent)
    assert got["qsub.finished.0"] == f"{code}\n", err
    assert got.get("qsub.failed.0") == (f"{code}\n" if code else None), err
    if code:
        assert f"exited 0 after SIG{sig.name[3:]}" in err.decode()


@pytest.mark.parametrize("shell", SHELLS)
def test_a_seed_style_script_handles_the_signal_itself(shell: str, tmp_path: Path) -> None:
    w = write_job(tmp_path, template_script("touch started; sleep 300").replace("__id__", "0"))
    proc = subprocess.Popen([shell, str(w)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=default_signals)
    try:
        _wait_for(w.parent / "started")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert markers(w.parent) == {"qsub.failed.0": "143\n", "qsub.finished.0": "143\n"}
    assert b"wrote its own markers" in err


def test_jobmon_submits_through_the_wrapper_or_says_why_not(tmp_path: Path) -> None:
    """On the fake cluster: each submission carries its wrapper; a script whose directives
    cannot travel (a NUL byte) is submitted as it is, and its history says so."""
    rig = Rig(tmp_path)
    make_job(rig.init, "ok/qsub.0", script="#!/bin/sh\n#SBATCH --time=5\ntrue\n")
    make_job(rig.init, "nul/qsub.0", script="#!/bin/sh\n#$ -N a\0b\ntrue\n")
    m = rig.start()
    m.tick(0.0)
    jobs = {j.dir.rsplit("/", 1)[-1]: j for j in rig.cluster.submitted}
    assert jobs["ok"].wrapper == ".qsub.0.run" and jobs["nul"].wrapper is None
    text = rig.cluster.files[f"{RDIR}/ok/.qsub.0.run"].decode()
    assert text.startswith("#!/bin/sh\n#SBATCH --time=5\n") and f"jobauto_dir={RDIR}/ok\n" in text
    events = [(k, d) for _, k, d in rig.store.events("nul/qsub.0")]  # type: ignore[union-attr]
    assert any(k == "no-wrapper" and "NUL" in d for k, d in events), events
