"""Managed Lustre with blob integration, created minutes after its role assignments: one wait, one retry.

The file system's blob integration (HSM) needs the "HPC Cache Resource Provider" service principal to hold
Storage Account Contributor and Storage Blob Data Contributor on the data account. The stack creates
those role assignments and orders the file system after them, but Azure documents that role assignments
take up to five minutes to propagate and that creating the file system fails without them
(https://learn.microsoft.com/azure/azure-managed-lustre/amlfs-prerequisites, "Blob integration
prerequisites"; Azure RBAC: https://learn.microsoft.com/azure/role-based-access-control/troubleshooting).
So when that file system is the only thing an `up` failed to create, and Azure's error is not one waiting
cannot fix (quota, capacity, ...), `up` says why, waits `WAIT_SECONDS` and runs once more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .engine import AML_FILESYSTEM, UpdateFailed
from .remedies import OTHER, PERMISSION

if TYPE_CHECKING:
    from azcluster.components.spec import ClusterSpec

WAIT_SECONDS = 300
"""Azure's "up to five minutes" for a role assignment to take effect."""


def blob_integration_roles(spec: ClusterSpec) -> bool:
    """Whether the stack grants the HPC Cache Resource Provider its roles (so they may be brand new)."""
    lustre = spec.storage.lustre
    return bool(
        lustre is not None and lustre.enabled and lustre.import_container and lustre.provider_principal_id
    )


def propagation_failure(err: UpdateFailed, spec: ClusterSpec) -> str | None:
    """Why a retry after the roles propagate may succeed, or None when it would not help."""
    if not blob_integration_roles(spec) or not err.failures:
        return None
    if any(f.type != AML_FILESYSTEM for f in err.failures):
        return None
    if any(f.remedy is not None and f.remedy.kind not in (PERMISSION, OTHER) for f in err.failures):
        return None
    failure = err.failures[0]
    said = f"{failure.code}: {failure.message}" if failure.code else failure.message
    return (
        f"Managed Lustre {failure.name} could not be created right after its blob-integration role "
        f"assignments ({said}). Azure takes up to five minutes to make new role assignments effective, so "
        f"azcluster waits {WAIT_SECONDS // 60} minutes and tries once more"
    )
