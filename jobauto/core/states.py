"""The state vocabulary shown everywhere: the counted states and the count line."""

from __future__ import annotations

COUNT_KEYS = ("done", "running", "ready", "waiting", "blocked", "error")


def count_line(counts: dict[str, int]) -> str:
    """`done 3 running 2 ready 0 waiting 5 blocked 0 error 0`: jobmon's line and `status RUN`."""
    return " ".join(f"{k} {v}" for k, v in counts.items() if k in COUNT_KEYS or v)
