#!/bin/bash
# Job script template for jobmon --scheduler=local: no directives, only your commands. jobmon
# fills in the placeholders (the job's id, --binpath, --maxcore) when the run starts and runs
# the script through a wrapper, in the job's directory, that writes the markers: see
# templates/README.md.

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
