"""Capacity policy (AZC100-AZC109): zones to try, stand-in sizes, the smallest island worth keeping, and
capacity reservations where Azure offers them (components/capacity.py resolves the policy)."""

from __future__ import annotations

from collections.abc import Iterator

from .. import catalog
from ..spec import ClusterSpec, PoolSpec
from .common import did_you_mean, lustre_enabled, plural, pool_at
from .registry import Problem, rule

RESERVATION_UNSUPPORTED_SERIES = (("ND", "ND-series"), ("NC H100 v5", "NCads H100 v5-series"))
"""Series prefixes (catalogue `series`) Azure's on-demand capacity reservations do not support, with the
name Microsoft's page gives them: MicrosoftDocs/azure-compute-docs articles/virtual-machines/
capacity-reservation-overview.md (2026-02-17), "Limitations and restrictions": "Support for other VM series
isn't currently available: ... GPU-accelerated compute: ND-series, NCads H100 v5-series, Hb-series,
Hc-series". NC A100 v4 is on the supported list."""

RESERVATION_SOURCE = "learn.microsoft.com/azure/virtual-machines/capacity-reservation-overview"


def _capacity_path(index: int, field: str) -> str:
    return pool_at(index, f"capacity.{field}")


def _no_such_island(path: str, pool: PoolSpec, count: int, island: str, entry: str) -> Problem:
    """An `island_*` entry (AZC108, AZC160) for an island the pool does not have: written for a larger
    pool; `entry` says what it asked for that island."""
    return (
        path,
        f"pool {pool.name!r} has {plural(count, 'island')}; there is no island {island} {entry}.",
        "Remove the entry (it was written for a larger pool).",
    )


def _stand_ins(pool: PoolSpec) -> Iterator[tuple[int, str, catalog.GpuSize | None]]:
    for position, name in enumerate(pool.capacity.stand_in_sizes):
        yield position, name, catalog.find_size(name)


@rule("AZC100", "error", "stand-in-size-unknown", "A stand-in size is not a GPU size azcluster knows")
def stand_in_size_unknown(spec: ClusterSpec) -> Iterator[Problem]:
    """A stand-in is built like the pool's own size (drivers, NCCL topology, health checks, quota family,
    price), so it must be in the catalogue; a misspelt one would fail exactly when capacity is short.
    """
    sizes = catalog.gpu_sizes()
    for index, pool in enumerate(spec.pools):
        for position, name, size in _stand_ins(pool):
            if size is None:
                yield (
                    _capacity_path(index, f"stand_in_sizes[{position}]"),
                    f"pool {pool.name!r}: stand-in size {name!r} is not a GPU size azcluster knows.",
                    f"{did_you_mean(name, sizes)}`azcluster skus` lists the known sizes.",
                )


@rule(
    "AZC101",
    "error",
    "stand-in-size-does-not-fit-image",
    "A stand-in size has another GPU vendor or CPU architecture than the pool's image",
)
def stand_in_size_does_not_fit_image(spec: ClusterSpec) -> Iterator[Problem]:
    """Every island of a pool boots the pool's one image. An image built for NVIDIA GPUs (CUDA) brings no
    AMD GPU up (ROCm) and the other way round, and an x64 image does not boot on an Arm64 size such as
    GB200 v6 (AZC018, AZC055 check the pool's own size; docs/azure-facts.md "Images and
    node preparation"). A stand-in must share the pool's GPU vendor and CPU architecture.
    """
    for index, pool in enumerate(spec.pools):
        own = catalog.find_size(pool.size)
        if own is None:
            continue
        image = pool.image or own.default_image
        for position, _name, size in _stand_ins(pool):
            if size is None:
                continue
            differences = []
            if size.gpu_vendor != own.gpu_vendor:
                differences.append(f"{size.gpu_vendor.upper()} GPUs, not {own.gpu_vendor.upper()}")
            if size.architecture != own.architecture:
                differences.append(f"an {size.architecture} CPU, not {own.architecture}")
            if differences:
                yield (
                    _capacity_path(index, f"stand_in_sizes[{position}]"),
                    f"pool {pool.name!r}: stand-in {size.name} has {' and '.join(differences)}; the pool's "
                    f"image {image!r} would not bring it up.",
                    f"Stand in a size with {own.gpu_vendor.upper()} GPUs and an {own.architecture} CPU "
                    f"(like {own.name}), or make a separate pool for {size.name} with its own image.",
                )


@rule(
    "AZC102",
    "error",
    "stand-in-size-without-infiniband",
    "A stand-in for an InfiniBand size has no InfiniBand",
)
def stand_in_size_without_infiniband(spec: ClusterSpec) -> Iterator[Problem]:
    """An InfiniBand pool is built as islands of one placement group each, and its jobs expect the fabric;
    a size without InfiniBand (NC) would make islands whose nodes talk over Ethernet only, and a job
    placed on them would run many times slower without saying why (components/gpu_pool.py).
    """
    for index, pool in enumerate(spec.pools):
        own = catalog.find_size(pool.size)
        if own is None or not own.has_infiniband:
            continue
        for position, _name, size in _stand_ins(pool):
            if size is not None and not size.has_infiniband:
                yield (
                    _capacity_path(index, f"stand_in_sizes[{position}]"),
                    f"pool {pool.name!r}: stand-in {size.name} has no InfiniBand, but the pool's "
                    f"{own.name} islands are InfiniBand fabrics.",
                    "Stand in an ND size with InfiniBand (e.g. Standard_ND96isr_H200_v5 for H100), or "
                    "make a separate pool for sizes without it.",
                )


@rule(
    "AZC103",
    "error",
    "capacity-zones-outside-region",
    "A pool's capacity policy lists zones in a region that has none",
)
def capacity_zones_outside_region(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses zonal scale sets in a region without availability zones (placement.py; which regions
    have zones: https://learn.microsoft.com/azure/reliability/regions-list, catalogue `regions.yaml`), so
    a zone fallback there fails every try.
    """
    region = catalog.regions().get(spec.location)
    if region is None or region.zones:
        return
    for index, pool in enumerate(spec.pools):
        if pool.capacity.zones:
            yield (
                _capacity_path(index, "zones"),
                f"pool {pool.name!r} lists zones {', '.join(pool.capacity.zones)} to try, but region "
                f"{spec.location!r} has no availability zones.",
                "Remove `capacity.zones`, or move the cluster to a region with zones (e.g. eastus, "
                "westus3, swedencentral).",
            )


def _reservation_unsupported(size: catalog.GpuSize) -> str | None:
    """Microsoft's name of the size's series when capacity reservations do not support it, else None."""
    for prefix, name in RESERVATION_UNSUPPORTED_SERIES:
        if size.series.startswith(prefix):
            return name
    return None


@rule(
    "AZC104",
    "error",
    "capacity-reservation-size-unsupported",
    "A pool with a capacity reservation group uses a size Azure does not reserve",
)
def capacity_reservation_size_unsupported(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure's on-demand capacity reservations do not support ND-series nor NCads H100 v5: a reservation
    for them cannot be created, and a scale set of that size referencing a group is refused. Stand-in
    sizes count too: an island that falls back to one could not use the pool's reservation. Both forms
    count: an existing group (`capacity_reservation_group_id`, `capacity.reservation.group_id`) and one
    azcluster would create (`capacity.reservation.create`).

    Source: https://learn.microsoft.com/azure/virtual-machines/capacity-reservation-overview ("Limitations
    and restrictions": support for ND-series and NCads H100 v5-series "isn't currently available"; NC A100
    v4 is supported). For ND sizes, azcluster's own answer to scarce capacity is the pool's capacity
    policy: zones, stand-in sizes and best-effort islands.
    """
    for index, pool in enumerate(spec.pools):
        if not pool.uses_reservation:
            continue
        where = pool.reservation_path()
        size = catalog.find_size(pool.size)
        series = _reservation_unsupported(size) if size is not None else None
        if size is not None and series:
            yield (
                pool_at(index, where),
                f"pool {pool.name!r}: {size.name} is {series}, which Azure's capacity reservations do "
                f"not support ({RESERVATION_SOURCE}).",
                f"Remove {where} and let the pool's `capacity:` policy get what it "
                "can (zones to try, stand-in sizes, min_nodes); reservations exist for NC A100 v4.",
            )
        for position, _name, stand_in in _stand_ins(pool):
            series = _reservation_unsupported(stand_in) if stand_in is not None else None
            if stand_in is not None and series:
                yield (
                    _capacity_path(index, f"stand_in_sizes[{position}]"),
                    f"pool {pool.name!r} allocates from a capacity reservation group, but stand-in "
                    f"{stand_in.name} is {series}, which Azure's capacity reservations do not support "
                    f"({RESERVATION_SOURCE}).",
                    f"Remove the stand-in, or remove {where} from the pool.",
                )


@rule(
    "AZC105",
    "info",
    "stand-in-size-priced-and-quota",
    "A stand-in size has its own price and quota family",
)
def stand_in_size_priced_and_quota(spec: ClusterSpec) -> Iterator[Problem]:
    """A stand-in is billed at its own rate and counted against its own vCPU quota family, which must have
    room for a whole island before it is tried (`azcluster preflight` checks quota per family). Saying
    both up front avoids a surprise on the bill or a quota refusal at the worst moment.
    """
    for index, pool in enumerate(spec.pools):
        own = catalog.find_size(pool.size)
        if own is None:
            continue
        largest = max(pool.island_sizes())
        for position, _name, size in _stand_ins(pool):
            if size is None or size.name == own.name:
                continue
            delta = size.price.usd_per_hour - own.price.usd_per_hour
            cost = (
                f"${abs(delta):,.2f}/hour per node {'more' if delta > 0 else 'less'} than {own.name}"
                if delta
                else f"the same price as {own.name}"
            )
            family = (
                f"its own quota family {size.quota_family!r}"
                if catalog.normalise_family(size.quota_family) != catalog.normalise_family(own.quota_family)
                else f"the same quota family {size.quota_family!r}"
            )
            yield (
                _capacity_path(index, f"stand_in_sizes[{position}]"),
                f"pool {pool.name!r}: stand-in {size.name} costs ${size.price.usd_per_hour:,.2f}/hour per "
                f"node ({cost}) and uses {family}: {largest * size.vcpus:,} vCPUs for an island of "
                f"{plural(largest, 'node')}.",
                "`azcluster preflight` shows the free quota per family; request an increase for the "
                "stand-in's family before you need it.",
            )


@rule(
    "AZC106",
    "warning",
    "capacity-min-nodes-above-islands",
    "min_nodes is at least every island's size: islands are still whole or nothing",
)
def capacity_min_nodes_above_islands(spec: ClusterSpec) -> Iterator[Problem]:
    """`min_nodes` is per island (one scale set). Set to an island's size or more it changes nothing:
    every island must still come up whole, which is usually not what was meant by setting it.
    """
    for index, pool in enumerate(spec.pools):
        wanted = pool.capacity.min_nodes
        if wanted is None or pool.nodes == 0:
            continue
        islands = pool.island_sizes()
        size = catalog.find_size(pool.size)
        if size is not None and not size.has_infiniband:
            islands = [pool.nodes]
        if wanted >= max(islands):
            yield (
                _capacity_path(index, "min_nodes"),
                f"pool {pool.name!r}: min_nodes {wanted} is not below its islands' size "
                f"({', '.join(map(str, sorted(set(islands), reverse=True)))} nodes): islands must still "
                "come up whole.",
                f"min_nodes counts nodes per island; use a number below {max(islands)} (or min_fraction, "
                "e.g. 0.75) to keep islands Azure places in part.",
            )


@rule(
    "AZC107",
    "warning",
    "capacity-zone-away-from-lustre",
    "A pool may place islands outside Managed Lustre's zone, where they cannot mount it",
)
def capacity_zone_away_from_lustre(spec: ClusterSpec) -> Iterator[Problem]:
    """Managed Lustre is zonal and its clients must be in the file system's zone ("Clients must reside in
    the same Availability Zone in which the cluster resides": learn.microsoft.com/azure/azure-managed-lustre/
    connect-clients, client prerequisites; components/placement.py). An island moved to another zone
    (`capacity.zones`) runs, but without Lustre; storage never moves for a compute shortage.
    """
    from ..placement import cluster_zone

    if not lustre_enabled(spec):
        return
    home = cluster_zone(spec).zone
    if home is None:
        return
    for index, pool in enumerate(spec.pools):
        away = [zone for zone in pool.capacity.zones if zone != home]
        if away:
            yield (
                _capacity_path(index, "zones"),
                f"pool {pool.name!r} may place islands in zone {', '.join(away)}, but Managed Lustre is in "
                f"zone {home} and its clients must be in that zone: islands there would run without Lustre.",
                "Keep Lustre-bound pools in the cluster's zone (try waiting or a stand-in size instead), or "
                "accept it for pools that read from blob storage or the shared home only.",
            )


@rule(
    "AZC108",
    "error",
    "island-zone-not-allowed",
    "An island is placed in a zone its pool's policy does not list, or the island does not exist",
)
def island_zone_not_allowed(spec: ClusterSpec) -> Iterator[Problem]:
    """`capacity.island_zones` records where azcluster moved an island; it must name an island the pool
    has and a zone the pool allows (its `zones`, or the cluster's zone), or the next `up` would build the
    island somewhere the user never agreed to (components/capacity.py island_zone).
    """
    from ..capacity import island_counts
    from ..placement import cluster_zone

    home = cluster_zone(spec).zone
    for index, pool in enumerate(spec.pools):
        allowed = set(pool.capacity.zones) | ({home} if home else set())
        count = len(island_counts(pool))
        for island, zone in pool.capacity.island_zones.items():
            path = _capacity_path(index, f"island_zones.{island}")
            if int(island) >= count:
                yield _no_such_island(path, pool, count, island, "to place")
            elif zone not in allowed:
                yield (
                    path,
                    f"pool {pool.name!r} island {island} is placed in zone {zone}, which the pool's "
                    f"`capacity.zones` does not list ({', '.join(sorted(allowed)) or 'none'}).",
                    f"Add zone {zone} to `capacity.zones`, or remove the entry to build the island in the "
                    "first zone again.",
                )


def pool_zones(spec: ClusterSpec, pool: PoolSpec) -> list[str]:
    """The zones a pool's islands may be built in: its `capacity.zones`, else the cluster's zone."""
    from ..placement import cluster_zone

    home = cluster_zone(spec).zone
    return list(pool.capacity.zones) or ([home] if home else [])


@rule(
    "AZC109",
    "error",
    "capacity-reservation-zone-mismatch",
    "A pool's capacity reservation is in a zone its scale set is not built in",
)
def capacity_reservation_zone_mismatch(spec: ClusterSpec) -> Iterator[Problem]:
    """A zonal VM allocates from a reservation in its own zone only, and a regional VM from a regional
    reservation only: Azure refuses the association otherwise, or (for a zone the pool never uses) bills a
    reservation nothing runs in. `capacity.reservation.zones` must include the zone the pool's scale set is
    built in and list no zone the pool's policy does not allow; a regional pool takes no zones.

    Source: https://learn.microsoft.com/azure/virtual-machines/capacity-reservation-overview (a zonal
    reservation serves VMs deployed in its zone; a regional one serves regional VMs) and the "associate a
    VM scale set" page (capacity-reservation-associate-virtual-machine-scale-set).
    """
    from ..capacity import island_zone
    from ..placement import cluster_zone

    home = cluster_zone(spec).zone
    for index, pool in enumerate(spec.pools):
        reservation = pool.capacity.reservation
        if reservation is None or not reservation.zones:
            continue
        path = _capacity_path(index, "reservation.zones")
        allowed = pool_zones(spec, pool)
        built = island_zone(pool, 0, home)
        outside = [zone for zone in reservation.zones if zone not in allowed]
        if built is None:
            yield (
                path,
                f"pool {pool.name!r} is regional (no zone), but its reservation is in zone "
                f"{', '.join(reservation.zones)}: a regional scale set cannot use a zonal reservation.",
                "Remove `capacity.reservation.zones` (a regional reservation), or give the cluster a "
                "`zone:`.",
            )
        elif outside or built not in reservation.zones:
            yield (
                path,
                f"pool {pool.name!r}'s reservation is in zone {', '.join(reservation.zones)}, but its scale "
                f"set is built in zone {built} (allowed: {', '.join(allowed)}): the VMs could not use it.",
                f"Reserve in zone {built} (and only zones the pool lists in `capacity.zones`), or move the "
                "pool to the reservation's zone.",
            )


# --- AZC160-169: the capacity block's second ten (AZC100-109 is full) ----------------------------------


@rule(
    "AZC160",
    "error",
    "island-stand-in-not-allowed",
    "An island is built on a size its pool's policy does not allow, or the island does not exist",
)
def island_stand_in_not_allowed(spec: ClusterSpec) -> Iterator[Problem]:
    """`capacity.island_stand_ins` records which islands azcluster built on a stand-in size; the size must
    be one the pool's `stand_in_sizes` lists (with its price, quota family and image checked by AZC100-105),
    and the island must exist, or the next `up` would build an island of a size the user never agreed to
    (components/capacity.py island_size_name).
    """
    from ..capacity import island_counts

    for index, pool in enumerate(spec.pools):
        allowed = {name.lower(): name for name in pool.capacity.stand_in_sizes}
        count = len(island_counts(pool))
        for island, size in pool.capacity.island_stand_ins.items():
            path = _capacity_path(index, f"island_stand_ins.{island}")
            if int(island) >= count:
                yield _no_such_island(path, pool, count, island, f"to build as {size}")
            elif size.lower() not in allowed:
                yield (
                    path,
                    f"pool {pool.name!r} island {island} is built as {size}, which the pool's "
                    f"`capacity.stand_in_sizes` does not list "
                    f"({', '.join(pool.capacity.stand_in_sizes) or 'none'}).",
                    f"Add {size} to `capacity.stand_in_sizes`, or remove the entry to build the island as "
                    f"{pool.size} again (its nodes are recreated).",
                )


@rule(
    "AZC161",
    "warning",
    "capacity-reservation-group-id-deprecated",
    "A pool names its capacity reservation group with the deprecated pool-level key",
)
def capacity_reservation_group_id_deprecated(spec: ClusterSpec) -> Iterator[Problem]:
    """`pools[i].capacity_reservation_group_id` and `pools[i].capacity.reservation.group_id` said the same
    thing; the reservation now lives with the rest of the pool's capacity policy (`capacity.reservation`:
    an existing group by `group_id`, or `create: true`, with its `zones`). The old key still works (the
    spec reads it as `capacity.reservation.group_id`), so existing stack files deploy unchanged; this
    finding names the replacement until the file is edited.
    """
    for index, pool in enumerate(spec.pools):
        if pool.capacity_reservation_group_id:
            yield (
                pool_at(index, "capacity_reservation_group_id"),
                f"pool {pool.name!r}: `capacity_reservation_group_id` is deprecated; it is read as "
                "`capacity.reservation.group_id`.",
                "Move the id under the pool's capacity policy: `capacity: {reservation: {group_id: "
                "<the same id>}}` (add `zones:` if the group's reservations are zonal).",
            )
