#!/usr/bin/env bash
# azc-slurm-prolog: Slurm's Prolog and Epilog on every node (slurmd runs it as root; SLURM_SCRIPT_CONTEXT
# says which). It keeps dcgm-exporter's HPC job mapping (--hpc-job-mapping-dir): a file per GPU index
# holding the ids of the jobs on that GPU, one a line. The prolog adds the job to the files of its GPUs
# (SLURM_JOB_GPUS); the epilog takes the job out of every file and removes a file left empty. The mapping
# never fails a job. Then, on a cluster with NVLink domains, azc-imex.sh runs (its exit status is ours).
# Why and the sources: components/bootstrap/slurm.py.
set -euo pipefail
MAP="${AZC_ROOT:-}/run/azcluster/hpc-jobs"
IMEX="${AZC_IMEX_SCRIPT:-$(dirname "${BASH_SOURCE[0]}")/azc-imex.sh}"

# job_map: slurmd runs the prologs and epilogs of jobs sharing a node at the same time, so each holds a lock
# beside the map while it reads and rewrites a file (an epilog's rewrite would otherwise drop the line a
# prolog just added), and an epilog writes its new copy to a temporary file of its own. Both stay outside
# the map folder, which dcgm-exporter reads, and the lock is released before IMEX runs.
job_map() {
    local job="${SLURM_JOB_ID:-}" gpus="${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-}}" gpu f tmp
    [[ "$job" =~ ^[0-9]+$ ]] || return 0
    mkdir -p "$MAP"
    {
        flock -w 10 9 || return 0
        case "${SLURM_SCRIPT_CONTEXT:-}" in
            prolog_slurmd)
                for gpu in ${gpus//,/ }; do
                    [[ "$gpu" =~ ^[0-9]+$ ]] || continue
                    grep -qsx "$job" "$MAP/$gpu" || echo "$job" >>"$MAP/$gpu"
                done
                ;;
            epilog_slurmd)
                for f in "$MAP"/*; do
                    [[ -f "$f" ]] || continue
                    tmp="$(mktemp "$MAP.XXXXXX")"
                    grep -vx "$job" "$f" >"$tmp" || true
                    if [[ -s "$tmp" ]]; then mv -f "$tmp" "$f"; else rm -f "$f" "$tmp"; fi
                done
                ;;
        esac
    } 9>"$MAP.lock"
}

job_map 2>/dev/null || true
[[ -x "$IMEX" ]] && exec "$IMEX"
exit 0
