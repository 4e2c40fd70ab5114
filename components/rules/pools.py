"""GPU pools (AZC003-AZC016): names, sizes, InfiniBand islands and placement groups, Spot and
capacity reservations."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import catalog
from ..spec import ClusterSpec, PoolSpec
from .common import GUID, RESOURCE_GROUP, at, did_you_mean, plural, pool_at, preview
from .registry import Problem, rule


@rule("AZC003", "warning", "no-pools", "The cluster has no GPU pools")
def no_pools(spec: ClusterSpec) -> Iterator[Problem]:
    """A cluster without pools deploys network, storage and a login node but no GPUs: usually a mistake."""
    if not spec.pools:
        yield (
            at("pools"),
            "the cluster has no GPU pools: it would have a network, storage and a login node, but no GPUs.",
            "Add a pool under `pools:` (name, size, nodes), e.g. Standard_ND96isr_H100_v5 x 2.",
        )


@rule("AZC004", "info", "empty-pool", "A pool has 0 nodes")
def empty_pool(spec: ClusterSpec) -> Iterator[Problem]:
    """A 0-node pool creates an empty scale set: fine for scaling up later, but worth saying."""
    for index, pool in enumerate(spec.pools):
        if pool.nodes == 0:
            yield (
                pool_at(index, "nodes"),
                f"pool {pool.name!r} has 0 nodes: its scale set is created empty.",
                "Set `nodes` to the count you need, or keep 0 to scale up later.",
            )


POOL_NAME_PATTERN = re.compile(r"^[a-z0-9]+$")


@rule("AZC005", "error", "pool-name-invalid", "A pool name is not lower-case letters and digits")
def pool_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """Pool names become part of scale set names, host names and tags.

    Linux host names allow letters, digits and hyphens, and Azure scale set names refuse spaces and most
    punctuation (Microsoft.Compute in
    https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules). azcluster
    keeps pool names to lower-case letters and digits so every derived name is valid and the hyphens
    between cluster, pool and island stay unambiguous.
    """
    for index, pool in enumerate(spec.pools):
        if not POOL_NAME_PATTERN.fullmatch(pool.name):
            suggestion = re.sub(r"[^a-z0-9]", "", pool.name.lower()) or "gpu"
            yield (
                pool_at(index, "name"),
                f"pool name {pool.name!r} is not lower-case letters and digits only.",
                f"Rename it, e.g. {suggestion!r}.",
            )


@rule("AZC006", "error", "duplicate-pool-name", "Two pools have the same name")
def duplicate_pool_name(spec: ClusterSpec) -> Iterator[Problem]:
    """Two pools with one name would derive the same scale set names; Azure names are case-insensitive."""
    seen: dict[str, int] = {}
    for index, pool in enumerate(spec.pools):
        key = pool.name.lower()
        if key in seen:
            yield (
                pool_at(index, "name"),
                f"pool name {pool.name!r} is already used by pools[{seen[key]}].",
                "Give every pool its own name.",
            )
        else:
            seen[key] = index


@rule("AZC007", "error", "unknown-vm-size", "A pool's VM size is not a GPU size azcluster knows")
def unknown_vm_size(spec: ClusterSpec) -> Iterator[Problem]:
    """azcluster prepares nodes per size (drivers, NCCL topology, health checks, quota family, island
    rules); a size outside the catalogue cannot be prepared, and a misspelt one fails the deployment.
    """
    sizes = catalog.gpu_sizes()
    for index, pool in enumerate(spec.pools):
        if catalog.find_size(pool.size) is None:
            yield (
                pool_at(index, "size"),
                f"pool {pool.name!r}: VM size {pool.size!r} is not a GPU size azcluster knows.",
                f"{did_you_mean(pool.size, sizes)}`azcluster skus` lists the known sizes.",
            )


PLACEMENT_GROUP_DEFAULT_MAX = 100
PLACEMENT_GROUP_RAISED_MAX = 300


def _ib_size(pool: PoolSpec) -> catalog.GpuSize | None:
    size = catalog.find_size(pool.size)
    return size if size is not None and size.has_infiniband else None


@rule(
    "AZC008",
    "error",
    "island-above-placement-group-maximum",
    "An InfiniBand island would exceed 300 VMs, the most one placement group can hold",
)
def island_above_placement_group_maximum(spec: ClusterSpec) -> Iterator[Problem]:
    """An IB island is one scale set with a single placement group; even with a support request a placement
    group holds at most 300 VMs, so the scale set cannot reach its capacity.

    Sources (100 VMs per single placement group):
    https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-placement-groups
    and docs/azure-facts.md ("InfiniBand islands": support raises it to 300).
    """
    for index, pool in enumerate(spec.pools):
        largest = max(pool.island_sizes())
        if _ib_size(pool) is not None and largest > PLACEMENT_GROUP_RAISED_MAX:
            yield (
                pool_at(index, "island_max_nodes"),
                f"pool {pool.name!r}: island_max_nodes {pool.island_max_nodes} makes an InfiniBand island "
                f"of {largest} VMs; a placement group holds at most {PLACEMENT_GROUP_RAISED_MAX}.",
                f"Set island_max_nodes to {PLACEMENT_GROUP_RAISED_MAX} or less; the pool is then split into "
                "several islands (scale sets).",
            )


@rule(
    "AZC009",
    "warning",
    "island-needs-support-request",
    "An InfiniBand island exceeds 100 VMs, which needs a support request",
)
def island_needs_support_request(spec: ClusterSpec) -> Iterator[Problem]:
    """A single placement group holds 100 VMs by default; 101-300 needs Azure support to raise the limit
    for the subscription, or the scale set stops at 100 with an allocation error.

    Source:
    https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-placement-groups
    """
    for index, pool in enumerate(spec.pools):
        largest = max(pool.island_sizes())
        if _ib_size(pool) is not None and PLACEMENT_GROUP_DEFAULT_MAX < largest <= PLACEMENT_GROUP_RAISED_MAX:
            yield (
                pool_at(index, "island_max_nodes"),
                f"pool {pool.name!r}: InfiniBand islands of up to {largest} VMs exceed Azure's default of "
                f"{PLACEMENT_GROUP_DEFAULT_MAX} VMs per placement group.",
                "Ask Azure support to raise the placement group limit for this subscription and region "
                f"before `up`, or set island_max_nodes to {PLACEMENT_GROUP_DEFAULT_MAX}.",
            )


@rule("AZC010", "info", "pool-split-into-islands", "A pool is split into several InfiniBand islands")
def pool_split_into_islands(spec: ClusterSpec) -> Iterator[Problem]:
    """VMs share an InfiniBand fabric only inside one scale set; a pool larger than its island limit becomes
    several scale sets, and a job spanning two of them falls back to Ethernet. Schedulers must place jobs
    per island (docs/azure-facts.md, "InfiniBand islands").
    """
    for index, pool in enumerate(spec.pools):
        islands = pool.island_sizes()
        if _ib_size(pool) is not None and len(islands) > 1:
            shown = ", ".join(str(n) for n in islands[:6]) + (", ..." if len(islands) > 6 else "")
            yield (
                pool_at(index, "nodes"),
                f"pool {pool.name!r} ({pool.nodes} nodes) will be split into {len(islands)} scale sets of "
                f"at most {pool.island_max_nodes} nodes ({shown}), each its own InfiniBand island.",
                "Place each multi-node job inside one island (e.g. one Slurm partition or topology block "
                "per scale set); raise island_max_nodes (up to 300, with a support request) for larger "
                "islands.",
            )


@rule(
    "AZC011",
    "info",
    "multi-node-pool-without-infiniband",
    "A multi-node pool uses a size without InfiniBand",
)
def multi_node_pool_without_infiniband(spec: ClusterSpec) -> Iterator[Problem]:
    """Sizes without InfiniBand (NC series) talk over Ethernet only: multi-node training on them is far
    slower than on ND sizes, and island settings do nothing for them.
    """
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is not None and not size.has_infiniband and pool.nodes > 1:
            yield (
                pool_at(index, "size"),
                f"pool {pool.name!r}: {size.name} has no InfiniBand, so its {pool.nodes} nodes talk over "
                "Ethernet only (island_max_nodes has no effect).",
                "Fine for independent jobs; for multi-node training use an ND size with InfiniBand, e.g. "
                "Standard_ND96isr_H100_v5.",
            )


@rule("AZC012", "info", "partial-nvl72-rack", "A GB200/GB300 pool's islands split NVL72 racks")
def partial_nvl72_rack(spec: ClusterSpec) -> Iterator[Problem]:
    """A GB200 or GB300 v6 VM is a 4-GPU slice of an NVL72 rack of 18 VMs; the NVLink domain spans the
    rack. Pools or islands that are not whole racks leave NVLink domains partly filled or shared with other
    scale sets.
    A pool that is not whole racks at all is AZC130's error; whole racks are spread over the islands whole
    (`PoolSpec.island_sizes`), so this one says when a partial rack was allowed, or an island is smaller
    than a rack (https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/nd-gb200-v6-series;
    catalogue `rack_vms`).
    """
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        rack = size.rack_vms if size is not None else None
        if size is None or not rack or pool.nodes == 0:
            continue
        if pool.nodes % rack and not pool.allow_partial_racks:
            continue  # not whole racks at all: AZC130 (rack.py) says so, as an error
        islands = pool.island_sizes() if size.has_infiniband else [pool.nodes]
        uneven = [n for n in islands if n % rack]
        if uneven:
            where = f" (islands of {', '.join(str(n) for n in islands[:6])})" if len(islands) > 1 else ""
            yield (
                pool_at(index, "nodes"),
                f"pool {pool.name!r}: {pool.nodes} {size.name} VMs{where} do not fill whole NVL72 racks "
                f"of {rack} VMs: {plural(len(uneven), 'island')} would end in a partial rack.",
                _whole_rack_islands_hint(pool.nodes, len(islands), pool.island_max_nodes, rack),
            )


def _whole_rack_islands_hint(nodes: int, islands: int, island_max: int, rack: int) -> str:
    """What makes every island whole racks: `island_sizes` spreads whole racks among the islands when the
    pool is whole racks and an island holds at least one (components/spec.py)."""
    if island_max < rack:
        return (
            f"Set island_max_nodes to {rack} or more (a multiple of {rack}) so an island holds whole racks."
        )
    down, up = nodes // rack * rack, -(-nodes // rack) * rack
    return f"Use whole racks: {' or '.join(str(n) for n in (down, up) if n)} nodes."


@rule("AZC013", "error", "spot-with-capacity-reservation", "A Spot pool names a capacity reservation group")
def spot_with_capacity_reservation(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure does not support Spot VMs with capacity reservations; the deployment is refused.

    Source: https://learn.microsoft.com/azure/virtual-machines/capacity-reservation-overview
    (Limitations and restrictions: "Spot VMs and Azure Dedicated Host Nodes aren't supported").
    """
    for index, pool in enumerate(spec.pools):
        if pool.spot and pool.uses_reservation:
            group = pool.reservation_group_id
            named = f"group {preview(group, 60)!r}" if group else "group (capacity.reservation.create)"
            yield (
                pool_at(index, pool.reservation_path()),
                f"pool {pool.name!r} is Spot and also allocates from capacity reservation {named}; "
                "Azure does not allow both.",
                f"Remove `spot: true` to use the reservation, or remove {pool.reservation_path()}.",
            )


@rule("AZC014", "warning", "spot-on-infiniband-pool", "An InfiniBand pool uses Spot VMs")
def spot_on_infiniband_pool(spec: ClusterSpec) -> Iterator[Problem]:
    """Spot VMs can be evicted at any time; in a tightly coupled IB job one eviction kills the whole job,
    and the evicted node is deleted from the island.
    """
    for index, pool in enumerate(spec.pools):
        if pool.spot and _ib_size(pool) is not None and pool.nodes > 1:
            yield (
                pool_at(index, "spot"),
                f"pool {pool.name!r} runs {pool.nodes} InfiniBand nodes as Spot: one eviction breaks every "
                "multi-node job on the island.",
                "Use Spot only with frequent checkpoints and automatic requeue, or set `spot: false`.",
            )


@rule(
    "AZC015",
    "error",
    "capacity-reservation-on-infiniband-pool",
    "An InfiniBand pool names a capacity reservation group",
)
def capacity_reservation_on_infiniband_pool(spec: ClusterSpec) -> Iterator[Problem]:
    """azcluster builds each IB island as a Uniform scale set with `singlePlacementGroup: true` (the fabric
    needs it: components/gpu_pool.py), but a Uniform scale set can use a capacity reservation only with
    `singlePlacementGroup: false`, so Azure refuses the association.

    Source:
    https://learn.microsoft.com/azure/virtual-machines/capacity-reservation-associate-virtual-machine-scale-set
    ("Limitations of scale sets in Uniform Orchestration").
    """
    for index, pool in enumerate(spec.pools):
        if pool.uses_reservation and _ib_size(pool) is not None:
            yield (
                pool_at(index, pool.reservation_path()),
                f"pool {pool.name!r}: {pool.size} islands are Uniform scale sets with a single placement "
                "group, which Azure cannot associate with a capacity reservation group.",
                f"Remove {pool.reservation_path()} from InfiniBand pools (ask your Azure account team "
                "about capacity for ND sizes instead); reservations work for pools without InfiniBand.",
            )


CAPACITY_RESERVATION_GROUP_ID = re.compile(
    rf"^/subscriptions/{GUID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft\.Compute/"
    r"capacityReservationGroups/[^/\s]{1,80}$",
    re.IGNORECASE,
)


@rule(
    "AZC016",
    "error",
    "capacity-reservation-id-malformed",
    "A capacity reservation group id is not a well-formed resource id",
)
def capacity_reservation_id_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The scale set references the group by resource id; a name or a truncated id fails the deployment
    with a LinkedInvalidPropertyId error. Either form counts: `capacity_reservation_group_id` and
    `capacity.reservation.group_id`.
    """
    for index, pool in enumerate(spec.pools):
        value = pool.reservation_group_id
        if value is not None and not CAPACITY_RESERVATION_GROUP_ID.fullmatch(value.strip()):
            yield (
                pool_at(index, pool.reservation_path()),
                f"pool {pool.name!r}: {preview(value, 60)!r} is not a capacity reservation group "
                "resource id.",
                "Use the full id: /subscriptions/<subscription-guid>/resourceGroups/<group>/providers/"
                "Microsoft.Compute/capacityReservationGroups/<name> (`az capacity reservation group "
                "show`).",
            )
