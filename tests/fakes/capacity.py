"""The ARM fake's capacity model: per zone and size, how many more VMs Azure can place, and how it says no.

Azure gives a scale set the VMs it can place and reports the others as failed; it never tells in advance
how many it has. What the fake reproduces, and where each shape comes from:

- A scale-out (`PATCH .../virtualMachineScaleSets/{name}` with a larger `sku.capacity`, or a create) that
  Azure can only partly place ends its long-running operation `Failed` with the allocation error, and the
  scale set then holds both kinds of instance: placed ones with `provisioningState: Succeeded` and
  `PowerState/running`, the rest with `provisioningState: Failed` and an instance-view status
  `ProvisioningState/failed/<code>` (level `Error`, displayStatus `Provisioning failed`, Azure's message),
  `sku.capacity` still counting them all. The status code follows the instance view's convention
  `ProvisioningState/<state>[/<error code>]` (InstanceViewStatus, Compute REST API), in the form Azure
  drivers read for allocation failures (yunionio/cloudpods pkg/multicloud/azure instance.go GetError:
  `ProvisioningState/failed/AllocationFailed`). Which power status Azure adds for a VM that never got a
  host is not confirmed, so the fake gives a failed instance none.
- Deleting instances (`POST .../delete` with `instanceIds`, VirtualMachineScaleSets_DeleteInstances) removes
  them and lowers `sku.capacity`; what they held is free again.
- The error codes and messages: Microsoft's allocation-failure troubleshooting
  (learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/allocation-failure: AllocationFailed,
  ZonalAllocationFailed "in this zone", OverconstrainedAllocationRequest, OverconstrainedZonalAllocation-
  Request) and error-sku-not-available (SkuNotAvailable: "The requested size for resource ... is currently
  not available in location ... zones ... for subscription ...").
  `ZonalAllocationFailed` and `SkuNotAvailable` refuse a zone as a whole: nothing is placed there.
- Throttling while retrying: `FakeArm.inject(..., 429, headers={"Retry-After": ...})` as before.

Unlimited unless a test says otherwise, so suites that never think about capacity are unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALLOCATION_MESSAGES = {
    "AllocationFailed": (
        "Allocation failed. We do not have sufficient capacity for the requested VM size in this region. "
        "Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance"
    ),
    "ZonalAllocationFailed": (
        "Allocation failed. We do not have sufficient capacity for the requested VM size in this zone. "
        "Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance"
    ),
    "OverconstrainedAllocationRequest": (
        "Allocation failed. VM(s) with the following constraints cannot be allocated, because the condition "
        "is too restrictive. Please remove some constraints and try again. Constraints applied are: "
        "Networking Constraints (such as Accelerated Networking or IPv6), VM Size"
    ),
    "OverconstrainedZonalAllocationRequest": (
        "Allocation failed. VM(s) with the following constraints cannot be allocated, because the condition "
        "is too restrictive. Please remove some constraints and try again. Constraints applied are: "
        "Availability Zone, Networking Constraints (such as Accelerated Networking or IPv6), VM Size"
    ),
}

ZONE_REFUSALS = frozenset(
    {"ZonalAllocationFailed", "SkuNotAvailable", "OverconstrainedZonalAllocationRequest"}
)
"""Codes with which Azure refuses a whole zone (or the size there): nothing is placed."""


def sku_not_available_message(resource: str, size: str, location: str, zone: str | None, sub: str) -> str:
    return (
        f"The requested size for resource '{resource}' is currently not available in location "
        f"'{location}' zones '{zone or ''}' for subscription '{sub}'. Please try another size or deploy to "
        "a different location or zones. See https://aka.ms/azureskunotavailable for details."
    )


@dataclass
class Pool:
    """What Azure can still place of one size in one zone (None: regional)."""

    free: int | None = None
    """VMs it can still place; None: as many as asked."""
    code: str = "AllocationFailed"
    """The error a shortfall ends with."""
    refused: bool = False
    """Nothing is placed at all (ZonalAllocationFailed for this zone only, SkuNotAvailable)."""


@dataclass
class CapacityModel:
    """Per (size, zone): how many instances Azure can place and with which error it says no."""

    pools: dict[tuple[str, str | None], Pool] = field(default_factory=dict)
    asked: list[tuple[str, str | None, int, int]] = field(default_factory=list)
    """Every placement asked of the model: (size, zone, wanted, placed), in order."""

    def _pool(self, size: str, zone: str | None) -> Pool:
        return self.pools.setdefault((size.lower(), zone), Pool())

    def limit(self, size: str, zone: str | None, free: int, code: str = "AllocationFailed") -> None:
        """Azure can place `free` more VMs of `size` in `zone`; more than that fails with `code`."""
        pool = self._pool(size, zone)
        pool.free, pool.code, pool.refused = free, code, False

    def refuse(self, size: str, zone: str | None, code: str = "ZonalAllocationFailed") -> None:
        """Nothing of `size` can be placed in `zone`: every try there fails with `code`."""
        pool = self._pool(size, zone)
        pool.free, pool.code, pool.refused = 0, code, True

    def add(self, size: str, zone: str | None, count: int) -> None:
        """Capacity appears (another tenant let go of it): `count` more can be placed."""
        pool = self._pool(size, zone)
        pool.refused = False
        if pool.free is not None:
            pool.free += count

    def release(self, size: str, zone: str | None, count: int) -> None:
        """Deleted instances give their hosts back."""
        pool = self.pools.get((size.lower(), zone))
        if pool is not None and pool.free is not None and not pool.refused:
            pool.free += count

    def place(self, size: str, zone: str | None, wanted: int) -> tuple[int, str | None]:
        """How many of `wanted` VMs are placed now, and the error code for the rest (None: all placed)."""
        pool = self._pool(size, zone)
        if pool.refused:
            placed = 0
        elif pool.free is None:
            placed = wanted
        else:
            placed = min(wanted, pool.free)
            pool.free -= placed
        self.asked.append((size, zone, wanted, placed))
        return placed, (None if placed == wanted else pool.code)


def allocation_message(
    code: str, *, resource: str, size: str, location: str, zone: str | None, sub: str
) -> str:
    """Azure's sentence for an allocation error code."""
    if code == "SkuNotAvailable":
        return sku_not_available_message(resource, size, location, zone, sub)
    return ALLOCATION_MESSAGES.get(code, f"Allocation failed ({code}).")
