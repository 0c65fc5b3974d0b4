"""jobmon's options: flags, an optional YAML file (--config, LDIR/jobauto.yaml); flags win.

Every numeric setting of the project (flags of every command, YAML keys, `#jobauto` lines of
dependency files, a job table's reserved columns) is checked by one function, number(), against
its Limit in LIMITS: a number, finite, whole where it must be, in range."""

from __future__ import annotations

import difflib
import math
import re
import shlex
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from jobauto.core.errors import ConfigError, JobautoError

N = TypeVar("N", int, float)


@dataclass(frozen=True)
class Limit(Generic[N]):
    """The values a numeric setting may take: its kind (int: a whole number) and range, both
    ends included; `positive` refuses zero too (said as "must be positive")."""

    kind: type[N]
    low: N
    high: N
    positive: bool = False


# Every numeric setting, wherever it is written (flag, YAML, `#jobauto` line, CSV column):
# docs/decisions.md "Numeric settings" says why each range is what it is.
DAY_S = 86_400
LIMITS: dict[str, Limit[Any]] = {
    "maxqsub": Limit(int, 1, 100_000),
    "ahead": Limit(int, 0, 100_000),     # jobmon --ahead (docs/decisions.md "Edges to the scheduler")
    "retries": Limit(int, 0, 100),
    "interval": Limit(float, 0.1, DAY_S),
    "lost_after": Limit(float, 0.0, 30 * DAY_S),
    "priority": Limit(int, -1_000_000_000, 1_000_000_000),
    "estimate": Limit(float, 0.0, 100_000.0),              # hours
    "parallel": Limit(int, 1, 4096),
    "max_runtime": Limit(float, 1.0, 366 * DAY_S, positive=True),
    "margin_time": Limit(float, 0.0, 366 * DAY_S),
    "heartbeat": Limit(float, 0.1, 3600.0),
    "refresh": Limit(float, 0.1, DAY_S, positive=True),    # jobauto status --interval
    "notify_timeout": Limit(float, 1.0, 3600.0),           # jobmon --notify-timeout
    # the caps of docs/etiquette.md: at least 2 (one for polls, one for submissions)
    "max_scheduler_commands_per_minute": Limit(int, 2, 100_000),
    "max_logins_per_hour": Limit(int, 1, 100_000),
    "job_hours": Limit(float, 0.0, 100_000.0),             # jobauto plan --job-hours
    "sweep_every": Limit(float, 0.0, 30 * DAY_S),          # jobmon --sweep-every
}
SHOWN = 40  # characters of a refused value quoted in a message


def shorten(value: object) -> str:
    """VALUE as a message quotes it: stripped text, or repr, cut after SHOWN characters."""
    text = value.strip() if isinstance(value, str) else repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def number(value: object, limit: Limit[N], *, name: str | None = None, flag: str | None = None,
           file: str | None = None, line: int | None = None,
           error: type[JobautoError] = ConfigError) -> N:
    """Return VALUE (a string as typed, or a number from YAML) as LIMIT's kind, finite and in its
    range; else raise ERROR placed at FLAG or FILE:LINE. NAME, when given, is the subject of the
    message (`#jobauto priority`, a YAML key, `row 2, column 3 (...)`)."""
    def refuse(problem: str) -> JobautoError:
        return error(f"{name} {problem}" if name else problem, flag=flag, file=file, line=line)

    shown = shorten(value)
    got = _parse(value, limit.kind is int)
    if isinstance(got, str):  # not a number at all: GOT says what was expected
        quoted = repr(shown) if isinstance(value, str) else shown
        raise error(f"{name}={quoted} is not {got}" if name else f"invalid value {quoted}: not {got}",
                    flag=flag, file=file, line=line)
    if isinstance(got, float) and not math.isfinite(got):
        raise refuse(f"must be a finite number, not {shown}")
    if limit.kind is int and isinstance(got, float):
        raise refuse(f"must be a whole number, not {shown}")
    if limit.positive and got <= 0:
        raise refuse(f"must be positive, not {shown}")
    if got < limit.low:
        raise refuse(f"must be at least {_fmt(limit.low)}, not {shown}")
    if got > limit.high:
        raise refuse(f"must be at most {_fmt(limit.high)}, not {shown}")
    return limit.kind(got)


def _parse(value: object, whole: bool) -> int | float | str:
    """VALUE as a number (an int when WHOLE and it is written as one), or what it is not."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return "a number"
    if isinstance(value, (int, float)):
        return value
    text = value.strip()
    if whole:
        if len(text) > 4000 and INTEGER.fullmatch(text):
            # past Python's digit limit int() refuses: out of every range, and said so
            return -10 ** 30 if text.startswith("-") else 10 ** 30
        try:
            return int(text)
        except ValueError:
            pass
    try:
        return float(text)
    except ValueError:
        return "a number"


INTEGER = re.compile(r"[+-]?[0-9]+")


def setting(key: str, value: object, *, name: str | None = None, flag: str | None = None,
            file: str | None = None, line: int | None = None,
            error: type[JobautoError] = ConfigError) -> int | float:
    """Check VALUE for the numeric setting KEY (a key of LIMITS) with number()."""
    limit = LIMITS[key]
    return number(value, limit, name=name, flag=flag, file=file, line=line, error=error)


@dataclass
class Options:
    ldir: Path | None = None
    rdir: str | None = None
    remote: str | None = None
    user: str | None = None
    ssh_config: Path | None = None
    ssh: str = "auto"          # how to reach --remote: openssh (the user's master), paramiko, auto
    binpath: str | None = None
    pythonpath: str | None = None
    maxcore: str | None = None
    maxqsub: int = 10
    ahead: int = 10     # jobs that may wait in the queue on a running job of the run (--ahead; docs/decisions.md "Edges to the scheduler")
    interval: float = 60.0
    lost_after: float = 300.0
    retries: int = 0
    scheduler_bin: list[str] = field(default_factory=list)
    datedir: str | None = None
    initonly: bool = False
    scheduler: str = "auto"
    qsub_args: list[str] = field(default_factory=list)
    define: dict[str, str] = field(default_factory=dict)
    fetch: list[str] = field(default_factory=list)
    fetch_all: bool = False     # the end-of-run fetch brings everything, not only markers and --fetch
    daemon: bool = False
    once: bool = False
    notify: list[str] = field(default_factory=list)   # commands or apprise URLs (run/notify.py)
    mail: list[str] = field(default_factory=list)     # addresses, through the local sendmail
    notify_timeout: float = 30.0
    # the caps (run/budget.py); docs/decisions.md "A budget and a forecast" says why these
    max_scheduler_commands_per_minute: int = 60
    max_logins_per_hour: int = 30
    arrays: bool | None = None  # jobmon --arrays/--no-arrays; None: arrays for render-made jobs
    sweep_every: float = 900.0  # seconds between full looks at both trees (docs/decisions.md)

    def values(self) -> dict[str, str]:
        """The placeholder values: built-ins that were given, then every --define."""
        out = {k: v for k, v in (("binpath", self.binpath), ("pythonpath", self.pythonpath),
                                 ("maxcore", self.maxcore)) if v is not None}
        out.update(self.define)
        return out


NAMES = {f.name for f in fields(Options)}
SSH_KINDS = ("auto", "openssh", "paramiko")


def parse_define(items: list[str], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise ConfigError(f"expected KEY=VALUE with a plain KEY, got {item!r}", flag=where)
        out[key] = value
    return out


def load_yaml(path: Path) -> dict[str, object]:
    """Read a config file; unknown keys are errors that suggest the close match."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError("config file not found", file=str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(e, 'problem', e)}", file=str(path),
                          line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of option: value", file=str(path))
    out: dict[str, object] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in NAMES:
            close = difflib.get_close_matches(name, sorted(NAMES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown option {key!r}{hint}", file=str(path))
        out[name] = value
    return out


def merge(flags: dict[str, object], files: list[Path], base: Options | None = None) -> Options:
    """Build Options from config files (later files win) and flags (win over everything). Each
    value is checked where it was written: a YAML value names its file and key, a flag its flag.
    BASE (a run's recorded settings, on resume) is what the files and flags change."""
    opts = replace(base) if base is not None else Options()
    for path in files:
        for key, value in load_yaml(path).items():
            setattr(opts, key, _coerce(key, value, file=str(path), name=key))
    for key, value in flags.items():
        if value is not None and value != [] and value != {}:
            setattr(opts, key, _coerce(key, value, flag="--" + key.replace("_", "-")))
    return opts


def _coerce(key: str, value: object, *, flag: str | None = None, file: str | None = None,
            name: str | None = None) -> object:
    if key in LIMITS:
        return setting(key, value, flag=flag, file=file, name=name)
    try:
        if key in ("ldir", "ssh_config"):
            return Path(str(value)).expanduser()
        if key == "scheduler_bin":
            dirs = value.split(":") if isinstance(value, str) else [str(v) for v in value]  # type: ignore[attr-defined]
            if any(not d or "\n" in d for d in dirs):
                raise ValueError
            return dirs
        if key == "qsub_args":
            return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]  # type: ignore[attr-defined]
        if key == "define":
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
            return parse_define(list(value), flag or f"{name} in {file}")  # type: ignore[call-overload]
        if key in ("fetch", "notify", "mail"):
            return [value] if isinstance(value, str) else [str(v) for v in value]  # type: ignore[attr-defined]
        if key == "ssh":
            if str(value) not in SSH_KINDS:
                raise ConfigError(f"{name or 'ssh'}: invalid value {shorten(value)!r} (use one of: "
                                  f"{', '.join(SSH_KINDS)})", flag=flag, file=file)
            return str(value)
        if key in ("initonly", "daemon", "once", "fetch_all"):
            return bool(value)
        if key == "arrays":
            if value is None or isinstance(value, bool):
                return value
            raise ValueError(value)
        return None if value is None else str(value)
    except (ValueError, TypeError):
        shown = repr(shorten(value)) if isinstance(value, str) else shorten(value)
        raise ConfigError(f"{name}: invalid value {shown}" if name else f"invalid value {shown}",
                          flag=flag, file=file) from None


# -- a run's recorded settings (run/opener.py records them; `jobauto set` changes them) ---------
# Options that say what one invocation does, not how the run goes: never recorded.
INVOCATION = frozenset({"ldir", "datedir", "initonly", "daemon", "once"})
# Never recorded (nor shown, nor logged): a field whose name says it is a secret, or one declared
# with field(metadata={"secret": True}) (e.g. a notification URL that carries a token). A secret
# setting must be given again on every resume.
SECRET_WORDS = ("password", "secret", "token", "apikey", "api_key")


TARGET_SETTINGS = ("notify",)   # recorded (a resume keeps telling them) but shown cut short


def target_shown(target: str) -> str:
    """A notification target without what may be a secret: a URL cut to its scheme and host (a
    webhook's token sits in its user, path or query), a command to its program (its arguments
    may hold a token). What status, explain and the run's events show of --notify."""
    if "://" in target:
        scheme, _, rest = target.partition("://")
        host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
        return f"{scheme}://{host}/..."
    words = target.split()
    return (words[0] + (" ..." if len(words) > 1 else "")) if words else ""


def shown_settings(values: dict[str, object]) -> dict[str, object]:
    """VALUES (recorded settings) with every notification target shown cut short."""
    return {k: [target_shown(str(t)) for t in v] if k in TARGET_SETTINGS and isinstance(v, list)
            else v for k, v in values.items()}


def secret(name: str) -> bool:
    """Whether the Options field NAME holds a secret (never recorded)."""
    meta = next((f.metadata for f in fields(Options) if f.name == name), None)
    return bool(meta and meta.get("secret")) or any(w in name.lower() for w in SECRET_WORDS)


RECORDED = tuple(f.name for f in fields(Options) if f.name not in INVOCATION and not secret(f.name))


def recordable(opts: Options) -> dict[str, object]:
    """OPTS as JSON-ready values: every field of Options but INVOCATION and secrets (so a
    field added to Options is recorded without more code)."""
    out: dict[str, object] = {}
    for name in RECORDED:
        value = getattr(opts, name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, (list, tuple)):
            value = [str(v) if isinstance(v, Path) else v for v in value]
        elif isinstance(value, dict):
            value = dict(value)
        out[name] = value
    return out


def from_recorded(values: dict[str, object], where: str) -> Options:
    """Options from recorded VALUES (unknown keys, from a newer jobauto, are ignored); each is
    checked again as a YAML value is: a damaged record is an error naming WHERE."""
    opts = Options()
    for key, value in values.items():
        if key in RECORDED:
            setattr(opts, key, value if value is None and _default(key) is None
                    else _coerce(key, value, file=where, name=key))
    return opts


def _default(name: str) -> object:
    return getattr(Options(), name)


def assignment(text: str) -> tuple[str, object]:
    """`NAME=VALUE` as typed to `jobauto set`: the Options field and its checked value. NAME is
    a flag's or a YAML key's name (lost-after or lost_after)."""
    key, sep, value = text.partition("=")
    name = key.strip().lstrip("-").replace("-", "_")
    if not sep or not name:
        raise ConfigError(f"expected NAME=VALUE, got {shorten(text)!r}")
    if name not in RECORDED:
        close = [] if name in NAMES else difflib.get_close_matches(name, sorted(RECORDED), n=1)
        hint = f" (did you mean {close[0].replace('_', '-')!r}?)" if close else ""
        what = "is not a setting a run records" if name in NAMES else "is not a setting"
        raise ConfigError(f"{key.strip()!r} {what}{hint}")
    default = _default(name)
    if isinstance(default, bool):
        low = value.strip().lower()
        if low not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            raise ConfigError(f"{key.strip()}={shorten(value)!r} is not true or false")
        return name, low in ("true", "yes", "1", "on")
    if name == "define":
        return name, parse_define(value.split(), "define")
    if isinstance(default, list) and name == "fetch":
        return name, [v for v in value.split(",") if v]
    got = _coerce(name, value, name=key.strip())
    if isinstance(got, Path):
        got = str(got)
    return name, got
