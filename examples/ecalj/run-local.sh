#!/bin/bash
# One-command demo of jobmon: a dummy ecalj campaign (6 materials: LDA -> 3 QSGW iterations ->
# band plot, then one summary job) run on this machine by jobmon's local scheduler.
#
# Usage: bash examples/ecalj/run-local.sh [WORKDIR [PREPARE.PY OPTIONS...]]
#   WORKDIR defaults to examples/ecalj/run (git-ignored). The campaign goes to WORKDIR/foobar,
#   the "cluster" side to WORKDIR/remote/foobar. Options after WORKDIR go to prepare.py, e.g.
#   bash examples/ecalj/run-local.sh /tmp/demo --break NiO    (see a failure being reported)
# Exits with jobmon's exit code: 0 when every job is done, 1 when some failed or are stuck.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
workdir=${1:-$here/run}
shift $(($# > 0 ? 1 : 0))
mkdir -p "$workdir" && workdir=$(cd "$workdir" && pwd) || exit 2
ldir=$workdir/foobar
rdir=$workdir/remote/foobar

python=$(command -v python || command -v python3) || { echo "run-local.sh: no python" >&2; exit 2; }
if command -v jobmon >/dev/null 2>&1; then
    jobmon=(jobmon)
else
    # Not installed: run it from this checkout.
    jobmon=("$python" -m jobauto.cli.jobmon)
    export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
fi

# --force: a rerun of the demo replaces init/; earlier runs (dated directories) stay.
"$python" "$here/prepare.py" "$here/POSCARALL" "$ldir" --force "$@" || exit 2

list_runs() { find "$ldir" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*-[0-9]*' | sort; }
runs_before=$(list_runs)

args=(--ldir="$ldir" --rdir="$rdir" --binpath="$here/bin" --maxcore=2 --maxqsub=4 --interval=1
      --scheduler=local --fetch=summary.txt --fetch='band.*.svg')
echo "+ ${jobmon[*]} ${args[*]}"
"${jobmon[@]}" "${args[@]}"
rc=$?

run=$(comm -13 <(echo "$runs_before") <(list_runs) | tail -n 1)
if [ -z "$run" ]; then
    echo "run-local.sh: jobmon (exit code $rc) made no run directory in $ldir" >&2
    exit "$rc"
fi
date=$(basename "$run")

echo
echo "==> $run/quelist"
cat "$run/quelist"

summary=$run/summary/summary.txt
if [ ! -f "$summary" ]; then
    # Results come back with --fetch; ask once more, the way one fetches after a run on a cluster.
    "${jobmon[@]}" --ldir="$ldir" --rdir="$rdir" --datedir="$date" --initonly \
        --fetch=summary.txt --fetch='band.*.svg' >/dev/null
fi
echo
if [ -f "$summary" ]; then
    echo "==> $summary"
    cat "$summary"
elif [ -f "$rdir/$date/summary/summary.txt" ]; then
    echo "==> $rdir/$date/summary/summary.txt (on the \"cluster\": jobmon did not fetch it)"
    cat "$rdir/$date/summary/summary.txt"
else
    echo "==> no summary.txt (a job failed or is stuck: see the quelist above)"
fi
echo
echo "jobmon exit code: $rc. Band plots: $run/*/band.*.svg"
exit "$rc"
