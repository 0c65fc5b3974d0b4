"""The quelist format of the spec (jobauto/run/quelist.py)."""

from __future__ import annotations

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


