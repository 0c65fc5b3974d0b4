"""The batch format every transport shares (jobauto/cluster/transport/base.py), run by the local
transport: the batch's own files are private, the commands get the login's umask.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobauto.cluster.transport.local import LocalTransport
from jobauto.core.model import Command


@pytest.fixture
def umask_027() -> Iterator[None]:
    """This process (the "login") with umask 027, a group-readable one."""
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_batch_commands_see_the_login_umask_and_the_batch_files_stay_private(
        umask_027: None, tmp_path: Path) -> None:
    res = LocalTransport().run_many([
        Command.of(["sh", "-c", "umask; touch made; stat -c %a made"], str(tmp_path)),
        # fd 1 is the batch's capture of this command's output: made under the tight umask
        Command.of(["stat", "-L", "-c", "%a", "/proc/self/fd/1"]),
    ])
    assert res[0].text.split() == ["0027", "640"]
    assert res[1].text.strip() == "600"
