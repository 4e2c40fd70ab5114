#!/usr/bin/env bash
# azc-slurm-metrics: Slurm's state as Prometheus series in node_exporter's textfile directory (login node,
# every 30 s by azc-slurm-metrics.timer). Names are prometheus-slurm-exporter's (vpenso), so its
# dashboards read them; that exporter itself is not used: it is unmaintained and its GPU accounting exits
# on Slurm 24.11 (`sacct --format=AllocGRES` was removed; vpenso/prometheus-slurm-exporter#124). Only
# sinfo, squeue and sdiag are called (no slurmdbd), each with a timeout.
#   slurm_nodes_{alloc,idle,mix,drain,down,other}   nodes by state (each node once)
#   slurm_gpus_{alloc,total}                         GPUs of the cluster (GRES gpu)
#   slurm_partition_gpus_{alloc,total}{partition}    the same per partition
#   slurm_queue_{running,pending}                    jobs by state
#   slurm_partition_jobs_pending{partition}
#   slurm_scheduler_{up,threads,queue_size,last_cycle,backfill_last_cycle}   sdiag (cycles in microseconds)
set -euo pipefail
AZC_TAG=azc-slurm-metrics
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-lib.sh}"
OUT_DIR="$R${AZC_METRICS_TEXTFILE_DIR:-/var/lib/azcluster/metrics}"
SINFO="${SINFO:-sinfo}"
SQUEUE="${SQUEUE:-squeue}"
SDIAG="${SDIAG:-sdiag}"
T="${AZC_SLURM_METRICS_TIMEOUT:-20}"

NODES="$(timeout "$T" "$SINFO" -h -N -O 'NodeList: ,Partition: ,StateLong: ,Gres: ,GresUsed:' 2>/dev/null)" || NODES=""
JOBS="$(timeout "$T" "$SQUEUE" -h -o '%T %P' 2>/dev/null)" || JOBS=""
UP=1
DIAG="$(timeout "$T" "$SDIAG" 2>/dev/null)" || { UP=0 && DIAG=""; }
export NODES JOBS DIAG UP

body="$(
    awk '
    function gpus(gres,   n, parts, i, f, k, q) { # "gpu:h100:8(S:0-1),shard:2" -> 8
        n = 0; k = split(gres, parts, ",")
        for (i = 1; i <= k; i++) {
            if (parts[i] !~ /^gpu(:|$)/) continue
            sub(/\(.*/, "", parts[i]); f = split(parts[i], q, ":")
            if (q[f] ~ /^[0-9]+$/) n += q[f]
        }
        return n
    }
    function state(s) {
        s = tolower(s)
        if (s ~ /drain/) return "drain"
        if (s ~ /^down/) return "down"
        if (s ~ /^alloc/) return "alloc"
        if (s ~ /^mix/) return "mix"
        if (s ~ /^idle/) return "idle"
        return "other"
    }
    BEGIN {
        split("alloc idle mix drain down other", names, " ")
        for (i in names) count[names[i]] = 0
        nodes = ENVIRON["NODES"]; jobs = ENVIRON["JOBS"]; diag = ENVIRON["DIAG"]; up = ENVIRON["UP"] + 0
        n = split(nodes, lines, "\n")
        for (i = 1; i <= n; i++) {
            if (split(lines[i], f, " ") < 3) continue
            part = f[2]; sub(/\*$/, "", part); parts[part] = 1
            pt[part] += gpus(f[4]); pa[part] += gpus(f[5])
            if (f[1] in seen) continue
            seen[f[1]] = 1; count[state(f[3])]++; total += gpus(f[4]); alloc += gpus(f[5])
        }
        for (s in count) printf "slurm_nodes_%s %d\n", s, count[s]
        printf "slurm_gpus_total %d\nslurm_gpus_alloc %d\n", total, alloc
        for (p in parts) {
            printf "slurm_partition_gpus_total{partition=\"%s\"} %d\n", p, pt[p]
            printf "slurm_partition_gpus_alloc{partition=\"%s\"} %d\n", p, pa[p]
            pending[p] = 0
        }
        running = 0; waiting = 0
        n = split(jobs, lines, "\n")
        for (i = 1; i <= n; i++) {
            if (split(lines[i], f, " ") < 2) continue
            if (f[1] == "RUNNING") running++
            if (f[1] == "PENDING") { waiting++; k = split(f[2], ps, ","); for (j = 1; j <= k; j++) pending[ps[j]]++ }
        }
        printf "slurm_queue_running %d\nslurm_queue_pending %d\n", running, waiting
        for (p in pending) printf "slurm_partition_jobs_pending{partition=\"%s\"} %d\n", p, pending[p]
        printf "slurm_scheduler_up %d\n", up
        n = split(diag, lines, "\n"); backfill = 0
        for (i = 1; i <= n; i++) {
            line = lines[i]
            if (line ~ /^Backfilling stats/) backfill = 1
            v = line; sub(/^[^:]*:[ \t]*/, "", v); v += 0
            if (line ~ /^[ \t]*Server thread count:/) printf "slurm_scheduler_threads %d\n", v
            else if (line ~ /^[ \t]*Agent queue size:/) printf "slurm_scheduler_queue_size %d\n", v
            else if (line ~ /^[ \t]*Last cycle:/ && !backfill) printf "slurm_scheduler_last_cycle %d\n", v
            else if (line ~ /^[ \t]*Last cycle:/ && backfill) printf "slurm_scheduler_backfill_last_cycle %d\n", v
        }
    }' </dev/null
)"
printf '%s\n' "$body" | write_if_changed "$OUT_DIR/slurm.prom" 0644 >/dev/null
