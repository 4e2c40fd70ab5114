#!/usr/bin/env bash
# azc-mount-blob: mount the cluster's blob data container with BlobFuse2, authenticated by the node's
# managed identity (no keys on the node).
#
# Writes /etc/azcluster/blobfuse2-<container>.yaml (azstorage mode msi, account, container, endpoint;
# appid when a user-assigned identity's client id is given) and mounts it at AZC_BLOB_MOUNT with a file
# cache on local disk. Runs from azc-mount-blob.service (Restart=on-failure): while the identity, the
# private endpoint or blobfuse2 itself is not ready it exits 75 and systemd retries; boot never waits.
# BlobFuse2 configuration keys: Azure/azure-storage-fuse setup/baseConfig.yaml.
set -euo pipefail
AZC_TAG=azc-mount-blob
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-lib.sh}"

ACCOUNT="${AZC_BLOB_ACCOUNT:-}"
CONTAINER="${AZC_BLOB_CONTAINER:-}"
if [[ -z "$ACCOUNT" || -z "$CONTAINER" ]]; then
    log "no blob container to mount"
    exit 0
fi
ENDPOINT="${AZC_BLOB_ENDPOINT:-https://$ACCOUNT.blob.core.windows.net}"
MP="${AZC_BLOB_MOUNT:-/mnt/blob/$CONTAINER}"
CACHE="${AZC_BLOB_CACHE:-/mnt/blobfuse2-cache}/$CONTAINER"
CONFIG="/etc/azcluster/blobfuse2-$CONTAINER.yaml"

write_config() {
    {
        echo "# Written by azcluster (azc-mount-blob). BlobFuse2 with the node's managed identity."
        echo "allow-other: true"
        echo "logging:"
        echo "  type: syslog"
        echo "  level: log_warning"
        echo "components:"
        echo "  - libfuse"
        echo "  - file_cache"
        echo "  - attr_cache"
        echo "  - azstorage"
        echo "file_cache:"
        echo "  path: $CACHE"
        echo "  timeout-sec: 120"
        echo "attr_cache:"
        echo "  timeout-sec: 120"
        echo "azstorage:"
        echo "  type: block"
        echo "  account-name: $ACCOUNT"
        echo "  container: $CONTAINER"
        echo "  endpoint: $ENDPOINT"
        echo "  mode: msi"
        if [[ -n "${AZC_BLOB_CLIENT_ID:-}" ]]; then
            echo "  appid: $AZC_BLOB_CLIENT_ID"
        fi
    } | write_if_changed "$R$CONFIG" 0600 >/dev/null
}

allow_other() {
    # BlobFuse2's allow-other needs user_allow_other in /etc/fuse.conf.
    local conf="$R/etc/fuse.conf"
    if ! grep -qsx 'user_allow_other' "$conf"; then
        {
            cat "$conf" 2>/dev/null || true
            echo "user_allow_other"
        } | write_if_changed "$conf" 0644 >/dev/null
    fi
}

install_blobfuse2() {
    # Microsoft's BlobFuse2 install steps for Ubuntu: the packages.microsoft.com prod repository.
    local version codename
    version="$(os_release VERSION_ID)"
    codename="$(os_release VERSION_CODENAME)"
    if [[ "$(os_release ID)" != ubuntu || -z "$version" || -z "$codename" ]]; then
        return 1
    fi
    log "installing blobfuse2"
    apt_microsoft_repo microsoft-prod "deb https://packages.microsoft.com/ubuntu/$version/prod $codename main" ||
        return 1
    DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q blobfuse2 >&2
}

main() {
    write_config
    allow_other
    mkdir -p "$R$MP" "$R$CACHE"
    if is_mounted "$MP" 'fuse'; then
        log "$MP already mounted"
        return 0
    fi
    if ! have "$BLOBFUSE2"; then
        install_blobfuse2 || true
        if ! have "$BLOBFUSE2"; then
            log "blobfuse2 not installed (packages.microsoft.com); retrying later"
            return 75
        fi
    fi
    if ! "$BLOBFUSE2" mount "$MP" --config-file="$R$CONFIG"; then
        log "blobfuse2 mount of $ACCOUNT/$CONTAINER at $MP failed (identity role or private endpoint not ready?); retrying later"
        return 75
    fi
    log "mounted $ACCOUNT/$CONTAINER at $MP"
}

main "$@"
