"""A fake transport for fast unit tests: every command goes to a handler you supply."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from jobauto.cluster.transport.base import BatchCut
from jobauto.core.model import Command, CommandResult
from jobauto.core.spent import Spent

Handler = Callable[[Command], CommandResult]


class FakeTransport:
    """Run each command through `handler`; `cut_after` loses the answers after N results."""

    host = "fake"

    def __init__(self, handler: Handler, *, on_push: Callable[[Path, str], None] | None = None,
                 on_pull: Callable[[str, Path, list[str] | None], None] | None = None) -> None:
        self.handler = handler
        self.usage = Spent()
        self.on_push = on_push
        self.on_pull = on_pull
        self.cut_after: int | None = None
        self.down = False
        self.round_trips = 0
        self.commands: list[Command] = []
        self.pushed_files: list[list[str]] = []   # each push_files' names
        self.on_push_files: Callable[[Path, str, list[str]], None] | None = None
        self.on_pull_files: Callable[[str, Path, list[str]], tuple[int, int]] | None = None

    def _check(self) -> None:
        from jobauto.core.errors import TransportError
        if self.down:
            raise TransportError("fake connection is down")

    def run(self, argv: list[str], *, cwd: str | None = None, stdin: bytes | None = None,
            timeout: float | None = None) -> CommandResult:
        return self.run_many([Command.of(argv, cwd)])[0]

    def run_many(self, commands: list[Command], *, timeout: float | None = None) -> list[CommandResult]:
        self._check()
        self.round_trips += 1
        out: list[CommandResult] = []
        for cmd in commands:  # a batch that arrived runs whole, even if its answer is lost
            self.commands.append(cmd)
            out.append(self.handler(cmd))
        if self.cut_after is not None and self.cut_after < len(commands):
            n, self.cut_after, self.down = self.cut_after, None, True
            raise BatchCut(f"fake connection cut after {n} of {len(commands)} results", out[:n])
        return out

    def push(self, local: Path, remote: str, *, exclude: list[str] | None = None) -> None:
        self._check()
        if self.on_push:
            self.on_push(local, remote)

    def pull(self, remote: str, local: Path, *, include: list[str] | None = None,
             exclude: list[str] | None = None) -> None:
        self._check()
        if self.on_pull:
            self.on_pull(remote, local, include)

    def push_files(self, local: Path, remote: str, names: list[str]) -> None:
        self._check()
        self.pushed_files.append(list(names))
        if self.on_push_files:
            self.on_push_files(local, remote, names)
        elif self.on_push:
            self.on_push(local, remote)

    def pull_files(self, remote: str, local: Path, names: list[str]) -> tuple[int, int]:
        self._check()
        return self.on_pull_files(remote, local, names) if self.on_pull_files else (0, 0)

    def close(self) -> None:
        pass
