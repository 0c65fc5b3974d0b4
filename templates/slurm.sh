#!/bin/bash
# Job script template for jobmon --scheduler=slurm. jobmon submits it from the job's directory,
# which Slurm makes the working directory. jobmon fills in the placeholders (the job's id,
# --binpath, --maxcore) when the run starts: see templates/README.md.
#
# Directives are the lines starting with "#SBATCH", all before the first command;
# "##SBATCH" lines are switched off (delete one "#" to use one).
#SBATCH --ntasks=__maxcore__
#SBATCH --output=qsub.__id__.o%j
##SBATCH --time=24:00:00
# When jobmon retries a job killed at its time limit (--retries, jobauto reset), add this to
# sbatch (delete the first "#" to use it):
##jobauto walltime-retry: --time=2-00:00:00
##SBATCH --partition=normal
##SBATCH --account=GROUP
# Send this script SIGUSR1 5 minutes before --time runs out, so the markers are written:
##SBATCH --signal=B:USR1@300

# >>> jobauto markers >>> (the same block in every template; your commands go in work() below)
# jobmon learns how this job ended only from two files this block writes in the job's directory:
#   qsub.failed.ID    the exit code; written first, and only when the job failed
#   qsub.finished.ID  the exit code; written last, always, whether the job succeeded or failed
# Each is written under a hidden temporary name and renamed into place, so a marker that exists
# is complete. A scheduler warning signal (soft walltime, qdel/scancel) stops the work and still
# writes both markers; only SIGKILL (hard walltime, node failure) leaves none, and jobmon then
# notices the job vanished from the queue.
jobauto_id='__id__'
jobauto_dir=$PWD
jobauto_work_pid=
jobauto_signals=(TERM INT HUP USR1 USR2 XCPU)

jobauto_now() { date '+%Y-%m-%dT%H:%M:%S'; }

jobauto_put_marker() {  # write $2 into marker $1 atomically
    local tmp="$jobauto_dir/.$1.tmp.$$"
    if printf '%s\n' "$2" >"$tmp" && mv -f "$tmp" "$jobauto_dir/$1"; then
        return 0
    fi
    rm -f "$tmp"
    echo "jobauto: cannot write $jobauto_dir/$1" >&2
    return 1
}

jobauto_kill_tree() {  # TERM process $1 and its descendants, children first so none is orphaned
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do
        jobauto_kill_tree "$child"
    done
    kill -TERM "$1" 2>/dev/null
}

jobauto_on_signal() {
    trap '' "${jobauto_signals[@]}"
    echo "jobauto: job $jobauto_id got SIG$1 at $(jobauto_now); stopping its work" >&2
    if [ -n "$jobauto_work_pid" ]; then
        jobauto_kill_tree "$jobauto_work_pid"
    fi
    exit $((128 + $(kill -l "$1")))
}

jobauto_on_exit() {
    local rc=$?
    trap '' "${jobauto_signals[@]}"  # nothing may interrupt writing the markers
    trap - EXIT
    if [ "$rc" -ne 0 ]; then
        jobauto_put_marker "qsub.failed.$jobauto_id" "$rc"
    fi
    jobauto_put_marker "qsub.finished.$jobauto_id" "$rc"
    echo "jobauto: job $jobauto_id ended with exit code $rc at $(jobauto_now)" >&2
    exit "$rc"
}

jobauto_run() {  # run "$@" in the background: bash handles a trapped signal during `wait` at once
    "$@" &
    jobauto_work_pid=$!
    wait "$jobauto_work_pid"
}

rm -f "qsub.failed.$jobauto_id" "qsub.finished.$jobauto_id"  # left by an earlier attempt
trap jobauto_on_exit EXIT
for jobauto_sig in "${jobauto_signals[@]}"; do
    # shellcheck disable=SC2064  # expand the signal name now, on purpose
    trap "jobauto_on_signal $jobauto_sig" "$jobauto_sig"
done
echo "jobauto: job $jobauto_id started on ${HOSTNAME:-?} in $jobauto_dir at $(jobauto_now)" >&2
# <<< jobauto markers <<<

# =============================== your work here ===============================
# work() runs in its own shell with `set -eo pipefail`: the first failing command (also inside
# a pipe) ends the job as failed, with that command's exit code. The working directory is this
# job's directory. The binpath and maxcore placeholders are jobmon's --binpath and --maxcore.
work() {
    set -eo pipefail
    export PATH="__binpath__:$PATH"
    # A clean restart removes what an earlier attempt of this step left behind, e.g.
    #   rm -f mix* rst*
    # ecalj, material "si" (LDA):
    #   lmfa si > llmfa
    #   mpirun -np __maxcore__ "__binpath__/lmf-MPIK" si > llmf
    echo "job __id__: replace this line with your commands (up to __maxcore__ MPI processes)"
}
# ============================= end of your work ===============================

jobauto_run work  # keep this the last line: its exit code is the job's exit code
