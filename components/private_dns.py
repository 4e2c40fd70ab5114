"""A private DNS zone linked to the cluster's virtual network: what every private endpoint's name needs.

A private endpoint answers on a private IP only if the client resolves the service's name through the
`privatelink.*` zone Azure documents for that service, linked to the virtual network the client sits in
(learn.microsoft.com/azure/private-link/private-endpoint-dns). The zone is global (location "global"), the
link does not auto-register VM names (`registrationEnabled: false`: only endpoints belong in it).
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import network, privatedns


def linked_private_zone(
    resource_name: str,
    zone_name: str,
    resource_group_name: pulumi.Input[str],
    cluster_name: str,
    vnet_id: pulumi.Input[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> privatedns.PrivateZone:
    """The zone `zone_name` (resource `resource_name`) and its link `<resource_name>-link` to the VNet."""
    zone = privatedns.PrivateZone(
        resource_name,
        private_zone_name=zone_name,
        resource_group_name=resource_group_name,
        location="global",
        tags=tags,
        opts=opts,
    )
    privatedns.VirtualNetworkLink(
        f"{resource_name}-link",
        private_zone_name=zone.name,
        virtual_network_link_name=f"{cluster_name}-vnet",
        resource_group_name=resource_group_name,
        location="global",
        virtual_network=privatedns.SubResourceArgs(id=vnet_id),
        registration_enabled=False,
        tags=tags,
        opts=opts,
    )
    return zone


def endpoint_zone_id(
    resource_name: str,
    zone_name: str,
    existing_zone_id: str | None,
    create: bool,
    resource_group_name: pulumi.Input[str],
    cluster_name: str,
    vnet_id: pulumi.Input[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> pulumi.Input[str] | None:
    """The zone an endpoint registers in: a hub's given one, else (with `create`) `linked_private_zone`;
    None when neither (network.private_dns_zone decided: a hub network's own DNS registers the endpoint)."""
    if existing_zone_id:
        return existing_zone_id
    if not create:
        return None
    return linked_private_zone(
        resource_name, zone_name, resource_group_name, cluster_name, vnet_id, tags, opts
    ).id


def endpoint_zone_group(
    resource_name: str,
    endpoint: network.PrivateEndpoint,
    group: str,
    zone_id: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> network.PrivateDnsZoneGroup:
    """Register `endpoint`'s records (sub-resource `group`) in the zone `zone_id`: the zone group "default",
    which Azure keeps in step with the endpoint's addresses (private-endpoint-dns-integration)."""
    return network.PrivateDnsZoneGroup(
        resource_name,
        private_endpoint_name=endpoint.name,
        private_dns_zone_group_name="default",
        resource_group_name=resource_group_name,
        private_dns_zone_configs=[network.PrivateDnsZoneConfigArgs(name=group, private_dns_zone_id=zone_id)],
        opts=opts,
    )
