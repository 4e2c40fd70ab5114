"""ClusterNetwork under Pulumi mocks: subnets, NSG behaviour, NAT, Bastion, DNS, existing networks."""

from __future__ import annotations

import ipaddress

import pytest

from azcluster import mockrun as harness
from azcluster.components.network import (
    AZURE_FILES_NFS,
    BASTION_SUBNET_NAME,
    ClusterNetwork,
    ClusterNetworkArgs,
    InboundService,
    parse_vnet_id,
    security_rules,
)
from azcluster.components.spec import parse_cluster
from azcluster.components.subnets import plan_subnets
from azcluster.components.tags import TAG_CLUSTER, TAG_ROLE

UNTAGGABLE = {
    "network:Subnet",
    "network:PrivateDnsZoneGroup",
    "storage:BlobContainer",
    "authorization:RoleAssignment",
    "privatedns:PrivateRecordSet",
}
EXISTING_VNET = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/hub-net"
    "/providers/Microsoft.Network/virtualNetworks/hub-vnet"
)


def make_spec(**cluster):
    base = {
        "name": "demo",
        "tags": {"team": "ml"},
        "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 250}],
        "storage": {"blob": {"enabled": True}},
    }
    base.update(cluster)
    return parse_cluster({"azcluster:cluster": base, "azure-native:location": "eastus"})


def build(spec=None, **overrides):
    args = ClusterNetworkArgs.from_spec(spec or make_spec())
    for key, value in overrides.items():
        setattr(args, key, value)
    args.__post_init__()
    holder = {}

    def program():
        net = ClusterNetwork("net", args)
        holder["net"] = net
        return {
            "rg": net.resource_group_name,
            "vnet_id": net.vnet_id,
            "subnets": net.subnet_ids,
            "nat_ip": net.nat_public_ip,
            "blob_zone": net.blob_dns_zone_id,
        }

    capture = harness.run(program)
    return capture, holder["net"], args


@pytest.fixture(scope="module")
def default():
    return build()


# --- NSG semantics: evaluate the registered rules the way Azure does (lowest priority number wins) ---

SERVICE_TAGS = {"Internet", "VirtualNetwork", "AzureLoadBalancer", "AzureMonitor"}


def _matches_port(spec: str, port: int) -> bool:
    if spec == "*":
        return True
    low, _, high = spec.partition("-")
    return int(low) <= port <= int(high or low)


def _matches_source(prefix: str, source: str, space: ipaddress.IPv4Network) -> bool:
    if prefix == "*":
        return True
    if prefix == "VirtualNetwork":
        return source not in SERVICE_TAGS and ipaddress.ip_network(source).subnet_of(space)
    if prefix in SERVICE_TAGS or source in SERVICE_TAGS:
        return prefix == source
    return ipaddress.ip_network(source).subnet_of(ipaddress.ip_network(prefix))


def verdict(nsg, source: str, port: int, protocol: str, space: str) -> str:
    network_space = ipaddress.ip_network(space)
    for rule in sorted(nsg.inputs["securityRules"], key=lambda r: r["priority"]):
        sources = rule.get("sourceAddressPrefixes") or [rule["sourceAddressPrefix"]]
        ports = rule.get("destinationPortRanges") or [rule["destinationPortRange"]]
        if (
            rule["direction"] == "Inbound"
            and rule["protocol"] in ("*", protocol)
            and any(_matches_port(p, port) for p in ports)
            and any(_matches_source(s, source, network_space) for s in sources)
        ):
            return rule["access"]
    # Azure's default inbound rules: AllowVnetInBound, AllowAzureLoadBalancerInBound, DenyAllInBound.
    if source == "AzureLoadBalancer" or _matches_source("VirtualNetwork", source, network_space):
        return "Allow"
    return "Deny"


def host(cidr) -> str:
    return f"{ipaddress.ip_network(str(cidr))[4]}/32"


def nsg_for(capture, role):
    return capture.one("network:NetworkSecurityGroup", f"net-nsg-{role}")


def test_subnets_match_the_plan_and_are_named(default):
    capture, net, args = default
    spec = make_spec()
    plan = plan_subnets(spec.address_space(), spec.total_nodes, spec.network.subnets.model_dump())
    assert args.subnet_plan == plan
    for role in ("compute", "login", "lustre", "endpoints", "bastion"):
        subnet = capture.one("network:Subnet", f"net-subnet-{role}")
        assert subnet.inputs["addressPrefix"] == str(getattr(plan, role))
        assert subnet.inputs["virtualNetworkName"] == "demo-vnet"
        assert subnet.inputs["subnetName"] == (BASTION_SUBNET_NAME if role == "bastion" else f"demo-{role}")
    assert (
        ipaddress.ip_network(
            capture.one("network:Subnet", "net-subnet-compute").inputs["addressPrefix"]
        ).num_addresses
        - 5
        >= 250
    )
    vnet = capture.one("network:VirtualNetwork")
    assert vnet.inputs["addressSpace"] == {"addressPrefixes": ["10.42.0.0/16"]}
    assert set(capture.value["subnets"]) == {"compute", "login", "lustre", "endpoints", "bastion"}
    assert capture.value["subnets"]["lustre"].endswith("/virtualNetworks/demo-vnet/subnets/demo-lustre")


def test_every_subnet_but_bastion_has_its_own_nsg(default):
    capture, _, _ = default
    for role in ("compute", "login", "lustre", "endpoints"):
        subnet = capture.one("network:Subnet", f"net-subnet-{role}")
        assert subnet.inputs["networkSecurityGroup"]["id"].endswith(f"/networkSecurityGroups/demo-{role}-nsg")
    assert "networkSecurityGroup" not in capture.one("network:Subnet", "net-subnet-bastion").inputs


def test_internet_is_denied_explicitly_everywhere(default):
    capture, _, args = default
    for role in ("compute", "login", "lustre", "endpoints"):
        nsg = nsg_for(capture, role)
        rules = nsg.inputs["securityRules"]
        deny = [r for r in rules if r.get("sourceAddressPrefix") == "Internet" and r["access"] == "Deny"]
        assert len(deny) == 1 and deny[0]["direction"] == "Inbound" and deny[0]["destinationPortRange"] == "*"
        for port in (22, 80, 443, 988, 2049, 3389):
            assert verdict(nsg, "Internet", port, "Tcp", args.address_space) == "Deny", (role, port)
        allows_from_anywhere = [
            r
            for r in rules
            if r["access"] == "Allow"
            and "*" in (r.get("sourceAddressPrefixes") or [r["sourceAddressPrefix"]])
        ]
        assert allows_from_anywhere == []


def test_lustre_ports_are_open_both_ways_between_clients_and_servers(default):
    capture, _, args = default
    plan, space = args.subnet_plan, args.address_space
    lustre_nsg = nsg_for(capture, "lustre")
    for client in ("compute", "login"):
        for port in (988, 1019, 1021, 1023):
            assert verdict(lustre_nsg, host(getattr(plan, client)), port, "Tcp", space) == "Allow"
            assert verdict(nsg_for(capture, client), host(plan.lustre), port, "Tcp", space) == "Allow"
        assert verdict(lustre_nsg, host(getattr(plan, client)), 1024, "Tcp", space) == "Deny"
        assert verdict(lustre_nsg, host(getattr(plan, client)), 22, "Tcp", space) == "Deny"
    assert verdict(lustre_nsg, host(plan.lustre), 22, "Tcp", space) == "Allow"  # AMLFS: any within its subnet
    assert verdict(lustre_nsg, host(plan.endpoints), 988, "Tcp", space) == "Deny"


def test_ssh_and_cluster_traffic_inside_the_network(default):
    capture, _, args = default
    plan, space = args.subnet_plan, args.address_space
    compute, login, endpoints = (
        nsg_for(capture, "compute"),
        nsg_for(capture, "login"),
        nsg_for(capture, "endpoints"),
    )
    assert verdict(compute, host(plan.bastion), 22, "Tcp", space) == "Allow"
    assert verdict(compute, host(plan.login), 22, "Tcp", space) == "Allow"
    assert verdict(compute, host(plan.compute), 29500, "Tcp", space) == "Allow"  # MPI / NCCL bootstrap
    assert verdict(compute, host(plan.endpoints), 22, "Tcp", space) == "Deny"  # not every subnet
    assert verdict(compute, host(plan.bastion), 3389, "Tcp", space) == "Deny"
    assert verdict(login, host(plan.bastion), 22, "Tcp", space) == "Allow"
    assert verdict(login, host(plan.compute), 6817, "Tcp", space) == "Allow"
    assert verdict(compute, host(plan.compute), 2049, "Tcp", space) == "Allow"  # any port between nodes
    assert verdict(endpoints, host(plan.compute), 443, "Tcp", space) == "Allow"
    assert verdict(endpoints, host(plan.lustre), 443, "Tcp", space) == "Allow"  # Lustre HSM to blob
    assert verdict(endpoints, host(plan.compute), 22, "Tcp", space) == "Deny"


def test_nfs_is_open_nowhere_when_nothing_serves_it():
    capture, _, args = build(make_spec(storage={"home": {"enabled": False}}))  # the shared home serves NFS
    plan, space = args.subnet_plan, args.address_space
    for role in ("compute", "login", "endpoints", "lustre"):
        nsg = nsg_for(capture, role)
        opened = [r["name"] for r in nsg.inputs["securityRules"] if "nfs" in r["name"]]
        assert opened == [], role
        for port in (111, 2049):
            # From the address space outside the cluster's subnets, and from the endpoints subnet.
            assert verdict(nsg, "10.42.200.9/32", port, "Tcp", space) == "Deny", (role, port)
    for port in (111, 2049):
        assert verdict(nsg_for(capture, "endpoints"), host(plan.compute), port, "Tcp", space) == "Deny"


def test_a_served_port_is_opened_on_its_subnet_to_its_clients_only():
    spec = make_spec()
    capture, _, args = build(spec, services=(AZURE_FILES_NFS,))
    plan, space = args.subnet_plan, args.address_space
    endpoints = nsg_for(capture, "endpoints")
    for client in ("compute", "login"):
        assert verdict(endpoints, host(getattr(plan, client)), 2049, "Tcp", space) == "Allow"
        assert verdict(endpoints, host(getattr(plan, client)), 111, "Tcp", space) == "Deny"
    assert verdict(endpoints, host(plan.lustre), 2049, "Tcp", space) == "Deny"
    assert verdict(endpoints, "10.42.200.9/32", 2049, "Tcp", space) == "Deny"
    for role in ("compute", "login"):  # the clients' own subnets serve nothing
        assert verdict(nsg_for(capture, role), "10.42.200.9/32", 2049, "Tcp", space) == "Deny"


def test_an_inbound_service_names_known_roles():
    with pytest.raises(ValueError, match="roles must be among"):
        InboundService("allow-x", "storage", ("1",), "Tcp", ("compute",), "x")
    with pytest.raises(ValueError, match="no clients"):
        InboundService("allow-x", "login", ("1",), "Tcp", (), "x")


def test_rule_priorities_are_unique_and_allows_come_before_denies():
    spec = make_spec()
    plan = plan_subnets(spec.address_space(), spec.total_nodes, {})
    for role, rules in security_rules(plan, "10.42.0.0/16", bastion=True).items():
        priorities = [r.priority for r in rules]
        assert len(priorities) == len(set(priorities)), role
        assert all(100 <= p <= 4096 for p in priorities)
        assert max(r.priority for r in rules if r.access == "Allow") < min(
            r.priority for r in rules if r.access == "Deny"
        )
    served = (AZURE_FILES_NFS, InboundService("allow-y", "endpoints", ("9",), "Tcp", ("login",), "y"))
    for rules in security_rules(plan, "10.42.0.0/16", True, served).values():
        assert len({r.priority for r in rules}) == len(rules) and len({r.name for r in rules}) == len(rules)
    without_bastion = security_rules(plan, "10.42.0.0/16", bastion=False)
    assert not any(r.name == "allow-ssh-from-bastion" for r in without_bastion["compute"])


def test_nat_gateway_gives_private_subnets_outbound(default):
    capture, _, _ = default
    nat = capture.one("network:NatGateway")
    assert nat.inputs["sku"] == {"name": "Standard"}
    nat_ip = capture.one("network:PublicIPAddress", "net-nat-ip")
    assert nat.inputs["publicIpAddresses"] == [{"id": nat_ip.id}]
    assert nat_ip.inputs["sku"] == {"name": "Standard", "tier": "Regional"}
    assert nat_ip.inputs["publicIPAllocationMethod"] == "Static"
    for role in ("compute", "login", "lustre"):
        subnet = capture.one("network:Subnet", f"net-subnet-{role}")
        assert subnet.inputs["natGateway"] == {"id": nat.id}
        assert subnet.inputs["defaultOutboundAccess"] is False
    for role in ("endpoints", "bastion"):
        assert "natGateway" not in capture.one("network:Subnet", f"net-subnet-{role}").inputs
    assert capture.value["nat_ip"] == nat_ip.outputs["ipAddress"]


def test_only_nat_and_bastion_have_public_ips(default):
    capture, _, _ = default
    public_ips = {ip.id: ip for ip in capture.of_type("network:PublicIPAddress")}
    assert {ip.name for ip in public_ips.values()} == {"net-nat-ip", "net-bastion-ip"}
    bastion = capture.one("network:BastionHost")
    users = [ip["id"] for ip in capture.one("network:NatGateway").inputs["publicIpAddresses"]]
    users += [cfg["publicIPAddress"]["id"] for cfg in bastion.inputs["ipConfigurations"]]
    assert sorted(users) == sorted(public_ips)


def test_bastion_host_uses_its_subnet_and_allows_native_ssh(default):
    capture, _, _ = default
    bastion = capture.one("network:BastionHost")
    assert bastion.inputs["sku"] == {"name": "Standard"}
    assert bastion.inputs["enableTunneling"] is True
    (config,) = bastion.inputs["ipConfigurations"]
    assert config["subnet"]["id"] == capture.one("network:Subnet", "net-subnet-bastion").id
    assert config["subnet"]["id"].endswith("/subnets/AzureBastionSubnet")


def test_private_dns_zones_are_linked_without_registration(default):
    capture, net, _ = default
    zones = {z.inputs["privateZoneName"]: z for z in capture.of_type("privatedns:PrivateZone")}
    assert set(zones) == {"privatelink.blob.core.windows.net", "demo.azcluster.internal"}
    assert all(z.inputs["location"] == "global" for z in zones.values())
    links = capture.of_type("privatedns:VirtualNetworkLink")
    assert sorted(link.inputs["privateZoneName"] for link in links) == sorted(zones)
    vnet = capture.one("network:VirtualNetwork")
    for link in links:
        assert link.inputs["registrationEnabled"] is False
        assert link.inputs["virtualNetwork"] == {"id": vnet.id}
    assert capture.value["blob_zone"] == zones["privatelink.blob.core.windows.net"].id
    assert net.cluster_dns_zone_name == "demo.azcluster.internal"


def test_private_endpoint_subnet_enforces_its_nsg(default):
    capture, _, _ = default
    endpoints = capture.one("network:Subnet", "net-subnet-endpoints")
    assert endpoints.inputs["privateEndpointNetworkPolicies"] == "NetworkSecurityGroupEnabled"


def test_subnets_are_created_one_after_another(default):
    capture, _, _ = default
    order = ["compute", "login", "lustre", "endpoints", "bastion"]
    subnets = [capture.one("network:Subnet", f"net-subnet-{role}") for role in order]
    for earlier, later in zip(subnets, subnets[1:], strict=False):
        assert capture.depends_on(later, earlier)
        assert not capture.depends_on(earlier, later)
    cluster_zone = capture.one("privatedns:PrivateZone", "net-zone")
    assert capture.depends_on(subnets[2], cluster_zone)  # the Lustre subnet waits for the cluster zone
    assert not capture.depends_on(subnets[0], cluster_zone)  # compute does not


def test_children_are_parented_tagged_and_named_from_the_component(default):
    capture, _, _ = default
    component = capture.one("azcluster:index:ClusterNetwork")
    for resource in capture.resources:
        if not resource.custom:
            continue
        assert resource.parent == component.urn, resource.name
        assert resource.name.startswith("net-")
        short = resource.type.split(":", 1)[1]
        if short not in UNTAGGABLE:
            tags = resource.inputs.get("tags")
            assert tags and tags[TAG_CLUSTER] == "demo" and tags["team"] == "ml" and tags[TAG_ROLE], (
                resource.name
            )


def test_created_group_is_kept_when_the_cluster_holds_data(default):
    capture, _, _ = default
    group = capture.one("resources:ResourceGroup")
    assert group.inputs["resourceGroupName"] == "demo-rg"
    assert group.retain_on_delete is True
    assert capture.value["rg"] == "demo-rg"
    stateless, _, _ = build(make_spec(storage={}))
    assert stateless.one("resources:ResourceGroup").retain_on_delete is False


def test_existing_resource_group_is_used_not_created():
    capture, _, _ = build(make_spec(resource_group="shared-rg"))
    assert capture.of_type("resources:ResourceGroup") == []
    assert {nsg.inputs["resourceGroupName"] for nsg in capture.of_type("network:NetworkSecurityGroup")} == {
        "shared-rg"
    }
    assert capture.value["rg"] == "shared-rg"


def test_existing_vnet_gets_only_subnets():
    spec = make_spec(
        resource_group="shared-rg",
        network={"existing_vnet_id": EXISTING_VNET, "address_space": "10.50.0.0/16"},
    )
    capture, net, _ = build(spec)
    assert capture.of_type("network:VirtualNetwork") == []
    assert capture.of_type("resources:ResourceGroup") == []
    subnets = capture.of_type("network:Subnet")
    assert {s.inputs["resourceGroupName"] for s in subnets} == {"hub-net"}
    assert {s.inputs["virtualNetworkName"] for s in subnets} == {"hub-vnet"}
    assert all(
        ipaddress.ip_network(s.inputs["addressPrefix"]).subnet_of(ipaddress.ip_network("10.50.0.0/16"))
        for s in subnets
    )
    for link in capture.of_type("privatedns:VirtualNetworkLink"):
        assert link.inputs["virtualNetwork"] == {"id": EXISTING_VNET}
    assert capture.value["vnet_id"] == EXISTING_VNET


def test_existing_vnet_id_must_be_a_vnet_id():
    assert parse_vnet_id(EXISTING_VNET) == ("11111111-2222-3333-4444-555555555555", "hub-net", "hub-vnet")
    with pytest.raises(ValueError, match="not a virtual network id"):
        ClusterNetworkArgs.from_spec(
            make_spec(network={"existing_vnet_id": "/subscriptions/x/resourceGroups/y"})
        )


def test_without_bastion_and_nat_there_is_no_public_ip_at_all():
    capture, net, _ = build(make_spec(network={"bastion": False, "nat_gateway": False}))
    assert capture.of_type("network:PublicIPAddress") == []
    assert capture.of_type("network:NatGateway") == []
    assert capture.of_type("network:BastionHost") == []
    assert BASTION_SUBNET_NAME not in {s.inputs["subnetName"] for s in capture.of_type("network:Subnet")}
    assert "bastion" not in capture.value["subnets"] and capture.value["nat_ip"] is None
    assert all("defaultOutboundAccess" not in s.inputs for s in capture.of_type("network:Subnet"))
    assert net.nat_public_ip is None


def test_zonal_cluster_puts_nat_in_its_zone():
    capture, _, _ = build(make_spec(zone="2"))
    assert capture.one("network:NatGateway").inputs["zones"] == ["2"]
    assert capture.one("network:PublicIPAddress", "net-nat-ip").inputs["zones"] == ["2"]


def test_args_reject_what_azure_would_reject():
    with pytest.raises(ValueError, match="not an IPv4 CIDR"):
        ClusterNetworkArgs.from_spec(make_spec(network={"address_space": "nonsense"}))
    with pytest.raises(ValueError, match="bastion_sku"):
        args = ClusterNetworkArgs.from_spec(make_spec())
        args.bastion_sku = "Gold"
        args.__post_init__()


def test_the_blob_private_link_zone_exists_only_for_a_blob_account_and_never_twice_in_a_hub():
    no_blob = ClusterNetworkArgs.from_spec(make_spec(storage={}))
    assert (no_blob.create_blob_dns_zone, no_blob.existing_blob_dns_zone_id) == (False, None)
    capture, net, _ = build(make_spec(storage={}))
    assert capture.of_type("privatedns:PrivateZone")[0].inputs["privateZoneName"] == "demo.azcluster.internal"
    assert len(capture.of_type("privatedns:PrivateZone")) == 1 and net.blob_dns_zone_id is None
    hub = ClusterNetworkArgs.from_spec(make_spec(network={"existing_vnet_id": EXISTING_VNET}))
    assert (hub.create_blob_dns_zone, hub.existing_blob_dns_zone_id) == (False, None)
    zone_id = EXISTING_VNET.split("/providers/")[0] + (
        "/providers/Microsoft.Network/privateDnsZones/privatelink.blob.core.windows.net"
    )
    reuse = make_spec(network={"existing_vnet_id": EXISTING_VNET, "dns_zones": {"blob": zone_id}})
    assert ClusterNetworkArgs.from_spec(reuse).existing_blob_dns_zone_id == zone_id
    create = make_spec(network={"existing_vnet_id": EXISTING_VNET, "dns_zones": {"blob": "create"}})
    assert ClusterNetworkArgs.from_spec(create).create_blob_dns_zone is True


def test_dns_zones_accepts_only_the_private_link_kinds_the_cluster_uses():
    with pytest.raises(ValueError, match="unknown private DNS zone kind 'queue'; use blob, file"):
        make_spec(network={"dns_zones": {"queue": "create"}})
