#!/usr/bin/env bash
# azc-mount-lustre: mount Azure Managed Lustre at AZC_LUSTRE_MOUNT without ever blocking boot.
#
# The file system's MGS address exists only once Azure Managed Lustre is created, which may be after the
# nodes boot, so the MGS is named by a DNS name (AZC_LUSTRE_HOST) that resolves once it exists. This
# script runs from azc-mount-lustre.service (Restart=on-failure): while the name does not resolve it
# exits 75 (EX_TEMPFAIL) and systemd retries later; boot never waits for it.
#   - /etc/fstab gets one entry (written once, replaced only if the host changes), with
#     noatime,flock,_netdev as Azure documents for clients plus noauto,nofail: this service owns the
#     mount, so boot does not try a name that may not resolve yet.
#   - the mount itself uses the resolved IPv4 address: <ip>@tcp:/lustrefs.
#   - If mount.lustre is missing and AZC_LUSTRE_CLIENT_PKG names Microsoft's client package
#     (packages.microsoft.com/repos/amlfs-<codename>), it is installed for the running kernel.
set -euo pipefail
AZC_TAG=azc-mount-lustre
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-lib.sh}"

HOST="${AZC_LUSTRE_HOST:-}"
MP="${AZC_LUSTRE_MOUNT:-/lustre}"
FSNAME="${AZC_LUSTRE_FSNAME:-lustrefs}"
OPTIONS="noatime,flock"

if [[ -z "$HOST" ]]; then
    log "no Lustre file system configured"
    exit 0
fi

resolve() {
    if [[ "$HOST" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        echo "$HOST"
        return 0
    fi
    "$GETENT" ahostsv4 "$HOST" 2>/dev/null | awk 'NR==1 {print $1}'
}

install_client() {
    local codename pkg="${AZC_LUSTRE_CLIENT_PKG:-}"
    codename="$(os_release VERSION_CODENAME)"
    if [[ -z "$pkg" || -z "$codename" ]]; then
        return 1
    fi
    # Microsoft's client install steps: the amlfs-<codename> repository on packages.microsoft.com and
    # either the DKMS client package or the one built for the running kernel (<package>=$(uname -r)).
    log "installing the Lustre client $pkg"
    apt_microsoft_repo amlfs "deb https://packages.microsoft.com/repos/amlfs-$codename/ $codename main" || return 1
    if [[ "$pkg" == *-dkms-* ]]; then
        DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q "$pkg" >&2
    else
        DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q "$pkg=$(uname -r)" >&2
    fi
}

main() {
    local ip
    ensure_fstab "$MP" "$HOST@tcp:/$FSNAME $MP lustre $OPTIONS,_netdev,noauto,nofail 0 0"
    mkdir -p "$R$MP"
    if is_mounted "$MP" '^lustre$'; then
        log "$MP already mounted"
        return 0
    fi
    if ! have "$MOUNT_LUSTRE" && ! install_client; then
        log "mount.lustre not found: this image has no Lustre client (set AZC_LUSTRE_CLIENT_PKG); retrying later"
        return 75
    fi
    ip="$(resolve || true)"
    if [[ -z "$ip" ]]; then
        log "waiting for $HOST to resolve (Azure Managed Lustre not created yet?); retrying later"
        return 75
    fi
    if ! "$MOUNT" -t lustre -o "$OPTIONS" "$ip@tcp:/$FSNAME" "$MP"; then
        log "mount -t lustre $ip@tcp:/$FSNAME $MP failed; retrying later"
        return 75
    fi
    log "mounted $HOST ($ip@tcp:/$FSNAME) at $MP"
}

main "$@"
