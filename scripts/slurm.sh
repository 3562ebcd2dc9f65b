#!/usr/bin/env bash
# Start, stop or check a single-node Slurm with real accounting (munged,
# MariaDB, slurmdbd, slurmctld, slurmd) on this machine, for the emulator's
# `slurm` backend, the real FirecREST server and their tests.
#
#   scripts/slurm.sh start    # idempotent; waits until the node is idle
#   scripts/slurm.sh stop     # stops only what `start` started (pid files)
#   scripts/slurm.sh status   # exit 0 if the node answers
#
# Needs root and Debian's slurm-wlm, munge, slurmdbd and mariadb-server.
# Writes /etc/slurm/slurm.conf and slurmdbd.conf unless ones not written by this
# script exist. State, logs, the database and pid files live in $FSP_SLURM_DIR
# (default /var/lib/fsp-slurm).
#
# Accounting is enforced (AccountingStorageEnforce=associations), as on real
# sites: the test users, their Unix accounts and their Slurm associations are
# created here (see USERS below); the service account fsp-sa is a Slurm
# operator, so it may list and cancel every user's jobs.
set -euo pipefail

DIR="${FSP_SLURM_DIR:-/var/lib/fsp-slurm}"
CONF="${SLURM_CONF:-/etc/slurm/slurm.conf}"
DBDCONF="$(dirname "$CONF")/slurmdbd.conf"
MARK="# written by firecrestspawner scripts/slurm.sh"
NODE="$(hostname -s)"
CLUSTER=fsp
DB_PORT="${FSP_SLURM_DB_PORT:-33061}"
DB_SOCKET="$DIR/mariadb-run/mariadb.sock"

# Slurm accounts (with their users) and each test user's default account:
# "user:default-account:other-accounts,...". fsp-sa is the hub's service account.
USERS=(
    "fsp-alice:proj-a:proj-b"
    "fsp-bob:proj-b:"
    "fsp-carol:proj-a:"
    "fsp-sa:proj-a:"
)
OPERATORS=(fsp-sa)

log() { echo "slurm.sh: $*" >&2; }

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
    if [[ -f "$CONF" ]] && ! grep -qF "$MARK" "$CONF"; then
        log "using the existing $CONF (not written by this script)"
        return
    fi
    local cpus mem
    cpus="$(nproc)"
    # What slurmd detects, minus a margin so the node is not drained for "low memory".
    mem="$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
    mem=$(( ${mem:-1024} * 9 / 10 ))
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF.tmp" <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=normal Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=debug Nodes=$NODE MaxTime=30 State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return  # already running (ours or the system's)
    fi
    if [[ ! -f /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$DIR/munged.pid"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    log "munged did not come up"
    return 1
}

# --- accounting: MariaDB + slurmdbd ---------------------------------------------------

db() { mariadb --protocol=socket --socket="$DB_SOCKET" -u root "$@"; }

db_alive() { mariadb-admin --protocol=socket --socket="$DB_SOCKET" -u root ping >/dev/null 2>&1; }

start_mariadb() {
    db_alive && return
    local data="$DIR/mariadb"
    if [[ ! -d "$data/mysql" ]]; then
        log "initialising the accounting database in $data"
        mkdir -p "$data"
        chown mysql:mysql "$data"
        mariadb-install-db --user=mysql --datadir="$data" \
            --auth-root-authentication-method=socket >"$DIR/mariadb-install.log" 2>&1 ||
            { log "mariadb-install-db failed, see $DIR/mariadb-install.log"; return 1; }
    fi
    mkdir -p "$DIR/mariadb-run"
    chown mysql:mysql "$DIR/mariadb-run"
    # mariadbd does not daemonise: detach it, as the packages' init scripts do.
    setsid mariadbd --user=mysql --datadir="$data" --socket="$DB_SOCKET" \
        --pid-file="$DIR/mariadb-run/mariadb.pid" --bind-address=127.0.0.1 --port="$DB_PORT" \
        --log-error="$DIR/mariadb-run/mariadb.log" \
        --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 \
        </dev/null >/dev/null 2>&1 &
    for _ in $(seq 150); do
        db_alive && return
        sleep 0.2
    done
    log "MariaDB did not come up; see $DIR/mariadb-run/mariadb.log"
    return 1
}

write_dbd_conf() {
    if [[ -f "$DBDCONF" ]] && ! grep -qF "$MARK" "$DBDCONF"; then
        log "using the existing $DBDCONF (not written by this script)"
        return
    fi
    local pass_file="$DIR/dbpass"
    if [[ ! -s "$pass_file" ]]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pass_file")
    fi
    local pass
    pass="$(cat "$pass_file")"
    db -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
           ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$pass';
           GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
    (
        umask 077
        printf '%s\n' "$MARK" \
            "AuthType=auth/munge" \
            "DbdAddr=127.0.0.1" \
            "DbdHost=localhost" \
            "SlurmUser=root" \
            "PidFile=$DIR/slurmdbd.pid" \
            "LogFile=$DIR/slurmdbd.log" \
            "StorageType=accounting_storage/mysql" \
            "StorageHost=127.0.0.1" \
            "StoragePort=$DB_PORT" \
            "StorageUser=slurm" \
            "StoragePass=$pass" \
            "StorageLoc=slurm_acct_db" >"$DBDCONF.tmp"
    )
    mv "$DBDCONF.tmp" "$DBDCONF"
}

start_slurmdbd() {
    if ! alive "$DIR/slurmdbd.pid"; then
        slurmdbd
    fi
    for _ in $(seq 150); do
        sacctmgr -n -P show cluster format=cluster >/dev/null 2>&1 && return
        sleep 0.2
    done
    log "slurmdbd did not answer; see $DIR/slurmdbd.log"
    return 1
}

# The test users: Unix accounts (unlocked, so that sshd lets the real FirecREST
# in with their keys) and Slurm associations with a default account.
ensure_users() {
    local entry user default others account
    sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER" ||
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    for entry in "${USERS[@]}"; do
        IFS=: read -r user default others <<<"$entry"
        if ! id "$user" >/dev/null 2>&1; then
            useradd -m -s /bin/bash "$user"
        fi
        # A locked password ("!") makes sshd refuse key logins; "*" is not
        # locked and still matches no password.
        usermod -p '*' "$user"
        chmod 0755 "/home/$user"
        for account in $default ${others//,/ }; do
            sacctmgr -n -P show account "$account" format=account | grep -qx "$account" ||
                sacctmgr -i add account "$account" Cluster="$CLUSTER" \
                    Description="firecrestspawner tests" Organization=fsp >/dev/null
            sacctmgr -n -P show assoc where user="$user" account="$account" format=user |
                grep -qx "$user" ||
                sacctmgr -i add user "$user" Account="$account" Cluster="$CLUSTER" >/dev/null
        done
        sacctmgr -i modify user "$user" set DefaultAccount="$default" >/dev/null
    done
    for user in "${OPERATORS[@]}"; do
        sacctmgr -i modify user "$user" set AdminLevel=Operator >/dev/null
    done
}

node_state() { sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null | head -n1; }

start() {
    if [[ $EUID -ne 0 ]]; then
        log "must run as root"
        exit 1
    fi
    for cmd in slurmctld slurmd munged sinfo slurmdbd mariadbd sacctmgr; do
        command -v "$cmd" >/dev/null ||
            { log "$cmd not found (apt-get install slurm-wlm munge slurmdbd mariadb-server)"; exit 1; }
    done
    case "$(node_state || true)" in
        idle|mix|alloc)
            # Up already (started by us earlier or by the machine): make sure
            # the test users and their associations exist all the same.
            if sacctmgr -n -P show cluster format=cluster >/dev/null 2>&1; then
                ensure_users
            fi
            echo "slurm is already up: node $NODE $(node_state)"
            return 0
            ;;
    esac
    mkdir -p "$DIR/state" "$DIR/spool"
    write_conf
    start_munge
    start_mariadb
    write_dbd_conf
    start_slurmdbd
    ensure_users
    if ! alive "$DIR/slurmctld.pid"; then
        slurmctld
    fi
    if ! alive "$DIR/slurmd.pid"; then
        slurmd
    fi
    local state=""
    for i in $(seq 120); do
        state="$(node_state || true)"
        case "$state" in
            idle|mix|alloc) echo "slurm is up: node $NODE $state"; return 0 ;;
            down*|drain*|drng*|fail*)
                scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    log "node $NODE did not become idle (state: ${state:-none}); see $DIR/slurmctld.log and $DIR/slurmd.log"
    return 1
}

stop() {
    local name pid_file
    for name in slurmd slurmctld slurmdbd mariadb munged; do
        pid_file="$DIR/$name.pid"
        [[ $name == mariadb ]] && pid_file="$DIR/mariadb-run/mariadb.pid"
        if alive "$pid_file"; then
            kill "$(cat "$pid_file")" || true
            # MariaDB flushes its tables on the way out: give it longer.
            for _ in $(seq 150); do
                alive "$pid_file" || break
                sleep 0.1
            done
        fi
        if [[ $name == munged ]]; then
            rm -f "$pid_file"
        fi
    done
    echo "slurm stopped"
}

status() {
    local state
    state="$(node_state || true)"
    if [[ -n "$state" ]]; then
        echo "node $NODE: $state"
        return 0
    fi
    echo "slurm is not answering"
    return 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
