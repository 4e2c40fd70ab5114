#!/usr/bin/env bash
# shellcheck disable=SC2034  # a library: the variables it sets are used by the scripts that source it
# Shared helpers for the Slurm scripts (controller and GPU nodes). Sourced after azc-lib.sh, never run.
#
# Slurm comes from Microsoft's packages (packages.microsoft.com/repos/slurm-ubuntu-<codename>, the
# slurm-smd-* packages CycleCloud installs; Azure/cyclecloud-slurm README "Packaging"), pinned to the
# catalogue's version (AZC_SLURM_VERSION) on every node and on the controller, so they always match.
# Node slots: see components/bootstrap/slurm.py.

SCONTROL="${SCONTROL:-scontrol}"
MUNGE_KEY_B64="${AZC_MUNGE_KEY_B64:-$R/etc/azcluster/munge.key.b64}"
MUNGE_KEY="${AZC_MUNGE_KEY:-$R/etc/munge/munge.key}"
SLURM_NODE_FILE="${AZC_SLURM_NODE_FILE:-$STATE_DIR/slurm-node}"

# slurm_install ROLE: install munge and the pinned slurm-smd packages for ROLE (slurmd|slurmctld).
slurm_install() {
    local role="$1" codename arch version="${AZC_SLURM_VERSION:?AZC_SLURM_VERSION is not set}" pkgs=()
    if have slurmd && [[ "$role" == slurmd ]] && slurmd -V 2>/dev/null | grep -q " ${version}"; then
        return 0
    fi
    if have slurmctld && [[ "$role" == slurmctld ]] && slurmctld -V 2>/dev/null | grep -q " ${version}"; then
        return 0
    fi
    codename="$(os_release VERSION_CODENAME)"
    arch="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
    apt_microsoft_repo "slurm" "deb [arch=$arch signed-by=/etc/apt/trusted.gpg.d/microsoft.gpg] https://packages.microsoft.com/repos/slurm-ubuntu-$codename/ ${AZC_SLURM_REPO_GROUP:-stable} main" ||
        return 1
    # Never let Ubuntu's own (older) slurm packages win over Microsoft's pinned ones.
    printf 'Package: slurm, slurm-*\nPin: origin "packages.microsoft.com"\nPin-Priority: 990\n' \
        >"$R/etc/apt/preferences.d/azcluster-slurm"
    for p in slurm-smd slurm-smd-client "slurm-smd-$role"; do pkgs+=("$p=${version}*"); done
    if [[ "$role" == slurmctld && "${AZC_SLURM_ACCOUNTING:-0}" == 1 ]]; then
        pkgs+=("slurm-smd-slurmdbd=${version}*")
    fi
    DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q munge "${pkgs[@]}" >&2
}

# munge_setup: install the cluster's munge key (shipped base64 in custom data) and start munge.
munge_setup() {
    [[ -s "$MUNGE_KEY_B64" ]] || { log "no munge key at $MUNGE_KEY_B64" && return 1; }
    mkdir -p "$(dirname "$MUNGE_KEY")"
    base64 -d "$MUNGE_KEY_B64" | write_if_changed "$MUNGE_KEY" 0400 >/dev/null
    chown munge:munge "$MUNGE_KEY" 2>/dev/null || true
    "$SYSTEMCTL" enable --now munge >&2 && "$SYSTEMCTL" restart munge >&2
}

# node_table: "NAME HOSTNAME STATE REASON-TIME" for every node slurmctld shows (hidden CLOUD slots are
# not shown: they are free). REASON-TIME is the time stamp of the node's reason, or "-".
node_table() {
    "$SCONTROL" -o show node 2>/dev/null | awk '{
        name = host = state = ""; when = "-"
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^NodeName=/) name = substr($i, 10)
            else if ($i ~ /^NodeHostName=/) host = substr($i, 14)
            else if ($i ~ /^State=/) state = substr($i, 7)
            else if ($i ~ /@[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9:]+\]$/) {
                when = $i; sub(/^.*@/, "", when); sub(/\]$/, "", when)
            }
        }
        if (name != "") print name, (host == "" ? "-" : host), state, when
    }'
}

# slot_name INDEX: the slot's node name, e.g. h100-i0-007.
slot_name() { printf '%s-%0*d' "${AZC_ISLAND_KEY:?}" "${AZC_SLURM_SLOT_WIDTH:-3}" "$1"; }
