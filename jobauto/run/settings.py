"""A run's recorded settings: written when the run is created, changed by a flag given on resume
or by `jobauto set`, read back by `recorded_options` (run/opener.py) on resume.

They are one JSON object in the store's meta table (key `settings`): every field of Options but
those of one invocation and the secrets (core/config.py `recordable`), so a setting added to
Options is recorded with no more code. Each change is an event of the run (job "", kind
`settings`) saying what changed, from what, and how: `jobauto explain RUN` lists them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from jobauto.core.config import TARGET_SETTINGS, recordable, target_shown
from jobauto.core.errors import ConfigError, StateError
from jobauto.store import Store

if TYPE_CHECKING:
    from jobauto.core.config import Options
    from jobauto.run.cycle import Monitor

META = "settings"
EVENT = "settings"
# What the running monitor changes at once; the others (binpath, define, scheduler_bin, the
# ones other parts add) are recorded and take effect when the run is next resumed.
LIVE = ("maxqsub", "ahead", "interval", "lost_after", "retries", "qsub_args", "fetch",
        "max_scheduler_commands_per_minute", "max_logins_per_hour")
# Where the run lives: a run cannot move (its store records rundir; jobmon refuses another one).
FIXED = ("rdir", "remote", "scheduler")


def read(store: Store) -> dict[str, object] | None:
    """The run's recorded settings, or None for a run made before they were recorded."""
    text = store.get_meta(META)
    if text is None:
        return None
    try:
        values = json.loads(text)
    except ValueError:
        values = None
    if not isinstance(values, dict):
        raise StateError(f"the run's recorded settings are damaged (meta {META!r}); resume it "
                         "once with all its flags to record them again", file=str(store.path))
    return values


def shown(value: object, key: str = "") -> str:
    """A setting's value as the user types it; a notification target without what may be a
    secret (a URL cut to scheme and host, a command to its program)."""
    if key in TARGET_SETTINGS and isinstance(value, list):
        value = [target_shown(str(v)) for v in value]
    if isinstance(value, list):
        return ",".join(str(v) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "(none)" if value is None else str(value)


def describe(values: dict[str, object]) -> str:
    """`maxqsub=10 interval=60 ...`: the settings that have a value."""
    return " ".join(f"{k.replace('_', '-')}={shown(v, k)}" for k, v in values.items()
                    if v not in (None, [], {}))


def changes(old: dict[str, object], new: dict[str, object]) -> list[str]:
    """`maxqsub 10 -> 20` for each setting NEW gives another value than OLD."""
    return [f"{k.replace('_', '-')} {shown(old.get(k), k)} -> {shown(v, k)}" for k, v in new.items()
            if old.get(k) != v]


def record(store: Store, opts: Options, now: float, how: str) -> list[str]:
    """Record OPTS as the run's settings (call inside a transaction); returns what changed.
    HOW says where they came from (creation, a resume's flags)."""
    values = recordable(opts)
    old = read(store)
    if old is None:
        store.set_meta(META, json.dumps(values, sort_keys=True))
        store.add_events([(now, "", EVENT, f"recorded at {how}: {describe(values)}")])
        return []
    changed = changes(old, values)
    if changed:
        store.set_meta(META, json.dumps({**old, **values}, sort_keys=True))
        store.add_events([(now, "", EVENT, f"{how}: {'; '.join(changed)}")])
    return changed


def check_set(values: dict[str, object]) -> None:
    """Refuse a change `jobauto set` cannot make."""
    for key in values:
        if key in FIXED:
            raise ConfigError(f"{key.replace('_', '-')} cannot change: it says where the run "
                              "lives (start a new run instead)")


def change(store: Store, values: dict[str, object], now: float, how: str) -> list[str]:
    """Record VALUES as changed settings (in a transaction of its own); returns what changed."""
    with store.transaction():
        old = read(store) or {}
        changed = changes(old, values)
        if changed:
            store.set_meta(META, json.dumps({**old, **values}, sort_keys=True))
            store.add_events([(now, "", EVENT, f"{how}: {'; '.join(changed)}")])
    return changed


def apply_live(mon: Monitor, values: dict[str, object]) -> None:
    """Make the running monitor use VALUES from its next step on (LIVE keys; others wait)."""
    s = mon.settings
    for key, v in values.items():
        if key == "maxqsub":
            s.maxqsub = int(v)  # type: ignore[call-overload]
        elif key == "ahead":
            s.ahead = int(v)  # type: ignore[call-overload]
        elif key == "interval":
            s.interval_s = float(v)  # type: ignore[arg-type]
            s.backoff_s = max(float(v), 1.0)  # type: ignore[arg-type]
        elif key == "lost_after":
            s.lost_after_s = float(v)  # type: ignore[arg-type]
        elif key == "retries":
            s.retries = int(v)  # type: ignore[call-overload]
        elif key == "fetch":
            s.fetch = [str(x) for x in v] or None  # type: ignore[attr-defined]
        elif key == "qsub_args":
            mon.remote.host.qsub_args = [str(x) for x in v]  # type: ignore[attr-defined]
        elif key == "max_scheduler_commands_per_minute":   # the caps (run/budget.py): the
            mon.budget.per_minute = int(v)  # type: ignore[call-overload]   # windows carry on
        elif key == "max_logins_per_hour":
            mon.budget.logins_per_hour = int(v)  # type: ignore[call-overload]


def apply_set(mon: Monitor, rid: int, args: dict[str, object], now: float) -> str:
    """The monitor's side of `jobauto set`: record the change, and use it from now on."""
    values = args.get("values")
    if not isinstance(values, dict):
        return "a set request without values: ignored"
    changed = change(mon.store, values, now, f"jobauto set (request {rid})")
    apply_live(mon, values)
    later = [k.replace("_", "-") for k in values if k not in LIVE]
    result = f"set {'; '.join(changed)}" if changed else "set: nothing changed"
    if later:
        result += f" ({', '.join(later)}: from the next resume)"
    return result
