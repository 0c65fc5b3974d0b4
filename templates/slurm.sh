#!/bin/bash
# Job script template for jobmon --scheduler=slurm: directives, then your commands. jobmon
# fills in the placeholders (the job's id, --binpath, --maxcore) when the run starts and submits
# the script through a wrapper that keeps these directives and writes the markers: see
# templates/README.md.
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
# Slurm sends SIGTERM at the time limit, and the markers are written; for an earlier warning
# (SIGUSR1 5 minutes before):
##SBATCH --signal=B:USR1@300

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
