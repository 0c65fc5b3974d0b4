"""The SSH transport: one persistent paramiko connection, rsync for files (rsync.py).

Honours ~/.ssh/config (or an -F style path): Host aliases, HostName, Port, User, IdentityFile,
ProxyJump, UserKnownHostsFile, ServerAliveInterval, ConnectTimeout. Host keys are always
verified against known_hosts; an unknown or changed key is an error that says how to proceed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import select
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from jobauto.cluster.transport.base import run_many_via
from jobauto.cluster.transport.rsync import RsyncFiles
from jobauto.core.errors import HostKeyError, TransportError
from jobauto.core.model import Command, CommandResult
from jobauto.core.spent import Spent

DEFAULT_CONFIG = Path("~/.ssh/config").expanduser()
DEFAULT_KNOWN = ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"]
GLOBAL_KNOWN = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@dataclass
class HostSettings:
    """What ssh_config says about one host alias."""

    alias: str
    hostname: str
    port: int = 22
    user: str | None = None
    identity_files: list[str] = field(default_factory=list)
    known_hosts: list[str] = field(default_factory=list)
    proxy_jump: str | None = None
    keepalive_s: int = 30
    connect_timeout_s: float = 20.0
    config_path: Path | None = None


def host_settings(alias: str, *, user: str | None = None, config_path: Path | None = None) -> HostSettings:
    """Resolve a host the way ssh does, from ssh_config."""
    path = config_path or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    cfg: dict[str, object] = {}
    if path is not None:
        if not path.exists():
            raise TransportError(f"ssh config file not found: {path}", transient=False, flag="--ssh-config")
    host_user, _, host = alias.rpartition("@")
    if path is not None:
        cfg = dict(paramiko.SSHConfig.from_path(str(path)).lookup(host))
    hs = HostSettings(alias=alias, hostname=str(cfg.get("hostname", host)), config_path=path)
    if "port" in cfg:
        hs.port = int(str(cfg["port"]))
    hs.user = user or (str(cfg["user"]) if "user" in cfg else None) or host_user or None
    hs.identity_files = [os.path.expanduser(str(p)) for p in cfg.get("identityfile", [])]  # type: ignore[attr-defined]
    known = cfg.get("userknownhostsfile")
    files = str(known).split() if known else DEFAULT_KNOWN
    hs.known_hosts = [os.path.expanduser(f) for f in files]
    if "proxyjump" in cfg and str(cfg["proxyjump"]).lower() != "none":
        hs.proxy_jump = str(cfg["proxyjump"])
    if "serveraliveinterval" in cfg:
        hs.keepalive_s = int(str(cfg["serveraliveinterval"])) or 30
    if "connecttimeout" in cfg:
        hs.connect_timeout_s = float(str(cfg["connecttimeout"]))
    return hs


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    def __init__(self, hs: HostSettings) -> None:
        self.hs = hs

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        port = f"-p {self.hs.port} " if self.hs.port != 22 else ""
        raise HostKeyError(
            f"the host key of {self.hs.alias} ({hostname}, {key.get_name()} {fingerprint(key)}) is not "
            f"in known_hosts ({', '.join(self.hs.known_hosts)}). Check that fingerprint with your "
            f"cluster's documentation, then accept it with: ssh-keyscan {port}{self.hs.hostname} "
            f">> ~/.ssh/known_hosts   (or log in once with ssh {self.hs.alias})")


def _jump_spec(spec: str) -> tuple[str, str | None, int | None]:
    user, _, rest = spec.rpartition("@")
    host, _, port = rest.partition(":")
    return host, user or None, int(port) if port else None


class SSHTransport(RsyncFiles):
    """Run commands over one persistent SSH connection; reconnect when it drops."""

    def __init__(self, alias: str, *, user: str | None = None, config_path: Path | None = None) -> None:
        self.host = alias
        self.settings = host_settings(alias, user=user, config_path=config_path)
        self._clients: list[paramiko.SSHClient] = []
        self.connects = 0
        self.usage = Spent()   # every authentication counts: each hop, each rsync (core/spent.py)
        self._hops = 0         # ProxyJump hosts before the cluster: each rsync logs in to them too

    # -- connection --------------------------------------------------------------------------
    def _connect_one(self, hs: HostSettings, sock: object = None) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        for f in GLOBAL_KNOWN:
            if os.path.exists(f):
                client.load_system_host_keys(f)
        for f in hs.known_hosts:
            if os.path.exists(f):
                client.load_system_host_keys(f)
        client.set_missing_host_key_policy(_RejectUnknown(hs))
        kw: dict[str, object] = dict(hostname=hs.hostname, port=hs.port, username=hs.user,
                                     timeout=hs.connect_timeout_s, banner_timeout=hs.connect_timeout_s,
                                     auth_timeout=hs.connect_timeout_s, sock=sock)
        if hs.identity_files:
            kw["key_filename"] = [f for f in hs.identity_files if os.path.exists(f)] or None
        self.usage.login()
        try:
            client.connect(**kw)  # type: ignore[arg-type]
        except HostKeyError:
            raise
        except paramiko.BadHostKeyException as e:
            raise HostKeyError(
                f"the host key of {hs.alias} ({hs.hostname}) has CHANGED: got {fingerprint(e.key)}, "
                f"known_hosts has {fingerprint(e.expected_key)}. This may be an attack; if the cluster's "
                f"admins changed it, remove the old line with: ssh-keygen -R {hs.hostname}") from None
        except paramiko.AuthenticationException as e:
            raise TransportError(f"cannot log in to {hs.alias} as {hs.user or 'the default user'}: {e}. "
                                 "Check that `ssh " + hs.alias + "` works without a password prompt",
                                 transient=False) from None
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise TransportError(f"cannot reach {hs.alias} ({hs.hostname}:{hs.port}): {e}") from None
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(hs.keepalive_s)
        return client

    def connect(self) -> None:
        """Open the connection (through ProxyJump hosts if configured)."""
        self.close()
        chain: list[HostSettings] = []
        hs: HostSettings | None = self.settings
        while hs is not None and hs.proxy_jump:
            first = hs.proxy_jump.split(",")[0]
            host, user, port = _jump_spec(first)
            jump = host_settings(host, user=user, config_path=self.settings.config_path)
            if port:
                jump.port = port
            chain.insert(0, jump)
            hs = jump if len(chain) < 8 else None
        self._hops = len(chain)
        sock = None
        for jump in chain:
            client = self._connect_one(jump, sock)
            self._clients.append(client)
            sock = self._open_tunnel(client, self._next_after(jump, chain))
        self._clients.append(self._connect_one(self.settings, sock))
        self.connects += 1

    def _next_after(self, jump: HostSettings, chain: list[HostSettings]) -> HostSettings:
        i = chain.index(jump)
        return chain[i + 1] if i + 1 < len(chain) else self.settings

    @staticmethod
    def _open_tunnel(client: paramiko.SSHClient, target: HostSettings) -> paramiko.Channel:
        t = client.get_transport()
        assert t is not None
        return t.open_channel("direct-tcpip", (target.hostname, target.port), ("127.0.0.1", 0))

    def _transport(self) -> paramiko.Transport:
        if self._clients:
            t = self._clients[-1].get_transport()
            if t is not None and t.is_active():
                return t
        self.connect()
        t = self._clients[-1].get_transport()
        assert t is not None
        return t

    @property
    def username(self) -> str:
        return self._transport().get_username() or ""

    def close(self) -> None:
        for c in reversed(self._clients):
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail any way
                pass
        self._clients = []

    # -- commands ----------------------------------------------------------------------------
    def run(self, argv: list[str], *, cwd: str | None = None, stdin: bytes | None = None,
            timeout: float | None = None) -> CommandResult:
        line = shlex.join(argv)
        if cwd is not None:
            line = f"cd -- {shlex.quote(cwd)} && {line}"
        for attempt in (1, 2):
            try:
                chan = self._transport().open_session()
                break
            except (paramiko.SSHException, OSError, EOFError) as e:
                # a half-dead connection: drop it and try once with a fresh one
                self.close()
                if attempt == 2:
                    raise TransportError(f"connection to {self.host} lost: {e}") from None
        out, err = bytearray(), bytearray()
        try:
            chan.exec_command(line)
            if stdin:
                chan.sendall(self._outgoing(stdin))
            chan.shutdown_write()
            deadline = time.monotonic() + timeout if timeout else None
            while True:
                if chan.recv_ready():
                    out += chan.recv(1 << 16)
                    self._incoming(out)
                    continue
                if chan.recv_stderr_ready():
                    err += chan.recv_stderr(1 << 16)
                    continue
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    if chan.eof_received:
                        break
                if chan.closed and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TransportError(f"{argv[0]} on {self.host} did not finish within {timeout} s")
                if not self._transport_alive():
                    raise TransportError(f"connection to {self.host} lost")
                select.select([chan], [], [], 0.5)
            rc = chan.recv_exit_status()
        except TransportError as e:
            self.close()
            e.stdout = bytes(out)  # type: ignore[attr-defined]
            raise
        except (TimeoutError, paramiko.SSHException, OSError, EOFError) as e:
            self.close()
            te = TransportError(f"connection to {self.host} lost: {e}")
            te.stdout = bytes(out)  # type: ignore[attr-defined]
            raise te from None
        finally:
            chan.close()
        if rc == -1:
            self.close()
            te = TransportError(f"connection to {self.host} lost before {argv[0]} reported its exit code")
            te.stdout = bytes(out)  # type: ignore[attr-defined]
            raise te
        return CommandResult(tuple(argv), rc, bytes(out), err.decode("utf-8", "replace"))

    # Seams for fault injection (tests/faults.py cuts the real connection here); no-ops.
    def _outgoing(self, data: bytes) -> bytes:
        return data

    def _incoming(self, out: bytearray) -> None:
        pass

    def _transport_alive(self) -> bool:
        t = self._clients[-1].get_transport() if self._clients else None
        return bool(t and t.is_active())

    def run_many(self, commands: list[Command], *, timeout: float | None = None) -> list[CommandResult]:
        return run_many_via(self.run, commands, timeout)

    # -- files -------------------------------------------------------------------------------
    def rsync_logins(self) -> int:
        """Each rsync's own ssh logs in to the cluster and to every ProxyJump host before it."""
        return 1 + self._hops

    def ssh_argv(self) -> list[str]:
        """The ssh command rsync uses: same config, same user, never a prompt or a new key."""
        argv = ["ssh"]
        if self.settings.config_path is not None:
            argv += ["-F", str(self.settings.config_path)]
        if self.settings.user:
            argv += ["-l", self.settings.user]
        return argv + ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
