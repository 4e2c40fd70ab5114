#!/usr/bin/env bash
# azc-slurm-taskprolog: Slurm's TaskProlog. Every line "export NAME=VALUE" it prints is set in the
# task's environment, so each job step gets the node's NCCL/RCCL and UCX settings
# (/etc/azcluster/nccl.env, written by azc-prepare-node.sh) without sourcing anything. A value the job
# already set wins.
set -euo pipefail
ENV_FILE="${AZC_NCCL_ENV:-${AZC_ROOT:-}/etc/azcluster/nccl.env}"
[[ -r "$ENV_FILE" ]] || exit 0
while IFS='=' read -r name value; do
    [[ "$name" =~ ^[A-Z_][A-Z0-9_]*$ ]] || continue
    [[ -z "${!name+x}" ]] || continue
    printf 'export %s=%s\n' "$name" "$value"
done <"$ENV_FILE"
