"""`azcluster preflight`: will this cluster deploy here, with this subscription, today?

Asks Azure (through azure-mgmt-compute) what the spec needs, before anything is created:

- each pool's size: offered in the region (Resource SKUs list filtered by location), restricted for this
  subscription (a `Location` restriction, reason `NotAvailableForSubscription` or `QuotaId`), available in
  the requested zone (`locationInfo.zones` less any `Zone` restriction), capabilities as the catalogue
  expects (`RdmaEnabled` for InfiniBand sizes, `AcceleratedNetworkingEnabled`, `GPUs`, `vCPUs`,
  `LowPriorityCapable` for Spot);
- vCPU quota (Usage list): per quota family the vCPUs of the regular-priority pools and the login node,
  against limit minus current usage; the regional total (`cores`); and for Spot pools the regional Spot
  quota (`lowPriorityCores`), which Spot VMs count against instead of the family and regional quotas
  (learn.microsoft.com/azure/quotas/spot-quota). Family names are compared with
  `catalog.normalise_family` because Azure spells them differently between APIs. vCPUs this cluster's
  scale sets already hold are credited back, so re-running before `up` on a live cluster is not a false no;
- when something blocks: the exact quota increase to request (family, region, new limit), and the other
  regions where the size is offered to this subscription without restriction (from the same SKU list).

The evaluation (`evaluate`) is pure: it takes what Azure answered and returns a `PreflightResult`, whose
`to_json()` is the document `azcluster preflight --json` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azcluster.components import catalog
from azcluster.components.placement import cluster_zone
from azcluster.components.spec import ClusterSpec

if TYPE_CHECKING:  # pragma: no cover
    from .azure import AzureContext

REGIONAL = "cores"
SPOT = "lowPriorityCores"


@dataclass
class Check:
    """One question about one pool, its answer and the figures behind it."""

    name: str
    ok: bool
    detail: str
    needed: int | None = None
    limit: int | None = None
    in_use: int | None = None
    blocking: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "needed": self.needed,
            "limit": self.limit,
            "in_use": self.in_use,
            "blocking": self.blocking and not self.ok,
        }


@dataclass
class PoolReport:
    pool: str
    role: str  # compute | login
    size: str
    nodes: int
    spot: bool
    vcpus_per_node: int | None = None
    quota_family: str | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok or not check.blocking for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "role": self.role,
            "size": self.size,
            "nodes": self.nodes,
            "spot": self.spot,
            "vcpus_per_node": self.vcpus_per_node,
            "quota_family": self.quota_family,
            "ok": self.ok,
            "checks": [check.to_json() for check in self.checks],
        }


@dataclass
class QuotaLine:
    """One quota Azure enforces: a VM family, the regional total, or the regional Spot total."""

    name: str  # as Azure spells it in the usage list (or the SKU family when Azure lists no usage)
    kind: str  # family | regional | spot
    needed: int  # vCPUs this deployment adds (after crediting what the cluster already holds)
    planned: int  # vCPUs the spec asks for in total
    existing: int  # vCPUs this cluster's scale sets already hold (already inside in_use)
    limit: int | None
    in_use: int | None
    pools: list[str] = field(default_factory=list)

    @property
    def available(self) -> int | None:
        return None if self.limit is None or self.in_use is None else self.limit - self.in_use

    @property
    def ok(self) -> bool:
        return self.needed == 0 or (self.available is not None and self.available >= self.needed)

    @property
    def request_limit(self) -> int | None:
        """The new limit to ask Azure support for when short: what is in use plus what is needed."""
        if self.ok:
            return None
        return (self.in_use or 0) + self.needed

    def label(self) -> str:
        return {
            "regional": "Total Regional vCPUs (cores)",
            "spot": "Total Regional Spot vCPUs (lowPriorityCores)",
        }.get(self.kind, f"{self.name} vCPUs")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "needed": self.needed,
            "planned": self.planned,
            "existing": self.existing,
            "limit": self.limit,
            "in_use": self.in_use,
            "available": self.available,
            "ok": self.ok,
            "request_limit": self.request_limit,
            "pools": self.pools,
        }


@dataclass
class Blocker:
    pool: str | None
    check: str
    message: str
    hint: str

    def to_json(self) -> dict[str, Any]:
        return {"pool": self.pool, "check": self.check, "message": self.message, "hint": self.hint}


@dataclass
class Alternative:
    """Where a blocked size is offered to this subscription without restriction."""

    size: str
    locations: list[dict[str, Any]]  # {"location", "zones"}

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "locations": self.locations}


@dataclass
class PreflightResult:
    stack: str
    location: str
    zone: str | None
    subscription: str
    pools: list[PoolReport]
    quota: list[QuotaLine]
    blockers: list[Blocker]
    alternatives: list[Alternative]
    notes: list[str] = field(default_factory=list)
    capacity_zones: list[Any] = field(default_factory=list)
    """Per pool with `capacity.zones`: whether each zone offers its size (preflight_capacity.py)."""
    stand_ins: list[Any] = field(default_factory=list)
    """Per stand-in size a pool allows: offered, quota for a whole island, price (preflight_capacity.py)."""

    @property
    def ok(self) -> bool:
        return not self.blockers

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "location": self.location,
            "zone": self.zone,
            "subscription": self.subscription,
            "ok": self.ok,
            "pools": [pool.to_json() for pool in self.pools],
            "quota": [line.to_json() for line in self.quota],
            "blockers": [blocker.to_json() for blocker in self.blockers],
            "alternatives": [alt.to_json() for alt in self.alternatives],
            "notes": self.notes,
            "capacity_zones": [item.to_json() for item in self.capacity_zones],
            "stand_ins": [item.to_json() for item in self.stand_ins],
        }


# --- asking Azure ----------------------------------------------------------------------------------


def run_preflight(spec: ClusterSpec, ctx: AzureContext, stack: str) -> PreflightResult:
    """Ask Azure about sizes, zones and quota for `spec` and evaluate the answers."""
    from .azure import azure_errors, compute_client, rest

    client = compute_client(ctx)
    location = spec.location
    with azure_errors(ctx, f"listing the VM sizes offered in {location}"):
        skus = [rest(sku) for sku in client.resource_skus.list(filter=f"location eq '{location}'")]
    with azure_errors(ctx, f"reading the vCPU quota of {location}"):
        usages = [rest(usage) for usage in client.usage.list(location)]
    with azure_errors(ctx, f"looking for this cluster's scale sets in {spec.resource_group_name}"):
        existing = existing_vcpus(client, spec, skus)
    held: dict[str, Any] = {}
    for pool in spec.pools:
        if pool.reservation_group_id:
            with azure_errors(ctx, f"reading capacity reservation group {pool.reservation_group_id}"):
                held[pool.name] = read_reservations(client, pool.reservation_group_id)

    def all_skus() -> list[dict[str, Any]]:
        with azure_errors(ctx, "listing the VM sizes offered in every region"):
            return [rest(sku) for sku in client.resource_skus.list()]

    return evaluate(
        spec, stack, skus, usages, existing, all_skus, subscription=ctx.subscription_id, reservations=held
    )


def read_reservations(client: Any, group_id: str) -> list[dict[str, Any]] | str:
    """The reservations of an existing capacity reservation group (CapacityReservations_ListByCapacity-
    ReservationGroup: each with `sku` {name, capacity} and `zones`), or why they cannot be read."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    from .azure import rest

    parts = group_id.strip("/").split("/")
    lowered = [part.lower() for part in parts]
    try:
        rg = parts[lowered.index("resourcegroups") + 1]
        name = parts[lowered.index("capacityreservationgroups") + 1]
    except (ValueError, IndexError):
        return "not a capacity reservation group id (AZC016 says what it should look like)"
    try:
        return [
            rest(item) for item in client.capacity_reservations.list_by_capacity_reservation_group(rg, name)
        ]
    except ResourceNotFoundError:
        return f"Azure has no capacity reservation group {name} in resource group {rg} for this subscription"
    except HttpResponseError as err:
        return f"Azure refused to list it ({getattr(err, 'status_code', '?')}: {err.reason or err.message})"


def existing_vcpus(client: Any, spec: ClusterSpec, skus: list[dict[str, Any]]) -> dict[str, int]:
    """vCPUs this cluster's scale sets already hold, by normalised quota family (and SPOT for Spot sets).

    Quota counts allocated and deallocated VMs alike, so the scale sets' capacity is what they hold.
    A resource group that does not exist yet holds nothing.
    """
    from azure.core.exceptions import ResourceNotFoundError

    from azcluster.components.tags import TAG_CLUSTER

    from .azure import rest

    held: dict[str, int] = {}
    try:
        sets = [rest(s) for s in client.virtual_machine_scale_sets.list(spec.resource_group_name)]
    except ResourceNotFoundError:
        return held
    for vmss in sets:
        tags = {key.lower(): value for key, value in (vmss.get("tags") or {}).items()}
        if tags.get(TAG_CLUSTER) != spec.name:
            continue
        size = (vmss.get("sku") or {}).get("name", "")
        capacity = int((vmss.get("sku") or {}).get("capacity") or 0)
        sku = find_sku(skus, size, spec.location)
        vcpus = _int(capability(sku, "vCPUs")) if sku else None
        gpu = catalog.find_size(size)
        vcpus = vcpus or (gpu.vcpus if gpu else 0)
        family = (sku or {}).get("family") or (gpu.quota_family if gpu else "")
        priority = ((vmss.get("properties") or {}).get("virtualMachineProfile") or {}).get("priority")
        key = SPOT if str(priority).lower() in ("spot", "low") else catalog.normalise_family(family)
        held[key] = held.get(key, 0) + capacity * vcpus
        if key != SPOT:
            held[REGIONAL] = held.get(REGIONAL, 0) + capacity * vcpus
    return held


# --- reading what Azure said -----------------------------------------------------------------------


def find_sku(skus: Iterable[dict[str, Any]], name: str, location: str) -> dict[str, Any] | None:
    for sku in skus:
        if sku.get("resourceType", "virtualMachines") != "virtualMachines":
            continue
        if str(sku.get("name", "")).lower() != name.lower():
            continue
        if location.lower() in [str(loc).lower() for loc in sku.get("locations") or []]:
            return sku
    return None


def capability(sku: dict[str, Any] | None, name: str) -> str | None:
    for cap in (sku or {}).get("capabilities") or []:
        if str(cap.get("name", "")).lower() == name.lower():
            return cap.get("value")
    return None


def location_restriction(sku: dict[str, Any], location: str) -> dict[str, Any] | None:
    """The `Location` restriction that stops this subscription using the size in `location`, if any."""
    for restriction in sku.get("restrictions") or []:
        if str(restriction.get("type", "")).lower() != "location":
            continue
        info = restriction.get("restrictionInfo") or {}
        places = [str(v).lower() for v in (restriction.get("values") or []) + (info.get("locations") or [])]
        if location.lower() in places:
            return restriction
    return None


def zones_offered(sku: dict[str, Any], location: str) -> tuple[list[str], list[str]]:
    """(zones the size is offered in, zones of those restricted for this subscription) in `location`."""
    offered: list[str] = []
    for info in sku.get("locationInfo") or []:
        if str(info.get("location", "")).lower() == location.lower():
            offered = sorted(str(z) for z in info.get("zones") or [])
    restricted: set[str] = set()
    for restriction in sku.get("restrictions") or []:
        if str(restriction.get("type", "")).lower() != "zone":
            continue
        info = restriction.get("restrictionInfo") or {}
        places = [str(v).lower() for v in (restriction.get("values") or []) + (info.get("locations") or [])]
        if location.lower() in places:
            restricted.update(str(z) for z in info.get("zones") or [])
    return offered, sorted(restricted)


def _truthy(value: str | None) -> bool | None:
    return None if value is None else str(value).strip().lower() == "true"


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


# --- evaluating ------------------------------------------------------------------------------------


@dataclass
class _Need:
    pool: str
    family: str
    vcpus: int
    spot: bool


def evaluate(
    spec: ClusterSpec,
    stack: str,
    skus: list[dict[str, Any]],
    usages: list[dict[str, Any]],
    existing: dict[str, int] | None = None,
    all_skus: Callable[[], list[dict[str, Any]]] | None = None,
    *,
    subscription: str = "",
    reservations: dict[str, Any] | None = None,
) -> PreflightResult:
    """Turn Azure's SKU list and usage list into per-pool checks, quota lines, blockers, alternatives.

    `reservations`: per pool with an existing capacity reservation group, its reservations as Azure lists
    them (or why they could not be read): see `reservation_check`."""
    location, zone = spec.location, cluster_zone(spec).zone  # the zone the components use
    reports: list[PoolReport] = []
    needs: list[_Need] = []
    blockers: list[Blocker] = []
    blocked_sizes: list[str] = []

    targets: list[tuple[str, str, str, int, bool]] = []
    for pool in spec.pools:
        # Islands built on a stand-in size (capacity.island_stand_ins) are checked as that size: offered
        # there, and counted against its own quota family.
        for size, nodes in built_sizes(pool):
            name = pool.name if size == pool.size else f"{pool.name} (stand-in)"
            targets.append((name, "compute", size, nodes, pool.spot))
    if spec.login.enabled:
        targets.append(("login", "login", spec.login.size, 1, False))

    pools = {pool.name: pool for pool in spec.pools}
    for name, role, size, nodes, spot in targets:
        report, need = _check_size(spec, name, role, size, nodes, spot, skus)
        pool = pools.get(name) if role == "compute" else None
        if pool is not None and pool.uses_reservation:
            need = reservation_check(spec, pool, report, need, (reservations or {}).get(name))
        reports.append(report)
        if need:
            needs.append(need)
        for check in report.checks:
            if not check.ok and check.blocking:
                blockers.append(
                    Blocker(name, check.name, f"{size}: {check.detail}", _size_hint(check, size, location))
                )
                if size not in blocked_sizes:
                    blocked_sizes.append(size)

    quota = _quota_lines(needs, usages, existing or {})
    by_pool_checks(reports, quota)
    for line in quota:
        if not line.ok:
            blockers.append(
                Blocker(
                    None, f"quota {line.name}", _quota_message(line, location), _quota_hint(line, location)
                )
            )
            for pool in line.pools:
                size = next((r.size for r in reports if r.pool == pool), None)
                if size and size not in blocked_sizes and line.kind != "regional":
                    blocked_sizes.append(size)

    scope = scope_in_another_subscription(spec, subscription)
    if scope is not None:
        blockers.append(scope)

    notes: list[str] = []
    alternatives: list[Alternative] = []
    if blockers and blocked_sizes and all_skus is not None:
        everywhere = all_skus()
        for size in blocked_sizes:
            alternatives.append(
                Alternative(size, _where_offered(everywhere, size, exclude=location, zone=zone))
            )
        notes.append(
            "alternatives list regions where the size is offered to this subscription without restriction; "
            "their quota is not checked here: point azure-native:location at one and run preflight again"
        )
    if existing:
        notes.append(
            "vCPUs this cluster's scale sets already hold are counted as in use and not needed again"
        )
    from .preflight_capacity import SkuFacts, policy_readiness

    def facts(size: str) -> SkuFacts:
        sku = find_sku(skus, size, location)
        if sku is None:
            return SkuFacts(False)
        zones, restricted = zones_offered(sku, location)
        return SkuFacts(
            True,
            location_restriction(sku, location) is not None,
            tuple(zones),
            tuple(restricted),
            str(sku.get("family") or "") or None,
            _int(capability(sku, "vCPUs")),
        )

    capacity_zones, stand_ins = policy_readiness(spec, facts, usages, zone)
    return PreflightResult(
        stack,
        location,
        zone,
        subscription,
        reports,
        quota,
        blockers,
        alternatives,
        notes,
        capacity_zones,
        stand_ins,
    )


def built_sizes(pool: Any) -> list[tuple[str, int]]:
    """(size, nodes) the pool's islands are built as: its own size first (all its nodes unless islands
    were switched to a stand-in), then each stand-in with the nodes of its islands."""
    from azcluster.components.capacity import island_counts, island_size_name

    counts: dict[str, int] = {pool.size: 0}
    for index, nodes in enumerate(island_counts(pool)):
        name = island_size_name(pool, index)
        key = pool.size if name.lower() == pool.size.lower() else name
        counts[key] = counts.get(key, 0) + nodes
    return list(counts.items())


def _check_size(
    spec: ClusterSpec, name: str, role: str, size: str, nodes: int, spot: bool, skus: list[dict[str, Any]]
) -> tuple[PoolReport, _Need | None]:
    location, zone = spec.location, cluster_zone(spec).zone  # the zone the components use
    gpu = catalog.find_size(size)
    general = catalog.general_sizes().get(size)
    report = PoolReport(name, role, size, nodes, spot)
    sku = find_sku(skus, size, location)
    if sku is None:
        offered = sorted(
            {
                str(s.get("name"))
                for s in skus
                if s.get("resourceType", "virtualMachines") == "virtualMachines"
            }
        )
        near = catalog.closest(size, offered)
        detail = f"not offered in {location}" + (
            f" (similar sizes offered: {', '.join(near)})" if near else ""
        )
        report.checks.append(Check("size offered", False, detail))
        return report, None
    report.checks.append(Check("size offered", True, f"offered in {location}"))

    restriction = location_restriction(sku, location)
    if restriction:
        reason = restriction.get("reasonCode") or "restricted"
        report.checks.append(
            Check("not restricted", False, f"restricted for this subscription in {location} ({reason})")
        )
    else:
        report.checks.append(Check("not restricted", True, f"available to this subscription in {location}"))

    offered_zones, restricted_zones = zones_offered(sku, location)
    usable = [z for z in offered_zones if z not in restricted_zones]
    if zone:
        if zone in usable:
            report.checks.append(Check("zone", True, f"offered in zone {zone}"))
        elif zone in restricted_zones:
            report.checks.append(
                Check(
                    "zone",
                    False,
                    f"restricted for this subscription in zone {zone}; usable zones: {_list(usable)}",
                )
            )
        else:
            report.checks.append(
                Check("zone", False, f"not offered in zone {zone}; usable zones: {_list(usable)}")
            )
    else:
        detail = "regional deployment (no zone requested)"
        if offered_zones:
            detail += f"; usable zones: {_list(usable)}"
            if restricted_zones:
                detail += f" (restricted: {_list(restricted_zones)})"
        report.checks.append(Check("zone", True, detail, blocking=False))

    azure_vcpus = _int(capability(sku, "vCPUs"))
    vcpus = azure_vcpus or (gpu.vcpus if gpu else general.vcpus if general else None)
    family = str(sku.get("family") or (gpu.quota_family if gpu else general.quota_family if general else ""))
    report.vcpus_per_node = vcpus
    report.quota_family = family or None

    if role == "compute":
        _capability_checks(report, sku, gpu, spot)
    if vcpus is None:
        report.checks.append(
            Check("vCPUs", False, "Azure does not say how many vCPUs the size has; quota not checked")
        )
        return report, None
    need = _Need(name, family, nodes * vcpus, spot) if nodes > 0 else None
    return report, need


def scope_in_another_subscription(spec: ClusterSpec, subscription: str) -> Blocker | None:
    """A hub's Azure Monitor Private Link Scope in another subscription than the deployment's: the
    cluster's data collection endpoint joins it as a scoped resource (`Microsoft.Insights/privateLinkScopes/
    scopedResources`, a child of the scope) that Pulumi creates with the stack's own provider, so in the
    stack's subscription, where the hub's resource group is not: `up` would fail half way."""
    mon = spec.monitoring
    given = (mon.existing_private_link_scope_id or "").strip()
    if not (mon.enabled and not mon.public_network_access and given and subscription):
        return None
    parts = given.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions" or parts[1].lower() == subscription.lower():
        return None  # a malformed id is AZC128's to report
    return Blocker(
        None,
        "monitoring private link scope",
        f"monitoring.existing_private_link_scope_id is in subscription {parts[1]}, and this deployment is in "
        f"{subscription}: azcluster adds the cluster's data collection endpoint to the scope from the "
        "deployment's subscription, so it cannot join a scope in another one",
        f"deploy the cluster in the scope's subscription (`--subscription {parts[1]}`); joining a scope in "
        "another subscription is not supported yet",
    )


RESERVATION_CREATE_SOURCE = "learn.microsoft.com/azure/virtual-machines/capacity-reservation-create"
RESERVATION_OVERALLOCATE_SOURCE = (
    "learn.microsoft.com/azure/virtual-machines/capacity-reservation-overallocate"
)


def reservation_check(
    spec: ClusterSpec,
    pool: Any,
    report: PoolReport,
    need: _Need | None,
    held: list[dict[str, Any]] | str | None,
) -> _Need | None:
    """The pool's capacity reservation against its nodes and its quota family.

    Azure's rules (capacity-reservation-create): a reservation needs vCPU quota for every VM it reserves,
    in the size's family and the region's total, and is created whole or not at all; VMs a scale set then
    allocates from it need no more quota. A group holds at most one reservation per size (and zone), and a
    zonal VM uses the reservation of its own zone. VMs beyond the reserved count are still allocated
    (overallocation) but without the reservation's capacity guarantee, and need quota of their own
    (capacity-reservation-overallocate).

    - `create: true`: azcluster reserves the pool's nodes: the family's quota must have room for all of
      them (the quota line counts them), and Azure must place them all at once.
    - an existing group: the reserved count of the pool's size, in the zone its scale set is built in,
      against the pool's nodes; only nodes beyond it count against the family's free quota.
    """
    from azcluster.components.capacity import island_zone

    built = island_zone(pool, 0, cluster_zone(spec).zone)
    where = f" in zone {built}" if built else " (regional)"
    per_node = report.vcpus_per_node or 0
    family = report.quota_family or "the size's family"
    if pool.reservation_group_id is None:
        report.checks.append(
            Check(
                "capacity reservation",
                True,
                f"azcluster creates a reservation of {pool.nodes} x {pool.size}{where}: it takes "
                f"{pool.nodes * per_node:,} vCPUs of {family} quota (in the quota lines) and Azure reserves "
                f"all {pool.nodes} or none ({RESERVATION_CREATE_SOURCE})",
                blocking=False,
            )
        )
        return need
    group = pool.reservation_group_id.rstrip("/").rsplit("/", 1)[-1]
    path = f"pools[{spec.pools.index(pool)}].{pool.reservation_path()}"
    if held is None or isinstance(held, str):
        report.checks.append(
            Check(
                "capacity reservation",
                False,
                f"capacity reservation group {group} ({path}): {held or 'not read'}",
            )
        )
        return need
    matching = [
        item
        for item in held
        if str((item.get("sku") or {}).get("name", "")).lower() == pool.size.lower()
        and (built is None and not item.get("zones") or built in [str(z) for z in item.get("zones") or []])
    ]
    reserved = sum(int((item.get("sku") or {}).get("capacity") or 0) for item in matching)
    sizes = sorted(
        {
            f"{(i.get('sku') or {}).get('name')} x {(i.get('sku') or {}).get('capacity')}"
            + (f" zone {','.join(i.get('zones') or [])}" if i.get("zones") else "")
            for i in held
        }
    )
    holds = f"it holds {', '.join(sizes)}" if sizes else "it holds no reservation"
    if not matching:
        report.checks.append(
            Check(
                "capacity reservation",
                False,
                f"capacity reservation group {group} ({path}) reserves no {pool.size}{where}; {holds}",
                needed=pool.nodes,
                limit=0,
            )
        )
        return need
    covered = min(reserved, pool.nodes)
    if reserved >= pool.nodes:
        detail = (
            f"group {group} reserves {reserved} x {pool.size}{where} for the pool's {pool.nodes} nodes; they "
            f"need no more {family} quota ({RESERVATION_CREATE_SOURCE})"
        )
        report.checks.append(Check("capacity reservation", True, detail, needed=pool.nodes, limit=reserved))
    else:
        name = str(matching[0].get("name") or "<reservation>")
        parts = pool.reservation_group_id.strip("/").split("/")
        rg = parts[3] if len(parts) > 3 else "<resource group>"
        short = (pool.nodes - reserved) * per_node
        detail = (
            f"group {group} reserves {reserved} x {pool.size}{where}, the pool has {pool.nodes} nodes: "
            f"{pool.nodes - reserved} are allocated beyond the reservation without its capacity guarantee "
            f"and need {short:,} vCPUs of {family} quota ({RESERVATION_OVERALLOCATE_SOURCE}); to reserve "
            f"them all: `Update-AzCapacityReservation -ResourceGroupName {rg} -ReservationGroupName {group} "
            f"-Name {name} -CapacityToReserve {pool.nodes}` (Azure PowerShell), which needs {short:,} more "
            f"free {family} vCPUs"
        )
        report.checks.append(
            Check("capacity reservation", False, detail, needed=pool.nodes, limit=reserved, blocking=False)
        )
    if need is not None and per_node:
        need = _Need(need.pool, need.family, max(0, need.vcpus - covered * per_node), need.spot)
    return need


def _capability_checks(
    report: PoolReport, sku: dict[str, Any], gpu: catalog.GpuSize | None, spot: bool
) -> None:
    azure_vcpus = _int(capability(sku, "vCPUs"))
    if gpu is not None and azure_vcpus is not None:
        same = azure_vcpus == gpu.vcpus
        detail = f"{azure_vcpus} vCPUs" + (
            "" if same else f"; the catalogue says {gpu.vcpus} (quota uses Azure's figure)"
        )
        report.checks.append(Check("vCPUs", same, detail, blocking=False))
    gpus = _int(capability(sku, "GPUs"))
    if gpu is not None:
        same = gpus == gpu.gpus
        detail = f"{gpus} GPUs" if gpus is not None else "Azure does not list GPUs for this size"
        if not same:
            detail += f"; the catalogue says {gpu.gpus}"
        report.checks.append(Check("GPUs", same, detail, blocking=False))
    if gpu is not None and gpu.has_infiniband:
        rdma = _truthy(capability(sku, "RdmaEnabled"))
        report.checks.append(
            Check(
                "InfiniBand (RdmaEnabled)",
                bool(rdma),
                "RDMA over InfiniBand available"
                if rdma
                else "Azure does not offer RDMA for this size here; nodes would have no InfiniBand fabric",
            )
        )
    accel = _truthy(capability(sku, "AcceleratedNetworkingEnabled"))
    report.checks.append(
        Check(
            "accelerated networking",
            accel is not False,
            "supported"
            if accel
            else "not listed"
            if accel is None
            else "not supported; scale sets ask for it",
            blocking=accel is False,
        )
    )
    if spot:
        capable = _truthy(capability(sku, "LowPriorityCapable"))
        report.checks.append(
            Check(
                "spot capable",
                capable is not False,
                "Spot allowed" if capable is not False else "Spot not offered for this size",
            )
        )


def _quota_lines(
    needs: list[_Need], usages: list[dict[str, Any]], existing: dict[str, int]
) -> list[QuotaLine]:
    by_name = {catalog.normalise_family(str((u.get("name") or {}).get("value", ""))): u for u in usages}
    lines: dict[str, QuotaLine] = {}

    def line_for(key: str, kind: str, display: str) -> QuotaLine:
        if key not in lines:
            usage = by_name.get(key)
            name = str((usage.get("name") or {}).get("value")) if usage else display
            limit = _int(str(usage.get("limit"))) if usage else None
            in_use = _int(str(usage.get("currentValue"))) if usage else None
            lines[key] = QuotaLine(name, kind, 0, 0, 0, limit, in_use)
        return lines[key]

    for need in needs:
        if need.spot:
            targets = [line_for(catalog.normalise_family(SPOT), "spot", SPOT)]
        else:
            targets = [
                line_for(catalog.normalise_family(need.family), "family", need.family),
                line_for(catalog.normalise_family(REGIONAL), "regional", REGIONAL),
            ]
        for line in targets:
            line.planned += need.vcpus
            if need.pool not in line.pools:
                line.pools.append(need.pool)
    for key, line in lines.items():
        held = existing.get(SPOT if line.kind == "spot" else key, 0)
        line.existing = min(held, line.planned)
        line.needed = max(0, line.planned - line.existing)
    order = {"family": 0, "regional": 1, "spot": 2}
    return sorted(lines.values(), key=lambda line: (order[line.kind], line.name.lower()))


def by_pool_checks(reports: list[PoolReport], quota: list[QuotaLine]) -> None:
    """Give each pool a check per quota it draws on, with that quota's figures."""
    for report in reports:
        for line in quota:
            if report.pool not in line.pools:
                continue
            if line.limit is None:
                detail = f"Azure lists no {line.label()} quota in this region"
            else:
                detail = f"{line.label()}: need {line.needed}, {line.available} of {line.limit} free"
                if line.existing:
                    detail += f" ({line.existing} already held by this cluster)"
            report.checks.append(
                Check(
                    f"quota {line.name}",
                    line.ok,
                    detail,
                    needed=line.needed,
                    limit=line.limit,
                    in_use=line.in_use,
                )
            )


def _where_offered(
    skus: list[dict[str, Any]], size: str, *, exclude: str, zone: str | None
) -> list[dict[str, Any]]:
    places: dict[str, list[str]] = {}
    for sku in skus:
        if sku.get("resourceType", "virtualMachines") != "virtualMachines":
            continue
        if str(sku.get("name", "")).lower() != size.lower():
            continue
        for loc in sku.get("locations") or []:
            location = str(loc).lower()
            if location == exclude.lower() or location_restriction(sku, location):
                continue
            offered, restricted = zones_offered(sku, location)
            places[location] = [z for z in offered if z not in restricted]
    found = [{"location": loc, "zones": zones} for loc, zones in sorted(places.items())]
    if zone:  # regions that also offer the requested zone first
        found.sort(key=lambda item: zone not in item["zones"])
    return found


def _list(values: list[str]) -> str:
    return ", ".join(values) if values else "none"


def _size_hint(check: Check, size: str, location: str) -> str:
    if check.name == "size offered":
        return (
            f"pick a size offered in {location} (`azcluster skus`), or a region where {size} is offered "
            "(see alternatives)"
        )
    if check.name == "not restricted":
        if "QuotaId" in check.detail:
            return (
                f"this subscription's offer type cannot use {size}; use another subscription (e.g. "
                "pay-as-you-go or an enterprise agreement) or another region (see alternatives)"
            )
        return (
            f"ask Azure support to enable {size} in {location} for this subscription (a support request "
            "of type 'Service and subscription limits (quotas)'), or use a region from the alternatives"
        )
    if check.name == "zone":
        return "set `zone:` to a usable zone, or leave it out for a regional deployment"
    if check.name == "InfiniBand (RdmaEnabled)":
        return "use an InfiniBand size (`azcluster skus`) or another region; check the catalogue is current"
    if check.name == "accelerated networking":
        return "use a size that supports accelerated networking"
    if check.name == "spot capable":
        return "set `spot: false` for this pool, or use a size that Azure offers as Spot"
    return ""


def _quota_message(line: QuotaLine, location: str) -> str:
    if line.limit is None:
        return f"{line.label()}: Azure lists no quota in {location}; {line.needed} vCPUs are needed"
    return (
        f"{line.label()} in {location}: need {line.needed} more, {line.available} of {line.limit} free "
        f"({line.in_use} in use)"
    )


def _quota_hint(line: QuotaLine, location: str) -> str:
    new_limit = line.request_limit
    if line.kind == "spot":
        what = "the regional Spot vCPU quota (lowPriorityCores)"
    elif line.kind == "regional":
        what = "the Total Regional vCPUs quota (cores)"
    else:
        what = f"the {line.name} vCPU quota"
    return (
        f"request {what} in {location} be raised from {line.limit if line.limit is not None else 0} to "
        f"{new_limit} (Azure portal: Quotas > Compute, or `az quota update`), or shrink the pool"
    )


# --- showing ---------------------------------------------------------------------------------------


def print_report(result: PreflightResult) -> None:
    """The human report: a table per pool, the quota, the blockers with what to do, the alternatives."""
    from rich.table import Table

    from .render import console, markup, stdout

    where = result.location + (f" zone {result.zone}" if result.zone else "")
    for pool in result.pools:
        table = Table(
            title=f"{pool.role} {pool.pool}: {pool.nodes} x {pool.size}" + (" (spot)" if pool.spot else "")
        )
        table.add_column("check")
        table.add_column("")
        table.add_column("detail")
        for check in pool.checks:
            mark = markup(
                "[green]ok[/]" if check.ok else ("[bold red]no[/]" if check.blocking else "[yellow]warn[/]")
            )
            table.add_row(check.name, mark, check.detail)
        stdout.print(table)
    if result.quota:
        table = Table(title=f"vCPU quota in {result.location}")
        for column in ("quota", "needed", "free", "limit", "in use", ""):
            table.add_column(column, justify="left" if column in ("quota", "") else "right")
        for line in result.quota:
            free = "?" if line.available is None else str(line.available)
            table.add_row(
                line.label(),
                str(line.needed),
                free,
                "?" if line.limit is None else str(line.limit),
                "?" if line.in_use is None else str(line.in_use),
                markup("[green]ok[/]")
                if line.ok
                else markup("[bold red]short[/] ask for {}", line.request_limit),
            )
        stdout.print(table)
    for alt in result.alternatives:
        places = ", ".join(
            f"{item['location']}" + (f" (zones {', '.join(item['zones'])})" if item["zones"] else "")
            for item in alt.locations
        )
        stdout.print(f"{alt.size} is also offered to this subscription in: {places or 'no other region'}")
    if result.capacity_zones or result.stand_ins:
        from .preflight_capacity import print_readiness

        print_readiness(result.capacity_zones, result.stand_ins)
    for note in result.notes:
        console.print(markup("[dim]note: {}[/]", note))
    if result.ok:
        console.print(markup("[green]preflight ok:[/] {} fits in {}", result.stack, where))
    else:
        console.print(markup("[bold red]preflight blocked:[/] {} will not deploy in {}", result.stack, where))
        for blocker in result.blockers:
            console.print(
                markup(
                    "  [bold red]-[/] {}{}", (blocker.pool + ": ") if blocker.pool else "", blocker.message
                )
            )
            if blocker.hint:
                console.print(markup("    [dim]hint:[/] {}", blocker.hint))
