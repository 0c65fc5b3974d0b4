"""The OpenSSH transport: every command and every rsync through the user's master connection.

On a cluster with two-factor logins the user opens one OpenSSH master (`ssh -fNM HOST`, or
ControlMaster/ControlPath/ControlPersist in ssh_config) and jobauto rides it: each round trip is
`ssh -S CONTROLPATH -o ControlMaster=no HOST LINE`, each transfer `rsync -e 'ssh -S ...'`, so the
one login the user made serves the whole campaign. jobauto never logs in by itself here:
`ProxyCommand=false` makes an ssh that finds no master fail at once instead of opening a
connection of its own, and BatchMode=yes means it never prompts. When the master is gone, every
command fails with a TransportError that says so and how to start it again (transient: the
monitor retries each cycle). Host keys were verified by the master when it logged in
(StrictHostKeyChecking stays on for anything else).

What ssh_config says is asked of ssh itself (`ssh -G`), so Include, Match, tokens and the user's
defaults mean what they mean to ssh.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

from jobauto.cluster.transport.base import run_many_via
from jobauto.cluster.transport.rsync import RsyncFiles
from jobauto.core.errors import TransportError
from jobauto.core.model import Command, CommandResult
from jobauto.core.spent import Spent

OUT_MAX = 256 << 20     # bytes of one answer; the cycle's answers are bounded far below this
ERR_MAX = 64 << 10      # the tail of ssh's and the command's stderr that is kept
CHECK_TIMEOUT_S = 20.0  # `ssh -O check` and `ssh -G` only talk to this machine
# ssh's own failures (the command's exit code is 255 too rarely to be told apart otherwise)
SSH_FAILURE = ("mux_client", "control socket", "controlsocket", "kex_exchange_identification",
               "connection closed by", "ssh:", "session open refused")


def base_argv(user: str | None, config_path: Path | None) -> list[str]:
    argv = ["ssh"]
    if config_path is not None:
        argv += ["-F", str(config_path)]
    if user:
        argv += ["-l", user]
    return argv


def ssh_settings(alias: str, *, user: str | None = None,
                 config_path: Path | None = None) -> dict[str, str]:
    """What ssh makes of ssh_config for ALIAS (`ssh -G`): lowercase keys, first value each."""
    if config_path is not None and not config_path.exists():
        raise TransportError(f"ssh config file not found: {config_path}", transient=False,
                             flag="--ssh-config")
    try:
        p = subprocess.run([*base_argv(user, config_path), "-G", alias], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=CHECK_TIMEOUT_S)
    except FileNotFoundError:
        raise TransportError("OpenSSH's ssh is not installed on this machine (apt-get install "
                             "openssh-client), or pass --ssh=paramiko", transient=False) from None
    except subprocess.TimeoutExpired:
        raise TransportError(f"ssh -G {alias} did not answer", transient=False) from None
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip()[-300:]
        raise TransportError(f"ssh cannot read its configuration for {alias}: {err}",
                             transient=False, flag="--ssh-config")
    out: dict[str, str] = {}
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key.lower(), value.strip())
    return out


def control_path(settings: dict[str, str]) -> str | None:
    """The master's socket ssh_config names for the host, or None."""
    path = settings.get("controlpath", "none")
    return None if path.lower() in ("", "none") else path


def wants_openssh(alias: str, *, user: str | None = None, config_path: Path | None = None) -> bool:
    """--ssh=auto: the OpenSSH transport when ssh_config gives the host a ControlPath (the
    place a master connection listens; ControlMaster alone names no socket to ride)."""
    try:
        return control_path(ssh_settings(alias, user=user, config_path=config_path)) is not None
    except TransportError as e:
        if e.flag == "--ssh-config":   # a config ssh cannot read is the user's to fix
            raise
        return False                   # no OpenSSH client: paramiko it is


def _drain(stream: IO[bytes], into: bytearray, limit: int, keep_tail: bool,
           over: threading.Event) -> None:
    while chunk := stream.read1(1 << 16):  # type: ignore[attr-defined]
        into += chunk
        if len(into) > limit:
            if keep_tail:
                del into[:len(into) - limit]
            else:
                over.set()
                return


class OpenSSHTransport(RsyncFiles):
    """Run commands and rsync through an existing OpenSSH master connection; never log in."""

    def __init__(self, alias: str, *, user: str | None = None, config_path: Path | None = None) -> None:
        self.host = alias
        self.user = user
        self.config_path = config_path
        self.settings = ssh_settings(alias, user=user, config_path=config_path)
        path = control_path(self.settings)
        if path is None:
            where = config_path or "~/.ssh/config"
            raise TransportError(
                f"openssh needs a master connection, and {where} sets no ControlPath for "
                f"{alias}: add to its Host entry `ControlMaster auto`, `ControlPath "
                f"~/.ssh/cm-%C` and `ControlPersist yes`, then log in once with: "
                f"{self.restart_hint()}", transient=False, flag="--ssh")
        self.control_path = path
        self.connects = 0   # logins this transport made: none, ever (the master's is the user's)
        self.usage = Spent()   # commands and bytes; no login is ever counted (rsync_logins)

    def rsync_logins(self) -> int:
        """rsync rides the master: no login of its own."""
        return 0

    # -- the master ----------------------------------------------------------------------------
    def restart_hint(self) -> str:
        return shlex.join([*base_argv(self.user, self.config_path), "-fNM", self.host])

    def master_alive(self) -> bool:
        """`ssh -O check`: whether the master answers on its socket (local, no network)."""
        try:
            p = subprocess.run([*self.ssh_argv(), "-O", "check", self.host], capture_output=True,
                               stdin=subprocess.DEVNULL, timeout=CHECK_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return p.returncode == 0

    def gone(self, what: str = "is gone") -> TransportError:
        stale = Path(self.control_path).exists()
        extra = (": if ssh says it already exists, it is left from the old master; remove it "
                 "first") if stale else ""
        return TransportError(
            f"the OpenSSH master connection to {self.host} {what}; jobauto does not log in by "
            f"itself: start it again with: {self.restart_hint()} (its socket: "
            f"{self.control_path}{extra})")

    def connect(self) -> None:
        """Check that the master is there; an error saying how to start it otherwise."""
        if not self.master_alive():
            e = self.gone("is not running")
            e.transient = False
            raise e

    @property
    def username(self) -> str:
        return self.settings.get("user", "")

    def close(self) -> None:
        pass   # the master is the user's; it stays

    # -- commands ------------------------------------------------------------------------------
    def ssh_argv(self) -> list[str]:
        """ssh through the master only: never a login of its own, a prompt or a new host key."""
        return [*base_argv(self.user, self.config_path), "-S", self.control_path,
                "-o", "ControlMaster=no", "-o", "ProxyCommand=false", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes"]

    def run(self, argv: list[str], *, cwd: str | None = None, stdin: bytes | None = None,
            timeout: float | None = None) -> CommandResult:
        line = shlex.join(argv)
        if cwd is not None:
            line = f"cd -- {shlex.quote(cwd)} && {line}"
        out, err, over = bytearray(), bytearray(), threading.Event()
        try:
            # its own session: a Ctrl-C meant for jobmon does not cut a batch half-way
            proc = subprocess.Popen([*self.ssh_argv(), "-T", self.host, line],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            raise TransportError(f"cannot run ssh: {e}", transient=False) from None
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        readers = [threading.Thread(target=_drain, args=(proc.stdout, out, OUT_MAX, False, over),
                                    daemon=True),
                   threading.Thread(target=_drain, args=(proc.stderr, err, ERR_MAX, True, over),
                                    daemon=True)]
        for t in readers:
            t.start()
        try:
            if stdin:
                proc.stdin.write(stdin)
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass   # ssh ended early: its exit code says why
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:   # until ssh ends (its stdout closes first), is cut off or sends too much
            left = None if deadline is None else deadline - time.monotonic()
            readers[0].join(0.2 if left is None else max(0.0, min(0.2, left)))
            done = not readers[0].is_alive() and not over.is_set()
            if done:
                try:
                    proc.wait(5 if left is None else max(0.1, left))
                    break
                except subprocess.TimeoutExpired:
                    pass
            if over.is_set() or (deadline is not None and time.monotonic() > deadline):
                proc.kill()
                proc.wait()
                for t in readers:
                    t.join(5)
                why = (f"sent more than {OUT_MAX} bytes" if over.is_set()
                       else f"did not finish within {timeout} s")
                raise self._cut(f"{argv[0]} on {self.host} {why}", out, transient=not over.is_set())
        readers[1].join()
        rc = proc.returncode
        text = err.decode("utf-8", "replace")
        if rc == 255:
            if not self.master_alive():
                gone = self.gone()
                gone.stdout = bytes(out)  # type: ignore[attr-defined]
                raise gone
            if any(s in text.lower() for s in SSH_FAILURE):
                raise self._cut(f"ssh to {self.host} through the master failed: "
                                f"{text.strip()[-300:]}", out)
        return CommandResult(tuple(argv), rc, bytes(out), text)

    @staticmethod
    def _cut(message: str, out: bytearray, transient: bool = True) -> TransportError:
        e = TransportError(message, transient=transient)
        e.stdout = bytes(out)  # type: ignore[attr-defined]
        return e

    def run_many(self, commands: list[Command], *, timeout: float | None = None) -> list[CommandResult]:
        return run_many_via(self.run, commands, timeout)

    # -- files ---------------------------------------------------------------------------------
    def _rsync(self, args: list[str], names: list[str] | None = None, *, pull: bool = False) -> str:
        try:
            return super()._rsync(args, names, pull=pull)
        except TransportError:
            if not self.master_alive():
                raise self.gone() from None
            raise
