"""How the HTML report writes values, for every part of the page (report.py, timeline.py):
escaping (`e`: every user string goes through it), local times (`clock`) and durations (`dur`)."""

from __future__ import annotations

import time
from html import escape

from jobauto.view.status import duration


def e(s: object) -> str:
    return escape(str(s), quote=True)


def dur(s: float | None) -> str:
    """status.duration, with tenths under 10 s (short jobs are common in tables)."""
    return f"{s:.1f}s" if s is not None and 0 <= s < 10 else duration(s)


def clock(t: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return "-" if t is None else time.strftime(fmt, time.localtime(t))
