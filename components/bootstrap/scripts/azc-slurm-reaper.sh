#!/usr/bin/env bash
# azc-slurm-reaper: on the controller, hand the slots of nodes that are gone back to the free pool.
#
# A node whose VM was deleted (scale-in, automatic repair) stops answering and slurmctld marks it
# DOWN* ("Not responding"). Once that has lasted AZC_SLURM_REAP_AFTER minutes (default 10, longer than
# a reboot) the slot is set to FUTURE: hidden from sinfo, free for the next node that boots.
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
now="$(date +%s)"
node_table | while read -r name _ state when; do
    [[ "$state" == *NOT_RESPONDING* && ("$state" == DOWN* || "$state" == *DRAIN*) ]] || continue
    since="$(date -d "$when" +%s 2>/dev/null || echo "$now")"
    if ((now - since >= AFTER * 60)); then
        "$SCONTROL" update nodename="$name" state=future
        log "$name has not answered since $when: slot freed"
    fi
done
