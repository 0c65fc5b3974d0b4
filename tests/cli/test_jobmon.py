"""jobmon as a command (jobauto/cli/jobmon.py) on the local scheduler: what a user without a
cluster sees. Its loop and signals: run/test_daemon.py; opening a run: run/test_opener.py; on
the real cluster: run/test_cycle_sge.py, run/test_cycle_cluster.py."""

from __future__ import annotations

import random
import stat
from pathlib import Path

import pytest
from helpers import (
    SCRIPT,
    chain,
    failing_tree,
    job_body,
    jobmon,
    kill_9_at_random,
    make_job,
    max_overlap,
    runs_per_job,
)

from jobauto.run import quelist

WEIRD = ["it's here", 'say "hi"', "$(touch PWNED)", "a;b", "sp ace"]


def test_dag_with_weird_names_runs_in_order_with_maxqsub(tmp_path: Path) -> None:
    ldir, log = tmp_path / "camp", tmp_path / "runs.log"
    init = ldir / "init"
    names = []
    for k, d in enumerate(WEIRD):
        for i in range(2):  # the job's own label is plain: only the tree's names are hostile
            make_job(init, f"{d}/qsub.{i}", [f"qsub.finished.{i - 1}"] if i else [],
                     job_body(log, f"d{k}/{i}", 0.4))
            names.append(f"{d}/qsub.{i}")
    make_job(init, "all/qsub.0", [f"../{d}/qsub.finished.1" for d in WEIRD], job_body(log, "all", 0.4))
    p = jobmon(f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--maxqsub=3",
               "--interval=0.2", "--datedir=run1", timeout=120, check_rc=0)
    assert "all jobs done" in p.stdout
    assert p.stdout.splitlines()[1].startswith("done 0 running 3 ready 2 waiting 6 blocked 0 error 0")
    assert max_overlap(log) <= 3
    assert set(runs_per_job(log).values()) == {1} and len(runs_per_job(log)) == 11
    assert not list(tmp_path.rglob("PWNED"))  # names never reach a shell unquoted
    lines = quelist.parse((ldir / "run1" / "quelist").read_text())
    assert len(lines) == 11 and lines[-1].name == "all/qsub.0"
    assert all(set(ln.times) == {"started", "finished"} for ln in lines)
    for d in WEIRD:  # markers are back locally, and the results too
        assert (ldir / "run1" / d / "qsub.finished.1").exists()
    order = [ln.split(" ", 2)[2] for ln in log.read_text().splitlines() if ln.startswith("+")]
    assert order[-1] == "all" and all(order.index(f"d{k}/0") < order.index(f"d{k}/1") for k in range(5))


def test_failing_job_blocks_dependents_and_exits_1(tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    failing_tree(ldir / "init")
    p = jobmon(f"--ldir={ldir}", f"--rdir={tmp_path}/r", "--scheduler=local", "--interval=0.2",
               "--datedir=r", timeout=60, check_rc=1)
    assert "error    Si/qsub.0: failed: exited with code 7" in p.stdout
    assert "blocked  Si/qsub.1: by Si/qsub.0" in p.stdout
    assert "blocked  GaAs/qsub.0: by Si/qsub.0" in p.stdout
    assert p.stdout.count("\n") < 30
    text = (ldir / "r" / "quelist").read_text()
    assert "Si/qsub.0 started@" in text and "failed@" in text and "GaAs" not in text


def _tree_snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


BAD_NUMBERS = {  # flag or YAML line -> the message (core/config.py LIMITS)
    "--interval=nan": "--interval: must be a finite number, not nan",
    "--interval=inf": "--interval: must be a finite number, not inf",
    "--interval=0": "--interval: must be at least 0.1, not 0",
    "--lost-after=nan": "--lost-after: must be a finite number, not nan",
    "--lost-after=1e400": "--lost-after: must be a finite number, not 1e400",
    "--maxqsub=-1": "--maxqsub: must be at least 1, not -1",
    "--maxqsub=1e3": "--maxqsub: must be a whole number, not 1e3",
    "--retries=-1": "--retries: must be at least 0, not -1",
    "--retries=99999999999999999999": "--retries: must be at most 100, not 99999999999999999999",
    "interval: .inf": "jobauto.yaml: interval must be a finite number, not inf",
    "maxqsub: -5": "jobauto.yaml: maxqsub must be at least 1, not -5",
}
BAD_TREES = {  # a case of a bad dependency file or job script -> the message
    "priority": "Si/qsub.dependency.2:1: #jobauto priority must be at most 1000000000, not 12345678901234567890",
    "estimate": "Si/qsub.dependency.2:1: #jobauto estimate must be a finite number, not nan",
    "bom-inside": "Si/qsub.dependency.2:2: invisible character U+FEFF (ZERO WIDTH NO-BREAK SPACE, a byte-order mark) at column 1",
    "zero-width": "Si/qsub.dependency.2:2: invisible character U+200B (ZERO WIDTH SPACE) at column 4",
    "nul": "Si/qsub.dependency.2:2: a NUL byte at column 16: not a text file",
    "dangling-dependency": "Si/qsub.dependency.2: dependency file is a symbolic link to 'missing', which does not exist",
    "dangling-script": "Si/qsub.2: job script is a symbolic link to '../shared/gone.sh', which does not exist",
}


@pytest.mark.parametrize("case", ["placeholder", "define", "deppath", "cycle", "nojobs", "badkey",
                                  "badmaxqsub", "nordir", "badhost", "baddatedir", "badssh",
                                  "nomaster", "nocontrolpath",
                                  *BAD_NUMBERS, *BAD_TREES])
def test_bad_input_one_message_exit_2_nothing_changed(tmp_path: Path, case: str) -> None:
    ldir = tmp_path / "camp"
    init = ldir / "init"
    args = [f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.1"]
    expect = ""
    make_job(init, "Si/qsub.0", body="__binpath__/lmf")
    make_job(init, "Si/qsub.1", ["qsub.finished.0"])
    args.append("--binpath=/bin")
    if case == "placeholder":
        args.remove("--binpath=/bin")
        expect = "init/Si/qsub.0:6: placeholder __binpath__ has no value: pass --binpath"
    elif case == "define":
        make_job(init, "Si/qsub.2", body="echo __queue__")
        expect = "pass --define queue=VALUE"
    elif case == "deppath":
        make_job(init, "Si/qsub.2", ["qsub.finished.1", "../../../etc/passwd"])
        expect = "Si/qsub.dependency.2:2: dependency path '../../../etc/passwd' leaves the run directory"
    elif case == "cycle":
        make_job(init, "Si/qsub.0", ["qsub.finished.1"], body="__binpath__/lmf")
        expect = "dependency cycle: Si/qsub.0 -> Si/qsub.1 -> Si/qsub.0"
    elif case == "nojobs":
        for f in init.rglob("qsub.dependency.*"):
            f.unlink()
        expect = "no jobs found"
    elif case == "badkey":
        (ldir / "jobauto.yaml").write_text("maxqsb: 3\n")
        expect = "jobauto.yaml: unknown option 'maxqsb' (did you mean 'maxqsub'?)"
    elif case == "badmaxqsub":
        args.append("--maxqsub=zero")
        expect = "--maxqsub: invalid value 'zero'"
    elif case == "nordir":
        args = [a for a in args if not a.startswith("--rdir")]
        expect = "--rdir: is required"
    elif case == "badhost":
        cfg = tmp_path / "ssh_config"
        cfg.write_text("Host nowhere\n  HostName 127.0.0.1\n  Port 1\n  ConnectTimeout 3\n")
        args += ["--remote=nowhere", f"--ssh-config={cfg}"]
        expect = "--remote: cannot reach nowhere (127.0.0.1:1)"
    elif case in ("nomaster", "nocontrolpath"):   # ssh -G and ssh -O check: nothing connects
        cfg = tmp_path / "ssh_config"
        cfg.write_text("Host far\n  HostName 127.0.0.1\n  Port 1\n"
                       + ("  ControlPath /tmp/ja-nomaster-%C\n" if case == "nomaster" else ""))
        args += ["--remote=far", f"--ssh-config={cfg}"]
        if case == "nomaster":   # --ssh=auto: the config names a master's socket
            expect = ("--remote: the OpenSSH master connection to far is not running; jobauto does not "
                      f"log in by itself: start it again with: ssh -F {cfg} -fNM far (its socket: "
                      "/tmp/ja-nomaster-")
        else:
            args.append("--ssh=openssh")
            expect = f"--ssh: openssh needs a master connection, and {cfg} sets no ControlPath for far"
    elif case == "badssh":
        (ldir / "jobauto.yaml").write_text("ssh: mosh\n")
        expect = "jobauto.yaml: ssh: invalid value 'mosh' (use one of: auto, openssh, paramiko)"
    elif case == "baddatedir":
        args.append("--datedir=../x")
        expect = "--datedir: '../x' is not a run name"
    elif case in BAD_NUMBERS:
        if case.startswith("--"):
            args.append(case)
        else:
            (ldir / "jobauto.yaml").write_text(case + "\n")
        expect = BAD_NUMBERS[case]
    elif case in BAD_TREES:
        lines = {"priority": ["#jobauto priority=12345678901234567890"],
                 "estimate": ["#jobauto estimate=nan"], "bom-inside": ["#", "\ufeffrst.Si"],
                 "zero-width": ["#", "rst\u200b.Si"], "nul": ["#", "qsub.finished.1\x00"]}
        make_job(init, "Si/qsub.2", lines.get(case, []))
        if case == "dangling-dependency":
            (init / "Si/qsub.dependency.2").unlink()
            (init / "Si/qsub.dependency.2").symlink_to("missing")
        elif case == "dangling-script":
            (init / "Si/qsub.2").unlink()
            (init / "Si/qsub.2").symlink_to("../shared/gone.sh")
        expect = f"{init}/{BAD_TREES[case]}"
    before = _tree_snapshot(tmp_path)
    p = jobmon(*args, timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert expect in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""
    assert _tree_snapshot(tmp_path) == before


def test_initonly_then_run_then_fetch(tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    chain(ldir / "init", "Si", 2, body="echo result > out.dat; echo log > big.log")
    base = [f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.2",
            "--datedir=r", "--binpath=/x"]
    jobmon(*base, "--initonly", check_rc=0)
    assert (tmp_path / "remote/r/Si/qsub.1").exists() and not (tmp_path / "remote/r/Si/qsub.finished.0").exists()
    jobmon(*base, "--fetch=*.dat", check_rc=0, timeout=60)
    assert (ldir / "r/Si/out.dat").exists() and not (ldir / "r/Si/big.log").exists()
    jobmon(*base, "--initonly", "--fetch=**/*.log", check_rc=0)
    assert (ldir / "r/Si/big.log").exists()


def test_kill_9_at_random_moments_then_resume_runs_every_job_once(tmp_path: Path) -> None:
    ldir, log = tmp_path / "camp", tmp_path / "runs.log"
    for d in range(4):
        for i in range(3):
            make_job(ldir / "init", f"m{d}/qsub.{i}", [f"qsub.finished.{i - 1}"] if i else [],
                     job_body(log, f"m{d}/{i}", sleep=0.2))
    args = [f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.1",
            "--datedir=r", "--maxqsub=3"]
    kill_9_at_random(args, tmp_path / "mon.out", random.Random(7), 40, 0.05, 0.6)
    p = jobmon(*args, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    runs = runs_per_job(log)
    assert len(runs) == 12 and set(runs.values()) == {1}, runs




def test_a_plain_file_written_by_an_earlier_job_is_found(tmp_path: Path) -> None:
    """A job that needs a finished marker and a file the same earlier job writes: looked for
    on the cluster in the cycle after the marker came, not called stuck before it was."""
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "Si/qsub.0", body="echo data > rst.Si")
    make_job(ldir / "init", "Si/qsub.1", ["qsub.finished.0", "rst.Si"], body="cat rst.Si > copy.Si")
    make_job(ldir / "init", "Si/qsub.2", ["qsub.finished.1", "never.dat"])
    p = jobmon(f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local",
               "--interval=0.2", "--datedir=r", timeout=120, check_rc=1)
    assert "waiting  Si/qsub.2: needs Si/never.dat: no such file yet, and no job of the run writes it" in p.stdout
    assert "Si/qsub.1" not in p.stdout.split("cannot finish")[1]
    assert (tmp_path / "remote/r/Si/copy.Si").read_text() == "data\n"
    names = [ln.name for ln in quelist.parse((ldir / "r/quelist").read_text())]
    assert names == ["Si/qsub.0", "Si/qsub.1"]


def test_a_linked_script_runs_filled_and_its_shared_template_is_untouched(tmp_path: Path) -> None:
    """init/Si/qsub.1 -> ../../shared/template.sh: DATE/ gets a regular file with the filled
    content, the template keeps its placeholders and mode; its dependency file starts with a
    byte-order mark, which is dropped."""
    ldir = tmp_path / "camp"
    template = ldir / "shared" / "template.sh"
    template.parent.mkdir(parents=True)
    template.write_text(SCRIPT.format(directives="", body="echo __binpath__ __id__ > out.__id__"))
    template.chmod(0o644)
    before = template.read_bytes()
    make_job(ldir / "init", "Si/qsub.0")
    make_job(ldir / "init", "Si/qsub.1", ["\ufeffqsub.finished.0"])
    (ldir / "init/Si/qsub.1").unlink()
    (ldir / "init/Si/qsub.1").symlink_to("../../shared/template.sh")
    jobmon(f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.2",
           "--datedir=r", "--binpath=/opt/b", timeout=120, check_rc=0)
    assert template.read_bytes() == before and stat.S_IMODE(template.stat().st_mode) == 0o644
    for copy in (ldir / "r/Si/qsub.1", tmp_path / "remote/r/Si/qsub.1"):
        assert not copy.is_symlink() and "echo /opt/b 1 > out.1" in copy.read_text()
    assert (tmp_path / "remote/r/Si/out.1").read_text() == "/opt/b 1\n"


def test_garbage_markers_and_a_directory_named_quelist_never_crash_a_run_or_its_resume(
        tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    own = "#!/bin/sh\nprintf '{}' > qsub.failed.0\ntouch qsub.finished.0\n"  # writes its own markers
    make_job(ldir / "init", "huge/qsub.0", script=own.format("99999999999999999999999\\n"))
    make_job(ldir / "init", "sup/qsub.0", script=own.format("\\302\\262\\n"))      # ², UTF-8
    make_job(ldir / "init", "ok/qsub.0")
    make_job(ldir / "init", "after/qsub.0", ["../huge/qsub.finished.0"])
    args = [f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.2",
            "--datedir=r"]
    p = jobmon(*args, timeout=60, check_rc=1)
    assert "Traceback" not in p.stdout + p.stderr
    assert "error    huge/qsub.0: failed: " in p.stdout and "99999999999999999999999" in p.stdout
    assert "error    sup/qsub.0: failed: " in p.stdout
    assert "blocked  after/qsub.0: by huge/qsub.0" in p.stdout
    (ldir / "r" / "quelist").unlink()
    (ldir / "r" / "quelist").mkdir()      # what a job made on the cluster, fetched at the end
    for _ in range(2):                    # and every resume after
        p = jobmon(*args, timeout=60, check_rc=1)
        assert "Traceback" not in p.stdout + p.stderr
        warned = [ln for ln in p.stdout.splitlines() if "quelist" in ln and "directory" in ln]
        assert len(warned) == 1, p.stdout
        assert "error    huge/qsub.0" in p.stdout
