#!/usr/bin/env bash
# azc-slurm-health: Slurm's HealthCheckProgram. Drains this node when its recorded health (azc-health.sh,
# /var/lib/azcluster/health.json) is failing, with the failing checks as the reason, and resumes it
# when the health passes again. It only resumes nodes it drained itself (reason starting
# "azc-health:"), never a drain an administrator set. No result yet: nothing changes.
#
# Usage: azc-slurm-health.sh   (slurmd runs it every HealthCheckInterval seconds)
set -euo pipefail
AZC_TAG=azc-slurm-health
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-lib.sh}"
# shellcheck source=azc-slurm-lib.sh
. "${AZC_SLURM_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-slurm-lib.sh}"

PREFIX="azc-health:"
RESULT="${AZC_HEALTH_RESULT:-$STATE_DIR/health.json}"
NODE="${AZC_SLURM_NODE:-${SLURMD_NODENAME:-}}"
if [[ -z "$NODE" && -r "$SLURM_NODE_FILE" ]]; then
    NODE="$(head -n1 "$SLURM_NODE_FILE")"
fi
[[ -n "$NODE" ]] || { log "this node has no Slurm node name yet" && exit 0; }
[[ -r "$RESULT" ]] || exit 0

# verdict: "healthy" or "unhealthy<TAB>check: detail; check: detail".
verdict="$("${PYTHON:-python3}" - "$RESULT" <<'PY'
import json, sys
try:
    data = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(0)
if data.get("healthy") is True:
    print("healthy")
elif data.get("healthy") is False:
    failing = [f"{c.get('name')}: {c.get('detail', '')}" for c in data.get("checks", []) if not c.get("ok")]
    text = "; ".join(failing) or "unhealthy"
    print("unhealthy\t" + " ".join(text.split())[:200])
PY
)"
[[ -n "$verdict" ]] || exit 0

line="$("$SCONTROL" -o show node "$NODE")"
state="$(tr ' ' '\n' <<<"$line" | sed -n 's/^State=//p')"
reason="$(sed -n 's/.* Reason=\(.*\) \[[^]]*\].*/\1/p' <<<"$line")"

if [[ "$verdict" == healthy ]]; then
    if [[ "$state" == *DRAIN* && "$reason" == "$PREFIX"* ]]; then
        "$SCONTROL" update nodename="$NODE" state=resume
        log "resumed $NODE: health passes again"
    fi
else
    want="$PREFIX ${verdict#*$'\t'}"
    want="${want//\"/\'}"
    if [[ "$state" != *DRAIN* || "$reason" != "$want" ]]; then
        if [[ "$state" == *DRAIN* && "$reason" != "$PREFIX"* ]]; then
            exit 0 # drained by someone else: leave their reason
        fi
        "$SCONTROL" update nodename="$NODE" state=drain reason="$want"
        log "drained $NODE: $want"
    fi
fi
