"""Arrays of workers (jobauto/table/arrays.py) as `jobauto workers` submits them on real Grid
Engine, real Slurm and Slurm's PBS/Torque wrappers, over the real sshd: arrays of pull workers
finish a 200-job table with dependencies, a second call adds workers while the first array runs,
and bad input submits nothing.

The cluster is this machine: the table lives in the remote user's home (a directory whose name
has a space), created there over ssh, so that user owns and may write it. jobauto on the cluster
is this checkout, copied into that home once per session and started with the system python3
(`--jobauto 'env PYTHONPATH=... python3 -m jobauto.cli.jobauto'`).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from helpers import Cluster, Sched, ssh

import jobauto as jobauto_pkg

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

WALLTIME = "00:05:00"          # asked of the scheduler; the workers get --max-runtime 270
JOB = """#!/bin/sh
# one line per run: job id, the array that ran it (SGE $JOB_ID; Slurm and the PBS wrappers
# $SLURM_ARRAY_JOB_ID), the second parameter
sleep "${JOB_SLEEP:-0}"
printf '%s|%s|%s\\n' "$1" "${SLURM_ARRAY_JOB_ID:-${JOB_ID:-none}}" "$2" >> runs.log
"""


@pytest.fixture(scope="session")
def remote_jobauto(sshd: Cluster) -> str:
    """The --jobauto command that starts this checkout's jobauto as the remote user."""
    py = ssh("command -v python3 && python3 -c 'import sys; assert sys.version_info >= (3, 10)'",
             check=False)
    assert py.returncode == 0, f"the cluster needs python3 >= 3.10: {py.stdout} {py.stderr}"
    pkg = f"jobauto-tests/pkg {uuid.uuid4().hex[:8]}"
    ssh(f"mkdir -p {shlex.quote(pkg)}")
    src = Path(jobauto_pkg.__file__).parent
    # copied through ssh (tar on both sides), so the remote user owns it whoever runs the tests
    tar = subprocess.run(["tar", "-C", str(src.parent), "--exclude=__pycache__", "-cf", "-",
                          src.name], capture_output=True, check=True).stdout
    subprocess.run(["ssh", "-F", str(sshd.ssh_config), sshd.host,
                    f"tar -C {shlex.quote(pkg)} -xf -"], input=tar, check=True, timeout=60)
    return shlex.join(["env", f"PYTHONPATH={sshd.home / pkg}", py.stdout.split()[0], "-m",
                       "jobauto.cli.jobauto"])


def workers(c: Cluster, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`jobauto workers --remote testhost ...` as a user runs it."""
    return subprocess.run([shutil.which("jobauto") or "jobauto", "workers", f"--remote={c.host}",
                           f"--ssh-config={c.ssh_config}", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def make_table(c: Cluster, jobauto: str, rows: list[tuple[str, str, str]], sleep: str = "0") -> str:
    """A table dir "my table" in a fresh remote dir: jobs.csv -> jobs.db (jobauto import), the
    job script; returns the table's path relative to the remote home."""
    d = f"{c.remote_dir('workers')}/my table"
    # the id again as the first parameter: the job script logs it
    csv = "JOBSCHEDULER_JOB_ID,name,note,JOBSCHEDULER_DEPENDS_ON\n" + "".join(
        f"{i},{i},{note},{deps}\n" for i, note, deps in rows)
    q = shlex.quote
    ssh(f"mkdir -p {q(d)} && cd {q(d)} && printf '%s' {q(csv)} > jobs.csv && "
        f"printf '%s' {q(JOB.replace('${JOB_SLEEP:-0}', sleep))} > job.sh && chmod +x job.sh && "
        f"{jobauto} import jobs.csv jobs.db")
    return f"{d}/jobs.db"


def dag_rows(n: int) -> list[tuple[str, str, str]]:
    """A binary tree of n jobs (j000 <- j001, j002; j001 <- j003, j004 ...) plus fan-ins: every
    7th job also waits for the job three before it."""
    rows = []
    for i in range(n):
        deps = {f"j{(i - 1) // 2:03d}"} if i else set()
        if i >= 3 and i % 7 == 0:
            deps.add(f"j{i - 3:03d}")
        rows.append((f"j{i:03d}", "it's a $(touch PWNED) note" if i % 5 == 0 else f"n{i}",
                     " ".join(sorted(deps))))
    return rows


def read_runs(c: Cluster, table: str) -> list[list[str]]:
    log = c.path(table).parent / "runs.log"
    return [ln.split("|") for ln in log.read_text().splitlines()] if log.exists() else []


def array_id(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, f"rc {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    head = p.stdout.splitlines()[0]
    assert " array job " in head, p.stdout
    return head.rsplit(" ", 1)[1]


def in_queue(sched: str, jid: str) -> bool:
    if sched == "sge":
        return ssh(f"qstat -j {jid}", check=False).returncode == 0
    # Slurm, and the PBS wrappers (Slurm's ids underneath); an id past MinJobAge is an error
    r = ssh(f"squeue -h -j {jid} -o %T", check=False)
    return r.returncode == 0 and bool(r.stdout.strip())


def wait_done(c: Cluster, sched: str, table: str, ids: list[str], jobs: int, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if len(read_runs(c, table)) >= jobs and not any(in_queue(sched, i) for i in ids):
            return
        time.sleep(1)
    pytest.fail(f"not finished after {limit_s:.0f} s: {len(read_runs(c, table))} of {jobs} jobs "
                f"ran; queue: {ssh('qstat; squeue', check=False).stdout}; worker logs:\n"
                + "\n".join(f"{p.name}: {p.read_text()[-600:]}"
                            for p in (c.path(table + '.workers')).glob('w-*')))


def task_endings(sched: str, jid: str, n: int) -> list[str]:
    """Each task's end as the scheduler's accounting has it, once all n are recorded."""
    deadline = time.monotonic() + 30
    found: list[str] = []
    while time.monotonic() < deadline:
        if sched == "sge":
            text = ssh(f"qacct -j {jid}", check=False).stdout
            recs = [{k: v.strip() for k, v in ((ln.split(None, 1) + [""])[:2]
                                               for ln in block.splitlines() if ln.strip())}
                    for block in re.split(r"^=+\s*$", text, flags=re.MULTILINE)]
            found = [f"{r['failed']}/{r['exit_status']}/{r.get('category', '')}"
                     for r in recs if "failed" in r]
        else:
            text = ssh(f"sacct -n -X -P -j {jid} -o State,ExitCode,Timelimit", check=False).stdout
            found = [ln for ln in text.splitlines() if ln.strip()]
        if len(found) == n and not any(s.startswith(("RUNNING", "PENDING", "COMPLETING"))
                                       for s in found):
            return found
        time.sleep(1)
    return found


def test_array_of_workers_finishes_a_200_job_dag(sched: Sched, remote_jobauto: str) -> None:
    c = sched.cluster
    rows = dag_rows(200)
    table = make_table(c, remote_jobauto, rows)
    t0 = time.monotonic()
    p = workers(c, *sched.args, f"--db={table}", "-n", "4", "--parallel", "2",
                f"--walltime={WALLTIME}", f"--jobauto={remote_jobauto}", "--", "./job.sh")
    jid = array_id(p)
    assert f"as {sched.name} array job {jid}" in p.stdout
    assert "--max-runtime 270" in p.stdout and "jobs.db.workers/worker-" in p.stdout
    wait_done(c, sched.name, table, [jid], len(rows), 150)
    took = time.monotonic() - t0

    runs = read_runs(c, table)
    assert Counter(r[0] for r in runs) == Counter(r[0] for r in rows)   # every job exactly once
    assert {r[1] for r in runs} == {jid}                               # all by this array
    notes = {r[0]: r[2] for r in runs}
    assert all(notes[i] == note for i, note, _ in rows)                # parameters intact
    pos = {r[0]: k for k, r in enumerate(runs)}
    late = [(i, d) for i, _, deps in rows for d in deps.split() if pos[d] > pos[i]]
    assert late == [], f"jobs ran before their dependencies: {late[:5]}"
    assert not list(c.path(table).parent.rglob("PWNED"))

    ends = task_endings(sched.name, jid, 4)
    if sched.name == "sge":        # failed/exit_status/category: the workers ended normally
        assert len(ends) == 4 and all(e.startswith("0/0/") and "h_rt=300" in e for e in ends), ends
    else:
        assert ends == ["COMPLETED|0:0|00:05:00"] * 4, ends
    status = ssh(f"{remote_jobauto} status {shlex.quote(str(c.path(table)))}").stdout
    assert "Done: 200" in status, status
    print(f"{sched.name}: 200 jobs, 4 workers x 2 slots, {took:.1f} s")


@pytest.mark.parametrize("name", ["sge", "slurm"])
def test_a_second_call_adds_workers_while_the_first_array_runs(
        name: str, request: pytest.FixtureRequest, remote_jobauto: str) -> None:
    c: Cluster = request.getfixturevalue(name)
    rows = [(f"s{i:02d}", f"n{i}", "") for i in range(24)]
    table = make_table(c, remote_jobauto, rows, sleep="1")
    common = [f"--scheduler={name}", f"--db={table}", f"--walltime={WALLTIME}",
              f"--jobauto={remote_jobauto}", "--", "./job.sh"]
    first = array_id(workers(c, "-n", "1", *common))
    deadline = time.monotonic() + 60
    while not read_runs(c, table) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert read_runs(c, table), "the first worker never ran a job"
    assert in_queue(name, first)
    second = array_id(workers(c, "-n", "2", *common))
    assert second != first
    wait_done(c, name, table, [first, second], len(rows), 110)

    runs = read_runs(c, table)
    assert Counter(r[0] for r in runs) == Counter(r[0] for r in rows)   # once each, no takeover
    by = Counter(r[1] for r in runs)
    assert set(by) == {first, second} and by[second] >= 4, by
    scripts = sorted(p.name for p in c.path(table + ".workers").glob("worker-*.sh"))
    assert len(scripts) == 2, scripts


def test_unknown_host_key_and_bad_input_submit_nothing(sge: Cluster, remote_jobauto: str,
                                                       tmp_path: Path) -> None:
    table = make_table(sge, remote_jobauto, [("a", "x", "")])
    logs = sge.path(table + ".workers")
    cfg = tmp_path / "ssh_config"
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    cfg.write_text("\n".join(ln for ln in sge.ssh_config.read_text().splitlines()
                             if "UserKnownHostsFile" not in ln) + f"\n    UserKnownHostsFile {empty}\n")
    p = subprocess.run([shutil.which("jobauto") or "jobauto", "workers", f"--remote={sge.host}",
                        f"--ssh-config={cfg}", f"--db={table}", "-n", "2", "--", "./job.sh"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "--remote: the host key of" in p.stderr, p.stderr
    assert "ssh-keyscan" in p.stderr

    cases = [
        (["--db=" + table.replace("jobs.db", "nope.db")], "--db: no such file"),
        (["--db=" + table, "--jobauto=no-such-jobauto"], "--jobauto: no-such-jobauto: command not found"),
        (["--db=" + table, "--scheduler=lsf"], "--scheduler: unknown scheduler 'lsf'"),
        (["--db=" + table, "--walltime=1:00"], "--walltime: '1:00' is not a wall-clock time"),
        (["--db=" + table, f"--jobauto={remote_jobauto}", "--qsub-args=-l no_such_resource=1"],
         "--qsub-args: qsub failed"),
        (["--db=" + table, f"--jobauto={remote_jobauto}", "--", "./missing.sh"], "COMMAND:"),
    ]
    for extra, message in cases:
        argv = [*extra] if "--" in extra else [*extra, "--", "./job.sh"]
        p = workers(sge, "-n", "2", *argv)
        assert p.returncode == 2 and message in p.stderr, (extra, p.stderr)
        assert len(p.stderr.splitlines()) == 1, p.stderr
    # nothing reached the queue, and the refused submission took its script away again
    assert ssh("qstat -u jobauto | grep -c w-jobs", check=False).stdout.strip() in ("", "0")
    assert not logs.exists()


def test_workers_stop_before_grid_engines_walltime_and_return_their_jobs(
        sge: Cluster, remote_jobauto: str) -> None:
    """h_rt=45 s: the worker gets --max-runtime 15 and stops itself long before Grid Engine
    would kill it; the job it was running goes back to pending."""
    rows = [(f"t{i}", "slow", "") for i in range(3)]
    table = make_table(sge, remote_jobauto, rows, sleep="10")
    jid = array_id(workers(sge, "--scheduler=sge", f"--db={table}", "--walltime=00:00:45",
                           f"--jobauto={remote_jobauto}", "--", "./job.sh"))
    deadline = time.monotonic() + 90
    while in_queue("sge", jid) and time.monotonic() < deadline:
        time.sleep(1)
    assert not in_queue("sge", jid)
    ends = task_endings("sge", jid, 1)
    assert len(ends) == 1 and ends[0].startswith("0/0/") and "h_rt=45" in ends[0], ends
    assert [r[0] for r in read_runs(sge, table)] == ["t0"]
    err = "".join(p.read_text() for p in sge.path(table + ".workers").glob(f"w-jobs.e{jid}.*"))
    assert "--max-runtime reached" in err, err
    export = f"{shlex.quote(str(sge.path(table).parent / 'out.csv'))}"
    ssh(f"{remote_jobauto} export {shlex.quote(str(sge.path(table)))} {export}")
    states = [ln.split(",") for ln in (sge.path(table).parent / "out.csv").read_text().splitlines()]
    col = states[0].index("JOBSCHEDULER_STATUS")
    assert sorted(s[col] for s in states[1:]) == ["done", "pending", "pending"], states


def test_local_scheduler_over_ssh_starts_detached_workers(sshd: Cluster, remote_jobauto: str) -> None:
    """--scheduler local on the remote host: the workers outlive the SSH connection that
    started them and stop by themselves when the table is done."""
    rows = dag_rows(20)
    table = make_table(sshd, remote_jobauto, rows)
    p = workers(sshd, "--scheduler=local", f"--db={table}", "-n", "2", "--parallel", "2",
                f"--jobauto={remote_jobauto}", "--", "./job.sh")
    assert p.returncode == 0, p.stderr
    head = p.stdout.splitlines()[0]
    assert head.startswith("jobauto workers: started 2 worker(s) on testhost, pids "), head
    pids = head.rsplit("pids ", 1)[1].split()

    def alive() -> list[str]:   # a zombie has ended (PID 1 may not reap it here)
        out = ssh(f"ps -o pid=,stat= -p {','.join(pids)}", check=False).stdout
        return [ln.split()[0] for ln in out.splitlines() if not ln.split()[1].startswith("Z")]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(read_runs(sshd, table)) >= len(rows) and not alive():
            break
        time.sleep(0.5)
    runs = read_runs(sshd, table)
    assert Counter(r[0] for r in runs) == Counter(r[0] for r in rows)
    assert not alive(), "the workers did not stop when the table was done"
    outs = sorted(f.name for f in sshd.path(table + ".workers").glob("w-jobs.o*"))
    assert outs == sorted(f"w-jobs.o{p}" for p in pids)
