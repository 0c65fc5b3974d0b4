"""Writing local files (jobauto/core/files.py)."""

from __future__ import annotations

from pathlib import Path

from jobauto.core.files import write_atomic


def test_atomic_write_leaves_no_temp(tmp_path: Path) -> None:
    write_atomic(tmp_path / "quelist", "a\n")
    write_atomic(tmp_path / "quelist", "b\n")
    assert (tmp_path / "quelist").read_text() == "b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quelist"]
