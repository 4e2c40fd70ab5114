"""Storage (AZC033-AZC039, AZC054): Managed Lustre capacity, zone and blob integration; the blob data
account's containers."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import catalog
from ..placement import cluster_zone
from ..spec import ClusterSpec
from .common import GUID, at, lustre_enabled, preview
from .registry import Problem, rule


@rule(
    "AZC033",
    "error",
    "lustre-capacity-out-of-range",
    "Managed Lustre capacity is outside the SKU's range",
)
def lustre_capacity_out_of_range(spec: ClusterSpec) -> Iterator[Problem]:
    """Each Managed Lustre SKU has a minimum and a maximum capacity; larger sizes (up to 2.5 PB) need a
    support request.

    Source:
    https://learn.microsoft.com/azure/azure-managed-lustre/create-file-system-portal#throughput-configurations
    (catalogue `storage.yaml`).
    """
    lustre = spec.storage.lustre
    sku = catalog.lustre_skus().get(lustre.sku) if lustre is not None else None
    if lustre is None or not lustre.enabled or sku is None:
        return
    if not sku.min_tib <= lustre.capacity_tib <= sku.max_tib:
        yield (
            at("storage.lustre.capacity_tib"),
            f"capacity_tib {lustre.capacity_tib} is outside {sku.name}'s range of "
            f"{sku.min_tib}-{sku.max_tib} TiB.",
            f"Use {sku.min_tib}-{sku.max_tib} TiB in steps of {sku.step_tib}; larger sizes need an Azure "
            "support request, or pick another SKU.",
        )


@rule(
    "AZC034",
    "error",
    "lustre-capacity-not-a-step",
    "Managed Lustre capacity is not a multiple of the SKU's step",
)
def lustre_capacity_not_a_step(spec: ClusterSpec) -> Iterator[Problem]:
    """Managed Lustre capacity comes in SKU-sized increments (48, 16, 8 or 4 TiB); other values are refused
    by the API. Source: as AZC033.
    """
    lustre = spec.storage.lustre
    sku = catalog.lustre_skus().get(lustre.sku) if lustre is not None else None
    if lustre is None or not lustre.enabled or sku is None:
        return
    if sku.min_tib <= lustre.capacity_tib <= sku.max_tib and lustre.capacity_tib % sku.step_tib:
        below = lustre.capacity_tib - lustre.capacity_tib % sku.step_tib
        choices = [str(n) for n in (below, below + sku.step_tib) if sku.min_tib <= n <= sku.max_tib]
        yield (
            at("storage.lustre.capacity_tib"),
            f"capacity_tib {lustre.capacity_tib} is not a multiple of {sku.name}'s step of "
            f"{sku.step_tib} TiB.",
            f"Use {' or '.join(choices)} TiB.",
        )


@rule("AZC035", "info", "lustre-without-zone", "Managed Lustre without `zone`: azcluster picks zone 1")
def lustre_without_zone(spec: ClusterSpec) -> Iterator[Problem]:
    """Managed Lustre lives in one availability zone and its clients must be in that zone ("Clients must
    reside in the same Availability Zone in which the cluster resides", learn.microsoft.com/azure/
    azure-managed-lustre/connect-clients). Without `zone`, azcluster puts the file system, the GPU scale
    sets, the login node and the NAT gateway all in zone 1 (components/placement.py), rather than regional
    scale sets beside a zone-1 file system; this says so, since zone 1 may not be where the GPU size has
    capacity.
    """
    placement = cluster_zone(spec)
    if lustre_enabled(spec) and placement.chosen:
        yield (
            at("zone"),
            f"no zone is set in {spec.location}, which has zones: azcluster places Managed Lustre, the GPU "
            f"nodes, the login node and the NAT gateway in zone {placement.zone}, since Lustre clients must "
            "share the file system's zone.",
            f'Set `zone` (e.g. "{placement.zone}") to the zone where your GPU size has capacity '
            "(`azcluster preflight` checks it).",
        )


@rule(
    "AZC036",
    "error",
    "lustre-import-needs-blob",
    "Lustre import_container is set but the blob account is off",
)
def lustre_import_needs_blob(spec: ClusterSpec) -> Iterator[Problem]:
    """Blob integration (HSM) imports from and archives to a container in the cluster's data account;
    without `storage.blob.enabled` there is no account to point Managed Lustre at.

    Source: https://learn.microsoft.com/azure/azure-managed-lustre/amlfs-prerequisites
    (blob integration prerequisites).
    """
    lustre = spec.storage.lustre
    if (
        lustre_enabled(spec)
        and lustre is not None
        and lustre.import_container
        and not spec.storage.blob.enabled
    ):
        yield (
            at("storage.lustre.import_container"),
            f"import_container {lustre.import_container!r} is set, but storage.blob.enabled is false.",
            "Set `storage.blob.enabled: true`, or remove import_container.",
        )


BLOB_CONTAINER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
HSM_LOGGING_CONTAINER = "lustre-logs"
"""The container components/storage.py creates for Managed Lustre's import/export logs."""


@rule(
    "AZC037",
    "error",
    "lustre-import-container-invalid",
    "Lustre import_container is not a valid container name, or is the logging container",
)
def lustre_import_container_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """azcluster creates the import container in the data account (next to the blob containers), so its
    name must be a valid container name; and Managed Lustre logs import/export jobs to a separate container
    in the same account, which azcluster names `lustre-logs`, so the import container cannot be that one.

    Source: https://learn.microsoft.com/azure/azure-managed-lustre/create-file-system-portal
    (blob integration: "The logs must be stored in a separate container from the data container").
    """
    lustre = spec.storage.lustre
    if not (lustre_enabled(spec) and lustre is not None and lustre.import_container):
        return
    name = lustre.import_container
    if not BLOB_CONTAINER_NAME.fullmatch(name):
        problem = "is not 3-63 lower-case letters, digits and single hyphens"
    elif name == HSM_LOGGING_CONTAINER:
        problem = f"is the container azcluster keeps for Managed Lustre's logs ({HSM_LOGGING_CONTAINER})"
    else:
        return
    yield (
        at("storage.lustre.import_container"),
        f"import_container {preview(name, 70)!r} {problem}.",
        "Use another container name, e.g. datasets.",
    )


@rule("AZC038", "error", "blob-container-name-invalid", "A blob container name is invalid or repeated")
def blob_container_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """Container names are 3-63 characters of lower-case letters, digits and hyphens, start with a letter or
    digit, and every hyphen sits between letters or digits; names are unique in the account.

    Sources: https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
    (Microsoft.Storage) and
    https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata
    """
    blob = spec.storage.blob
    if not blob.enabled:
        return
    seen: set[str] = set()
    for index, name in enumerate(blob.containers):
        path = at(f"storage.blob.containers[{index}]")
        if not BLOB_CONTAINER_NAME.fullmatch(name):
            suggestion = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "", name.lower())).strip("-") or "data"
            yield (
                path,
                f"blob container name {name!r} is not 3-63 lower-case letters, digits and single hyphens.",
                f"Rename it, e.g. {suggestion!r}.",
            )
        elif name in seen:
            yield (path, f"blob container {name!r} is listed twice.", "List each container once.")
        seen.add(name)


@rule(
    "AZC039",
    "error",
    "blob-mount-without-container",
    "Blob mount is on but there is no container to mount",
)
def blob_mount_without_container(spec: ClusterSpec) -> Iterator[Problem]:
    """`storage.blob.mount` mounts the first container on every node with BlobFuse2; with no container there
    is nothing to mount and node preparation fails.
    """
    blob = spec.storage.blob
    if blob.enabled and blob.mount and not blob.containers:
        yield (
            at("storage.blob.containers"),
            "storage.blob.mount is true but storage.blob.containers is empty: there is nothing to mount.",
            "List at least one container (the first is mounted), or set `storage.blob.mount: false`.",
        )


@rule(
    "AZC054",
    "error",
    "lustre-import-needs-provider-principal",
    "Lustre blob integration needs the HPC Cache Resource Provider's object id",
)
def lustre_import_needs_provider_principal(spec: ClusterSpec) -> Iterator[Problem]:
    """Managed Lustre reaches the import/archive container as Microsoft's "HPC Cache Resource Provider"
    service principal, which must hold Storage Account Contributor and Storage Blob Data Contributor on
    the account before the file system is created, or the deployment fails. Its object id differs per
    tenant and Pulumi's azure-native provider cannot look it up, so the spec must carry it.

    Source: https://learn.microsoft.com/azure/azure-managed-lustre/amlfs-prerequisites
    (blob integration prerequisites: access roles for the HPC Cache Resource Provider).
    """
    lustre = spec.storage.lustre
    if not (lustre_enabled(spec) and lustre is not None and lustre.import_container):
        return
    principal = lustre.provider_principal_id
    if principal is None:
        yield (
            at("storage.lustre.provider_principal_id"),
            f"import_container {lustre.import_container!r} needs the object id of the 'HPC Cache Resource "
            "Provider' service principal, which Managed Lustre uses to reach the container.",
            "Set `storage.lustre.provider_principal_id` to the output of `az ad sp show --id "
            "4392ab71-2ce2-4b0d-8770-b352745c73f5 --query id -o tsv`.",
        )
    elif not re.fullmatch(GUID, principal):
        yield (
            at("storage.lustre.provider_principal_id"),
            f"provider_principal_id {principal!r} is not an object id (a GUID).",
            "Use the `id` that `az ad sp show --id 4392ab71-2ce2-4b0d-8770-b352745c73f5` prints.",
        )
