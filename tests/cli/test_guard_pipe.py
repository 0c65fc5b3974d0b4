"""A reader that went away (`jobauto status DB | head -1`): every command that prints ends
quietly with 141, as `cat` killed by SIGPIPE would, through the one guard (jobauto/cli/guard.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import FAN_IN, failing_tree, import_table, jobmon

from jobauto.cli import guard

PIPE_EXIT = 141


def into_closed_pipe(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ARGV with stdout a pipe whose reader has already gone (head -1 that has its line)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(list(argv), cwd=cwd, stdout=write, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True, timeout=60)
    finally:
        os.close(write)


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A job table and a finished run (one job failed, two blocked)."""
    tmp_path = tmp_path_factory.mktemp("pipe")
    db = import_table(tmp_path, FAN_IN)
    failing_tree(tmp_path / "L/init")
    jobmon("--ldir=L", f"--rdir={tmp_path / 'R'}", "--scheduler=local", "--interval=1",
           cwd=tmp_path, check_rc=1)
    (run,) = (tmp_path / "L").glob("2*")
    return db, run


COMMANDS = [("status", "{db}"), ("status", "{run}"), ("status", "{db}", "--json"),
            ("status", "{run}", "--json"), ("status", "{db}", "--watch", "--interval", "0.2"),
            ("status", "{run}", "--watch", "--json", "--interval", "0.2"),
            ("export", "{db}", "-"), ("export", "{db}", "-", "--spreadsheet-safe"),
            ("graph", "{run}"), ("explain", "{run}", "Si/qsub.0"), ("version",), ("--help",)]


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_a_closed_pipe_ends_quietly(targets: tuple[Path, Path], argv: tuple[str, ...]) -> None:
    db, run = targets
    args = [a.format(db=db, run=run) for a in argv]
    r = into_closed_pipe("jobauto", *args, cwd=db.parent)
    assert "Traceback" not in r.stderr and "Broken pipe" not in r.stderr, r.stderr
    assert r.stderr == "" or argv[0] == "graph", r.stderr   # graph's caption goes to stderr
    assert r.returncode == PIPE_EXIT


@pytest.mark.parametrize("argv", [("db_util",), ("db_util", "stats", "{db}"),
                                  ("progress_viewer", "{db}"), ("db_util", "export", "{db}", "-")])
def test_the_seed_commands_too(targets: tuple[Path, Path], argv: tuple[str, ...]) -> None:
    db, run = targets
    r = into_closed_pipe(*[a.format(db=db, run=run) for a in argv], cwd=db.parent)
    assert (r.returncode, r.stderr) == (PIPE_EXIT, "")


def test_head_sees_the_first_line_and_nothing_is_said_on_stderr(targets: tuple[Path, Path]) -> None:
    db, _ = targets
    r = subprocess.run(f"set -o pipefail; jobauto status {db} --watch --interval 0.2 | head -1",
                       shell=True, executable="bash", capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith(f"{db}: 4 jobs") and r.stdout.count("\n") == 1, r.stdout
    assert (r.returncode, r.stderr) == (PIPE_EXIT, "")


def test_a_broken_pipe_of_another_kind_is_not_hidden(capsys: pytest.CaptureFixture[str]) -> None:
    def fn() -> int:
        raise BrokenPipeError(32, "Broken pipe")  # e.g. a subprocess that went away: a bug to see
    with pytest.raises(BrokenPipeError):
        guard.guard("jobauto test", fn)
