"""Arrays of workers (jobauto/table/arrays.py, behind `jobauto workers`): walltime rule,
validation, the batch script, and the whole flow on this machine with stub qsub/jobauto.
Elsewhere: the adapters' array options (cluster/test_schedulers.py), the command
(cli/test_workers.py), the real schedulers (table/test_arrays_cluster.py)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import Site, stub

from jobauto.core.errors import ConfigError, JobautoError, SchedulerError
from jobauto.table.arrayplan import (
    Paths,
    WorkersOptions,
    default_job_name,
    parse_walltime,
    plan,
    run_argv,
    safety_s,
    script_text,
)
from jobauto.table.arrays import start_workers

HOSTILE = ["a b", "it's", "$(touch PWNED)", "`touch PWNED`", "semi;colon", "*", "-x"]


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


# ----------------------------------------------------------------------------- the batch script
def _recorder(path: Path, record: Path) -> Path:
    """A program that writes its working directory and arguments, one per line, to `record`."""
    return stub(path, f'{{ pwd; for a in "$@"; do printf "%s\\n" "$a"; done; }} > {shlex.quote(str(record))}\n')


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


def test_unsafe_fs_reaches_the_check_and_every_worker(tmp_path: Path) -> None:
    """Without --unsafe-fs the check's `jobauto status` refuses a table on a mount whose locks
    stay on one host (one message, nothing submitted); with it, the check and the workers'
    `jobauto run` both carry it."""
    site = Site(tmp_path)
    stub(site.jobauto, (
        'case $1 in version) echo "jobauto 0.1.0";; '
        'status) [ "$3" = --unsafe-fs ] || { echo "jobauto status: error: $2: the job table is on '
        '/mnt/x (fuse.sshfs, ...)" >&2; exit 2; };; '
        f'run) {{ pwd; for a in "$@"; do printf "%s\\n" "$a"; done; }} > {shlex.quote(str(site.run_record))};; esac\n'))
    with pytest.raises(JobautoError) as e:
        start_workers(site.options(), now=1.8e9)
    assert e.value.flag == "--db" and "fuse.sshfs" in e.value.message and site.qsub_calls() == []
    sub = start_workers(site.options(unsafe_fs=True), now=1.8e9)
    assert sub.status_argv[-2:] == [str(site.db), "--unsafe-fs"]
    subprocess.run([sub.script], check=True, cwd=Path(sub.script).parent)
    ran = site.run_record.read_text().splitlines()
    assert "--unsafe-fs" in ran and ran.index("--unsafe-fs") < ran.index("--")


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
        stub(site.jobauto, 'case $1 in version) exit 0;; esac; case $2 in version) exit 0;; esac; '
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


def test_local_scheduler_takes_no_submit_options(tmp_path: Path) -> None:
    site = Site(tmp_path)
    with pytest.raises(ConfigError) as e:
        start_workers(site.options(scheduler="local", qsub_args=["-q", "x"]))
    assert e.value.flag == "--qsub-args"


# ----------------------------------------------------------------------------- local scheduler
def test_local_scheduler_starts_detached_workers_that_finish_the_table(tmp_path: Path) -> None:
    root = tmp_path / "demo dir"
    root.mkdir()
    rows = ["JOBSCHEDULER_JOB_ID,word,JOBSCHEDULER_DEPENDS_ON", "a,x y,", "b,it's,a", "c,$(touch PWNED),a",
            "d,last,b c"]
    (root / "t.csv").write_text("\n".join(rows) + "\n")
    jobauto = [sys.executable, "-m", "jobauto.cli.jobauto"]
    subprocess.run([*jobauto, "import", str(root / "t.csv")], check=True, capture_output=True)
    stub(root / "job.sh", 'printf "%s\\n" "$1" >> log\n')
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
