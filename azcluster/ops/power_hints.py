"""What to do about one island's failed stop/start, in the island's own words (size, zone, island)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from azcluster.components.spec import ClusterSpec

from .. import remedies
from .model import ScaleSet


def failure_hint(code: str, message: str, action: str, spec: ClusterSpec, stack: str, found: ScaleSet) -> str:
    """What to do about one island's failed stop/start.

    What the code means comes from remedies.py, the one table `up` uses too; this adds only what the
    island says: its size, zone and placement group, and that a re-run retries just the islands that
    failed. A code remedies knows but gives no kind we word here gets its generic advice.
    """
    remedy = remedies.remedy_for("TooManyRequests" if code == "HTTP 429" else code, message)
    if remedy is None:
        return (
            f"see the activity log of scale set {found.name}; running the command again retries this island"
        )
    wording = _ISLAND_WORDING.get(remedy.kind)
    if wording is not None:
        return wording(_IslandFailure(spec, stack, found, action))
    return f"{remedy.what.rstrip('.')}: {remedy.for_stack(stack, action)}"


@dataclass(frozen=True)
class _IslandFailure:
    """Where an island's stop/start failed, in the words its hint needs."""

    spec: ClusterSpec
    stack: str
    found: ScaleSet
    action: str

    @property
    def size(self) -> str:
        return str((self.found.body.get("sku") or {}).get("name") or "this size")

    @property
    def where(self) -> str:
        return self.spec.location + (f" zone {self.spec.zone}" if self.spec.zone else "")

    @property
    def island(self) -> str:
        return f"{self.found.pool}/{self.found.island}"


def _capacity(f: _IslandFailure) -> str:
    return (
        f"Azure has no capacity for {f.size} in {f.where} right now. Island {f.island} is one placement "
        f"group and is allocated as a whole: retry later with `azcluster start {f.stack}` (islands already "
        "running are left as they are), or allocate from a capacity reservation "
        "(pools[].capacity.reservation, for sizes Azure reserves), or move the pool to another zone or "
        "region "
        f"(`azcluster preflight {f.stack}` lists where {f.size} is offered)"
    )


def _constraints(f: _IslandFailure) -> str:
    zone = f"zone {f.spec.zone}, " if f.spec.zone else ""
    return (
        f"Azure cannot meet all the constraints on island {f.island} at once (size {f.size}, {zone}"
        "single placement group). Retry later, or relax one: drop `zone:`, or use a capacity reservation"
    )


def _quota(f: _IslandFailure) -> str:
    return (
        f"the vCPU quota for {f.size} in {f.spec.location} is exhausted; `azcluster preflight {f.stack}` "
        "gives the exact increase to request"
    )


def _restricted(f: _IslandFailure) -> str:
    return (
        f"{f.size} is restricted for this subscription in {f.where}; `azcluster preflight {f.stack}` lists "
        "where it is offered, or ask Azure support to enable it"
    )


def _throttled(_f: _IslandFailure) -> str:
    return "Azure Resource Manager is throttling the subscription; wait a minute and run it again"


def _not_found(f: _IslandFailure) -> str:
    return f"scale set {f.found.name} disappeared while {f.action} ran; run `azcluster status {f.stack}`"


def _permission(f: _IslandFailure) -> str:
    verb = {"stop": "deallocate", "start": "start"}.get(f.action, f.action)
    return (
        f"the signed-in identity needs Virtual Machine Contributor (or Contributor) on resource group "
        f"{f.spec.resource_group_name} to {verb} its scale sets"
    )


_ISLAND_WORDING: dict[str, Callable[[_IslandFailure], str]] = {
    remedies.CAPACITY: _capacity,
    remedies.CONSTRAINTS: _constraints,
    remedies.QUOTA: _quota,
    remedies.RESTRICTED: _restricted,
    remedies.THROTTLED: _throttled,
    remedies.NOT_FOUND: _not_found,
    remedies.PERMISSION: _permission,
}
"""Hints for a failed island, by remedies' kind: a new code of a known kind is worded here at once."""
