"""The wrapper jobmon submits in place of a job script (Nextflow's .command.run around .command.sh).

It carries the script's own scheduler directives, runs the script in the job's directory and
writes the job's markers from its exit status, also when a catchable signal ends it; a script
that wrote its own qsub.finished.ID is left alone. It is generated here from the local script
at submission time and written on the cluster, beside the script, by the batch that submits it
(mirror.py), under a hidden name the scan never takes for a job, a marker or a dependency file.
docs/file-formats.md describes it; the shell text below is POSIX sh (dash, bash, ksh).
"""

from __future__ import annotations

import posixpath
import shlex

from jobauto.core.deps import FAILED, FINISHED, split_name
from jobauto.core.scripts import interpreter, scheduler_directives

SIGNALS = "TERM INT HUP USR1 USR2 XCPU"
WRAPPER_GLOB = ".qsub.*.run"    # never pushed (the cluster's copy is written at submission), never fetched


def wrapper_name(script: str) -> str:
    """The wrapper's file name beside script `qsub.ID`: `.qsub.ID.run`."""
    return "." + script + ".run"


def job_dir(rundir: str, name: str) -> str:
    """The job's directory on the cluster as a shell word: an absolute path quoted, a path
    relative to the login directory (how --rdir may be given) under "$HOME"."""
    d = posixpath.dirname(name)
    path = posixpath.join(rundir, d) if d else rundir
    if path.startswith("/"):
        return shlex.quote(path)
    return '"$HOME"/' + shlex.quote(path)


def wrapper_text(script_text: str, name: str, rundir: str, shown: str = "job script",
                 after: list[str] | None = None) -> str:
    """The wrapper of job `name` (`dir/qsub.ID`) whose script reads `script_text`, for a run in
    `rundir` on the cluster. Raises TreeError when the script's directives cannot be carried.
    AFTER: the finished markers (paths in the run) of the jobs it was submitted ahead of
    (jobmon --ahead); the wrapper runs the script only when each is there without its failed
    marker, and otherwise exits 0 writing no marker (docs/decisions.md, "Edges to the scheduler")."""
    directives = scheduler_directives(script_text, shown)
    ident = split_name(name)[1]
    script = posixpath.basename(name)
    head = ["#!/bin/sh", *directives,
            f"# Written by jobmon for {script}: runs it, then writes its markers "
            "(docs/file-formats.md).",
            f"jobauto_dir={job_dir(rundir, name)}",
            f"jobauto_script={shlex.quote(script)}",
            f"jobauto_finished={shlex.quote(FINISHED + ident)}",
            f"jobauto_failed={shlex.quote(FAILED + ident)}",
            f'set -- {shlex.join(interpreter(script_text))} "./$jobauto_script"']
    guard = []
    for m in after or []:
        d, base = job_dir(rundir, m), posixpath.basename(m)
        failed = FAILED + base[len(FINISHED):]
        guard.append(f"jobauto_after {d}/{shlex.quote(base)} {d}/{shlex.quote(failed)}")
    if not guard:
        return "\n".join(head) + "\n" + BODY
    start = BODY.index("jobauto_child=\n")
    return "\n".join(head) + "\n" + BODY[:start] + AFTER + "\n".join(guard) + "\n" + BODY[start:]


AFTER_WAIT_S = 30   # for a finished marker a shared file system shows late
AFTER = r"""jobauto_after() {  # $1 finished, $2 failed marker of a job this one was queued after
    jobauto_w=0
    while [ ! -e "$1" ] && [ ! -e "$2" ] && [ "$jobauto_w" -lt """ + str(AFTER_WAIT_S) + r""" ]; do
        sleep 1
        jobauto_w=$((jobauto_w + 1))
    done
    if [ -e "$2" ] || [ ! -e "$1" ]; then
        echo "jobauto: $jobauto_script was queued after a job that did not end well ($1); not run, no marker written: jobmon decides" >&2
        exit 0
    fi
}
"""


BODY = r"""jobauto_now() { date '+%Y-%m-%dT%H:%M:%S'; }
cd -- "$jobauto_dir" || { echo "jobauto: cannot enter the job directory $jobauto_dir" >&2; exit 1; }
rm -f -- "$jobauto_failed" "$jobauto_finished"  # left by an earlier attempt
jobauto_child=
jobauto_got=
jobauto_stop=

jobauto_tree() (  # the descendants of process $1, children before their parents (a subshell:
    for jobauto_c in $(pgrep -P "$1" 2>/dev/null); do  # its variables stay its own)
        jobauto_tree "$jobauto_c"
        echo "$jobauto_c"
    done
)

jobauto_signal() {  # pass signal $1 on: to the script, then TERM to what it started
    jobauto_got=$1
    case $1 in  # a signal that stops the job (USR1/USR2 are warnings a script may outlive);
        TERM|INT) jobauto_stop=$1 jobauto_stopn=15 ;;  # XCPU is 24 on Linux and the BSDs
        HUP) jobauto_stop=$1 jobauto_stopn=1 ;;
        XCPU) jobauto_stop=$1 jobauto_stopn=24 ;;
    esac
    echo "jobauto: $jobauto_script got SIG$1 at $(jobauto_now); passing it on" >&2
    [ -n "$jobauto_child" ] || return 0
    jobauto_kids=$(jobauto_tree "$jobauto_child")
    case $1 in  # a background child of a non-interactive shell ignores INT and QUIT
        INT|QUIT) kill -TERM "$jobauto_child" 2>/dev/null ;;
        *) kill -s "$1" "$jobauto_child" 2>/dev/null ;;
    esac
    [ -z "$jobauto_kids" ] || kill -TERM $jobauto_kids 2>/dev/null
    return 0
}

jobauto_put() {  # write $2 into marker $1: a hidden temporary file, renamed into place
    jobauto_t=".$1.tmp.$$"
    if printf '%s\n' "$2" >"$jobauto_t" && mv -f -- "$jobauto_t" "$1"; then
        return 0
    fi
    rm -f -- "$jobauto_t"
    echo "jobauto: cannot write $PWD/$1" >&2
    return 1
}

for jobauto_s in """ + SIGNALS + r"""; do
    trap "jobauto_signal $jobauto_s" "$jobauto_s"
done
echo "jobauto: $jobauto_script started on $(hostname 2>/dev/null || echo '?') in $PWD at $(jobauto_now)" >&2
"$@" &
jobauto_child=$!
[ -z "$jobauto_got" ] || jobauto_signal "$jobauto_got"
while :; do
    jobauto_got=
    wait "$jobauto_child"
    jobauto_rc=$?
    # a trapped signal ends `wait` early (128 + its number): wait again for the script itself
    if [ -z "$jobauto_got" ] || [ "$jobauto_rc" -le 128 ]; then break; fi
    kill -0 "$jobauto_child" 2>/dev/null && continue
    wait "$jobauto_child"  # ended meanwhile: its status, unless the shell already gave it
    jobauto_r=$?
    [ "$jobauto_r" -eq 127 ] || jobauto_rc=$jobauto_r
    break
done
trap '' """ + SIGNALS + r"""  # nothing may interrupt writing the markers
if [ "$jobauto_rc" -eq 0 ] && [ -n "$jobauto_stop" ]; then
    # stopped, not done: e.g. a cancel's TERM killed the script's `sleep` first and the script
    # ran on to exit 0 before its own TERM came (docs/file-formats.md "The wrapper")
    echo "jobauto: $jobauto_script exited 0 after SIG$jobauto_stop: it was stopped, not done" >&2
    jobauto_rc=$((128 + jobauto_stopn))
fi
jobauto_how="exit code $jobauto_rc"
if [ "$jobauto_rc" -gt 128 ]; then
    jobauto_how="$jobauto_how (SIG$(kill -l "$((jobauto_rc - 128))" 2>/dev/null || echo ?))"
fi
if [ -e "$jobauto_finished" ]; then
    echo "jobauto: $jobauto_script ended with $jobauto_how at $(jobauto_now); it wrote its own markers" >&2
    exit "$jobauto_rc"
fi
[ "$jobauto_rc" -eq 0 ] || jobauto_put "$jobauto_failed" "$jobauto_rc"
jobauto_put "$jobauto_finished" "$jobauto_rc"
echo "jobauto: $jobauto_script ended with $jobauto_how at $(jobauto_now)" >&2
exit "$jobauto_rc"
"""
