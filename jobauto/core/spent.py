"""What a run spent on the cluster: scheduler commands, SSH logins, bytes moved.

The live tally of one connection is its transport's `usage` (a Spent): the transport counts its
logins (each authentication: a paramiko connect, each rsync, each hop of a ProxyJump) and the
bytes it moved; `cluster/host.py` Host counts every scheduler command it builds from the adapter
(queue listing, accounting, submission, cancel). The monitor adds them to what earlier monitors
of the run spent and keeps the sum in the run store's meta (`spent.*` keys, plain key/value: no
schema change), with the scheduler commands of each recent minute; `jobauto status` and
`jobauto explain` read them back (docs/etiquette.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from jobauto.core.errors import TransportError

PREFIX = "spent."
MINUTES_KEPT = 60      # per-minute scheduler command counts kept in the store (the last hour)
COUNTERS = ("sched_commands", "logins", "bytes_pushed", "bytes_pulled", "bytes_scanned")


@dataclass
class Spent:
    """Counters of what was spent; `gate`, when set, may refuse a login (the --max-logins-per-hour
    cap): it returns why, and the login does not happen (a transient TransportError)."""

    sched_commands: int = 0
    logins: int = 0
    bytes_pushed: int = 0
    bytes_pulled: int = 0
    bytes_scanned: int = 0      # the scan's tar streams (markers, dependency files)
    minutes: dict[int, int] = field(default_factory=dict)   # minute (epoch // 60) -> commands
    gate: Callable[[int], str | None] | None = field(default=None, repr=False, compare=False)
    claimed: bool = field(default=False, repr=False, compare=False)   # a monitor counts it (run/budget.py)

    def login(self, n: int = 1) -> None:
        """Count N logins about to be made; raise (and count nothing) if the gate refuses."""
        why = self.gate(n) if self.gate is not None else None
        if why:
            raise TransportError(why)
        self.logins += n

    def counters(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in COUNTERS}

    @classmethod
    def of(cls, counters: dict[str, int]) -> Spent:
        """Counters (as counters() gives them) without the minutes."""
        out = cls()
        for k in COUNTERS:
            setattr(out, k, counters.get(k, 0))
        return out

    def plus(self, other: Spent) -> Spent:
        out = Spent.of({k: getattr(self, k) + getattr(other, k) for k in COUNTERS})
        out.minutes = dict(self.minutes)
        for m, n in other.minutes.items():
            out.minutes[m] = out.minutes.get(m, 0) + n
        return out

    def to_meta(self) -> dict[str, str]:
        out = {PREFIX + k: str(v) for k, v in self.counters().items()}
        recent = sorted(self.minutes)[-MINUTES_KEPT:]
        out[PREFIX + "minutes"] = json.dumps([[m, self.minutes[m]] for m in recent])
        return out

    @classmethod
    def from_meta(cls, get: Callable[[str], str | None]) -> Spent:
        """Read the counters back; a missing or damaged value counts as 0 (never an error: the
        counters are a report, not the run's state)."""
        out = cls()
        for f in fields(cls):
            if f.name in COUNTERS:
                raw = get(PREFIX + f.name) or "0"
                setattr(out, f.name, int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 20 else 0)
        try:
            pairs = json.loads(get(PREFIX + "minutes") or "[]")
            out.minutes = {int(m): int(n) for m, n in pairs[-MINUTES_KEPT:]}
        except (ValueError, TypeError, OverflowError):
            out.minutes = {}
        return out

    def per_minute(self, now: float, minutes: int = 1) -> int:
        """Scheduler commands in the last MINUTES whole minutes before NOW (the current one
        included)."""
        cur = int(now // 60)
        return sum(n for m, n in self.minutes.items() if cur - minutes < m <= cur)

    def peak_minute(self) -> int:
        return max(self.minutes.values(), default=0)
