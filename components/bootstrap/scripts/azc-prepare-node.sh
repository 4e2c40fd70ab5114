#!/usr/bin/env bash
# azc-prepare-node: make a GPU node ready for training, at every boot. Idempotent.
#
# The Azure HPC/AI images already do most of this (nvme-raid service, /etc/nccl.conf with the topology
# file, nvidia-fabricmanager, nvidia-peermem). This script checks that each of those happened and
# repairs only what did not, then writes the NCCL/RCCL and UCX environment for the size family:
#   /etc/profile.d/azcluster-nccl.sh  (login shells)   /etc/azcluster/nccl.env  (KEY=VALUE, for
#   `docker --env-file`, systemd EnvironmentFile= and schedulers)
# A second run changes nothing. Each step prints "<step>: ok|repaired|skipped|failed: <detail>".
# Exit status: 0 when everything is ok or repaired, 1 when something could not be repaired.
set -euo pipefail
AZC_TAG=azc-prepare-node
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-lib.sh}"
azc_profile

failures=0
report() { # report STEP STATUS DETAIL
    printf '%s: %s: %s\n' "$1" "$2" "$3"
    [[ "$2" != failed ]] || failures=$((failures + 1))
}

# --- NVMe scratch: RAID0 of the local NVMe disks at /mnt/resource_nvme ---------------------------
local_nvme_disks() {
    # Local (temporary) NVMe disks only: Azure names their model "Microsoft NVMe Direct Disk[ v2]".
    # The OS and data disks of NVMe-controller sizes (GB200 v6) have other models and are never touched.
    local blk model
    shopt -s nullglob
    for blk in "$R"/sys/block/nvme*n1; do
        model="$(cat "$blk/device/model" 2>/dev/null || true)"
        if [[ "$model" == *"NVMe Direct Disk"* ]]; then
            printf '/dev/%s\n' "$(basename "$blk")"
        fi
    done
    shopt -u nullglob
}

create_scratch() {
    # Fallback when the image has no nvme-raid service: same layout as Azure/azhpc-images setup_nvme.sh.
    local disks=() target
    mapfile -t disks < <(local_nvme_disks)
    if ((${#disks[@]} == 0)); then
        echo "no local NVMe disks found"
        return 1
    fi
    if ((${#disks[@]} == 1)); then
        target="${disks[0]}"
    else
        target=/dev/md128
        if [[ ! -e "$R$target" ]]; then
            "$MDADM" --create "$target" --run --level=0 --raid-devices="${#disks[@]}" "${disks[@]}" >&2 || {
                echo "mdadm --create failed"
                return 1
            }
        fi
    fi
    if ! "$BLKID" -s TYPE -o value "$target" 2>/dev/null | grep -q .; then
        "$MKFS_XFS" -f "$target" >&2 || {
            echo "mkfs.xfs $target failed"
            return 1
        }
    fi
    mkdir -p "$R$NVME_MOUNT"
    "$MOUNT" -o noatime "$target" "$NVME_MOUNT" >&2 || {
        echo "mount $target failed"
        return 1
    }
    chmod 1777 "$R$NVME_MOUNT"
    echo "created scratch on ${#disks[@]} disk(s) at $target"
}

prepare_nvme() {
    if ((${AZC_NVME_DISKS:-0} == 0)); then
        report nvme skipped "no local NVMe disks on this size"
        return
    fi
    if is_mounted "$NVME_MOUNT"; then
        report nvme ok "$NVME_MOUNT mounted"
        return
    fi
    local how detail
    if unit_exists nvme-raid.service; then
        how="restarted nvme-raid.service"
        "$SYSTEMCTL" restart nvme-raid.service >&2 || true
    else
        how="$(create_scratch)" || true
    fi
    if is_mounted "$NVME_MOUNT"; then
        report nvme repaired "$how; $NVME_MOUNT mounted"
    else
        detail="$NVME_MOUNT not mounted after repair ($how)"
        report nvme failed "$detail"
    fi
}

# --- /etc/nccl.conf and the NCCL topology file ------------------------------------------------------
prepare_nccl_conf() {
    local want=() missing="" key status conf="$R/etc/nccl.conf" topo graph
    if [[ -n "$P_TOPO" ]]; then
        topo="/opt/microsoft/$P_TOPO/topo.xml"
        if [[ ! -e "$R$topo" && -e "$R/opt/microsoft/$P_TOPO-topo.xml" ]]; then
            mkdir -p "$R/opt/microsoft/$P_TOPO"
            ln -sfn "../$P_TOPO-topo.xml" "$R$topo"
        fi
        if [[ -e "$R$topo" ]]; then
            want+=("NCCL_TOPO_FILE=$topo")
        else
            missing="topology file $topo missing (not an Azure HPC image?)"
        fi
        if ((P_GRAPH)); then
            graph="/opt/microsoft/$P_TOPO/graph.xml"
            if [[ ! -e "$R$graph" && -e "$R/opt/microsoft/$P_TOPO-graph.xml" ]]; then
                ln -sfn "../$P_TOPO-graph.xml" "$R$graph"
            fi
            if [[ -e "$R$graph" ]]; then
                want+=("NCCL_GRAPH_FILE=$graph")
            fi
        fi
    fi
    if ((P_RELAXED)); then
        want+=("NCCL_IB_PCI_RELAXED_ORDERING=1")
    fi
    if ((${#want[@]} == 0)) && [[ -z "$missing" ]]; then
        report nccl_conf skipped "no NCCL settings needed for profile ${AZC_PROFILE:-unknown}"
        return
    fi
    status=unchanged
    if ((${#want[@]} > 0)); then
        # Keep every line the image wrote; replace only the keys managed here.
        {
            if [[ -f "$conf" ]]; then
                for key in "${want[@]}"; do printf '%s\n' "${key%%=*}"; done >"$conf.keys.$$"
                awk -F= 'NR==FNR {skip[$1]=1; next} !($1 in skip)' "$conf.keys.$$" "$conf" || true
                rm -f "$conf.keys.$$"
            fi
            printf '%s\n' "${want[@]}"
        } >"$conf.new.$$"
        if [[ -f "$conf" ]] && sort "$conf" | cmp -s - <(sort "$conf.new.$$"); then
            rm -f "$conf.new.$$"
        else
            status="$(write_if_changed "$conf" 0644 <"$conf.new.$$")"
            rm -f "$conf.new.$$"
        fi
    fi
    if [[ -n "$missing" ]]; then
        report nccl_conf failed "$missing"
    elif [[ "$status" == changed ]]; then
        report nccl_conf repaired "/etc/nccl.conf now sets ${want[*]}"
    else
        report nccl_conf ok "/etc/nccl.conf sets ${want[*]}"
    fi
}

# --- NVSwitch fabric manager and GPUDirect RDMA -----------------------------------------------------
prepare_fabric() {
    if [[ -z "$P_FABRIC" ]]; then
        report fabricmanager skipped "not used by profile ${AZC_PROFILE:-unknown}"
        return
    fi
    if unit_active "$P_FABRIC"; then
        report fabricmanager ok "$P_FABRIC active"
        return
    fi
    "$SYSTEMCTL" enable "$P_FABRIC" >&2 || true
    "$SYSTEMCTL" restart "$P_FABRIC" >&2 || true
    if unit_active "$P_FABRIC"; then
        report fabricmanager repaired "$P_FABRIC restarted"
    else
        report fabricmanager failed "$P_FABRIC not active after restart"
    fi
}

prepare_peermem() {
    if ((P_PEERMEM == 0)); then
        report peermem skipped "not used by profile ${AZC_PROFILE:-unknown}"
        return
    fi
    if module_loaded nvidia_peermem; then
        report peermem ok "nvidia_peermem loaded"
        return
    fi
    "$MODPROBE" nvidia-peermem >&2 || true
    if module_loaded nvidia_peermem; then
        report peermem repaired "nvidia-peermem loaded"
    else
        report peermem failed "modprobe nvidia-peermem did not load the module"
    fi
}

# --- NCCL/RCCL and UCX environment for jobs ---------------------------------------------------------
nccl_environment() {
    # Values follow Azure's NCCL examples for ND sizes: bootstrap sockets on eth0, PCI relaxed ordering,
    # the image's topology file; and Azure's partition-key guidance (docs: "Set up Message Passing
    # Interface for HPC", Discover partition keys): UCX wants the key with the top bit cleared, NCCL
    # takes the *index* of the key in the port's table (NCCL_IB_PKEY is a pkey index).
    if [[ "${AZC_GPU_VENDOR:-nvidia}" == nvidia ]]; then
        echo "CUDA_DEVICE_ORDER=PCI_BUS_ID"
    fi
    echo "NCCL_SOCKET_IFNAME=eth0"
    if ((P_RELAXED)); then
        echo "NCCL_IB_PCI_RELAXED_ORDERING=1"
        echo "UCX_IB_PCI_RELAXED_ORDERING=on"
    fi
    if [[ -n "$P_TOPO" && -e "$R/opt/microsoft/$P_TOPO/topo.xml" ]]; then
        echo "NCCL_TOPO_FILE=/opt/microsoft/$P_TOPO/topo.xml"
    fi
    if ((P_GRAPH)) && [[ -e "$R/opt/microsoft/$P_TOPO/graph.xml" ]]; then
        echo "NCCL_GRAPH_FILE=/opt/microsoft/$P_TOPO/graph.xml"
    fi
    local index key
    if read -r index key < <(ib_pkey); then
        echo "NCCL_IB_PKEY=$index"
        printf 'UCX_IB_PKEY=0x%04x\n' $((16#${key#0x} & 0x7fff))
        echo "AZC_IB_PKEY=$key"
    fi
}

prepare_environment() {
    local env line s1 s2 pkey_note="no InfiniBand partition key (no IB ports)"
    env="$(nccl_environment)"
    if grep -q '^AZC_IB_PKEY=' <<<"$env"; then
        pkey_note="partition key $(sed -n 's/^AZC_IB_PKEY=//p' <<<"$env")"
    fi
    s1="$({
        echo "# Written by azcluster (azc-prepare-node) for profile ${AZC_PROFILE:-unknown}; rewritten at boot."
        while IFS= read -r line; do printf 'export %s\n' "$line"; done <<<"$env"
    } | write_if_changed "$R/etc/profile.d/azcluster-nccl.sh" 0644)"
    s2="$(printf '%s\n' "$env" | write_if_changed "$R/etc/azcluster/nccl.env" 0644)"
    if [[ "$s1" == changed || "$s2" == changed ]]; then
        report nccl_env repaired "wrote /etc/profile.d/azcluster-nccl.sh and /etc/azcluster/nccl.env; $pkey_note"
    else
        report nccl_env ok "$pkey_note"
    fi
}

main() {
    if [[ "${AZC_ROLE:-compute}" != compute ]]; then
        report node skipped "role ${AZC_ROLE} is not a GPU node"
        return 0
    fi
    prepare_nvme
    prepare_nccl_conf
    prepare_fabric
    prepare_peermem
    prepare_environment
    ((failures == 0))
}

main "$@"
