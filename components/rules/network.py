"""Network (AZC020-AZC032, AZC060-AZC061): address ranges and subnets, an existing virtual network,
how the cluster is reached and reaches out, and private DNS zones."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from ..spec import CREATE_DNS_ZONE, PRIVATE_DNS_ZONE_NAMES, ClusterSpec
from ..subnets import SubnetPlan, SubnetPlanError, plan_subnets, usable_addresses
from .common import GUID, RESOURCE_GROUP, at, preview
from .registry import Problem, rule

SUBNET_ROLES = ("compute", "login", "lustre", "endpoints", "bastion")


def _parse_cidr(text: str | None) -> ipaddress.IPv4Network | None:
    """An IPv4 CIDR (host bits allowed), or None. A bare address without /prefix is not a CIDR."""
    if not isinstance(text, str) or "/" not in text:
        return None
    try:
        return ipaddress.IPv4Network(text.strip(), strict=False)
    except ValueError:
        return None


def _cidr_fields(spec: ClusterSpec) -> list[tuple[str, str]]:
    """(path, value) of the address space and every subnet override that is set."""
    fields = [(at("network.address_space"), spec.network.address_space)]
    for role in SUBNET_ROLES:
        value = getattr(spec.network.subnets, role)
        if value is not None:
            fields.append((at(f"network.subnets.{role}"), value))
    return fields


def _overrides(spec: ClusterSpec) -> dict[str, ipaddress.IPv4Network]:
    """The subnet overrides that parse, by role."""
    parsed = {role: _parse_cidr(getattr(spec.network.subnets, role)) for role in SUBNET_ROLES}
    return {role: network for role, network in parsed.items() if network is not None}


def _plan_inputs(spec: ClusterSpec) -> tuple[ipaddress.IPv4Network, dict[str, str | None]] | None:
    """The address space and overrides `plan_subnets` takes, or None when one is not a valid CIDR."""
    space = _parse_cidr(spec.network.address_space)
    given = {role: getattr(spec.network.subnets, role) for role in SUBNET_ROLES}
    if space is None or any(value and _parse_cidr(value) is None for value in given.values()):
        return None
    return space, given


def _subnet_plan(spec: ClusterSpec) -> SubnetPlan | None:
    """The plan ClusterNetwork will build, or None when an input is invalid or it does not fit."""
    inputs = _plan_inputs(spec)
    if inputs is None:
        return None
    try:
        return plan_subnets(inputs[0], spec.total_nodes, inputs[1])
    except SubnetPlanError:
        return None


@rule("AZC020", "error", "cidr-invalid", "An address range is not an IPv4 CIDR")
def cidr_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure virtual networks and subnets take IPv4 ranges in CIDR notation (a.b.c.d/n); anything else is
    refused (and Managed Lustre accepts only IPv4:
    https://learn.microsoft.com/azure/azure-managed-lustre/amlfs-prerequisites).
    """
    for path, value in _cidr_fields(spec):
        if _parse_cidr(value) is None:
            yield (
                path,
                f"{value!r} is not an IPv4 range in CIDR notation.",
                "Write it as address/prefix-length, e.g. 10.42.0.0/16.",
            )


@rule("AZC021", "warning", "cidr-host-bits-set", "An address range has host bits set")
def cidr_host_bits_set(spec: ClusterSpec) -> Iterator[Problem]:
    """'10.42.1.7/16' names the range 10.42.0.0/16; Azure expects the network address, and a range written
    with host bits usually means a typo in the prefix length.
    """
    for path, value in _cidr_fields(spec):
        network = _parse_cidr(value)
        if network is not None and network.network_address != ipaddress.IPv4Interface(value.strip()).ip:
            yield (
                path,
                f"{value!r} has host bits set; the range it names is {network}.",
                f"Write {network} (or fix the prefix length if a different range was meant).",
            )


AZURE_REFUSED_RANGES = {
    ipaddress.IPv4Network("224.0.0.0/4"): "multicast",
    ipaddress.IPv4Network("255.255.255.255/32"): "broadcast",
    ipaddress.IPv4Network("127.0.0.0/8"): "loopback",
    ipaddress.IPv4Network("169.254.0.0/16"): "link-local",
    ipaddress.IPv4Network("168.63.129.16/32"): "Azure's internal DNS",
}


@rule("AZC022", "error", "reserved-address-range", "An address range overlaps a range Azure reserves")
def reserved_address_range(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses virtual network ranges that overlap multicast, broadcast, loopback, link-local or its
    internal DNS address 168.63.129.16.

    Source: https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq
    ("What address ranges can I use in my virtual networks?").
    """
    for path, value in _cidr_fields(spec):
        network = _parse_cidr(value)
        if network is None:
            continue
        clashes = [f"{net} ({what})" for net, what in AZURE_REFUSED_RANGES.items() if network.overlaps(net)]
        if clashes:
            yield (
                path,
                f"{value!r} overlaps {', '.join(clashes)}, which Azure does not allow in a virtual network.",
                "Use a private range (RFC 1918): 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16.",
            )


RFC1918 = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
)
SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")


@rule(
    "AZC023",
    "warning",
    "non-private-address-space",
    "The address space is not an RFC 1918 private range",
)
def non_private_address_space(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure accepts public ranges in a virtual network, but then the nodes can no longer reach the real
    internet hosts in that range (package mirrors, registries); 100.64.0.0/10 (RFC 6598 shared space) is
    usable but collides with carrier-grade NAT on many networks. Microsoft recommends RFC 1918 ranges
    (https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq).
    """
    network = _parse_cidr(spec.network.address_space)
    if network is None or any(network.subnet_of(private) for private in RFC1918):
        return
    if any(network.overlaps(reserved) for reserved in AZURE_REFUSED_RANGES):
        return  # AZC022 says it
    if network.subnet_of(SHARED_ADDRESS_SPACE):
        why = "is RFC 6598 shared address space (carrier-grade NAT), not an RFC 1918 private range"
    else:
        why = "is not a private range: internet hosts in it become unreachable from the cluster"
    yield (
        at("network.address_space"),
        f"address space {spec.network.address_space!r} {why}.",
        "Use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 that does not overlap your other "
        "networks.",
    )


@rule("AZC024", "error", "subnet-outside-address-space", "A subnet override lies outside the address space")
def subnet_outside_address_space(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses a subnet whose range is not inside its virtual network's address space
    (https://learn.microsoft.com/azure/virtual-network/virtual-network-manage-subnet).
    """
    space = _parse_cidr(spec.network.address_space)
    if space is None:
        return
    for role, network in _overrides(spec).items():
        if not network.subnet_of(space):
            yield (
                at(f"network.subnets.{role}"),
                f"the {role} subnet {network} is not inside the address space {space}.",
                f"Pick a range inside {space}, or leave `subnets.{role}` out to have it carved "
                "automatically.",
            )


@rule("AZC025", "error", "subnets-overlap", "Two subnet overrides overlap")
def subnets_overlap(spec: ClusterSpec) -> Iterator[Problem]:
    """Subnets of one virtual network must not overlap; Azure refuses the second one
    (NetcfgSubnetRangesOverlap).
    """
    overrides = list(_overrides(spec).items())
    for i, (role, network) in enumerate(overrides):
        for other_role, other in overrides[:i]:
            if network.overlaps(other):
                yield (
                    at(f"network.subnets.{role}"),
                    f"the {role} subnet {network} overlaps the {other_role} subnet {other}.",
                    "Give every subnet its own range, or leave one out to have it carved automatically.",
                )


@rule("AZC026", "error", "address-space-too-small", "The address space cannot hold the cluster's subnets")
def address_space_too_small(spec: ClusterSpec) -> Iterator[Problem]:
    """azcluster carves compute (sized for every node), login, Managed Lustre (/24), private endpoint and
    AzureBastionSubnet (/26) subnets from the address space (components/subnets.py); if they do not fit,
    the network cannot be built.
    """
    inputs = _plan_inputs(spec)
    if inputs is None:
        return  # AZC020 says it
    space, given = inputs
    try:
        plan_subnets(space, spec.total_nodes, given)
    except SubnetPlanError as err:
        yield (
            at("network.address_space"),
            f"address space {space} cannot hold the cluster's subnets for {spec.total_nodes} nodes: {err}.",
            "Use a larger address space (a /16 fits thousands of nodes) or smaller subnet overrides.",
        )


@rule("AZC027", "error", "compute-subnet-too-small", "The compute subnet override cannot hold every node")
def compute_subnet_too_small(spec: ClusterSpec) -> Iterator[Problem]:
    """Every GPU node takes one address in the compute subnet and Azure keeps 5 addresses of every subnet;
    nodes past the last free address fail to allocate (SubnetIsFull).

    Source: https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq
    ("Are there any restrictions on using IP addresses within these subnets?").
    """
    network = _overrides(spec).get("compute")
    if network is not None and usable_addresses(network) < spec.total_nodes:
        yield (
            at("network.subnets.compute"),
            f"the compute subnet {network} has {usable_addresses(network)} usable addresses (Azure keeps "
            f"5) but the pools have {spec.total_nodes} nodes.",
            "Use a larger compute subnet, or leave `subnets.compute` out to have it sized automatically.",
        )


BASTION_MIN_PREFIX = 26


@rule("AZC028", "error", "bastion-subnet-too-small", "The AzureBastionSubnet override is smaller than /26")
def bastion_subnet_too_small(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure Bastion refuses an AzureBastionSubnet smaller than /26
    (https://learn.microsoft.com/azure/bastion/configuration-settings#subnet).
    """
    network = _overrides(spec).get("bastion")
    if spec.network.bastion and network is not None and network.prefixlen > BASTION_MIN_PREFIX:
        yield (
            at("network.subnets.bastion"),
            f"the Bastion subnet {network} is smaller than the /{BASTION_MIN_PREFIX} Azure Bastion requires.",
            f"Use a /{BASTION_MIN_PREFIX} or larger, or leave `subnets.bastion` out.",
        )


LUSTRE_SUBNET_PREFIX_BY_TIB = ((16, 27), (40, 26), (92, 25), (196, 24), (400, 23))
"""Recommended Managed Lustre subnet size by capacity: (up to TiB, prefix length)."""


def lustre_subnet_prefix(capacity_tib: int) -> int:
    """Largest prefix length (smallest subnet) Microsoft recommends for a file system of that capacity.

    Past 400 TiB the table ends; each doubling is assumed to need one more bit.
    """
    for up_to, prefix in LUSTRE_SUBNET_PREFIX_BY_TIB:
        if capacity_tib <= up_to:
            return prefix
    prefix, limit = 23, 400
    while capacity_tib > limit and prefix > 16:
        prefix, limit = prefix - 1, limit * 2
    return prefix


@rule(
    "AZC029",
    "warning",
    "lustre-subnet-too-small",
    "The Managed Lustre subnet is small for its capacity",
)
def lustre_subnet_too_small(spec: ClusterSpec) -> Iterator[Problem]:
    """Managed Lustre needs more addresses as it grows: 4-16 TiB a /27, up to 40 TiB a /26, 92 TiB a /25,
    196 TiB a /24, 400 TiB a /23. The automatic plan gives it a /24.

    Source:
    https://learn.microsoft.com/azure/azure-managed-lustre/amlfs-prerequisites#network-size-requirements
    """
    lustre = spec.storage.lustre
    if lustre is None or not lustre.enabled:
        return
    network = _overrides(spec).get("lustre")
    if network is None:
        plan = _subnet_plan(spec)
        network = plan.lustre if plan is not None else None
    wanted = lustre_subnet_prefix(lustre.capacity_tib)
    if network is not None and network.prefixlen > wanted:
        source = "override" if spec.network.subnets.lustre else "automatic /24"
        yield (
            at("network.subnets.lustre"),
            f"the Managed Lustre subnet {network} ({source}) is smaller than the /{wanted} Microsoft "
            f"recommends for {lustre.capacity_tib} TiB.",
            f"Set `network.subnets.lustre` to a /{wanted} or larger inside the address space.",
        )


VIRTUAL_NETWORK_ID = re.compile(
    rf"^/subscriptions/{GUID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft\.Network/"
    r"virtualNetworks/[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]$",
    re.IGNORECASE,
)


@rule(
    "AZC030",
    "error",
    "existing-vnet-id-malformed",
    "existing_vnet_id is not a virtual network resource id",
)
def existing_vnet_id_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The subnets are created inside the existing network by its resource id; a name or a malformed id
    fails the deployment. Virtual network names: 2-64 characters, alphanumerics, underscores, periods and
    hyphens, starting alphanumeric, ending alphanumeric or underscore
    (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules).
    """
    value = spec.network.existing_vnet_id
    if value is not None and not VIRTUAL_NETWORK_ID.fullmatch(value.strip()):
        yield (
            at("network.existing_vnet_id"),
            f"{preview(value, 60)!r} is not a virtual network resource id.",
            "Use /subscriptions/<subscription-guid>/resourceGroups/<group>/providers/Microsoft.Network/"
            "virtualNetworks/<name> (`az network vnet show -g <group> -n <name> --query id`).",
        )


@rule(
    "AZC031",
    "warning",
    "cluster-unreachable",
    "No Bastion and no existing network: nothing can reach the VMs",
)
def cluster_unreachable(spec: ClusterSpec) -> Iterator[Problem]:
    """No VM azcluster builds has a public IP. Without Bastion and without an existing (peered,
    VPN-connected) network, nothing outside the new virtual network can reach the login node or the GPU
    nodes.
    """
    if not spec.network.bastion and spec.network.existing_vnet_id is None:
        target = "the login node" if spec.login.enabled else "any node"
        yield (
            at("network.bastion"),
            f"Bastion is off and the cluster gets a new virtual network: nothing outside it can reach "
            f"{target} (no VM has a public IP).",
            "Set `network.bastion: true`, or deploy into a network you can reach with "
            "`network.existing_vnet_id`.",
        )


@rule(
    "AZC032",
    "warning",
    "no-outbound-internet",
    "No NAT gateway in a new network: nodes have no outbound access",
)
def no_outbound_internet(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure is retiring default outbound access: VMs without public IPs in a new subnet need explicit
    outbound (a NAT gateway) to reach package mirrors, container registries and Azure endpoints.

    Source: https://learn.microsoft.com/azure/virtual-network/ip-services/default-outbound-access
    """
    if not spec.network.nat_gateway and spec.network.existing_vnet_id is None:
        yield (
            at("network.nat_gateway"),
            "the NAT gateway is off in a new virtual network: nodes cannot reach package mirrors, "
            "registries or the internet.",
            "Set `network.nat_gateway: true`, or use `network.existing_vnet_id` with your own outbound "
            "route.",
        )


PRIVATE_DNS_ZONE_ID = re.compile(
    rf"^/subscriptions/{GUID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft\.Network/"
    r"privateDnsZones/(?P<name>[^/\s]+)$",
    re.IGNORECASE,
)


def _private_endpoint_kinds(spec: ClusterSpec) -> list[tuple[str, str]]:
    """(private-link kind, what uses it) for each private endpoint the spec creates."""
    kinds = []
    if spec.storage.blob.enabled:
        kinds.append(("blob", "the blob data account"))
    home = getattr(spec.storage, "home", None)
    if home is not None and home.enabled:
        kinds.append(("file", "the shared home (Azure Files NFS)"))
    if spec.uses_mysql_accounting:
        kinds.append(("mysql", "the accounting database (MySQL flexible server)"))
    return kinds


@rule(
    "AZC060",
    "warning",
    "existing-network-dns-zone-unnamed",
    "Joining an existing network without naming its private DNS zones",
)
def existing_network_dns_zone_unnamed(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure links a virtual network to at most one private DNS zone of a given name: creating another
    privatelink.blob.core.windows.net (or .file.) zone and linking it to a hub's network, which usually has
    one, is refused ("A virtual network cannot be linked to multiple zones with overlapping namespaces"). So
    in an existing network azcluster creates no such zone by default (components/network.py,
    `private_dns_zone`) and the endpoint's A record is left to the network's own DNS (in Azure landing
    zones, Azure Policy's private-endpoint DNS integration writes it). Without that record the nodes resolve
    the account's public address, which refuses them (public network access is off), and mounts fail.

    Sources: https://learn.microsoft.com/azure/private-link/private-endpoint-dns-integration (hub-and-spoke:
    one zone per name in the hub, linked to the spokes); https://learn.microsoft.com/azure/dns/private-dns-
    virtual-network-links.
    """
    if not spec.network.existing_vnet_id:
        return
    for kind, user in _private_endpoint_kinds(spec):
        if kind in spec.network.dns_zones:
            continue
        zone = PRIVATE_DNS_ZONE_NAMES[kind]
        yield (
            at("network.dns_zones"),
            f"the cluster joins an existing virtual network and {user} gets a private endpoint, but no "
            f"{zone} zone is named: azcluster creates none (the network may already be linked to one), so "
            "the endpoint resolves only if your network's DNS registers it.",
            f"Set `network.dns_zones.{kind}` to the resource id of the hub's zone (`az network private-dns "
            f"zone show -g <group> -n {zone} --query id`), or to `create` if no zone of that name is linked "
            "to the network.",
        )


@rule("AZC061", "error", "dns-zone-id-malformed", "A private DNS zone in network.dns_zones is not a zone id")
def dns_zone_id_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The private endpoint's DNS zone group references the zone by resource id, and only a zone named for
    the private-link kind resolves it (privatelink.blob.core.windows.net for blob:
    https://learn.microsoft.com/azure/private-link/private-endpoint-dns); anything else fails the
    deployment or resolves nothing.
    """
    for kind, value in spec.network.dns_zones.items():
        text = value.strip()
        if text.lower() == CREATE_DNS_ZONE:
            continue
        expected = PRIVATE_DNS_ZONE_NAMES[kind]
        match = PRIVATE_DNS_ZONE_ID.fullmatch(text)
        if match is None:
            problem = f"{preview(value, 60)!r} is neither `create` nor a private DNS zone resource id."
        elif match["name"].lower() != expected:
            problem = f"zone {match['name']!r} is not {expected}, the zone {kind} private endpoints use."
        else:
            continue
        yield (
            at(f"network.dns_zones.{kind}"),
            problem,
            f"Use /subscriptions/<guid>/resourceGroups/<group>/providers/Microsoft.Network/privateDnsZones/"
            f"{expected}, or `create`.",
        )
