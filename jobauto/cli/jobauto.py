"""jobauto: the umbrella command (jobmon and the job-table verbs)."""

from __future__ import annotations

import sys

USAGE = """usage: jobauto COMMAND [ARGS]

commands (push mode, a jobmon run directory RUN = LDIR/DATE):
  jobmon ARGS...     the monitor (same as the jobmon command)
  explain RUN JOB    a job's history and why it is in its state
  reset RUN [JOB...] [--status error]
                     make jobs pending again (works while the monitor runs)
  status RUN|DB [--watch] [--json]
                     counts, Ready/Waiting/Blocked, running jobs, failures, time left
  graph RUN|DB [--format dot|mermaid|svg|png] [-o FILE]
                     the dependency DAG coloured by state
  report RUN|DB -o report.html
                     one self-contained HTML report: counts, timeline, DAG, failures

commands (job tables, DB = a table file made by import):
  import CSV [DB]    create a table from a CSV (db_util import)
  add DB CSV         add jobs to a table (db_util add)
  export DB [OUT] [--status S]
                     write the table as CSV (db_util export)
  reset DB [ID...] [--status error]
                     make jobs pending again (db_util reset)
  status DB          as above (progress_viewer)
  run DB COMMAND [--parallel N] [--named-args] [--max-runtime SEC] [--margin-time SEC]
                     a worker: run the table's jobs (job_scheduler)
  workers --remote HOST --db PATH -n N -- COMMAND
                     submit N workers as one array job on a cluster
  render CSV --template FILE --out LDIR/init
                     one jobmon job directory per row (push mode from a table)

  version            print the version

examples:
  jobauto jobmon --ldir=foobar --rdir=/tmp/foobar --scheduler=local
  jobauto explain foobar/20261121-100000 Si/qsub.1
  jobauto reset foobar/20261121-100000 --status error
  jobauto import experiments.csv && jobauto run experiments.db "bash run.sh" --parallel 4
  jobauto status experiments.db --watch
  jobauto graph foobar/20261121-100000 --format svg -o dag.svg
  jobauto report experiments.db -o report.html
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    if cmd == "jobmon":
        from jobauto.cli.jobmon import main as jobmon_main
        return jobmon_main(rest)
    if cmd == "explain":
        from jobauto.cli.runs import explain_main
        return explain_main(rest)
    if cmd == "reset":
        from pathlib import Path
        if rest and not rest[0].startswith("-") and Path(rest[0]).is_dir():
            from jobauto.cli.runs import reset_main
            return reset_main(rest)
        from jobauto.cli.tables import reset_main as table_reset
        return table_reset(rest)
    if cmd == "status":
        from jobauto.cli.view import status_main
        return status_main(rest)
    if cmd == "graph":
        from jobauto.cli.graph import graph_main
        return graph_main(rest)
    if cmd == "report":
        from jobauto.cli.report import report_main
        return report_main(rest)
    table_verbs = {"import": "import_main", "add": "add_main", "export": "export_main",
                   "run": "run_main"}
    if cmd in table_verbs:
        from jobauto.cli import tables
        return int(getattr(tables, table_verbs[cmd])(rest))
    if cmd == "render":
        from jobauto.cli.render import render_main
        return render_main(rest)
    if cmd == "workers":
        from jobauto.cli.workers import workers_main
        return workers_main(rest)
    if cmd in ("version", "--version"):
        from jobauto import __version__
        print(f"jobauto {__version__}")
        return 0
    print(f"jobauto: error: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
