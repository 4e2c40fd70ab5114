"""The data every ops job reads and shows: a cluster's islands, nodes, login node, diagnosis, Slurm and
elastic views, as plain dataclasses with their JSON.

This module is the bottom of azcluster/ops: readers (nodes.py, diagnose.py, slurmstate.py, elastic.py,
status.py, ...) fill these in and views (`*_view.py`) print them, so two readers share data by importing
it from here, never from each other. It imports nothing from azcluster but the catalogue (for prices),
and nothing that talks to Azure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azcluster.components import catalog

if TYPE_CHECKING:  # pragma: no cover
    from ..cost import ResourceCost

# Found in Azure (cluster.py)


@dataclass
class ScaleSet:
    """One island's scale set as listed: its pool and island tags, name and ARM body."""

    pool: str
    island: int
    name: str
    body: dict[str, Any]


@dataclass(frozen=True)
class MissingIsland:
    """An island the spec has and Azure does not: its scale set was deleted (or never made)."""

    pool: str
    island: int
    scale_set: str

    def to_json(self) -> dict[str, Any]:
        return {"pool": self.pool, "island": self.island, "scale_set": self.scale_set}

    def describe(self) -> str:
        return f"{self.pool}/{self.island} (scale set {self.scale_set})"


# What a node's own health check said (diagnose.py)

DIAGNOSE_STATES = ("unhealthy", "unknown")  # in this order: the limit keeps the nodes Azure calls unhealthy


@dataclass
class Diagnosis:
    """What a node's own health check recorded (HEALTH_RESULT_PATH), read through Run Command.

    state: `read` (the file parsed; `failing` lists its failed checks), `unreadable` (Run Command or the
    file failed; `detail` says how), `skipped` (nothing was sent: over the limit, or the node not running).
    """

    state: str
    detail: str
    failing: list[tuple[str, str]] = field(default_factory=list)
    time: str | None = None

    def failing_json(self) -> list[dict[str, str]]:
        return [{"name": name, "detail": detail} for name, detail in self.failing]

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, "time": self.time}


@dataclass
class DiagnosisRun:
    """How much of the cluster was diagnosed, so a capped or refused run says what it left out.

    denied: Azure's refusal ({"node", "code", "message"}) when the identity may not run commands on the
    nodes; `denied_nodes` were then not even asked.
    """

    enabled: bool
    limit: int
    sent: int = 0
    over_limit: int = 0
    not_running: int = 0
    denied: dict[str, str] | None = None
    denied_nodes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "limit": self.limit,
            "diagnosed": self.sent,
            "skipped_over_limit": self.over_limit,
            "skipped_not_running": self.not_running,
            "skipped_denied": self.denied_nodes,
            "denied": self.denied,
        }


# An island's nodes and the login node (nodes.py)


@dataclass
class Node:
    name: str
    instance_id: str
    computer_name: str | None
    private_ip: str | None
    power_state: str | None  # running | deallocated | stopped | starting | deallocating | ...
    provisioning_state: str | None
    health: str | None  # healthy | unhealthy | unknown | initializing | None (no health extension)
    health_detail: str | None = None
    zone: str | None = None
    diagnosis: Diagnosis | None = None  # None: not asked (healthy, or --no-diagnose)
    slurm: SlurmNode | None = None  # Slurm's state of this VM; None when not read or not in Slurm

    @property
    def failing_checks(self) -> list[dict[str, str]]:
        return self.diagnosis.failing_json() if self.diagnosis else []

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instance_id": self.instance_id,
            "computer_name": self.computer_name,
            "private_ip": self.private_ip,
            "power_state": self.power_state,
            "provisioning_state": self.provisioning_state,
            "health": self.health,
            "health_detail": self.health_detail,
            "failing_checks": self.failing_checks,
            "diagnosis": self.diagnosis.to_json() if self.diagnosis else None,
            "zone": self.zone,
            "slurm": self.slurm.to_json() if self.slurm else None,
        }


@dataclass
class Island:
    """One scale set: one InfiniBand island of a pool."""

    pool: str
    island: int
    scale_set: str
    size: str
    capacity: int
    provisioning_state: str | None
    spot: bool
    zones: list[str]
    nodes: list[Node] = field(default_factory=list)
    automatic_repairs: str | None = None
    stand_in_for: str | None = None
    """The pool's own size when this island is built on a stand-in (`capacity.island_stand_ins`)."""

    def usd_per_node_hour(self) -> float | None:
        size = catalog.find_size(self.size)
        return None if size is None else size.price.usd_per_hour

    @property
    def power_states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            key = node.power_state or "unknown"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def running(self) -> int:
        return sum(node.power_state == "running" for node in self.nodes)

    def cost_per_hour(self) -> float | None:
        size = catalog.find_size(self.size)
        return None if size is None else round(self.running * size.price.usd_per_hour, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "scale_set": self.scale_set,
            "size": self.size,
            "stand_in_for": self.stand_in_for,
            "usd_per_node_hour": self.usd_per_node_hour(),
            "capacity": self.capacity,
            "provisioning_state": self.provisioning_state,
            "spot": self.spot,
            "zones": self.zones,
            "power_states": self.power_states,
            "automatic_repairs": self.automatic_repairs,
            "cost_per_hour_usd": self.cost_per_hour(),
            "nodes": [node.to_json() for node in self.nodes],
        }


@dataclass
class LoginNode:
    name: str
    size: str
    private_ip: str | None
    power_state: str | None
    provisioning_state: str | None

    def cost_per_hour(self) -> float | None:
        size = catalog.general_sizes().get(self.size)
        if size is None or self.power_state != "running":
            return 0.0 if size is not None else None
        return round(size.price.usd_per_hour, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "private_ip": self.private_ip,
            "power_state": self.power_state,
            "provisioning_state": self.provisioning_state,
            "cost_per_hour_usd": self.cost_per_hour(),
        }


# Slurm's view of the nodes (slurmstate.py): sinfo(1) NODE STATE CODES, suffix -> meaning

FLAGS = {
    "*": "not responding",
    "~": "powered off",
    "#": "powering up",
    "%": "powering down",
    "!": "pending power down",
    "$": "maintenance",
    "@": "pending reboot",
    "^": "reboot issued",
    "-": "planned by backfill",
}


@dataclass(frozen=True)
class SlurmNode:
    name: str
    state: str  # long form with its suffixes, as sinfo prints it: idle, drained, idle~, down*
    hostname: str
    address: str
    reason: str | None

    @property
    def base_state(self) -> str:
        return self.state.rstrip("".join(FLAGS))

    @property
    def flags(self) -> list[str]:
        return [FLAGS[c] for c in self.state[len(self.base_state) :] if c in FLAGS]

    @property
    def usable(self) -> bool:
        """Slurm can run a job there (now, or once it powers up)."""
        return self.base_state in ("idle", "mixed", "allocated", "completing") and "*" not in self.state

    def describe(self) -> str:
        """'drained: azc-health: gpu: 7 of 8 GPUs' or 'idle~ (powered off)'."""
        text = self.state + (f" ({', '.join(self.flags)})" if self.flags else "")
        return f"{text}: {self.reason}" if self.reason else text

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.name,
            "state": self.base_state,
            "flags": self.flags,
            "reason": self.reason,
            "hostname": self.hostname,
            "address": self.address,
        }


@dataclass(frozen=True)
class TopUser:
    """One user's running jobs now (squeue on the login node): how many, on how many nodes, how many GPUs."""

    user: str
    jobs: int
    nodes: int
    gpus: int

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "jobs": self.jobs, "nodes": self.nodes, "gpus": self.gpus}


@dataclass
class SlurmView:
    nodes: list[SlurmNode] = field(default_factory=list)
    error: str | None = None  # why Slurm's view could not be read; None when it was
    unmatched: list[SlurmNode] = field(default_factory=list)  # Slurm nodes with no VM in Azure
    mpi: Any = None  # the login node's MPI record (components.bootstrap.slurm_mpi.SlurmMpi), if read
    mpi_error: str | None = None  # why it was not read
    top_users: list[TopUser] = field(default_factory=list)  # the users with most GPUs in running jobs

    @property
    def mpi_problem(self) -> str | None:
        """Why MPI jobs will fail on this cluster's Slurm; None when it has PMIx or nothing was read."""
        return self.mpi.problem() if self.mpi is not None else None

    def to_json(self) -> dict[str, Any]:
        mpi = self.mpi
        return {
            "read": self.error is None,
            "error": self.error,
            "nodes": len(self.nodes),
            "states": self.counts(),
            "without_vm": [node.to_json() for node in self.unmatched],
            "top_users": [user.to_json() for user in self.top_users],
            "mpi": {
                "read": mpi is not None,
                "error": self.mpi_error if mpi is None else None,
                "slurm": mpi.slurm if mpi else None,
                "pmix": mpi.pmix if mpi else None,
                "plugins": list(mpi.plugins) if mpi else None,
                "mpi_default": mpi.mpi_default if mpi else None,
                "problem": self.mpi_problem,
            },
        }

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.base_state] = counts.get(node.base_state, 0) + 1
        return dict(sorted(counts.items()))


# The elastic policy's view of each island (elastic.py)


@dataclass
class IslandPower:
    """One island as the elastic policy sees it."""

    pool: str
    island: int
    key: str
    scale_set: str
    state: str
    """running | deallocated | starting | deallocating | partly deallocated | no instances."""
    by: str | None
    """Who switched it to that state: 'elastic' (the policy), 'outside elastic', or None (unknown/running)."""
    since: str | None
    reason: str | None
    running: int
    capacity: int
    keep_warm: bool
    cost_per_hour_usd: float
    all_on_cost_per_hour_usd: float
    backoff_until: float | None = None
    last_error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "key": self.key,
            "scale_set": self.scale_set,
            "state": self.state,
            "by": self.by,
            "since": self.since,
            "reason": self.reason,
            "running": self.running,
            "capacity": self.capacity,
            "keep_warm": self.keep_warm,
            "cost_per_hour_usd": self.cost_per_hour_usd,
            "all_on_cost_per_hour_usd": self.all_on_cost_per_hour_usd,
            "backoff_until": self.backoff_until,
            "last_error": self.last_error,
        }


@dataclass
class ElasticStatus:
    idle_minutes: int
    keep_warm_islands: int
    scheduler: str
    islands: list[IslandPower] = field(default_factory=list)
    state_source: str = "login node"
    """Where `by`/`since` come from: 'login node', or why they are unknown."""
    cost_per_hour_usd: float = 0.0
    all_on_cost_per_hour_usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "idle_minutes": self.idle_minutes,
            "keep_warm_islands": self.keep_warm_islands,
            "scheduler": self.scheduler,
            "state_source": self.state_source,
            "cost_per_hour_usd": self.cost_per_hour_usd,
            "all_on_cost_per_hour_usd": self.all_on_cost_per_hour_usd,
            "islands": [island.to_json() for island in self.islands],
        }


# Each island's GPU utilisation from the cluster's metrics workspace (gpu_usage.py)

GPU_USAGE_WINDOW = "1h"


@dataclass
class IslandUsage:
    pool: str
    island: str
    percent: float

    def to_json(self) -> dict[str, Any]:
        return {"pool": self.pool, "island": self.island, "gpu_utilization_percent": round(self.percent, 1)}


@dataclass
class GpuUsage:
    """What `status` shows under the islands: per island, the mean GPU utilisation of the last hour."""

    window: str = GPU_USAGE_WINDOW
    endpoint: str | None = None
    islands: list[IslandUsage] = field(default_factory=list)
    error: str | None = None
    hint: str | None = None

    def percent(self, pool: str, island: int | str) -> float | None:
        for row in self.islands:
            if row.pool == pool and row.island == str(island):
                return row.percent
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "endpoint": self.endpoint,
            "islands": [row.to_json() for row in self.islands],
            "error": self.error,
            "hint": self.hint,
        }


# The whole cluster as `status` reads it (status.py)


@dataclass
class RackState:
    """One NVL72 rack of a GB pool: a Slurm block of `slots` slots and how many of its nodes are in each
    state (ops/racks.py)."""

    pool: str
    island: int
    rack: str  # the Slurm block, e.g. 'gb-i0-r1'
    slots: int
    up: int = 0
    starting: int = 0
    off: int = 0
    down: int = 0

    @property
    def held(self) -> int:
        """Slots a node holds (the rest of the block is free)."""
        return self.up + self.starting + self.off + self.down

    @property
    def state(self) -> str:
        """'up' (every node up), 'powered off' (every node deallocated), 'starting', or 'partial'."""
        if self.up == self.held:
            return "up"
        if self.off == self.held:
            return "powered off"
        if self.starting and self.starting + self.up == self.held:
            return "starting"
        return "partial"

    def describe(self) -> str:
        """'gb-i0-r0 up (18/18)' or 'gb-i0-r1 partial (12 up, 2 down, 4 off of 18)'."""
        if self.state in ("up", "powered off"):
            return f"{self.rack} {self.state} ({self.held}/{self.slots})"
        parts = [
            f"{n} {what}"
            for n, what in (
                (self.up, "up"),
                (self.starting, "starting"),
                (self.down, "down"),
                (self.off, "off"),
            )
            if n
        ]
        return f"{self.rack} {self.state} ({', '.join(parts)} of {self.slots})"

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "rack": self.rack,
            "state": self.state,
            "slots": self.slots,
            "nodes": self.held,
            "up": self.up,
            "starting": self.starting,
            "down": self.down,
            "powered_off": self.off,
        }


@dataclass
class ClusterStatus:
    stack: str
    cluster: str
    resource_group: str
    location: str
    islands: list[Island]
    login: LoginNode | None
    diagnosis: DiagnosisRun | None = None
    missing: list[MissingIsland] = field(default_factory=list)  # spec islands with no scale set in Azure
    elastic: ElasticStatus | None = None  # per island power state and why, for an elastic spec
    slurm: SlurmView | None = None  # Slurm's node states, when the cluster runs Slurm and asked
    gpu_usage: GpuUsage | None = None  # per island, the last hour's GPU utilisation (monitoring on)
    racks: list[RackState] = field(default_factory=list)  # GB pools' NVL72 racks (Slurm blocks), when read
    resources: list[ResourceCost] = field(default_factory=list)
    """The other resources the spec builds (Lustre, home, Bastion, NAT...), priced from the catalogue
    (cost.price_resources): billed while they exist, whether or not a node runs. Empty when not found."""
    storage_zone: str | None = None
    """The cluster's zone, where storage stays: an island in another zone reads it across zones."""

    def cross_zone(self, island: Island) -> bool:
        """Whether `island` runs outside the storage's zone (moved by the capacity policy)."""
        return bool(self.storage_zone and island.zones and self.storage_zone not in island.zones)

    @property
    def found(self) -> bool:
        return bool(self.islands) or self.login is not None

    def unhealthy(self) -> list[tuple[Island, Node]]:
        return [
            (island, node)
            for island in self.islands
            for node in island.nodes
            if node.health in DIAGNOSE_STATES
        ]

    def cost_per_hour(self) -> float:
        """Compute now: the running VMs (GPU nodes and the login node) at catalogue prices."""
        costs = [island.cost_per_hour() or 0.0 for island in self.islands]
        if self.login:
            costs.append(self.login.cost_per_hour() or 0.0)
        return round(sum(costs), 2)

    def resources_cost_per_hour(self) -> float:
        """The other resources' hourly part (usage-based charges excluded)."""
        return round(sum(item.usd_per_hour for item in self.resources), 2)

    def total_cost_per_hour(self) -> float:
        return round(self.cost_per_hour() + self.resources_cost_per_hour(), 2)

    def to_json(self) -> dict[str, Any]:
        pools: dict[str, list[dict[str, Any]]] = {}
        for island in self.islands:
            pools.setdefault(island.pool, []).append(island.to_json())
        return {
            "stack": self.stack,
            "cluster": self.cluster,
            "resource_group": self.resource_group,
            "location": self.location,
            "storage_zone": self.storage_zone,
            "found": self.found,
            "pools": [{"pool": name, "islands": islands} for name, islands in pools.items()],
            "missing_islands": [island.to_json() for island in self.missing],
            "login": self.login.to_json() if self.login else None,
            "unhealthy": [
                {
                    "pool": island.pool,
                    "island": island.island,
                    "scale_set": island.scale_set,
                    "node": node.computer_name or node.name,
                    "private_ip": node.private_ip,
                    "health": node.health,
                    "detail": node.health_detail,
                    "failing_checks": node.failing_checks,
                    "diagnosis": node.diagnosis.to_json() if node.diagnosis else None,
                }
                for island, node in self.unhealthy()
            ],
            "diagnosis": self.diagnosis.to_json() if self.diagnosis else None,
            "elastic": self.elastic.to_json() if self.elastic else None,
            "slurm": self.slurm.to_json() if self.slurm else None,
            "racks": [rack.to_json() for rack in self.racks],
            "gpu_utilization": self.gpu_usage.to_json() if self.gpu_usage else None,
            "cost_per_hour_usd": self.total_cost_per_hour(),
            "cost_breakdown": {
                "compute_usd_per_hour": self.cost_per_hour(),
                "resources_usd_per_hour": self.resources_cost_per_hour(),
                "total_usd_per_hour": self.total_cost_per_hour(),
                "resources": [item.to_json() for item in self.resources],
            },
            "cost_basis": "running VMs x catalogue pay-as-you-go Linux prices (Spot billed lower; "
            "deallocated VMs cost no compute) + the other resources the stack builds (Lustre, shared home, "
            "Bastion, NAT gateway, public IPs, private endpoints and DNS zones) at catalogue prices, billed "
            "while they exist; usage-based charges (GB processed or stored, queries) not included",
        }
