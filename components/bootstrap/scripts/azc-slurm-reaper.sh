#!/usr/bin/env bash
# azc-slurm-reaper: on the controller, keep Slurm's node slots honest (components/bootstrap/slurm.py).
#
# Unclaimed slots: Slurm 23.x and later show a CLOUD slot no node has claimed as powered down and would
# give it a job, then wait for a boot that never comes (22.05 hid it, and still allocated it). The reaper
# drains every such slot with reason "azc-slot: free", so no job is placed on capacity that no VM backs;
# the node that claims the slot takes the drain back once its slurmd has registered. Not with elastic
# power (AZC_SLURM_ELASTIC=1): there every slot is backed by a VM that Slurm's resume program starts.
#
# Vanished nodes: a node whose VM was deleted (scale-in, automatic repair) stops answering: slurmctld
# shows it IDLE* or DOWN* (not responding), and the reaper marks it DOWN, recording the time. Once that
# has lasted AZC_SLURM_REAP_AFTER minutes (default 10, longer than a reboot) the slot is drained as free:
# the next node that boots in that island takes it (slot_is_free). With elastic power the slot is powered
# down and returned to service instead (idle and powered down: Slurm resumes it for a job).
#
# Usage: azc-slurm-reaper.sh [--after MINUTES]   (a systemd timer runs it every minute)
set -euo pipefail
AZC_TAG=azc-slurm-reaper
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-lib.sh}"
# shellcheck source=azc-slurm-lib.sh
. "${AZC_SLURM_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-slurm-lib.sh}"

AFTER="${AZC_SLURM_REAP_AFTER:-10}"
if [[ "${1:-}" == --after ]]; then AFTER="${2:?--after needs minutes}"; fi
[[ "$AFTER" =~ ^[0-9]+$ ]] || { log "--after must be whole minutes" && exit 2; }
ELASTIC="${AZC_SLURM_ELASTIC:-0}"
GONE="azc-reaper: not responding"

# unclaimed: the slots to drain: every partition's slot that slurmctld does not show (22.05) or shows
# powered down and not yet drained (23.x and later; never one Slurm is powering up for a job).
unclaimed() {
    local table lists all
    lists="$("$SCONTROL" -o show partition | tr ' ' '\n' | sed -n 's/^Nodes=//p' | paste -sd, -)"
    [[ -n "$lists" ]] || return 0
    all="$("$SCONTROL" show hostnames "$lists" | sort -u)"
    table="$(node_table)"
    comm -23 <(printf '%s\n' "$all") <(awk '{print $1}' <<<"$table" | sort -u)
    awk '$3 ~ /POWERED_DOWN/ && $3 !~ /DRAIN|POWERING_UP/ {print $1}' <<<"$table"
}

if [[ "$ELASTIC" != 1 ]]; then
    free="$(unclaimed | sort -u | paste -sd, -)"
    if [[ -n "$free" ]]; then
        "$SCONTROL" update nodename="$free" state=drain reason="$SLOT_FREE"
        log "drained the unclaimed slots $("$SCONTROL" show hostlist "$free")"
    fi
fi

node_table | while read -r name _ state when reason; do
    if [[ "$ELASTIC" == 1 && "$state" == DOWN*POWERED_DOWN* && "$reason" == "${GONE%% *}" ]]; then
        "$SCONTROL" update nodename="$name" state=resume # back to idle and powered down: resumable
        log "$name is powered down: returned to Slurm's power saving"
        continue
    fi
    [[ "$state" == *NOT_RESPONDING* && "$state" != *POWER* ]] || continue
    if [[ "$state" != DOWN* && "$state" != *DRAIN* ]]; then
        # Slurm leaves an unanswering CLOUD node IDLE*; mark it DOWN so the reason records since when.
        "$SCONTROL" update nodename="$name" state=down reason="$GONE"
        log "$name does not answer: marked down"
        [[ "$AFTER" == 0 ]] || continue
        when="$(date +%Y-%m-%dT%H:%M:%S)"
    fi
    now="$(date +%s)"
    since="$(date -d "$when" +%s 2>/dev/null || echo "$now")"
    if ((now - since >= AFTER * 60)); then
        if [[ "$ELASTIC" == 1 ]]; then
            "$SCONTROL" update nodename="$name" state=power_down_force
        else
            # Drained, not powered down: powering down takes SuspendTimeout, during which no node can
            # register for the slot, and 24.11 drops the drain when it does.
            "$SCONTROL" update nodename="$name" state=drain reason="$SLOT_FREE"
        fi
        log "$name has not answered since $when: slot freed"
    fi
done
