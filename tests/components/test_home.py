"""SharedHome under Pulumi mocks: the NFS share's account, share, private endpoint and DNS, the data rule,
and the network path the nodes' NFS traffic takes to it."""

from __future__ import annotations

import ipaddress
import re

import pytest

from azcluster import mockrun as harness
from azcluster.components import catalog
from azcluster.components.home import (
    FILE_PRIVATE_DNS_ZONE,
    NFS_PORT,
    SharedHome,
    SharedHomeArgs,
    home_account_name,
    nfs_source,
)
from azcluster.components.network import (
    ClusterNetwork,
    ClusterNetworkArgs,
    inbound_services,
    security_rules,
)
from azcluster.components.spec import parse_cluster
from azcluster.components.storage import storage_account_name
from azcluster.components.subnets import plan_subnets


def make_spec(home=None, **cluster):
    base = {
        "name": "demo",
        "tags": {"team": "ml"},
        "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 16}],
        "storage": {"home": home or {}},
    }
    base.update(cluster)
    return parse_cluster({"azcluster:cluster": base, "azure-native:location": "eastus"})


def build(spec=None, **overrides):
    spec = spec or make_spec()

    def program():
        net = ClusterNetwork("net", ClusterNetworkArgs.from_spec(spec))
        args = SharedHomeArgs.from_spec(spec, net)
        for key, value in overrides.items():
            setattr(args, key, value)
        args.__post_init__()
        home = SharedHome("home", args)
        return {
            "account": home.account_name,
            "account_id": home.account_id,
            "source": home.nfs_source,
            "endpoints": net.subnet_ids["endpoints"],
            "vnet": net.vnet_id,
        }

    return harness.run(program)


@pytest.fixture(scope="module")
def default():
    return build()


def test_account_is_premium_file_storage_private_and_keyless(default):
    account = default.one("storage:StorageAccount")
    inputs = account.inputs
    assert inputs["kind"] == "FileStorage"
    assert inputs["sku"] == {"name": "Premium_LRS"}
    assert inputs["enableHttpsTrafficOnly"] is False  # plain NFS 4.1 is refused otherwise
    assert inputs["publicNetworkAccess"] == "Disabled"
    assert inputs["allowSharedKeyAccess"] is False
    assert inputs["networkRuleSet"]["defaultAction"] == "Deny"
    assert inputs["tags"] == {"team": "ml", "azcluster-cluster": "demo", "azcluster-role": "home"}


def test_account_name_is_salted_apart_from_the_blob_account(default):
    name = default.one("storage:StorageAccount").inputs["accountName"]
    salt = f"{harness.MOCK_SUBSCRIPTION}/eastus"
    assert name == home_account_name("demo", salt) == default.value["account"]
    assert re.fullmatch(r"[a-z0-9]{3,24}", name)
    assert name != storage_account_name("demo", salt)


def test_share_is_nfs_sized_from_the_spec_and_lets_root_create_homes(default):
    share = default.one("storage:FileShare").inputs
    assert share["enabledProtocols"] == "NFS"
    assert share["rootSquash"] == "NoRootSquash"
    assert share["shareQuota"] == 1024
    assert share["shareName"] == "home"
    assert share["accountName"] == default.value["account"]
    zrs = build(make_spec({"size_gib": 4096, "redundancy": "ZRS"}, zone="1"))
    assert zrs.one("storage:FileShare").inputs["shareQuota"] == 4096
    assert zrs.one("storage:StorageAccount").inputs["sku"] == {"name": "Premium_ZRS"}


def test_nodes_mount_account_and_share_by_the_file_endpoint_name(default):
    account = default.value["account"]
    assert default.value["source"] == f"{account}.file.core.windows.net:/{account}/home"
    assert (
        nfs_source("acct", "home", "file.core.chinacloudapi.cn")
        == "acct.file.core.chinacloudapi.cn:/acct/home"
    )


def test_private_endpoint_targets_file_in_the_endpoints_subnet_with_its_dns_zone(default):
    endpoint = default.one("network:PrivateEndpoint")
    (connection,) = endpoint.inputs["privateLinkServiceConnections"]
    assert connection["groupIds"] == ["file"]
    assert connection["privateLinkServiceId"] == default.value["account_id"]
    assert endpoint.inputs["subnet"]["id"] == default.value["endpoints"]
    zone = next(
        z
        for z in default.of_type("privatedns:PrivateZone")
        if z.inputs["privateZoneName"] == FILE_PRIVATE_DNS_ZONE
    )
    link = next(
        r
        for r in default.of_type("privatedns:VirtualNetworkLink")
        if r.inputs["privateZoneName"] == FILE_PRIVATE_DNS_ZONE
    )
    assert link.inputs["virtualNetwork"]["id"] == default.value["vnet"]
    assert link.inputs["registrationEnabled"] is False
    group = default.one("network:PrivateDnsZoneGroup")
    assert group.inputs["privateEndpointName"] == endpoint.outputs["name"]
    assert group.inputs["privateDnsZoneConfigs"] == [{"name": "file", "privateDnsZoneId": zone.outputs["id"]}]


def test_a_hubs_file_zone_is_used_instead_of_creating_one():
    hub = (
        "/subscriptions/x/resourceGroups/hub/providers/Microsoft.Network/privateDnsZones/"
        + FILE_PRIVATE_DNS_ZONE
    )
    capture = build(existing_file_dns_zone_id=hub)
    zones = [z.inputs["privateZoneName"] for z in capture.of_type("privatedns:PrivateZone")]
    assert FILE_PRIVATE_DNS_ZONE not in zones
    assert (
        capture.one("network:PrivateDnsZoneGroup").inputs["privateDnsZoneConfigs"][0]["privateDnsZoneId"]
        == hub
    )


def test_account_and_share_are_protected_and_retained_the_rest_is_not(default):
    home = default.one("azcluster:index:SharedHome").urn
    data = [default.one("storage:StorageAccount"), default.one("storage:FileShare")]
    assert all(r.protect and r.retain_on_delete for r in data)
    others = [r for r in default.resources if r.custom and r.parent == home and r not in data]
    assert others and not any(r.protect for r in others)
    off = build(protect_data=False, retain_data=False)
    assert not any(r.protect or r.retain_on_delete for r in off.of_type("storage:FileShare"))


def test_args_reject_sizes_and_redundancy_premium_shares_do_not_have():
    spec = make_spec()
    with pytest.raises(ValueError, match="100 to 102400"):
        SharedHomeArgs(spec.name, "eastus", {}, "rg", "sn", "vnet", size_gib=50)
    with pytest.raises(ValueError, match="LRS or ZRS"):
        SharedHomeArgs(spec.name, "eastus", {}, "rg", "sn", "vnet", redundancy="GRS")


def _first_match(rules, source_ip, port, protocol="Tcp"):
    """The NSG's verdict on one inbound flow: the lowest-priority-number rule that matches it."""
    for rule in sorted(rules, key=lambda r: r.priority):
        sources = rule.sources
        if sources == ("VirtualNetwork",):
            sources = ("10.0.0.0/8",)
        if not any(
            ipaddress.ip_address(source_ip) in ipaddress.ip_network(s) for s in sources if s[0].isdigit()
        ):
            continue
        if rule.protocol not in ("*", protocol):
            continue
        ports = rule.ports
        if ports != ("*",) and not any(
            int(p.split("-")[0]) <= int(port) <= int(p.split("-")[-1]) for p in ports
        ):
            continue
        return rule
    return None


def test_the_endpoints_nsg_lets_compute_and_login_reach_the_share_on_nfs():
    """The endpoints subnet has private endpoint network policies on, so its NSG filters traffic to the
    share's private endpoint: NFS 4.1 (TCP 2049 only) from the nodes must be allowed there."""
    spec = make_spec()
    plan = plan_subnets(spec.address_space(), spec.total_nodes, spec.network.subnets.model_dump())
    services = inbound_services(spec)
    rules = security_rules(plan, spec.network.address_space, bastion=True, services=services)["endpoints"]
    for role in ("compute", "login"):
        client = str(next(getattr(plan, role).hosts()))
        verdict = _first_match(rules, client, NFS_PORT)
        assert verdict is not None and verdict.access == "Allow", (role, verdict)
    lustre = str(next(plan.lustre.hosts()))  # only the nodes: nothing else reaches the share
    assert _first_match(rules, lustre, NFS_PORT).access == "Deny"
    no_home = make_spec({"enabled": False})
    assert inbound_services(no_home) == ()  # no share, no NFS rule anywhere


def test_catalogue_records_the_service_choice_with_sources():
    services = catalog.home_services()
    default = catalog.home_default()
    assert default.name == "azure-files-nfs"
    anf = services["azure-netapp-files"]
    # At 1 TiB, Azure Files premium gives more throughput for less money than ANF Premium.
    assert default.throughput_mibps(1024) > 3 * anf.throughput_mibps(1024)
    assert default.usd_per_hour(1024) < anf.usd_per_hour(1024)
    assert all(s.source.startswith("https://learn.microsoft.com/") for s in services.values())
