#!/usr/bin/env bash
# azc-metrics: this node's metrics side (components/bootstrap/metrics.py says what and why).
#   install       download the pinned Prometheus and node_exporter (checked against their release's
#                 sha256sums.txt) unless present, then start the exporters and the agent. Run in the
#                 background by azc-metrics-install.service at every boot (the only way their units, which
#                 have no [Install], start: never before their binaries exist); retried until it succeeds.
#   config        write the agent's configuration with this node's host name and island (ExecStartPre of
#                 the agent)
#   gpu-exporter  run the size's GPU exporter container in the foreground (azc-gpu-exporter.service)
set -euo pipefail
AZC_TAG=azc-metrics
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-lib.sh}"

BIN_DIR="$R/opt/azcluster/metrics"
TEMPLATE="$R/etc/azcluster/metrics/prometheus.yml"
CONFIG="$R/run/azcluster/prometheus.yml"
CURL="${CURL:-curl}"
DOCKER="${DOCKER:-docker}"
JOB_MAP=/run/azcluster/hpc-jobs

fetch() { # fetch BINARY URL SUMS_URL: unless in BIN_DIR, download its release, check the digest, unpack it
    local bin="$1" url="$2" sums="$3" dest="$BIN_DIR/$1.d" tmp name want got
    [[ -x "$BIN_DIR/$bin" ]] && return 0
    tmp="$(mktemp -d)"
    name="${url##*/}"
    "$CURL" -fsSL --retry 5 --retry-delay 10 -o "$tmp/$name" "$url"
    "$CURL" -fsSL --retry 5 --retry-delay 10 -o "$tmp/sums" "$sums"
    want="$(awk -v n="$name" '$2 == n {print $1}' "$tmp/sums")"
    got="$(sha256sum "$tmp/$name" | cut -d' ' -f1)"
    if [[ -z "$want" || "$want" != "$got" ]]; then
        log "$name: sha256 $got is not the release's ${want:-(not listed)}"
        rm -rf "$tmp"
        return 1
    fi
    mkdir -p "$dest"
    tar -xzf "$tmp/$name" -C "$dest" --strip-components=1
    rm -rf "$tmp"
    mv -f "$dest/$bin" "$BIN_DIR/$bin" && rm -rf "$dest"
}

install() {
    mkdir -p "$BIN_DIR" "$R${AZC_METRICS_TEXTFILE_DIR:-/var/lib/azcluster/metrics}"
    fetch prometheus "$AZC_METRICS_PROMETHEUS_URL" "$AZC_METRICS_PROMETHEUS_SUMS"
    fetch node_exporter "$AZC_METRICS_NODE_EXPORTER_URL" "$AZC_METRICS_NODE_EXPORTER_SUMS"
    local units=(azc-node-exporter.service azc-metrics-agent.service)
    if [[ -n "${AZC_METRICS_GPU_IMAGE:-}" ]]; then
        if have "$DOCKER"; then
            units+=(azc-gpu-exporter.service)
        else
            log "no docker on this image: GPU metrics are not collected"
        fi
    fi
    "$SYSTEMCTL" start --no-block "${units[@]}"
    log "started ${units[*]}"
}

config() {
    local host tmp rack=unknown
    host="$(hostname)"
    if [[ -s "$STATE_DIR/nvlink-domain" ]]; then
        rack="$(head -n1 "$STATE_DIR/nvlink-domain" | tr -cd 'A-Za-z0-9._-')"
    fi
    mkdir -p "$(dirname "$CONFIG")"
    tmp="$(mktemp "$CONFIG.XXXXXX")"
    sed -e "s/@HOSTNAME@/$host/g" -e "s/@ISLAND@/${AZC_ISLAND:-}/g" -e "s/@RACK@/${rack:-unknown}/g" \
        "$TEMPLATE" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$CONFIG"
}

gpu_exporter() {
    "$DOCKER" rm -f azc-gpu-exporter >/dev/null 2>&1 || true
    case "${AZC_GPU_VENDOR:-}" in
        nvidia)
            # HPC job mapping (dcgm-exporter --hpc-job-mapping-dir): a file per GPU index holding the job
            # ids on it (Slurm's Prolog/Epilog, azc-slurm-prolog.sh, keep it) adds the hpc_job label
            mkdir -p "$R$JOB_MAP"
            exec "$DOCKER" run --rm --name azc-gpu-exporter --gpus all --cap-add SYS_ADMIN \
                -p 127.0.0.1:9400:9400 -v /etc/azcluster/metrics/dcgm-counters.csv:/etc/azc-counters.csv:ro \
                -v "$JOB_MAP:$JOB_MAP:ro" "$AZC_METRICS_GPU_IMAGE" -f /etc/azc-counters.csv \
                --hpc-job-mapping-dir "$JOB_MAP"
            ;;
        amd)
            exec "$DOCKER" run --rm --name azc-gpu-exporter --device=/dev/dri --device=/dev/kfd \
                -p 127.0.0.1:5000:5000 "$AZC_METRICS_GPU_IMAGE"
            ;;
        *) log "no GPU exporter for vendor '${AZC_GPU_VENDOR:-}'" && exit 0 ;;
    esac
}

case "${1:-}" in
    install) install ;;
    config) config ;;
    gpu-exporter) gpu_exporter ;;
    *) log "usage: azc-metrics.sh install|config|gpu-exporter" && exit 2 ;;
esac
