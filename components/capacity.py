"""A pool's capacity policy, resolved: where each island may go, as what size, and how small it may end.

Pure: no pulumi, no Azure SDK. The spec says what the user allows (`PoolSpec.capacity`); this module turns
it into the concrete choices `plan` shows and `up`/`grow` try in order:

- Zones, in order. An island is one Uniform scale set with a single placement group, and a placement group
  lives in one zone, so an island is placed whole in one zone and moves whole to the next one listed when
  its zone has no room (never split across zones: InfiniBand only spans one placement group, see
  components/gpu_pool.py). Default: the cluster's zone (components/placement.py), which is None in a
  region without zones or a regional deployment; then there is nothing to move to.
- Sizes, in order: the pool's size first, then the stand-ins the policy allows. Each carries its own quota
  family and price from the catalogue, so a stand-in is priced and its quota checked before it is used.
  An island `up`/`grow` switched to a stand-in is recorded in `capacity.island_stand_ins`; from then on
  that island is that size everywhere (`island_size_name`): its scale set's sku and image, its nodes'
  preparation (GPU and InfiniBand counts), its Slurm node records and gres.conf, its price and quota.
  A stand-in is tried only once every allowed zone said no to the pool's own size, and placed whole in
  one zone like any island.
- The smallest island worth keeping (`CapacityPolicy.smallest_island`): an island Azure places in part is
  kept when at least that many nodes came up, the failed instances are removed, and a later `up` or
  `grow` asks for the gap.
- A capacity reservation group (`reservation`), where Azure reserves the size: an existing group by id,
  or one azcluster creates for the pool's size and node count in the zone it is built in (gpu_pool.py).
- How long to keep trying (`wait_minutes`): the deadline of the back-off loop, which the CLI's
  `--wait-for-capacity` overrides.

Storage stays in the cluster's zone whatever happens to an island: Managed Lustre and the shared home are
zonal or zone-redundant resources holding data, and moving them for a compute shortage would be far worse
than reading them across zones. An island placed in another zone reads them across zones: zones are
joined by a network with under 2 ms round-trip latency, and Azure no longer bills data transfer between
zones of one region (learn.microsoft.com/azure/reliability/availability-zones-overview); jobs reading
Lustre hard feel the latency, not a bill. `cross_zone` says which islands do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import catalog
from .placement import cluster_zone
from .spec import ClusterSpec, PoolSpec


@dataclass(frozen=True)
class SizeChoice:
    """One size an island may be built as: the pool's own or a stand-in, with its quota family and price."""

    name: str
    stand_in: bool
    known: bool
    quota_family: str | None = None
    vcpus: int | None = None
    gpus: int | None = None
    usd_per_hour: float | None = None
    price_region: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.name,
            "stand_in": self.stand_in,
            "known": self.known,
            "quota_family": self.quota_family,
            "vcpus": self.vcpus,
            "gpus": self.gpus,
            "usd_per_hour": self.usd_per_hour,
            "price_region": self.price_region,
        }


@dataclass(frozen=True)
class PoolCapacity:
    """The resolved policy of one pool: what `plan` shows and what `up`/`grow` try, in order."""

    pool: str
    zones: tuple[str | None, ...]
    """Zones to try, in order; (None,) for a regional pool (nowhere to move)."""
    storage_zone: str | None
    """The cluster's zone: where storage stays."""
    sizes: tuple[SizeChoice, ...]
    """The pool's size first, then the allowed stand-ins."""
    islands: tuple[int, ...]
    """Nodes asked for per island."""
    smallest: tuple[int, ...]
    """Fewest nodes worth keeping per island (equal to `islands` for whole islands only)."""
    wait_minutes: int
    placed: tuple[str | None, ...] = ()
    """The zone each island is built in now: its entry in `capacity.island_zones`, else the first."""
    reservation: dict[str, Any] | None = None
    """The capacity reservation the pool allocates from (`reservation_json`), or None."""
    built_sizes: tuple[str, ...] = ()
    """The size each island is built as now: its entry in `capacity.island_stand_ins`, else the pool's."""

    def island_size(self, index: int) -> SizeChoice:
        """The size choice island `index` is built as (the pool's own when nothing is recorded)."""
        name = self.built_sizes[index] if index < len(self.built_sizes) else self.sizes[0].name
        return next(
            (s for s in self.sizes if s.name.lower() == name.lower()), size_choice(name, stand_in=True)
        )

    def reservation_text(self) -> str:
        """One line for `plan`: none, the user's group, or what azcluster reserves."""
        held = self.reservation
        if held is None:
            return "none"
        if held["form"] == "existing":
            return f"group {str(held['group_id']).rsplit('/', 1)[-1]} (yours: not created nor deleted)"
        where = f" in zone {', '.join(held['zones'])}" if held["zones"] else ""
        return f"created: {held['vms']} x {held['size']}{where}, billed used or not; `down` deletes it"

    @property
    def whole_islands_only(self) -> bool:
        return self.smallest == self.islands

    def cross_zone(self, zone: str | None) -> bool:
        """Whether an island placed in `zone` reads storage across zones."""
        return zone is not None and self.storage_zone is not None and zone != self.storage_zone

    def minimum_text(self) -> str:
        if self.whole_islands_only:
            return "whole islands only"
        pairs = sorted(set(zip(self.islands, self.smallest, strict=True)), reverse=True)
        return "keep " + ", ".join(f"{low} of {asked}" for asked, low in pairs) + " or more"

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "zones": list(self.zones),
            "storage_zone": self.storage_zone,
            "sizes": [size.to_json() for size in self.sizes],
            "islands": [
                {
                    "island": index,
                    "requested": asked,
                    "smallest": low,
                    "zone": self.placed[index] if index < len(self.placed) else None,
                    "cross_zone": self.cross_zone(self.placed[index] if index < len(self.placed) else None),
                    "size": self.island_size(index).name,
                    "stand_in": self.island_size(index).stand_in,
                    "usd_per_node_hour": self.island_size(index).usd_per_hour,
                }
                for index, (asked, low) in enumerate(zip(self.islands, self.smallest, strict=True))
            ],
            "whole_islands_only": self.whole_islands_only,
            "wait_minutes": self.wait_minutes,
            "reservation": self.reservation,
        }


def island_zone(pool: PoolSpec, index: int, cluster_zone: str | None) -> str | None:
    """The zone island `index` is built in: where azcluster moved it (`capacity.island_zones`), else the
    first zone the policy lists, else the cluster's zone. GpuPool and `plan` both ask here."""
    policy = pool.capacity
    return policy.island_zones.get(str(index)) or (policy.zones[0] if policy.zones else cluster_zone)


def island_size_name(pool: PoolSpec, index: int) -> str:
    """The VM size island `index` is built as: the stand-in azcluster switched it to
    (`capacity.island_stand_ins`), else the pool's `size`. GpuPool, the node bootstrap, Slurm's node
    records, `plan`'s prices and preflight's quota all ask here, so they agree on every island."""
    return pool.capacity.island_stand_ins.get(str(index)) or pool.size


def island_size(pool: PoolSpec, index: int) -> catalog.GpuSize | None:
    """The catalogue's entry for `island_size_name` (None for a size it does not know)."""
    return catalog.find_size(island_size_name(pool, index))


def size_choice(name: str, *, stand_in: bool) -> SizeChoice:
    """A size with what the catalogue knows about it (quota family, vCPUs, GPUs, price)."""
    size = catalog.find_size(name)
    if size is None:
        return SizeChoice(name, stand_in, known=False)
    return SizeChoice(
        size.name,
        stand_in,
        known=True,
        quota_family=size.quota_family,
        vcpus=size.vcpus,
        gpus=size.gpus,
        usd_per_hour=size.price.usd_per_hour,
        price_region=size.price.region,
    )


def island_counts(pool: PoolSpec) -> list[int]:
    """Nodes per scale set as GpuPool builds them: IB islands, or one set for sizes without InfiniBand."""
    size = catalog.find_size(pool.size)
    if size is not None and not size.has_infiniband:
        return [pool.nodes]
    return pool.island_sizes()


def pool_capacity(spec: ClusterSpec, pool: PoolSpec) -> PoolCapacity:
    """The pool's policy resolved against the cluster's zone and the catalogue."""
    home_zone = cluster_zone(spec).zone
    policy = pool.capacity
    zones: tuple[str | None, ...] = tuple(policy.zones) or (home_zone,)
    sizes = (size_choice(pool.size, stand_in=False),) + tuple(
        size_choice(name, stand_in=True) for name in policy.stand_in_sizes
    )
    islands = tuple(island_counts(pool))
    return PoolCapacity(
        pool=pool.name,
        zones=zones,
        storage_zone=home_zone,
        sizes=sizes,
        islands=islands,
        smallest=tuple(policy.smallest_island(n) for n in islands),
        wait_minutes=policy.wait_minutes,
        placed=tuple(island_zone(pool, index, home_zone) for index in range(len(islands))),
        reservation=reservation_json(pool, island_zone(pool, 0, home_zone)),
        built_sizes=tuple(island_size_name(pool, index) for index in range(len(islands))),
    )


def reservation_json(pool: PoolSpec, built_zone: str | None) -> dict[str, Any] | None:
    """The pool's reservation: `form` existing (the user's group, by id) or created (azcluster's, for the
    pool's size and node count), its `zones` (given, else where the pool is built) and the VMs held."""
    if not pool.uses_reservation:
        return None
    given = pool.capacity.reservation.zones if pool.capacity.reservation is not None else []
    group_id = pool.reservation_group_id
    return {
        "form": "existing" if group_id else "created",
        "group_id": group_id,
        "zones": list(given) or ([built_zone] if built_zone and not group_id else []),
        "size": pool.size,
        "vms": None if group_id else pool.nodes,
    }


def capacity_plan(spec: ClusterSpec) -> list[PoolCapacity]:
    """Every pool's resolved policy, in spec order."""
    return [pool_capacity(spec, pool) for pool in spec.pools]
