#!/usr/bin/env bash
# azc-health: decide whether this GPU node is fit for training and record why, for Azure and for people.
#
# Checks (each reported as ok, failed or skipped, with a detail a person can act on):
#   gpu            nvidia-smi -L (NVIDIA) or rocm-smi (AMD) sees the size's GPU count
#   infiniband     every InfiniBand port under /sys/class/infiniband is ACTIVE at the size's rate;
#                  on a machine without IB this says "no IB": a failed check on IB sizes, skipped otherwise
#   nvme           the NVMe scratch RAID is mounted at /mnt/resource_nvme
#   nccl_conf      /etc/nccl.conf points at the size's topology file
#   fabricmanager  nvidia-fabricmanager is active (NVSwitch sizes)
#   peermem        nvidia_peermem is loaded (GPUDirect RDMA)
#   aznhc          Azure's node health checks (AzNHC, run-health-checks.sh on the HPC images) for the
#                  sizes it has a configuration for. AzNHC runs NCCL and bandwidth tests that need idle
#                  GPUs, so it runs once per boot (mode auto/full); later runs (mode quick) repeat its
#                  last verdict, which therefore stays failed until a full run passes. On Arm64 it runs
#                  only where the image's AzNHC has its Arm64 container (AzNHC PR 164).
#   GB200/GB300    (AZC_GB=1) nvlink_fabric, imex, xid, dcgm: azc-gb-health-lib.sh says what and why.
# Result: /var/lib/azcluster/health.json {"healthy", "time", "mode", "size", "profile", "hostname",
# "checks": [{"name", "ok", "skipped", "detail"}]}, printed on stdout too. azc-health-server serves it
# to the scale set's Application Health extension. Exit status 0 when healthy, 1 when not.
# Metrics: the same verdict as Prometheus series in node_exporter's textfile directory (health.prom):
# azcluster_node_healthy, azcluster_health_check_timestamp_seconds, azcluster_health_check_ok{check} (1 ok
# or skipped, 0 failed), azcluster_gpu_xid_errors_total (NVIDIA XID lines in this boot's kernel log) and
# azcluster_node_price_usd_per_hour (the size's pay-as-you-go price, for "cost per hour now").
#
# Usage: azc-health.sh [--mode auto|quick|full] [--quiet]
set -euo pipefail
AZC_TAG=azc-health
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-lib.sh}"
azc_profile

MODE=auto
QUIET=0
while (($#)); do
    case "$1" in
        --mode) MODE="${2:-}" && shift ;;
        --mode=*) MODE="${1#--mode=}" ;;
        --quiet) QUIET=1 ;;
        *) log "unknown argument $1" && exit 2 ;;
    esac
    shift
done
case "$MODE" in auto | quick | full) ;; *) log "--mode must be auto, quick or full" && exit 2 ;; esac

RESULT="${AZC_HEALTH_RESULT:-$STATE_DIR/health.json}"
AZNHC="${AZNHC:-$R/opt/azurehpc/test/azurehpc-health-checks/run-health-checks.sh}"
AZNHC_TIMEOUT="${AZNHC_TIMEOUT:-1800}"

CHECKS=()
CHECK_METRICS=()
HEALTHY=true
JOURNALCTL="${JOURNALCTL:-journalctl}"

add_check() { # add_check NAME ok|failed|skipped DETAIL
    local ok=true skipped=false
    case "$2" in
        failed) ok=false HEALTHY=false ;;
        skipped) skipped=true ;;
        *) ;;
    esac
    CHECKS+=("{\"name\": $(json_str "$1"), \"ok\": $ok, \"skipped\": $skipped, \"detail\": $(json_str "$3")}")
    CHECK_METRICS+=("azcluster_health_check_ok{check=\"$1\"} $([[ $ok == true ]] && echo 1 || echo 0)")
}

write_metrics() { # the verdict for node_exporter's textfile collector; never fails the check itself
    local dir="$R${AZC_METRICS_TEXTFILE_DIR:-/var/lib/azcluster/metrics}" tmp xids line
    xids="$("$JOURNALCTL" -k -b -q --no-pager 2>/dev/null | grep -c 'NVRM: Xid')" || xids=0
    mkdir -p "$dir" && tmp="$(mktemp "$dir/.health.prom.XXXXXX")" || return 0
    {
        printf 'azcluster_node_healthy %d\n' "$([[ $HEALTHY == true ]] && echo 1 || echo 0)"
        printf 'azcluster_health_check_timestamp_seconds %d\n' "$(date +%s)"
        for line in "${CHECK_METRICS[@]}"; do printf '%s\n' "$line"; done
        printf 'azcluster_gpu_xid_errors_total %d\n' "$xids"
        if [[ -n "${AZC_PRICE_USD_PER_HOUR:-}" ]]; then
            printf 'azcluster_node_price_usd_per_hour %s\n' "$AZC_PRICE_USD_PER_HOUR"
        fi
    } >"$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$dir/health.prom"
}

check_gpu() {
    local want="${AZC_GPUS:-}" vendor="${AZC_GPU_VENDOR:-}" out n models devs
    if [[ -z "$vendor" ]]; then
        vendor=nvidia
        if ! have "$NVIDIA_SMI" && have "$ROCM_SMI"; then
            vendor=amd
        fi
    fi
    if [[ "$vendor" == amd ]]; then
        if ! have "$ROCM_SMI"; then
            add_check gpu failed "rocm-smi not found"
            return 0
        fi
        if ! out="$("$ROCM_SMI" --showid --json 2>&1)"; then
            add_check gpu failed "rocm-smi failed: $(head -n1 <<<"$out")"
            return 0
        fi
        n="$(grep -o '"card[0-9]*"' <<<"$out" | sort -u | wc -l)"
        models="AMD GPU"
    else
        shopt -s nullglob
        devs=("$R"/dev/nvidia[0-9]*)
        shopt -u nullglob
        if ! have "$NVIDIA_SMI"; then
            add_check gpu failed "nvidia-smi not found (${#devs[@]} /dev/nvidiaN device files)"
            return 0
        fi
        if ! out="$("$NVIDIA_SMI" -L 2>&1)"; then
            add_check gpu failed "nvidia-smi -L failed: $(head -n1 <<<"$out")"
            return 0
        fi
        n="$(grep -c '^GPU [0-9]' <<<"$out" || true)"
        models="$(sed -n 's/^GPU [0-9]*: \(.*\) (UUID.*/\1/p' <<<"$out" | sort | uniq -c |
            awk '{c=$1; $1=""; printf "%s%dx%s", sep, c, $0; sep=", "}')"
    fi
    if [[ -n "$want" ]] && ((n != want)); then
        add_check gpu failed "found $n of $want GPUs${models:+ ($models)}"
    elif ((n == 0)); then
        add_check gpu failed "no GPUs found"
    else
        add_check gpu ok "$n GPUs${want:+ of $want}${models:+: $models}"
    fi
    return 0
}

check_ib() {
    local want="${AZC_IB_PORTS:-}" gbps="${AZC_IB_GBPS:-0}" ports=() bad=() good=0 dev port state rate line
    mapfile -t ports < <(ib_ports)
    if [[ -z "$want" || "$want" == 0 ]]; then
        if ((${#ports[@]} > 0)); then
            add_check infiniband skipped "${#ports[@]} InfiniBand port(s) present; not expected on this size"
        elif [[ "$want" == 0 ]]; then
            add_check infiniband skipped "no IB: this size has no InfiniBand"
        else
            add_check infiniband skipped "no IB: no InfiniBand ports under /sys/class/infiniband (none expected)"
        fi
        return 0
    fi
    if ((${#ports[@]} == 0)); then
        add_check infiniband failed \
            "no IB: no InfiniBand ports under /sys/class/infiniband (expected $want x $gbps Gb/s)"
        return 0
    fi
    for line in "${ports[@]}"; do
        read -r dev port state rate <<<"$line"
        if [[ "$state" != ACTIVE ]]; then
            bad+=("$dev/$port $state")
        elif ((rate < gbps)); then
            bad+=("$dev/$port ${rate} Gb/s")
        else
            good=$((good + 1))
        fi
    done
    if ((good >= want)); then
        add_check infiniband ok "$good of $want ports ACTIVE at >= $gbps Gb/s"
    elif ((${#ports[@]} < want)); then
        add_check infiniband failed "only ${#ports[@]} of $want InfiniBand ports present; $good ACTIVE at $gbps Gb/s${bad:+; ${bad[*]}}"
    else
        add_check infiniband failed "$good of $want ports ACTIVE at $gbps Gb/s; ${bad[*]}"
    fi
    return 0
}

check_nvme() {
    if ((${AZC_NVME_DISKS:-0} == 0)); then
        add_check nvme skipped "no local NVMe disks on this size"
    elif is_mounted "$NVME_MOUNT"; then
        add_check nvme ok "$NVME_MOUNT mounted"
    else
        add_check nvme failed "$NVME_MOUNT not mounted (nvme-raid service)"
    fi
    return 0
}

check_nccl_conf() {
    local conf="$R/etc/nccl.conf" topo
    if [[ -n "$P_TOPO" ]]; then
        topo="/opt/microsoft/$P_TOPO/topo.xml"
        if [[ ! -f "$conf" ]]; then
            add_check nccl_conf failed "/etc/nccl.conf missing"
        elif ! grep -qx "NCCL_TOPO_FILE=$topo" "$conf"; then
            add_check nccl_conf failed "/etc/nccl.conf does not set NCCL_TOPO_FILE=$topo"
        elif [[ ! -e "$R$topo" ]]; then
            add_check nccl_conf failed "topology file $topo missing"
        else
            add_check nccl_conf ok "NCCL_TOPO_FILE=$topo"
        fi
    elif ((P_RELAXED)); then
        if grep -qsx "NCCL_IB_PCI_RELAXED_ORDERING=1" "$conf"; then
            add_check nccl_conf ok "NCCL_IB_PCI_RELAXED_ORDERING=1"
        else
            add_check nccl_conf failed "/etc/nccl.conf does not set NCCL_IB_PCI_RELAXED_ORDERING=1"
        fi
    else
        add_check nccl_conf skipped "no NCCL settings needed for profile ${AZC_PROFILE:-unknown}"
    fi
    return 0
}

check_fabric() {
    if [[ -z "$P_FABRIC" ]]; then
        add_check fabricmanager skipped "not used by profile ${AZC_PROFILE:-unknown}"
    elif unit_active "$P_FABRIC"; then
        add_check fabricmanager ok "$P_FABRIC active"
    else
        add_check fabricmanager failed "$P_FABRIC not active"
    fi
    return 0
}

check_peermem() {
    if ((P_PEERMEM == 0)); then
        add_check peermem skipped "not used by profile ${AZC_PROFILE:-unknown}"
    elif module_loaded nvidia_peermem; then
        add_check peermem ok "nvidia_peermem loaded"
    else
        add_check peermem failed "nvidia_peermem not loaded"
    fi
    return 0
}

# due NAME WHAT: true when once-per-boot check NAME runs now; else reports its last result (record's).
due() {
    local last="$STATE_DIR/$1.last" lboot lstatus ldetail ltime
    BOOT="$(cat "$R/proc/sys/kernel/random/boot_id" 2>/dev/null || echo unknown)"
    [[ "$MODE" == full ]] && return 0
    if [[ -f "$last" ]]; then
        IFS=$'\t' read -r lboot lstatus ldetail ltime <"$last"
        [[ "$MODE" == auto && "$lboot" != "$BOOT" ]] && return 0
        add_check "$1" "$lstatus" "$ldetail (run at $ltime${lboot:+, boot $lboot})"
    else
        [[ "$MODE" == auto ]] && return 0
        add_check "$1" skipped "$2 not run yet (it runs once per boot in mode auto)"
    fi
    return 1
}

record() {
    mkdir -p "$STATE_DIR"
    printf '%s\t%s\t%s\t%s\n' "$BOOT" "$2" "$3" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$STATE_DIR/$1.last"
    add_check "$1" "$2" "$3"
}

check_aznhc() {
    local sku="${AZC_SIZE:-}" conf log="$STATE_DIR/aznhc.log" rc=0 err status detail
    sku="${sku,,}"
    sku="${sku#standard_}"
    if [[ "${AZC_AZNHC:-0}" != 1 ]]; then
        add_check aznhc skipped "AzNHC not used for ${AZC_SIZE:-this size} (azcluster runs it on the sizes it has a configuration for); basic GPU and IB checks only"
        return 0
    fi
    if [[ ! -f "$AZNHC" ]]; then
        add_check aznhc skipped "AzNHC not installed (${AZNHC#"$R"}); basic GPU and IB checks only"
        return 0
    fi
    conf="$(dirname "$AZNHC")/conf/$sku.conf"
    if [[ ! -f "$conf" ]]; then
        add_check aznhc skipped "this image's AzNHC has no conf/$sku.conf; basic GPU and IB checks only"
        return 0
    fi
    # AzNHC runs in a container; its Arm64 (Grace) image came with PR 164, after its last tag (v0.4.5).
    if [[ "${AZC_ARCH:-x64}" == Arm64 && ! -f "$(dirname "$AZNHC")/dockerfile/azure-nvrt-nhc-aarch64.dockerfile" ]]; then
        add_check aznhc skipped "this image's AzNHC has no Arm64 container (dockerfile/azure-nvrt-nhc-aarch64.dockerfile)"
        return 0
    fi
    if ! due aznhc AzNHC; then
        return 0
    fi
    mkdir -p "$STATE_DIR"
    : >"$log"
    timeout "$AZNHC_TIMEOUT" bash "$AZNHC" -o "$log" >"$STATE_DIR/aznhc.out" 2>&1 || rc=$?
    err="$(grep -hE 'ERROR|Health check failed' "$log" "$STATE_DIR/aznhc.out" 2>/dev/null | tail -n1 || true)"
    if ((rc == 124)); then
        status=failed detail="AzNHC timed out after ${AZNHC_TIMEOUT}s"
    elif ((rc != 0)) || [[ -n "$err" ]]; then
        status=failed detail="AzNHC: ${err:-run-health-checks.sh exited $rc}"
    else
        status=ok detail="AzNHC passed"
    fi
    record aznhc "$status" "$detail"
    return 0
}

run_check() {
    if ! "$1"; then
        add_check "$2" failed "internal error in $1"
    fi
}

main() {
    local now body tmp
    run_check check_gpu gpu
    run_check check_ib infiniband
    run_check check_nvme nvme
    run_check check_nccl_conf nccl_conf
    run_check check_fabric fabricmanager
    run_check check_peermem peermem
    run_check check_aznhc aznhc
    if [[ "${AZC_GB:-0}" == 1 ]]; then
        # shellcheck source=azc-gb-health-lib.sh
        . "${AZC_GB_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-gb-health-lib.sh}"
        gb_checks
    fi
    now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    body="$(
        printf '{"healthy": %s, "time": %s, "mode": %s, "hostname": %s, "size": %s, "profile": %s, "checks": [' \
            "$HEALTHY" "$(json_str "$now")" "$(json_str "$MODE")" "$(json_str "${HOSTNAME:-}")" \
            "$(json_str "${AZC_SIZE:-}")" "$(json_str "${AZC_PROFILE:-}")"
        local i
        for i in "${!CHECKS[@]}"; do
            if ((i > 0)); then printf ', '; fi
            printf '%s' "${CHECKS[$i]}"
        done
        printf ']}\n'
    )"
    mkdir -p "$(dirname "$RESULT")"
    tmp="$(mktemp "$RESULT.XXXXXX")"
    printf '%s\n' "$body" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$RESULT"
    write_metrics || log "could not write the health metrics"
    if ((QUIET == 0)); then
        printf '%s\n' "$body"
    fi
    [[ "$HEALTHY" == true ]]
}

main
