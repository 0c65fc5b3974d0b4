"""jobauto: the umbrella command (jobmon and the job-table verbs)."""

from __future__ import annotations

import sys

USAGE = """usage: jobauto COMMAND [ARGS]

commands:
  jobmon ARGS...     the monitor (same as the jobmon command)
  explain RUN JOB    a job's history and why it is in its state
  reset RUN [JOB...] [--status error]
                     make jobs pending again (works while the monitor runs)
  version            print the version

examples:
  jobauto jobmon --ldir=foobar --rdir=/tmp/foobar --scheduler=local
  jobauto explain foobar/20261121-100000 Si/qsub.1
  jobauto reset foobar/20261121-100000 --status error
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    if cmd == "jobmon":
        from .jobmon import main as jobmon_main
        return jobmon_main(rest)
    if cmd == "explain":
        from .runs import explain_main
        return explain_main(rest)
    if cmd == "reset":
        from .runs import reset_main
        return reset_main(rest)
    if cmd in ("version", "--version"):
        from .. import __version__
        print(f"jobauto {__version__}")
        return 0
    print(f"jobauto: error: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
