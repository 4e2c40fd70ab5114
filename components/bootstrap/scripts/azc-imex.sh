#!/usr/bin/env bash
# azc-imex: a GB200/GB300 node's NVLink domain in Slurm, and IMEX per job. Why, and the sources:
# components/bootstrap/slurm.py and imex_boot.py.
#   claim [EXCLUDED...]  the slot to take: a free slot of the block this node's domain holds, else of an
#                        empty block (azc-slurm-node.sh calls it instead of its own claim)
#   mark SLOT            record this node's domain on SLOT (scontrol update Extra=nvl:<domain>)
#   check SLOT           after registering: fail (and exclude the block) if another domain holds it too
#   domain               print "<ClusterUUID>.<CliqueId>" from `nvidia-smi -q` (every GPU agreeing)
#   (no argument)        Slurm's Prolog/Epilog (SLURM_SCRIPT_CONTEXT): nvidia-imex for exactly the job
set -euo pipefail
AZC_TAG=azc-imex
HERE="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$HERE/azc-lib.sh}"
# shellcheck source=azc-slurm-lib.sh
. "${AZC_SLURM_LIB:-$HERE/azc-slurm-lib.sh}"
# shellcheck source=azc-gb-health-lib.sh
. "$HERE/azc-gb-health-lib.sh" # fabric_rows, IMEX_CTL, IMEX_NODES

HOST="${AZC_HOSTNAME:-$(hostname -s)}"
RACK="${AZC_SLURM_RACK:-18}"
EXCLUDED_BLOCKS="$R/run/azcluster/nvl-excluded"
IMEX_CHANNELS="${IMEX_CHANNELS:-$R/dev/nvidia-caps-imex-channels}"
PROC_DEVICES="${PROC_DEVICES:-$R/proc/devices}"
IMEX_JOB="$STATE_DIR/imex-job"

domain() {
    local rows
    have "$NVIDIA_SMI" || return 1
    rows="$("$NVIDIA_SMI" -q 2>/dev/null | fabric_rows)" || return 1
    [[ -n "$rows" ]] || return 1
    awk -F'|' '$1 != "Completed" || $2 != "Success" || $4 == "" || $4 == "N/A" { bad = 1 }
        { d[$4 "." $3] = 1 } END { n = 0; for (k in d) { n++; out = k } if (bad || n != 1) exit 1; print out }' <<<"$rows"
}

# domain_key: the domain, waiting up to AZC_NVL_WAIT s for the fabric (it registers after boot); without
# one the node takes an empty block alone ("unknown.<host>") and its health check drains it.
domain_key() {
    local i
    for ((i = 0; i < ${AZC_NVL_WAIT:-300}; i += 10)); do
        domain && return 0
        sleep 10
    done
    log "no NVLink domain from nvidia-smi -q (fabric not Completed/Success, or GPUs disagree)"
    echo "unknown.$HOST"
}

# nvl_table: "SLOT HOST STATE EXTRA" for this island's slots.
nvl_table() {
    "$SCONTROL" -o show node | awk -v key="$AZC_ISLAND_KEY-" '{
        name = host = state = ""; extra = "-"
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^NodeName=/) name = substr($i, 10); else if ($i ~ /^NodeHostName=/) host = substr($i, 14)
            else if ($i ~ /^State=/) state = substr($i, 7); else if ($i ~ /^Extra=nvl:/) extra = substr($i, 11)
        }
        if (index(name, key) == 1) print name, (host == "" ? "-" : host), state, extra
    }'
}

block_of() { echo $((10#${1##*-} / RACK)); }

claim() {
    local me table slot host state extra b i n pass want start blocks=$(((AZC_SLURM_SLOTS + RACK - 1) / RACK))
    local -A held=() owner=() used=() out=() up=()
    me="$(domain_key)"
    table="$(nvl_table)" || {
        log "cannot read slurmctld's node table" && return 1
    }
    for slot in "$@"; do out[$slot]=1; done
    while read -r b; do [[ -n "$b" ]] && out[blk$b]=1; done < <(cat "$EXCLUDED_BLOCKS" 2>/dev/null || true)
    while read -r slot host state extra; do
        [[ -n "$slot" ]] || continue
        b="$(block_of "$slot")"
        if [[ "$host" == "$HOST" && "$extra" == "$me" && -z "${out[$slot]:-}" ]]; then
            echo "$slot" && return 0 # a reboot: keep the slot
        fi
        if [[ "$state" == *POWERING_UP* ]]; then
            up[$slot]=1 && continue # Slurm resumed it for a job: a candidate, not a holder
        fi
        slot_is_free "$state" && continue
        held[$slot]=1
        used[$b]=1
        [[ "$extra" == - ]] || owner[$b]="${owner[$b]:-$extra}"
    done <<<"$table"
    # The block this domain holds first, then empty blocks from one the domain's hash picks (spreads racks);
    # in each, a slot Slurm is powering up for a job (elastic power) before a free one
    start=$(($(printf '%s' "$me" | cksum | cut -d' ' -f1) % blocks))
    for pass in own empty; do
        for want in up free; do
            for ((i = 0; i < blocks; i++)); do
                b=$(((start + i) % blocks))
                [[ -z "${out[blk$b]:-}" ]] || continue
                if [[ "$pass" == own ]]; then [[ "${owner[$b]:-}" == "$me" ]] || continue; else [[ -z "${used[$b]:-}" ]] || continue; fi
                for ((n = b * RACK; n < (b + 1) * RACK && n < AZC_SLURM_SLOTS; n++)); do
                    slot="$(slot_name "$n")"
                    [[ -z "${held[$slot]:-}${out[$slot]:-}" ]] || continue
                    [[ "$want" == free || -n "${up[$slot]:-}" ]] && echo "$slot" && return 0
                done
            done
        done
    done
    log "no block of island $AZC_ISLAND_KEY has room for NVLink domain $me"
    return 1
}

mark() { "$SCONTROL" update nodename="$1" extra="nvl:$(domain_key)"; }

check() {
    local me slot host state extra b
    me="$(domain_key)"
    b="$(block_of "$1")"
    while read -r slot host state extra; do
        [[ "$slot" != "$1" && "$(block_of "$slot")" == "$b" && "$extra" != - && "$extra" != "$me" ]] || continue
        slot_is_free "$state" && continue
        if [[ "$extra" < "$me" ]]; then
            log "block $b of $AZC_ISLAND_KEY is domain $extra's ($slot); this node ($me) claims another"
            mkdir -p "$(dirname "$EXCLUDED_BLOCKS")" && echo "$b" >>"$EXCLUDED_BLOCKS"
            return 1
        fi
    done < <(nvl_table)
}

fail() {
    log "$*"
    "$SCONTROL" update nodename="${SLURMD_NODENAME:?}" state=drain reason="azc-imex: $*" || true
    exit 1
}

prolog() {
    local addrs major i
    (($(wc -l < <("$SCONTROL" show hostnames "$SLURM_JOB_NODELIST")) > 1)) || return 0 # NVLink in one VM
    if [[ -s "$IMEX_JOB" ]]; then
        log "IMEX holds job $(cut -d' ' -f1 "$IMEX_JOB") on this node; job $SLURM_JOB_ID runs without its own"
        return 0
    fi
    mapfile -t addrs < <("$SCONTROL" -o show node "$SLURM_JOB_NODELIST" | tr ' ' '\n' | sed -n 's/^NodeAddr=//p')
    ((${#addrs[@]} > 1)) || fail "no node addresses for job $SLURM_JOB_ID ($SLURM_JOB_NODELIST)"
    "$SYSTEMCTL" stop nvidia-imex >&2 || true
    mkdir -p "$(dirname "$IMEX_NODES")"
    printf '%s\n' "${addrs[@]}" >"$IMEX_NODES"
    major="$(awk '$2 == "nvidia-caps-imex-channels" { print $1 }' "$PROC_DEVICES")"
    [[ -n "$major" ]] || fail "the driver has no nvidia-caps-imex-channels device"
    mkdir -p "$IMEX_CHANNELS"
    [[ -e "$IMEX_CHANNELS/channel0" ]] || mknod -m 666 "$IMEX_CHANNELS/channel0" c "$major" 0 ||
        fail "cannot create $IMEX_CHANNELS/channel0"
    "$SYSTEMCTL" start nvidia-imex >&2 || fail "nvidia-imex did not start (job $SLURM_JOB_ID)"
    for ((i = 0; i < ${AZC_IMEX_WAIT:-60}; i++)); do
        if [[ "$("$IMEX_CTL" -q 2>/dev/null)" == READY ]]; then
            mkdir -p "$STATE_DIR" && echo "$SLURM_JOB_ID $SLURM_JOB_NODELIST" >"$IMEX_JOB"
            log "IMEX READY for job $SLURM_JOB_ID on ${#addrs[@]} nodes"
            return 0
        fi
        sleep 1
    done
    "$SYSTEMCTL" stop nvidia-imex >&2 || true
    : >"$IMEX_NODES"
    fail "nvidia-imex not READY after ${AZC_IMEX_WAIT:-60}s (job $SLURM_JOB_ID): $("$IMEX_CTL" -q 2>&1 | head -n1)"
}

epilog() {
    [[ -s "$IMEX_JOB" && "$(cut -d' ' -f1 "$IMEX_JOB")" == "$SLURM_JOB_ID" ]] || return 0
    "$SYSTEMCTL" stop nvidia-imex >&2 || true
    : >"$IMEX_NODES"
    rm -f "$IMEX_JOB"
}

case "${1:-}" in
    claim) shift && client_conf && claim "$@" ;;
    mark) client_conf && mark "${2:?mark needs a slot}" ;;
    check) client_conf && check "${2:?check needs a slot}" ;;
    domain) domain ;;
    "")
        [[ "${AZC_IMEX:-0}" == 1 ]] || exit 0
        case "${SLURM_SCRIPT_CONTEXT:-}" in
            prolog_slurmd) prolog ;;
            epilog_slurmd) epilog ;;
        esac
        ;;
    *) log "usage: $0 [claim [EXCLUDED...]|mark SLOT|check SLOT|domain]" && exit 2 ;;
esac
