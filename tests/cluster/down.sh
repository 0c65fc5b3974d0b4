#!/usr/bin/env bash
# tests/cluster/down.sh [sshd] [sge] [slurm] - stop the test cluster's daemons (as root).
# No argument = all three. Each daemon is stopped by its pid file, after checking that the pid
# still belongs to that program (/proc/PID/comm). Packages, users, keys and state stay, so
# up.sh brings everything back in a few seconds.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"
[ $# -gt 0 ] || set -- slurm sge sshd
need_root
lock_state
specs=()
for c in "$@"; do
    case "$c" in
        sshd)  specs+=("$STATE_DIR/sshd.pid:sshd") ;;
        sge)   for f in "$SGE_EXECD_SPOOL"/*/execd.pid; do specs+=("$f:sge_execd"); done
               specs+=("$SGE_QMASTER_PID:sge_qmaster") ;;
        slurm) specs+=("${SLURM_DAEMONS[@]}") ;;
        *)     die "unknown component '$c' (use: sshd sge slurm)" ;;
    esac
done
stop_pidfile "${specs[@]}"
echo "DOWN $*"
