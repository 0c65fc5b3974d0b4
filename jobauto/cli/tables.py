"""The job-table verbs (`jobauto import|add|export|reset|run`) and the seed-compatible
commands `db_util`, `job_scheduler` and `progress_viewer`, which take the same arguments
(`db_util stats` and `progress_viewer` are `jobauto status`, named in the verb table)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobauto.cli.common import add_unsafe_fs
from jobauto.cli.guard import EXIT, Verb, call, command_line, guard, parser, say, tree, version


# -- import / add / export / reset -------------------------------------------------------------
def import_main(argv: list[str], prog: str = "jobauto import") -> int:
    p = parser(prog, "Create a job table from a CSV file. The whole file is checked first; "
               "nothing is written when anything is wrong.",
               "examples:\n  jobauto import experiments.csv                # writes experiments.db\n"
               "  jobauto import sweep.csv /scratch/me/sweep.db")
    p.add_argument("csv", type=Path, help="the CSV: parameter columns plus optional "
                   "JOBSCHEDULER_JOB_ID, _PRIORITY, _ESTIMATE_TIME (hours), _DEPENDS_ON")
    p.add_argument("db", type=Path, nargs="?", help="the table file (default: CSV with .db)")
    add_unsafe_fs(p)
    args = p.parse_args(argv)

    def go() -> int:
        from jobauto.table.ops import import_csv
        db, n = import_csv(args.csv, args.db, unsafe_fs=args.unsafe_fs)
        print(f"{prog}: {n} jobs from {args.csv} into {db}")
        return 0
    return guard(prog, go)


def add_main(argv: list[str], prog: str = "jobauto add") -> int:
    p = parser(prog, "Add the jobs of a CSV to an existing table (also while workers run). "
               "The CSV has the table's parameter columns; dependencies may name jobs already "
               "in the table.", "example:\n  jobauto add experiments.db new_jobs.csv")
    p.add_argument("db", type=Path)
    p.add_argument("csv", type=Path)
    add_unsafe_fs(p)
    args = p.parse_args(argv)

    def go() -> int:
        from jobauto.table.ops import add_csv
        n = add_csv(args.db, args.csv, unsafe_fs=args.unsafe_fs)
        print(f"{prog}: {n} jobs from {args.csv} added to {args.db}")
        return 0
    return guard(prog, go)


def export_main(argv: list[str], prog: str = "jobauto export") -> int:
    p = parser(prog, "Write the table as CSV: the imported columns, then JOBSCHEDULER_STATUS, "
               "_EXIT_CODE, _ELAPSED (s), _ATTEMPTS and _ERROR. The file imports again.",
               "examples:\n  jobauto export experiments.db                  # writes experiments.csv\n"
               "  jobauto export experiments.db error.csv --status error\n"
               "  jobauto export experiments.db - | column -s, -t      # to stdout\n"
               "  jobauto export experiments.db for-excel.csv --spreadsheet-safe",
               "exit codes: 0 written; 2 bad usage or input")
    p.add_argument("db", type=Path)
    p.add_argument("out", nargs="?",
                   help="output CSV (default: DB with .csv); - for stdout (./- for a file named -)")
    p.add_argument("--status", action="append", default=[],
                   help="only jobs in this state: pending, running, done, error (repeatable)")
    p.add_argument("--spreadsheet-safe", action="store_true",
                   help="for opening in Excel, LibreOffice or Google Sheets: put a single quote "
                        "(') before every cell that starts with = + - @ (or their full-width "
                        "forms), a tab or a carriage return (plain numbers such as -1.5 excepted), so that the spreadsheet "
                        "shows it as text and never runs it as a formula (OWASP \"CSV "
                        "injection\"). The file is then for reading: imported again, such cells "
                        "keep their quote")
    args = p.parse_args(argv)

    def go() -> int:
        from jobauto.table.ops import export
        if args.out == "-":
            import codecs
            import io
            stream = sys.stdout
            if isinstance(stream, io.TextIOWrapper) and codecs.lookup(stream.encoding).name != "utf-8":
                stream.reconfigure(encoding="utf-8")   # the same bytes as the file would hold
            _, n = export(args.db, None, args.status, stream=stream,
                          spreadsheet_safe=args.spreadsheet_safe)
            stream.flush()
            print(f"{prog}: {n} jobs written to stdout", file=sys.stderr)
            return 0
        out, n = export(args.db, Path(args.out) if args.out else None, args.status,
                        spreadsheet_safe=args.spreadsheet_safe)
        print(f"{prog}: {n} jobs written to {out}")
        return 0
    return guard(prog, go)


# `db_util reset DB` (no job, no --status) does what the seed's db_util did: every job not
# running goes back to pending. `jobauto reset DB` keeps its own default, the jobs in error, as
# `jobauto reset RUN` does (docs/decisions.md "db_util reset, the seed's default").
SEED_RESET = ["done", "error", "running"]   # running: only jobs whose worker is gone


def reset_main(argv: list[str], prog: str = "jobauto reset") -> int:
    seed = prog.startswith("db_util")
    if seed:
        default = ("Default (the seed's db_util): every job that is not running -- done, error, "
                   "and running jobs whose worker is gone -- goes back to pending; the jobs of "
                   "live workers are left alone and counted.")
        examples = ("examples:\n  db_util reset experiments.db                    # every job not running\n"
                    "  db_util reset experiments.db --status error     # only the failures\n"
                    "  db_util reset experiments.db jobC jobD")
        exit_codes = ("exit codes: 0 reset (running jobs left alone are not a failure); 1 a job "
                      "named by id or by\n  --status running was not reset (still running on a "
                      "live worker, or no such id);\n  2 bad usage or input (nothing reset)")
        status_help = "reset the jobs in this state: done, error, running, pending (default: every job not running)"
    else:
        default = ("Default: the jobs in error (as jobauto reset RUN; db_util reset's default is "
                   "every job not running). A running job is reset only when its worker is gone; "
                   "a live worker's job is never taken.")
        examples = ("examples:\n  jobauto reset experiments.db                    # the jobs in error\n"
                    "  jobauto reset experiments.db --status done      # rerun what finished\n"
                    "  jobauto reset experiments.db --status done --status error   # all but running\n"
                    "  jobauto reset experiments.db jobC jobD")
        exit_codes = ("exit codes: 0 reset; 1 a job asked for was not reset (still running on a "
                      "live worker,\n  or no such id); 2 bad usage or input (nothing reset)")
        status_help = "reset the jobs in this state: error (default), done, running, pending"
    p = parser(prog, "Make jobs of a table pending again, so that workers run them again. "
               + default, examples, exit_codes)
    p.add_argument("db", type=Path)
    p.add_argument("ids", nargs="*", help="job ids (default: every job in --status)")
    p.add_argument("--status", action="append", default=[], help=status_help)
    add_unsafe_fs(p)
    args = p.parse_args(argv)

    def go() -> int:
        from jobauto.table.ops import reset
        every = seed and not args.ids and not args.status
        states = SEED_RESET if every else args.status
        done, refused, unknown = reset(args.db, args.ids, states, unsafe_fs=args.unsafe_fs)
        shown = ", ".join(done[:10]) + (f" and {len(done) - 10} more" if len(done) > 10 else "")
        print(f"{prog}: {len(done)} job(s) pending again{': ' + shown if done else ''}")
        if every:
            print(f"{prog}: {len(refused)} running job(s) left alone (their workers are alive)")
            return 0
        if refused:
            print(f"{prog}: not reset, still running on a live worker: {', '.join(refused[:10])}",
                  file=sys.stderr)
        if unknown:
            print(f"{prog}: no such job id(s): {', '.join(unknown[:10])}", file=sys.stderr)
        return 1 if refused or unknown else 0
    return guard(prog, go)


# -- run ---------------------------------------------------------------------------------------
def run_main(argv: list[str], prog: str = "jobauto run") -> int:
    p = parser(prog, "Run the jobs of a table: claim the best ready job, run COMMAND with the "
               "row's parameters appended, record the outcome; repeat until nothing is left. "
               "Any number of run processes on any number of hosts may share the table.",
               "examples:\n  jobauto run experiments.db \"bash run.sh\"      # bash run.sh preprocess data1 ...\n"
               "  jobauto run experiments.db \"bash run.sh\" --parallel 4 --named-args\n"
               "  jobauto run jobs.db \"bash run.sh\" --max-runtime 86000 --margin-time 300\n\n"
               "A single COMMAND argument is split like a shell would; parameters are passed as\n"
               "separate arguments (never re-split). Each job sees JOBAUTO_JOB_ID, JOBAUTO_TABLE,\n"
               "JOBAUTO_WORKER and JOBAUTO_ATTEMPT in its environment.")
    p.add_argument("db", type=Path)
    p.add_argument("command", nargs="+", help="the command, e.g. \"bash run.sh\"")
    # numbers are read as text and checked by core.config.number, like every numeric setting
    p.add_argument("--parallel", default="1", help="jobs run at once by this process (1 to 4096)")
    p.add_argument("--named-args", action="store_true",
                   help="pass parameters as --COLUMN VALUE instead of positionally")
    p.add_argument("--max-runtime", help="stop within this many seconds (1 to 366 days); never "
                   "start a job whose estimate does not fit")
    p.add_argument("--margin-time", default="0",
                   help="seconds kept free at the end of --max-runtime (default 0)")
    p.add_argument("--heartbeat", default="30",
                   help="seconds between heartbeats (0.1 to 3600); a worker silent for 4 of its "
                        "heartbeats is lost and its jobs run again (default 30)")
    p.add_argument("--label", default="", help="shown by status (default: the batch job id)")
    p.add_argument("--quiet", action="store_true", help="do not report each job on stderr")
    add_unsafe_fs(p)
    args = p.parse_args(argv)

    def go() -> int:
        from jobauto.core.config import setting
        from jobauto.core.errors import ConfigError
        from jobauto.table.process import parse_command
        from jobauto.table.worker import RunOptions, Worker
        parallel = int(setting("parallel", args.parallel, flag="--parallel"))
        max_runtime = (None if args.max_runtime is None
                       else float(setting("max_runtime", args.max_runtime, flag="--max-runtime")))
        margin = float(setting("margin_time", args.margin_time, flag="--margin-time"))
        if max_runtime is not None and margin >= max_runtime:
            raise ConfigError(f"{margin:g} s leaves no time within --max-runtime "
                              f"{max_runtime:g}", flag="--margin-time")
        heartbeat = float(setting("heartbeat", args.heartbeat, flag="--heartbeat"))
        command = parse_command(args.command)
        opts = RunOptions(args.db, command, parallel, args.named_args, max_runtime,
                          margin, heartbeat, label=args.label, quiet=args.quiet,
                          unsafe_fs=args.unsafe_fs)
        return Worker(opts).run()
    return guard(prog, go)


# -- the seed's commands -------------------------------------------------------------------------
# db_util's verbs, in usage order (the usage text is made from them)
DB_UTIL_VERBS = {
    "import": Verb("jobauto.cli.tables:import_main", "FILE.csv [FILE.db]",
                   "create a table (same as jobauto import)"),
    "add": Verb("jobauto.cli.tables:add_main", "FILE.db NEW.csv", "add jobs (jobauto add)"),
    "export": Verb("jobauto.cli.tables:export_main", "FILE.db [OUT.csv] [--status S]",
                   "write CSV (jobauto export)"),
    "reset": Verb("jobauto.cli.tables:reset_main", "FILE.db [--status error] [ID...]",
                  "every job not running back to pending (seed default)"),
    "stats": Verb("jobauto.cli.view:status_main", "FILE.db", "counts and progress (jobauto status)"),
}
DB_UTIL_ALIASES = {"status": "stats"}
DB_UTIL = "usage: db_util COMMAND ...\n\n" + "".join(
    command_line(f"db_util {name} {verb.args}", verb.summary, 50) + "\n"
    for name, verb in DB_UTIL_VERBS.items()) + f"""
examples:
  db_util import experiments.csv && job_scheduler experiments.db "bash run.sh" --parallel 4
  db_util stats experiments.db
  db_util reset experiments.db                    # every job not running back to pending
  db_util reset experiments.db --status error
  db_util --version

{EXIT}
"""


def db_util_main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        return say(DB_UTIL) or (0 if args else 2)
    if args[0] == "--version":
        return say(version())
    cmd, rest = args[0], args[1:]
    verb = DB_UTIL_VERBS.get(DB_UTIL_ALIASES.get(cmd, cmd))
    if verb is None:
        print(f"db_util: error: unknown command {cmd!r}\n\n{DB_UTIL}", file=sys.stderr)
        return 2
    return call(verb.target, rest, f"db_util {cmd}")


def job_scheduler_main(argv: list[str] | None = None) -> int:
    return run_main(sys.argv[1:] if argv is None else argv, "job_scheduler")


def progress_viewer_main(argv: list[str] | None = None) -> int:
    return call("jobauto.cli.view:status_main", sys.argv[1:] if argv is None else argv,
                "progress_viewer")


def db_util_parser() -> argparse.ArgumentParser:
    """db_util as one parser with its verbs' own (shell completion: `jobauto completion`)."""
    return tree("db_util", "The seed's table tool: the job-table verbs of jobauto.",
                {**DB_UTIL_VERBS, **{a: DB_UTIL_VERBS[v] for a, v in DB_UTIL_ALIASES.items()}},
                named=True)
