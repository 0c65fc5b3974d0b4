"""`jobauto workers` as a command (jobauto/cli/workers.py): --dry-run, what it reports, bad input
named by its flag. What it submits and the batch script: table/test_arrays.py.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from helpers import Site

from jobauto.cli.workers import workers_main


def test_dry_run_checks_but_writes_and_submits_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = Site(tmp_path)
    rc = workers_main(["--db", str(site.db), "-n", "2", "--scheduler", "sge", "--scheduler-bin",
                       str(site.bin), "--jobauto", shlex.quote(str(site.jobauto)), "--dry-run",
                       "--", "bash", "run.sh"])
    text = capsys.readouterr().out
    assert rc == 0 and "--dry-run" in text and "#!/bin/bash" in text and "qsub -terse" in text
    assert site.qsub_calls() == [] and not Path(str(site.db) + ".workers").exists()


def test_cli_reports_the_array_and_how_to_watch_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = Site(tmp_path)
    rc = workers_main(["--db", str(site.db), "-n", "3", "--parallel", "2", "--walltime", "1:00:00",
                       "--scheduler", "sge", "--scheduler-bin", str(site.bin),
                       "--jobauto", shlex.quote(str(site.jobauto)), "--", "bash", "run.sh"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "submitted 3 worker(s) on this machine as sge array job 4711" in text
    assert f"{site.jobauto} status {shlex.quote(str(site.db))}" in text
    assert "qdel 4711" in text and ".workers/worker-" in text


@pytest.mark.parametrize("argv,flag", [
    (["-n", "0"], "-n:"), (["--walltime", "90"], "--walltime:"), (["--scheduler", "lsf"], "--scheduler:"),
    (["--parallel", "0"], "--parallel:"), (["--qsub-args", "'x"], "--qsub-args:"),
    (["--walltime", "00:00:20"], "--walltime:"),
])
def test_cli_bad_input_exit_2_naming_the_flag(argv: list[str], flag: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert workers_main(["--db", "x.db", *argv, "--", "bash", "run.sh"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jobauto workers: error: ") and flag in err and len(err.splitlines()) == 1


def test_cli_missing_db_and_missing_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert workers_main(["-n", "2", "--", "bash", "run.sh"]) == 2
    assert "--db: is required" in capsys.readouterr().err
    assert workers_main(["--db", "x.db", "-n", "2"]) == 2
    assert "COMMAND: missing" in capsys.readouterr().err


def test_cli_unreachable_host_names_remote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host nowhere\n  HostName 127.0.0.1\n  Port 1\n  ConnectTimeout 5\n")
    assert workers_main(["--remote", "nowhere", "--ssh-config", str(cfg), "--db", "x.db",
                         "--", "bash", "run.sh"]) == 2
    err = capsys.readouterr().err
    assert "--remote: cannot reach nowhere" in err
