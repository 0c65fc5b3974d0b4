"""A run's settings (jobauto/run/settings.py): `jobauto set` as the monitor applies it, with the
fake cluster and an explicit clock; recording and reading them back (run/opener.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Rig, make_job

from jobauto.core.config import Options, assignment, from_recorded, recordable, secret
from jobauto.core.errors import ConfigError
from jobauto.run import settings
from jobauto.store import Store


def request_set(rig: Rig, **values: object) -> int:
    other = Store(rig.run / ".jobauto" / "state.db")
    rid = other.add_request(0.0, "set", {"values": values})
    other.close()
    return rid


def test_maxqsub_raised_then_lowered_at_the_next_cycle(tmp_path: Path) -> None:
    rig = Rig(tmp_path, maxqsub=2)
    for i in range(12):
        make_job(rig.init, f"fan/qsub.{i}")
    m = rig.start()
    m.tick(10.0)
    assert len(rig.cluster.queue) == 2
    request_set(rig, maxqsub=5)
    r = m.tick(20.0)
    assert len(rig.cluster.queue) == 5 and m.settings.maxqsub == 5
    assert any(n.startswith("set maxqsub") and "-> 5" in n for n in r.notes)
    request_set(rig, maxqsub=1)
    m.tick(30.0)
    assert len(rig.cluster.queue) == 5                   # nothing is killed to fit
    for j in rig.cluster.running()[:3]:
        rig.cluster.finish(j)
    m.tick(40.0)
    assert len(rig.cluster.queue) == 2                   # 2 left running; none submitted
    for j in rig.cluster.running():
        rig.cluster.finish(j)
    m.tick(50.0)
    assert len(rig.cluster.queue) == 1
    assert json.loads(m.store.get_meta("settings") or "{}")["maxqsub"] == 1
    history = [d for _, k, d in m.store.events("") if k == "settings"]
    assert history == ["jobauto set (request 1): maxqsub (none) -> 5",
                       "jobauto set (request 2): maxqsub 5 -> 1"]


def test_interval_lost_after_retries_reach_the_monitor(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    make_job(rig.init, "a/qsub.0")
    m = rig.start()
    rid = request_set(rig, interval=5.0, lost_after=30.0, retries=2, binpath="/opt/bin")
    m.tick(1.0)
    s = m.settings
    assert (s.interval_s, s.backoff_s, s.lost_after_s, s.retries) == (5.0, 5.0, 30.0, 2)
    result = next(r[5] for r in m.store.requests() if r[0] == rid)
    assert "(binpath: from the next resume)" in result


def test_recorded_settings_round_trip_and_leave_out_invocation_and_secrets() -> None:
    opts = Options(rdir="/r", maxqsub=7, interval=2.5, fetch=["*.dat"], define={"k": "v"},
                   daemon=True, datedir="x", ldir=Path("/l"))
    values = recordable(opts)
    assert "daemon" not in values and "datedir" not in values and "ldir" not in values
    back = from_recorded(json.loads(json.dumps(values)), "test")
    assert (back.rdir, back.maxqsub, back.interval, back.fetch, back.define) == \
        ("/r", 7, 2.5, ["*.dat"], {"k": "v"})
    assert not secret("maxqsub") and secret("mail_password") and secret("smtp_token")


@pytest.mark.parametrize("text, said", [
    ("maxqsub=0", "maxqsub must be at least 1, not 0"),
    ("interval=soon", "interval='soon' is not a number"),
    ("lost-after=-1", "lost-after must be at least 0, not -1"),
    ("retries=1.5", "retries must be a whole number, not 1.5"),
    ("maxqsb=3", "'maxqsb' is not a setting (did you mean 'maxqsub'?)"),
    ("daemon=1", "'daemon' is not a setting a run records"),
    ("maxqsub", "expected NAME=VALUE, got 'maxqsub'"),
])
def test_a_bad_setting_is_named(text: str, said: str) -> None:
    with pytest.raises(ConfigError) as e:
        assignment(text)
    assert said in e.value.message


def test_where_the_run_lives_cannot_be_set() -> None:
    with pytest.raises(ConfigError, match="rdir cannot change"):
        settings.check_set(dict([assignment("rdir=/elsewhere")]))
