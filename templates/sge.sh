#!/bin/bash
# Job script template for jobmon --scheduler=sge (Grid Engine: SGE, Son of GE, Altair/Univa GE,
# TSUBAME): directives, then your commands. jobmon fills in the placeholders (the job's id,
# --binpath, --maxcore) when the run starts and submits the script through a wrapper that keeps
# these directives and writes the markers: see templates/README.md.
#
# Directives are the lines starting with "#$".
#$ -S /bin/bash
#$ -cwd
#$ -j y
#
# Resource requests are site-specific. To use one, delete the "# " in front of its "#$"
# (keep explanations off directive lines: qsub would read them as arguments).
# Hard wall-clock limit; the job gets SIGKILL and no marker is written (jobmon says so):
# #$ -l h_rt=24:00:00
# When jobmon retries a job killed at its walltime (--retries, jobauto reset), add this to qsub
# (delete the first "#" to use it):
##jobauto walltime-retry: -l h_rt=48:00:00
# Soft limit a little earlier: SIGUSR1 first, so the markers are still written:
# #$ -l s_rt=23:55:00
# Parallel environment; its name is site-specific (qconf -spl):
# #$ -pe smp __maxcore__
# #$ -q all.q
# qdel sends SIGUSR2 before SIGKILL (and SIGUSR1 before a suspend, which the wrapper treats
# as the end of the job, so avoid -notify on queues that suspend):
# #$ -notify
#
# TSUBAME 4.0: a resource type and h_rt are mandatory; the group goes on the qsub command line
# through jobmon --qsub-args="-g GROUP". cpu_4 = 4 cores, to match --maxcore=4:
# #$ -l cpu_4=1
# #$ -l h_rt=1:00:00

# >>> your work >>> (the same in every template; jobmon's wrapper writes the markers)
# This script runs in the job's directory. With `set -eo pipefail` the first failing command,
# also inside a pipe, ends the job as failed with that command's exit code.
set -eo pipefail
export PATH="__binpath__:$PATH"
# A clean restart removes what an earlier attempt of this step left behind, e.g.
#   rm -f mix* rst*
# ecalj, material "si" (LDA):
#   lmfa si > llmfa
#   mpirun -np __maxcore__ "__binpath__/lmf-MPIK" si > llmf
echo "job __id__: replace this line with your commands (up to __maxcore__ MPI processes)"
# <<< your work <<<
