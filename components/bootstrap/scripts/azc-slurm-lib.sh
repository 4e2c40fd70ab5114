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

# client_conf: let scontrol reach slurmctld on a node whose slurmd has not fetched the configuration yet
# (configless: no /etc/slurm/slurm.conf there). Without it scontrol fails, and a claim that took that for
# an empty node table would take a slot another node holds. Uses slurmd's cached copy when there is one,
# else a minimal client configuration naming the controller (the same one slurmd asks).
client_conf() {
    local conf="$R/run/azcluster/slurm-client.conf" controller="${AZC_SLURM_CONTROLLER:-}"
    [[ -z "${SLURM_CONF:-}" && ! -r "$R/etc/slurm/slurm.conf" && -n "$controller" ]] || return 0
    if [[ -r "$R/run/slurm/conf/slurm.conf" ]]; then
        export SLURM_CONF="$R/run/slurm/conf/slurm.conf"
        return 0
    fi
    printf 'ClusterName=%s\nSlurmctldHost=%s(%s)\nSlurmctldPort=%s\nAuthType=auth/munge\n' \
        "${AZC_CLUSTER:?AZC_CLUSTER is not set}" "${controller%%.*}" "$controller" "${AZC_SLURM_PORT:-6817}" |
        write_if_changed "$conf" 0644 >/dev/null
    export SLURM_CONF="$conf"
}

# node_table: "NAME HOSTNAME STATE REASON-TIME REASON" for every node slurmctld shows (22.05 does not
# show unclaimed CLOUD slots; 23.x and later show them powered down). REASON-TIME is the time stamp of the
# node's reason, or "-"; REASON its first word, or "-". Fails when slurmctld cannot be asked.
node_table() {
    local out
    out="$("$SCONTROL" -o show node)" || return 1
    awk '{
        name = host = state = ""; when = "-"; reason = "-"
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^NodeName=/) name = substr($i, 10)
            else if ($i ~ /^NodeHostName=/) host = substr($i, 14)
            else if ($i ~ /^State=/) state = substr($i, 7)
            else if ($i ~ /^Reason=/) reason = substr($i, 8)
            else if ($i ~ /@[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9:]+\]$/) {
                when = $i; sub(/^.*@/, "", when); sub(/\]$/, "", when)
            }
        }
        if (name != "") print name, (host == "" ? "-" : host), state, when, (reason == "" ? "-" : reason)
    }' <<<"$out"
}

# The drain reason of a slot no node holds (the reaper sets it; a node's activate takes it back).
SLOT_FREE="azc-slot: free"

# slot_is_free STATE: a slot no live node holds: powered down (never claimed, or handed back by the
# reaper), or not answering and marked down or drained (its VM is gone). A slot whose node registered a
# moment ago is neither, even while it still carries the free-slot drain.
slot_is_free() {
    local state="$1"
    [[ "$state" == *POWERING_UP* ]] && return 1
    [[ "$state" == *POWERED_DOWN* ]] && return 0
    [[ "$state" == *NOT_RESPONDING* && ("$state" == DOWN* || "$state" == *DRAIN*) ]]
}

# mpi_report FILE: whether this host's Slurm has a PMIx plugin, as JSON in FILE (the contract is
# components/bootstrap/slurm_mpi.py; `azcluster status` reads the login node's) and in the log. Prints
# "pmix" or "none": the MpiDefault this build can run. Plugins are found as files (mpi_<type>.so in
# Slurm's plugin directory: Debian's slurm-wlm/, SchedMD's and Microsoft's slurm/), the names
# `srun --mpi=list` prints, since srun itself fails under MpiDefault=pmix where the plugin is missing.
mpi_report() {
    local file="$1" plugins=(none) path name version list default detail=""
    version="$( (slurmd -V 2>/dev/null || slurmctld -V 2>/dev/null || true) | awk '{print $2}')"
    for path in "$R"/usr/lib/*/slurm*/mpi_*.so "$R"/usr/lib*/slurm*/mpi_*.so; do
        [[ -e "$path" ]] || continue
        name="${path##*/mpi_}"
        printf '%s\n' "${plugins[@]}" | grep -qx "${name%.so}" || plugins+=("${name%.so}")
    done
    list="$(printf '"%s", ' "${plugins[@]}")"
    if printf '%s\n' "${plugins[@]}" | grep -q '^pmix'; then
        default=pmix
    else
        default=none
        detail="this Slurm build has no PMIx plugin, so the controller runs MpiDefault=none: plain srun runs, srun --mpi=pmix (and MPI programs that need PMIx) will fail"
        log "Slurm $version: $detail"
    fi
    printf '{"slurm": "%s", "plugins": [%s], "pmix": %s, "mpi_default": "%s", "time": "%s", "detail": "%s"}\n' \
        "$version" "${list%, }" "$([[ $default == pmix ]] && echo true || echo false)" "$default" \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$detail" | write_if_changed "$file" 0644 >/dev/null
    echo "$default"
}
MPI_REPORT="${AZC_SLURM_MPI_REPORT:-$STATE_DIR/slurm-mpi.json}"

# slot_name INDEX: the slot's node name, e.g. h100-i0-007.
slot_name() { printf '%s-%0*d' "${AZC_ISLAND_KEY:?}" "${AZC_SLURM_SLOT_WIDTH:-3}" "$1"; }

# plugstack_local [LINE]: this host's SPANK plugin lines, which plugstack.conf includes: LINE, or none.
plugstack_local() {
    printf '%s\n' "${1:-# no SPANK plugins on this host (azcluster)}" |
        write_if_changed "$R/etc/slurm/plugstack.local.conf" 0644 >/dev/null
}
