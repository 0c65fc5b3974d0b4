#!/usr/bin/env bash
# tests/cluster/restart-sshd.sh - stop the test sshd and start it again (as root), for tests that
# must survive a server restart. Returns once a fresh login works; sessions already open keep
# running, as with a real sshd restart. The sshd must have been set up by up.sh before.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"
need_root
[ -f "$STATE_DIR/sshd_config" ] || die "no $STATE_DIR/sshd_config: run up.sh sshd first"
lock_state
stop_pidfile "$STATE_DIR/sshd.pid:sshd" >/dev/null
start_sshd
echo "SSHD RESTARTED pid=$(cat "$STATE_DIR/sshd.pid")"
