#!/usr/bin/env bash
# tests/cluster/capture-slurm.sh - regenerate tests/data/pbs/ (the PBS/Torque wrappers from
# slurm-wlm-torque) and tests/data/slurm/: real output for the adapters' unit tests. Run as root
# after `up.sh sshd slurm`. Refuses to start while jobauto has jobs in Slurm (the queue snapshots
# must show only its own); cancels only what it submitted. About two minutes, most of it waiting
# for Slurm's time-limit check.
set -euo pipefail
# shellcheck source=capture-lib.sh
. "$(dirname "$(readlink -f "$0")")/capture-lib.sh"
DATA="$(cd "$(dirname "$(readlink -f "$0")")/../data" && pwd)"
T="$TORQUE_DIR/bin"
SQ="squeue -h -u jobauto -o '%i|%j|%T|%r'"
SACCT="sacct -X -n -P -o JobID,JobName,State,ExitCode,Elapsed"

# Sorted states of jobauto's queued jobs, one per array task ("" when none).
states() { as_user squeue -h -r -u "$TEST_USER" -o %T | sort | tr '\n' ' ' | sed 's/ $//'; }
state_is() { local s; s="$(states)" && [ "$s" = "$1" ]; }
# All the job names this script submits under (the wrappers name a job after its script).
NAMES=(ok.sh pbs_named exit3.sh pbs_exit3 pbs_run pbs_held ok ok_plain arr exit3 timeout cancel
       run1 run2 run3 run4 run5 run6 held dep_never arr_busy arr_thr mix_a mix_arr mix_pending mix_held
       jacapX1_0 pbs_plain)
cancel_jobs() { local n; for n in "${NAMES[@]}"; do as_user scancel -u "$TEST_USER" -n "$n" || true; done; }
clear_jobs() { cancel_jobs; poll 60 "jobauto's Slurm jobs to go" state_is ""; }
# done_in_sacct ID: accounting has the job's final record. Right after a job ends sacct may
# already say FAILED or CANCELLED but still show JobName "allocation"; wait for the real name.
done_in_sacct() {
    as_user sacct -X -n -P -j "$1" -o State,JobName |
        grep -vE '^(PENDING|RUNNING|REQUEUED|)\||\|allocation$' | grep -q .
}
reason_is() { [ "$(as_user squeue -h -j "$1" -o %r 2>/dev/null)" = "$2" ]; }
job_cancelled() { as_user scontrol -o show job "$1" | grep -q 'JobState=CANCELLED'; }
job_running() { [ "$(as_user squeue -h -j "$1" -o %T 2>/dev/null)" = RUNNING ]; }

state_is "" || die "jobauto has Slurm jobs (tests running?); try again when the queue is idle"
fresh_workdir

# ------------------------------------------------------------------------------ PBS / Torque
OUT="$DATA/pbs"; rm -rf "$OUT"; mkdir -p "$OUT"
cap qsub "$T/qsub ok.sh" 'prints the bare Slurm job id'
ok="$(capture_id qsub)"
cap qsub-named "$T/qsub -N pbs_named ok.sh" 'with -N'
cap qsub-array "$T/qsub -t 1-3 ok.sh" 'array: prints the array job id'
cap qsub-exit3 "$T/qsub -N pbs_exit3 exit3.sh" 'job that exits 3'
fail="$(capture_id qsub-exit3)"
cap qsub-bad-option "$T/qsub --no-such-option ok.sh" 'invalid option: usage on stderr'
cap qsub-missing-script "$T/qsub no-such-script.sh" 'script does not exist'
cap qsub-stdin "echo hostname | $T/qsub" 'the wrapper cannot read a script from stdin'
poll 30 "PBS jobs to finish" state_is ""
cap qsub-running "$T/qsub -N pbs_run sleep.sh" 'a job to be seen running'
run="$(capture_id qsub-running)"
cap qsub-held "$T/qsub -h -N pbs_held sleep.sh" 'held job (qsub -h)'
held="$(capture_id qsub-held)"
poll 30 "job $run to run" job_running "$run"
poll 30 "job $fail in accounting" done_in_sacct "$fail"
cap qstat "$T/qstat" \
    'every job slurmctld still remembers (MinJobAge=300 s): up.sh smoke jobs and the above as C, one R, one held'
cap qstat-one "$T/qstat $run" 'one running job'
cap qstat-f-running "$T/qstat -f $run" 'running job'
cap qstat-f-held "$T/qstat -f $held" 'held job'
cap qstat-f-completed "$T/qstat -f $ok" 'finished, exit 0'
cap qstat-f-exit3 "$T/qstat -f $fail" 'finished, exit 3'
cap qstat-unknown "$T/qstat 999999" 'unknown id'
cap qstat-u "$T/qstat -u jobauto" \
    'the listing the pbs adapter reads: the held job shows as Q, finished ones as C'
cap qstat-f-several "$T/qstat -f $ok $fail" 'two finished jobs in one call'
cap qstat-x-f "$T/qstat -x -f $ok" 'the wrappers have no -x (PBS Pro: finished jobs; Torque: XML)'
cap pbs-queue "PATH=$T:\$PATH $(adapter_cmd pbs queue_argv jobauto)" \
    "jobauto's queue command (PbsAdapter.queue_argv): the listing, then qstat -f of its jobs"
cap pbs-acct "PATH=$T:\$PATH $(adapter_cmd pbs acct_argv "$ok" "$fail" 999999)" \
    "jobauto's accounting command (PbsAdapter.acct_argv): -x refused, then qstat -f"
cap qdel "$T/qdel $run" 'qdel of a running job'
poll 30 "job $run to be cancelled" job_cancelled "$run"
cap qstat-f-cancelled "$T/qstat -f $run" 'the job deleted by qdel above'
cap qdel-unknown "$T/qdel 999999" 'qdel of an unknown id'
# An array named as jobmon names its arrays (per_task): task 1 fails at once, 2 and 3 run (the
# throttle %2 keeps 4 pending until one ends), beside a held plain job.
rx 'printf "#!/bin/sh\ncase \$SLURM_ARRAY_TASK_ID in 1) sleep 1; exit 3;; esac\nsleep 120\n" > arr_task.sh'
plain="$(rx "$T/qsub -h -N pbs_plain sleep.sh")"
parr="$(rx "$T/qsub -N jacapX1_0 -t '1-4%2' arr_task.sh")"
tasks_running() { local s; s="$(as_user squeue -h -r -j "$parr" -o '%K %T')" &&
    grep -q '^2 RUNNING' <<<"$s" && grep -q '^3 RUNNING' <<<"$s"; }
poll 60 "tasks 2 and 3 of array $parr to run" tasks_running
cap pbs-array-qstat-t "$T/qstat -t -u jobauto" 'the wrappers have no -t (Torque, PBS Pro: subjobs)'
cap pbs-array-queue "PATH=$T:\$PATH $(adapter_cmd pbs queue_argv jobauto)" \
    "jobauto's queue command on the wrappers: -t refused, squeue's map, qstat -u, qstat -f, the map after @@jobauto-squeue"
cap pbs-array-cancel "PATH=$T:\$PATH $(adapter_cmd pbs cancel_argv "$parr[3]")" \
    "jobauto's cancel of task 3 on the wrappers: scancel ${parr}_3"
sleep 2
cap pbs-array-after-cancel "squeue -h -r -u jobauto -o '%A %F %K %T %j'" 'only task 3 is gone'
cap pbs-array-acct "PATH=$T:\$PATH $(adapter_cmd pbs acct_argv "$parr[1]" "$parr[2]" "$parr[3]" "$parr[4]" "$parr")" \
    "jobauto's accounting command for the tasks: sacct gets ${parr}_1,..."
cap qdel-task "$T/qdel '$parr[4]'" "the wrappers' qdel reads $parr[4] as $parr and kills the whole array"
sleep 2
cap qdel-task-sacct "$SACCT -j $parr" 'after qdel of one task: every task cancelled'
as_user scancel "$plain" "$parr" || true
clear_jobs
write_readme "Captured PBS/Torque wrapper output (on Slurm)" "$(cat <<EOF
Real output of the PBS/Torque compatibility wrappers of Slurm $(sinfo -V | awk '{ print $NF }')
(Debian 12 \`slurm-wlm-torque\`, unpacked to \`$T\` because the package conflicts with
\`gridengine-client\`), on the test cluster from \`tests/cluster/up.sh sshd slurm\` (one node
\`$(hostname -s)\`, partition \`debug\`). Produced by \`tests/cluster/capture-slurm.sh\` (run it as
root to regenerate this and ../slurm/). The wrappers' job ids are Slurm's; array tasks appear
under their own raw Slurm job ids. The wrappers' \`qsub\` reports sbatch failures on stdout.
EOF
)"

# -------------------------------------------------------------------------------------- Slurm
OUT="$DATA/slurm"; rm -rf "$OUT"; mkdir -p "$OUT"; : >"$ROWS"
cap sbatch-parsable 'sbatch --parsable -J ok ok.sh' 'normal job (exits 0)'
ok="$(capture_id sbatch-parsable)"
cap sbatch 'sbatch -J ok_plain ok.sh' 'without --parsable'
cap sbatch-parsable-array 'sbatch --parsable -a 1-3 -J arr ok.sh' 'array job'
arr="$(capture_id sbatch-parsable-array)"
cap sbatch-bad-option 'sbatch --parsable --no-such-option ok.sh' 'invalid option'
cap sbatch-missing-script 'sbatch --parsable no-such-script.sh' 'script does not exist'
cap sbatch-parsable-exit3 'sbatch --parsable -J exit3 exit3.sh' 'job that exits 3'
fail="$(capture_id sbatch-parsable-exit3)"
cap sbatch-parsable-timeout 'sbatch --parsable -J timeout -t 1 sleep.sh 300' \
    'time limit 1 minute (the smallest; Slurm checks limits about every 30 s)'
tmo="$(capture_id sbatch-parsable-timeout)"
cap sbatch-parsable-cancel 'sbatch --parsable -J cancel sleep.sh 300' 'to be cancelled while running'
can="$(capture_id sbatch-parsable-cancel)"
poll 30 "job $can to run" job_running "$can"
cap scancel "scancel $can" 'scancel of a running job: silent'
cap scancel-unknown 'scancel 999999' 'unknown id'
cap squeue-unknown "squeue -h -j 999999 -o '%i|%j|%T|%r'" 'unknown id'
for j in "$ok" "$arr" "$fail" "$can"; do poll 30 "job $j in accounting" done_in_sacct "$j"; done
cap sacct-completed "$SACCT -j $ok" 'finished, exit 0'
cap sacct-failed "$SACCT -j $fail" 'finished, exit 3'
cap sacct-cancelled "$SACCT -j $can" 'cancelled with scancel while running'
cap sacct-array "$SACCT -j $arr" 'array job, 3 tasks: one line per task'
cap sacct-unknown "$SACCT -j 999999" 'unknown id: no output, exit 0'
cap scontrol-completed "scontrol -o show job $ok" 'finished, exit 0 (slurmctld keeps it for MinJobAge)'
cap scontrol-failed "scontrol -o show job $fail" 'finished, exit 3'
cap scontrol-cancelled "scontrol -o show job $can" 'cancelled with scancel while running'
cap scontrol-array "scontrol -o show job $arr" 'array job, 3 tasks: one line per task'
cap scontrol-unknown 'scontrol -o show job 999999' 'unknown id'
poll 150 "job $tmo to time out" done_in_sacct "$tmo"
cap sacct-timeout "$SACCT -j $tmo" 'killed at its time limit (-t 1)'
cap sacct-several "$SACCT -j $ok,$fail,$tmo,$can" 'the four jobs above in one call'
cap scontrol-timeout "scontrol -o show job $tmo" 'killed at its time limit (-t 1)'
cap acct-several "$(adapter_cmd slurm acct_argv "$ok" "$fail" "$tmo" "$can" "$arr" 999999)" \
    "jobauto's accounting command (SlurmAdapter.acct_argv) for the jobs above and an unknown id"
poll 60 "the submitted jobs to finish" state_is ""

# queue snapshots (the node has 4 CPUs; every job takes 1)
cap squeue-empty "$SQ" 'no jobs: empty output'
for i in 1 2 3 4 5 6; do rx "sbatch --parsable -J run$i sleep.sh" >/dev/null; done
poll 30 "4 running, 2 pending" state_is "PENDING PENDING RUNNING RUNNING RUNNING RUNNING"
cap squeue-running-pending "$SQ" '6 jobs: 4 running, 2 pending'
clear_jobs
rx 'sbatch --parsable -H -J held sleep.sh' >/dev/null
poll 30 "a held job" state_is "PENDING"
cap squeue-held "$SQ" 'one job submitted with sbatch -H'
clear_jobs
dep="$(rx "sbatch --parsable -J dep_never --dependency=afterok:$fail sleep.sh")"
poll 60 "job $dep to wait for ever" reason_is "$dep" DependencyNeverSatisfied
cap squeue-dep-never "$SQ" 'a job that depends on the failed job (afterok): it can never start'
clear_jobs
rx 'sbatch --parsable -a 1-6%2 -J arr_thr sleep.sh' >/dev/null
poll 30 "2 array tasks running, 4 held back" state_is "PENDING PENDING PENDING PENDING RUNNING RUNNING"
cap squeue-array-throttle "$SQ" 'array -a 1-6%2: 2 tasks running, the rest held back by the %2 limit'
clear_jobs
rx 'sbatch --parsable -a 1-6 -J arr_busy sleep.sh' >/dev/null
poll 30 "array tasks 1-4 running, 5-6 pending" state_is "PENDING PENDING RUNNING RUNNING RUNNING RUNNING"
cap squeue-array "$SQ" 'array -a 1-6: tasks 1-4 running, 5-6 pending (one line)'
cap squeue-array-r "${SQ/-h/-h -r}" 'the same with -r: one line per task'
clear_jobs
rx 'sbatch --parsable -J mix_a sleep.sh' >/dev/null
rx 'sbatch --parsable -a 1-4 -J mix_arr sleep.sh' >/dev/null
rx 'sbatch --parsable -J mix_pending sleep.sh' >/dev/null
rx 'sbatch --parsable -H -J mix_held sleep.sh' >/dev/null
poll 30 "the mixed queue" state_is "PENDING PENDING PENDING RUNNING RUNNING RUNNING RUNNING"
cap squeue-mixed "$SQ" 'in submit order: 1 running; array -a 1-4 with tasks 1-3 running, 4 pending; 1 pending; 1 held'
cap squeue-mixed-r "${SQ/-h/-h -r}" 'the same with -r'
cap squeue-mixed-default 'squeue -u jobauto' 'the same, default format'
clear_jobs
"${SSH[@]}" 'rm -rf capture' </dev/null

write_readme "Captured Slurm output" "$(cat <<EOF
Real output of Slurm $(sinfo -V | awk '{ print $NF }') (Debian 12 packages; accounting through
slurmdbd + MariaDB) on the test cluster from \`tests/cluster/up.sh sshd slurm\` (one node
\`$(hostname -s)\` with 4 CPUs, partition \`debug\`), for the Slurm adapter's unit tests. Produced
by \`tests/cluster/capture-slurm.sh\` (run it as root to regenerate this and ../pbs/). Right after
a job ends, sacct can already report its final state while JobName still reads \`allocation\`;
the script waits for the real name before capturing.
EOF
)"
echo "CAPTURED $(count_captures "$DATA/pbs") PBS and $(count_captures "$OUT") Slurm outputs in $DATA"
