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

Stand-in sizes are priced and checked by the rules and `plan`, and named in every refusal's advice, but
not switched to here: a node's preparation and its Slurm definition (memory, GPUs) follow the pool's
size, and an island of another size needs those per island first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azcluster.components.capacity import capacity_plan
from azcluster.components.spec import ClusterSpec

from . import remedies
from .ops.grow import FIRST_RETRY_S, MAX_RETRY_S, Clock, GrowReport, grow_cluster

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
    pool: str
    island: int
    from_zone: str | None
    to_zone: str
    code: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "from_zone": self.from_zone,
            "to_zone": self.to_zone,
            "because": self.code,
        }


@dataclass
class CapacityResult:
    """What the capacity step ended with: the last grow report, the moves made, the rounds tried."""

    report: GrowReport
    wait_seconds: float
    rounds: int = 0
    moves: list[Move] = field(default_factory=list)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.report.ok

    def to_json(self) -> dict[str, Any]:
        return {
            **self.report.to_json(),
            "wait_seconds": self.wait_seconds,
            "rounds": self.rounds,
            "moved": [move.to_json() for move in self.moves],
            "interrupted": self.interrupted,
        }


def next_zones(spec: ClusterSpec, report: GrowReport, tried: dict[tuple[str, int], set[str]]) -> list[Move]:
    """Islands with nothing placed, and the next zone of their pool's policy not tried yet in this run."""
    policies = {policy.pool: policy for policy in capacity_plan(spec)}
    moves = []
    for growth in report.islands:
        if growth.missing_scale_set or growth.obtained or growth.kept:
            continue
        policy = policies.get(growth.pool)
        if policy is None:
            continue
        seen = tried.setdefault((growth.pool, growth.island), set())
        if growth.zone:
            seen.add(growth.zone)
        upcoming = [zone for zone in policy.zones if zone is not None and zone not in seen]
        if upcoming:
            moves.append(Move(growth.pool, growth.island, growth.zone, upcoming[0], growth.code))
    return moves


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
) -> CapacityResult:
    """Rounds of grow, zone moves and waits until every island is whole or the deadline passes.

    `move(moves)` records the moves in the stack file, runs Pulumi again and returns the spec as the
    stack file now says; the caller (lifecycle.up) owns the engine.
    """
    clock = clock or Clock()
    deadline = clock.now() + wait_seconds
    tried: dict[tuple[str, int], set[str]] = {}
    delay = FIRST_RETRY_S
    result: CapacityResult | None = None
    moves: list[Move] = []
    rounds = 0
    while True:
        rounds += 1
        report = grow_cluster(spec, ctx, stack, wait_seconds=0, progress=progress, clock=clock)
        result = CapacityResult(report, wait_seconds, rounds, moves)
        if report.complete:
            break
        step = next_zones(spec, report, tried)
        if step:
            for item in step:
                say(
                    f"island {item.pool}/{item.island}: nothing placed in zone {item.from_zone} "
                    f"({item.code or 'no answer'}); moving it whole to zone {item.to_zone}"
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
