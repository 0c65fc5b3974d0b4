"""The quelist format of the spec (jobauto/run/quelist.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobauto.run import quelist

SPEC_EXAMPLE = """\
Si/qsub.0 started@2026-11-21T10:00:05 finished@2026-11-21T10:42:17
Si/qsub.1 started@2026-11-21T10:42:20
GaAs/qsub.0 spre@2026-11-21T11:00:00 started@2026-11-21T10:01:02 failed@2026-11-21T11:03:09
"""


def test_spec_example_round_trips() -> None:
    lines = quelist.parse(SPEC_EXAMPLE)
    assert [ln.name for ln in lines] == ["Si/qsub.0", "Si/qsub.1", "GaAs/qsub.0"]
    assert "".join(quelist.render_line(ln) + "\n" for ln in lines) == SPEC_EXAMPLE


def test_token_order_and_extras() -> None:
    t = quelist.parse_time("2026-11-21T10:00:05")
    line = quelist.Line("a/qsub.0", {"failed": t, "started": t, "spre": t}, {"jobid": "4711"})
    assert quelist.render_line(line) == ("a/qsub.0 spre@2026-11-21T10:00:05 started@2026-11-21T10:00:05 "
                                        "failed@2026-11-21T10:00:05 jobid=4711")


def test_names_with_spaces_and_quotes_stay_one_field() -> None:
    line = quelist.Line("it's a $(dir);/qsub.0", {}, {"reason": "vanished"})
    text = quelist.render_line(line)
    back = quelist.parse_line(text)
    assert back.name == "it's a $(dir);/qsub.0" and back.extra == {"reason": "vanished"}




# -- properties (hypothesis): any name, any times, any extras; any text parses or is a ValueError
# Job names: any text without NUL or a line break (the two things a job ID may not hold).
NAMES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n"),
                min_size=1, max_size=40)
# Times: whole seconds (the format's resolution) between 1970 and 2100, as jobs have them; not
# the hour a clock repeats when summer time ends, which local time without an offset cannot name
# (docs/file-formats.md).
TIMES = st.dictionaries(st.sampled_from(quelist.TIME_KEYS),
                        st.integers(0, 4_102_444_800).map(float).filter(
                            lambda t: quelist.parse_time(quelist.fmt_time(t)) == t))
# Extras: jobauto's own keys are words (jobid, queue, attempt, reason); values any text but NUL
# and line breaks, non-empty (an empty value is not written).
EXTRAS = st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True), NAMES, max_size=4)
PROPERTY = settings(max_examples=150, deadline=None, database=None)


@PROPERTY
@given(NAMES, TIMES, EXTRAS)
def test_any_line_round_trips(name: str, times: dict[str, float], extra: dict[str, str]) -> None:
    text = quelist.render_line(quelist.Line(name, times, extra))
    assert "\n" not in text
    back = quelist.parse_line(text)
    assert (back.name, back.times, back.extra) == (name, times, extra)


@PROPERTY
@given(st.lists(st.tuples(NAMES, TIMES, EXTRAS), max_size=5))
def test_any_file_round_trips(lines: list[tuple[str, dict[str, float], dict[str, str]]]) -> None:
    text = "".join(quelist.render_line(quelist.Line(*ln)) + "\n" for ln in lines)
    back = quelist.parse(text)
    assert [(b.name, b.times, b.extra) for b in back] == lines


@PROPERTY
@given(st.text(max_size=80) | st.from_regex(
    r"[\w/.' \"\\]{0,12}( (spre|started|finished|failed)@[-0-9T:]{0,22}| \w{0,5}=['\"\\\w]{0,6})+",
    fullmatch=True))
def test_any_text_parses_or_is_a_value_error(text: str) -> None:
    try:
        quelist.parse(text)
    except ValueError:
        pass


def test_text_in_blocks_is_the_whole_join_after_any_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """quelist.Text joins again only the blocks whose lines changed; the text is always that of
    every line in ready order."""
    import random
    monkeypatch.setattr(quelist.Text, "BLOCK", 3)
    rng = random.Random(7)
    lines = {f"j{i}": f"j{i} started@x" for i in range(10)}
    order = [f"j{i}" for i in range(4)]
    text = quelist.Text(list(order))
    for step in range(200):
        if rng.random() < 0.2 and len(order) < len(lines):
            order.append(f"j{len(order)}")
            text.append(order[-1])
        else:
            name = rng.choice(order)
            lines[name] = f"{name} step={step}"
            text.changed(name)
        assert text.render(lines) == "".join(lines[n] + "\n" for n in order)
