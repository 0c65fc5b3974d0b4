#!/usr/bin/env bash
# tests/run.sh [PYTEST ARGS...] - the project's one test command (CI runs it via .ci/run).
# 1. installs jobauto with its test extra; 2. as root, installs graphviz/chromium/tmux/sshfs
# (tests/tools.sh) and starts the real test cluster (sshd, Grid
# Engine, Slurm with its PBS wrappers: tests/cluster/up.sh); 3. runs pytest. Under CI=true the cluster is required: failing to
# start it fails the run. Elsewhere a non-root user gets a message and the cluster tests then
# find no cluster. JOBAUTO_SKIP_CLUSTER=1 skips step 2 (e.g. when the cluster is already up).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
PY="${PYTHON:-python}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
ci=""; [ "${CI:-}" = true ] && ci=1

log="$(mktemp)"; trap 'rm -f "$log"' EXIT
if ! "$PY" -m pip install -q -e '.[test]' >"$log" 2>&1; then
    cat "$log" >&2
    echo "run.sh: FAILED: $PY -m pip install -e '.[test]'" >&2
    exit 1
fi

if [ "${JOBAUTO_SKIP_CLUSTER:-}" = 1 ]; then
    echo "run.sh: JOBAUTO_SKIP_CLUSTER=1: not starting the test cluster"
elif [ "$(id -u)" = 0 ]; then
    if ! bash tests/tools.sh; then
        if [ -n "$ci" ]; then echo "run.sh: FAILED: graphviz/chromium/tmux/sshfs did not install" >&2; exit 1; fi
        echo "run.sh: WARNING: graphviz/chromium/tmux/sshfs missing; the view and sshfs tests will fail" >&2
    fi
    if ! bash tests/cluster/up.sh sshd sge slurm; then
        if [ -n "$ci" ]; then echo "run.sh: FAILED: the test cluster did not start (see above)" >&2; exit 1; fi
        echo "run.sh: WARNING: the test cluster did not start; cluster tests will fail" >&2
    fi
elif [ -n "$ci" ]; then
    echo "run.sh: FAILED: CI must run as root to start the test cluster (tests/cluster/up.sh)" >&2
    exit 1
else
    echo "run.sh: not root: not starting the test cluster (start it with: sudo bash tests/cluster/up.sh)"
fi
. tests/cluster/env.sh

# Without arguments: every test, in two passes. First all but the `serial` ones, side by side in
# JOBAUTO_TEST_WORKERS processes (pytest-xdist; most cluster tests wait on the schedulers, so
# they overlap well on 2 cores); then the `serial` ones (they restart the shared sshd or change
# a scheduler's global settings) alone. With arguments: pytest with exactly those, in one process.
rc=0
if [ "$#" -gt 0 ]; then
    "$PY" -m pytest -q "$@" || rc=$?
else
    "$PY" -m pytest -q -n "${JOBAUTO_TEST_WORKERS:-3}" -m "not serial" --durations=20 || rc=$?
    rc2=0; "$PY" -m pytest -q -m serial || rc2=$?
    [ "$rc" != 0 ] || rc=$rc2
fi
if [ "$rc" = 5 ]; then
    echo "run.sh: FAILED: pytest collected no tests (exit 5)" >&2
fi
exit "$rc"
