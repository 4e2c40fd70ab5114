"""What a cluster costs and which quota it needs: spec + catalogue arithmetic, no Azure calls.

It is the same arithmetic whether or not a program runs, and it never grows with the node count (a pool of
1024 nodes is a handful of scale sets, not 1024 VMs). `plan`, `up`, `list` and `status` show it.

Two parts, shown apart: compute (each pool's VMs and the login node, priced by size from sizes.yaml) and
everything else the cluster builds that Azure bills by the hour whether or not a node runs (every VM's
OS disk, Managed Lustre, the shared home, Bastion, the NAT gateway, public IPs, private endpoints and DNS
zones, from prices.yaml). Charges billed by use (GB processed, GB stored, queries) are named with their
rates and never added: azcluster cannot know the traffic. `cost_per_hour_usd` is the sum of the two parts.

Pricing a new resource (a MySQL flexible server, say): give its type a row in
components/catalog/prices.yaml (unit, rates by SKU, usage meters, source, date), an entry in `PRICERS`
(the function for its unit), and a `Billable` from the spec in one of the `BILLABLES` functions; the
plan-graph test (tests/azcluster/test_cost_resources.py) fails until all three agree with what the
components build.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azcluster.components import catalog
from azcluster.components.catalog import ResourcePrice
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
    estimate: bool = False
    """No public price: the figure is worked out (sizes.yaml's price `estimate`; its source says how)."""

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
    rack_vms: int | None = None
    """VMs per NVL72 rack (GB200/GB300: the catalogue's `rack_vms`); None for sizes without racks."""
    stand_ins: tuple[tuple[str, int], ...] = ()
    """(size, nodes) of islands built on a stand-in size (`capacity.island_stand_ins`)."""

    @property
    def racks(self) -> tuple[int, int] | None:
        """(whole racks, VMs of a partial one) for rack-scale sizes; None for others."""
        return divmod(self.nodes, self.rack_vms) if self.rack_vms else None

    def racks_json(self) -> dict[str, int] | None:
        if self.racks is None or self.rack_vms is None:
            return None
        whole, partial = self.racks
        return {"vms_per_rack": self.rack_vms, "whole": whole, "partial_vms": partial}


@dataclass(frozen=True)
class ElasticSummary:
    """Cost per hour with every node on (the summary's cost) versus with every elastic island powered off:
    what is left is the login node, the islands kept warm and the other resources (storage, Bastion, NAT),
    which bill the same either way."""

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
class Billable:
    """Resources of one kind that a spec builds and the catalogue prices (not VMs: those are PriceLines).

    `count` resources of `kind`, each of `quantity` units where the price is per unit of capacity (TiB of
    Lustre, provisioned GiB of a share); `sku` picks the rate, `variant` the catalogue row of a type priced
    by what it is (a StorageAccount's kind)."""

    kind: str
    role: str
    """The part of the cluster it belongs to: disks, lustre, home, blob, bastion, nat, dns, endpoints."""
    label: str
    count: int = 1
    sku: str | None = None
    variant: str | None = None
    quantity: float | None = None


@dataclass(frozen=True)
class ResourceCost:
    """A Billable at its catalogue price: the fixed hourly part, and the usage meters left out of it."""

    item: Billable
    price: ResourcePrice
    usd_per_hour: float
    rate: float | None
    """USD per `price.unit` (per hour, month, TiB-month...); None for usage-only and included rows."""

    @property
    def usd_per_month(self) -> float:
        return round(self.usd_per_hour * HOURS_PER_MONTH, 2)

    def to_json(self) -> dict[str, Any]:
        item, price = self.item, self.price
        return {
            "kind": item.kind,
            "variant": item.variant,
            "role": item.role,
            "label": item.label,
            "count": item.count,
            "sku": item.sku,
            "quantity": item.quantity,
            "unit": price.unit,
            "rate_usd": self.rate,
            "usd_per_hour": round(self.usd_per_hour, 4),
            "usd_per_month": self.usd_per_month,
            "usage_based": [{"meter": m.meter, "usd": m.usd, "per": m.per} for m in price.usage],
            "region": price.region,
            "date": price.date,
            "confidence": price.confidence,
            "estimate": price.estimate,
            "source": price.source,
        }


def money(usd: float) -> str:
    """A rate for people: cents kept, small rates in full ('$0.005', '$0.50', '$340')."""
    if usd >= 1:
        return f"${usd:,.2f}".removesuffix(".00")
    text = f"{usd:.4f}".rstrip("0")
    return "$" + (text + "0" if len(text.split(".")[1]) < 2 else text)


def usage_text(cost: ResourceCost) -> str:
    """The usage-based meters of a resource, for people: 'data processed $0.045/GB'."""
    parts = []
    for meter in cost.price.usage:
        rate = f"{money(meter.usd)}/{meter.per}" if meter.usd is not None else f"priced per {meter.per}"
        parts.append(f"{meter.meter} {rate}")
    return "; ".join(parts)


def rate_text(cost: ResourceCost) -> str:
    """The fixed rate as the catalogue states it: '$340/TiB-month', '$0.29/hour', 'usage-based only'."""
    unit = cost.price.unit
    if unit == "usage":
        return "usage-based only"
    if unit == "included":
        return "no charge of its own"
    if unit == "vm-hour":
        rate, reserved = cost.rate or 0.0, int(cost.item.quantity or 0)
        total = money(rate * reserved)
        return f"{money(rate)}/hour per reserved VM ({reserved} reserved: {total}/hour, used or not)"
    each = " each" if unit in ("hour", "month") and cost.item.count > 1 else ""
    return f"{money(cost.rate or 0.0)}/{unit}{each}"


def _per_hour(item: Billable, price: ResourcePrice) -> tuple[float, float] | None:
    """Billed per resource per hour (Bastion, NAT gateway, public IP, private endpoint)."""
    rate = price.rate(item.sku)
    return None if rate is None else (rate, rate * item.count)


def _per_month(item: Billable, price: ResourcePrice) -> tuple[float, float] | None:
    """Billed per resource per month (a private DNS zone): the hourly share of the calculator month."""
    rate = price.rate(item.sku)
    return None if rate is None else (rate, rate * item.count / HOURS_PER_MONTH)


def _per_capacity_month(item: Billable, price: ResourcePrice) -> tuple[float, float] | None:
    """Billed per provisioned unit of capacity per month, rate by SKU (Lustre TiB, premium share GiB)."""
    rate = price.rate(item.sku)
    if rate is None or item.quantity is None:
        return None
    return rate, rate * item.quantity * item.count / HOURS_PER_MONTH


def _nothing_fixed(item: Billable, price: ResourcePrice) -> tuple[float | None, float]:
    """Usage-only (blob capacity) or included in another line (a FileStorage account): no hourly part."""
    return None, 0.0


def _reserved_vm_hours(item: Billable, price: ResourcePrice) -> tuple[float, float] | None:
    """A capacity reservation of `quantity` VMs of size `sku`, each billed at the size's pay-as-you-go
    rate (sizes.yaml) whether used or not. azcluster reserves exactly the pool's nodes, and VMs running in
    a reservation are its charge, not on top of it: with the pool on, that charge is the pool's compute
    line, so nothing is added here; powered off (elastic idle, `stop`) it is `rate x quantity` an hour
    (the elastic summary's idle figure counts it)."""
    size = catalog.find_size(item.sku) if item.sku else None
    if size is None or item.quantity is None:
        return None
    return size.price.usd_per_hour, 0.0


def _server_and_storage(item: Billable, price: ResourcePrice) -> tuple[float, float] | None:
    """A MySQL flexible server: its size per hour plus its provisioned GiB (`quantity`) at the catalogue's
    `storage_gib_month` rate, the hourly share of the calculator month."""
    rate = price.rate(item.sku)
    storage = price.rates.get("storage_gib_month")
    if rate is None or storage is None or item.quantity is None:
        return None
    return rate, (rate + storage * item.quantity / HOURS_PER_MONTH) * item.count


Pricer = Callable[[Billable, ResourcePrice], "tuple[float | None, float] | None"]
PRICERS: dict[str, Pricer] = {
    "azure-native:storagecache:AmlFilesystem": _per_capacity_month,  # TiB-month by throughput tier
    "azure-native:storage:FileShare": _per_capacity_month,  # provisioned GiB-month (v1)
    "azure-native:storage:StorageAccount": _nothing_fixed,  # blob: usage; FileStorage: its shares
    "azure-native:network:BastionHost": _per_hour,  # by SKU
    "azure-native:network:NatGateway": _per_hour,  # + per GB processed (usage)
    "azure-native:network:PublicIPAddress": _per_hour,
    "azure-native:network:PrivateEndpoint": _per_hour,  # + per GB processed (usage)
    "azure-native:privatedns:PrivateZone": _per_month,  # + per million queries (usage)
    "azure-native:compute:Disk": _per_month,  # a VM's OS disk: flat per month by Premium SSD tier
    "azure-native:dashboard:Grafana": _per_hour,  # by SKU + per active user (usage)
    "azure-native:monitor:AzureMonitorWorkspace": _nothing_fixed,  # per sample ingested and queried
    "azure-native:monitor:ActionGroup": _nothing_fixed,  # per notification sent
    "azure-native:compute:CapacityReservation": _reserved_vm_hours,  # reserved VMs at the size's rate
    "azure-native:dbformysql:Server": _server_and_storage,  # size per hour + provisioned GiB-month
}
"""Resource kind -> the function that prices it from its catalogue row (prices.yaml `unit`). A price
function returns (rate, USD per hour), or None when the catalogue has no rate for that SKU."""


@dataclass(frozen=True)
class Summary:
    nodes: int
    gpus: int
    scale_sets: int
    ib_islands: int
    cost_per_hour_usd: float
    """Everything priced: compute plus the other resources' hourly part (usage-based charges excluded)."""
    quota: list[QuotaNeed]
    pools: list[PoolSummary] = field(default_factory=list)
    prices: list[PriceLine] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)
    """Sizes and resources the catalogue has no price for (left out of the cost)."""
    zone: str | None = None
    """The availability zone of every zonal resource (None: regional); components/placement.py."""
    zone_note: str = ""
    """Why that zone: set in the spec, chosen by azcluster for Managed Lustre, or the region has none."""
    elastic: ElasticSummary | None = None
    """What an elastic cluster costs when all of it is idle (None: not elastic)."""
    resources: list[ResourceCost] = field(default_factory=list)
    """The non-VM resources the spec builds, priced (prices.yaml)."""

    @property
    def compute_usd_per_hour(self) -> float:
        return round(sum(line.total_per_hour for line in self.prices), 2)

    @property
    def resources_usd_per_hour(self) -> float:
        return round(sum(cost.usd_per_hour for cost in self.resources), 2)

    @property
    def cost_per_month_usd(self) -> float:
        return round(self.cost_per_hour_usd * HOURS_PER_MONTH, 2)

    @property
    def price_dates(self) -> list[str]:
        return sorted({line.date for line in self.prices} | {cost.price.date for cost in self.resources})

    def cost_breakdown(self) -> dict[str, Any]:
        """`cost_per_hour_usd` split into compute and each other priced resource (the JSON's
        `cost_breakdown`); usage-based meters are listed per resource and never added."""
        return {
            "compute_usd_per_hour": self.compute_usd_per_hour,
            "resources_usd_per_hour": self.resources_usd_per_hour,
            "total_usd_per_hour": self.cost_per_hour_usd,
            "resources": [cost.to_json() for cost in self.resources],
        }

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
            "cost_breakdown": self.cost_breakdown(),
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
                    "estimate": line.estimate,
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
                    "racks": pool.racks_json(),
                    "stand_ins": [{"size": name, "nodes": nodes} for name, nodes in pool.stand_ins],
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
        built = built_sizes(pool, size, islands)
        pool_gpus = sum(count * each.gpus for each, count in built)
        gpus += pool_gpus
        scale_sets += len(islands)
        if size.has_infiniband:
            ib_islands += sum(1 for nodes in islands if nodes > 0)
        stand_ins = tuple((each.name, count) for each, count in built if each.name != size.name)
        pools.append(
            PoolSummary(
                pool.name,
                size.name,
                pool.nodes,
                pool_gpus,
                islands,
                size.has_infiniband,
                pool.spot,
                size.rack_vms,
                stand_ins,
            )
        )
        for each, count in built:
            family = SPOT_QUOTA_FAMILY if pool.spot else each.quota_family
            quota[family] = quota.get(family, 0) + count * each.vcpus
            if count:
                role = f"pool {pool.name}" + (" (spot)" if pool.spot else "")
                role += " (stand-in)" if each.name != size.name else ""
                prices.append(_price_line(role, each, count))
    if spec.login.enabled:
        login = catalog.general_sizes().get(spec.login.size) or catalog.find_size(spec.login.size)
        if login is None:
            unpriced.append(spec.login.size)
        else:
            quota[login.quota_family] = quota.get(login.quota_family, 0) + login.vcpus
            prices.append(_price_line("login", login, 1))
    resources, unpriced_resources = price_resources(spec)
    unpriced.extend(unpriced_resources)
    # Each part rounded to the cent, then added: the breakdown's two parts sum to the total exactly.
    compute = round(sum(line.total_per_hour for line in prices), 2)
    cost = round(compute + round(sum(item.usd_per_hour for item in resources), 2), 2)
    placement = cluster_zone(spec)
    return Summary(
        resources=resources,
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


def built_sizes(pool: Any, size: catalog.GpuSize, islands: list[int]) -> list[tuple[catalog.GpuSize, int]]:
    """Nodes per size the pool's islands are built as: its own size, then each stand-in an island was
    switched to (`capacity.island_stand_ins`, components/capacity.py), each priced and counted against its
    own quota family. A stand-in the catalogue does not know counts as the pool's size (AZC160 reports it)."""
    from azcluster.components.capacity import island_size

    counts: dict[str, list[Any]] = {size.name: [size, 0]}
    for index, nodes in enumerate(islands):
        each = island_size(pool, index) or size
        counts.setdefault(each.name, [each, 0])[1] += nodes
    return [(each, count) for each, count in counts.values()]


def _elastic_summary(spec: ClusterSpec, all_on: float) -> ElasticSummary | None:
    """All on is the summary's cost; all idle takes off what the elastic islands cost."""
    if not spec.elastic_enabled or spec.elastic is None:
        return None
    from azcluster.components.elastic import elastic_cost

    gpu = elastic_cost(spec)
    idle = all_on - (gpu.all_on_usd_per_hour - gpu.floor_usd_per_hour)
    # A reservation keeps billing while the pool's nodes are powered off (the only thing left to cover).
    from azcluster.components.elastic import plan_islands

    warm = {island.pool for island in plan_islands(spec) if island.keep_warm}
    for pool, size_name, count in reserved_vms(spec):
        size = catalog.find_size(size_name)
        if size is not None and pool not in warm:
            idle += size.price.usd_per_hour * count
    idle = round(idle, 2)
    return ElasticSummary(spec.elastic.idle_minutes, spec.elastic.keep_warm_islands, all_on, idle)


def _price_line(role: str, size: Any, count: int) -> PriceLine:
    price = size.price
    return PriceLine(
        role,
        size.name,
        count,
        price.usd_per_hour,
        price.date,
        price.region,
        price.confidence,
        price.source,
        price.estimate,
    )


# --- the other resources: what the spec builds, priced by kind --------------------------------------------

BASTION_SKU = "Standard"
"""The SKU components/network.py gives Bastion (ClusterNetworkArgs.bastion_sku; the spec has no field)."""
LOGIN_OS_DISK_GB = 64
"""The login node's OS disk (components/login.py LoginNodeArgs.os_disk_gb; the spec has no field)."""
BLOB_SKU = "Standard_LRS"
"""The blob account's SKU (components/storage.py SharedStorageArgs.blob_sku; the spec has no field)."""


def _creates_dns_zone(spec: ClusterSpec, kind: str, needed: bool) -> bool:
    """Whether the cluster creates the privatelink zone of `kind`: components/network.py
    `private_dns_zone`, restated here so pricing never imports pulumi (a test holds the two together)."""
    from azcluster.components.spec import CREATE_DNS_ZONE

    choice = spec.network.dns_zones.get(kind)
    if choice and choice.strip().lower() != CREATE_DNS_ZONE:
        return False
    return needed and (choice is not None or spec.network.existing_vnet_id is None)


def _network_billables(spec: ClusterSpec) -> list[Billable]:
    """Bastion and the NAT gateway, each with its Standard static public IP (components/network.py)."""
    items: list[Billable] = []
    if spec.network.bastion:
        items.append(
            Billable("azure-native:network:BastionHost", "bastion", f"Bastion {BASTION_SKU}", sku=BASTION_SKU)
        )
        items.append(
            Billable("azure-native:network:PublicIPAddress", "bastion", "public IP (Bastion)", sku="Standard")
        )
    if spec.network.nat_gateway:
        items.append(Billable("azure-native:network:NatGateway", "nat", "NAT gateway", sku="Standard"))
        items.append(
            Billable("azure-native:network:PublicIPAddress", "nat", "public IP (NAT gateway)", sku="Standard")
        )
    return items


def _dns_billables(spec: ClusterSpec) -> list[Billable]:
    """The cluster's own private zone, and the privatelink zones the cluster creates for its endpoints."""
    zones = ["cluster"]
    if _creates_dns_zone(spec, "blob", spec.storage.blob.enabled):
        zones.append("blob")
    if _creates_dns_zone(spec, "file", spec.storage.home.enabled):
        zones.append("file")
    label = f"private DNS zone{'s' if len(zones) != 1 else ''} ({', '.join(zones)})"
    return [Billable("azure-native:privatedns:PrivateZone", "dns", label, count=len(zones))]


def _storage_billables(spec: ClusterSpec) -> list[Billable]:
    """Managed Lustre, the blob data account and the shared home, and one private endpoint per account."""
    items: list[Billable] = []
    lustre = spec.storage.lustre
    if lustre is not None and lustre.enabled:
        items.append(
            Billable(
                "azure-native:storagecache:AmlFilesystem",
                "lustre",
                f"Managed Lustre {lustre.sku}, {lustre.capacity_tib} TiB",
                sku=lustre.sku,
                quantity=lustre.capacity_tib,
            )
        )
    endpoints = 0
    if spec.storage.blob.enabled:
        items.append(
            Billable(
                "azure-native:storage:StorageAccount",
                "blob",
                "blob data account",
                sku=BLOB_SKU,
                variant="StorageV2",
            )
        )
        endpoints += 1
    home = spec.storage.home
    if home.enabled:
        sku = f"Premium_{home.redundancy}"
        items.append(
            Billable(
                "azure-native:storage:FileShare",
                "home",
                f"shared home: Azure Files premium NFS, {home.size_gib:,} GiB {home.redundancy}",
                sku=sku,
                quantity=home.size_gib,
            )
        )
        items.append(
            Billable(
                "azure-native:storage:StorageAccount",
                "home",
                "shared home account",
                sku=sku,
                variant="FileStorage",
            )
        )
        endpoints += 1
    if endpoints:
        items.append(
            Billable(
                "azure-native:network:PrivateEndpoint",
                "endpoints",
                f"private endpoint{'s' if endpoints != 1 else ''} (storage accounts)",
                count=endpoints,
            )
        )
    return items


def _disk_billables(spec: ClusterSpec) -> list[Billable]:
    """Each VM's Premium SSD OS disk, billed at its tier's monthly price even while the VM is deallocated:
    one line per pool (its nodes' disks) and one for the login node."""
    disks = catalog.resource_prices().get(("azure-native:compute:Disk", "os"))
    sizes = [(f"pool {pool.name}", pool.nodes, pool.os_disk_gb) for pool in spec.pools if pool.nodes]
    if spec.login.enabled:
        sizes.append(("login", 1, LOGIN_OS_DISK_GB))
    items = []
    for owner, count, gib in sizes:
        tier = disks.tier_for(gib) if disks is not None else None
        label = f"OS disks, {owner}: {count} x {gib} GiB Premium SSD" + (f" ({tier})" if tier else "")
        items.append(
            Billable(
                "azure-native:compute:Disk", "disks", label, count=count, sku=tier, variant="os", quantity=gib
            )
        )
    return items


GRAFANA_SKU = "Standard"
"""components/monitoring.py's Grafana SKU, restated so pricing never imports pulumi (the plan-graph test
compares the SKU in the graph with the one priced here)."""


def _monitoring_billables(spec: ClusterSpec) -> list[Billable]:
    """What components/monitoring.py builds: the workspace and Grafana unless given, and with public
    access off their private endpoints and the Private Link Scope's (unless a hub's scope is joined), and
    (in a network the cluster creates) a privatelink zone for each. The data collection endpoint and rule,
    and the scope itself, cost nothing of their own (prices.yaml `free`)."""
    mon = spec.monitoring
    if not mon.enabled:
        return []
    items: list[Billable] = []
    private: list[str] = []
    if mon.existing_workspace_id is None:
        items.append(
            Billable("azure-native:monitor:AzureMonitorWorkspace", "monitoring", "Azure Monitor workspace")
        )
        private.append("workspace")
    if mon.existing_grafana_id is None:
        items.append(
            Billable(
                "azure-native:dashboard:Grafana",
                "monitoring",
                f"Azure Managed Grafana {GRAFANA_SKU}",
                sku=GRAFANA_SKU,
            )
        )
        private.append("Grafana")
    if mon.alert_emails or mon.alert_webhook:
        items.append(Billable("azure-native:monitor:ActionGroup", "monitoring", "alert notifications"))
    if mon.public_network_access:
        return items
    zones = list(private)
    if mon.existing_private_link_scope_id is None:  # the cluster's own scope: its endpoint and zone
        private.append("metrics ingestion")
        zones.append("metrics ingestion")
    if not private:
        return items
    what = " and ".join(private)
    items.append(
        Billable(
            "azure-native:network:PrivateEndpoint",
            "endpoints",
            f"private endpoint{'s' if len(private) != 1 else ''} (monitoring: {what})",
            count=len(private),
        )
    )
    if spec.network.existing_vnet_id is None and zones:
        items.append(
            Billable(
                "azure-native:privatedns:PrivateZone",
                "dns",
                f"private DNS zone{'s' if len(zones) != 1 else ''} (monitoring: {' and '.join(zones)})",
                count=len(zones),
            )
        )
    return items


def reserved_vms(spec: ClusterSpec) -> list[tuple[str, str, int]]:
    """(pool, size, VMs reserved) for each pool whose capacity reservation azcluster creates: the pool's
    size and node count (components/gpu_pool.py); a group given by id is the user's and billed to them
    whether or not azcluster runs."""
    return [
        (pool.name, pool.size, pool.nodes)
        for pool in spec.pools
        if pool.capacity.reservation is not None and pool.capacity.reservation.create and pool.nodes
    ]


def _reservation_billables(spec: ClusterSpec) -> list[Billable]:
    """Each created capacity reservation (one per pool), priced per reserved VM at the size's rate."""
    return [
        Billable(
            "azure-native:compute:CapacityReservation",
            "reservation",
            f"capacity reservation, pool {pool}: {count} x {size}, billed whether used or not (running "
            "nodes are that charge, not extra) until `down` deletes it",
            sku=size,
            quantity=count,
        )
        for pool, size, count in reserved_vms(spec)
    ]


def _accounting_billables(spec: ClusterSpec) -> list[Billable]:
    """slurmdbd's MySQL flexible server with `slurm.accounting.database: mysql` (components/
    accounting_db.py), its private endpoint and, in a network the cluster creates, its privatelink zone."""
    if not spec.uses_mysql_accounting:
        return []
    mysql = spec.slurm.accounting.mysql
    items = [
        Billable(
            "azure-native:dbformysql:Server",
            "accounting",
            f"accounting database: MySQL flexible server {mysql.sku}, {mysql.storage_gb} GiB",
            sku=mysql.sku,
            quantity=mysql.storage_gb,
        ),
        Billable(
            "azure-native:network:PrivateEndpoint", "endpoints", "private endpoint (accounting database)"
        ),
    ]
    if _creates_dns_zone(spec, "mysql", True):
        items.append(
            Billable("azure-native:privatedns:PrivateZone", "dns", "private DNS zone (accounting database)")
        )
    return items


BILLABLES: tuple[Callable[[ClusterSpec], list[Billable]], ...] = (
    _disk_billables,
    _accounting_billables,
    _reservation_billables,
    _storage_billables,
    _network_billables,
    _dns_billables,
    _monitoring_billables,
)
"""What the spec builds besides VMs, one function per area of the components."""


def billables(spec: ClusterSpec) -> list[Billable]:
    return [item for derive in BILLABLES for item in derive(spec)]


def price_resources(spec: ClusterSpec) -> tuple[list[ResourceCost], list[str]]:
    """Each Billable at its catalogue price, and the labels of those the catalogue cannot price."""
    prices = catalog.resource_prices()
    priced: list[ResourceCost] = []
    unpriced: list[str] = []
    for item in billables(spec):
        price = prices.get((item.kind, item.variant))
        pricer = PRICERS.get(item.kind)
        result = pricer(item, price) if price is not None and pricer is not None else None
        if result is None:
            unpriced.append(item.label)
            continue
        rate, usd_per_hour = result
        priced.append(ResourceCost(item, price, usd_per_hour, rate))
    return priced, unpriced
