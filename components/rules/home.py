"""The shared home (AZC085-AZC086; Azure Files premium NFS, components/home.py)."""

from __future__ import annotations

from collections.abc import Iterator

from .. import catalog
from ..spec import ClusterSpec
from .common import at
from .registry import Problem, rule


@rule(
    "AZC085",
    "error",
    "home-zrs-needs-zones",
    "A zone-redundant shared home in a region without availability zones",
)
def home_zrs_needs_zones(spec: ClusterSpec) -> Iterator[Problem]:
    """Premium_ZRS keeps copies in three availability zones, so Azure offers it only in regions that have
    zones; elsewhere the storage account is refused at creation.

    Source: https://learn.microsoft.com/azure/storage/common/storage-redundancy (zone-redundant storage)
    and https://learn.microsoft.com/azure/storage/files/files-redundancy (premium shares: LRS or ZRS).
    """
    home = spec.storage.home
    region = catalog.regions().get(spec.location)
    if home.enabled and home.redundancy == "ZRS" and region is not None and not region.zones:
        yield (
            at("storage.home.redundancy"),
            f"redundancy 'ZRS' needs availability zones, and region {spec.location!r} has none.",
            "Use `redundancy: LRS`, or a region with zones (e.g. eastus, westus3, swedencentral).",
        )


# Paths the node image or azcluster's bootstrap own: an NFS mount over them hides what the node needs.
_SYSTEM_PATHS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/opt", "/proc", "/root", "/run", "/sbin",
                 "/sys", "/tmp", "/usr", "/var", "/mnt/resource_nvme", "/lustre", "/mnt/blob")  # fmt: skip
_SYSTEM_EXACT = ("/", "/mnt")  # their subdirectories are fine (/mnt/shared)


@rule(
    "AZC086",
    "error",
    "home-mount-over-system-path",
    "The shared home would be mounted over a system or azcluster directory",
)
def home_mount_over_system_path(spec: ClusterSpec) -> Iterator[Problem]:
    """The shared home is mounted over whatever the mount point holds on every node: over /usr, /etc or
    /var the node stops working; over /opt it hides the HPC image's tools (nccl-tests, the topology
    files NCCL reads); over /mnt/resource_nvme, /lustre or /mnt/blob it fights azcluster's own mounts.

    Source: the Filesystem Hierarchy Standard (https://refspecs.linuxfoundation.org/fhs.shtml) and the
    mount points components/bootstrap uses.
    """
    home = spec.storage.home
    mount = "/" + home.mount.strip("/")
    if not home.enabled:
        return
    taken = mount if mount in _SYSTEM_EXACT else None
    taken = taken or next((p for p in _SYSTEM_PATHS if mount == p or mount.startswith(p + "/")), None)
    if taken is not None:
        yield (
            at("storage.home.mount"),
            f"mount {home.mount!r} is {'' if taken == mount else 'under '}{taken!r}: the share would hide "
            "what the node keeps there.",
            "Use /home (the default) or a directory of its own such as /shared/home.",
        )
