#!/bin/bash
# A job-table campaign on this machine: the user examples' two CSVs, their commands verbatim.
#   bash examples/tables/run-local.sh [WORKDIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$(mktemp -d /tmp/jobauto-tables.XXXXXX)}
mkdir -p "$work" && cd "$work"
cp "$here/experiments.csv" "$here/jobs.csv" "$here/new_jobs.csv" "$here/run.sh" .
rm -f experiments.db jobs.db

echo "== in $work"
db_util import experiments.csv                       # creates experiments.db
job_scheduler experiments.db "bash run.sh" --parallel 4
db_util add experiments.db new_jobs.csv              # add jobs to an existing table
job_scheduler experiments.db "bash run.sh" --named-args
progress_viewer experiments.db
db_util export experiments.db done.csv --status done

db_util import jobs.csv                              # the fan-in table with explicit ids
job_scheduler jobs.db "bash run.sh" --parallel 2 --max-runtime 600 --margin-time 30
progress_viewer jobs.db
echo "== outputs:"; cat out/*.txt
