#!/usr/bin/env bash
# shellcheck disable=SC2034  # a library: azc-health.sh sources it on GB200/GB300 nodes (AZC_GB=1)
# azc-gb-health: GB200/GB300 (NVL72 rack) checks; what each checks and the formats it reads, with sources:
# components/bootstrap/gb_boot.py. nvlink_fabric writes the node's NVLink domain "<ClusterUUID>.<CliqueId>"
# to $STATE_DIR/nvlink-domain.
IMEX_CTL="${IMEX_CTL:-nvidia-imex-ctl}"
DCGMI="${DCGMI:-dcgmi}"
JOURNALCTL="${JOURNALCTL:-journalctl}"
IMEX_NODES="${IMEX_NODES:-$R/etc/nvidia-imex/nodes_config.cfg}"
GB_XIDS="${GB_XIDS:-48 56 57 58 62 63 64 65 68 69 73 74 79 80 81 92 119 120}"

# fabric_rows: one "state|status|clique|uuid|bandwidth" line per GPU from `nvidia-smi -q` on stdin.
fabric_rows() {
    awk '
        /^GPU / { flush(); next }
        /^    Fabric[[:space:]]*$/ { infab = 1; st = ss = cl = uu = bw = ""; next }
        infab && /^    [^ ]/ { flush(); next }
        infab {
            line = $0; sub(/^[[:space:]]+/, "", line)
            key = line; sub(/[[:space:]]*:.*/, "", key)
            val = line; if (!sub(/^[^:]*:[[:space:]]*/, "", val)) val = ""
            if (key == "State") st = val; else if (key == "Status") ss = val
            else if (key == "CliqueId") cl = val; else if (key == "ClusterUUID") uu = val
            else if (key == "Bandwidth") bw = val
        }
        function flush() { if (infab) print st "|" ss "|" cl "|" uu "|" bw; infab = 0 }
        END { flush() }
    '
}

check_gb_fabric() {
    local out rows=() row state status clique uuid bw bad=() domains want="${AZC_GPUS:-0}" i=0
    if ! have "$NVIDIA_SMI"; then
        add_check nvlink_fabric failed "nvidia-smi not found"
        return 0
    fi
    if ! out="$("$NVIDIA_SMI" -q 2>&1)"; then
        add_check nvlink_fabric failed "nvidia-smi -q failed: $(head -n1 <<<"$out")"
        return 0
    fi
    mapfile -t rows < <(fabric_rows <<<"$out")
    if ((${#rows[@]} == 0)); then
        add_check nvlink_fabric failed "nvidia-smi -q shows no Fabric section (driver too old for NVLink fabric state?)"
        return 0
    fi
    for row in "${rows[@]}"; do
        IFS='|' read -r state status clique uuid bw <<<"$row"
        if [[ "$state" != Completed ]]; then
            bad+=("GPU $i fabric state ${state:-unknown}")
        elif [[ "$status" != Success ]]; then
            bad+=("GPU $i fabric status ${status:-unknown}")
        elif [[ -n "$bw" && "$bw" != Full && "$bw" != N/A ]]; then
            bad+=("GPU $i NVLink bandwidth $bw")
        elif [[ -z "$uuid" || "$uuid" == N/A || -z "$clique" || "$clique" == N/A ]]; then
            bad+=("GPU $i has no NVLink domain (ClusterUUID ${uuid:-none}, CliqueId ${clique:-none})")
        fi
        i=$((i + 1))
    done
    domains="$(printf '%s\n' "${rows[@]}" | awk -F'|' '$4 != "" && $4 != "N/A" {print $4 "." $3}' | sort -u)"
    if ((${#bad[@]} == 0)) && (($(wc -l <<<"$domains") > 1)); then
        bad+=("GPUs report $(wc -l <<<"$domains") NVLink domains: $(paste -sd' ' <<<"$domains")")
    fi
    if ((want > 0 && ${#rows[@]} != want)); then
        bad+=("${#rows[@]} GPUs report a fabric state, $want expected")
    fi
    if ((${#bad[@]})); then
        rm -f "$STATE_DIR/nvlink-domain"
        add_check nvlink_fabric failed "$(printf '%s; ' "${bad[@]}" | sed 's/; $//')"
        return 0
    fi
    mkdir -p "$STATE_DIR"
    printf '%s\n' "$domains" >"$STATE_DIR/nvlink-domain"
    add_check nvlink_fabric ok "${#rows[@]} GPUs: fabric Completed/Success, NVLink domain $domains"
    return 0
}

check_gb_imex() {
    local peers status domain
    peers="$(grep -cvE '^[[:space:]]*(#|$)' "$IMEX_NODES" 2>/dev/null || true)"
    if [[ -z "$peers" || "$peers" == 0 ]]; then
        add_check imex skipped "no job holds IMEX (no peers in ${IMEX_NODES#"$R"}): it is set up per job"
        return 0
    fi
    if ! have "$IMEX_CTL"; then
        add_check imex failed "nvidia-imex-ctl not found while ${IMEX_NODES#"$R"} lists $peers peers"
        return 0
    fi
    # A daemon the prolog is starting passes through INITIALIZING and WAITING_FOR_PEERS for seconds: ask
    # again before calling it down, so a health run that lands in a job's start drains nothing.
    for _ in 1 2 3; do
        status="$("$IMEX_CTL" -q 2>&1 | tr -d '\r' | tail -n1 || true)"
        [[ "$status" == READY ]] && break
        sleep "${IMEX_RETRY_S:-10}"
    done
    domain="$("$IMEX_CTL" -N 2>/dev/null | sed -n 's/^Domain State:[[:space:]]*//p' | tail -n1 || true)"
    if [[ "$status" != READY ]]; then
        add_check imex failed "nvidia-imex is ${status:-not answering} with $peers peers configured (domain ${domain:-unknown})"
    else
        add_check imex ok "nvidia-imex READY, $peers peers, domain ${domain:-unknown}"
    fi
    return 0
}

check_gb_xid() {
    local text found="" xid line
    if [[ -n "${AZC_KERNEL_LOG:-}" ]]; then
        text="$(cat "$AZC_KERNEL_LOG" 2>/dev/null || true)"
    elif have "$JOURNALCTL"; then
        text="$("$JOURNALCTL" -k -b 0 --no-pager -o cat 2>/dev/null || true)"
    else
        add_check xid skipped "no kernel log to read (journalctl not found)"
        return 0
    fi
    for xid in $GB_XIDS; do
        line="$(grep -E "NVRM: Xid \([^)]*\): $xid," <<<"$text" | tail -n1 || true)"
        if [[ -n "$line" ]]; then
            found="${line#*NVRM: }"
            break
        fi
    done
    if [[ -n "$found" ]]; then
        add_check xid failed "${found:0:200} (this boot; the GPU needs a reset or a new host)"
    else
        add_check xid ok "no GPU XID that needs a reset in this boot's kernel log"
    fi
    return 0
}

check_gb_dcgm() {
    local out rc=0 failed status detail
    if ! have "$DCGMI"; then
        add_check dcgm skipped "dcgmi not found (DCGM is not on this image)"
        return 0
    fi
    if ! due dcgm "DCGM diagnostic"; then
        return 0
    fi
    out="$(timeout "${DCGM_TIMEOUT:-600}" "$DCGMI" diag -r 1 2>&1)" || rc=$?
    failed="$(awk -F'|' 'NF >= 3 { n = $2; r = $3; gsub(/^ +| +$/, "", n); gsub(/^ +| +$/, "", r)
        if (r ~ /^Fail/) printf "%s%s", sep, n; if (r ~ /^Fail/) sep = ", " }' <<<"$out")"
    if [[ -n "$failed" ]]; then
        status=failed
        detail="dcgmi diag -r 1 failed: $failed$(awk -F'|' '$2 ~ /^ *(Error|Warning) *$/ {
            r = $3; gsub(/^ +| +$/, "", r); print ": " r; exit }' <<<"$out")"
    elif grep -qiE 'unable to (connect|establish)|host engine' <<<"$out"; then
        add_check dcgm skipped "DCGM host engine not reachable (nvidia-dcgm.service): $(head -n1 <<<"$out")"
        return 0
    elif ((rc == 124)); then
        status=failed detail="dcgmi diag -r 1 timed out"
    elif ((rc != 0)) || ! grep -q 'Pass' <<<"$out"; then
        status=failed detail="dcgmi diag -r 1 exited $rc: $(head -n1 <<<"$out")"
    else
        status=ok detail="dcgmi diag -r 1 passed"
    fi
    record dcgm "$status" "${detail:0:300}"
    return 0
}

gb_checks() {
    run_check check_gb_fabric nvlink_fabric
    run_check check_gb_imex imex
    run_check check_gb_xid xid
    run_check check_gb_dcgm dcgm
}
