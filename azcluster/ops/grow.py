"""`grow`: bring every island to the nodes its pool asks for, keeping what Azure places.

Why azcluster, not Pulumi, owns an island's node count once the island exists:

Azure places a scale set's VMs as capacity allows and reports the rest as failed instances (AllocationFailed
and friends; tests/fakes/capacity.py has the shapes). If the count lived in Pulumi's graph, every shortfall
would be a failed update, and every later `up` would ask again for the whole island and fail again: the
state would say 256 while Azure holds 200. So the island's scale set stays in the graph (its size, zone,
image, network, identity and tags are Pulumi's; `plan` and `preview` show it) with `ignoreChanges` on
`sku.capacity` (components/gpu_pool.py): Pulumi creates the island asking for the whole of it, and
never changes its count again. From then on azcluster owns the count through the Compute API, as elastic
already owns which instances run (components/elastic.py, ops/power.py). The graph's value stays the
request; Azure's `sku.capacity` is what was obtained; a `refresh` reads it into the state, and since the
property is ignored, neither side ever tries to change the other (no drift shown by `preview`, no update).

What grow does to each island, in parallel:
1. Reads its instances. Failed ones (never placed) are deleted at once: they hold no host, but they count
   in `sku.capacity`, block the next scale-out at the same count, and would show as nodes.
2. Asks for the gap: `sku.capacity` = the island's requested count (a PATCH). Azure places what it can,
   in the island's own zone and placement group (so the InfiniBand fabric holds), and fails the rest.
3. Deletes the failed instances again, so the island is exactly the nodes that exist (Slurm and the
   hostfiles see only those), and counts what it has.
4. With `--wait` (or the pool's `capacity.wait_minutes`), tries again with back-off until the island is
   whole or the deadline passes, one progress line per island: what Azure last said, next try at.
5. An island that ends below the smallest island worth keeping (`capacity.min_nodes`/`min_fraction`;
   by default the whole island) lets go of the nodes this run obtained: a fragment the policy calls
   useless is not billed. Nodes it had before are never touched.

Interrupting (Ctrl-C) is safe at any point: each step is one Azure operation on one island, and every
state between two steps is one grow already handles (failed instances are deleted by the next run).
An island never moves zone or size here: that is a new scale set, built by Pulumi. `azcluster grow`
hands an island that got nothing, where its policy lists another zone or a stand-in size, to
capacity_up.settle (`movable`), which records the move in the stack file and runs Pulumi, as `up` does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azcluster.components.capacity import PoolCapacity, capacity_plan
from azcluster.components.spec import ClusterSpec

from .. import remedies
from .cluster import find_scale_sets, missing_islands, require_found
from .model import ScaleSet
from .parallel import parallel, task_progress

if TYPE_CHECKING:  # pragma: no cover
    from ..azure import AzureContext

FIRST_RETRY_S = 30.0
"""The first wait between tries; then doubled each time, up to MAX_RETRY_S. Capacity frees up over
minutes (another tenant's job ends, hosts come back from repair); asking every few seconds only earns
throttling (429) and does not make VMs appear sooner."""
MAX_RETRY_S = 600.0


@dataclass
class Clock:
    """Time as grow sees it; tests pass one that does not really sleep."""

    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


@dataclass
class IslandGrowth:
    """One island's outcome: requested vs obtained, what was removed, what Azure last said."""

    pool: str
    island: int
    scale_set: str
    size: str
    zone: str | None
    requested: int
    smallest: int
    before: int = 0
    obtained: int = 0
    removed_failed: int = 0
    released: int = 0
    tries: int = 0
    code: str | None = None
    message: str | None = None
    explanation: remedies.Explanation | None = None
    next_try_at: float | None = None
    missing_scale_set: bool = False
    log: list[str] = field(default_factory=list)
    interrupted: bool = False
    """Ctrl-C ended this island's waiting: it keeps what it has (nothing half-done is left behind)."""

    @property
    def complete(self) -> bool:
        return self.obtained >= self.requested and not self.missing_scale_set

    @property
    def kept(self) -> bool:
        """Whether the island has at least the smallest count worth keeping."""
        return not self.missing_scale_set and self.obtained >= self.smallest

    @property
    def outcome(self) -> str:
        if self.missing_scale_set:
            return "missing"
        if self.complete:
            return "complete"
        return "partial" if self.kept and self.obtained else "empty" if not self.obtained else "below-minimum"

    def summary(self) -> str:
        """`200 of 256 (kept; 56 failed instances removed)`: what a person reads first."""
        if self.missing_scale_set:
            return "no scale set: run `azcluster up` to build it"
        text = f"{self.obtained} of {self.requested}"
        notes = []
        if self.complete:
            notes.append("whole")
        elif self.kept:
            notes.append(f"kept, at least {self.smallest} wanted")
        else:
            notes.append(f"below the {self.smallest} worth keeping")
        if self.removed_failed:
            notes.append(
                f"{self.removed_failed} failed instance{'s' if self.removed_failed != 1 else ''} removed"
            )
        if self.released:
            notes.append(f"{self.released} released")
        return f"{text} ({'; '.join(notes)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "scale_set": self.scale_set,
            "size": self.size,
            "zone": self.zone,
            "requested": self.requested,
            "obtained": self.obtained,
            "smallest": self.smallest,
            "before": self.before,
            "outcome": self.outcome,
            "removed_failed": self.removed_failed,
            "released": self.released,
            "tries": self.tries,
            "code": self.code,
            "message": self.message,
            "explanation": self.explanation.to_json() if self.explanation else None,
            "interrupted": self.interrupted,
        }


@dataclass
class GrowReport:
    stack: str
    islands: list[IslandGrowth]
    wait_seconds: float
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every island has at least what its pool's policy calls worth keeping."""
        return all(island.kept for island in self.islands)

    @property
    def complete(self) -> bool:
        return all(island.complete for island in self.islands)

    @property
    def interrupted(self) -> bool:
        return any(island.interrupted for island in self.islands)

    @property
    def changed(self) -> bool:
        """Whether any island's nodes changed (the hostfiles and Slurm's node list follow the nodes)."""
        return any(island.obtained != island.before or island.released for island in self.islands)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "ok": self.ok,
            "complete": self.complete,
            "requested": sum(island.requested for island in self.islands),
            "obtained": sum(island.obtained for island in self.islands),
            "wait_seconds": self.wait_seconds,
            "seconds": round(self.seconds, 1),
            "interrupted": self.interrupted,
            "islands": [_named(island.to_json(), self.stack) for island in self.islands],
        }


def _named(document: dict[str, Any], stack: str) -> dict[str, Any]:
    """The explanation's todo with the stack's name where it says STACK."""
    explained = document.get("explanation")
    if explained:
        explained["todo"] = [step.replace("STACK", stack) for step in explained["todo"]]
    return document


def grow_cluster(
    spec: ClusterSpec,
    ctx: AzureContext,
    stack: str,
    *,
    wait_seconds: float | None = None,
    progress: bool = True,
    clock: Clock | None = None,
    movable: bool = False,
) -> GrowReport:
    """Bring every island of `spec` to its requested count as far as Azure allows (see module docstring).

    `wait_seconds` None: each pool's `capacity.wait_minutes`; a number overrides every pool's.
    `movable`: an island that got nothing while its policy lists another zone or a stand-in size stops
    waiting at once, so the caller can build it whole elsewhere (capacity_up.settle) instead of waiting
    on a zone that said no.
    """
    from ..azure import azure_errors, compute_client

    clock = clock or Clock()
    started = clock.now()
    with azure_errors(ctx, f"listing the scale sets of {spec.name} in {spec.resource_group_name}"):
        client = compute_client(ctx)
        sets = find_scale_sets(client, spec)
    require_found(sets, spec, stack)
    policies = {policy.pool: policy for policy in capacity_plan(spec)}
    known = [found for found in sets if found.pool in policies]
    longest = (
        wait_seconds
        if wait_seconds is not None
        else max((policy.wait_minutes * 60.0 for policy in policies.values()), default=0.0)
    )

    stop = threading.Event()  # set by Ctrl-C: every island stops waiting and keeps what it has

    def one(found: ScaleSet, update: Callable[[str], None]) -> IslandGrowth:
        policy = policies[found.pool]
        wait = wait_seconds if wait_seconds is not None else policy.wait_minutes * 60.0
        return _grow_island(client, ctx, spec, found, policy, started + wait, clock, update, movable, stop)

    with azure_errors(ctx, f"growing the islands of {spec.name}"):
        results = _with_progress(known, one, progress, stop)
    for island in missing_islands(spec, sets):
        policy = policies.get(island.pool)
        requested = policy.islands[island.island] if policy and island.island < len(policy.islands) else 0
        results.append(
            IslandGrowth(
                island.pool,
                island.island,
                island.scale_set,
                "",
                None,
                requested,
                requested,
                missing_scale_set=True,
            )
        )
    return GrowReport(stack, results, longest, clock.now() - started)


def _instances(client: Any, ctx: AzureContext, spec: ClusterSpec, name: str) -> list[dict[str, Any]]:
    from .nodes import scale_set_vms

    return list(scale_set_vms(client, ctx.subscription_id, spec.resource_group_name, name))


def _failed(vm: dict[str, Any]) -> bool:
    return str((vm.get("properties") or {}).get("provisioningState") or "").lower() == "failed"


def _failure_of(vms: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The allocation error a failed instance carries (`ProvisioningState/failed/<code>`)."""
    for vm in vms:
        view = (vm.get("properties") or {}).get("instanceView") or {}
        for status in view.get("statuses") or []:
            code = str(status.get("code") or "")
            if code.lower().startswith("provisioningstate/failed/"):
                return code.split("/", 2)[2], status.get("message")
    return None, None


def _delete(
    client: Any, ctx: AzureContext, spec: ClusterSpec, name: str, ids: list[str], update: Any
) -> None:
    from ..azure import begin_with_throttle_retry
    from ..timeouts import lro_polling, wait_for

    if not ids:
        return
    update(f"removing {len(ids)} instance{'s' if len(ids) != 1 else ''}")
    poller = begin_with_throttle_retry(
        client.virtual_machine_scale_sets.begin_delete_instances,
        spec.resource_group_name,
        name,
        {"instanceIds": ids},
        update=update,
        polling=lro_polling(client),
    )
    wait_for(poller, ctx.deadline)


def _settle(
    client: Any, ctx: AzureContext, spec: ClusterSpec, growth: IslandGrowth, update: Any
) -> list[str]:
    """Delete the island's failed instances; the ids of those that exist (placed), in order."""
    vms = _instances(client, ctx, spec, growth.scale_set)
    failed = [str(vm.get("instanceId")) for vm in vms if _failed(vm)]
    if failed:
        code, message = _failure_of(vms)
        if code and not growth.code:
            growth.code, growth.message = code, message
        _delete(client, ctx, spec, growth.scale_set, failed, update)
        growth.removed_failed += len(failed)
    return [str(vm.get("instanceId")) for vm in vms if not _failed(vm)]


def _ask(client: Any, ctx: AzureContext, spec: ClusterSpec, growth: IslandGrowth, update: Any) -> None:
    """One scale-out to the requested count; an Azure refusal is this island's answer, not an error."""
    from azure.core.exceptions import HttpResponseError

    from ..azure import begin_with_throttle_retry, error_code, error_message
    from ..timeouts import lro_polling, wait_for

    growth.tries += 1
    update(f"asking for {growth.requested} (try {growth.tries})")
    try:
        poller = begin_with_throttle_retry(
            client.virtual_machine_scale_sets.begin_update,
            spec.resource_group_name,
            growth.scale_set,
            {"sku": {"capacity": growth.requested}},
            update=update,
            polling=lro_polling(client),
        )
        wait_for(poller, ctx.deadline)
        growth.code = growth.message = None
    except HttpResponseError as err:
        growth.code = error_code(err) or f"HTTP {getattr(err, 'status_code', '?')}"
        growth.message = error_message(err)


def _grow_island(
    client: Any,
    ctx: AzureContext,
    spec: ClusterSpec,
    found: ScaleSet,
    policy: PoolCapacity,
    deadline: float,
    clock: Clock,
    update: Callable[[str], None],
    movable: bool = False,
    stop: threading.Event | None = None,
) -> IslandGrowth:
    stop = stop or threading.Event()
    body = found.body
    zones = [str(z) for z in body.get("zones") or []]
    requested = policy.islands[found.island] if found.island < len(policy.islands) else 0
    smallest = policy.smallest[found.island] if found.island < len(policy.smallest) else requested
    growth = IslandGrowth(
        found.pool,
        found.island,
        found.name,
        str((body.get("sku") or {}).get("name") or ""),
        zones[0] if zones else None,
        requested,
        smallest,
    )
    placed = _settle(client, ctx, spec, growth, update)
    had = set(placed)
    growth.before = len(placed)
    delay = FIRST_RETRY_S
    while len(placed) < requested:
        _ask(client, ctx, spec, growth, update)
        placed = _settle(client, ctx, spec, growth, update)
        if len(placed) >= requested or clock.now() + delay > deadline:
            break
        if movable and not placed and not had and (len(policy.zones) > 1 or len(policy.sizes) > 1):
            update(f"nothing placed ({growth.code or 'no answer'}); trying elsewhere")
            break
        growth.next_try_at = clock.now() + delay
        said = growth.code or "no answer"
        update(
            f"{len(placed)} of {requested}; Azure said {said}; next try at {_clock_text(growth.next_try_at)}"
        )
        growth.log.append(f"try {growth.tries}: {len(placed)} of {requested}, {said}")
        if _nap(clock, delay, stop):
            growth.interrupted = True
            update(f"{len(placed)} of {requested}; interrupted: keeping what the island has")
            break
        delay = min(delay * 2, MAX_RETRY_S)
    growth.next_try_at = None
    growth.obtained = len(placed)
    if growth.obtained < smallest:
        fresh = [instance for instance in placed if instance not in had]
        if fresh:
            _delete(client, ctx, spec, growth.scale_set, fresh, update)
            growth.released = len(fresh)
            growth.obtained -= len(fresh)
    if not growth.complete:
        growth.explanation = remedies.explain(
            growth.code, growth.message or "", _shortfall(spec, policy, growth), _did(growth)
        )
    return growth


def _nap(clock: Clock, seconds: float, stop: threading.Event) -> bool:
    """Wait between tries; True when Ctrl-C ended the wait. With real time the wait is `stop.wait`, so a
    Ctrl-C the main thread gets (which sets `stop`) wakes every island's thread at once, instead of each
    sleeping out its back-off (up to MAX_RETRY_S) while the command seems to hang."""
    if stop.is_set():
        return True
    try:
        if clock.sleep is time.sleep:
            return stop.wait(seconds)
        clock.sleep(seconds)
    except KeyboardInterrupt:
        stop.set()
        return True
    return stop.is_set()


def _did(growth: IslandGrowth) -> str:
    parts = [f"asked {growth.tries} time{'s' if growth.tries != 1 else ''} for {growth.requested} nodes"]
    if growth.removed_failed:
        parts.append(f"removed {growth.removed_failed} failed instance(s)")
    if growth.released:
        parts.append(f"released the {growth.released} placed, fewer than the {growth.smallest} worth keeping")
    elif growth.obtained:
        parts.append(f"kept {growth.obtained} in {growth.scale_set} (one placement group)")
    return "; ".join(parts)


def _shortfall(spec: ClusterSpec, policy: PoolCapacity, growth: IslandGrowth) -> remedies.Shortfall:
    size = next((s for s in policy.sizes if s.name.lower() == growth.size.lower()), policy.sizes[0])
    return remedies.Shortfall(
        pool=growth.pool,
        island=growth.island,
        size=growth.size or size.name,
        region=spec.location,
        zone=growth.zone,
        requested=growth.requested,
        obtained=growth.obtained,
        vcpus_per_node=size.vcpus,
        quota_family=size.quota_family,
        # Only an empty island moves (capacity_up.next_zones): name where it would go, not for a partial one.
        zones_left=tuple(z for z in policy.zones if z and z != growth.zone) if not growth.obtained else (),
        stand_ins_left=tuple(
            s.name for s in policy.sizes if s.stand_in and s.name.lower() != (growth.size or "").lower()
        )
        if not growth.obtained
        else (),
    )


def _clock_text(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def _with_progress(
    sets: list[ScaleSet],
    work: Callable[[ScaleSet, Callable[[str], None]], IslandGrowth],
    progress: bool,
    stop: threading.Event,
) -> list[IslandGrowth]:
    """Every island in parallel, a live line each on stderr: what Azure last said, next try at. Ctrl-C
    sets `stop`, so each island ends at its next wait, and the report has every island as it ended."""
    from ..render import console, markup

    if not progress:
        return parallel(lambda found: work(found, lambda _text: None), sets, on_interrupt=stop.set)
    with task_progress(console) as bar:
        tasks = {
            found.name: bar.add_task(f"growing {found.pool}/{found.island} ({found.name})", total=1, state="")
            for found in sets
        }

        def tracked(found: ScaleSet) -> IslandGrowth:
            task = tasks[found.name]
            growth = work(found, lambda text: bar.update(task, state=text))
            style = "green" if growth.complete else "yellow" if growth.kept else "bold red"
            bar.update(task, completed=1, state=markup("[" + style + "]{}[/]", growth.summary()))
            return growth

        return parallel(tracked, sets, on_interrupt=stop.set)
