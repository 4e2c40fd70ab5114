#!/usr/bin/env bash
# azc-mount-home: mount the cluster's shared home (Azure Files premium NFS 4.1) at AZC_HOME_MOUNT, the
# same on the login node and every GPU node, without ever blocking boot.
#
# AZC_HOME_SOURCE is <account>.file.core.windows.net:/<account>/<share>. The name resolves to the share's
# private endpoint only once its record is in the privatelink.file zone; before that it resolves to a
# public address the account refuses (public network access is off), and an NFS mount there would hang.
# So the mount waits for a private address: until then the script exits 75 (EX_TEMPFAIL) and
# azc-mount-home.service (Restart=on-failure) retries.
#   - /etc/fstab gets one entry (replaced only when the source changes) with noauto,nofail: this
#     service owns the mount, so boot never waits on it.
#   - Seeding: directories already under the mount point (the admin user's home, made at provisioning)
#     are copied onto the share when the share has none of that name, through a temporary mount, before
#     the share is mounted over them. The first node to boot seeds; the others find the copies.
#   - Needs the share's rootSquash off (NoRootSquash): root creates and copies home directories.
set -euo pipefail
AZC_TAG=azc-mount-home
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-lib.sh}"

SOURCE="${AZC_HOME_SOURCE:-}"
MP="${AZC_HOME_MOUNT:-/home}"
OPTIONS="${AZC_HOME_OPTIONS:-vers=4,minorversion=1,sec=sys,nconnect=4}"
SEED="/run/azcluster/home-seed"
UMOUNT="${UMOUNT:-umount}"
MOUNT_NFS="${MOUNT_NFS:-mount.nfs}"

if [[ -z "$SOURCE" ]]; then
    log "no shared home configured"
    exit 0
fi
HOST="${SOURCE%%:*}"

# private_address NAME: the first IPv4 address NAME resolves to, when it is a private (RFC 1918) one.
private_address() {
    local ip
    ip="$("$GETENT" ahostsv4 "$1" 2>/dev/null | awk 'NR==1 {print $1}')"
    if [[ "$ip" =~ ^10\. || "$ip" =~ ^192\.168\. || "$ip" =~ ^172\.(1[6-9]|2[0-9]|3[01])\. ]]; then
        echo "$ip"
        return 0
    fi
    [[ -n "$ip" ]] && log "$1 resolves to $ip, not the private endpoint (DNS record not there yet?)"
    return 1
}

install_client() {
    # Ubuntu's NFS client (Azure's mount steps: apt-get install nfs-common); the HPC images ship it.
    [[ "$(os_release ID)" == ubuntu ]] || return 1
    log "installing nfs-common"
    DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q nfs-common >&2
}

# seed: copy local directories under MP that the share lacks onto it (temporary mount at SEED).
seed() {
    local dir name copied=0
    shopt -s nullglob
    local local_dirs=("$R$MP"/*/)
    shopt -u nullglob
    ((${#local_dirs[@]})) || return 0
    mkdir -p "$R$SEED"
    if is_mounted "$SEED"; then
        "$UMOUNT" "$SEED" # left by a run that failed half-way
    fi
    if ! "$MOUNT" -t nfs -o "$OPTIONS" "$SOURCE" "$SEED"; then
        log "mount of $SOURCE for seeding failed; retrying later"
        return 75
    fi
    for dir in "${local_dirs[@]}"; do
        dir="${dir%/}"
        name="$(basename "$dir")"
        if [[ ! -e "$R$SEED/$name" ]]; then
            cp -a "$dir" "$R$SEED/$name"
            copied=$((copied + 1))
            log "seeded $MP/$name onto the share"
        fi
    done
    "$UMOUNT" "$SEED"
    log "seeding done ($copied new)"
}

main() {
    ensure_fstab "$MP" "$SOURCE $MP nfs $OPTIONS,_netdev,noauto,nofail 0 0"
    mkdir -p "$R$MP"
    if is_mounted "$MP" '^nfs4?$'; then
        log "$MP already mounted"
        return 0
    fi
    if ! have "$MOUNT_NFS" && ! install_client; then
        log "mount.nfs not found and nfs-common could not be installed; retrying later"
        return 75
    fi
    if ! private_address "$HOST" >/dev/null; then
        log "waiting for $HOST to resolve to the share's private endpoint; retrying later"
        return 75
    fi
    seed || return 75
    if ! "$MOUNT" -t nfs -o "$OPTIONS" "$SOURCE" "$MP"; then
        log "mount -t nfs $SOURCE $MP failed; retrying later"
        return 75
    fi
    log "mounted $SOURCE at $MP"
}

main "$@"
