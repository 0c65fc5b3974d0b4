"""Writing local files (jobauto/core/files.py): the one writer, and the one way in for what the
cluster sends below a run directory."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobauto.core.errors import PathError
from jobauto.core.files import (
    TMP_TAG,
    check_name,
    read_head,
    write_atomic,
    write_below,
    write_from_cluster,
)


def test_atomic_write_leaves_no_temp(tmp_path: Path) -> None:
    write_atomic(tmp_path / "quelist", "a\n")
    write_atomic(tmp_path / "quelist", "b\n")
    assert (tmp_path / "quelist").read_text() == "b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quelist"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    write_atomic(tmp_path / "quelist", "old\n")
    real = os.write
    calls = []

    def full(fd: int, data: bytes) -> int:
        calls.append(fd)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, bytes(data)[:3])   # a part is written, then the disk is full

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(tmp_path / "quelist", "a new quelist\n")
    with pytest.raises(OSError, match="No space left"):
        calls.clear()
        write_below(tmp_path, "a/qsub.finished.0", b"marker text")
    monkeypatch.undo()
    assert (tmp_path / "quelist").read_text() == "old\n"
    assert not [p for p in tmp_path.rglob("*") if TMP_TAG in p.name]


def test_a_directory_in_the_way_is_an_error_and_leaves_no_temp(tmp_path: Path) -> None:
    (tmp_path / "quelist").mkdir()
    (tmp_path / ".quelist.tmp").mkdir()     # the old fixed temporary name: no longer in the way
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path / "quelist", "x\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".quelist.tmp", "quelist"]
    (tmp_path / "quelist").rmdir()
    write_atomic(tmp_path / "quelist", "x\n")
    assert (tmp_path / "quelist").read_text() == "x\n"


def test_write_below_makes_directories_and_sets_the_mtime(tmp_path: Path) -> None:
    assert write_below(tmp_path, "./Si/x/qsub.finished.0", b"", mtime=1_700_000_000.0)
    assert (tmp_path / "Si/x/qsub.finished.0").stat().st_mtime == 1_700_000_000.0
    assert write_below(tmp_path, "Si/qsub.dependency.0", b"a\n", only_new=True)
    assert not write_below(tmp_path, "Si/qsub.dependency.0", b"b\n", only_new=True)
    assert (tmp_path / "Si/qsub.dependency.0").read_bytes() == b"a\n"
    write_below(tmp_path, "Si/x/qsub.finished.0", b"again", mtime=0.0)  # 0: the time is now
    assert (tmp_path / "Si/x/qsub.finished.0").stat().st_mtime > 1_700_000_000.0


def test_never_through_a_symbolic_link_below_the_run(tmp_path: Path) -> None:
    run, outside = tmp_path / "run", tmp_path / "outside"
    run.mkdir()
    outside.mkdir()
    (run / "Si").mkdir()
    (run / "link").symlink_to(outside)
    (run / "Si" / "deep").symlink_to(outside)
    (run / "Si" / "qsub.finished.0").symlink_to(outside / "target")
    for rel in ("link/qsub.finished.1", "link/new/qsub.finished.1", "Si/deep/qsub.finished.1"):
        with pytest.raises(PathError, match="is a symbolic link"):
            write_below(run, rel, b"x")
        with pytest.raises(PathError, match="is a symbolic link"):
            read_head(run, rel, 10)
    # a link as the file itself is replaced, never written through
    write_below(run, "Si/qsub.finished.0", b"mine")
    assert not (run / "Si" / "qsub.finished.0").is_symlink()
    assert list(outside.iterdir()) == []
    # the run directory itself may be reached through a link: the user chose it
    (tmp_path / "alias").symlink_to(run)
    write_below(tmp_path / "alias", "Si/qsub.failed.0", b"3\n")
    assert read_head(run, "Si/qsub.failed.0", 10) == b"3\n"


@pytest.mark.parametrize("rel,why", [
    ("../x", "leaves the run"), ("a/../../x", "leaves the run"), ("/etc/x", "absolute"),
    (".jobauto/state.db", "state directory"), ("a/.jobauto/x", "state directory"),
    ("a\nb", "line break"), ("a\0b", "NUL"), ("", "empty"), (".", "run directory itself"),
    ("x" * 256, "over 255 bytes"), ("a/" * 2049, "bytes long"), ("a\udcff\ud800", "not valid text"),
])
def test_names_that_may_not_be_written(tmp_path: Path, rel: str, why: str) -> None:
    with pytest.raises(PathError, match=why):
        write_below(tmp_path, rel, b"x")
    assert list(tmp_path.iterdir()) == []


def test_remote_content_only_under_the_names_the_scan_asks_for(tmp_path: Path) -> None:
    for rel in ("a/out.dat", "a/run.sh", "a/quelist", "quelist"):
        with pytest.raises(PathError, match="not a marker"):
            write_from_cluster(tmp_path, rel, b"x")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "qsub.0").write_text("edited here\n")
    assert not write_from_cluster(tmp_path, "a/qsub.0", b"from the cluster\n")  # local wins
    assert write_from_cluster(tmp_path, "a/qsub.failed.0", b"1\n")
    assert write_from_cluster(tmp_path, "a/qsub.failed.0", b"2\n")              # markers replace
    assert (tmp_path / "a" / "qsub.0").read_text() == "edited here\n"
    assert (tmp_path / "a" / "qsub.failed.0").read_text() == "2\n"


def test_read_head_reads_a_bounded_head_and_refuses_what_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 100_000)
    assert read_head(tmp_path, "big", 4096) == b"x" * 4096
    with pytest.raises(FileNotFoundError):
        read_head(tmp_path, "missing/qsub.failed.0", 10)
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "fifo")          # a plain open would wait for a writer for ever
    for rel, what in (("d", "a directory"), ("fifo", "a FIFO")):
        with pytest.raises(PathError, match=f"it is {what}, not a file"):
            read_head(tmp_path, rel, 10)
    (tmp_path / "zero").symlink_to("/dev/zero")
    with pytest.raises(PathError, match="symbolic link"):
        read_head(tmp_path, "zero", 10)


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_check_name_takes_any_text(rel: str) -> None:
    try:
        norm = check_name(rel)
    except PathError:
        return
    parts = norm.split("/")
    assert not norm.startswith("/") and ".." not in parts and ".jobauto" not in parts
    assert "" not in parts and "." not in parts and check_name(norm) == norm
