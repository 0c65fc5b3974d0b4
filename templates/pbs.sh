#!/bin/bash
# Job script template for jobmon --scheduler=pbs (PBS Pro / OpenPBS; Torque in the comments):
# directives, then your commands. jobmon fills in the placeholders (the job's id, --binpath,
# --maxcore) when the run starts and submits the script through a wrapper that keeps these
# directives, starts the script in the job's directory (not $HOME) and writes the markers: see
# templates/README.md.
#
# Directives are the lines starting with "#PBS", all before the first command;
# "##PBS" lines are switched off (delete one "#" to use one).
#PBS -j oe
#PBS -l select=1:ncpus=__maxcore__:mpiprocs=__maxcore__
# Torque instead of the select line above:
##PBS -l nodes=1:ppn=__maxcore__
##PBS -l walltime=24:00:00
# When jobmon retries a job killed at its walltime (--retries, jobauto reset), add this to qsub
# (delete the first "#" to use it):
##jobauto walltime-retry: -l walltime=48:00:00
##PBS -q workq

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
