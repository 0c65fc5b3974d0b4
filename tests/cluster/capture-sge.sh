#!/usr/bin/env bash
# tests/cluster/capture-sge.sh - regenerate tests/data/sge/: real Grid Engine output for the
# adapter's unit tests. Run as root after `up.sh sshd sge`. Refuses to start while jobauto has
# jobs (the queue snapshots must show only its own); deletes only the jobs it submitted. ~30 s.
set -euo pipefail
# shellcheck source=capture-lib.sh
. "$(dirname "$(readlink -f "$0")")/capture-lib.sh"
OUT="$(cd "$(dirname "$(readlink -f "$0")")/../data" && pwd)/sge"

# Sorted states of jobauto's jobs as plain qstat shows them, e.g. "qw r r" ("" when none).
states() { as_user qstat -u "$TEST_USER" | awk 'NR > 2 { print $5 }' | sort | tr '\n' ' ' | sed 's/ $//'; }
state_is() { local s; s="$(states)" && [ "$s" = "$1" ]; }
# qdel takes job names too; these are all the names this script submits under.
NAMES=(ok ok_plain arr arr_plain exit3 hrt srt to_delete run1 run2 run3 run4 run5 run6 held eqw arr_busy
       mix_eqw mix_a mix_b mix_arr mix_pending mix_held)
cancel_jobs() { as_user qdel "${NAMES[@]}" >/dev/null 2>&1 || true; }
clear_jobs() { cancel_jobs; poll 60 "jobauto's jobs to go" state_is ""; }
# submit NAME ARGS...: qsub -terse ARGS (not captured); prints the job id.
submit() { rx "qsub -terse -cwd -N $*" | cut -d. -f1; }
finished() { as_user qacct -j "$1" >/dev/null 2>&1; }

state_is "" || die "jobauto has jobs in the queue (tests running?); try again when it is idle"
rm -rf "$OUT"; mkdir -p "$OUT"
fresh_workdir

cap qstat-help-head1 'qstat -help | head -1' 'how to tell SGE from other qstat commands'
cap qstat-empty-xml 'qstat -xml -u jobauto' 'no jobs'
cap qstat-empty 'qstat -u jobauto' 'no jobs: empty output'

# submissions, and the finished jobs qacct reports on
cap qsub-terse 'qsub -terse -cwd -N ok ok.sh' 'normal job (exits 0)'
ok="$(capture_id qsub-terse)"
cap qsub-plain 'qsub -cwd -N ok_plain ok.sh' 'without -terse'
cap qsub-terse-array 'qsub -terse -cwd -t 1-3 -N arr ok.sh' 'array job: ID.FIRST-LAST:STEP'
arr="$(capture_id qsub-terse-array)"
cap qsub-plain-array 'qsub -cwd -t 1-3 -N arr_plain ok.sh' 'array job without -terse'
cap qsub-bad-option 'qsub -terse -cwd -no-such-option ok.sh' 'invalid option'
cap qsub-missing-script 'qsub -terse -cwd no-such-script.sh' 'script does not exist'
cap qsub-terse-exit3 'qsub -terse -cwd -N exit3 exit3.sh' 'job that exits 3'
fail="$(capture_id qsub-terse-exit3)"
cap qsub-terse-hrt 'qsub -terse -cwd -N hrt -l h_rt=0:0:3 sleep.sh 30' 'job killed by h_rt after 3 s'
hrt="$(capture_id qsub-terse-hrt)"
cap qsub-terse-srt 'qsub -terse -cwd -N srt -l s_rt=0:0:3 sleep.sh 30' 'job warned by s_rt (SIGUSR1) after 3 s'
srt="$(capture_id qsub-terse-srt)"
del="$(submit to_delete sleep.sh 300)"
poll 30 "job $del to run" sh -c "runuser -u $TEST_USER -- qstat -u $TEST_USER | awk '\$1 == $del && \$5 == \"r\"' | grep -q ."
cap qdel "qdel $del" 'qdel of a running job'
cap qdel-unknown 'qdel 999999' 'qdel of an unknown id'
cap qstat-j-unknown 'qstat -j 999999' 'qstat -j of an unknown id'
poll 60 "the submitted jobs to finish" state_is ""
for j in "$ok" "$arr" "$fail" "$hrt" "$srt" "$del"; do poll 30 "qacct to know job $j" finished "$j"; done
cap qacct-ok "qacct -j $ok" 'finished, exit 0'
cap qacct-exit3 "qacct -j $fail" 'finished, exit 3'
cap qacct-hrt "qacct -j $hrt" 'killed by h_rt=0:0:3 while running sleep 30'
cap qacct-qdel "qacct -j $del" 'deleted with qdel while running'
cap qacct-array "qacct -j $arr" 'array job, 3 tasks, all exit 0'
cap qacct-unknown 'qacct -j 999999' 'unknown id'
cap qacct-srt "qacct -j $srt" 'ended by the SIGUSR1 of s_rt=0:0:3 while running sleep 30 (no trap)'
cap acct-several "$(adapter_cmd sge acct_argv "$ok" "$fail" "$hrt" "$del" "$arr" "$srt" 999999)" \
    "jobauto's accounting command (SgeAdapter.acct_argv) for the jobs above and an unknown id"

# queue snapshots (all.q has 4 slots)
for i in 1 2 3 4 5 6; do submit "run$i" sleep.sh 300 >/dev/null; done
poll 30 "4 running, 2 pending" state_is "qw qw r r r r"
cap qstat-running-pending-xml 'qstat -xml -u jobauto' '6 jobs: 4 running (r), 2 pending (qw)'
cap qstat-running-pending 'qstat -u jobauto' '6 jobs: 4 running (r), 2 pending (qw)'
clear_jobs

rx 'qsub -terse -cwd -h -N held sleep.sh 300' >/dev/null
poll 30 "a held job" state_is "hqw"
cap qstat-held-xml 'qstat -xml -u jobauto' 'one job submitted with qsub -h (hqw)'
cap qstat-held 'qstat -u jobauto' 'one job submitted with qsub -h (hqw)'
clear_jobs

eqw="$(rx 'qsub -terse -cwd -N eqw -o /nonexistent/dir/out sleep.sh 1')"
poll 30 "a job in Eqw" state_is "Eqw"
cap qstat-eqw-xml 'qstat -xml -u jobauto' 'one job in error state: -o /nonexistent/dir/out (Eqw)'
cap qstat-eqw 'qstat -u jobauto' 'one job in error state: -o /nonexistent/dir/out (Eqw)'
cap qstat-j-eqw "qstat -j $eqw" 'the Eqw job in detail: see the error reason line'
cap cancel-eqw "$(adapter_cmd sge cancel_argv "$eqw")" \
    "jobauto's cancel command (SgeAdapter.cancel_argv) on the Eqw job: its error reason, then qdel"
clear_jobs

rx 'qsub -terse -cwd -t 1-6 -N arr_busy sleep.sh 300' >/dev/null
poll 30 "array tasks 1-4 running, 5-6 pending" state_is "qw r r r r"
cap qstat-array-xml 'qstat -xml -u jobauto' 'array job -t 1-6: tasks 1-4 running, 5-6 pending'
cap qstat-array 'qstat -u jobauto' 'array job -t 1-6: tasks 1-4 running, 5-6 pending'
clear_jobs

# the Eqw job first: a job only fails (Eqw) once dispatched, which needs a free slot
rx 'qsub -terse -cwd -N mix_eqw -o /nonexistent/dir/out sleep.sh 1' >/dev/null
poll 30 "a job in Eqw" state_is "Eqw"
submit mix_a sleep.sh 300 >/dev/null
submit mix_b sleep.sh 300 >/dev/null
rx 'qsub -terse -cwd -t 1-4 -N mix_arr sleep.sh 300' >/dev/null
submit mix_pending sleep.sh 300 >/dev/null
rx 'qsub -terse -cwd -h -N mix_held sleep.sh 300' >/dev/null
poll 30 "the mixed queue" state_is "Eqw hqw qw qw r r r r"
cap qstat-mixed-xml 'qstat -xml -u jobauto' \
    'in submit order: 1 Eqw; 2 running; array -t 1-4 with tasks 1-2 running, 3-4 pending; 1 pending; 1 held (hqw)'
cap qstat-mixed 'qstat -u jobauto' 'same as qstat-mixed-xml'
clear_jobs
as_user qmod -c 'all.q@*' >/dev/null 2>&1 || true
"${SSH[@]}" 'rm -rf capture' </dev/null

write_readme "Captured Son of Grid Engine output" "$(cat <<EOF
Real output of Son of Grid Engine $(sed 's/^SGE //' "$OUT/qstat-help-head1.out") (Debian 12 \`gridengine-*\` packages)
on the test cluster from \`tests/cluster/up.sh sshd sge\` (one host \`$(hostname -s)\`, queue
\`all.q\` with 4 slots), for the SGE adapter's unit tests. Produced by
\`tests/cluster/capture-sge.sh\` (run it as root to regenerate everything here). Job ids
repeat (they wrap, and a restarted qmaster can hand out ids again) while the accounting file keeps
every record: \`qacct -j ID\` may print an earlier job's record first (see qacct-ok; qsub_time differs).
EOF
)"
echo "CAPTURED $(count_captures "$OUT") SGE outputs in $OUT"
