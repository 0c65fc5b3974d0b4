"""`jobauto status` (also `progress_viewer` and `db_util stats`): one view of a run or a table."""

from __future__ import annotations

import sys
import time
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
               "  jobauto status experiments.db --json | jq .counts", EXIT_VIEW)
    p.add_argument("target", type=Path, help=TARGET)
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
        if args.target.is_file():
            # read-only, but the place to learn it early (`jobauto workers` checks a table so)
            from jobauto.store.sqlite import require_shared_locks
            require_shared_locks(args.target, unsafe_fs=args.unsafe_fs)
        from jobauto.view.campaign import gather, user_tty
        from jobauto.view.status import render_json, render_rich, render_text
        n = {"failures": args.failures, "running": args.running}
        if args.json or not sys.stdout.isatty():
            # JSON: one object per line; text: one view per refresh, a blank line between
            between = "" if args.json else "\n"
            while True:
                c = gather(args.target, summary=True)
                print(render_json(c) if args.json else render_text(c, **n), flush=True)
                if not args.watch:
                    return 0
                print(between, end="", flush=True)
                time.sleep(interval)
        from rich.console import Console
        from rich.text import Text
        colour = user_tty(sys.stdout)   # NO_COLOR: the plain text, still redrawn in place

        def view() -> Any:
            c = gather(args.target, summary=True)
            return render_rich(c, **n) if colour else Text(render_text(c, **n))

        console = Console(no_color=not colour)
        if not args.watch:
            console.print(view())
            return 0
        from rich.live import Live
        # Live rewrites the lines it drew in place (cursor up, overwrite): no clear, no flicker
        with Live(view(), console=console, auto_refresh=False, redirect_stdout=False) as live:
            while True:
                time.sleep(interval)
                live.update(view(), refresh=True)
    return guard(prog, go)

