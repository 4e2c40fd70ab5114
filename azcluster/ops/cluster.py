"""Finding the cluster in Azure: its stack's spec, and its island scale sets by tag.

The cluster is found by tags (components/tags.py): in the cluster's resource group, the scale sets tagged
`azcluster-cluster=<name>` with a pool and island tag are its InfiniBand islands.
"""

from __future__ import annotations

from typing import Any

from azcluster.components.findings import sort_findings
from azcluster.components.spec import ClusterSpec
from azcluster.components.tags import ROLE_COMPUTE, TAG_CLUSTER, TAG_ISLAND, TAG_POOL, TAG_ROLE

from ..errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError
from .model import MissingIsland, ScaleSet


def load_spec(stack: str) -> tuple[str, ClusterSpec]:
    """(stack name, spec) for STACK; a stack whose cluster does not parse is exit 2, naming the first
    schema error where it is (file:line and YAML path) and pointing at validate for the rest."""
    from .. import stackfile

    loaded = stackfile.load_stack(stack)
    if loaded.spec is None:
        errors = [f for f in sort_findings(loaded.schema_findings) if f.severity == "error"]
        first = errors[0]  # a spec that did not parse has at least one (stackfile.parse_document)
        where = f"{first.file or loaded.path}" + (f":{first.line}" if first.line else "")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise AzclusterError(
            f"{where}: {first.path}: {first.message}{more}",
            (first.hint + "; " if first.hint else "") + f"`azcluster validate {stack}` lists every finding",
            EXIT_USAGE,
        )
    return loaded.name, loaded.spec


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    """Tags with lower-case names: Azure treats tag names case-insensitively."""
    return {str(key).lower(): str(value) for key, value in (resource.get("tags") or {}).items()}


def find_scale_sets(client: Any, spec: ClusterSpec) -> list[ScaleSet]:
    """The cluster's island scale sets, ordered as the spec orders pools, then by island."""
    from azure.core.exceptions import ResourceNotFoundError

    from ..azure import rest

    try:
        sets = [rest(s) for s in client.virtual_machine_scale_sets.list(spec.resource_group_name)]
    except ResourceNotFoundError:
        return []
    found: list[ScaleSet] = []
    for vmss in sets:
        tags = tags_of(vmss)
        if tags.get(TAG_CLUSTER) != spec.name or tags.get(TAG_ROLE, ROLE_COMPUTE) != ROLE_COMPUTE:
            continue
        if TAG_POOL not in tags:
            continue
        try:
            island = int(tags.get(TAG_ISLAND, "0"))
        except ValueError:
            island = 0
        found.append(ScaleSet(tags[TAG_POOL], island, str(vmss["name"]), vmss))
    order = {pool.name: index for index, pool in enumerate(spec.pools)}
    found.sort(key=lambda s: (order.get(s.pool, len(order)), s.pool, s.island))
    return found


def require_found(sets: list[ScaleSet], spec: ClusterSpec, stack: str) -> None:
    if not sets:
        raise AzclusterError(
            f"no scale sets tagged {TAG_CLUSTER}={spec.name} in resource group {spec.resource_group_name}",
            f"is the cluster up (`azcluster up {stack}`), and are --subscription and the stack's resource "
            "group the ones it was deployed with?",
            EXIT_REFUSED,
        )


def missing_islands(spec: ClusterSpec, sets: list[ScaleSet]) -> list[MissingIsland]:
    """The spec's islands with no scale set tagged for them, in spec order.

    What the spec expects is what GpuPool builds from it: one scale set per island, named as
    components/rules/names.py `scale_set_names` says; a scale set deleted outside azcluster is one of these.
    """
    from azcluster.components.rules import scale_set_names

    have = {(s.pool, s.island) for s in sets}
    return [
        MissingIsland(pool.name, index, name)
        for pool in spec.pools
        for index, name in enumerate(scale_set_names(spec.name, pool))
        if (pool.name, index) not in have
    ]


def missing_hint(stack: str) -> str:
    return (
        f"was it deleted outside azcluster? `azcluster refresh {stack}` tells the stack, then "
        f"`azcluster up {stack}` creates it again"
    )
