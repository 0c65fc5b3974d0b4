"""Settings and their checks (jobauto/core/config.py): the one validator of numeric settings,
shared by jobmon's flags, its YAML file, `#jobauto` lines, the job-table CSV and the table
commands' flags. Through the commands: cli/test_jobmon.py, cli/test_tables.py."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobauto.core.config import (
    LIMITS,
    Limit,
    merge,
    number,
    recordable,
    setting,
    shown_settings,
    target_shown,
)
from jobauto.core.errors import ConfigError, JobautoError, TreeError


@pytest.mark.parametrize(("key", "value", "expect"), [
    ("interval", "nan", "--x: must be a finite number, not nan"),
    ("interval", "inf", "--x: must be a finite number, not inf"),
    ("interval", "-inf", "--x: must be a finite number, not -inf"),
    ("interval", "1e999", "--x: must be a finite number, not 1e999"),
    ("interval", "0", "--x: must be at least 0.1, not 0"),
    ("interval", "100000", "--x: must be at most 86400, not 100000"),
    ("lost_after", "nan", "--x: must be a finite number, not nan"),
    ("lost_after", "-1", "--x: must be at least 0, not -1"),
    ("maxqsub", "0", "--x: must be at least 1, not 0"),
    ("maxqsub", "-3", "--x: must be at least 1, not -3"),
    ("maxqsub", "2.5", "--x: must be a whole number, not 2.5"),
    ("maxqsub", "zero", "--x: invalid value 'zero': not a number"),
    ("maxqsub", "", "--x: invalid value '': not a number"),
    ("retries", "99999999999999999999", "--x: must be at most 100, not 99999999999999999999"),
    ("retries", "9" * 5000, "--x: must be at most 100, not " + "9" * 40 + "..."),
    ("priority", "-12345678901234567890", "--x: must be at least -1000000000, not -1234567890"),
    ("estimate", "-0.5", "--x: must be at least 0, not -0.5"),
    ("max_runtime", "0", "--x: must be positive, not 0"),
    ("max_runtime", "-1", "--x: must be positive, not -1"),
    ("refresh", "-1", "--x: must be positive, not -1"),
    ("parallel", "5000", "--x: must be at most 4096, not 5000"),
    ("heartbeat", "0", "--x: must be at least 0.1, not 0"),
])
def test_a_bad_number_is_refused_with_one_line_naming_the_flag(key: str, value: str,
                                                               expect: str) -> None:
    with pytest.raises(ConfigError) as e:
        setting(key, value, flag="--x")
    assert e.value.describe().startswith(expect)
    assert "\n" not in e.value.describe()


@pytest.mark.parametrize(("key", "value", "want"), [
    ("interval", "0.1", 0.1), ("interval", " 60 ", 60.0), ("interval", 5, 5.0),
    ("maxqsub", "1", 1), ("maxqsub", 100_000, 100_000), ("retries", "0", 0),
    ("priority", "-1000000000", -1_000_000_000), ("priority", "+7", 7),
    ("estimate", "1e-3", 0.001), ("lost_after", "0", 0.0), ("max_runtime", "1", 1.0),
])
def test_a_good_number_comes_back_as_its_kind(key: str, value: object, want: float) -> None:
    got = setting(key, value, flag="--x")
    assert got == want and type(got) is LIMITS[key].kind


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}, 2.5, math.nan])
def test_yaml_values_that_are_no_whole_number_are_refused(value: object) -> None:
    with pytest.raises(ConfigError) as e:
        setting("maxqsub", value, file="jobauto.yaml", name="maxqsub")
    assert e.value.describe().startswith("jobauto.yaml: maxqsub")


def test_the_place_and_the_error_type_are_the_callers() -> None:
    with pytest.raises(TreeError) as e:
        setting("priority", "12345678901234567890", name="#jobauto priority", file="d/f",
                line=3, error=TreeError)
    assert e.value.describe() == ("d/f:3: #jobauto priority must be at most 1000000000, "
                                  "not 12345678901234567890")
    with pytest.raises(TreeError, match=r"^d/f:1: #jobauto estimate='soon' is not a number$"):
        setting("estimate", "soon", name="#jobauto estimate", file="d/f", line=1, error=TreeError)


@pytest.mark.parametrize(("text", "expect"), [
    ("interval: .nan\n", "jobauto.yaml: interval must be a finite number, not nan"),
    ("maxqsub: 0\n", "jobauto.yaml: maxqsub must be at least 1, not 0"),
    ("lost-after: 1e400\n", "jobauto.yaml: lost_after must be a finite number, not 1e400"),
    ("retries: yes\n", "jobauto.yaml: retries=True is not a number"),
    ("retries: 3\nmaxqsub: [1, 2]\n", "jobauto.yaml: maxqsub=[1, 2] is not a number"),
])
def test_a_yaml_value_is_refused_naming_the_file_and_key(tmp_path: Path, text: str,
                                                         expect: str) -> None:
    cfg = tmp_path / "jobauto.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as e:
        merge({}, [cfg])
    assert e.value.describe() == expect.replace("jobauto.yaml", str(cfg))


def test_flags_win_over_the_yaml_file_and_both_are_checked(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("maxqsub: 4\ninterval: 30\n")
    opts = merge({"maxqsub": "7", "interval": None}, [cfg])
    assert (opts.maxqsub, opts.interval) == (7, 30.0)
    with pytest.raises(ConfigError, match="^--interval: must be a finite number"):
        merge({"interval": "inf"}, [cfg])


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none()),
       key=st.sampled_from(sorted(LIMITS)))
def test_any_value_is_a_number_in_range_or_one_line_refusal(value: object, key: str) -> None:
    limit = LIMITS[key]
    try:
        got = setting(key, value, flag="--x")
    except JobautoError as e:
        assert type(e) is ConfigError
        text = e.describe()
        assert text.startswith("--x: ") and "\n" not in text and len(text) < 200
        return
    assert type(got) is limit.kind and math.isfinite(got)
    assert limit.low <= got <= limit.high and (got > 0 or not limit.positive)


def test_number_takes_a_limit_of_its_own() -> None:
    assert number("3", Limit(int, 1, 5), flag="--n") == 3
    with pytest.raises(ConfigError, match="^--n: must be at most 5, not 6$"):
        number("6", Limit(int, 1, 5), flag="--n")


@pytest.mark.parametrize("target, shown", [
    ("json://user:pw@127.0.0.1:8080/hook/T0KEN?token=abc", "json://127.0.0.1:8080/..."),
    ("slack://T1AAA/B2BBB/C3CCC", "slack://T1AAA/..."),
    ("ntfy://topic", "ntfy://topic/..."),
    ("mailto://me:secret@example.org", "mailto://example.org/..."),
    ("notify-send jobauto --token s3cret", "notify-send ..."),
    ("/home/me/bin/hook", "/home/me/bin/hook"),
])
def test_a_notification_target_is_shown_without_what_may_be_a_secret(target: str, shown: str) -> None:
    assert target_shown(target) == shown
    for secret in ("pw", "T0KEN", "abc", "B2BBB", "s3cret"):
        assert secret not in target_shown(target) or secret in shown


def test_notification_targets_are_recorded_for_a_resume_but_shown_cut_short() -> None:
    opts = merge({"notify": ["json://u:pw@host/path/T0KEN", "hook --key K3Y"], "maxqsub": 5}, [])
    recorded = recordable(opts)
    assert recorded["notify"] == ["json://u:pw@host/path/T0KEN", "hook --key K3Y"]
    shown = shown_settings(recorded)
    assert shown["notify"] == ["json://host/...", "hook ..."] and shown["maxqsub"] == 5
    assert "T0KEN" not in repr(shown) and "K3Y" not in repr(shown) and "pw" not in repr(shown)


def test_ssh_is_auto_unless_a_flag_or_the_yaml_says_otherwise(tmp_path: Path) -> None:
    yaml = tmp_path / "jobauto.yaml"
    yaml.write_text("ssh: openssh\n")
    assert merge({}, []).ssh == "auto"
    assert merge({}, [yaml]).ssh == "openssh"
    assert merge({"ssh": "paramiko"}, [yaml]).ssh == "paramiko"
    yaml.write_text("ssh: true\n")
    with pytest.raises(ConfigError) as e:
        merge({}, [yaml])
    assert e.value.describe() == (f"{yaml}: ssh: invalid value 'True' (use one of: auto, openssh, "
                                  "paramiko)")
