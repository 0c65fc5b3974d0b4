# tests/cluster/lib.sh - constants and helpers shared by the scripts in tests/cluster/.
# Sourced, never run. Everything here runs as root on a machine without systemd.
# shellcheck disable=SC2034  # the constants are used by the scripts that source this

STATE_DIR=/tmp/jobauto-cluster            # keys, ssh_config, known_hosts, sshd log + pid, apt log
TEST_USER=jobauto
SSHD_PORT=2222
TORQUE_DIR=/opt/slurm-torque
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
SGE_QMASTER_PID=/var/spool/gridengine/qmaster/qmaster.pid
SGE_EXECD_SPOOL=/var/spool/gridengine/execd   # execd.pid lives in <spool>/<host name>/
# Slurm daemons as "pidfile:comm", as down.sh's stop_pidfile takes them.
SLURM_DAEMONS=(/run/munge/munged.pid:munged /run/mysqld/mysqld.pid:mariadbd
               /run/slurmdbd.pid:slurmdbd /run/slurmctld.pid:slurmctld /run/slurmd.pid:slurmd)

ME="$(basename "$0")"
die()  { echo "$ME: ERROR: $*" >&2; exit 1; }
# Under set -e an unexpected failure would end the script silently: name the command instead.
set -E
trap 'echo "$ME: ERROR: command failed (line $LINENO): $BASH_COMMAND" >&2' ERR
need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# Serialise up/down/restart: two bring-ups racing over one qmaster or one sshd pid file go wrong.
lock_state() {
    install -d -m 0755 "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    flock -w 300 9 || die "another up/down.sh holds $STATE_DIR/.lock"
}

# running PID: the process exists and is not a zombie. PID 1 on these VMs (process_api) does not
# reap orphans, so a daemon that exited stays in /proc as a zombie with its old comm.
running() {
    local st
    st="$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)"
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# pid_of PIDFILE COMM: print the pid if PIDFILE names a running process called COMM (a stale pid
# file after a reboot may name an unrelated process, hence the /proc/PID/comm check).
pid_of() {
    local p
    [ -s "$1" ] || return 1
    p="$(tr -dc 0-9 <"$1")"
    [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && running "$p" && echo "$p"
}

# stop_pidfile PIDFILE:COMM...: SIGTERM each daemon, wait up to 15 s for all of them together
# (slurmctld takes about 2 s, sge_qmaster 3-9 s), SIGKILL what is left; remove the pid files.
stop_pidfile() {
    local spec p pids=() names=() i n
    for spec in "$@"; do
        if p="$(pid_of "${spec%:*}" "${spec##*:}")"; then
            kill "$p" 2>/dev/null || true
            pids+=("$p"); names+=("${spec##*:}")
        fi
        rm -f "${spec%:*}"
    done
    for i in $(seq 150); do
        n=0; for p in "${pids[@]}"; do if running "$p"; then n=1; fi; done
        [ "$n" = 1 ] || break; sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if running "${pids[i]}"; then kill -9 "${pids[i]}" 2>/dev/null || true; fi
        echo "stopped ${names[i]} (pid ${pids[i]})"
    done
}

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds; fail after SECONDS.
wait_for() {
    local n=$(( $1 * 5 )) i; shift
    for i in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}

# elapsed T0: seconds since T0 (a `date +%s.%N` value), one decimal.
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# start_daemon CMD...: run a self-daemonising server in a session of its own with stdio on
# /dev/null, so neither a caller's pipe (CI reading our output) nor its process group holds
# it, and without fd 9 (our lock), which a daemon would otherwise hold for ever.
start_daemon() { setsid -w "$@" </dev/null >/dev/null 2>&1 9>&-; }

# start_sshd: start the test sshd from up.sh's config and wait until the test key logs in.
start_sshd() {
    install -d -m 0755 /run/sshd
    rm -f "$STATE_DIR/sshd.pid"
    start_daemon /usr/sbin/sshd -f "$STATE_DIR/sshd_config" -E "$STATE_DIR/sshd.log" ||
        { tail -n 5 "$STATE_DIR/sshd.log" >&2; die "sshd did not start"; }
    wait_sshd
}

wait_sshd() {
    if ! wait_for 15 ssh -F "$STATE_DIR/ssh_config" testhost true </dev/null; then
        tail -n 10 "$STATE_DIR/sshd.log" >&2
        ssh -F "$STATE_DIR/ssh_config" testhost true </dev/null >&2 || true
        die "sshd on 127.0.0.1:$SSHD_PORT does not accept the test key (log: $STATE_DIR/sshd.log)"
    fi
}
