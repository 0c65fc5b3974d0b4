"""The local scheduler adapter (jobauto/cluster/schedulers/local.py): ps as the queue, no
accounting, a cancel that ends the job's whole process group.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from helpers import out

from jobauto.cluster.schedulers.local import LocalAdapter
from jobauto.core.model import CommandResult


def test_local_adapter_parses_ps_and_has_no_accounting() -> None:
    a = LocalAdapter()
    q = a.parse_queue(CommandResult(("ps",), 0, b"  12 Ss\n  13 Z\n 14 R+\n"))
    assert set(q.entries) == {"12", "14"}
    assert a.acct_argv(["12"]) is None and a.parse_acct(out("")) == {}
    assert a.cancel_argv(["12", "14"])[-2:] == ["-12", "-14"]


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs util-linux setsid")
def test_local_cancel_ends_the_job_and_its_children(tmp_path: Path) -> None:
    """A real local job (its pid is its process group) and a child of it both end."""
    script = tmp_path / "qsub.1"
    script.write_text("#!/bin/sh\nsleep 300 &\necho $! > child\nwait\n")
    script.chmod(0o755)
    a = LocalAdapter()
    started = subprocess.run(a.submit_argv("qsub.1", "ja1_1", []), cwd=tmp_path, capture_output=True)
    pid = a.parse_submit(CommandResult((), started.returncode, started.stdout, started.stderr.decode()))
    deadline = time.monotonic() + 5
    while not (tmp_path / "child").exists() or not (tmp_path / "child").read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child = int((tmp_path / "child").read_text())
    assert os.getpgid(int(pid)) == int(pid) == os.getpgid(child)
    assert subprocess.run(a.cancel_argv([pid])).returncode == 0
    for p in (int(pid), child):
        while True:
            try:
                os.kill(p, 0)
            except ProcessLookupError:
                break
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":  # ended, not yet reaped by its parent
                break
            assert time.monotonic() < deadline + 5
            time.sleep(0.02)


def test_pull_never_writes_through_a_local_symbolic_link(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from jobauto.cluster.transport.local import LocalTransport
    remote, local, outside = tmp_path / "remote", tmp_path / "DATE", tmp_path / "outside"
    for d in (remote / "link", remote / "a", local / "a", outside):
        d.mkdir(parents=True)
    (remote / "link" / "qsub.finished.1").write_text("x")
    (remote / "a" / "out.txt").write_text("new")
    (remote / "ok.txt").write_text("ok")
    (local / "link").symlink_to(outside)                       # a directory link below DATE
    (outside / "victim").write_text("keep")
    (local / "a" / "out.txt").symlink_to(outside / "victim")   # a link at the file's own name
    LocalTransport().pull(str(remote), local)
    assert list(outside.iterdir()) == [outside / "victim"] and (outside / "victim").read_text() == "keep"
    assert (local / "ok.txt").read_text() == "ok"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 entries through a symbolic link" in err and "'link/qsub.finished.1'" in err


def test_a_copy_cut_before_its_mode_is_copied_again(tmp_path: Path) -> None:
    """kill -9 between copy2's content and its stat left a script of the right size and mtime
    (same second) but not executable: the next push must not skip it, or the local scheduler
    cannot run it and the job waits for ever for its marker."""
    from jobauto.cluster.transport.local import copy_tree
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "a").mkdir(parents=True)
    (src / "a" / "qsub.0").write_text("#!/bin/sh\ntrue\n")
    (src / "a" / "qsub.0").chmod(0o755)
    (dst / "a").mkdir(parents=True)
    shutil.copyfile(src / "a" / "qsub.0", dst / "a" / "qsub.0")   # content, no stat yet
    (dst / "a" / "qsub.0").chmod(0o644)
    t = (src / "a" / "qsub.0").stat().st_mtime
    os.utime(dst / "a" / "qsub.0", (t, t))
    copy_tree(src, dst, None, None)
    assert os.access(dst / "a" / "qsub.0", os.X_OK)
