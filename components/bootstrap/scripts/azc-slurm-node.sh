#!/usr/bin/env bash
# azc-slurm-node: make this GPU node a Slurm node, with no step by anyone, on every boot.
#
# Installs munge and the pinned Slurm (azc-slurm-lib.sh), installs the cluster's munge key, claims a
# node slot of this node's InfiniBand island from slurmctld and starts slurmd configless:
#   slurmd -N <slot> --conf-server <controller DNS name>:<port>
# slurmctld learns the slot's address and host name from the registration, so the node is schedulable
# in its pool's partition and under its island's topology switch as soon as slurmd is up (why slots:
# components/bootstrap/slurm.py).
#
# Claiming, from slurmctld's node table (client_conf: readable before slurmd has a configuration; an
# unreadable table fails the claim and systemd retries): the slot this host already holds (a reboot, a
# start after a stop), else a slot Slurm is powering up for a job (elastic power), else a free slot
# (slot_is_free: powered down, or its VM gone), looking first at the host's instance number modulo the
# slot count only to spread nodes created together. Two nodes booting at once never take one slot:
# slurmctld arbitrates. A node first takes the slot's claim, a reservation named `azc-claim-<slot>`
# (creating a reservation whose name exists fails, so exactly one of several callers gets it), then reads
# the slot again and starts slurmd only if it is still free (or its own), and hands the claim back once
# slurmctld shows its registration; a node that loses the claim, or finds the slot taken, tries the next
# one. Then the node takes back the controller's free-slot drain (activate). The reasoning, and why not
# check-and-retry: components/bootstrap/slurm.py.
#
# Usage: azc-slurm-node.sh [start|claim|activate SLOT]
#   claim: print the slot this node would take, change nothing; activate: undrain SLOT once registered
set -euo pipefail
AZC_TAG=azc-slurm-node
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-lib.sh}"
# shellcheck source=azc-slurm-lib.sh
. "${AZC_SLURM_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-slurm-lib.sh}"

HOST="${AZC_HOSTNAME:-$(hostname -s)}"
COUNT="${AZC_SLURM_SLOTS:?AZC_SLURM_SLOTS is not set}"
REGISTER_WAIT="${AZC_SLURM_REGISTER_WAIT:-120}" # seconds slurmd has to register once started
VERIFY_WAIT="${AZC_SLURM_VERIFY_WAIT:-$((5 + RANDOM % 6))}" # GB nodes: for other domains' marks to show
CLAIM_MINUTES="${AZC_SLURM_CLAIM_MINUTES:-5}"    # a claim whose holder died lapses by itself
CLAIM_PREFIX=azc-claim-

instance_number() {
    local suffix="${HOST##*-}"
    if [[ "$suffix" =~ ^[0-9a-z]{6}$ ]]; then
        echo $((36#$suffix))
    else
        printf '%s' "$HOST" | cksum | cut -d' ' -f1
    fi
}

# claim [EXCLUDED...]: print the slot to use.
claim() {
    local table start i n slot host state waiting=""
    local -A taken=()
    table="$(node_table)" || {
        log "cannot read slurmctld's node table (controller $AZC_SLURM_CONTROLLER); retrying later"
        return 1
    }
    while read -r slot host state _; do
        [[ -n "$slot" && "$slot" == "$AZC_ISLAND_KEY"-* ]] || continue
        printf '%s\n' "$@" | grep -qx "$slot" && continue
        if [[ "$host" == "$HOST" ]]; then
            echo "$slot" && return 0
        fi
        if [[ "$state" == *POWERING_UP* && -z "$waiting" ]]; then
            waiting="$slot" # Slurm resumed this slot for a job (elastic power): take it first
        fi
        slot_is_free "$state" || taken[$slot]=1
    done <<<"$table"
    if [[ -n "$waiting" ]]; then
        echo "$waiting" && return 0
    fi
    start=$(($(instance_number) % COUNT))
    for ((i = 0; i < COUNT; i++)); do
        n=$(((start + i) % COUNT))
        slot="$(slot_name "$n")"
        [[ -z "${taken[$slot]:-}" ]] || continue
        printf '%s\n' "$@" | grep -qx "$slot" && continue
        echo "$slot" && return 0
    done
    log "no free slot in island $AZC_ISLAND_KEY ($COUNT slots)"
    return 1
}

# containers: Enroot and Pyxis (srun --container-image) on NVIDIA nodes, unless the image has them.
containers() {
    local arch tmp v="${AZC_ENROOT_VERSION:-}" p="${AZC_PYXIS_VERSION:-}"
    [[ "${AZC_SLURM_CONTAINERS:-0}" == 1 ]] || return 0
    arch="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
    tmp="$(mktemp -d)"
    if ! have enroot; then
        for pkg in enroot "enroot+caps"; do
            "${CURL:-curl}" -fsSL -o "$tmp/$pkg.deb" \
                "https://github.com/NVIDIA/enroot/releases/download/v$v/${pkg}_$v-1_$arch.deb" || return 1
        done
        DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q "$tmp/enroot.deb" "$tmp/enroot+caps.deb" >&2
    fi
    if [[ ! -e "$R/usr/local/lib/slurm/spank_pyxis.so" ]]; then
        DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q git make gcc "slurm-smd-dev=${AZC_SLURM_VERSION}*" >&2
        git clone -q --depth 1 --branch "v$p" https://github.com/NVIDIA/pyxis "$tmp/pyxis" >&2
        make -C "$tmp/pyxis" >&2
        install -D -m 0755 "$tmp/pyxis/spank_pyxis.so" "$R/usr/local/lib/slurm/spank_pyxis.so"
    fi
    rm -rf "$tmp"
    plugstack_local "optional /usr/local/lib/slurm/spank_pyxis.so" # only nodes with Pyxis load it
}

# activate SLOT: once this node's slurmd has registered for SLOT, take back the drain the reaper puts on
# free slots, so the node becomes schedulable. That drain shows reason "azc-slot: ..." or, after the
# registration, none at all (Slurm 22.05 drops the reason of a powered-down CLOUD record when it
# registers; 24.11 and 26.05 keep it; an administrator's drain always has one): other drains stay.
activate() {
    local line
    line="$("$SCONTROL" -o show node "$1")"
    if [[ "$line" =~ State=[A-Z_+]*DRAIN && ("$line" == *" Reason=azc-slot:"* || "$line" != *" Reason="*) ]]; then
        "$SCONTROL" update nodename="$1" state=resume
    fi
}

registered_host() { "$SCONTROL" -o show node "$1" 2>/dev/null | tr ' ' '\n' | sed -n 's/^NodeHostName=//p'; }

# lock SLOT: take the slot's claim (the reservation azc-claim-SLOT), arbitrated by slurmctld: of several
# nodes asking at once exactly one creates it; the others are told the name exists. IGNORE_JOBS: a slot
# Slurm is powering up already holds the job it was resumed for. The reservation lasts CLAIM_MINUTES, so a
# claim whose node died lapses; a live node hands it back (unlock) as soon as its slurmd has registered.
lock() {
    local out
    if out="$("$SCONTROL" create reservation reservationname="$CLAIM_PREFIX$1" nodes="$1" users=root \
        starttime=now duration="$CLAIM_MINUTES" flags=ignore_jobs 2>&1)"; then
        LOCKED="$1"
        return 0
    fi
    log "slot $1 is being claimed by another node (${out//error: /})"
    return 1
}

unlock() {
    [[ -n "${LOCKED:-}" ]] || return 0
    "$SCONTROL" delete reservationname="$CLAIM_PREFIX$LOCKED" >/dev/null 2>&1 || true
    LOCKED=""
}
trap unlock EXIT

# still_ours SLOT: after taking the claim, the slot is this host's, free, or being powered up for a job
# (another node may have registered for it between our first reading and the claim).
still_ours() {
    local table slot host state rest
    table="$(node_table)" || return 1 # slurmctld unreachable: not known to be ours (a pipe hid this)
    read -r slot host state rest < <(awk -v s="$1" '$1 == s' <<<"$table") || true
    [[ -z "$slot" || "$host" == "$HOST" || "$state" == *POWERING_UP* ]] && return 0
    slot_is_free "$state"
}

# nvl_block_ours SLOT: GB nodes only (AZC_NVL_CLAIM): after a moment for the marks of nodes of other NVLink
# domains booting now to show, the slot's block is still this domain's (azc-imex.sh check).
nvl_block_ours() {
    [[ -n "${AZC_NVL_CLAIM:-}" ]] || return 0
    sleep "$VERIFY_WAIT"
    "$AZC_NVL_CLAIM" check "$1"
}

# registered SLOT: wait until slurmctld shows this host's slurmd on SLOT (at most REGISTER_WAIT seconds).
registered() {
    local i
    for ((i = 0; i < REGISTER_WAIT; i++)); do
        [[ "$(registered_host "$1")" == "$HOST" ]] && return 0
        sleep 1
    done
    return 1
}

start() {
    local slot excluded=() attempt
    slurm_install slurmd
    mpi_report "$MPI_REPORT" >/dev/null
    munge_setup
    [[ -e "$R/etc/slurm/plugstack.local.conf" ]] || plugstack_local ""
    containers || log "Enroot/Pyxis could not be installed; jobs without --container-image still run"
    mkdir -p "$R/var/spool/slurmd" "$R/var/log/slurm"
    for attempt in 1 2 3 4 5 6 7 8; do
        if [[ -n "${AZC_NVL_CLAIM:-}" ]]; then # GB nodes: a slot in the block of this node's NVLink domain
            slot="$("$AZC_NVL_CLAIM" claim "${excluded[@]}")"
        else
            slot="$(claim "${excluded[@]}")"
        fi
        excluded+=("$slot")
        lock "$slot" || continue
        if ! still_ours "$slot"; then
            log "slot $slot was taken by another node; claiming another"
            unlock
            continue
        fi
        [[ -z "${AZC_NVL_CLAIM:-}" ]] || "$AZC_NVL_CLAIM" mark "$slot" >&2
        # slurmd.service (SchedMD's and Debian's) reads SLURMD_OPTIONS from /etc/default/slurmd.
        printf 'SLURMD_OPTIONS="-N %s --conf-server %s:%s"\n' "$slot" "$AZC_SLURM_CONTROLLER" "${AZC_SLURM_PORT:-6817}" |
            write_if_changed "$R/etc/default/slurmd" 0644 >/dev/null
        "$SYSTEMCTL" enable slurmd >&2
        "$SYSTEMCTL" restart slurmd >&2
        if registered "$slot" && nvl_block_ours "$slot"; then
            activate "$slot"
            unlock
            printf '%s\n' "$slot" | write_if_changed "$SLURM_NODE_FILE" 0644 >/dev/null
            log "this node is Slurm node $slot (attempt $attempt)"
            return 0
        fi
        log "slurmd did not register for $slot within ${REGISTER_WAIT}s (or its block is another NVLink domain's); claiming another"
        "$SYSTEMCTL" stop slurmd >&2 || true
        unlock
    done
    log "could not claim a slot after $attempt attempts"
    return 1
}

client_conf
case "${1:-start}" in
    start) start ;;
    claim) claim ;;
    activate) activate "${2:?activate needs a slot name}" ;;
    *) log "usage: $0 [start|claim|activate SLOT]" && exit 2 ;;
esac
