"""jobmon's options: flags, an optional YAML file (--config, LDIR/jobauto.yaml); flags win."""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path

from jobauto.core.errors import ConfigError


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
    daemon: bool = False
    once: bool = False

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
    """Build Options from config files (later files win) and flags (win over everything)."""
    merged: dict[str, object] = {}
    for path in files:
        merged.update(load_yaml(path))
    merged.update({k: v for k, v in flags.items() if v is not None and v != [] and v != {}})
    opts = Options()
    for key, value in merged.items():
        setattr(opts, key, _coerce(key, value))
    return opts


def _coerce(key: str, value: object) -> object:
    where = "--" + key.replace("_", "-")
    try:
        if key in ("ldir", "ssh_config"):
            return Path(str(value)).expanduser()
        if key in ("maxqsub", "retries"):
            n = int(str(value))
            if n < (1 if key == "maxqsub" else 0):
                raise ValueError
            return n
        if key == "scheduler_bin":
            dirs = value.split(":") if isinstance(value, str) else [str(v) for v in value]  # type: ignore[attr-defined]
            if any(not d or "\n" in d for d in dirs):
                raise ValueError
            return dirs
        if key in ("interval", "lost_after"):
            f = float(str(value))
            if f < 0:
                raise ValueError
            return f
        if key == "qsub_args":
            return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]  # type: ignore[attr-defined]
        if key == "define":
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
            return parse_define(list(value), where)  # type: ignore[call-overload]
        if key == "fetch":
            return [value] if isinstance(value, str) else [str(v) for v in value]  # type: ignore[attr-defined]
        if key in ("initonly", "daemon", "once"):
            return bool(value)
        return None if value is None else str(value)
    except (ValueError, TypeError):
        raise ConfigError(f"invalid value {value!r}", flag=where) from None
