#!/usr/bin/env bash
# Start, stop or check a single-node Slurm (munged, slurmctld, slurmd) on this
# machine, for the emulator's `slurm` backend and its tests.
#
#   scripts/slurm.sh start    # idempotent; waits until the node is idle
#   scripts/slurm.sh stop     # stops only what `start` started (pid files)
#   scripts/slurm.sh status   # exit 0 if the node answers
#
# Needs root and Debian's slurm-wlm + munge (apt-get install slurm-wlm munge).
# Writes /etc/slurm/slurm.conf unless one not written by this script exists.
# State, logs and pid files live in $FSP_SLURM_DIR (default /var/lib/fsp-slurm).
set -euo pipefail

DIR="${FSP_SLURM_DIR:-/var/lib/fsp-slurm}"
CONF="${SLURM_CONF:-/etc/slurm/slurm.conf}"
MARK="# written by firecrestspawner scripts/slurm.sh"
NODE="$(hostname -s)"

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
ClusterName=fsp
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
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
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

node_state() { sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null | head -n1; }

start() {
    if [[ $EUID -ne 0 ]]; then
        log "must run as root"
        exit 1
    fi
    for cmd in slurmctld slurmd munged sinfo; do
        command -v "$cmd" >/dev/null || { log "$cmd not found (apt-get install slurm-wlm munge)"; exit 1; }
    done
    case "$(node_state || true)" in
        idle|mix|alloc) echo "slurm is already up: node $NODE $(node_state)"; return 0 ;;
    esac
    mkdir -p "$DIR/state" "$DIR/spool"
    write_conf
    start_munge
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
    local name
    for name in slurmd slurmctld munged; do
        if alive "$DIR/$name.pid"; then
            kill "$(cat "$DIR/$name.pid")" || true
            for _ in $(seq 50); do
                alive "$DIR/$name.pid" || break
                sleep 0.1
            done
        fi
        if [[ $name == munged ]]; then
            rm -f "$DIR/munged.pid"
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
