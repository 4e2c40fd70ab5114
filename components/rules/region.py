"""Region and zone (AZC001-AZC002): the region must exist, and zones need a region that has them."""

from __future__ import annotations

from collections.abc import Iterator

from .. import catalog
from ..spec import ClusterSpec
from .common import LOCATION_PATH, at, did_you_mean
from .registry import Problem, rule


@rule("AZC001", "error", "unknown-region", "The region is not an Azure region azcluster knows")
def unknown_region(spec: ClusterSpec) -> Iterator[Problem]:
    """A misspelt region fails the whole deployment at the first resource, after Pulumi has started.

    The catalogue lists Azure's public-cloud regions by programmatic name
    (https://learn.microsoft.com/azure/reliability/regions-list); 'East US' and 'eastus' both work because
    the spec normalises spaces and case.
    """
    regions = catalog.regions()
    if spec.location not in regions:
        yield (
            LOCATION_PATH,
            f"region {spec.location!r} is not an Azure region azcluster knows.",
            f"{did_you_mean(spec.location, regions)}Use a programmatic region name as "
            "`az account list-locations -o table` prints it, e.g. eastus.",
        )


@rule(
    "AZC002",
    "error",
    "zone-in-region-without-zones",
    "An availability zone is set in a region that has none",
)
def zone_in_region_without_zones(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses zonal resources (scale sets, Managed Lustre) in a region without availability zones.

    Which regions have zones: https://learn.microsoft.com/azure/reliability/regions-list (catalogue
    `regions.yaml`).
    """
    region = catalog.regions().get(spec.location)
    if spec.zone is not None and region is not None and not region.zones:
        yield (
            at("zone"),
            f"zone {spec.zone!r} is set, but region {spec.location!r} has no availability zones.",
            "Remove `zone`, or pick a region with zones (e.g. eastus, westus3, swedencentral).",
        )
