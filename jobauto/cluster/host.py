"""The one place that joins a scheduler adapter to a host, used by jobmon and by arrays of workers.

`open_host(opts)` connects (the user's OpenSSH master, paramiko, or this machine without --remote), finds the scheduler
(--scheduler=auto asks the host) and returns a `Host`: the transport plus the adapter, with the
user's submit options and --scheduler-bin applied to every scheduler command. Adapters stay pure
(argv in, parsed answers out); only the transport executes.
"""

from __future__ import annotations

from jobauto.cluster.schedulers import SchedulerAdapter, adapter_for, detect_argv, parse_detect
from jobauto.cluster.transport.base import Transport
from jobauto.core.config import Options
from jobauto.core.errors import ConfigError, SchedulerError, TransportError
from jobauto.core.model import Command, CommandResult, SubmitResult

# Run a scheduler command with extra directories in front of PATH (--scheduler-bin): on many
# clusters qsub/sbatch are only on the PATH of interactive logins.
WITH_PATH = 'PATH="$1:$PATH"; export PATH; shift; exec "$@"'


# Scheduler calls per command where an adapter's shell runs the scheduler more than once, so
# that the count (and the cap) is what the scheduler sees: Grid Engine asks qacct once per job and
# reads each job's qstat -j before one qdel (schedulers/sge.py ACCT, CANCEL); PBS lists the queue
# with qstat, then qstat -f, and on Slurm's Torque wrappers asks squeue for its array tasks too
# (schedulers/pbs.py QUEUE; counted everywhere, on the safe side). A fallback taken only when the
# first answer fails (Slurm's scontrol without accounting, PBS's second qstat) is not counted.
CALLS = {("sge", "acct"): lambda n: n, ("sge", "cancel"): lambda n: n + 1,
         ("pbs", "queue"): lambda n: 3}


def with_path(argv: list[str], bin_dirs: list[str]) -> list[str]:
    if not bin_dirs:
        return argv
    return ["sh", "-c", WITH_PATH, "jobauto-path", ":".join(bin_dirs), *argv]


def transport_kind(opts: Options) -> str:
    """How --remote is reached: "local" (no --remote: this machine), "openssh" (--ssh=openssh,
    or auto when ssh_config gives the host a ControlPath, read with `ssh -G`, which contacts
    nothing), else "paramiko". The one decision: open_transport and `jobauto plan` (its
    forecast of logins) both ask here."""
    if opts.remote is None:
        return "local"
    if opts.ssh != "auto":
        return opts.ssh
    from jobauto.cluster.transport import openssh
    return ("openssh" if openssh.wants_openssh(opts.remote, user=opts.user,
                                               config_path=opts.ssh_config) else "paramiko")


def open_transport(opts: Options) -> Transport:
    """Connect to --remote over SSH, or use this machine when there is none. --ssh=openssh (or
    auto, when ssh_config gives the host a ControlPath) rides the user's OpenSSH master;
    paramiko opens a connection of its own (transport_kind)."""
    kind = transport_kind(opts)
    if opts.remote is None:
        from jobauto.cluster.transport.local import LocalTransport
        return LocalTransport()
    from jobauto.cluster.transport import openssh
    from jobauto.cluster.transport.ssh import SSHTransport
    t: openssh.OpenSSHTransport | SSHTransport
    try:
        if kind == "openssh":
            t = openssh.OpenSSHTransport(opts.remote, user=opts.user, config_path=opts.ssh_config)
        else:
            t = SSHTransport(opts.remote, user=opts.user, config_path=opts.ssh_config)
        t.connect()
    except TransportError as e:
        e.flag = e.flag or "--remote"
        raise
    return t


def choose_scheduler(opts: Options, transport: Transport) -> str:
    """The scheduler's name: as given, or found on the host (local when this machine has none)."""
    if opts.scheduler != "auto":
        adapter_for(opts.scheduler)  # validates the name
        return opts.scheduler
    transport.usage.sched_commands += 1   # one shell asking which scheduler answers
    found = parse_detect(transport.run(with_path(detect_argv(), opts.scheduler_bin)))
    if found is None:
        if opts.remote is None:
            return "local"
        raise ConfigError(f"no batch scheduler (qsub, sbatch) found on {opts.remote}; pass "
                          "--scheduler=local to run jobs there without one", flag="--scheduler")
    return found


class Host:
    """A cluster reached through a transport, with the scheduler adapter that runs there."""

    def __init__(self, transport: Transport, adapter: SchedulerAdapter, *, user: str | None = None,
                 qsub_args: list[str] | None = None, scheduler_bin: list[str] | None = None) -> None:
        self.transport = transport
        self.adapter = adapter
        self.user = user
        self.qsub_args = qsub_args or []
        self.scheduler_bin = scheduler_bin or []

    @property
    def name(self) -> str:
        return self.transport.host

    def sched(self, argv: list[str], kind: str = "", ids: int = 0) -> list[str]:
        """A scheduler command as it must run on the host (--scheduler-bin in front of PATH).
        Every scheduler command is built here, so each is counted here, as it is built to be
        sent, in the scheduler calls it makes (CALLS; core/spent.py: a batch lost before it ran
        still counts: the cap errs on the safe side)."""
        self.transport.usage.sched_commands += self.calls(kind, ids)
        return with_path(argv, self.scheduler_bin)

    def calls(self, kind: str, ids: int = 0) -> int:
        """The scheduler calls one command of KIND (queue, acct, cancel, submit) about IDS jobs
        makes (CALLS)."""
        calls = CALLS.get((self.adapter.name, kind))
        return calls(ids) if calls else 1

    def submit_argv(self, script: str, token: str, extra: list[str],
                    wrapper: str | None = None) -> list[str]:
        return self.sched(self.adapter.submit_argv(script, token, self.qsub_args + extra, wrapper))

    def queue_command(self) -> Command:
        return Command.of(self.sched(self.adapter.queue_argv(self.user), "queue"))

    def acct_command(self, ids: list[str]) -> Command | None:
        argv = self.adapter.acct_argv(ids) if ids else None
        return None if argv is None else Command.of(self.sched(argv, "acct", len(ids)))

    def cancel(self, ids: list[str]) -> CommandResult:
        """Remove jobs from the queue; the output keeps what the scheduler said about them."""
        argv = self.sched(self.adapter.cancel_argv(ids), "cancel", len(ids))
        return self.transport.run_many([Command.of(argv)])[0]

    def submit_result(self, token: str, res: CommandResult) -> SubmitResult:
        """What a submission's answer says: an id, a refusal (transient or not), or unknown."""
        try:
            return SubmitResult(token, self.adapter.parse_submit(res))
        except SchedulerError as e:
            if res.rc == 0:  # accepted, but the id is unreadable: the outcome is unknown
                return SubmitResult(token, None, None, True)
            return SubmitResult(token, None, e.message, e.transient)

    def close(self) -> None:
        self.transport.close()


def open_host(opts: Options, transport: Transport | None = None) -> Host:
    """Connect (unless a transport is given) and find the scheduler; close again on failure."""
    t = open_transport(opts) if transport is None else transport
    try:
        sched = choose_scheduler(opts, t)
        user = getattr(t, "username", None) if opts.remote else None
        return Host(t, adapter_for(sched), user=user, qsub_args=list(opts.qsub_args),
                    scheduler_bin=list(opts.scheduler_bin))
    except BaseException:
        if transport is None:
            t.close()
        raise
