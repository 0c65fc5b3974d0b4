"""What every command shares: its parser (help with an example and the exit codes), the guard
that turns an error into one line and an exit code, and the call of a "module:function" named
by a dispatch table. No command module imports another; dispatchers name them here."""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, NoReturn

from jobauto.core.errors import JobautoError

EXIT = "exit codes: 0 success; 1 some jobs failed or cannot run; 2 bad usage or input"
# A command that only looks (status) ends 0 whatever the jobs did, as qstat and squeue do: it
# did its work, and a failed job is what it shows, not a failure of its own (docs/decisions.md).
EXIT_VIEW = ("exit codes: 0 shown, whatever the jobs' states (to test for failed jobs in a script:\n"
             "  jobauto status DB --json | jq -e '.counts.error == 0'); 2 bad usage or input;\n"
             "  130 --watch stopped with Ctrl-C")
# The reader of our output went away (`jobauto status DB | head -1`): end as `cat` would when
# SIGPIPE kills it, 128 + 13, quietly (docs/decisions.md "A closed pipe").
EXIT_PIPE = 141


@functools.cache
def version() -> str:
    """What every command's --version prints: "jobauto X.Y.Z", the installed distribution's
    version, else (run from a source tree) the package's own."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed
    try:
        number = installed("jobauto")
    except PackageNotFoundError:
        from jobauto import __version__ as number
    return f"jobauto {number}"


class Built(Exception):  # noqa: N818 (a signal, not an error)
    """Raised instead of parsing while `built` asks a command for its parser."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


_building = False   # set by `built`: a parser stops its command where it would parse


class Parser(argparse.ArgumentParser):
    """argparse, except that --help into a pipe already closed ends quietly too, and that
    `built` may take the parser a command makes (shell completion) instead of running it."""

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            status = closed_pipe()
        super().exit(status, message)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        if _building:
            raise Built(self)
        return super().parse_known_args(args, namespace)


def parser(prog: str, description: str, epilog: str, exit_codes: str = EXIT) -> argparse.ArgumentParser:
    """An argparse parser whose help ends with EPILOG (the examples) and then the exit codes,
    and which answers --version."""
    p = Parser(prog=prog, description=description, epilog=f"{epilog}\n\n{exit_codes}",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action=Version, help="print the version (jobauto X.Y.Z) and exit")
    return p


class Version(argparse.Action):
    """--version: argparse's, except that the version is looked up only when asked for
    (importlib.metadata costs every command tens of milliseconds at start)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(version())
        parser.exit()


def built(target: str, prog: str | None = None) -> argparse.ArgumentParser:
    """The parser that TARGET, a command's "module:function", builds, without running the
    command: the same function makes the parser a user's arguments meet and the one shell
    completion is made from, so the two cannot differ."""
    global _building
    _building = True
    try:
        call(target, [], prog)
    except Built as b:
        return b.parser
    finally:
        _building = False
    raise RuntimeError(f"{target} returned without building its parser")


def tree(prog: str, description: str, verbs: dict[str, Verb], *, named: bool = False
         ) -> argparse.ArgumentParser:
    """One parser with a sub-parser per verb, each the verb's own (`built`, called as the
    dispatcher calls it: NAMED passes "PROG VERB" as its prog): what shell completion is made
    from for a command that dispatches to verbs (jobauto, db_util)."""
    p = parser(prog, description, "", "")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    for name, verb in verbs.items():
        own = built(verb.target, f"{prog} {name}" if named else None)
        sub.add_parser(name, help=verb.summary, parents=[own], add_help=False,
                       description=verb.summary)
    return p


def guard(prog: str, fn: Callable[[], int]) -> int:
    """Run FN: a JobautoError becomes `PROG: error: ...` (and `PROG: hint: ...` when it carries
    one) on stderr and its exit code; Ctrl-C becomes 130; a reader of stdout that went away
    (`| head`) becomes a quiet 141."""
    try:
        rc = fn()
        sys.stdout.flush()  # what is still buffered fails here, not in the interpreter's exit
        return rc
    except JobautoError as e:
        print(f"{prog}: error: {e.describe()}", file=sys.stderr)
        if e.hint:
            print(f"{prog}: hint: {e.hint}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        if not (reader_gone(sys.stdout) or reader_gone(sys.stderr)):
            raise  # a pipe of our own (a subprocess, a socket): a bug to see, not to hide
        return closed_pipe()


def reader_gone(stream: object) -> bool:
    """Whether STREAM is a pipe whose reading end is closed (poll: POLLERR, POLLHUP on BSD)."""
    try:
        import select
        poll = select.poll()
        poll.register(stream.fileno(), select.POLLOUT)  # type: ignore[attr-defined]
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poll.poll(0))
    except (AttributeError, OSError, ValueError):   # no fd (captured), no poll (Windows)
        return False


def closed_pipe() -> int:
    """Point stdout (and stderr, when its reader is gone too) at /dev/null, so that what is
    still buffered does not fail again at exit; return EXIT_PIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is sys.stdout or reader_gone(stream):
                try:
                    os.dup2(devnull, stream.fileno())
                except (AttributeError, OSError, ValueError):
                    pass   # not a file descriptor (captured by a test): nothing left to fail
    finally:
        os.close(devnull)
    return EXIT_PIPE


def say(text: str) -> int:
    """Print TEXT outside a guard (usage texts), quietly when the reader went away; return 0
    (EXIT_PIPE if it did)."""
    try:
        print(text, flush=True)
        return 0
    except BrokenPipeError:
        return closed_pipe()


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
