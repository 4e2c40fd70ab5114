#!/usr/bin/env bash
# azc-slurm-reaper: on the controller, hand the slots of nodes that are gone back to the free pool.
#
# A node whose VM was deleted (scale-in, automatic repair) stops answering: slurmctld shows it IDLE* or
# DOWN* (not responding), and the reaper marks it DOWN, recording the time. Once that has lasted AZC_SLURM_REAP_AFTER minutes (default 10, longer than
# a reboot) the slot is drained with reason "azc-slot: free" and powered down where power saving is on:
# free for the next node that boots, which takes the drain back once its slurmd registers.
#
# It also drains the slots no node has claimed yet (hide_unclaimed).
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
# Slots no node has claimed yet are powered-down CLOUD records: hidden from sinfo, but Slurm would
# allocate them to jobs and then wait for them to boot. Draining them keeps jobs off until a node
# registers for the slot (FUTURE state would hide them too, but a FUTURE record that registers loses the
# address slurmctld learns for CLOUD nodes: checked against Slurm 22.05.8, srun then cannot reach it).
hide_unclaimed() {
    local lists all shown free
    lists="$("$SCONTROL" -o show partition 2>/dev/null | tr ' ' '\n' | sed -n 's/^Nodes=//p' | paste -sd, -)"
    [[ -n "$lists" ]] || return 0
    all="$("$SCONTROL" show hostnames "$lists" | sort -u)"
    shown="$(node_table | awk '{print $1}' | sort -u)"
    free="$(comm -23 <(printf '%s\n' "$all") <(printf '%s\n' "$shown") | paste -sd, -)"
    if [[ -n "$free" ]]; then
        "$SCONTROL" update nodename="$free" state=drain reason="$SLOT_FREE"
    fi
}

SLOT_FREE="azc-slot: free"
hide_unclaimed
now="$(date +%s)"
node_table | while read -r name _ state when; do
    [[ "$state" == *NOT_RESPONDING* ]] || continue
    if [[ "$state" != DOWN* && "$state" != *DRAIN* ]]; then
        # Slurm leaves an unanswering CLOUD node IDLE*; mark it DOWN so the reason records since when.
        "$SCONTROL" update nodename="$name" state=down reason="not responding (azc-slurm-reaper)"
        log "$name does not answer: marked down"
        [[ "$AFTER" == 0 ]] || continue
        when="$(date +%Y-%m-%dT%H:%M:%S)"
    fi
    since="$(date -d "$when" +%s 2>/dev/null || echo "$now")"
    if ((now - since >= AFTER * 60)); then
        "$SCONTROL" update nodename="$name" state=drain reason="$SLOT_FREE"
        "$SCONTROL" update nodename="$name" state=power_down_force 2>/dev/null || true
        log "$name has not answered since $when: slot freed"
    fi
done
