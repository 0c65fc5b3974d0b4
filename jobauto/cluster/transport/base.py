"""The Transport protocol and the batch format shared by every transport.

A batch runs many commands in one round trip: the script travels on stdin, is written to a
temporary file and runs only once it arrived whole (its last line is a sentinel), so a cut
connection never runs half a command. Hang-ups are ignored: a batch that started finishes even
when the monitor dies or the connection drops, which is what makes submission recoverable.

The batch's own files (the script, each command's captured output) are private (umask 077), but
every command runs with the login's umask, remembered before it was tightened: a job started by
qsub/sbatch or the local scheduler inherits it, and its results must be as readable as the user
made them (a group's shared directory), not private to the user.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Protocol

from jobauto.core.errors import TransportError
from jobauto.core.model import Command, CommandResult
from jobauto.core.spent import Spent

SENTINEL = "# jobauto-end"
HEADER = re.compile(rb"@@jobauto (\d+) (-?\d+) +(\d+) +(\d+)\n")

GUARD = (
    'jobauto_umask=$(umask); umask 077; t=$(mktemp "${TMPDIR:-/tmp}/jobauto.XXXXXX") || exit 125; '
    "trap 'rm -f \"$t\" \"$t.o\" \"$t.e\"' EXIT; trap '' HUP PIPE; "
    'cat > "$t"; '
    f"[ \"$(tail -n 1 \"$t\")\" = '{SENTINEL}' ] || "
    '{ echo "jobauto: batch script arrived incomplete; nothing was run" >&2; exit 124; }; '
    '. "$t"'
)


def batch_argv() -> list[str]:
    return ["sh", "-c", GUARD]


def batch_script(commands: list[Command]) -> bytes:
    """Build the shell text that runs each command and frames its rc, stdout and stderr."""
    lines = ["LC_ALL=C; export LC_ALL"]
    for i, cmd in enumerate(commands):
        inner = shlex.join(cmd.argv)
        if cmd.cwd is not None:
            inner = f"cd -- {shlex.quote(cmd.cwd)} && exec {inner}"
        # the redirections are made under umask 077 before the subshell restores the login's
        lines.append(f'( umask "$jobauto_umask"; {inner} ) >"$t.o" 2>"$t.e" </dev/null; rc=$?')
        lines.append(f"printf '@@jobauto {i} %d %d %d\\n' \"$rc\" "
                     '"$(wc -c <"$t.o")" "$(wc -c <"$t.e")"; cat "$t.o" "$t.e"')
    lines.append(SENTINEL)
    return ("\n".join(lines) + "\n").encode()


def parse_batch(out: bytes, commands: list[Command]) -> list[CommandResult]:
    """Split framed batch output into one result per command (fewer if the output was cut)."""
    results: list[CommandResult] = []
    pos = 0
    while pos < len(out):
        m = HEADER.match(out, pos)
        if m is None:
            raise TransportError(f"garbled batch output near byte {pos}: {out[pos:pos + 80]!r}")
        i, rc, n_out, n_err = (int(g) for g in m.groups())
        start = m.end()
        if start + n_out + n_err > len(out) or i != len(results):
            break
        stdout = out[start:start + n_out]
        stderr = out[start + n_out:start + n_out + n_err].decode("utf-8", "replace")
        results.append(CommandResult(commands[i].argv, rc, stdout, stderr))
        pos = start + n_out + n_err
    return results


class BatchCut(TransportError):
    """A batch whose output stopped early: `partial` holds the results that did arrive."""

    def __init__(self, message: str, partial: list[CommandResult]) -> None:
        self.partial = partial
        super().__init__(message)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile an rsync-style glob: * stays within a directory, ** crosses, / anchors."""
    anchored = pattern.startswith("/")
    pat = pattern.lstrip("/")
    out, i = "", 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**", i):
            out += ".*"
            i += 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    return re.compile(("^" if anchored else "(^|.*/)") + out + "$")


class Transport(Protocol):
    """Run commands on the cluster and move files; the only place anything executes.

    `usage` is what this transport spent: every login goes through `usage.login(n)` before it
    is made (it may be refused by the --max-logins-per-hour gate), and the bytes each push or
    pull moved are added to `usage.bytes_pushed` / `usage.bytes_pulled` (core/spent.py)."""

    host: str
    usage: Spent

    def run(self, argv: list[str], *, cwd: str | None = None, stdin: bytes | None = None,
            timeout: float | None = None) -> CommandResult: ...

    def run_many(self, commands: list[Command], *, timeout: float | None = None) -> list[CommandResult]:
        """Run commands in one round trip; raise BatchCut with partial results if cut off."""
        ...

    def push(self, local: Path, remote: str, *, exclude: list[str] | None = None) -> None: ...

    def pull(self, remote: str, local: Path, *, include: list[str] | None = None,
             exclude: list[str] | None = None) -> None: ...

    def push_files(self, local: Path, remote: str, names: list[str]) -> None:
        """Copy just NAMES (relative to both directories) in one transfer."""
        ...

    def pull_files(self, remote: str, local: Path, names: list[str]) -> tuple[int, int]:
        """Bring just NAMES back in one transfer; return the number of files moved and their
        bytes, as the copying tool counted them."""
        ...

    def close(self) -> None: ...


def run_many_via(run, commands: list[Command], timeout: float | None) -> list[CommandResult]:  # type: ignore[no-untyped-def]
    """Implement run_many on top of a transport's run()."""
    if not commands:
        return []
    try:
        res = run(batch_argv(), stdin=batch_script(commands), timeout=timeout)
    except TransportError as e:
        partial = parse_batch(getattr(e, "stdout", b""), commands)
        raise BatchCut(f"{e.message} (after {len(partial)} of {len(commands)} commands)", partial) from e
    results = parse_batch(res.stdout, commands)
    if len(results) < len(commands):
        raise BatchCut(f"batch stopped after {len(results)} of {len(commands)} commands "
                       f"(rc {res.rc}): {res.stderr.strip()[-300:]}", results)
    return results
