#!/bin/bash
# One job: its parameters come as arguments (positional, or --param1 X --param2 Y).
mkdir -p out
echo "$(date +%T) job ${JOBAUTO_JOB_ID}: $*" | tee "out/${JOBAUTO_JOB_ID}.txt"
sleep 0.5
