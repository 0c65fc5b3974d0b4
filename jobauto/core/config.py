"""jobmon's options: flags, an optional YAML file (--config, LDIR/jobauto.yaml); flags win.

Every numeric setting of the project (flags of every command, YAML keys, `#jobauto` lines of
dependency files, a job table's reserved columns) is checked by one function, number(), against
its Limit in LIMITS: a number, finite, whole where it must be, in range."""

from __future__ import annotations

import difflib
import math
import re
import shlex
from dataclasses import dataclass, field, fields
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
    binpath: str | None = None
    pythonpath: str | None = None
    maxcore: str | None = None
    maxqsub: int = 10
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
    sweep_every: float = 900.0  # seconds between full looks at both trees (docs/decisions.md)

    def values(self) -> dict[str, str]:
        """The placeholder values: built-ins that were given, then every --define."""
        out = {k: v for k, v in (("binpath", self.binpath), ("pythonpath", self.pythonpath),
                                 ("maxcore", self.maxcore)) if v is not None}
        out.update(self.define)
        return out


NAMES = {f.name for f in fields(Options)}


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


def merge(flags: dict[str, object], files: list[Path]) -> Options:
    """Build Options from config files (later files win) and flags (win over everything). Each
    value is checked where it was written: a YAML value names its file and key, a flag its flag."""
    opts = Options()
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
        if key in ("initonly", "daemon", "once", "fetch_all"):
            return bool(value)
        return None if value is None else str(value)
    except (ValueError, TypeError):
        shown = repr(shorten(value)) if isinstance(value, str) else shorten(value)
        raise ConfigError(f"{name}: invalid value {shown}" if name else f"invalid value {shown}",
                          flag=flag, file=file) from None
