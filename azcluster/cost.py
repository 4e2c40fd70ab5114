"""What a cluster costs and which quota it needs: spec + catalogue arithmetic, no Azure calls.

It is the same arithmetic whether or not a program runs, and it never grows with the node count (a pool of
1024 nodes is a handful of scale sets, not 1024 VMs). `plan`, `up` and `list` show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from azcluster.components import catalog
from azcluster.components.placement import cluster_zone
from azcluster.components.spec import ClusterSpec

HOURS_PER_MONTH = 730
"""Azure's pricing calculator month."""
SPOT_QUOTA_FAMILY = "lowPriorityCores"
"""Azure counts every Spot VM's vCPUs against this one regional quota, whatever the size's family."""


@dataclass(frozen=True)
class QuotaNeed:
    family: str
    vcpus: int


@dataclass(frozen=True)
class PriceLine:
    """One priced line of the estimate: `count` VMs of `size` at the catalogue's dated price."""

    role: str
    size: str
    count: int
    usd_per_hour: float
    date: str
    region: str
    confidence: str
    source: str

    @property
    def total_per_hour(self) -> float:
        return self.count * self.usd_per_hour


@dataclass(frozen=True)
class PoolSummary:
    name: str
    size: str
    nodes: int
    gpus: int
    islands: list[int]
    """Nodes per scale set, in scale-set order."""
    infiniband: bool
    spot: bool


@dataclass(frozen=True)
class ElasticSummary:
    """Cost per hour with every node on (the summary's cost) versus with every elastic island powered off:
    what is left is the login node, the islands kept warm and storage, which azcluster does not price."""

    idle_minutes: int
    keep_warm_islands: int
    all_on_usd_per_hour: float
    all_idle_usd_per_hour: float

    def to_json(self) -> dict[str, Any]:
        return {
            "idle_minutes": self.idle_minutes,
            "keep_warm_islands": self.keep_warm_islands,
            "all_on_usd_per_hour": self.all_on_usd_per_hour,
            "all_idle_usd_per_hour": self.all_idle_usd_per_hour,
        }


@dataclass(frozen=True)
class Summary:
    nodes: int
    gpus: int
    scale_sets: int
    ib_islands: int
    cost_per_hour_usd: float
    quota: list[QuotaNeed]
    pools: list[PoolSummary] = field(default_factory=list)
    prices: list[PriceLine] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)
    """Sizes the catalogue has no price for (left out of the cost)."""
    zone: str | None = None
    """The availability zone of every zonal resource (None: regional); components/placement.py."""
    zone_note: str = ""
    """Why that zone: set in the spec, chosen by azcluster for Managed Lustre, or the region has none."""
    elastic: ElasticSummary | None = None
    """What an elastic cluster costs when all of it is idle (None: not elastic)."""

    @property
    def cost_per_month_usd(self) -> float:
        return round(self.cost_per_hour_usd * HOURS_PER_MONTH, 2)

    @property
    def price_dates(self) -> list[str]:
        return sorted({line.date for line in self.prices})

    @property
    def regional_vcpus(self) -> int:
        """What Azure's regional `cores` quota must hold (every non-Spot VM, whatever its family)."""
        return sum(need.vcpus for need in self.quota if need.family != SPOT_QUOTA_FAMILY)

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "gpus": self.gpus,
            "scale_sets": self.scale_sets,
            "ib_islands": self.ib_islands,
            "cost_per_hour_usd": self.cost_per_hour_usd,
            "quota": [{"family": need.family, "vcpus": need.vcpus} for need in self.quota],
            # Beyond the contract: what people reading the JSON ask next.
            "cost_per_month_usd": self.cost_per_month_usd,
            "hours_per_month": HOURS_PER_MONTH,
            "price_dates": self.price_dates,
            "prices": [
                {
                    "role": line.role,
                    "size": line.size,
                    "count": line.count,
                    "usd_per_hour": line.usd_per_hour,
                    "date": line.date,
                    "region": line.region,
                    "confidence": line.confidence,
                    "source": line.source,
                }
                for line in self.prices
            ],
            "unpriced": list(self.unpriced),
            "zone": self.zone,
            "zone_note": self.zone_note,
            "elastic": self.elastic.to_json() if self.elastic is not None else None,
            "regional_vcpus": self.regional_vcpus,
            "pools": [
                {
                    "name": pool.name,
                    "size": pool.size,
                    "nodes": pool.nodes,
                    "gpus": pool.gpus,
                    "islands": list(pool.islands),
                    "infiniband": pool.infiniband,
                    "spot": pool.spot,
                }
                for pool in self.pools
            ],
        }


# --- summary: spec + catalogue arithmetic ----------------------------------------------------------------


def summarize(spec: ClusterSpec) -> Summary:
    """Nodes, GPUs, scale sets, islands, cost and vCPU quota for a spec (sizes not in the catalogue count
    as nodes only; `rules` reports them)."""
    quota: dict[str, int] = {}
    prices: list[PriceLine] = []
    unpriced: list[str] = []
    pools: list[PoolSummary] = []
    gpus = scale_sets = ib_islands = 0
    for pool in spec.pools:
        size = catalog.find_size(pool.size)
        if size is None:
            islands = pool.island_sizes()
            pools.append(PoolSummary(pool.name, pool.size, pool.nodes, 0, islands, False, pool.spot))
            scale_sets += len(islands)
            unpriced.append(pool.size)
            continue
        islands = pool.island_sizes() if size.has_infiniband else [pool.nodes]
        pool_gpus = pool.nodes * size.gpus
        gpus += pool_gpus
        scale_sets += len(islands)
        if size.has_infiniband:
            ib_islands += sum(1 for nodes in islands if nodes > 0)
        pools.append(
            PoolSummary(pool.name, size.name, pool.nodes, pool_gpus, islands, size.has_infiniband, pool.spot)
        )
        family = SPOT_QUOTA_FAMILY if pool.spot else size.quota_family
        quota[family] = quota.get(family, 0) + pool.nodes * size.vcpus
        if pool.nodes:
            prices.append(
                _price_line(f"pool {pool.name}" + (" (spot)" if pool.spot else ""), size, pool.nodes)
            )
    if spec.login.enabled:
        login = catalog.general_sizes().get(spec.login.size) or catalog.find_size(spec.login.size)
        if login is None:
            unpriced.append(spec.login.size)
        else:
            quota[login.quota_family] = quota.get(login.quota_family, 0) + login.vcpus
            prices.append(_price_line("login", login, 1))
    cost = round(sum(line.total_per_hour for line in prices), 2)
    placement = cluster_zone(spec)
    return Summary(
        elastic=_elastic_summary(spec, cost),
        nodes=spec.total_nodes,
        gpus=gpus,
        scale_sets=scale_sets,
        ib_islands=ib_islands,
        cost_per_hour_usd=cost,
        quota=[QuotaNeed(family, vcpus) for family, vcpus in quota.items()],
        pools=pools,
        prices=prices,
        unpriced=unpriced,
        zone=placement.zone,
        zone_note=placement.reason,
    )


def _elastic_summary(spec: ClusterSpec, all_on: float) -> ElasticSummary | None:
    """All on is the summary's cost; all idle takes off what the elastic islands cost."""
    if not spec.elastic_enabled or spec.elastic is None:
        return None
    from azcluster.components.elastic import elastic_cost

    gpu = elastic_cost(spec)
    idle = round(all_on - (gpu.all_on_usd_per_hour - gpu.floor_usd_per_hour), 2)
    return ElasticSummary(spec.elastic.idle_minutes, spec.elastic.keep_warm_islands, all_on, idle)


def _price_line(role: str, size: Any, count: int) -> PriceLine:
    price = size.price
    return PriceLine(
        role, size.name, count, price.usd_per_hour, price.date, price.region, price.confidence, price.source
    )
