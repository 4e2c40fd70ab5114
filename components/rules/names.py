"""Names derived from the cluster and pool names (AZC040-AZC042): every Azure name azcluster builds from
them must be valid and short enough."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import catalog
from ..spec import ClusterSpec, PoolSpec
from .common import at, pool_at, preview
from .registry import Problem, rule

CLUSTER_NAME_PATTERN = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
SCALE_SET_NAME_MAX = 64
HOST_NAME_PREFIX_MAX = 57
"""Longest computer-name prefix components/bootstrap builds (`<cluster>-<pool>-i<island>-`, the cluster
part shortened to fit). Azure allows 58 for a Linux scale set: it appends a 6-character instance number
and Linux host names stop at 64."""
VM_NAME_MAX = 64
RESOURCE_GROUP_NAME_MAX = 90


@rule(
    "AZC040",
    "error",
    "cluster-name-invalid",
    "The cluster name is not lower-case letters, digits and hyphens",
)
def cluster_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """The cluster name prefixes every resource and host name. Scale set and VM names refuse spaces, most
    punctuation and a trailing hyphen; Linux host names allow only letters, digits and hyphens
    (Microsoft.Compute in
    https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules).
    azcluster asks for a lower-case letter first, then lower-case letters, digits and hyphens, ending in a
    letter or digit, so every derived name is valid.
    """
    if not CLUSTER_NAME_PATTERN.fullmatch(spec.name):
        suggestion = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", spec.name.lower())).strip("-")
        if not suggestion or not suggestion[0].isalpha():
            suggestion = f"c-{suggestion}".rstrip("-")
        yield (
            at("name"),
            f"cluster name {spec.name!r} is not a lower-case letter followed by lower-case letters, digits "
            "and hyphens (not ending in a hyphen).",
            f"Rename it, e.g. {suggestion!r}.",
        )


def scale_set_names(cluster_name: str, pool: PoolSpec) -> list[str]:
    """The names GpuPool gives the pool's scale sets: `<cluster>-<pool>-ib<i>` per IB island, else
    `<cluster>-<pool>` (components/gpu_pool.py `plan_islands`). Unknown sizes are treated as IB (longer).
    """
    size = catalog.find_size(pool.size)
    if size is not None and not size.has_infiniband:
        return [f"{cluster_name}-{pool.name}"]
    return [f"{cluster_name}-{pool.name}-ib{index}" for index in range(len(pool.island_sizes()))]


@rule(
    "AZC041",
    "error",
    "derived-name-too-long",
    "A resource name derived from the cluster name is too long",
)
def derived_name_too_long(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure limits names: a scale set 64 characters, a Linux VM 64, a resource group 90; a Linux scale
    set's computer-name prefix 58 (Azure appends a 6-character instance number to reach the 64-character
    Linux host name limit). The host-name prefix keeps the pool and island whole and shortens the cluster
    part, so a long pool name alone can break it.

    Sources: https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
    (Microsoft.Compute, Microsoft.Resources); the 58-character prefix as the Terraform azurerm provider
    documents `computer_name_prefix` for Linux scale sets.
    """
    for index, pool in enumerate(spec.pools):
        longest = max(scale_set_names(spec.name, pool), key=len)
        if len(longest) > SCALE_SET_NAME_MAX:
            yield (
                pool_at(index, "name"),
                f"scale set name {longest!r} has {len(longest)} characters; Azure allows "
                f"{SCALE_SET_NAME_MAX}.",
                f"Shorten the cluster or pool name by {len(longest) - SCALE_SET_NAME_MAX} characters.",
            )
        host_part = f"-{pool.name}-i{len(pool.island_sizes()) - 1}-"
        if len(host_part) >= HOST_NAME_PREFIX_MAX:
            yield (
                pool_at(index, "name"),
                f"pool name {pool.name!r} leaves no room for the cluster name in the nodes' host-name "
                f"prefix '<cluster>{host_part}' (at most {HOST_NAME_PREFIX_MAX} characters).",
                f"Shorten the pool name by {len(host_part) - HOST_NAME_PREFIX_MAX + 1} characters or more.",
            )
    login = f"{spec.name}-login"
    if spec.login.enabled and len(login) > VM_NAME_MAX:
        yield (
            at("name"),
            f"login VM name {login!r} has {len(login)} characters; Azure allows {VM_NAME_MAX}.",
            f"Shorten the cluster name by {len(login) - VM_NAME_MAX} characters.",
        )
    if spec.resource_group is None and len(spec.resource_group_name) > RESOURCE_GROUP_NAME_MAX:
        yield (
            at("name"),
            f"resource group name {spec.resource_group_name!r} has {len(spec.resource_group_name)} "
            f"characters; Azure allows {RESOURCE_GROUP_NAME_MAX}.",
            "Shorten the cluster name, or name an existing group with `resource_group`.",
        )


RESOURCE_GROUP_NAME = re.compile(r"^[-\w.()]+$")


@rule(
    "AZC042",
    "error",
    "resource-group-name-invalid",
    "The resource group name breaks Azure's naming rules",
)
def resource_group_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """Resource group names are 1-90 letters, digits, underscores, hyphens, periods and parentheses, and
    cannot end in a period.

    Source: https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
    (Microsoft.Resources).
    """
    name = spec.resource_group
    if name is None:
        return
    valid = RESOURCE_GROUP_NAME.fullmatch(name) and not name.endswith(".")
    if not valid or len(name) > RESOURCE_GROUP_NAME_MAX:
        yield (
            at("resource_group"),
            f"resource group name {preview(name, 100)!r} is not 1-{RESOURCE_GROUP_NAME_MAX} letters, "
            "digits, '_', '-', '.', '(' or ')' not ending in '.'.",
            "Use the existing group's exact name (`az group list -o table`), or leave `resource_group` out.",
        )
