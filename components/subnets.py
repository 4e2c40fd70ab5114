"""Carve the cluster's subnets out of its address space (pure; shared by rules and ClusterNetwork).

Azure keeps 5 addresses in every subnet. The compute subnet is sized for every node of every pool with
room to grow (the next power of two, at least a /24); the others have fixed sizes Azure asks for:
Managed Lustre wants a /24 for its servers, AzureBastionSubnet at least a /26.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

AZURE_RESERVED_PER_SUBNET = 5
ROLE_PREFIXES = {"login": 27, "lustre": 24, "endpoints": 27, "bastion": 26}


class SubnetPlanError(ValueError):
    """The address space cannot hold the subnets the cluster needs."""


@dataclass(frozen=True)
class SubnetPlan:
    compute: ipaddress.IPv4Network
    login: ipaddress.IPv4Network
    lustre: ipaddress.IPv4Network
    endpoints: ipaddress.IPv4Network
    bastion: ipaddress.IPv4Network

    def as_dict(self) -> dict[str, ipaddress.IPv4Network]:
        return {role: getattr(self, role) for role in ("compute", "login", "lustre", "endpoints", "bastion")}


def usable_addresses(network: ipaddress.IPv4Network) -> int:
    return max(network.num_addresses - AZURE_RESERVED_PER_SUBNET, 0)


def compute_prefix_for(nodes: int) -> int:
    """Smallest prefix whose usable addresses hold `nodes` (at least a /24)."""
    needed = nodes + AZURE_RESERVED_PER_SUBNET
    return min(24, 32 - max(math.ceil(math.log2(max(needed, 2))), 1))


def plan_subnets(
    address_space: ipaddress.IPv4Network,
    nodes: int,
    overrides: dict[str, str | None] | None = None,
) -> SubnetPlan:
    """Explicit overrides win; the rest are allocated largest first, aligned, without overlap."""
    overrides = {role: cidr for role, cidr in (overrides or {}).items() if cidr}
    fixed = {role: ipaddress.IPv4Network(cidr, strict=False) for role, cidr in overrides.items()}
    wanted = {"compute": compute_prefix_for(nodes), **ROLE_PREFIXES}
    taken = list(fixed.values())
    for role, prefix in sorted(wanted.items(), key=lambda item: item[1]):
        if role in fixed:
            continue
        fixed[role] = _first_free(address_space, prefix, taken, role)
        taken.append(fixed[role])
    return SubnetPlan(**fixed)


def _first_free(
    space: ipaddress.IPv4Network, prefix: int, taken: list[ipaddress.IPv4Network], role: str
) -> ipaddress.IPv4Network:
    if prefix < space.prefixlen:
        raise SubnetPlanError(f"the {role} subnet needs a /{prefix}, larger than the address space {space}")
    for candidate in space.subnets(new_prefix=prefix):
        if not any(candidate.overlaps(other) for other in taken):
            return candidate
    raise SubnetPlanError(f"no free /{prefix} left in {space} for the {role} subnet")
