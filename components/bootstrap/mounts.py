"""Shared storage on every node: Managed Lustre, a blob container through BlobFuse2 and the shared home
(NFS Azure Files). Each mount is a systemd service that retries in the background until its target
exists, so a node never waits at boot for storage that is still being created.

The GPU nodes and the login node mount the same things; only the BlobFuse2 cache and the Lustre client
package differ (NVMe scratch versus the OS disk; the image's OS and architecture).

Pure: no pulumi, no Azure SDK. The values that exist only at deployment (the Lustre MGS name, the blob
account, the home's export) come in as `StorageValues`, plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..catalog import lustre_client_for
from ..spec import ClusterSpec, LoginSpec
from .document import Piece

NVME_MOUNT = "/mnt/resource_nvme"
LUSTRE_MOUNT = "/lustre"
BLOB_MOUNT_ROOT = "/mnt/blob"

# Client options for the shared home's NFS 4.1 mount, as Azure recommends for NFS Azure file shares
# (learn.microsoft.com/azure/storage/files/storage-files-how-to-mount-nfs-shares, "Mount options"):
# vers/minorversion/sec required; nconnect=4 (no gain beyond 4); 1 MiB rsize/wsize; actimeo 30-60;
# noresvport for uninterrupted service after a reconnect on kernels below 5.18.
HOME_NFS_OPTIONS = (
    "vers=4,minorversion=1,sec=sys,nconnect=4,rsize=1048576,wsize=1048576,actimeo=30,noresvport"
)

MOUNT_SCRIPTS = ("azc-mount-lustre.sh", "azc-mount-blob.sh", "azc-mount-home.sh")
MOUNT_UNITS = ("azc-mount-lustre.service", "azc-mount-blob.service", "azc-mount-home.service")

# The Lustre client a node installs when its image has none (the login node's plain Ubuntu; an HPC image
# that lacks it): catalogue data per image OS and architecture (catalog/images.yaml `lustre_clients`, the
# DKMS metapackage Microsoft's client install pages give). This is the default login image's.
FROM_IMAGE = "from-image"
"""`lustre_client_package` default: the catalogue's package for the node's image and architecture."""


def lustre_client_package(image: str, architecture: str) -> str | None:
    """The Managed Lustre client package for `image` on `architecture`; None when the catalogue has none
    (an image id, an OS without a client for that architecture: rule AZC056 says so)."""
    client = lustre_client_for(image, architecture)
    return client.package if client is not None else None


DEFAULT_LUSTRE_CLIENT_PACKAGE = lustre_client_package(LoginSpec.model_fields["image"].default, "x64")


@dataclass(frozen=True)
class StorageValues:
    """Storage names known only at deployment; None: that storage is not mounted.

    lustre_mgs_host: DNS name (or IP) of the Managed Lustre MGS. blob_account: storage account whose first
    container is mounted with BlobFuse2 when the spec's `storage.blob` is enabled with `mount: true`;
    blob_client_id: client id of the user-assigned identity BlobFuse2 authenticates as (default: the
    node's system-assigned identity); blob_endpoint: default https://<account>.blob.core.windows.net.
    home_source: the shared home's NFS export (`<account>.file.core.windows.net:/<account>/home`).
    """

    lustre_mgs_host: str | None = None
    blob_account: str | None = None
    blob_client_id: str | None = None
    blob_endpoint: str | None = None
    home_source: str | None = None


def storage_env(spec: ClusterSpec, values: StorageValues, cache_root: str) -> dict[str, Any]:
    """node.env settings of the mounts the spec asks for and the deployment provides."""
    env: dict[str, Any] = {}
    if values.home_source and spec.storage.home.enabled:
        env.update(
            AZC_HOME_SOURCE=values.home_source,
            AZC_HOME_MOUNT=spec.storage.home.mount,
            AZC_HOME_OPTIONS=HOME_NFS_OPTIONS,
        )
    if values.lustre_mgs_host:
        env["AZC_LUSTRE_HOST"] = values.lustre_mgs_host
        env["AZC_LUSTRE_MOUNT"] = LUSTRE_MOUNT
    blob = spec.storage.blob
    account = values.blob_account
    if account and blob.enabled and blob.mount and blob.containers:
        container = blob.containers[0]
        env.update(
            AZC_BLOB_ACCOUNT=account,
            AZC_BLOB_CONTAINER=container,
            AZC_BLOB_ENDPOINT=values.blob_endpoint or f"https://{account}.blob.core.windows.net",
            AZC_BLOB_MOUNT=f"{BLOB_MOUNT_ROOT}/{container}",
            AZC_BLOB_CACHE=cache_root,
            AZC_BLOB_CLIENT_ID=values.blob_client_id,
        )
    return env


def mounts_piece(
    spec: ClusterSpec, values: StorageValues, cache_root: str, client_package: str | None
) -> Piece:
    """The mount scripts (always, so a mount added later finds them) and the services of the mounts the
    node has. client_package: the Lustre client installed if the image lacks mount.lustre."""
    env = storage_env(spec, values, cache_root)
    if "AZC_LUSTRE_HOST" in env:
        env["AZC_LUSTRE_CLIENT_PKG"] = client_package
    wanted = ("AZC_LUSTRE_HOST", "AZC_BLOB_ACCOUNT", "AZC_HOME_SOURCE")
    units = tuple(unit for unit, key in zip(MOUNT_UNITS, wanted, strict=True) if key in env)
    return Piece("mounts", env=env, scripts=MOUNT_SCRIPTS, units=units, start=units)
