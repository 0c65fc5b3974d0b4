"""The state vocabulary shown everywhere: the counted states, the count line, the allowed moves."""

from __future__ import annotations

from jobauto.core.model import Verdict

COUNT_KEYS = ("done", "running", "ready", "waiting", "blocked", "error")

# Derived for a running job (jobmon --ahead): submitted with the scheduler's own dependency on a
# job of the run that is not done yet; it waits in the queue and starts when that one ends.
AHEAD = "queued-ahead"


def queued_ahead(state: str, waits_on_a_job: bool) -> bool:
    """The one rule for `queued-ahead`, used by jobmon (run/ahead.py, from its markers) and by
    the views (view/campaign.py, from the store): a job stored running that still needs a job of
    the run not done can only have been submitted ahead, and waits in the queue on it. Nothing
    else is stored for it (docs/decisions.md "Edges to the scheduler")."""
    return state == "running" and waits_on_a_job

# Every move between the stored states of a jobmon job, with the event kinds that make it (the
# kind of the event the monitor records). A job is born pending, or done/error when init/ held
# its markers; a birth is not a move. Anything not listed here is a bug in the monitor.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    # the intent (token, batch) is committed before the submission leaves
    ("pending", "running"): frozenset({"intent"}),
    # a transient refusal; a lost answer that the journal and the queue show never arrived;
    # a job queued ahead taken out of the queue: a predecessor did not end done (it is then
    # blocked), or the scheduler's dependency can never be met although it did (then ready)
    ("running", "pending"): frozenset({"refused", "not-submitted", "unhooked"}),
    ("running", "done"): frozenset({"done"}),
    # a verdict: markers, accounting, the queue's silence (vanished), a refusal or an Eqw deletion
    ("running", "error"): frozenset(v.value for v in Verdict if v != Verdict.DONE),
    # a job added during the run that cannot be read; a failed marker of a job not submitted here;
    # jobauto cancel of a job not submitted yet (it never runs)
    ("pending", "error"): frozenset({"invalid", "failed", "cancelled"}),
    # a marker of a job not submitted here (markers decide whatever the state)
    ("pending", "done"): frozenset({"done"}),
    # a marker that appears after a verdict read from anything else overrules it
    ("error", "done"): frozenset({"done"}),
    ("error", "error"): frozenset({"failed"}),
    # jobauto reset (any state but running) and --retries
    ("error", "pending"): frozenset({"reset", "retry"}),
    ("done", "pending"): frozenset({"reset"}),
    ("pending", "pending"): frozenset({"reset"}),
}


class BadMove(AssertionError):
    """A state change TRANSITIONS does not list: a bug in the monitor, never the user's doing."""


def check_move(old: str, new: str, kind: str) -> None:
    """Refuse a state change that TRANSITIONS does not list."""
    if kind not in TRANSITIONS.get((old, new), frozenset()):
        raise BadMove(f"job state {old} -> {new} on {kind!r} is not in core.states.TRANSITIONS")


def count_line(counts: dict[str, int]) -> str:
    """`done 3 running 2 ready 0 waiting 5 blocked 0 error 0`: jobmon's line and `status RUN`."""
    return " ".join(f"{k} {v}" for k, v in counts.items() if k in COUNT_KEYS or v)
