#!/usr/bin/env bash
# tests/cluster/up.sh [sshd] [sge] [slurm] - start the real test cluster on this machine (as root).
# No argument = "sshd sge". Installs missing Debian packages, starts the daemons without systemd,
# configures them, proves each one with a real login or job as user `jobauto`, and prints one
# "<NAME> READY ..." line per component. Idempotent: re-running while up only re-checks (about a
# second per component); after a reboot it restarts whatever is down. Exits non-zero with a
# message if anything does not come up. Every daemon is started with stdio on /dev/null or a log
# file, so a caller piping our output (CI) is not held open.
#
#   sshd   127.0.0.1:2222, key-only, user jobauto; client files in /tmp/jobauto-cluster
#          (ssh -F /tmp/jobauto-cluster/ssh_config testhost ...)
#   sge    Son of Grid Engine: qmaster + execd, all.q with 4 slots on this host, PE smp
#   slurm  slurmctld + slurmd + slurmdbd/MariaDB (sacct) + munge, partition debug;
#          PBS/Torque wrappers in /opt/slurm-torque/bin (SGE keeps /usr/bin/qsub)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"
cd /          # commands below run as jobauto, who cannot enter every caller's directory
export DEBIAN_FRONTEND=noninteractive
HOST="$(hostname -s)"
SGE_SLOTS=4
SLURM_CPUS=4                 # > nproc on a 2-core CI box: SlurmdParameters=config_overrides
SLURM_DB_PASS=jobauto-test   # local MariaDB on 127.0.0.1 only; a test fixture, not a secret

components=()
[ $# -gt 0 ] || set -- sshd sge
for c in sshd sge slurm; do     # fixed start order whatever the argument order
    for a in "$@"; do [ "$a" = "$c" ] && components+=("$c") && break; done
done
for a in "$@"; do
    case "$a" in sshd|sge|slurm) ;; *) die "unknown component '$a' (use: sshd sge slurm)" ;; esac
done
need_root
lock_state

TMP="$(mktemp -d)"
OWN_POLICY=""
cleanup() { rm -rf "$TMP"; if [ -n "$OWN_POLICY" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

# write_if_changed FILE [MODE]: store stdin in FILE unless it already holds exactly that;
# succeed only when the file changed.
write_if_changed() {
    cat >"$TMP/new"
    if [ -f "$1" ] && cmp -s "$TMP/new" "$1"; then return 1; fi
    install -m "${2:-0644}" "$TMP/new" "$1"
}

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

# apt_quiet ARGS...: apt-get with its chatter in $STATE_DIR/apt.log, shown only on failure.
apt_quiet() {
    if ! apt-get -y -o DPkg::Lock::Timeout=120 "$@" >>"$STATE_DIR/apt.log" 2>&1; then
        tail -n 30 "$STATE_DIR/apt.log" >&2
        die "apt-get $* failed (full log: $STATE_DIR/apt.log)"
    fi
}

# ------------------------------------------------------------------------------------ packages
install_packages() {
    local want=() missing=() p c
    for c in "${components[@]}"; do
        case "$c" in
            sshd)  want+=(openssh-server openssh-client rsync) ;;
            sge)   want+=(gridengine-master gridengine-exec gridengine-client) ;;
            slurm) want+=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server
                          libslurm-perl libslurmdb-perl libswitch-perl) ;;   # last 3: torque wrappers
        esac
    done
    for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -gt 0 ] || return 0
    # The gridengine postinsts ask three debconf questions; the qmaster host has no default.
    for p in gridengine-common gridengine-client gridengine-master gridengine-exec; do
        printf '%s shared/gridengineconfig boolean true\n%s shared/gridenginecell string default\n%s shared/gridenginemaster string %s\n' \
            "$p" "$p" "$p" "$HOST"
    done | debconf-set-selections
    # No service may start from a postinst (a port-22 sshd, a second qmaster, ...); the
    # gridengine postinst even aborts when its start fails. Images often ship a policy-rc.d
    # that denies starts; if this one does not, add one for the duration of the install.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, from jobauto tests/cluster/up.sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        OWN_POLICY=1
    fi
    : >"$STATE_DIR/apt.log"
    dpkg --configure -a >>"$STATE_DIR/apt.log" 2>&1 || true   # finish an interrupted earlier install
    apt_quiet update
    apt_quiet install --no-install-recommends "${missing[@]}"
    if [ -n "$OWN_POLICY" ]; then rm -f /usr/sbin/policy-rc.d; OWN_POLICY=""; fi
}

# The unprivileged user every test job and login runs as. useradd leaves '!' (locked) in
# /etc/shadow, and with UsePAM=no sshd refuses even key logins to a locked account; '*' means
# "no valid password" without "locked".
ensure_user() {
    id "$TEST_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$TEST_USER"
    [ "$(getent shadow "$TEST_USER" | cut -d: -f2)" = "*" ] || usermod -p '*' "$TEST_USER"
}

# ---------------------------------------------------------------------------------------- sshd
up_sshd() {
    local t0 home pid pub changed=""
    t0="$(date +%s.%N)"
    home="$(getent passwd "$TEST_USER" | cut -d: -f6)"
    if [ ! -f "$STATE_DIR/ssh_host_ed25519_key" ]; then
        ssh-keygen -q -t ed25519 -N '' -C jobauto-test-host -f "$STATE_DIR/ssh_host_ed25519_key"
        changed=1
    fi
    [ -f "$STATE_DIR/id_ed25519" ] ||
        ssh-keygen -q -t ed25519 -N '' -C jobauto-test-client -f "$STATE_DIR/id_ed25519"

    # LogLevel VERBOSE: tests count logins in sshd.log. MaxSessions/MaxStartups: tests open
    # many connections and channels at once; the defaults (10, 10:30:100) drop some.
    if write_if_changed "$STATE_DIR/sshd_config" <<EOF
ListenAddress 127.0.0.1:$SSHD_PORT
HostKey $STATE_DIR/ssh_host_ed25519_key
PidFile $STATE_DIR/sshd.pid
LogLevel VERBOSE
AllowUsers $TEST_USER
PermitRootLogin no
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile .ssh/authorized_keys
MaxSessions 50
MaxStartups 50:30:100
X11Forwarding no
PrintMotd no
Subsystem sftp internal-sftp
EOF
    then changed=1; fi

    pub="$(cut -d' ' -f1,2 "$STATE_DIR/ssh_host_ed25519_key.pub")"
    printf '[127.0.0.1]:%s %s\n[localhost]:%s %s\n' "$SSHD_PORT" "$pub" "$SSHD_PORT" "$pub" |
        write_if_changed "$STATE_DIR/known_hosts" || true
    write_if_changed "$STATE_DIR/ssh_config" <<EOF || true
Host testhost
    HostName 127.0.0.1
    Port $SSHD_PORT
    User $TEST_USER
    IdentityFile $STATE_DIR/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $STATE_DIR/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 10
EOF

    # jobauto trusts the key and can ssh to itself (ssh testhost, or -p 2222 localhost/127.0.0.1)
    install -d -m 0700 -o "$TEST_USER" -g "$TEST_USER" "$home/.ssh"
    install -m 0600 -o "$TEST_USER" -g "$TEST_USER" "$STATE_DIR/id_ed25519.pub" "$home/.ssh/authorized_keys"
    install -m 0600 -o "$TEST_USER" -g "$TEST_USER" "$STATE_DIR/id_ed25519" "$home/.ssh/id_ed25519"
    install -m 0644 -o "$TEST_USER" -g "$TEST_USER" "$STATE_DIR/id_ed25519.pub" "$home/.ssh/id_ed25519.pub"
    install -m 0644 -o "$TEST_USER" -g "$TEST_USER" "$STATE_DIR/known_hosts" "$home/.ssh/known_hosts"
    sed -e "s|$STATE_DIR/id_ed25519|~/.ssh/id_ed25519|" -e "s|$STATE_DIR/known_hosts|~/.ssh/known_hosts|" \
        "$STATE_DIR/ssh_config" >"$TMP/user_ssh_config"
    install -m 0600 -o "$TEST_USER" -g "$TEST_USER" "$TMP/user_ssh_config" "$home/.ssh/config"

    install -d -m 0755 /run/sshd      # privilege-separation dir; systemd's unit normally makes it
    /usr/sbin/sshd -t -f "$STATE_DIR/sshd_config" || die "sshd rejects $STATE_DIR/sshd_config"
    if pid="$(pid_of "$STATE_DIR/sshd.pid" sshd)"; then
        if [ -n "$changed" ]; then kill -HUP "$pid"; fi    # sshd re-execs itself, same pid
        wait_sshd
    else
        start_sshd
    fi
    echo "SSHD READY $TEST_USER@127.0.0.1:$SSHD_PORT pid=$(cat "$STATE_DIR/sshd.pid")" \
         "ssh_config=$STATE_DIR/ssh_config ($(elapsed "$t0")s)"
}

# ----------------------------------------------------------------------------------------- sge
# qc ARGS...: qconf, which reports success on stderr; show its output only when it fails.
qc() { local out; out="$(qconf "$@" 2>&1)" || die "qconf $* failed: $out"; }
# qc_apply OPT NEW CURRENT: qconf OPT NEW unless CURRENT says the same (whitespace aside).
qc_apply() {
    local norm='s/[[:space:]]\+/ /g; s/ $//'
    if [ -s "$3" ] && [ "$(sed "$norm" "$2")" = "$(sed "$norm" "$3")" ]; then return 0; fi
    qc "$1" "$2"
}
sge_execd_pid() {
    local f
    for f in "$SGE_EXECD_SPOOL"/*/execd.pid; do pid_of "$f" sge_execd && return 0; done
    return 1
}
# The state column of qstat -f for all.q on this host ("-" when fine, e.g. "u", "E", "d").
sge_queue_state() {
    qstat -f -q all.q 2>/dev/null | awk '/^all\.q@/ { print ($6 == "" ? "-" : $6); found = 1 }
                                          END { if (!found) print "missing" }'
}

up_sge() {
    local t0 ip aliases wd out common="$SGE_ROOT/$SGE_CELL/common" i f op changed=""
    t0="$(date +%s.%N)"
    getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >>/etc/hosts
    if [ ! -f "$common/bootstrap" ]; then       # debconf said "no": create the cell ourselves
        install -d -o sgeadmin -g sgeadmin /var/spool/gridengine/spooldb "$common"
        runuser -u sgeadmin -- /usr/share/gridengine/scripts/init_cluster \
            "$SGE_ROOT" "$SGE_CELL" /var/spool/gridengine/spooldb sgeadmin >"$TMP/init" 2>&1 ||
            { cat "$TMP/init" >&2; die "SGE init_cluster failed"; }
    fi
    install -d -o sgeadmin -g sgeadmin "$SGE_EXECD_SPOOL"

    # gethostname() says "vm", but 127.0.0.1 reverse-resolves to "localhost" (first line of
    # /etc/hosts), so qmaster denies every client ("client IP resolved to host name localhost.
    # This is not identical to clients host name vm"). Declare every name of our address an alias.
    ip="$(getent hosts "$HOST" | awk '{ print $1; exit }')"
    aliases="$({ awk -v ip="$ip" '$1 == ip { for (i = 2; i <= NF; i++) print $i }' /etc/hosts
                 getent hosts "$ip" | awk '{ for (i = 2; i <= NF; i++) print $i }'
                 hostname -f 2>/dev/null; echo localhost; } | grep -vxF "$HOST" | sort -u | tr '\n' ' ')"
    if echo "$HOST ${aliases% }" | write_if_changed "$common/host_aliases"; then changed=1; fi
    if echo "$HOST" | write_if_changed "$common/act_qmaster"; then changed=1; fi
    if [ -n "$changed" ]; then
        chown sgeadmin:sgeadmin "$common/host_aliases" "$common/act_qmaster"
        # daemons read host_aliases at start only
        for f in "$SGE_EXECD_SPOOL"/*/execd.pid; do stop_pidfile "$f:sge_execd" >/dev/null; done
        stop_pidfile "$SGE_QMASTER_PID:sge_qmaster" >/dev/null
    fi

    if ! pid_of "$SGE_QMASTER_PID" sge_qmaster >/dev/null; then
        rm -f "$SGE_QMASTER_PID" /var/spool/gridengine/qmaster/lock
        start_daemon /usr/sbin/sge_qmaster || die "sge_qmaster did not start"
    fi
    if ! wait_for 30 qconf -sss; then
        tail -n 5 /var/spool/gridengine/qmaster/messages >&2 || true
        die "SGE qmaster does not answer (log: /var/spool/gridengine/qmaster/messages)"
    fi
    # A qmaster that lost its pid file (say, its package was purged while it ran) still holds
    # port 6444 and answers qconf, while the one we just started died.
    pid_of "$SGE_QMASTER_PID" sge_qmaster >/dev/null ||
        die "sge_qmaster is not running from $SGE_QMASTER_PID; is another one holding port 6444?"

    qconf -sh 2>/dev/null | grep -qxF "$HOST" || qc -ah "$HOST"
    qconf -ss 2>/dev/null | grep -qxF "$HOST" || qc -as "$HOST"

    # Global config: root may not run jobs (uid/gid >= 1000), load reports every 5 s, and the
    # accounting file qacct reads flushed every second (default 15 s). -Mconf takes the config
    # name from the file name, hence .../global.
    install -d "$TMP/conf"
    qconf -sconf global >"$TMP/global.cur"
    sed -e 's/^min_uid .*/min_uid 1000/' -e 's/^min_gid .*/min_gid 1000/' \
        -e 's/^load_report_time .*/load_report_time 00:00:05/' \
        -e 's/flush_time=[0-9:]*/flush_time=00:00:01/' "$TMP/global.cur" >"$TMP/conf/global"
    qc_apply -Mconf "$TMP/conf/global" "$TMP/global.cur"

    # Scheduler: run every second and right after each submit/finish (defaults: 15 s, 4 s, 0).
    qconf -ssconf >"$TMP/sconf.cur"
    sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/' -e 's/^flush_submit_sec .*/flush_submit_sec 1/' \
        -e 's/^flush_finish_sec .*/flush_finish_sec 1/' "$TMP/sconf.cur" >"$TMP/sconf"
    qc_apply -Msconf "$TMP/sconf" "$TMP/sconf.cur"

    printf 'group_name @allhosts\nhostlist %s\n' "$HOST" >"$TMP/hgrp"
    if qconf -shgrp @allhosts >"$TMP/hgrp.cur" 2>/dev/null; then op=-Mhgrp; else op=-Ahgrp; fi
    qc_apply "$op" "$TMP/hgrp" "$TMP/hgrp.cur"

    # PE smp (all slots of a job on one host); the queue template lists PEs that do not exist.
    cat >"$TMP/pe" <<'EOF'
pe_name smp
slots 999
user_lists NONE
xuser_lists NONE
start_proc_args NONE
stop_proc_args NONE
allocation_rule $pe_slots
control_slaves TRUE
job_is_first_task TRUE
urgency_slots min
accounting_summary FALSE
qsort_args NONE
EOF
    if qconf -sp smp >"$TMP/pe.cur" 2>/dev/null; then op=-Mp; else op=-Ap; fi
    qc_apply "$op" "$TMP/pe" "$TMP/pe.cur"

    # Queue all.q, edited from its current definition or the template for new queues: no load
    # thresholds (a busy 2-core box would put it in alarm state), bash, and unix_behavior so
    # #! lines are honoured (posix_compliant ignores them).
    if qconf -sq all.q >"$TMP/q.cur" 2>/dev/null; then op=-Mq; else op=-Aq; qconf -sq >"$TMP/q.cur"; fi
    sed -e 's/^qname .*/qname all.q/' -e 's/^hostlist .*/hostlist @allhosts/' -e "s/^slots .*/slots $SGE_SLOTS/" \
        -e 's/^load_thresholds .*/load_thresholds NONE/' -e 's/^pe_list .*/pe_list smp/' \
        -e 's|^shell .*|shell /bin/bash|' -e 's/^shell_start_mode .*/shell_start_mode unix_behavior/' \
        "$TMP/q.cur" >"$TMP/q"
    qc_apply "$op" "$TMP/q" "$TMP/q.cur"

    if ! sge_execd_pid >/dev/null; then
        rm -f "$SGE_EXECD_SPOOL"/*/execd.pid
        start_daemon /usr/sbin/sge_execd || die "sge_execd did not start"
    fi
    # Until execd's first load report the queue instance is in state "u" (unknown).
    for i in $(seq 150); do
        case "$(sge_queue_state)" in *u*|missing) sleep 0.2 ;; *) break ;; esac
    done
    # A job that failed in a way SGE blames on the queue leaves all.q in state E, which blocks
    # every later job until cleared; clear E and a disabled state on every run.
    qmod -c 'all.q@*' >/dev/null 2>&1 || true
    qmod -e 'all.q@*' >/dev/null 2>&1 || true
    wait_for 10 test "$(sge_queue_state)" = - ||
        { qstat -f >&2 || true; die "all.q@$HOST is not usable (state $(sge_queue_state))"; }

    # Prove it with a real job as the test user.
    wd="$(runuser -u "$TEST_USER" -- mktemp -d /tmp/jobauto-smoke.XXXXXX)"
    if ! out="$(timeout 60 runuser -u "$TEST_USER" -- qsub -sync y -b y -N smoke \
                    -o "$wd/out" -e "$wd/err" /bin/hostname 2>&1)" || [ ! -s "$wd/out" ]; then
        qstat -f >&2 || true
        die "SGE smoke job failed: $out $(cat "$wd/err" 2>/dev/null)"
    fi
    rm -rf "$wd"
    echo "SGE READY host=$HOST queue=all.q slots=$SGE_SLOTS qmaster_pid=$(cat "$SGE_QMASTER_PID")" \
         "execd_pid=$(sge_execd_pid) ($(elapsed "$t0")s)"
}

# --------------------------------------------------------------------------------------- slurm
slurm_node_state() { sinfo -h -n "$HOST" -o %T 2>/dev/null; }

up_slurm() {
    local t0 mem overrides="" restart="" wd job i ver
    t0="$(date +%s.%N)"

    # munge: authentication for every Slurm daemon and client
    if [ ! -s /etc/munge/munge.key ]; then      # the munge postinst normally creates it
        install -d -o munge -g munge -m 0700 /etc/munge
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge     # systemd's RuntimeDirectory= normally
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    if ! pid_of /run/munge/munged.pid munged >/dev/null; then
        rm -f /run/munge/munged.pid
        start_daemon runuser -u munge -- /usr/sbin/munged || die "munged did not start"
    fi
    wait_for 10 sh -c 'munge -n </dev/null | unmunge' || die "munge does not work (log: /var/log/munge/munged.log)"

    install -d -o slurm -g slurm -m 0755 /var/lib/slurm /var/lib/slurm/slurmctld /var/log/slurm
    install -d -m 0755 /var/lib/slurm/slurmd
    mem="$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
    [ "$SLURM_CPUS" -gt "$(nproc)" ] && overrides="SlurmdParameters=config_overrides"
    if write_if_changed /etc/slurm/slurm.conf <<EOF
# written by jobauto tests/cluster/up.sh
ClusterName=jobauto-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# no systemd, no cgroups
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
$overrides
# start jobs right after submit instead of batching submits for up to 3 s
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
KillWait=2
# finished jobs stay visible to squeue/scontrol and the torque qstat (state C) for 5 minutes
MinJobAge=300
ReturnToService=2
InactiveLimit=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$SLURM_CPUS RealMemory=${mem:-1024} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    then restart=1; fi

    # accounting: MariaDB + slurmdbd, so sacct works
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    if ! pid_of /run/mysqld/mysqld.pid mariadbd >/dev/null; then
        rm -f /run/mysqld/mysqld.pid
        setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --pid-file=/run/mysqld/mysqld.pid \
            --socket=/run/mysqld/mysqld.sock --innodb-lock-wait-timeout=900 \
            </dev/null >>/var/log/slurm/mariadb.log 2>&1 9>&- &
    fi
    wait_for 30 mysqladmin ping || { tail -n 5 /var/log/slurm/mariadb.log >&2; die "MariaDB did not start"; }
    mysql -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$SLURM_DB_PASS';
              ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$SLURM_DB_PASS';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" || die "cannot create the slurm DB user"
    if write_if_changed /etc/slurm/slurmdbd.conf 0600 <<EOF
AuthType=auth/munge
DbdHost=$HOST
DbdAddr=127.0.0.1
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$SLURM_DB_PASS
StorageLoc=slurm_acct_db
EOF
    then stop_pidfile /run/slurmdbd.pid:slurmdbd >/dev/null; fi
    chown slurm:slurm /etc/slurm/slurmdbd.conf      # slurmdbd refuses any other owner or mode
    if ! pid_of /run/slurmdbd.pid slurmdbd >/dev/null; then
        rm -f /run/slurmdbd.pid
        start_daemon /usr/sbin/slurmdbd || die "slurmdbd did not start"
    fi
    wait_for 30 sacctmgr -n list cluster ||
        { tail -n 5 /var/log/slurm/slurmdbd.log >&2; die "slurmdbd does not answer"; }

    if [ -n "$restart" ]; then       # node/plugin changes need a restart, not scontrol reconfigure
        stop_pidfile /run/slurmd.pid:slurmd /run/slurmctld.pid:slurmctld >/dev/null
    fi
    if ! pid_of /run/slurmctld.pid slurmctld >/dev/null; then
        rm -f /run/slurmctld.pid
        start_daemon /usr/sbin/slurmctld || die "slurmctld did not start"
    fi
    wait_for 30 sh -c 'scontrol ping | grep -q UP' ||
        { tail -n 5 /var/log/slurm/slurmctld.log >&2; die "slurmctld does not answer"; }
    if ! pid_of /run/slurmd.pid slurmd >/dev/null; then
        rm -f /run/slurmd.pid
        start_daemon /usr/sbin/slurmd || die "slurmd did not start"
    fi
    for i in $(seq 150); do
        case "$(slurm_node_state)" in
            idle*|mixed*|allocated*) break ;;
            drain*|down*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 0.2
    done
    case "$(slurm_node_state)" in idle*|mixed*|allocated*) ;;
        *) die "Slurm node $HOST not usable: $(sinfo -h -N -o '%N %T %E' 2>&1)" ;; esac

    # PBS/Torque wrappers: the slurm-wlm-torque package conflicts with gridengine-client (both
    # ship /usr/bin/qsub), so unpack it instead. The wrappers run ${FindBin::Bin}/sbatch etc.,
    # hence the symlinks beside them.
    ver="$(dpkg-query -W -f='${Version}' slurm-client)"
    if [ "$(cat "$TORQUE_DIR/.version" 2>/dev/null)" != "$ver" ]; then
        install -d -m 0755 "$TMP/deb"
        (cd "$TMP/deb" && apt-get download -q "slurm-wlm-torque=$ver") >>"$STATE_DIR/apt.log" 2>&1 || {
            apt_quiet update
            (cd "$TMP/deb" && apt-get download -q "slurm-wlm-torque=$ver") >>"$STATE_DIR/apt.log" 2>&1 ||
                die "apt-get download slurm-wlm-torque=$ver failed (log: $STATE_DIR/apt.log)"
        }
        rm -rf "$TORQUE_DIR"
        dpkg-deb -x "$TMP"/deb/slurm-wlm-torque_*.deb "$TORQUE_DIR"
        install -d "$TORQUE_DIR/bin"
        ln -sf "$TORQUE_DIR"/usr/bin/* /usr/bin/sbatch /usr/bin/salloc /usr/bin/srun "$TORQUE_DIR/bin/"
        echo "$ver" >"$TORQUE_DIR/.version"
    fi

    # Prove it as the test user: a batch job that sacct reports COMPLETED, and a torque qsub job.
    # (Not sbatch --wait: it polls after 2 s and then 8 s later.)
    wd="$(runuser -u "$TEST_USER" -- mktemp -d /tmp/jobauto-smoke.XXXXXX)"
    job="$(cd "$wd" && runuser -u "$TEST_USER" -- sbatch --parsable -o "$wd/out" --wrap=hostname)" ||
        die "sbatch smoke job was not accepted"
    wait_for 30 test -s "$wd/out" || die "Slurm smoke job $job did not run: $(squeue -j "$job" 2>&1)"
    wait_for 30 sh -c "runuser -u $TEST_USER -- sacct -X -n -P -j $job -o State | grep -qx COMPLETED" ||
        die "sacct does not report smoke job $job as COMPLETED: $(sacct -X -n -P -j "$job" -o State 2>&1)"
    printf '#!/bin/bash\nhostname\n' >"$wd/pbs.sh"; chown "$TEST_USER" "$wd/pbs.sh"
    job="$(cd "$wd" && runuser -u "$TEST_USER" -- "$TORQUE_DIR/bin/qsub" -o "$wd/pbs.out" -e "$wd/pbs.err" "$wd/pbs.sh")" ||
        die "torque qsub smoke job was not accepted"
    wait_for 30 test -s "$wd/pbs.out" || die "torque qsub smoke job $job did not run"
    rm -rf "$wd"
    echo "SLURM READY node=$HOST cpus=$SLURM_CPUS partition=debug accounting=slurmdbd" \
         "torque=$TORQUE_DIR/bin slurmctld_pid=$(cat /run/slurmctld.pid) slurmd_pid=$(cat /run/slurmd.pid)" \
         "($(elapsed "$t0")s)"
}

install_packages
ensure_user
for c in "${components[@]}"; do "up_$c"; done
