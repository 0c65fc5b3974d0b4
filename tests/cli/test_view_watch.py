"""`jobauto status --watch` (jobauto/cli/view.py) on a real terminal: tmux runs it in a detached 120x40 pane while a
table worker or a jobmon run makes progress, and the pane is read with `capture-pane`.

What a user must see: the numbers move, and the view is redrawn in place — exactly one copy on
the screen and in the scrollback at every moment (no stacked copies, no blank frame).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import chain

ROWS, COLS = 40, 120
INTERVAL = "0.3"
SLEEP_S = 0.7


class Tmux:
    """A private tmux server (its own socket), killed at the end."""

    def __init__(self) -> None:
        self.socket = f"jobauto-test-{os.getpid()}"

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)

    def start(self, name: str, command: str, cwd: Path) -> None:
        # the shell stays after the command so that an early exit is seen, not a vanished pane
        r = self("new-session", "-d", "-x", str(COLS), "-y", str(ROWS), "-s", name, "-c", str(cwd),
                 f"{command}; echo STATUS-EXITED $?; sleep 600")
        assert r.returncode == 0, r.stderr

    def screen(self, name: str) -> str:
        r = self("capture-pane", "-p", "-t", name)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def history(self, name: str) -> str:
        """The scrollback and the screen."""
        r = self("capture-pane", "-p", "-S", "-", "-t", name)
        assert r.returncode == 0, r.stderr
        return r.stdout


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is not installed (CI installs it: apt-get install tmux)")
        pytest.skip("tmux is not installed")
    t = Tmux()
    try:
        yield t
    finally:
        t("kill-server")


def done_count(screen: str) -> int | None:
    m = re.search(r"^Done:?\s+(\d+)\s", screen, re.M)   # rich view "Done  3", plain "Done: 3"
    return int(m.group(1)) if m else None


def first_frame(tmux: Tmux, name: str) -> None:
    deadline = time.monotonic() + 30
    while done_count(tmux.screen(name)) is None:
        assert time.monotonic() < deadline, tmux.screen(name)
        time.sleep(0.05)


def watch(tmux: Tmux, name: str, title: str, total: int, finished: subprocess.Popen[bytes],
          timeout: float = 120) -> list[str]:
    """Capture the pane until it shows all `total` jobs done and the driver has exited; check
    every capture on the way."""
    screens: list[str] = []
    deadline = time.monotonic() + timeout
    exited_at: float | None = None
    while time.monotonic() < deadline:
        screen = tmux.screen(name)
        assert "STATUS-EXITED" not in screen, screen
        screens.append(screen)
        # one title line in every capture: redrawn in place, never stacked, never blank
        assert sum(title in ln for ln in screen.splitlines()) == 1, screen
        if exited_at is None and finished.poll() is not None:
            exited_at = time.monotonic()
        # the last capture is one the view drew after the driver exited (it redraws each
        # INTERVAL: a capture of the same instant still showed the driver running, under load)
        if done_count(screen) == total and exited_at is not None and \
                time.monotonic() - exited_at > 2 * float(INTERVAL) + 0.5:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the view never showed {total} done:\n{screens[-1] if screens else ''}")
    history = tmux.history(name)
    assert sum(title in ln for ln in history.splitlines()) == 1, history
    return screens


@pytest.mark.parametrize("no_color", [False, True], ids=["rich", "NO_COLOR"])
def test_watch_a_table_redraws_in_place(tmp_path: Path, tmux: Tmux, no_color: bool) -> None:
    """With NO_COLOR the view is the plain text, and it is still redrawn in place."""
    (tmp_path / "run.sh").write_text(f"#!/bin/sh\nsleep {SLEEP_S}\n")
    (tmp_path / "w.csv").write_text("JOBSCHEDULER_JOB_ID,n\n" + "".join(f"j{i},{i}\n" for i in range(8)))
    r = subprocess.run(["jobauto", "import", "w.csv"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    env = "NO_COLOR=1 " if no_color else ""
    # a path relative to the pane's directory: a long tmp_path (pytest-xdist adds popen-gwN/)
    # would wrap the title line at 120 columns
    tmux.start("table", f"{env}jobauto status w.db --watch --interval {INTERVAL}", tmp_path)
    first_frame(tmux, "table")     # drawn before any work starts
    worker = subprocess.Popen(["jobauto", "run", "w.db", "bash run.sh", "--parallel", "1"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        screens = watch(tmux, "table", "w.db", 8, worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.wait(30) == 0
    counts = [done_count(s) for s in screens]
    assert None not in counts and counts == sorted(counts)   # type: ignore[type-var]
    assert len(set(counts)) >= 3, counts
    assert counts[0] == 0 and counts[-1] == 8
    running = r"^\s*j\d\s+worker 1 \S+:\d+\s" if no_color else r"^j\d\s+1 \S+:\d+\s"
    assert any(re.search(running, s, re.M) for s in screens)  # a running job, its worker
    assert "0 worker(s) alive" in screens[-1]
    assert ("done (100%)" if no_color else "100% done") in screens[-1]
    assert ("\x1b[" in tmux("capture-pane", "-e", "-p", "-t", "table").stdout) != no_color


def test_watch_a_run_redraws_in_place(tmp_path: Path, tmux: Tmux) -> None:
    ldir = tmp_path / "camp"
    chain(ldir / "init", "a", 5, body=f"sleep {SLEEP_S}")
    run = ldir / "r"
    out = tmp_path / "mon.out"
    mon = subprocess.Popen(["jobmon", f"--ldir={ldir}", f"--rdir={tmp_path}/remote",
                            "--scheduler=local", "--interval=0.3", "--datedir=r"],
                           stdout=out.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (run / ".jobauto/state.db").exists():
            assert time.monotonic() < deadline and mon.poll() is None, out.read_text()
            time.sleep(0.05)
        tmux.start("run", f"jobauto status {run.relative_to(tmp_path)} --watch --interval {INTERVAL}",
                   tmp_path)   # relative: a long tmp_path would wrap the title line
        first_frame(tmux, "run")
        screens = watch(tmux, "run", str(run.relative_to(tmp_path)), 5, mon)
        assert mon.wait(30) == 0, out.read_text()
    finally:
        if mon.poll() is None:
            mon.send_signal(signal.SIGTERM)
            mon.wait(30)
    counts = [done_count(s) for s in screens]
    assert None not in counts and counts == sorted(counts)   # type: ignore[type-var]
    assert len(set(counts)) >= 3, counts
    assert any("Monitor: jobmon running (" in s for s in screens)
    assert any(re.search(r"^a/qsub\.\d\s+\d+\s", s, re.M) for s in screens)  # running, its job id
    assert "Monitor: jobmon not running" in screens[-1] and "100% done" in screens[-1]
