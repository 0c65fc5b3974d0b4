"""Scheduler adapters on captured real output (tests/data/, see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobauto.errors import SchedulerError
from jobauto.model import CommandResult
from jobauto.schedulers import adapter_for, parse_detect
from jobauto.schedulers.local import LocalAdapter
from jobauto.schedulers.sge import SgeAdapter

DATA = Path(__file__).parent / "data"


def captured(name: str, argv: tuple[str, ...] = ("qsub",)) -> CommandResult:
    base = DATA / "sge" / name
    err = base.with_suffix(".err")
    return CommandResult(argv, int(base.with_suffix(".rc").read_text()),
                         base.with_suffix(".out").read_bytes(), err.read_text() if err.exists() else "")


def test_submit_argv_keeps_familiar_output_names_and_extra_args_last() -> None:
    argv = SgeAdapter().submit_argv("qsub.3", "jaab12_1", ["-g", "tga-x"])
    assert argv == ["qsub", "-terse", "-cwd", "-N", "jaab12_1", "-o", "qsub.3.o$JOB_ID",
                    "-e", "qsub.3.e$JOB_ID", "-g", "tga-x", "qsub.3"]


def test_parse_submit_normal_and_array() -> None:
    a = SgeAdapter()
    assert a.parse_submit(captured("qsub-terse")) == captured("qsub-terse").text.strip()
    arr = captured("qsub-terse-array")
    assert "." in arr.text and a.parse_submit(arr) == arr.text.split(".")[0]


@pytest.mark.parametrize("name", ["qsub-bad-option", "qsub-missing-script"])
def test_parse_submit_errors_are_permanent_with_the_message(name: str) -> None:
    res = captured(name)
    with pytest.raises(SchedulerError) as e:
        SgeAdapter().parse_submit(res)
    assert not e.value.transient and e.value.rc == res.rc
    assert (res.stderr.split() or res.text.split())[0] in e.value.message


def test_transient_refusals() -> None:
    res = CommandResult(("qsub",), 1, b"", "error: commlib error: got select error (Connection refused)\n"
                        "unable to contact qmaster using port 6444 on host \"vm\"")
    with pytest.raises(SchedulerError) as e:
        SgeAdapter().parse_submit(res)
    assert e.value.transient


def test_unparsable_accepted_output_is_unknown_not_error() -> None:
    res = CommandResult(("qsub",), 0, b"Your job 12 (\"x\") has been submitted\n")
    with pytest.raises(SchedulerError) as e:
        SgeAdapter().parse_submit(res)
    assert e.value.transient


def test_queue_empty_running_pending_held_eqw_array() -> None:
    a = SgeAdapter()
    assert a.parse_queue(captured("qstat-empty-xml")).entries == {}
    q = a.parse_queue(captured("qstat-running-pending-xml"))
    states = sorted(e.state for e in q.entries.values())
    assert q.ok and states.count("r") == 4 and states.count("qw") == 2
    assert all(e.name for e in q.entries.values())
    held = a.parse_queue(captured("qstat-held-xml"))
    assert [e.state for e in held.entries.values()] == ["hqw"]
    eqw = a.parse_queue(captured("qstat-eqw-xml"))
    assert any(e.state == "Eqw" for e in eqw.entries.values())
    arr = a.parse_queue(captured("qstat-array-xml"))
    assert len(arr.entries) >= 1 and all(e.sched_id.isdigit() for e in arr.entries.values())


def test_queue_failure_is_unknown_not_empty() -> None:
    q = SgeAdapter().parse_queue(CommandResult(("qstat",), 1, b"", "error: unable to contact qmaster"))
    assert not q.ok and "unable to contact qmaster" in q.error


def test_detect_sge_from_qstat_help() -> None:
    head = (DATA / "sge" / "qstat-help-head1.out").read_text()
    assert head.split()[0] in ("SGE", "GE", "OGS", "UGE", "AGE")
    assert parse_detect(CommandResult((), 0, b"sge\n")) == "sge"
    assert parse_detect(CommandResult((), 0, b"none\n")) is None


def test_local_adapter_parses_ps() -> None:
    q = LocalAdapter().parse_queue(CommandResult(("ps",), 0, b"  12 Ss\n  13 Z\n 14 R+\n"))
    assert set(q.entries) == {"12", "14"}


def test_unknown_scheduler_name() -> None:
    with pytest.raises(Exception, match="unknown scheduler"):
        adapter_for("lsf")
