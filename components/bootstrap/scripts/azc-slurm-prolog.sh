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

job_map() {
    local job="${SLURM_JOB_ID:-}" gpus="${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-}}" gpu f
    [[ "$job" =~ ^[0-9]+$ ]] || return 0
    case "${SLURM_SCRIPT_CONTEXT:-}" in
        prolog_slurmd)
            mkdir -p "$MAP"
            for gpu in ${gpus//,/ }; do
                [[ "$gpu" =~ ^[0-9]+$ ]] || continue
                grep -qsx "$job" "$MAP/$gpu" || echo "$job" >>"$MAP/$gpu"
            done
            ;;
        epilog_slurmd)
            for f in "$MAP"/*; do
                [[ -f "$f" ]] || continue
                grep -vx "$job" "$f" >"$MAP/.${f##*/}"
                if [[ -s "$MAP/.${f##*/}" ]]; then mv -f "$MAP/.${f##*/}" "$f"; else rm -f "$f" "$MAP/.${f##*/}"; fi
            done
            ;;
    esac
}

job_map 2>/dev/null || true
[[ -x "$IMEX" ]] && exec "$IMEX"
exit 0
