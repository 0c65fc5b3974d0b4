"""Tell the user about a run: jobs that failed, a run that cannot finish or is done, a monitor
that stopped. --notify TARGET is a command (argv from shlex, no shell; the event as JOBAUTO_*
variables and one JSON object on stdin) or an apprise URL (scheme://...); --mail ADDR goes
through the local sendmail. A cycle's events are batched (one message per kind); a target that
fails or hangs is one line in the log and a `warning` event, never the end of the monitor.
docs/notifications.md is the user's page; docs/decisions.md "Notifications" says why."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jobauto.core.config import Options
from jobauto.core.errors import ConfigError
from jobauto.core.model import Job, JobState, Verdict
from jobauto.core.states import count_line

NAMED = 5            # jobs named in a message's title and body; the JSON lists up to JSON_JOBS
JSON_JOBS = 1000
OUTPUT_HEAD = 2000   # bytes of a hook's output kept for the log
SHOWN = 300          # characters of a failure's reason in the log
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
ADDRESS = re.compile(r"[^@\s,;<>()\"'\\]+@[^@\s,;<>()\"'\\]+")
SENDMAIL_DIRS = ("/usr/sbin", "/usr/lib")
# a verdict that is the user's own doing is no failure to tell them about
NOT_A_FAILURE = {Verdict.CANCELLED.value}


@dataclass
class Target:
    """Where an event goes: kind is "command", "url" or "mail"; shown is safe to log."""

    kind: str
    text: str
    shown: str
    argv: list[str] = field(default_factory=list)


@dataclass
class Event:
    """One batched message: kind is failed, stuck, finished or stopped."""

    kind: str
    title: str
    body: str
    data: dict[str, Any]


def targets(opts: Options) -> list[Target]:
    """Check every --notify and --mail target; raise a ConfigError naming the flag on the first
    that cannot work (before anything is started)."""
    out = [_target(t) for t in opts.notify]
    if opts.mail:
        sendmail = find_sendmail()
        for addr in opts.mail:
            if not ADDRESS.fullmatch(addr) or addr.startswith("-"):
                raise ConfigError(f"{addr!r} is not a mail address (user@host)", flag="--mail")
            out.append(Target("mail", addr, f"mail to {addr}", [sendmail, "-t", "-i"]))
    return out


def _target(text: str) -> Target:
    if URL.match(text):
        import apprise  # heavy import, only when a URL is given

        plugin = apprise.Apprise.instantiate(text)
        if plugin is None:
            raise ConfigError(f"{redact_text(text)!r} is not a notification URL apprise can use "
                              "(see docs/notifications.md)", flag="--notify")
        return Target("url", text, shown_url(plugin.url(privacy=True)))
    try:
        argv = shlex.split(text)
    except ValueError as e:
        raise ConfigError(f"cannot split the command: {e}", flag="--notify") from None
    if not argv:
        raise ConfigError("is empty: give a command or a notification URL", flag="--notify")
    program = argv[0]
    found = (program if "/" in program and os.access(program, os.X_OK) and Path(program).is_file()
             else None if "/" in program else shutil.which(program))
    if found is None:
        raise ConfigError(f"command {program!r} not found or not executable", flag="--notify")
    return Target("command", text, f"command {Path(program).name}", [found, *argv[1:]])


def find_sendmail() -> str:
    """The local sendmail: on PATH, else in /usr/sbin or /usr/lib."""
    found = shutil.which("sendmail") or shutil.which("sendmail", path=os.pathsep.join(SENDMAIL_DIRS))
    if found is None:
        raise ConfigError("no sendmail on PATH or in /usr/sbin, /usr/lib: install a mail "
                          "transfer agent (exim4, postfix, msmtp-mta) or use --notify URL",
                          flag="--mail")
    return found


def shown_url(private: str) -> str:
    """A URL as the log shows it: apprise's privacy form (passwords and tokens masked), without
    its path and options, where webhook tokens live."""
    parts = urlsplit(private)
    return f"{parts.scheme}://{parts.netloc}" + ("/..." if parts.path.strip("/") else "")


def redact_text(text: str) -> str:
    """TEXT with every URL in it cut to its scheme and host (no user, password, path)."""
    def cut(m: re.Match[str]) -> str:
        parts = urlsplit(m.group(0))
        return f"{parts.scheme}://{parts.hostname or ''}/..."
    return re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://\S*", cut, text)


class Notifier:
    """Batch a run's events and deliver each to every target, logging the outcome."""

    def __init__(self, targets: list[Target], run_dir: Path, jobs: Mapping[str, Job],
                 log: Callable[[str], None], record: Callable[[float, str, str], None],
                 timeout_s: float = 30.0) -> None:
        self.targets = targets
        self.run_dir = run_dir
        self.jobs = jobs
        self.log = log
        self.record = record
        self.timeout_s = timeout_s

    # -- the events ----------------------------------------------------------------------------
    def failed(self, names: list[str], counts: dict[str, int], now: float) -> None:
        """One message for the jobs that failed this cycle (cancelled ones are not failures)."""
        jobs = [self.jobs[n] for n in names if n in self.jobs]
        jobs = [j for j in jobs if j.state == JobState.ERROR and j.verdict not in NOT_A_FAILURE]
        if not jobs:
            return
        first = ", ".join(j.name for j in jobs[:NAMED]) + (f" and {len(jobs) - NAMED} more"
                                                            if len(jobs) > NAMED else "")
        title = (f"jobauto {self.run_dir.name}: {len(jobs)} job{'s' if len(jobs) > 1 else ''} "
                 f"failed: {first}")
        lines = [f"{j.name}: {j.reason or j.verdict or 'failed'}" for j in jobs[:NAMED]]
        if len(jobs) > NAMED:
            lines.append(f"... and {len(jobs) - NAMED} more (see {self.run_dir / 'quelist'})")
        listed = [{"name": j.name, "verdict": j.verdict or "", "exit_code": j.exit_code,
                   "reason": j.reason} for j in jobs[:JSON_JOBS]]
        self.deliver(self._event("failed", title, lines, counts, now, len(jobs), listed), now)

    def ended(self, exit_code: int, summary: list[str], counts: dict[str, int], now: float,
              note: str = "") -> None:
        """The run's end: finished (all done) or stuck (it cannot finish, and why)."""
        if exit_code == 0:
            kind, title = "finished", f"jobauto {self.run_dir.name}: finished, all jobs done"
            count = counts.get("done", 0)
            lines: list[str] = []
        else:
            count = sum(v for k, v in counts.items() if k in ("error", "blocked", "waiting"))
            kind = "stuck"
            title = f"jobauto {self.run_dir.name}: cannot finish, {count} jobs will not complete"
            lines = ["these jobs will not complete:"] + summary[:NAMED * 4]
            if len(summary) > NAMED * 4:
                lines.append(f"... (see {self.run_dir / 'quelist'})")
        if note:
            lines.append(note)
        event = self._event(kind, title, lines, counts, now, count, [], exit_code=exit_code)
        event.data["summary"] = summary
        self.deliver(event, now)

    def stopped(self, why: str, counts: dict[str, int], now: float, exit_code: int) -> None:
        """The monitor stopped before the run's end: a signal, or an error it cannot go past."""
        title = f"jobauto {self.run_dir.name}: monitor stopped: {why}"[:300]
        lines = [why, f"resume with jobmon --ldir={self.run_dir.parent} --datedir={self.run_dir.name}"]
        self.deliver(self._event("stopped", title, lines, counts, now, 0, [], exit_code=exit_code),
                     now)

    def _event(self, kind: str, title: str, lines: list[str], counts: dict[str, int], now: float,
               count: int, jobs: list[dict[str, Any]], exit_code: int | None = None) -> Event:
        body = "\n".join(lines + ["", count_line(counts), f"run: {self.run_dir}"]).strip()
        data: dict[str, Any] = {"event": kind, "run": self.run_dir.name, "run_dir": str(self.run_dir),
                                "time": now, "title": title, "body": body, "count": count,
                                "counts": counts, "jobs": jobs, "exit_code": exit_code}
        return Event(kind, title, body, data)

    # -- delivery ------------------------------------------------------------------------------
    def deliver(self, event: Event, now: float) -> None:
        """Send EVENT to every target; each outcome is a log line and a store event."""
        for target in self.targets:
            try:
                problem = self._send(target, event)
            except Exception as e:  # a target must never stop the monitor
                problem = f"{type(e).__name__}: {e}"
            n = event.data["count"]
            what = f"failed ({n} job{'s' if n != 1 else ''})" if event.kind == "failed" else event.kind
            if problem is None:
                line = f"notify: sent {what} to {target.shown}"
                self.log(f"jobmon: {line}")
                self._record(now, "notify", line)
            else:
                shown = " ".join(redact_text(problem).split())[:SHOWN]
                line = f"notify: could not send {what} to {target.shown}: {shown}"
                self.log(f"jobmon: {line}")
                self._record(now, "warning", line)

    def _record(self, now: float, kind: str, detail: str) -> None:
        try:
            self.record(now, kind, detail)
        except Exception as e:  # a store that cannot take it (the very reason to stop) is logged
            self.log(f"jobmon: notify: not recorded in the run's store: {e}")

    def _send(self, target: Target, event: Event) -> str | None:
        """Deliver to one target; None when it took the event, else what went wrong."""
        if target.kind == "url":
            return self._send_url(target, event)
        if target.kind == "mail":
            return run_bounded(target.argv, mail_message(target.text, event), os.environ.copy(),
                               self.timeout_s)
        env = {**os.environ, **event_env(event)}
        return run_bounded(target.argv, json.dumps(event.data).encode() + b"\n", env, self.timeout_s)

    def _send_url(self, target: Target, event: Event) -> str | None:
        import logging

        import apprise

        outcome: list[str | None] = []

        def send() -> None:
            box = apprise.Apprise()
            box.add(target.text)
            with apprise.LogCapture(level=logging.WARNING) as said:
                ok = box.notify(title=event.title, body=event.body)
            text = said.getvalue() if hasattr(said, "getvalue") else ""
            outcome.append(None if ok else (text.strip().splitlines() or ["apprise says it failed"])[-1]
                           .split(" - ", 2)[-1])
        worker = threading.Thread(target=send, daemon=True, name="jobauto-notify")
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            return f"no answer within {self.timeout_s:g} s (left behind)"
        return outcome[0] if outcome else "apprise stopped without an answer"


def event_env(event: Event) -> dict[str, str]:
    """The JOBAUTO_* variables a command hook gets."""
    d = event.data
    return {"JOBAUTO_EVENT": event.kind, "JOBAUTO_RUN": d["run"], "JOBAUTO_RUN_DIR": d["run_dir"],
            "JOBAUTO_COUNT": str(d["count"]), "JOBAUTO_TITLE": event.title,
            "JOBAUTO_COUNTS": count_line(d["counts"]),
            "JOBAUTO_EXIT": "" if d["exit_code"] is None else str(d["exit_code"]),
            "JOBAUTO_JOBS": "\n".join(j["name"] for j in d["jobs"][:NAMED])}


def mail_message(to: str, event: Event) -> bytes:
    """The message handed to `sendmail -t -i`: To, Subject, the body, as text."""
    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = event.title
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Jobauto-Event"] = event.kind
    msg["X-Jobauto-Run"] = event.data["run"]
    msg.set_content(event.body + "\n")
    return msg.as_bytes()


def run_bounded(argv: list[str], data: bytes, env: dict[str, str], timeout_s: float) -> str | None:
    """Run ARGV without a shell, DATA on its stdin; None when it exits 0 in time, else why not
    (its exit code or the timeout, and the head of its output). Its output beyond OUTPUT_HEAD
    is read and dropped; a command still running at the timeout is killed with its group."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    except OSError as e:
        return f"cannot start {argv[0]}: {e.strerror or e}"
    head = bytearray()

    def read() -> None:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(65536):
            if len(head) < OUTPUT_HEAD:
                head.extend(chunk[:OUTPUT_HEAD - len(head)])

    def write() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except OSError:
            pass  # a command that does not read its stdin is its own business
    threads = [threading.Thread(target=f, daemon=True) for f in (read, write)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout_s
    try:
        rc = proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        rc = None
    for t in threads:
        t.join(max(0.1, min(1.0, deadline - time.monotonic())))
    said = " ".join(head.decode("utf-8", "replace").split())
    if rc is None:
        return f"no answer within {timeout_s:g} s; killed" + (f": {said}" if said else "")
    if rc != 0:
        return f"exit {rc}" + (f": {said}" if said else "")
    return None
