#!/usr/bin/env bash
# shellcheck disable=SC2034  # a library: the variables it sets are used by the scripts that source it
# Shared helpers for the azcluster node scripts. Sourced, never run.
#
# Every path the scripts read or write under /sys, /proc, /dev, /etc, /var, /mnt and /opt is prefixed
# with AZC_ROOT (default: empty, the real root), and every external command is named by a variable
# (SYSTEMCTL, MODPROBE, NVIDIA_SMI, ...), so tests run the real scripts against a fake root directory.
# Per-node facts (size, profile, expected GPU and IB counts, mounts) come from /etc/azcluster/node.env,
# rendered by components/bootstrap from the cluster spec and the size catalogue.

R="${AZC_ROOT:-}"
AZC_NODE_ENV="${AZC_NODE_ENV:-$R/etc/azcluster/node.env}"
if [[ -r "$AZC_NODE_ENV" ]]; then
    # shellcheck source=/dev/null
    . "$AZC_NODE_ENV"
fi

SYSTEMCTL="${SYSTEMCTL:-systemctl}"
MODPROBE="${MODPROBE:-modprobe}"
NVIDIA_SMI="${NVIDIA_SMI:-nvidia-smi}"
ROCM_SMI="${ROCM_SMI:-rocm-smi}"
MOUNT="${MOUNT:-mount}"
GETENT="${GETENT:-getent}"
MDADM="${MDADM:-mdadm}"
MKFS_XFS="${MKFS_XFS:-mkfs.xfs}"
BLKID="${BLKID:-blkid}"
BLOBFUSE2="${BLOBFUSE2:-blobfuse2}"
MOUNT_LUSTRE="${MOUNT_LUSTRE:-mount.lustre}"
APT_GET="${APT_GET:-apt-get}"

NVME_MOUNT="/mnt/resource_nvme"
STATE_DIR="$R/var/lib/azcluster"

log() { printf '%s: %s\n' "${AZC_TAG:-azcluster}" "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

# is_mounted MOUNTPOINT [FSTYPE-REGEX]: true when /proc/mounts lists it (optionally with that type).
is_mounted() {
    local mp="$1" want="${2:-}" dev point fstype rest
    [[ -r "$R/proc/mounts" ]] || return 1
    while read -r dev point fstype rest; do
        if [[ "$point" == "$mp" ]] && { [[ -z "$want" ]] || [[ "$fstype" =~ $want ]]; }; then
            return 0
        fi
    done <"$R/proc/mounts"
    return 1
}

module_loaded() { [[ -r "$R/proc/modules" ]] && grep -q "^$1 " "$R/proc/modules"; }

unit_active() { "$SYSTEMCTL" is-active --quiet "$1" 2>/dev/null; }

unit_exists() {
    [[ -e "$R/etc/systemd/system/$1" || -e "$R/lib/systemd/system/$1" || -e "$R/usr/lib/systemd/system/$1" ]]
}

# write_if_changed PATH MODE: replace PATH with stdin only when the content differs (atomic rename).
# Prints "changed" or "unchanged", so callers can report what they repaired and a second run is a no-op.
write_if_changed() {
    local path="$1" mode="$2" tmp
    mkdir -p "$(dirname "$path")"
    tmp="$(mktemp "$path.XXXXXX")"
    cat >"$tmp"
    if [[ -f "$path" ]] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        echo unchanged
    else
        chmod "$mode" "$tmp"
        mv -f "$tmp" "$path"
        echo changed
    fi
}

# ensure_fstab MOUNTPOINT ENTRY: the one fstab line for MOUNTPOINT is ENTRY (a re-run changes nothing).
# Mounts are `noauto,nofail` entries that a unit mounts in the background: boot never waits on storage.
ensure_fstab() {
    local mp="$1" entry="$2" fstab="$R/etc/fstab" current
    touch "$fstab"
    current="$(awk -v mp="$mp" '$2 == mp' "$fstab")"
    if [[ "$current" == "$entry" ]]; then
        return 0
    fi
    {
        awk -v mp="$mp" '$2 != mp' "$fstab"
        printf '%s\n' "$entry"
    } | write_if_changed "$fstab" 0644 >/dev/null
    log "fstab: $entry"
}

os_release() { sed -n "s/^$1=//p" "$R/etc/os-release" 2>/dev/null | tr -d '"'; }

# apt_microsoft_repo NAME LINE: add a packages.microsoft.com apt source (and Microsoft's signing key)
# once, then refresh the package lists. For packages the HPC images ship but plain Ubuntu does not.
apt_microsoft_repo() {
    local list="$R/etc/apt/sources.list.d/$1.list" key="$R/etc/apt/trusted.gpg.d/microsoft.gpg"
    have "$APT_GET" || return 1
    if [[ ! -s "$key" ]]; then
        mkdir -p "$(dirname "$key")"
        "${CURL:-curl}" -fsSL https://packages.microsoft.com/keys/microsoft.asc | "${GPG:-gpg}" --dearmor >"$key" ||
            return 1
    fi
    if [[ ! -f "$list" ]]; then
        mkdir -p "$(dirname "$list")"
        printf '%s\n' "$2" >"$list"
    fi
    "$APT_GET" update -q >&2
}

json_str() {
    local s="$1"
    s="${s//\\/\\\\}"
    s="${s//\"/\\\"}"
    s="${s//$'\n'/\\n}"
    s="${s//$'\t'/\\t}"
    s="${s//$'\r'/}"
    printf '"%s"' "$(printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037')"
}

# Node-preparation settings per size family (the catalogue's `profile`). Sources:
# Azure/azhpc-images customizations/{ndv4,ndv5,ncv4}.sh (topology files, /etc/nccl.conf, fabric manager,
# nvidia-peermem) and its sku-customizations service.
#   P_TOPO       /opt/microsoft/<dir>/topo.xml the image links for NCCL_TOPO_FILE ("" for none)
#   P_GRAPH      1 when the image also sets NCCL_GRAPH_FILE (NC A100 v4)
#   P_RELAXED    1 for NCCL_IB_PCI_RELAXED_ORDERING=1 (the images set it on every IB size)
#   P_FABRIC     systemd unit that must be active for NVSwitch systems ("" for none)
#   P_PEERMEM    1 when nvidia-peermem must be loaded (GPUDirect RDMA on HGX A100/H100/H200)
azc_profile() {
    P_TOPO="" P_GRAPH=0 P_RELAXED=0 P_FABRIC="" P_PEERMEM=0
    case "${AZC_PROFILE:-}" in
        nd-a100-v4) P_TOPO=ndv4 P_RELAXED=1 P_FABRIC=nvidia-fabricmanager.service P_PEERMEM=1 ;;
        nd-h100-v5 | nd-h200-v5) P_TOPO=ndv5 P_RELAXED=1 P_FABRIC=nvidia-fabricmanager.service P_PEERMEM=1 ;;
        nd-gb200-v6 | nd-gb300-v6 | nd-mi300x-v5) P_RELAXED=1 ;;
        nc-a100-v4) P_TOPO=ncv4 P_GRAPH=1 ;;
        *) ;;
    esac
}

# ib_ports: one line per InfiniBand port (Ethernet ports such as the accelerated-networking mlx5_an0
# are left out): "<dev> <port> <state> <rate-gbps>".
ib_ports() {
    local dir dev port state rate layer
    shopt -s nullglob
    for dir in "$R"/sys/class/infiniband/*/ports/*; do
        dev="$(basename "$(dirname "$(dirname "$dir")")")"
        port="$(basename "$dir")"
        layer="InfiniBand"
        if [[ -r "$dir/link_layer" ]]; then
            layer="$(<"$dir/link_layer")"
        fi
        [[ "$layer" == "InfiniBand" ]] || continue
        state="$(cat "$dir/state" 2>/dev/null || echo unknown)"
        state="${state##*: }"
        rate="$(cat "$dir/rate" 2>/dev/null || echo 0)"
        rate="${rate%% *}"
        [[ "$rate" =~ ^[0-9]+$ ]] || rate=0
        printf '%s %s %s %s\n' "$dev" "$port" "$state" "$rate"
    done
    shopt -u nullglob
}

# ib_pkey: "<index> <pkey>" of the tenant partition key. Azure: read pkeys/0 and pkeys/1 of port 1 and
# use the larger (the full-membership tenant key, e.g. 0x800b over the default 0x7fff).
ib_pkey() {
    local dev first="" k0 k1
    dev="$(ib_ports | awk '{print $1}' | sort -u | head -n1)"
    [[ -n "$dev" ]] || return 1
    first="$R/sys/class/infiniband/$dev/ports/1/pkeys"
    k0="$(cat "$first/0" 2>/dev/null || true)"
    k1="$(cat "$first/1" 2>/dev/null || true)"
    [[ "$k0" =~ ^0x[0-9a-fA-F]+$ ]] || return 1
    if [[ "$k1" =~ ^0x[0-9a-fA-F]+$ ]] && ((16#${k1#0x} > 16#${k0#0x})); then
        echo "1 $k1"
    else
        echo "0 $k0"
    fi
}
