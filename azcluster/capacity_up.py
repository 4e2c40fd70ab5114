"""`up`'s last word on capacity: keep what Azure placed, move empty islands whole to the next zone, and
with `--wait-for-capacity` keep trying with back-off until the deadline.

Pulumi creates each island asking for all of it (components/gpu_pool.py). When Azure places only part,
pulumi-azure-native records the scale set as created with an error (a partially created resource,
pulumi/pulumi-azure-native#1015 and #1066) and `up` reports an allocation failure for it. Here that is not
the end: every island goes through `ops/grow.py` (failed instances removed, the gap asked for, fragments
below the pool's minimum released), and then, round after round until the deadline:

- an island with nothing placed whose zone said no moves whole to the next zone its pool's
  `capacity.zones` allows: the zone is recorded in the stack file (`capacity.island_zones`,
  placement_file.py) and Pulumi runs again, replacing only that scale set (it is empty, so nothing is
  lost); an island is never split across zones, since one placement group lives in one zone;
- any island still short waits (30 s, doubling, at most 10 min) and asks again.

Every round leaves a consistent stack: the stack file says where each island is, Pulumi's state has the
scale sets it built (their count is ignored, so a `refresh` shows no drift), and each scale set holds only
placed instances. Ctrl-C while waiting ends the wait with the document so far; during a Pulumi run it is
passed to Pulumi as for any `up` (interrupts.py).

Stand-in sizes: once every zone the pool allows said no to an empty island's own size, the island is
built whole as the first stand-in its pool lists (`capacity.stand_in_sizes`), trying its zones in order,
but only after Azure's answers say the stand-in can be used there: offered to this subscription in the
region and zone (Resource SKUs) and vCPU quota for the whole island free in its own family (Usages), as
`preflight` checks them. A stand-in that fails either is skipped with the reason. The switch is recorded
in the stack file (`capacity.island_stand_ins`) and Pulumi runs again: the island's scale set is replaced
by one of the stand-in size (sku, default image, disk controller), its nodes boot with the stand-in's
preparation, and Slurm's node records and gres.conf for that island declare the stand-in's CPUs, memory
and GPUs (components/bootstrap/slurm.py), so Slurm sees exactly the hardware that exists. Each move says
the stand-in's price per node-hour and its quota family.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azcluster.components.capacity import PoolCapacity, capacity_plan
from azcluster.components.spec import ClusterSpec

from . import remedies
from .ops.grow import FIRST_RETRY_S, MAX_RETRY_S, Clock, GrowReport, IslandGrowth, grow_cluster

if TYPE_CHECKING:  # pragma: no cover
    from .azure import AzureContext
    from .engine import UpdateFailed

CAPACITY_KINDS = frozenset({remedies.CAPACITY, remedies.CONSTRAINTS, remedies.RESTRICTED})
SCALE_SET_TYPE = "azure-native:compute:VirtualMachineScaleSet"


def capacity_only(err: UpdateFailed) -> bool:
    """Whether every failure of an update is Azure placing no or too few VMs in a scale set: the kind of
    failure the capacity step answers (anything else is `up`'s to report as before)."""
    if not err.failures:
        return False
    for failure in err.failures:
        remedy = failure.remedy or remedies.remedy_for(failure.code, failure.message)
        if failure.type != SCALE_SET_TYPE or remedy is None or remedy.kind not in CAPACITY_KINDS:
            return False
    return True


@dataclass
class Move:
    """An empty island rebuilt whole elsewhere: another zone, another (stand-in) size, or both."""

    pool: str
    island: int
    from_zone: str | None
    to_zone: str | None
    code: str | None
    from_size: str | None = None
    to_size: str | None = None
    stand_in: bool = False
    usd_per_node_hour: float | None = None
    quota_family: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "from_zone": self.from_zone,
            "to_zone": self.to_zone,
            "because": self.code,
            "from_size": self.from_size,
            "to_size": self.to_size,
            "stand_in": self.stand_in,
            "usd_per_node_hour": self.usd_per_node_hour,
            "quota_family": self.quota_family,
        }

    def text(self) -> str:
        """What a person reads: `moving it whole to zone 3`, or `building it whole as stand-in X in zone 1
        ($y/h per node, quota Z)`."""
        where = f"zone {self.to_zone}" if self.to_zone else "the region"
        if self.to_size and self.from_size and self.to_size.lower() != self.from_size.lower():
            price = f"${self.usd_per_node_hour:,.2f}/h per node" if self.usd_per_node_hour else "no price"
            role = "stand-in " if self.stand_in else ""
            return (
                f"building it whole as {role}{self.to_size} in {where} ({price}, quota {self.quota_family})"
            )
        return f"moving it whole to {where}"


@dataclass
class Skipped:
    """A placement not tried because Azure's answers say it cannot work (not offered, no quota)."""

    pool: str
    island: int
    size: str
    zone: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "size": self.size,
            "zone": self.zone,
            "reason": self.reason,
        }


Readiness = Callable[[str, str | None, int], str | None]
"""(size, zone, nodes) -> None when the size can be used there for that many nodes, else why not."""


@dataclass
class CapacityResult:
    """What the capacity step ended with: the last grow report, the moves made, the rounds tried."""

    report: GrowReport
    wait_seconds: float
    rounds: int = 0
    moves: list[Move] = field(default_factory=list)
    interrupted: bool = False
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report.ok

    def to_json(self) -> dict[str, Any]:
        return {
            **self.report.to_json(),
            "wait_seconds": self.wait_seconds,
            "rounds": self.rounds,
            "moved": [move.to_json() for move in self.moves],
            "skipped": [item.to_json() for item in self.skipped],
            "interrupted": self.interrupted,
        }


def next_zones(
    spec: ClusterSpec,
    report: GrowReport,
    tried: dict[tuple[str, int], set[tuple[str, str | None]]],
    ready: Readiness | None = None,
    skipped: list[Skipped] | None = None,
) -> list[Move]:
    """Islands with nothing placed, and where to build each next: the pool's own size in each zone its
    policy lists, then each stand-in size in each zone, the first not tried yet in this run. A stand-in
    is only chosen when `ready` says it is offered there with quota for the whole island (no `ready`:
    stand-ins are not tried); one that is not is noted in `skipped` and passed over."""
    policies = {policy.pool: policy for policy in capacity_plan(spec)}
    moves = []
    for growth in report.islands:
        if growth.missing_scale_set or growth.obtained or growth.kept:
            continue
        policy = policies.get(growth.pool)
        if policy is None:
            continue
        move = _next_place(
            growth, policy, tried.setdefault((growth.pool, growth.island), set()), ready, skipped
        )
        if move is not None:
            moves.append(move)
    return moves


def _next_place(
    growth: IslandGrowth,
    policy: PoolCapacity,
    seen: set[tuple[str, str | None]],
    ready: Readiness | None,
    skipped: list[Skipped] | None,
) -> Move | None:
    """The island's first (size, zone) of its policy not in `seen` that can be used (marking each one
    looked at); another size than the island's own only when `ready` says so."""
    current = growth.size or policy.island_size(growth.island).name
    seen.add((current.lower(), growth.zone))
    zones = [zone for zone in policy.zones if zone is not None] or [None]
    for choice in policy.sizes:
        for zone in zones:
            if (choice.name.lower(), zone) in seen:
                continue
            seen.add((choice.name.lower(), zone))
            if choice.stand_in or choice.name.lower() != current.lower():
                if ready is None:
                    continue
                reason = ready(choice.name, zone, growth.requested)
                if reason is not None:
                    if skipped is not None:
                        skipped.append(Skipped(growth.pool, growth.island, choice.name, zone, reason))
                    continue
            return Move(
                growth.pool,
                growth.island,
                growth.zone,
                zone,
                growth.code,
                current,
                choice.name,
                choice.stand_in,
                choice.usd_per_hour,
                choice.quota_family,
            )
    return None


def azure_readiness(spec: ClusterSpec, ctx: AzureContext) -> Readiness:
    """Whether a size can be used in a zone for a whole island, from Azure's own answers: the size is
    offered to this subscription in the region and zone (Resource SKUs: not listed, a Location or Zone
    restriction), and its vCPU quota family has room for the island (Usages: limit - currentValue), as
    preflight judges them (preflight.py, preflight_capacity.py). The quota is read afresh each time (it
    changes while azcluster waits, e.g. when a raise is granted); the region's SKU list, megabytes long
    and about what is offered to the subscription rather than what is free now, once per command, not
    once per island, size and zone asked about."""
    from .azure import azure_errors, compute_client, rest

    location = spec.location
    client = compute_client(ctx)

    @functools.cache
    def region_skus() -> list[dict[str, Any]]:
        with azure_errors(ctx, f"listing the VM sizes offered in {location}"):
            return [rest(sku) for sku in client.resource_skus.list(filter=f"location eq '{location}'")]

    def ready(size: str, zone: str | None, nodes: int) -> str | None:
        from azcluster.components import catalog

        from .preflight import capability, find_sku, location_restriction, zones_offered
        from .preflight_capacity import _free

        sku = find_sku(region_skus(), size, location)
        if sku is None:
            return f"{size} is not offered in {location}"
        if location_restriction(sku, location) is not None:
            return f"{size} is restricted for this subscription in {location}"
        offered, restricted = zones_offered(sku, location)
        if zone is not None and (zone in restricted or zone not in offered):
            return f"{size} is not offered to this subscription in {location} zone {zone}"
        known = catalog.find_size(size)
        vcpus = _int(capability(sku, "vCPUs")) or (known.vcpus if known else None)
        family = str(sku.get("family") or (known.quota_family if known else ""))
        if not vcpus or not family:
            return f"Azure does not say how many vCPUs {size} has or its quota family: quota not checked"
        with azure_errors(ctx, f"reading the vCPU quota of {location}"):
            usages = [rest(usage) for usage in client.usage.list(location)]
        free = _free(usages, family)
        needed = nodes * vcpus
        if free is None:
            return f"Azure lists no {family} quota in {location}"
        if free < needed:
            return (
                f"{family} quota in {location}: {free:,} vCPUs free, {needed:,} needed for {nodes} x {size}; "
                f"request {family} be raised by {needed - free:,}"
            )
        return None

    return ready


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def settle(
    spec: ClusterSpec,
    ctx: AzureContext,
    stack: str,
    *,
    wait_seconds: float,
    move: Callable[[list[Move]], ClusterSpec],
    say: Callable[[str], None] = lambda _text: None,
    progress: bool = True,
    clock: Clock | None = None,
    ready: Readiness | None = None,
    initial: GrowReport | None = None,
) -> CapacityResult:
    """Rounds of grow, zone moves and waits until every island is whole or the deadline passes.

    `move(moves)` records the moves in the stack file, runs Pulumi again and returns the spec as the
    stack file now says; the caller (lifecycle.up, lifecycle.grow) owns the engine. `ready` judges a
    stand-in size before it is used (`azure_readiness`); without it no stand-in is tried.
    """
    clock = clock or Clock()
    deadline = clock.now() + wait_seconds
    tried: dict[tuple[str, int], set[tuple[str, str | None]]] = {}
    skipped: list[Skipped] = []
    delay = FIRST_RETRY_S
    result: CapacityResult | None = None
    moves: list[Move] = []
    rounds = 0
    while True:
        rounds += 1
        if initial is not None:  # `grow` has just asked: its report is this round's
            report, initial = initial, None
        else:
            report = grow_cluster(spec, ctx, stack, wait_seconds=0, progress=progress, clock=clock)
        result = CapacityResult(report, wait_seconds, rounds, moves, skipped=skipped)
        if report.complete:
            break
        noted = len(skipped)
        step = next_zones(spec, report, tried, ready, skipped)
        for item in skipped[noted:]:
            where = f" zone {item.zone}" if item.zone else ""
            say(f"island {item.pool}/{item.island}: not trying {item.size}{where}: {item.reason}")
        if step:
            for item in step:
                say(
                    f"island {item.pool}/{item.island}: nothing placed as {item.from_size} in zone "
                    f"{item.from_zone} ({item.code or 'no answer'}); {item.text()}"
                )
            moves.extend(step)
            spec = move(step)
            continue  # a new zone is a new chance now: no wait
        if clock.now() + delay > deadline:
            break
        got = sum(g.obtained for g in report.islands)
        asked = sum(g.requested for g in report.islands)
        say(
            f"round {rounds}: {got} of {asked} nodes; "
            + "; ".join(
                f"{g.pool}/{g.island} {g.obtained}/{g.requested} ({g.code or 'no answer'})"
                for g in report.islands
                if not g.complete
            )
            + f"; next try at {time.strftime('%H:%M:%S', time.localtime(clock.now() + delay))}"
        )
        try:
            clock.sleep(delay)
        except KeyboardInterrupt:
            result.interrupted = True
            break
        delay = min(delay * 2, MAX_RETRY_S)
    return result
