"""What `preflight` says about each pool's capacity policy: whether the zones it may move to offer the size,
and whether each stand-in size is offered and has quota for a whole island, with its price.

A stand-in is used only when the policy allows it and only when its cost and quota are known first: its
own vCPU quota family must have room for the largest island, and it must be offered (not restricted) in
the region and zone. None of this blocks `up` (the pool's own size is what `up` asks for); it tells the
user, before capacity runs short, which fallbacks would actually work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azcluster.components import catalog
from azcluster.components.capacity import capacity_plan
from azcluster.components.spec import ClusterSpec


@dataclass
class StandInReadiness:
    pool: str
    size: str
    offered: bool
    detail: str
    quota_family: str | None = None
    island_vcpus: int | None = None
    free_vcpus: int | None = None
    usd_per_hour: float | None = None

    @property
    def ok(self) -> bool:
        return (
            self.offered
            and self.free_vcpus is not None
            and self.island_vcpus is not None
            and (self.free_vcpus >= self.island_vcpus)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "size": self.size,
            "ok": self.ok,
            "offered": self.offered,
            "detail": self.detail,
            "quota_family": self.quota_family,
            "island_vcpus": self.island_vcpus,
            "free_vcpus": self.free_vcpus,
            "usd_per_hour": self.usd_per_hour,
        }


@dataclass
class PoolZones:
    pool: str
    size: str
    zones: dict[str, str] = field(default_factory=dict)
    """Each zone the policy lists -> `offered`, `restricted` or `not offered` for the pool's size."""

    def to_json(self) -> dict[str, Any]:
        return {"pool": self.pool, "size": self.size, "zones": self.zones}


def _free(usages: list[dict[str, Any]], family: str) -> int | None:
    wanted = catalog.normalise_family(family)
    for usage in usages:
        if catalog.normalise_family(str((usage.get("name") or {}).get("value", ""))) == wanted:
            try:
                return int(usage.get("limit")) - int(usage.get("currentValue"))
            except (TypeError, ValueError):
                return None
    return None


@dataclass(frozen=True)
class SkuFacts:
    """What Azure's SKU list says about one size in the region (preflight reads it; this module only
    judges it, so it never imports preflight back)."""

    listed: bool
    restricted: bool = False
    zones: tuple[str, ...] = ()
    restricted_zones: tuple[str, ...] = ()
    family: str | None = None
    vcpus: int | None = None


def policy_readiness(
    spec: ClusterSpec, facts: Callable[[str], SkuFacts], usages: list[dict[str, Any]], zone: str | None
) -> tuple[list[PoolZones], list[StandInReadiness]]:
    """Zones each policy lists for the pool's size, and each stand-in's offer and quota (see docstring)."""
    location = spec.location
    zone_reports: list[PoolZones] = []
    stand_ins: list[StandInReadiness] = []
    for pool, policy in zip(spec.pools, capacity_plan(spec), strict=True):
        if pool.capacity.zones:
            own = facts(pool.size)
            zone_reports.append(
                PoolZones(
                    pool.name,
                    pool.size,
                    {
                        z: "restricted"
                        if z in own.restricted_zones
                        else "offered"
                        if z in own.zones
                        else "not offered"
                        for z in pool.capacity.zones
                    },
                )
            )
        largest = max(policy.islands, default=0)
        for choice in policy.sizes[1:]:
            sku = facts(choice.name)
            readiness = StandInReadiness(
                pool.name, choice.name, False, "", choice.quota_family, usd_per_hour=choice.usd_per_hour
            )
            if not sku.listed:
                readiness.detail = f"not offered in {location}"
            elif sku.restricted:
                readiness.detail = f"restricted for this subscription in {location}"
            else:
                if zone and (zone in sku.restricted_zones or (sku.zones and zone not in sku.zones)):
                    readiness.detail = f"not usable in zone {zone}"
                else:
                    readiness.offered = True
                    readiness.detail = f"offered in {location}" + (f" zone {zone}" if zone else "")
                family = sku.family or choice.quota_family or ""
                readiness.quota_family = family or None
                per_node = sku.vcpus or choice.vcpus
                readiness.island_vcpus = largest * per_node if per_node else None
                readiness.free_vcpus = _free(usages, family) if family else None
            stand_ins.append(readiness)
    return zone_reports, stand_ins


def print_readiness(zones: list[PoolZones], stand_ins: list[StandInReadiness]) -> None:
    from .render import console, markup

    for report in zones:
        listed = ", ".join(f"{z}: {state}" for z, state in report.zones.items())
        console.print(
            markup("pool {}: zones to try for {}: {}", report.pool, report.size, listed), soft_wrap=True
        )
    for item in stand_ins:
        mark = "[green]ready[/]" if item.ok else "[yellow]not ready[/]"
        quota = (
            f"quota {item.quota_family}: {item.free_vcpus:,} vCPUs free, {item.island_vcpus:,} per island"
            if item.free_vcpus is not None and item.island_vcpus is not None
            else "quota not known"
        )
        price = f"${item.usd_per_hour:,.2f}/h per node" if item.usd_per_hour is not None else "no price"
        console.print(
            markup(
                "pool {}: stand-in {} " + mark + ": {}; {}; {}",
                item.pool,
                item.size,
                item.detail,
                quota,
                price,
            ),
            soft_wrap=True,
        )
