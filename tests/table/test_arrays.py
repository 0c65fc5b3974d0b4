"""`jobauto workers`: walltime rule, validation, adapters' array submissions, the batch script,
and the whole flow on this machine with stub qsub/jobauto (the real schedulers:
table/test_arrays_cluster.py)."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import DATA

from jobauto.cli.workers import workers_main
from jobauto.cluster.schedulers import adapter_for
from jobauto.cluster.schedulers.local import LocalAdapter
from jobauto.cluster.schedulers.pbs import PbsAdapter, is_pbspro
from jobauto.cluster.schedulers.sge import SgeAdapter
from jobauto.cluster.schedulers.slurm import SlurmAdapter, slurm_time
from jobauto.core.errors import ConfigError, JobautoError, SchedulerError
from jobauto.core.model import CommandResult
from jobauto.table.arrays import (
    Paths,
    WorkersOptions,
    default_job_name,
    parse_walltime,
    plan,
    run_argv,
    safety_s,
    script_text,
    start_workers,
)

HOSTILE = ["a b", "it's", "$(touch PWNED)", "`touch PWNED`", "semi;colon", "*", "-x"]


def captured(sched: str, name: str) -> CommandResult:
    base = DATA / sched / name
    err = base.with_suffix(".err")
    return CommandResult(("qsub",), int(base.with_suffix(".rc").read_text()),
                         base.with_suffix(".out").read_bytes(), err.read_text() if err.exists() else "")


def out(text: str, rc: int = 0, err: str = "") -> CommandResult:
    return CommandResult(("qsub",), rc, text.encode(), err)


def opts(**kw: object) -> WorkersOptions:
    base: dict[str, object] = dict(db="t.db", command=["bash", "run.sh"], n=2)
    base.update(kw)
    return WorkersOptions(**base)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- walltime rule
@pytest.mark.parametrize("text,seconds", [("00:02:00", 120), ("1:00:00", 3600), ("24:00:00", 86400),
                                          ("48:30:15", 174615), ("1-00:00:00", 86400),
                                          ("2-01:02:03", 176523), (" 0:0:45 ", 45)])
def test_walltime_forms(text: str, seconds: int) -> None:
    assert parse_walltime(text) == seconds


@pytest.mark.parametrize("text", ["3600", "1:00", "1h", "00:60:00", "00:00:60", "-1:00:00",
                                  "0:00:00", "1:00:00:00", "", "1-2"])
def test_bad_walltime_names_the_flag(text: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_walltime(text)
    assert e.value.flag == "--walltime"


@pytest.mark.parametrize("walltime,safety", [(60, 30), (600, 30), (1200, 60), (3600, 180),
                                             (6000, 300), (86400, 300), (7 * 86400, 300)])
def test_safety_is_5_percent_between_30_s_and_5_minutes(walltime: int, safety: int) -> None:
    assert safety_s(walltime) == safety


def test_max_runtime_is_walltime_minus_safety_and_must_exceed_the_margin() -> None:
    assert plan(opts(walltime="24:00:00")).max_runtime_s == 86400 - 300
    assert plan(opts(walltime="00:02:00")).max_runtime_s == 90
    assert plan(opts()).max_runtime_s is None and plan(opts()).walltime_s is None
    with pytest.raises(ConfigError, match="--margin-time 90") as e:
        plan(opts(walltime="00:02:00", margin_s=90))
    assert e.value.flag == "--walltime"
    with pytest.raises(ConfigError) as e:
        plan(opts(walltime="00:00:30"))
    assert e.value.flag == "--walltime"


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kw,flag", [
    (dict(db=None), "--db"), (dict(db=""), "--db"), (dict(db="a\nb.db"), "--db"),
    (dict(n=0), "-n"), (dict(n=-3), "-n"), (dict(parallel=0), "--parallel"),
    (dict(margin_s=-1.0), "--margin-time"), (dict(scheduler="lsf"), "--scheduler"),
    (dict(walltime="soon"), "--walltime"), (dict(command=[]), "COMMAND"),
    (dict(command=["  "]), "COMMAND"), (dict(command=["bash 'run.sh"]), "COMMAND"),
    (dict(jobauto=""), "--jobauto"), (dict(jobauto="'x"), "--jobauto"),
    (dict(workdir=""), "--workdir"), (dict(log_dir="x\ny"), "--log-dir"),
    (dict(name="9lives"), "--name"), (dict(name="a b"), "--name"), (dict(name="a/b"), "--name"),
])
def test_bad_options_name_their_flag(kw: dict[str, object], flag: str) -> None:
    with pytest.raises(ConfigError) as e:
        plan(opts(**kw))
    assert e.value.flag == flag


def test_default_job_name_is_short_and_safe_for_every_qsub() -> None:
    assert default_job_name("/x/experiments.db") == "w-experiments"
    assert default_job_name("my table (v2).db") == "w-my_table_v2"
    assert default_job_name("a-very-long-table-name.db") == "w-a-very-long-t"
    assert default_job_name("/x/$(rm).db") == "w-rm"
    assert default_job_name("ü.db") == "w-table"


# ----------------------------------------------------------------------------- adapters
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
    assert PbsAdapter().array_submit_argv("worker-1.sh", "w-t", 3, ["-q", "q"]) == [
        "qsub", "-N", "w-t", "-t", "1-3", "-q", "q", "worker-1.sh"]
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
    assert SgeAdapter().parse_array_submit(captured("sge", "qsub-terse-array")) == "208"
    assert SgeAdapter().parse_array_submit(captured("sge", "qsub-plain-array")) == "209"
    assert SlurmAdapter().parse_array_submit(captured("slurm", "sbatch-parsable-array")) == "66"
    assert PbsAdapter().parse_array_submit(captured("pbs", "qsub-array")) == "58"


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
        SgeAdapter().parse_array_submit(captured("sge", "qsub-bad-option"))
    with pytest.raises(SchedulerError, match="Invalid partition"):
        SlurmAdapter().parse_array_submit(out("", 1, "sbatch: error: Batch job submission failed: "
                                                     "Invalid partition name specified"))
    with pytest.raises(SchedulerError):
        PbsAdapter().parse_array_submit(captured("pbs", "qsub-bad-option"))
    with pytest.raises(SchedulerError):
        LocalAdapter().parse_array_submit(out("", 1, "no such script: x"))
    with pytest.raises(SchedulerError):
        LocalAdapter().parse_array_submit(out("garbage\n"))


def test_pbs_flavour_from_qsub_version() -> None:
    assert is_pbspro(out("pbs_version = 2022.1.1\n"))
    assert not is_pbspro(out("Version: 6.1.3\nCommit: abc\n"))          # Torque
    assert not is_pbspro(out("Unknown option: version\nUsage: ...\n", 2))  # Slurm's wrappers


# ----------------------------------------------------------------------------- the batch script
def _stub(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _recorder(path: Path, record: Path) -> Path:
    """A program that writes its working directory and arguments, one per line, to `record`."""
    return _stub(path, f'{{ pwd; for a in "$@"; do printf "%s\\n" "$a"; done; }} > {shlex.quote(str(record))}\n')


def test_script_runs_the_worker_with_every_word_intact(tmp_path: Path) -> None:
    root = tmp_path / "it's a $(dir)"
    record = tmp_path / "argv"
    fake = _recorder(root / "bin" / "jobauto", record)
    o = opts(command=["bash", *HOSTILE], parallel=3, walltime="1:00:00", margin_s=60,
             named_args=True, setup=["export FROM_SETUP=yes"], n=2)
    p = plan(o)
    paths = Paths(str(root / "t b.db"), str(root), str(root / "logs"), str(fake))
    text = script_text(o, p, paths, ["qsub", "-t", "1-2", "worker.sh"], "sge", ["-l", "h_rt=1:00:00"], 0)
    script = tmp_path / "worker.sh"
    script.write_text(text)
    subprocess.run(["bash", str(script)], check=True, cwd=tmp_path)
    lines = record.read_text().splitlines()
    assert lines[0] == str(root)
    assert lines[1:] == ["run", "--parallel", "3", "--max-runtime", "3420", "--margin-time", "60",
                         "--named-args", "--", str(root / "t b.db"), "bash", *HOSTILE]
    assert lines[1:] == run_argv(o, p, paths)[1:]
    assert not list(tmp_path.rglob("PWNED"))
    assert text.startswith("#!/bin/bash\n")
    assert "export FROM_SETUP=yes\ncd -- " in text
    # no scheduler directive can hide in the comments
    assert not [ln for ln in text.splitlines() if ln.startswith(("#$", "#SBATCH", "#PBS"))]


def test_script_without_walltime_has_no_max_runtime() -> None:
    o = opts()
    p = plan(o)
    argv = run_argv(o, p, Paths("/t.db", "/", "/t.db.workers", "/bin/jobauto"))
    assert "--max-runtime" not in argv
    assert argv == ["/bin/jobauto", "run", "--parallel", "1", "--margin-time", "0", "--",
                    "/t.db", "bash", "run.sh"]


def test_one_command_word_is_passed_through_for_run_to_split() -> None:
    o = opts(command=["bash run.sh --fast"], jobauto="env PYTHONPATH=/x python3 -m jobauto.cli.jobauto")
    argv = run_argv(o, plan(o), Paths("/t.db", "/", "/l", "/usr/bin/env"))
    assert argv[:5] == ["/usr/bin/env", "PYTHONPATH=/x", "python3", "-m", "jobauto.cli.jobauto"]
    assert argv[-2:] == ["/t.db", "bash run.sh --fast"]


# ----------------------------------------------------------------------------- the whole flow
class Site:
    """This machine as the cluster, with a recording qsub and a stub jobauto."""

    def __init__(self, tmp_path: Path, qsub_out: str = "4711.1-3:1", qsub_rc: int = 0) -> None:
        self.root = tmp_path / "my tables" / "it's"
        self.root.mkdir(parents=True)
        self.db = self.root / "jobs.db"
        self.db.write_bytes(b"stub")
        self.bin = tmp_path / "sched bin"
        self.qsub_record = tmp_path / "qsub.argv"
        self.run_record = tmp_path / "run.argv"
        _stub(self.bin / "qsub", f'{{ pwd; for a in "$@"; do printf "%s\\n" "$a"; done; }} > '
              f'{shlex.quote(str(self.qsub_record))}\necho {shlex.quote(qsub_out)}\nexit {qsub_rc}\n')
        self.jobauto = _stub(tmp_path / "jb" / "jobauto", (
            'case $1 in version) echo "jobauto 0.1.0";; status) [ -f "$2" ] || { echo "no table" >&2; exit 2; };; '
            f'run) {{ pwd; for a in "$@"; do printf "%s\\n" "$a"; done; }} > {shlex.quote(str(self.run_record))};; esac\n'))

    def options(self, **kw: object) -> WorkersOptions:
        base: dict[str, object] = dict(db=str(self.db), command=["bash", "run.sh"], n=3,
                                       scheduler="sge", scheduler_bin=[str(self.bin)],
                                       jobauto=shlex.quote(str(self.jobauto)), walltime="00:10:00")
        base.update(kw)
        return WorkersOptions(**base)  # type: ignore[arg-type]

    def qsub_calls(self) -> list[str]:
        return self.qsub_record.read_text().splitlines() if self.qsub_record.exists() else []


def test_submit_writes_the_script_next_to_the_table_and_submits_from_there(tmp_path: Path) -> None:
    site = Site(tmp_path)
    sub = start_workers(site.options(qsub_args=["-l", "cpu_4=1"]), now=time.mktime((2026, 11, 21, 10, 0, 0, 0, 0, -1)))
    logs = Path(str(site.db) + ".workers")
    assert sub.array_id == "4711" and sub.scheduler == "sge"
    assert sub.script == str(logs / "worker-20261121-100000.sh")
    calls = site.qsub_calls()
    assert calls[0] == str(logs)
    assert calls[1:] == ["-terse", "-cwd", "-S", "/bin/bash", "-N", "w-jobs", "-t", "1-3",
                         "-o", "w-jobs.o$JOB_ID.$TASK_ID", "-e", "w-jobs.e$JOB_ID.$TASK_ID",
                         "-l", "h_rt=0:10:00", "-l", "cpu_4=1", "worker-20261121-100000.sh"]
    script = Path(sub.script)
    assert os.access(script, os.X_OK) and script.read_text() == sub.script_text
    # the script, run as a task would, starts the worker in the table's directory
    subprocess.run([str(script)], check=True, cwd=logs)
    ran = site.run_record.read_text().splitlines()
    assert ran == [str(site.root), "run", "--parallel", "1", "--max-runtime", "570",
                   "--margin-time", "0", "--", str(site.db), "bash", "run.sh"]


def test_a_second_call_in_the_same_second_gets_its_own_script(tmp_path: Path) -> None:
    site = Site(tmp_path)
    first = start_workers(site.options(), now=1.8e9)
    second = start_workers(site.options(n=5), now=1.8e9)
    assert first.script != second.script and second.script.endswith("-2.sh")
    assert "--max-runtime 570" in Path(first.script).read_text()
    assert site.qsub_calls()[-1] == Path(second.script).name


def test_workdir_log_dir_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = Site(tmp_path)
    (tmp_path / "work dir").mkdir()
    monkeypatch.chdir(site.root)
    sub = start_workers(site.options(db="jobs.db", workdir=str(tmp_path / "work dir"),
                                     log_dir="../logs here"), now=1.8e9)
    assert sub.paths.db == str(site.db)
    assert sub.paths.log_dir == str(site.root / ".." / "logs here")
    assert Path(sub.script).parent.resolve() == (tmp_path / "my tables" / "logs here").resolve()
    assert f"cd -- {shlex.quote(str(tmp_path / 'work dir'))} || exit 1" in sub.script_text


@pytest.mark.parametrize("change,flag", [
    ("db", "--db"), ("dir", "--db"), ("workdir", "--workdir"), ("jobauto", "--jobauto"),
    ("jobauto-broken", "--jobauto"), ("table", "--db"), ("command", "COMMAND"),
    ("log-dir", "--log-dir"),
])
def test_bad_cluster_side_is_one_message_and_nothing_submitted(tmp_path: Path, change: str,
                                                                flag: str) -> None:
    site = Site(tmp_path)
    kw: dict[str, object] = {}
    if change == "db":
        kw["db"] = str(site.root / "missing.db")
    elif change == "dir":
        kw["db"] = str(site.root)
    elif change == "workdir":
        kw["workdir"] = str(tmp_path / "nowhere")
    elif change == "jobauto":
        kw["jobauto"] = "no-such-jobauto-here"
    elif change == "jobauto-broken":
        kw["jobauto"] = "false"
    elif change == "table":
        kw["jobauto"] = f"{shlex.quote(str(site.jobauto))} --wrong"
        _stub(site.jobauto, 'case $1 in version) exit 0;; esac; case $2 in version) exit 0;; esac; '
              'echo "not a jobauto job table" >&2; exit 2\n')
    elif change == "command":
        kw["command"] = ["./missing.sh"]
    elif change == "log-dir":
        (tmp_path / "a file").write_text("x")
        kw["log_dir"] = str(tmp_path / "a file")
    with pytest.raises(JobautoError) as e:
        start_workers(site.options(**kw))
    assert e.value.flag == flag, e.value.describe()
    assert site.qsub_calls() == []
    assert not Path(str(site.db) + ".workers").exists()


def test_refused_submission_is_an_error_with_the_schedulers_words(tmp_path: Path) -> None:
    site = Site(tmp_path, "Unable to run job: unknown resource \"cpu_9\"", 1)
    with pytest.raises(SchedulerError, match="unknown resource") as e:
        start_workers(site.options(qsub_args=["-l", "cpu_9=1"]))
    assert e.value.flag == "--qsub-args"
    assert not Path(str(site.db) + ".workers").exists()   # its script taken away again
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "keep").write_text("")
    with pytest.raises(SchedulerError):
        start_workers(site.options(log_dir=str(tmp_path / "logs")))
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["keep"]


def test_dry_run_checks_but_writes_and_submits_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = Site(tmp_path)
    rc = workers_main(["--db", str(site.db), "-n", "2", "--scheduler", "sge", "--scheduler-bin",
                       str(site.bin), "--jobauto", shlex.quote(str(site.jobauto)), "--dry-run",
                       "--", "bash", "run.sh"])
    text = capsys.readouterr().out
    assert rc == 0 and "--dry-run" in text and "#!/bin/bash" in text and "qsub -terse" in text
    assert site.qsub_calls() == [] and not Path(str(site.db) + ".workers").exists()


def test_cli_reports_the_array_and_how_to_watch_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = Site(tmp_path)
    rc = workers_main(["--db", str(site.db), "-n", "3", "--parallel", "2", "--walltime", "1:00:00",
                       "--scheduler", "sge", "--scheduler-bin", str(site.bin),
                       "--jobauto", shlex.quote(str(site.jobauto)), "--", "bash", "run.sh"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "submitted 3 worker(s) on this machine as sge array job 4711" in text
    assert f"{site.jobauto} status {shlex.quote(str(site.db))}" in text
    assert "qdel 4711" in text and ".workers/worker-" in text


@pytest.mark.parametrize("argv,flag", [
    (["-n", "0"], "-n:"), (["--walltime", "90"], "--walltime:"), (["--scheduler", "lsf"], "--scheduler:"),
    (["--parallel", "0"], "--parallel:"), (["--qsub-args", "'x"], "--qsub-args:"),
    (["--walltime", "00:00:20"], "--walltime:"),
])
def test_cli_bad_input_exit_2_naming_the_flag(argv: list[str], flag: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert workers_main(["--db", "x.db", *argv, "--", "bash", "run.sh"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jobauto workers: error: ") and flag in err and len(err.splitlines()) == 1


def test_local_scheduler_takes_no_submit_options(tmp_path: Path) -> None:
    site = Site(tmp_path)
    with pytest.raises(ConfigError) as e:
        start_workers(site.options(scheduler="local", qsub_args=["-q", "x"]))
    assert e.value.flag == "--qsub-args"


def test_cli_missing_db_and_missing_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert workers_main(["-n", "2", "--", "bash", "run.sh"]) == 2
    assert "--db: is required" in capsys.readouterr().err
    assert workers_main(["--db", "x.db", "-n", "2"]) == 2
    assert "COMMAND: missing" in capsys.readouterr().err


def test_cli_unreachable_host_names_remote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host nowhere\n  HostName 127.0.0.1\n  Port 1\n  ConnectTimeout 5\n")
    assert workers_main(["--remote", "nowhere", "--ssh-config", str(cfg), "--db", "x.db",
                         "--", "bash", "run.sh"]) == 2
    err = capsys.readouterr().err
    assert "--remote: cannot reach nowhere" in err


# ----------------------------------------------------------------------------- local scheduler
def test_local_scheduler_starts_detached_workers_that_finish_the_table(tmp_path: Path) -> None:
    root = tmp_path / "demo dir"
    root.mkdir()
    rows = ["JOBSCHEDULER_JOB_ID,word,JOBSCHEDULER_DEPENDS_ON", "a,x y,", "b,it's,a", "c,$(touch PWNED),a",
            "d,last,b c"]
    (root / "t.csv").write_text("\n".join(rows) + "\n")
    jobauto = [sys.executable, "-m", "jobauto.cli.jobauto"]
    subprocess.run([*jobauto, "import", str(root / "t.csv")], check=True, capture_output=True)
    _stub(root / "job.sh", 'printf "%s\\n" "$1" >> log\n')
    sub = start_workers(WorkersOptions(db=str(root / "t.db"), command=["./job.sh"], n=2,
                                       scheduler="local", jobauto=shlex.join(jobauto),
                                       walltime="00:05:00"))
    pids = [int(p) for p in sub.array_id.split()]
    assert len(pids) == 2
    assert all(_session(p) in (p, None) for p in pids)   # each in its own session: detached
    deadline = time.monotonic() + 60
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "the workers did not stop when the table was done"
    log = (root / "log").read_text().splitlines()
    assert sorted(log) == sorted(["x y", "it's", "$(touch PWNED)", "last"]) and log[-1] == "last"
    assert log[0] == "x y" and not list(tmp_path.rglob("PWNED"))
    outputs = sorted(p.name for p in Path(sub.paths.log_dir).iterdir() if ".o" in p.name)
    assert outputs == sorted(f"w-t.o{p}" for p in pids)


def _session(pid: int) -> int | None:
    """The process's session once setsid has run (None if it already ended)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            sid = os.getsid(pid)
        except ProcessLookupError:
            return None
        if sid == pid or time.monotonic() > deadline:
            return sid
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_lost_answer_says_the_outcome_is_unknown(tmp_path: Path) -> None:
    from jobauto.cluster.transport.local import LocalTransport
    from jobauto.core.errors import TransportError

    site = Site(tmp_path)

    class Cut(LocalTransport):
        def run(self, argv, **kw):  # type: ignore[no-untyped-def]
            if "jobauto-workers" in argv:
                super().run(argv, **kw)
                raise TransportError("connection to testhost lost")
            return super().run(argv, **kw)

    with pytest.raises(TransportError, match="whether the workers were submitted is unknown") as e:
        start_workers(site.options(), transport=Cut())
    assert e.value.flag == "--remote" and len(site.qsub_calls()) > 1
