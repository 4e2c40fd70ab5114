"""The accounting database option (`slurm.accounting.database: mysql`) under Pulumi mocks: Azure Database for
MySQL flexible server reachable only privately, TLS required, backups from the spec, kept by `down`, and
its password reaching the login node's slurmdbd without appearing anywhere in plain text.

Property names and enum values are the installed SDK's (pulumi_azure_native.dbformysql, API 2024-02-01-
preview for Server) and the REST API's (Microsoft.DBforMySQL/flexibleServers).
"""

from __future__ import annotations

import base64
import gzip
import json

import pytest
import yaml

from azcluster import mockrun as harness
from azcluster.components import bootstrap
from azcluster.components.accounting_db import (
    ADMIN_LOGIN,
    MYSQL_GROUP_ID,
    server_fqdn,
    server_name,
)
from azcluster.components.cluster import Cluster
from azcluster.components.network import MYSQL_ACCOUNTING, inbound_services, security_rules
from azcluster.components.spec import PRIVATE_DNS_ZONE_NAMES, parse_cluster
from azcluster.components.subnets import plan_subnets

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"


def make_spec(mysql=None, **accounting):
    cluster = {
        "name": "team",
        "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 2}],
        "ssh": {"public_keys": [KEY]},
        "slurm": {"accounting": {"enabled": True, "database": "mysql", "mysql": mysql or {}, **accounting}},
    }
    return parse_cluster({"azcluster:cluster": cluster, "azure-native:location": "eastus"})


def build(spec):
    return harness.run(lambda: {"cluster": Cluster("c", spec).outputs})


@pytest.fixture(scope="module")
def plan():
    return build(make_spec({"backup_retention_days": 21, "geo_redundant_backup": True, "storage_gb": 64}))


def test_the_server_has_no_public_access_and_no_delegated_subnet(plan):
    server = plan.one("dbformysql:Server").inputs
    assert server["network"]["publicNetworkAccess"] == "Disabled"
    assert "delegatedSubnetResourceId" not in server["network"]  # private endpoint, not VNet integration
    assert server["version"] == "8.0.21"
    assert server["sku"] == {"name": "Standard_B1ms", "tier": "Burstable"}
    assert (server["storage"]["storageSizeGB"], server["storage"]["autoGrow"]) == (64, "Enabled")
    assert server["administratorLogin"] == ADMIN_LOGIN
    assert server["tags"]["azcluster-role"] == "accounting"


def test_backups_follow_the_spec(plan):
    backup = plan.one("dbformysql:Server").inputs["backup"]
    assert (backup["backupRetentionDays"], backup["geoRedundantBackup"]) == (21, "Enabled")
    default = build(make_spec()).one("dbformysql:Server").inputs["backup"]
    assert (default["backupRetentionDays"], default["geoRedundantBackup"]) == (7, "Disabled")


def test_tls_is_required_and_slurms_lock_timeout_set(plan):
    values = {
        c.inputs["configurationName"]: c.inputs["value"] for c in plan.of_type("dbformysql:Configuration")
    }
    assert values == {"require_secure_transport": "ON", "innodb_lock_wait_timeout": "900"}
    assert all(c.inputs["source"] == "user-override" for c in plan.of_type("dbformysql:Configuration"))


def test_reached_through_a_private_endpoint_in_the_endpoints_subnet_named_by_a_linked_zone(plan):
    server = plan.one("dbformysql:Server")
    endpoints = [
        e
        for e in plan.of_type("network:PrivateEndpoint")
        if e.inputs["privateLinkServiceConnections"][0]["groupIds"] == [MYSQL_GROUP_ID]
    ]
    assert len(endpoints) == 1
    endpoint = endpoints[0].inputs
    assert endpoint["privateLinkServiceConnections"][0]["privateLinkServiceId"] == server.outputs["id"]
    subnet = next(s for s in plan.of_type("network:Subnet") if s.inputs["subnetName"].endswith("endpoints"))
    assert endpoint["subnet"]["id"] == subnet.outputs["id"]
    zone = next(
        z
        for z in plan.of_type("privatedns:PrivateZone")
        if z.inputs["privateZoneName"]
        == PRIVATE_DNS_ZONE_NAMES["mysql"]
        == "privatelink.mysql.database.azure.com"
    )
    link = next(
        link
        for link in plan.of_type("privatedns:VirtualNetworkLink")
        if link.inputs["privateZoneName"] == zone.outputs["name"]
    )
    assert link.inputs["registrationEnabled"] is False
    assert link.inputs["virtualNetwork"]["id"] == plan.one("network:VirtualNetwork").outputs["id"]
    group = next(
        g
        for g in plan.of_type("network:PrivateDnsZoneGroup")
        if g.inputs["privateDnsZoneConfigs"][0]["privateDnsZoneId"] == zone.outputs["id"]
    )
    assert group.inputs["privateEndpointName"] == endpoints[0].outputs["name"]


def test_only_the_login_subnet_reaches_port_3306():
    spec = make_spec()
    assert MYSQL_ACCOUNTING in inbound_services(spec)
    plan_ = plan_subnets(__import__("ipaddress").IPv4Network(spec.network.address_space), 2)
    rules = security_rules(plan_, spec.network.address_space, True, inbound_services(spec))
    (rule,) = [r for r in rules["endpoints"] if "3306" in r.ports]
    assert rule.sources == (str(plan_.login),) and rule.access == "Allow"
    assert MYSQL_ACCOUNTING not in inbound_services(make_spec(database="login"))


def test_the_server_and_its_password_are_kept_by_down(plan):
    server = plan.one("dbformysql:Server")
    assert server.protect and server.retain_on_delete
    password = next(r for r in plan.resources if r.name.endswith("slurmdb-admin-password"))
    assert password.protect and password.retain_on_delete
    # the endpoint and zone are not data: `down` removes them, `up` makes them again
    endpoint = next(
        e for e in plan.of_type("network:PrivateEndpoint") if "slurmdb" in e.inputs["privateEndpointName"]
    )
    assert not endpoint.protect


def test_the_login_node_gets_host_user_and_password_file_never_plain_in_the_program(plan):
    server = plan.one("dbformysql:Server").inputs
    name = server["serverName"]
    assert name == server_name("team", f"{harness.MOCK_SUBSCRIPTION}/eastus")
    password = server["administratorLoginPassword"]
    assert len(password) >= 8 and password.startswith("Az9-")
    vm = plan.one("compute:VirtualMachine").inputs
    document = gzip.decompress(base64.b64decode(vm["osProfile"]["customData"])).decode()
    config = yaml.safe_load(document)
    files = {entry["path"]: entry for entry in config["write_files"]}
    secret = files[bootstrap.SLURMDBD_PASS_PATH]
    assert secret["permissions"] == "0600" and secret["content"].strip() == password
    env = files[bootstrap.NODE_ENV_PATH]["content"]
    assert f"AZC_SLURMDBD_STORAGE_HOST={server_fqdn(name)}" in env
    assert f"AZC_SLURMDBD_STORAGE_USER={ADMIN_LOGIN}" in env
    assert "AZC_SLURMDBD_STORAGE_CA=/etc/ssl/certs/ca-certificates.crt" in env
    assert password not in env  # node.env is read by every script: the password is not in it
    # GPU nodes know nothing of the database
    for scale_set in plan.of_type("compute:VirtualMachineScaleSet"):
        text = json.dumps(scale_set.inputs)
        assert password not in text and "slurmdb" not in text


def test_without_the_option_nothing_is_built():
    plain = build(make_spec(database="login"))
    assert not plain.of_type("dbformysql:Server")
    assert not any("slurmdb" in r.name for r in plain.resources)


def test_in_a_hub_network_the_hubs_mysql_zone_is_used_and_none_is_created():
    hub = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/hub/providers/Microsoft.Network"
    zone_id = f"{hub}/privateDnsZones/privatelink.mysql.database.azure.com"
    cluster = {
        "name": "team",
        "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 2}],
        "ssh": {"public_keys": [KEY]},
        "network": {"existing_vnet_id": f"{hub}/virtualNetworks/hub", "dns_zones": {"mysql": zone_id}},
        "storage": {"home": {"enabled": False}},
        "slurm": {"accounting": {"enabled": True, "database": "mysql"}},
    }
    spec = parse_cluster({"azcluster:cluster": cluster, "azure-native:location": "eastus"})
    plan = build(spec)
    zones = [z.inputs["privateZoneName"] for z in plan.of_type("privatedns:PrivateZone")]
    assert PRIVATE_DNS_ZONE_NAMES["mysql"] not in zones
    groups = [
        g.inputs["privateDnsZoneConfigs"][0]["privateDnsZoneId"]
        for g in plan.of_type("network:PrivateDnsZoneGroup")
    ]
    assert zone_id in groups
