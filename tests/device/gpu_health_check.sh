#!/usr/bin/env bash
# Run the node health check (components/bootstrap/scripts/azc-health.sh) against a real GPU machine.
#
# What it checks, on the real system (AZC_ROOT=""), reading only (no root needed, nothing installed,
# nothing repaired; results go to a temporary folder or $OUT, never /var/lib/azcluster):
#   1. "detect":  no size given: the GPU check must count the same GPUs as `nvidia-smi -L`, and the IB
#                 check must say "no IB" (skipped) when /sys/class/infiniband has no InfiniBand port.
#   2. "nd-h100-v5": the machine judged as an ND H100 v5 node (8 GPUs, 8 x 400 Gb/s IB). On a machine
#                 without InfiniBand the IB check must fail with "no IB: ..." and the script must not crash.
#   3. "nc-h100-v5": judged as a size without InfiniBand: the IB check must be skipped with "no IB".
#   4. "gb300": judged as an ND GB300 v6 node (AZC_GB=1: azc-gb-health-lib.sh): the Fabric parser must find
#                 one "Fabric" block per GPU in the real `nvidia-smi -q`, and the GB checks (nvlink_fabric,
#                 imex, xid, dcgm) must each report without crashing. Off an NVL72 rack the fabric check
#                 fails naming the GPU (no NVLink domain), which is right.
# AzNHC is not run (it needs root, docker and minutes); the fabric-manager and peermem checks are
# reported as they are. Prints each JSON result and a PASS/FAIL line per expectation; exit status 0
# when every expectation held.
#
# Usage: bash tests/device/gpu_health_check.sh      (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
SCRIPT=components/bootstrap/scripts/azc-health.sh
WORK="${OUT:-$(mktemp -d)}"
mkdir -p "$WORK"
failures=0

expect() { # expect DESCRIPTION COMMAND...
    local what="$1"
    shift
    if "$@"; then
        echo "PASS: $what"
    else
        echo "FAIL: $what"
        failures=$((failures + 1))
    fi
}

field() { # field FILE CHECK KEY -> value of checks[name=CHECK][KEY]
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(next(c[sys.argv[3]] for c in r["checks"] if c["name"]==sys.argv[2]))' "$1" "$2" "$3"
}

run_as() { # run_as NAME VAR=VALUE...
    local name="$1" rc=0
    shift
    echo "=== $name ==="
    env AZC_ROOT="" AZC_NODE_ENV=/dev/null AZC_AZNHC=0 AZC_HEALTH_RESULT="$WORK/health-$name.json" "$@" \
        bash "$SCRIPT" --mode quick --quiet || rc=$?
    python3 -m json.tool "$WORK/health-$name.json"
    echo "exit status: $rc"
    expect "$name: result is valid JSON with a boolean 'healthy'" \
        python3 -c 'import json,sys; assert isinstance(json.load(open(sys.argv[1]))["healthy"], bool)' \
        "$WORK/health-$name.json"
}

echo "=== machine ==="
nvidia-smi -L 2>&1 || echo "(nvidia-smi -L failed)"
find /dev -maxdepth 1 -name 'nvidia*' 2>/dev/null | sort | head -20
ls /sys/class/infiniband 2>/dev/null || echo "(no /sys/class/infiniband)"
smi_gpus="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU [0-9]' || true)"
ib_ports=0
for layer in /sys/class/infiniband/*/ports/*/link_layer; do
    if [[ -r "$layer" && "$(cat "$layer")" == InfiniBand ]]; then
        ib_ports=$((ib_ports + 1))
    fi
done
echo "nvidia-smi sees $smi_gpus GPU(s); $ib_ports InfiniBand port(s)"

run_as detect AZC_GPU_VENDOR=nvidia
expect "detect: GPU count matches nvidia-smi -L ($smi_gpus)" \
    grep -q "^$smi_gpus GPUs" <(field "$WORK/health-detect.json" gpu detail)
if ((ib_ports == 0)); then
    expect "detect: IB check says 'no IB' and is skipped" \
        grep -q "^no IB: .*True$" <(echo "$(field "$WORK/health-detect.json" infiniband detail) $(field "$WORK/health-detect.json" infiniband skipped)")
fi

run_as nd-h100-v5 AZC_PROFILE=nd-h100-v5 AZC_SIZE=Standard_ND96isr_H100_v5 AZC_GPU_VENDOR=nvidia \
    AZC_GPUS=8 AZC_IB_PORTS=8 AZC_IB_GBPS=400 AZC_NVME_DISKS=8
if ((ib_ports == 0)); then
    expect "nd-h100-v5: IB check fails with 'no IB: ...'" \
        grep -q "^no IB: no InfiniBand ports" <(field "$WORK/health-nd-h100-v5.json" infiniband detail)
    expect "nd-h100-v5: node is unhealthy without IB" \
        grep -qx False <(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["healthy"])' "$WORK/health-nd-h100-v5.json")
fi

run_as nc-h100-v5 AZC_PROFILE=nc-h100-v5 AZC_SIZE=Standard_NC80adis_H100_v5 AZC_GPU_VENDOR=nvidia \
    AZC_GPUS=2 AZC_IB_PORTS=0 AZC_IB_GBPS=0 AZC_NVME_DISKS=0
expect "nc-h100-v5: IB check skipped with 'no IB: this size has no InfiniBand'" \
    grep -qx "no IB: this size has no InfiniBand" <(field "$WORK/health-nc-h100-v5.json" infiniband detail)

run_as gb300 AZC_PROFILE=nd-gb300-v6 AZC_SIZE=Standard_ND128isr_GB300_v6 AZC_GPU_VENDOR=nvidia \
    AZC_GPUS="$smi_gpus" AZC_IB_PORTS=4 AZC_IB_GBPS=400 AZC_NVME_DISKS=0 AZC_GB=1 AZC_ARCH=Arm64 \
    DCGM_TIMEOUT=120
echo "--- nvidia-smi -q, Fabric blocks as the parser reads them ---"
# shellcheck disable=SC1091
fabric="$(nvidia-smi -q 2>/dev/null | (R="" . components/bootstrap/scripts/azc-gb-health-lib.sh && fabric_rows))"
echo "$fabric"
expect "gb300: one Fabric row per GPU ($smi_gpus)" test "$(grep -c . <<<"$fabric")" -eq "$smi_gpus"
for check in nvlink_fabric imex xid dcgm; do
    expect "gb300: $check reported" field "$WORK/health-gb300.json" "$check" detail
done

echo "=== health endpoint (Application Health extension's view of the nd-h100-v5 result) ==="
python3 components/bootstrap/scripts/azc-health-server.py --port 0 --result "$WORK/health-nd-h100-v5.json" \
    >"$WORK/server.out" &
server=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
    grep -q listening "$WORK/server.out" 2>/dev/null && break
    sleep 0.5
done
url="$(sed -n 's/.*listening on //p' "$WORK/server.out")"
body="$(python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' "$url" || true)"
kill "$server" 2>/dev/null || true
echo "GET $url -> $body"
expected='{"ApplicationHealthState": "Healthy"}'
if [[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["healthy"])' "$WORK/health-nd-h100-v5.json")" == False ]]; then
    expected='{"ApplicationHealthState": "Unhealthy"}'
fi
expect "endpoint answers $expected" test "$body" = "$expected"

echo "results in $WORK; $failures expectation(s) failed"
exit $((failures > 0))
