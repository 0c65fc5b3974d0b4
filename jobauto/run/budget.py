"""The run's caps (--max-scheduler-commands-per-minute, --max-logins-per-hour) and its counters.

The caps delay work, never drop it. Scheduler commands are counted where they are built
(cluster/host.py Host.sched) and logins where they happen (the transport's `usage.login`); the
monitor charges what each step spent to the tick's `now`, so the windows run on the monitor's
clock (tests step it). The per-minute cap is shared in two halves: queue listings and accounting
(the polls) may use one, submissions and cancels the other, so that neither starves the other;
what finds its half spent waits for the next window, and the cycle's note says so. A login past the hourly cap is refused before it
is made: the cycle that needed it says so and tries again later.

A command counts in the window for WINDOW_S + SLACK_S after the start of the tick that sent it:
the slack covers the seconds between a tick's start and its last command, so that the cap also
holds for the times at which the scheduler saw the commands.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from jobauto.core.spent import Spent
from jobauto.run.quelist import fmt_time

WINDOW_S = 60.0
SLACK_S = 10.0
LOGIN_WINDOW_S = 3600.0


class Budget:
    """The windows of one monitor and the run's total spent (BASE: what earlier monitors of the
    run spent, from the store; USAGE: this connection's live counters)."""

    def __init__(self, usage: Spent, base: Spent, per_minute: int | None,
                 logins_per_hour: int | None) -> None:
        self.usage = usage
        self.base = base
        self.per_minute = per_minute
        self.logins_per_hour = logins_per_hour
        # The first monitor on a connection counts it from its start (its login, the scheduler's
        # detection: charged at its first tick); another monitor on the same connection (one
        # made again in the same process) from where the last one stopped.
        start = Spent.of(usage.counters()) if usage.claimed else Spent()
        usage.claimed = True
        self.start = start
        self.seen_cmds = start.sched_commands
        self.seen_logins = start.logins
        self.cmds: deque[tuple[float, int, bool]] = deque()   # (tick time, commands, polls?)
        self.logins: deque[tuple[float, int]] = deque()
        self.minutes: dict[int, int] = {}      # this monitor's commands by minute
        self.now = 0.0
        self.noted: dict[str, float] = {}       # kind of note -> not again before
        # a resumed run: the last minutes of the monitor before count, at the end of their minute
        for m, n in base.minutes.items():
            self.cmds.append((m * 60.0 + 59.999, n, False))

    # -- charging -------------------------------------------------------------------------------
    def charge(self, now: float, polls: bool = False) -> int:
        """Charge to NOW what was spent since the last charge; returns the commands charged."""
        n = self.usage.sched_commands - self.seen_cmds
        self.seen_cmds = self.usage.sched_commands
        if n:
            self.cmds.append((now, n, polls))
            m = int(now // 60)
            self.minutes[m] = self.minutes.get(m, 0) + n
        k = self.usage.logins - self.seen_logins
        self.seen_logins = self.usage.logins
        if k:
            self.logins.append((now, k))
        return n

    def total(self) -> Spent:
        """What the run spent, all monitors: the store's meta at each commit."""
        live = Spent.of({k: v - getattr(self.start, k) for k, v in self.usage.counters().items()})
        live.minutes = dict(self.minutes)
        return self.base.plus(live)

    # -- the scheduler-command cap ----------------------------------------------------------------
    def _used(self, now: float) -> tuple[int, int]:
        while self.cmds and self.cmds[0][0] <= now - WINDOW_S - SLACK_S:
            self.cmds.popleft()
        return (sum(n for _, n, _ in self.cmds), sum(n for _, n, p in self.cmds if p))

    def poll_share(self) -> int:
        return max(1, (self.per_minute or 0) // 2)

    def polls_allowed(self, now: float, wanted: int) -> int:
        """How many of WANTED poll commands (queue listing, accounting) may go now."""
        if self.per_minute is None:
            return wanted
        used, polls = self._used(now)
        return max(0, min(wanted, self.poll_share() - polls, self.per_minute - used))

    def room(self, now: float) -> int | None:
        """Commands submissions and cancels may spend now: the other half (None: no cap)."""
        if self.per_minute is None:
            return None
        used, polls = self._used(now)
        return max(0, min(self.per_minute - used, self.per_minute - self.poll_share() - (used - polls)))

    def next_window(self, now: float) -> float:
        """When the oldest command in the window leaves it."""
        self._used(now)
        return (self.cmds[0][0] if self.cmds else now) + WINDOW_S + SLACK_S

    def waiting(self, now: float, what: str, kind: str) -> str | None:
        """The cycle's note when WHAT waits for the scheduler-command budget: once a window for
        each KIND (polls, submissions), not at every cycle of a short --interval."""
        if now < self.noted.get(kind, 0.0):
            return None
        self.noted[kind] = self.next_window(now)
        return (f"{what} wait for the next window of the scheduler-command budget "
                f"(--max-scheduler-commands-per-minute={self.per_minute}; room again at "
                f"{fmt_time(self.next_window(now))})")

    # -- the login cap ------------------------------------------------------------------------------
    def login_refusal(self, n: int) -> str | None:
        """Why N more logins must wait (None: they may go). Counts the logins of the tick so
        far, not charged yet."""
        if self.logins_per_hour is None:
            return None
        now = self.now
        while self.logins and self.logins[0][0] <= now - LOGIN_WINDOW_S:
            self.logins.popleft()
        used = sum(k for _, k in self.logins) + self.usage.logins - self.seen_logins
        if used + n <= self.logins_per_hour:
            return None
        again = (self.logins[0][0] if self.logins else now) + LOGIN_WINDOW_S
        return (f"waiting for the login budget: {used} SSH login(s) in the last hour "
                f"(--max-logins-per-hour={self.logins_per_hour}); the next at {fmt_time(again)}")

    def gate(self, now: float) -> Callable[[int], str | None]:
        """The login gate for a tick at NOW (set on the transport's usage while it runs)."""
        self.now = now
        return self.login_refusal
