"""`status`: every island's nodes (IP, power, health), the login node, the running cost, and (through
diagnose.py) which check failed on the unhealthy nodes. No Pulumi state needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azcluster.components.spec import ClusterSpec

from .cluster import MissingIsland, ScaleSet, find_scale_sets, missing_islands
from .diagnose import DIAGNOSE_LIMIT, DIAGNOSE_STATES, DIAGNOSE_TIMEOUT_S, DiagnosisRun, diagnose_nodes
from .nodes import Island, LoginNode, Node, find_login, read_island
from .parallel import parallel

if TYPE_CHECKING:  # pragma: no cover
    from ..azure import AzureContext
    from .elastic import ElasticStatus


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
    slurm: Any = None  # slurmstate.SlurmView: Slurm's node states, when the cluster runs Slurm and asked

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
        costs = [island.cost_per_hour() or 0.0 for island in self.islands]
        if self.login:
            costs.append(self.login.cost_per_hour() or 0.0)
        return round(sum(costs), 2)

    def to_json(self) -> dict[str, Any]:
        pools: dict[str, list[dict[str, Any]]] = {}
        for island in self.islands:
            pools.setdefault(island.pool, []).append(island.to_json())
        return {
            "stack": self.stack,
            "cluster": self.cluster,
            "resource_group": self.resource_group,
            "location": self.location,
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
            "cost_per_hour_usd": self.cost_per_hour(),
            "cost_basis": "running VMs x catalogue pay-as-you-go Linux prices (Spot billed lower); "
            "deallocated VMs cost no compute",
        }


def cluster_status(
    spec: ClusterSpec,
    ctx: AzureContext,
    stack: str,
    *,
    diagnose: bool = True,
    diagnose_limit: int = DIAGNOSE_LIMIT,
    diagnose_timeout: float = DIAGNOSE_TIMEOUT_S,
    progress: bool = False,
    slurm: bool = True,
) -> ClusterStatus:
    """Every island's scale set and nodes (IP, power, health), the login node, the running cost; with
    `diagnose`, the failing checks of up to `diagnose_limit` unhealthy nodes (read on the nodes); with
    `slurm` (and scheduler: slurm), each node's Slurm state, read on the login node (slurmstate.py)."""
    from ..azure import azure_errors, compute_client

    client = compute_client(ctx)
    with azure_errors(ctx, f"listing the scale sets of {spec.name} in {spec.resource_group_name}"):
        sets = find_scale_sets(client, spec)

    def read(found: ScaleSet) -> Island:
        with azure_errors(ctx, f"reading scale set {found.name}"):
            island = read_island(client, ctx, spec, found)
            island.automatic_repairs = _automatic_repairs(client, spec.resource_group_name, found.name)
            return island

    islands = parallel(read, sets)
    with azure_errors(ctx, f"looking for the login node of {spec.name}"):
        login = find_login(client, ctx, spec) if spec.login.enabled else None
    status = ClusterStatus(stack, spec.name, spec.resource_group_name, spec.location, islands, login)
    status.missing = missing_islands(spec, sets)
    status.diagnosis = DiagnosisRun(enabled=diagnose, limit=diagnose_limit)
    if diagnose:
        with azure_errors(ctx, f"reading the health results of {spec.name}'s unhealthy nodes"):
            diagnose_nodes(client, status, diagnose_timeout, progress)
    if spec.elastic_enabled:
        from .elastic import read_elastic

        with azure_errors(ctx, f"reading the elastic state on {spec.name}'s login node"):
            status.elastic = read_elastic(client, spec, status, read_state=diagnose)
    if slurm:
        from .slurmstate import read_for_status

        with azure_errors(ctx, f"reading Slurm's node states on the login node of {spec.name}"):
            read_for_status(client, spec, status, timeout=diagnose_timeout)
    return status


def _automatic_repairs(client: Any, rg: str, name: str) -> str | None:
    from ..azure import rest

    view = rest(client.virtual_machine_scale_sets.get_instance_view(rg, name))
    for service in view.get("orchestrationServices") or []:
        if str(service.get("serviceName")) == "AutomaticRepairs":
            return service.get("serviceState")
    return None
