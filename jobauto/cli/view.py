"""`jobauto status` (also `progress_viewer` and `db_util stats`): one view of a run or a table;
`jobauto runs` (and `jobauto status LDIR`): every run of a campaign directory."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobauto.cli.common import TARGET, add_unsafe_fs
from jobauto.cli.guard import EXIT_VIEW, guard, parser


def status_main(argv: list[str], prog: str = "jobauto status") -> int:
    p = parser(prog, "Show a run or a job table: counts by state with Ready / Waiting / Blocked, "
               "a progress bar, running jobs with their scheduler id or worker and elapsed time, "
               "the last failures with verdict and reason, throughput and time left. Read-only: "
               "safe while jobmon or workers run. Plain text when stdout is not a terminal or "
               "NO_COLOR is set.",
               "examples:\n  jobauto status experiments.db\n"
               "  jobauto status foobar/20261121-100000 --watch\n"
               "  jobauto status foobar                           # every run of the campaign\n"
               "  jobauto status experiments.db --json | jq .counts", EXIT_VIEW)
    p.add_argument("target", type=Path, help=TARGET + "; or a campaign directory LDIR: every "
                   "run in it, as jobauto runs shows them")
    p.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    p.add_argument("--interval", default="2", help="seconds between refreshes (default 2; 0.1 to 86400)")
    p.add_argument("--json", action="store_true",
                   help="print JSON (with --watch: one object per line, per refresh)")
    p.add_argument("--failures", type=int, default=5, metavar="N", help="last failures shown (5)")
    p.add_argument("--running", type=int, default=10, metavar="N", help="running jobs shown (10)")
    add_unsafe_fs(p)
    args = p.parse_args(argv)

    def go() -> int:
        from jobauto.core.config import setting
        interval = float(setting("refresh", args.interval, name="--interval"))
        from jobauto.core.layout import state_db
        from jobauto.view.runs import is_ldir
        if args.target.is_dir() and not state_db(args.target).exists() and is_ldir(args.target):
            return show_runs(args.target, args.json, args.watch, interval)
        if args.target.is_file():
            # read-only, but the place to learn it early (`jobauto workers` checks a table so)
            from jobauto.store.sqlite import require_shared_locks
            require_shared_locks(args.target, unsafe_fs=args.unsafe_fs)
        from jobauto.view.campaign import gather
        from jobauto.view.status import render_json, render_rich, render_text
        n = {"failures": args.failures, "running": args.running}

        def plain() -> str:
            c = gather(args.target, summary=True)
            return render_json(c) if args.json else render_text(c, **n)
        return present(plain, lambda: render_rich(gather(args.target, summary=True), **n),
                       args.json, args.watch, interval)
    return guard(prog, go)



RUNS_HELP = (
    "List every run of a campaign directory LDIR (each LDIR/DATE): its state -- running (with "
    "the monitor's pid), stopped (no monitor, work left: resume it), finished (every job "
    "done), failed (no monitor and nothing can run: errors, blocked or stuck jobs), creating, "
    "or damaged (its state cannot be read, and why) -- its counts, its last activity (the "
    "latest event in its store, or quelist's time) and its directory on the cluster. "
    "Read-only: takes no lock and writes nothing, safe while monitors run. `jobauto status "
    "LDIR` shows the same list. A rich table on a terminal, plain text otherwise.",
    "examples:\n  jobauto runs                          # the runs in the current directory\n"
    "  jobauto runs foobar\n"
    "  jobauto runs foobar --json | jq -r '.runs[] | select(.state == \"stopped\") | .path'",
    "exit codes: 0 shown, whatever the runs' states (a damaged run is a row saying so); "
    "2 bad usage\n  or input (LDIR is not a directory)")


def runs_main(argv: list[str], prog: str = "jobauto runs") -> int:
    p = parser(prog, *RUNS_HELP)
    p.add_argument("ldir", type=Path, nargs="?", default=Path("."), metavar="LDIR",
                   help="the campaign directory holding init/ and the runs (default: .)")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object: {"ldir": ..., "runs": [...]} (docs/resume.md)')
    p.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    p.add_argument("--interval", default="2", help="seconds between refreshes (default 2; 0.1 to 86400)")
    args = p.parse_args(argv)

    def go() -> int:
        from jobauto.core.config import setting
        interval = float(setting("refresh", args.interval, name="--interval"))
        return show_runs(args.ldir, args.json, args.watch, interval)
    return guard(prog, go)


def show_runs(ldir: Path, as_json: bool, watch: bool, interval: float) -> int:
    """Print the runs of LDIR once, or every INTERVAL seconds with WATCH (as status does)."""
    from jobauto.view.runs import list_runs, render_json, render_rich, render_text

    def plain() -> str:
        rows = list_runs(ldir)
        return render_json(ldir, rows) if as_json else render_text(ldir, rows)
    return present(plain, lambda: render_rich(ldir, list_runs(ldir)), as_json, watch, interval)


def present(plain: Callable[[], str], rich: Callable[[], Any], as_json: bool, watch: bool,
            interval: float) -> int:
    """Show a view once, or every INTERVAL seconds with WATCH: PLAIN's text (or JSON) in a pipe,
    one per refresh (JSON one object per line, text views a blank line apart); on a terminal
    RICH's renderable (PLAIN's text with NO_COLOR), redrawn in place."""
    if as_json or not sys.stdout.isatty():
        while True:
            print(plain(), flush=True)
            if not watch:
                return 0
            print("" if as_json else "\n", end="", flush=True)
            time.sleep(interval)
    from rich.console import Console
    from rich.text import Text

    from jobauto.view.campaign import user_tty
    colour = user_tty(sys.stdout)   # NO_COLOR: the plain text, still redrawn in place

    def view() -> Any:
        return rich() if colour else Text(plain())

    console = Console(no_color=not colour)
    if not watch:
        console.print(view())
        return 0
    from rich.live import Live
    # Live rewrites the lines it drew in place (cursor up, overwrite): no clear, no flicker
    with Live(view(), console=console, auto_refresh=False, redirect_stdout=False) as live:
        while True:
            time.sleep(interval)
            live.update(view(), refresh=True)
