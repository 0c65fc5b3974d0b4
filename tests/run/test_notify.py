"""Notifications (jobauto/run/notify.py): what a cycle's events become and how each target gets
them, against local receivers only: an HTTP server on 127.0.0.1 for apprise's json:// URLs, a
command hook that records its stdin and environment, hooks that fail or hang, and a sendmail
stand-in on PATH (docs/decisions.md "Notifications" says why that is mail's local receiver).
The monitor runs on the fake cluster with an explicit clock; the wiring through jobmon on the
local scheduler."""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    Receiver,
    Rig,
    failing_tree,
    hook_calls,
    jobmon,
    make_job,
    recording_hook,
    run_cli,
    sendmail_stand_in,
    start_jobmon,
)

from jobauto.core.config import Options
from jobauto.core.errors import ConfigError
from jobauto.core.model import Ending, Verdict
from jobauto.run import notify
from jobauto.run.notify import Notifier, targets
from jobauto.store import Store


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Told:
    """A Notifier over a rig's monitor, its log lines and store records kept."""

    def __init__(self, rig: Rig, *target: str, mail: list[str] | None = None,
                 timeout_s: float = 30.0) -> None:
        assert rig.monitor is not None
        self.lines: list[str] = []
        self.records: list[tuple[float, str, str]] = []
        chosen = targets(Options(notify=list(target), mail=mail or []))
        self.notifier = Notifier(chosen, rig.run, rig.monitor.jobs, self.lines.append,
                                 lambda *r: self.records.append(r), timeout_s)

    def after(self, result: object, now: float) -> None:
        """What daemon.loop does after a tick."""
        if result.failed:  # type: ignore[attr-defined]
            self.notifier.failed(result.failed, result.counts, now)  # type: ignore[attr-defined]
        if result.finished:  # type: ignore[attr-defined]
            self.notifier.ended(result.exit_code, result.summary, result.counts, now)  # type: ignore[attr-defined]


def test_fifty_failures_in_one_cycle_are_one_message_then_one_for_the_end(
        tmp_path: Path, receiver: Receiver) -> None:
    rig = Rig(tmp_path, maxqsub=100)
    for i in range(50):
        make_job(rig.init, f"m{i:02d}/qsub.0")
    make_job(rig.init, "ok/qsub.0")
    m = rig.start()
    hook = recording_hook(tmp_path)
    told = Told(rig, f"{hook} --from=jobauto", f"json://127.0.0.1:{receiver.port}/hooks/run")
    told.after(m.tick(10.0), 10.0)
    assert not receiver.posts and hook_calls(tmp_path / "hook.log") == []
    for i in range(50):
        rig.cluster.finish(rig.job(f"m{i:02d}/qsub.0"), rc=3)
    rig.cluster.finish(rig.job("ok/qsub.0"))
    result = m.tick(20.0)
    assert len(result.failed) == 50 and result.finished
    told.after(result, 20.0)
    calls = hook_calls(tmp_path / "hook.log")
    assert [c[0] for c in calls] == ["== failed run 50 args: --from=jobauto",
                                     "== stuck run 50 args: --from=jobauto"]
    line, env, data = calls[0]
    assert env["JOBAUTO_EVENT"] == "failed" and env["JOBAUTO_COUNT"] == "50"
    assert env["JOBAUTO_JOBS"].split("\n") == [f"m{i:02d}/qsub.0" for i in range(5)]
    assert env["JOBAUTO_TITLE"] == ("jobauto run: 50 jobs failed: m00/qsub.0, m01/qsub.0, m02/qsub.0, "
                                    "m03/qsub.0, m04/qsub.0 and 45 more")
    assert data["count"] == 50 and len(data["jobs"]) == 50  # type: ignore[arg-type]
    assert data["jobs"][0] == {"name": "m00/qsub.0", "verdict": "failed", "exit_code": 3,  # type: ignore[index]
                               "reason": "failed: exited with code 3 (marker m00/qsub.failed.0: 3)"}
    assert "... and 45 more" in str(data["body"])
    assert calls[1][2]["exit_code"] == 1 and calls[1][1]["JOBAUTO_EXIT"] == "1"
    assert calls[1][2]["summary"][-2:] == [  # type: ignore[index]
        "error    m39/qsub.0: failed: exited with code 3 (marker m39/qsub.failed.0: 3)",
        "... and 10 more (see quelist)"]
    assert [p[0] for p in receiver.posts] == ["/hooks/run", "/hooks/run"]
    assert receiver.titles() == [env["JOBAUTO_TITLE"], "jobauto run: cannot finish, 50 jobs will not complete"]
    assert "m04/qsub.0: failed: exited with code 3" in str(receiver.posts[0][2]["message"])
    assert [r[1] for r in told.records] == ["notify"] * 4
    assert told.lines == ["jobmon: notify: sent failed (50 jobs) to command hook",
                          f"jobmon: notify: sent failed (50 jobs) to json://127.0.0.1:{receiver.port}/...",
                          "jobmon: notify: sent stuck to command hook",
                          f"jobmon: notify: sent stuck to json://127.0.0.1:{receiver.port}/..."]


def test_a_run_that_finishes_is_one_message_and_no_failure(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    told = Told(rig, str(recording_hook(tmp_path)))
    told.after(m.tick(1.0), 1.0)
    rig.cluster.finish(rig.job("a/qsub.0"))
    told.after(m.tick(2.0), 2.0)
    calls = hook_calls(tmp_path / "hook.log")
    assert [c[0] for c in calls] == ["== finished run 1 args: "]
    assert calls[0][2]["title"] == "jobauto run: finished, all jobs done"


def test_a_failure_is_told_once_it_is_final_and_a_cancelled_job_is_no_failure(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.settings.retries = 1
    make_job(rig.init, "retried/qsub.0")
    make_job(rig.init, "cancelled/qsub.0")
    m = rig.start()
    told = Told(rig, str(recording_hook(tmp_path)))
    told.after(m.tick(0.0), 0.0)
    rig.cluster.finish(rig.job("retried/qsub.0"), rc=1)
    job = rig.job("cancelled/qsub.0")
    rig.cluster.finish(job, rc=143)  # killed by scancel: a signal's code, then accounting says who
    job.ending = Ending(job.id, Verdict.CANCELLED, 0, "sacct: CANCELLED by 1001", name=job.name)
    r = m.tick(1.0)
    assert r.failed == [] and m.jobs["retried/qsub.0"].retried == 1  # and submitted again
    told.after(r, 1.0)
    r = m.tick(2.0)  # the second attempt goes out; the cancelled job's verdict is refined
    assert m.jobs["cancelled/qsub.0"].verdict == "cancelled" and r.failed == ["cancelled/qsub.0"]
    told.after(r, 2.0)
    assert hook_calls(tmp_path / "hook.log") == []  # cancelled: the user's doing, not a failure
    rig.cluster.finish(rig.job_latest("retried/qsub.0"), rc=1)
    r = m.tick(3.0)
    assert r.failed == ["retried/qsub.0"]
    told.after(r, 3.0)
    calls = hook_calls(tmp_path / "hook.log")
    assert [c[0] for c in calls] == ["== failed run 1 args: ", "== stuck run 2 args: "]
    assert [j["name"] for j in calls[0][2]["jobs"]] == ["retried/qsub.0"]  # type: ignore[union-attr]


def test_a_failing_or_hanging_target_is_logged_and_the_others_still_get_it(
        tmp_path: Path, receiver: Receiver) -> None:
    refusing = Receiver(status=500)
    try:
        rig = Rig(tmp_path)
        make_job(rig.init, "a/qsub.0")
        m = rig.start()
        fails = recording_hook(tmp_path, "fails", "echo 'hook says no' >&2; exit 1")
        hangs = recording_hook(tmp_path, "hangs", "sleep 300")
        good = recording_hook(tmp_path, "good")
        told = Told(rig, str(fails), str(hangs), f"json://127.0.0.1:{refusing.port}/x",
                    f"json://user:s3cret@127.0.0.1:{receiver.port}/T0KEN/path?token=t0k", str(good),
                    timeout_s=1)
        told.after(m.tick(0.0), 0.0)
        rig.cluster.finish(rig.job("a/qsub.0"), rc=2)
        started = time.monotonic()
        told.after(m.tick(1.0), 1.0)
        assert time.monotonic() - started < 60  # the hang was cut short, not waited out
        assert [c[0].split()[1] for c in hook_calls(tmp_path / "good.log")] == ["failed", "stuck"]
        assert len(receiver.posts) == 2 and len(refusing.posts) == 2
        assert receiver.posts[0][1]["Authorization"].startswith("Basic ")  # the password went there
        failed = [ln for ln in told.lines if ln.startswith("jobmon: notify: could not send failed")]
        assert failed == [
            "jobmon: notify: could not send failed (1 job) to command fails: exit 1: hook says no",
            "jobmon: notify: could not send failed (1 job) to command hangs: no answer within 1 s; killed",
            f"jobmon: notify: could not send failed (1 job) to json://127.0.0.1:{refusing.port}/...: "
            "Failed to send JSON POST notification: Internal server error., error=500."]
        assert f"jobmon: notify: sent failed (1 job) to json://user:****@127.0.0.1:{receiver.port}/..." in told.lines
        everything = "\n".join(told.lines + [r[2] for r in told.records])
        assert "s3cret" not in everything and "T0KEN" not in everything and "t0k" not in everything
        assert [r[1] for r in told.records].count("warning") == 6
        assert [r[1] for r in told.records].count("notify") == 4
    finally:
        refusing.close()


def test_mail_goes_through_sendmail_with_to_and_subject(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    spool = tmp_path / "spool"
    sendmail_stand_in(tmp_path / "bin", spool)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    told = Told(rig, mail=["me@example.org", "you@example.org"])
    told.after(m.tick(0.0), 0.0)
    rig.cluster.finish(rig.job("a/qsub.0"), rc=4)
    told.after(m.tick(1.0), 1.0)
    sent = sorted(spool.glob("*.eml"), key=lambda p: int(p.stem))
    assert [(spool / f"{p.stem}.args").read_text().split() for p in sent] == [["-t", "-i"]] * 4
    msgs = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sent]
    assert [(str(x["To"]), str(x["Subject"])) for x in msgs] == [
        ("me@example.org", "jobauto run: 1 job failed: a/qsub.0"),
        ("you@example.org", "jobauto run: 1 job failed: a/qsub.0"),
        ("me@example.org", "jobauto run: cannot finish, 1 jobs will not complete"),
        ("you@example.org", "jobauto run: cannot finish, 1 jobs will not complete")]
    assert msgs[0]["X-Jobauto-Event"] == "failed" and msgs[0]["Auto-Submitted"] == "auto-generated"
    assert "a/qsub.0: failed: exited with code 4" in msgs[0].get_content()
    assert told.lines[0] == "jobmon: notify: sent failed (1 job) to mail to me@example.org"


@pytest.mark.parametrize(("target", "message"), [
    ("no-such-command --x", "--notify: command 'no-such-command' not found or not executable"),
    ("camp/init/ok/qsub.dependency.0", "--notify: command 'camp/init/ok/qsub.dependency.0' not "
     "found or not executable"),
    ("bogus://x", "is not a notification URL apprise can use"),
    ("json://", "is not a notification URL apprise can use"),
    ("'unclosed", "--notify: cannot split the command"),
    ("", "--notify: is empty"),
])
def test_a_target_that_cannot_work_is_refused_before_anything_starts(
        tmp_path: Path, target: str, message: str) -> None:
    failing_tree(tmp_path / "camp" / "init")
    p = jobmon(f"--ldir={tmp_path / 'camp'}", f"--rdir={tmp_path}/remote", "--scheduler=local",
               f"--notify={target}", cwd=tmp_path, timeout=60)
    assert p.returncode == 2 and message in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    assert sorted(x.name for x in (tmp_path / "camp").iterdir()) == ["init"]
    assert not (tmp_path / "remote").exists()


def test_mail_refuses_a_bad_address_and_a_missing_sendmail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="is not a mail address") as e:
        targets(Options(mail=["-oQ/tmp@x"]))
    assert e.value.flag == "--mail"
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(notify, "SENDMAIL_DIRS", (str(tmp_path),))
    with pytest.raises(ConfigError, match="no sendmail on PATH or in") as e:
        targets(Options(mail=["me@example.org"]))
    assert e.value.flag == "--mail"


def test_jobmon_tells_every_target_and_the_store_keeps_each_delivery(
        tmp_path: Path, receiver: Receiver) -> None:
    ldir = tmp_path / "camp"
    failing_tree(ldir / "init")
    spool = tmp_path / "spool"
    sendmail_stand_in(tmp_path / "bin", spool)
    hook = recording_hook(tmp_path)
    (ldir / "jobauto.yaml").write_text(f"notify: [{hook}, 'json://127.0.0.1:{receiver.port}/yaml']\n")
    p = run_cli("jobmon", f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local",
                "--interval=0.2", "--datedir=r", "--mail=me@example.org",
                timeout=120, env={"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"})
    assert p.returncode == 1, p.stdout + p.stderr
    assert [c[0] for c in hook_calls(tmp_path / "hook.log")] == ["== failed r 1 args: ",
                                                                  "== stuck r 3 args: "]
    assert len(receiver.posts) == 2 and len(list(spool.glob("*.eml"))) == 2
    assert "jobmon: notify: sent failed (1 job) to mail to me@example.org" in p.stdout
    store = Store(ldir / "r/.jobauto/state.db", readonly=True)
    said = [(kind, detail) for _, kind, detail in store.events("") if kind == "notify"]
    store.close()
    assert len(said) == 6 and ("notify", "notify: sent stuck to command hook") in said


def test_a_stopped_monitor_is_told_on_a_signal(tmp_path: Path) -> None:
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "slow/qsub.0", body="sleep 20")
    hook = recording_hook(tmp_path)
    proc = start_jobmon([f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local",
                         "--interval=0.2", "--datedir=r", f"--notify={hook}"], tmp_path / "out")
    try:
        for _ in range(300):
            if (ldir / "r/quelist").exists() and "jobid=" in (ldir / "r/quelist").read_text():
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    calls = hook_calls(tmp_path / "hook.log")
    assert [c[0] for c in calls] == ["== stopped r 0 args: "]
    assert calls[0][2]["title"] == "jobauto r: monitor stopped: stopped by signal 15"
    assert json.loads(json.dumps(calls[0][2]))["exit_code"] == 128 + signal.SIGTERM
    assert "jobmon: notify: sent stopped to command hook" in (tmp_path / "out").read_text()


def test_a_monitor_stopped_by_a_refused_write_is_told(tmp_path: Path) -> None:
    """(The job makes the run's .jobauto/ immutable, as in run/test_cycle_faults.py: the next
    commit is refused, jobmon stops with exit 2; the store cannot keep that delivery, the log
    says so.)"""
    if os.geteuid() != 0:
        pytest.skip("chattr +i needs root")
    ldir = tmp_path / "camp"
    state = ldir / "r" / ".jobauto"
    make_job(ldir / "init", "ro/qsub.0", body=f"chattr +i {state}")
    hook = recording_hook(tmp_path)
    try:
        p = jobmon(f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local",
                   "--interval=0.1", "--datedir=r", f"--notify={hook}", timeout=120)
    finally:
        subprocess.run(["chattr", "-i", str(state)], check=False)
    assert p.returncode == 2 and "permission denied" in p.stderr, p.stdout + p.stderr
    calls = hook_calls(tmp_path / "hook.log")
    assert [c[0] for c in calls] == ["== stopped r 0 args: "]
    assert calls[0][2]["exit_code"] == 2
    assert f"{state}: permission denied; make it writable" in str(calls[0][2]["title"])
    assert "jobmon: notify: sent stopped to command hook" in p.stdout
    assert "jobmon: notify: not recorded in the run's store" in p.stdout
