"""`jobauto fetch` and `jobauto clean` on the local scheduler: bad input is one line, exit 2, and
changes nothing; a run's fetch and clean through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import jobauto, jobmon, make_job


@pytest.fixture
def done_run(tmp_path: Path) -> Path:
    ldir = tmp_path / "camp"
    make_job(ldir / "init", "a/qsub.0", body="head -c 3000 /dev/zero > big.bin")
    jobmon(f"--ldir={ldir}", f"--rdir={tmp_path}/remote", "--scheduler=local", "--interval=0.2",
           "--datedir=r", timeout=60, check_rc=0)
    return ldir / "r"


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("argv, expect", [
    (["fetch", "{tmp}"], "not a jobmon run directory"),
    (["fetch", "{run}", "../x"], "GLOB: '../x' is not a glob of files below the run"),
    (["fetch", "{run}", "--bogus"], "unrecognized arguments: --bogus"),
    (["clean", "{run}"], "the following arguments are required: --remote"),
    (["clean", "{tmp}", "--remote"], "not a jobmon run directory"),
])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(done_run: Path, tmp_path: Path,
                                                          argv: list[str], expect: str) -> None:
    before = files(tmp_path)
    p = jobauto(*[a.format(tmp=tmp_path, run=done_run) for a in argv])
    assert p.returncode == 2 and expect in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert [ln for ln in p.stderr.splitlines() if ln.startswith("jobauto")] == p.stderr.splitlines()[-1:]
    assert files(tmp_path) == before


def test_fetch_then_clean_on_this_machine(done_run: Path, tmp_path: Path) -> None:
    p = jobauto("fetch", str(done_run), "--all", check_rc=0)
    assert "1 file(s), 3000 bytes (2.9 KiB) to fetch" in p.stdout
    assert "fetched 1 file(s), 3000 bytes (2.9 KiB)" in p.stdout
    assert (done_run / "a/big.bin").stat().st_size == 3000
    p = jobauto("clean", str(done_run), "--remote", check_rc=0)
    assert "removed localhost:" in p.stdout and not (tmp_path / "remote/r").exists()
