"""Where in a region the cluster goes: one availability zone for everything, or none.

Decided once here and used by every component (network, GPU pools, login node, storage) and by `plan`,
so no resource sends a `zones` value another one contradicts:

- A region without availability zones (westus, northcentralus, ...; catalogue `regions.yaml`) gets no
  `zones` anywhere: Azure refuses zonal scale sets, public IPs and NAT gateways there. A `zone` in such a
  region is an error finding (AZC002); the components still never send it.
- A zonal region with `zone` set: that zone for every zonal resource.
- A zonal region without `zone` but with Managed Lustre: zone "1" for everything. Managed Lustre is
  always zonal in a zonal region (pulumi-azure-native `AmlFilesystem.zones`: "should only contain a
  single element"), and its clients must be in the file system's zone ("Clients must reside in the same
  Availability Zone in which the cluster resides", learn.microsoft.com/azure/azure-managed-lustre/
  connect-clients, client prerequisites); regional scale sets beside a zone-1 file system would cross
  zones on every read. `plan` shows the choice (summary `zone`, finding AZC035).
- Otherwise (zonal region, no `zone`, no Lustre): regional, no `zones`.

Not confirmed: whether Managed Lustre is offered at all in regions without zones, and what it takes for
`zones` there. Microsoft's create pages (create-file-system-portal.md) only say to pick a zone; the
components then leave `zones` out rather than send a zone Azure would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import catalog
from .spec import ClusterSpec

DEFAULT_ZONE = "1"
"""The zone azcluster picks when the spec names none but Managed Lustre needs one."""


@dataclass(frozen=True)
class ZonePlacement:
    """The cluster's zone (None: regional) and why."""

    zone: str | None
    chosen: bool
    """True when azcluster chose the zone (the spec named none)."""
    reason: str


def region_has_zones(location: str) -> bool | None:
    """Whether the catalogue says the region has availability zones; None for a region it does not know."""
    region = catalog.regions().get(location.replace(" ", "").lower())
    return None if region is None else region.zones


def cluster_zone(spec: ClusterSpec) -> ZonePlacement:
    """The one availability zone every zonal resource of the cluster uses (see the module docstring)."""
    zonal = region_has_zones(spec.location)
    if zonal is False:
        return ZonePlacement(None, False, f"{spec.location} has no availability zones")
    if spec.zone is not None:
        return ZonePlacement(spec.zone, False, "set in the spec")
    lustre = spec.storage.lustre
    if zonal and lustre is not None and lustre.enabled:
        return ZonePlacement(
            DEFAULT_ZONE, True, "chosen by azcluster: Lustre clients must be in the file system's zone"
        )
    return ZonePlacement(None, False, "regional (no zone set)")


def zones_for(location: str, zone: str | None) -> list[str] | None:
    """The `zones` input of a zonal resource: never in a region without zones, else [zone] or None."""
    if region_has_zones(location) is False or zone is None:
        return None
    return [zone]


def lustre_zones(location: str, zone: str | None) -> list[str] | None:
    """`zones` of a Managed Lustre file system: one zone in a zonal region (the given one, else
    DEFAULT_ZONE), none in a region without zones. A region the catalogue does not know is treated as
    zonal (AZC001 reports it), as most regions are."""
    if region_has_zones(location) is False:
        return None
    return [zone or DEFAULT_ZONE]
