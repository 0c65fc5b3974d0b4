"""jobauto: the umbrella command (jobmon and the job-table verbs).

The dispatch table below is the one list of verbs: main() calls from it and the usage text's
command list is made from it. A verb in both lists (reset, status) takes its push-mode face
when its first argument is a directory (a run, LDIR/DATE), else its job-table face."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

from jobauto.cli.guard import (
    Verb,
    built,
    call,
    command_line,
    guard,
    parser,
    resolve,
    say,
    tree,
    version,
)

RUNS = {  # push mode: a jobmon run directory RUN = LDIR/DATE
    "jobmon": Verb("jobauto.cli.jobmon:main", "ARGS...", "the monitor (same as the jobmon command)"),
    "plan": Verb("jobauto.cli.plan:plan_main", "LDIR/init|RUN [--interval S] [--json]",
                 "forecast: jobs, submissions, scheduler commands, logins, bytes, scan cost"),
    "explain": Verb("jobauto.cli.runs:explain_main", "RUN [JOB]",
                    "a job's history and why it is in its state; the run's settings"),
    "reset": Verb("jobauto.cli.runs:reset_main", "RUN [JOB...] [--status error]",
                  "make jobs pending again (works while the monitor runs)"),
    "resume": Verb("jobauto.cli.jobmon:resume_main", "RUN [--daemon] [FLAGS]",
                   "resume a run with the settings it recorded"),
    "cancel": Verb("jobauto.cli.runs:cancel_main", "RUN [JOB...] [--status S]",
                   "delete jobs (or the whole run) from the scheduler; marks them cancelled"),
    "set": Verb("jobauto.cli.runs:set_main", "RUN NAME=VALUE...",
                "change maxqsub, interval, retries, lost-after... (live)"),
    "rescan": Verb("jobauto.cli.runs:rescan_main", "RUN",
                   "look at the whole run now, for jobs added by hand on the cluster"),
    "status": Verb("jobauto.cli.view:status_main", "RUN|DB [--watch] [--json]",
                   "counts, Ready/Waiting/Blocked, running jobs, failures, time left"),
    "graph": Verb("jobauto.cli.graph:graph_main", "RUN|DB [--format dot|mermaid|svg|png] [-o FILE]",
                  "the dependency DAG coloured by state"),
    "report": Verb("jobauto.cli.report:report_main", "RUN|DB -o report.html",
                   "one self-contained HTML report: counts, timeline, DAG, failures"),
    "runs": Verb("jobauto.cli.view:runs_main", "[LDIR] [--json]",
                 "every run of a campaign: state, monitor pid, counts, last activity"),
    "fetch": Verb("jobauto.cli.transfer:fetch_main", "RUN [GLOB...] [--all] [--dry-run]",
                  "bring files back from the cluster: files and bytes first"),
    "clean": Verb("jobauto.cli.transfer:clean_main", "RUN --remote[=HOST] [--dry-run] [--force]",
                  "remove the run's copy on the cluster (refused while jobs run)"),
}
TABLES = {  # job tables: DB = a table file made by import
    "import": Verb("jobauto.cli.tables:import_main", "CSV [DB]",
                   "create a table from a CSV (db_util import)"),
    "add": Verb("jobauto.cli.tables:add_main", "DB CSV", "add jobs to a table (db_util add)"),
    "export": Verb("jobauto.cli.tables:export_main", "DB [OUT] [--status S]",
                   "write the table as CSV (db_util export)"),
    "reset": Verb("jobauto.cli.tables:reset_main", "DB [ID...] [--status error]",
                  "make jobs pending again (db_util reset)"),
    "status": Verb("jobauto.cli.view:status_main", "DB", "as above (progress_viewer)"),
    "run": Verb("jobauto.cli.tables:run_main",
                "DB COMMAND [--parallel N] [--named-args] [--max-runtime SEC] [--margin-time SEC]",
                "a worker: run the table's jobs (job_scheduler)"),
    "workers": Verb("jobauto.cli.workers:workers_main", "--remote HOST --db PATH -n N -- COMMAND",
                    "submit N workers as one array job on a cluster"),
    "render": Verb("jobauto.cli.render:render_main", "CSV --template FILE --out LDIR/init",
                   "one jobmon job directory per row (push mode from a table)"),
}
OTHER = {
    "version": Verb("jobauto.cli.jobauto:version_main", "", "print the version"),
    "completion": Verb("jobauto.cli.jobauto:completion_main", "bash|zsh [COMMAND]",
                       "print a shell completion script"),
}
SECTIONS = (("commands (push mode, a jobmon run directory RUN = LDIR/DATE):", RUNS),
            ("commands (job tables, DB = a table file made by import):", TABLES),
            ("", OTHER))
COMMANDS = [*RUNS, *(v for v in TABLES if v not in RUNS), *OTHER]

EXIT = "exit codes: those of the command (see jobauto COMMAND --help); 2 bad usage or unknown command"
EXAMPLES = """\
examples:
  jobauto jobmon --ldir=foobar --rdir=/tmp/foobar --scheduler=local
  jobauto explain foobar/20261121-100000 Si/qsub.1
  jobauto reset foobar/20261121-100000 --status error
  jobauto import experiments.csv && jobauto run experiments.db "bash run.sh" --parallel 4
  jobauto status experiments.db --watch
  jobauto graph foobar/20261121-100000 --format svg -o dag.svg
  jobauto report experiments.db -o report.html
  jobauto runs foobar --json
  eval "$(jobauto completion bash)"
  jobauto --version"""


def usage() -> str:
    parts = ["usage: jobauto COMMAND [ARGS]"]
    for title, verbs in SECTIONS:
        rows = [command_line(f"{name} {verb.args}", verb.summary, 21) for name, verb in verbs.items()]
        parts.append("\n".join(([title] if title else []) + rows))
    return "\n\n".join([*parts, EXAMPLES, EXIT]) + "\n"


USAGE = usage()


def pick(cmd: str, rest: list[str]) -> Verb | None:
    """The verb CMD names; in both lists, the push-mode face for a directory, else the table's."""
    if cmd in RUNS and cmd in TABLES:
        is_run = bool(rest) and not rest[0].startswith("-") and Path(rest[0]).is_dir()
        return RUNS[cmd] if is_run else TABLES[cmd]
    return RUNS.get(cmd) or TABLES.get(cmd) or OTHER.get(cmd)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        return say(USAGE) or (0 if args else 2)
    cmd, rest = args[0], args[1:]
    if cmd == "--version":
        cmd = "version"
    verb = pick(cmd, rest)
    if verb is None:
        print(f"jobauto: error: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return call(verb.target, rest)


def version_main(argv: list[str], prog: str = "jobauto version") -> int:
    p = parser(prog, "Print the version of jobauto.", "example:\n  jobauto version",
               "exit codes: 0 printed")
    p.parse_known_args(argv)    # anything after the verb was ignored before it had a --help
    return say(version())


# the commands `jobauto completion` completes, each as the parser it is made from (guard.built)
COMPLETED: dict[str, Callable[[], argparse.ArgumentParser]] = {
    # a verb of both lists completes as its job-table face (reset: its flags are a superset),
    # described as its run face (the table's says "as above")
    "jobauto": lambda: tree("jobauto", "Run and watch jobmon runs and job tables.", {
        **RUNS, **TABLES, **OTHER,
        **{v: TABLES[v]._replace(summary=RUNS[v].summary) for v in RUNS if v in TABLES}}),
    "jobmon": lambda: built("jobauto.cli.jobmon:main"),
    "jobmon.py": lambda: built("jobauto.cli.jobmon:main"),
    "db_util": lambda: cast(argparse.ArgumentParser, resolve("jobauto.cli.tables:db_util_parser")()),
    "job_scheduler": lambda: built("jobauto.cli.tables:job_scheduler_main"),
    "progress_viewer": lambda: built("jobauto.cli.tables:progress_viewer_main"),
}
COMPLETION_HELP = (
    "Print a completion script for bash or zsh, made by shtab from the commands' own parsers "
    "(verbs, flags and their choices; files where a path goes). One command per script; "
    "COMMAND is jobauto (default), " + ", ".join(list(COMPLETED)[1:]) + ".",
    "examples:\n"
    "  eval \"$(jobauto completion bash)\"                 # in ~/.bashrc\n"
    "  for c in jobmon db_util; do eval \"$(jobauto completion bash $c)\"; done\n"
    "  jobauto completion zsh > ~/.zfunc/_jobauto         # with fpath=(~/.zfunc $fpath) in ~/.zshrc\n"
    "  jobauto completion zsh jobmon > ~/.zfunc/_jobmon",
    "exit codes: 0 printed; 2 bad usage (an unknown shell or command)")


def completion_main(argv: list[str], prog: str = "jobauto completion") -> int:
    p = parser(prog, *COMPLETION_HELP)
    p.add_argument("shell", choices=["bash", "zsh"], help="the shell the script is for")
    p.add_argument("command", nargs="?", default="jobauto", choices=list(COMPLETED),
                   help="the command it completes (default: jobauto)")
    args = p.parse_args(argv)

    def go() -> int:
        import shtab
        made = COMPLETED[args.command]()
        made.prog = args.command       # jobmon.py is jobmon's parser under its other name
        paths_complete_as_files(made, shtab.FILE)
        print(shtab.complete(made, shell=args.shell), end="")
        return 0
    return guard(prog, go)


def paths_complete_as_files(p: argparse.ArgumentParser, files: object) -> None:
    """Every argument read as a Path completes as a file name (shtab's `complete`)."""
    for action in p._actions:
        if action.type is Path:
            action.complete = files  # type: ignore[attr-defined]
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                paths_complete_as_files(sub, files)


if __name__ == "__main__":
    sys.exit(main())
