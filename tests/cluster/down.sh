#!/usr/bin/env bash
# tests/cluster/down.sh [sshd] [sge] [slurm] - stop the test cluster's daemons (as root).
# No argument = all three. Each daemon is stopped by its pid file, after checking that the pid
# still belongs to that program (/proc/PID/comm). Packages, users, keys and state stay, so
# up.sh brings everything back in a few seconds.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"
[ $# -gt 0 ] || set -- slurm sge sshd
need_root
lock_state
for c in "$@"; do
    case "$c" in
        sshd)  stop_pidfile "$STATE_DIR/sshd.pid" sshd ;;
        sge)   for f in "$SGE_EXECD_SPOOL"/*/execd.pid; do stop_pidfile "$f" sge_execd; done
               stop_pidfile "$SGE_QMASTER_PID" sge_qmaster ;;
        slurm) for (( i = ${#SLURM_DAEMONS[@]} - 1; i >= 0; i-- )); do
                   stop_pidfile "${SLURM_DAEMONS[i]%%:*}" "${SLURM_DAEMONS[i]##*:}"
               done ;;
        *)     die "unknown component '$c' (use: sshd sge slurm)" ;;
    esac
done
echo "DOWN $*"
