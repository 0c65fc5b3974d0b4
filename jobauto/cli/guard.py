"""What every command shares: its parser (help with an example and the exit codes), the guard
that turns an error into one line and an exit code, and the call of a "module:function" named
by a dispatch table. No command module imports another; dispatchers name them here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import NamedTuple

from jobauto.core.errors import JobautoError

EXIT = "exit codes: 0 success; 1 some jobs failed or cannot run; 2 bad usage or input"


def parser(prog: str, description: str, epilog: str, exit_codes: str = EXIT) -> argparse.ArgumentParser:
    """An argparse parser whose help ends with EPILOG (the examples) and then the exit codes."""
    return argparse.ArgumentParser(prog=prog, description=description,
                                   epilog=f"{epilog}\n\n{exit_codes}",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def guard(prog: str, fn: Callable[[], int]) -> int:
    """Run FN: a JobautoError becomes `PROG: error: ...` (and `PROG: hint: ...` when it carries
    one) on stderr and its exit code; Ctrl-C becomes 130."""
    try:
        return fn()
    except JobautoError as e:
        print(f"{prog}: error: {e.describe()}", file=sys.stderr)
        if e.hint:
            print(f"{prog}: hint: {e.hint}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


class Verb(NamedTuple):
    """A row of a dispatch table (name -> Verb)."""
    target: str     # "module:function", called with the arguments after the verb
    args: str       # the arguments, as the usage text shows them
    summary: str    # one line for the usage text


def command_line(left: str, summary: str, column: int) -> str:
    """A usage text's row: "  LEFT" then SUMMARY at COLUMN, or on the next line when LEFT is
    too long."""
    left = f"  {left}".rstrip()
    if len(left) < column - 1:
        return left.ljust(column) + summary
    return f"{left}\n{' ' * column}{summary}"


def resolve(target: str) -> Callable[..., int]:
    """The function TARGET, "module:function", names (its module imported only now)."""
    module, _, function = target.partition(":")
    fn: Callable[..., int] = getattr(importlib.import_module(module), function)
    return fn


def call(target: str, argv: list[str], prog: str | None = None) -> int:
    """Call TARGET, "module:function", with ARGV (and PROG when given)."""
    fn = resolve(target)
    return int(fn(argv) if prog is None else fn(argv, prog))
