"""`status`: every island's nodes (IP, power, health), the login node, the running cost, and (through
diagnose.py) which check failed on the unhealthy nodes. No Pulumi state needed. It reads through the other
readers and fills in model.ClusterStatus; none of them imports this module back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from azcluster.components.placement import cluster_zone
from azcluster.components.spec import ClusterSpec

from ..cost import price_resources
from .cluster import find_scale_sets, missing_islands
from .diagnose import DIAGNOSE_LIMIT, DIAGNOSE_TIMEOUT_S, diagnose_nodes
from .elastic import read_elastic
from .gpu_usage import read_gpu_usage
from .model import ClusterStatus, DiagnosisRun, Island, ScaleSet
from .nodes import find_login, read_island
from .parallel import parallel
from .racks import rack_states
from .slurmstate import read_for_status

if TYPE_CHECKING:  # pragma: no cover
    from ..azure import AzureContext


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
    metrics: bool = True,
) -> ClusterStatus:
    """Every island's scale set and nodes (IP, power, health), the login node, the running cost; with
    `diagnose`, the failing checks of up to `diagnose_limit` unhealthy nodes (read on the nodes); with
    `slurm` (and scheduler: slurm), each node's Slurm state, read on the login node (slurmstate.py), and the
    GB pools' racks from it (racks.py); with
    `metrics` (and monitoring on), each island's GPU utilisation over the last hour (gpu_usage.py)."""
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
    own = {pool.name: pool.size for pool in spec.pools}
    for island in islands:  # an island built on a stand-in size says so, with its own price
        pool_size = own.get(island.pool)
        if pool_size and island.size and island.size.lower() != pool_size.lower():
            island.stand_in_for = pool_size
    with azure_errors(ctx, f"looking for the login node of {spec.name}"):
        login = find_login(client, ctx, spec) if spec.login.enabled else None
    status = ClusterStatus(stack, spec.name, spec.resource_group_name, spec.location, islands, login)
    status.missing = missing_islands(spec, sets)
    status.storage_zone = cluster_zone(spec).zone
    if status.found:  # storage, Bastion, NAT... bill whether or not a node runs (cost.py)
        status.resources = price_resources(spec)[0]
    status.diagnosis = DiagnosisRun(enabled=diagnose, limit=diagnose_limit)
    if diagnose:
        with azure_errors(ctx, f"reading the health results of {spec.name}'s unhealthy nodes"):
            diagnose_nodes(client, status, diagnose_timeout, progress)
    if spec.elastic_enabled:
        with azure_errors(ctx, f"reading the elastic state on {spec.name}'s login node"):
            status.elastic = read_elastic(client, spec, status, read_state=diagnose)
    if slurm:
        with azure_errors(ctx, f"reading Slurm's node states on the login node of {spec.name}"):
            read_for_status(client, spec, status, timeout=diagnose_timeout)
        if status.slurm is not None and not status.slurm.error:
            status.racks = rack_states(spec, status.slurm)
    if metrics and spec.monitoring.enabled and status.found:
        status.gpu_usage = read_gpu_usage(spec, ctx)
    return status


def _automatic_repairs(client: Any, rg: str, name: str) -> str | None:
    from ..azure import rest

    view = rest(client.virtual_machine_scale_sets.get_instance_view(rg, name))
    for service in view.get("orchestrationServices") or []:
        if str(service.get("serviceName")) == "AutomaticRepairs":
            return service.get("serviceState")
    return None
