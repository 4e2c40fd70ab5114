"""ClusterMonitoring under Pulumi mocks: what the Azure side of monitoring builds, which identity gets
which role on which one resource, the link between Grafana and the workspace, and private access."""

from __future__ import annotations

import pytest

from azcluster import mockrun as harness
from azcluster.components.cluster import Cluster
from azcluster.components.identity import BUILTIN_ROLES
from azcluster.components.monitoring import (
    GRAFANA_DNS_ZONE,
    GRAFANA_NAME_MAX,
    PROMETHEUS_STREAM,
    SCOPE_DNS_ZONE,
    grafana_name,
    workspace_dns_zone,
)
from azcluster.components.spec import ClusterSpec

from .test_gpu_pool import KEY, identity_outputs

GUID = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
ADMINS = "5d2a3c1e-8f0b-4c6d-9e7a-1b2c3d4e5f60"
HUB_WORKSPACE = f"/subscriptions/{GUID}/resourceGroups/hub/providers/Microsoft.Monitor/accounts/hub-metrics"
HUB_GRAFANA = f"/subscriptions/{GUID}/resourceGroups/hub/providers/Microsoft.Dashboard/grafana/hub-grafana"
HUB_SCOPE = (
    f"/subscriptions/{GUID}/resourceGroups/hub-net/providers/Microsoft.Insights/privateLinkScopes/hub-ampls"
)
MONITORING_TYPES = (
    "monitor:AzureMonitorWorkspace",
    "monitor:DataCollectionEndpoint",
    "monitor:DataCollectionRule",
    "dashboard:Grafana",
)


@pytest.fixture(scope="module", autouse=True)
def _identity_map_outputs():
    with pytest.MonkeyPatch.context() as patch:
        for kind in ("VirtualMachineScaleSet", "VirtualMachine"):
            patch.setitem(harness.EXTRA_OUTPUTS, f"azure-native:compute:{kind}", identity_outputs)
        yield


def build(**monitoring) -> harness.Capture:
    spec = ClusterSpec.model_validate(
        {
            "name": "llm",
            "location": "eastus",
            "zone": "1",
            "pools": [{"name": "train", "size": "Standard_ND96isr_H100_v5", "nodes": 4}],
            "ssh": {"public_keys": [KEY]},
            "monitoring": {"enabled": True, **monitoring},
        }
    )
    return harness.run(lambda: Cluster("llm", spec).outputs)


@pytest.fixture(scope="module")
def public() -> harness.Capture:
    return build()


@pytest.fixture(scope="module")
def private() -> harness.Capture:
    return build(public_network_access=False, grafana_admin_principal_id=ADMINS)


def role(capture: harness.Capture, name: str) -> dict:
    assignment = capture.one("authorization:RoleAssignment", name)
    return assignment.inputs


def role_guid(inputs: dict) -> str:
    return inputs["roleDefinitionId"].rsplit("/", 1)[1]


def test_monitoring_is_not_built_unless_enabled():
    capture = build(enabled=False)
    for kind in MONITORING_TYPES:
        assert capture.of_type(kind) == []
    assert capture.value["grafana_endpoint"] is None


def test_the_rule_sends_the_prometheus_stream_to_the_cluster_workspace(public):
    workspace = public.one("monitor:AzureMonitorWorkspace")
    endpoint = public.one("monitor:DataCollectionEndpoint")
    rule = public.one("monitor:DataCollectionRule").inputs
    assert workspace.inputs["publicNetworkAccess"] == "Enabled"
    assert workspace.inputs["azureMonitorWorkspaceName"] == "llm-metrics"
    assert rule["dataCollectionEndpointId"] == endpoint.id
    [destination] = rule["destinations"]["monitoringAccounts"]
    assert destination["accountResourceId"] == workspace.id
    [flow] = rule["dataFlows"]
    assert flow == {"streams": [PROMETHEUS_STREAM], "destinations": [destination["name"]]}
    [source] = rule["dataSources"]["prometheusForwarder"]
    assert source["streams"] == [PROMETHEUS_STREAM]
    assert rule["tags"]["azcluster-role"] == "monitoring"


def test_grafana_is_standard_entra_only_and_linked_to_the_workspace(public):
    grafana = public.one("dashboard:Grafana").inputs
    workspace = public.one("monitor:AzureMonitorWorkspace")
    assert grafana["sku"] == {"name": "Standard"}
    assert grafana["identity"] == {"type": "SystemAssigned"}
    props = grafana["properties"]
    assert props["apiKey"] == "Disabled"
    assert props["publicNetworkAccess"] == "Enabled"
    [link] = props["grafanaIntegrations"]["azureMonitorWorkspaceIntegrations"]
    assert link == {"azureMonitorWorkspaceResourceId": workspace.id}
    assert public.one("dashboard:Grafana").id.endswith("/providers/Microsoft.Dashboard/grafana/llm-grafana")
    assert public.value["grafana_endpoint"].startswith("https://llm-grafana-")


def test_nodes_may_publish_to_the_collection_rule_only(public):
    inputs = role(public, "llm-monitoring-nodes-publish")
    identity = public.one("managedidentity:UserAssignedIdentity")
    assert inputs["scope"] == public.one("monitor:DataCollectionRule").id
    assert inputs["principalId"] == identity.outputs["principalId"]
    assert inputs["principalType"] == "ServicePrincipal"
    assert role_guid(inputs) == BUILTIN_ROLES["Monitoring Metrics Publisher"]


def test_grafana_reads_the_workspace_only(public):
    inputs = role(public, "llm-monitoring-grafana-reads")
    grafana = public.one("dashboard:Grafana")
    assert inputs["scope"] == public.one("monitor:AzureMonitorWorkspace").id
    assert inputs["principalId"] == grafana.outputs["identity"]["principalId"]
    assert role_guid(inputs) == BUILTIN_ROLES["Monitoring Data Reader"]


def test_the_deployer_is_grafana_admin_unless_the_spec_names_a_group(public, private):
    mine = role(public, "llm-monitoring-grafana-admin")
    assert mine["scope"] == public.one("dashboard:Grafana").id
    assert mine["principalId"] == harness.ZERO_GUID  # the mocked client config's objectId
    assert mine["principalType"] == "User"  # the person running `up`
    group = role(private, "llm-monitoring-grafana-admin")
    assert (group["principalId"], group["principalType"]) == (ADMINS, "Group")
    assert role_guid(group) == BUILTIN_ROLES["Grafana Admin"]


def test_no_role_is_granted_above_one_resource(public, private):
    for capture in (public, private):
        for assignment in capture.of_type("authorization:RoleAssignment"):
            scope = assignment.inputs["scope"]
            assert "/providers/" in scope, (assignment.name, scope)


def test_public_access_builds_no_private_endpoint(public):
    assert [pe.name for pe in public.of_type("network:PrivateEndpoint") if "monitoring" in pe.name] == []


def test_private_access_closes_workspace_and_grafana_and_adds_endpoints(private):
    assert private.one("monitor:AzureMonitorWorkspace").inputs["publicNetworkAccess"] == "Disabled"
    assert private.one("dashboard:Grafana").inputs["properties"]["publicNetworkAccess"] == "Disabled"
    endpoints_subnet = next(s for s in private.of_type("network:Subnet") if s.name.endswith("-endpoints"))
    groups = {}
    for endpoint in private.of_type("network:PrivateEndpoint"):
        [connection] = endpoint.inputs["privateLinkServiceConnections"]
        groups[connection["groupIds"][0]] = connection["privateLinkServiceId"]
        assert endpoint.inputs["subnet"]["id"] == endpoints_subnet.id
    assert groups["prometheusMetrics"] == private.one("monitor:AzureMonitorWorkspace").id
    assert groups["grafana"] == private.one("dashboard:Grafana").id
    assert groups["azuremonitor"] == private.one("monitor:PrivateLinkScope").id
    zones = {z.inputs["privateZoneName"] for z in private.of_type("privatedns:PrivateZone")}
    assert {GRAFANA_DNS_ZONE, workspace_dns_zone("eastus"), SCOPE_DNS_ZONE} <= zones
    managed = private.one("dashboard:ManagedPrivateEndpoint").inputs
    assert managed["privateLinkResourceId"] == private.one("monitor:AzureMonitorWorkspace").id
    assert managed["groupIds"] == ["prometheusMetrics"]
    dce = private.one("monitor:DataCollectionEndpoint")
    assert dce.inputs["networkAcls"] == {"publicNetworkAccess": "Disabled"}


def test_private_ingestion_puts_the_collection_endpoint_in_a_private_link_scope(private, public):
    """The only private path for a data collection endpoint (azure-monitor-agent-private-link): a scope
    holding it, the scope's private endpoint in the endpoints subnet, and privatelink.monitor.azure.com."""
    scope = private.one("monitor:PrivateLinkScope")
    assert scope.inputs["location"] == "global" and scope.inputs["scopeName"] == "llm-ampls"
    modes = scope.inputs["accessModeSettings"]
    assert modes["ingestionAccessMode"] == modes["queryAccessMode"] == "Open"  # others' Azure Monitor works
    scoped = private.one("monitor:PrivateLinkScopedResource").inputs
    assert scoped["linkedResourceId"] == private.one("monitor:DataCollectionEndpoint").id
    assert scoped["scopeName"] == "llm-ampls" and scoped["kind"] == "Resource"
    assert scoped["resourceGroupName"] == "llm-rg"
    zone_group = next(
        g
        for g in private.of_type("network:PrivateDnsZoneGroup")
        if g.inputs["privateEndpointName"] == "llm-ampls-pe"
    )
    [config] = zone_group.inputs["privateDnsZoneConfigs"]
    zone = next(
        z for z in private.of_type("privatedns:PrivateZone") if z.inputs["privateZoneName"] == SCOPE_DNS_ZONE
    )
    assert config["privateDnsZoneId"] == zone.id
    assert (
        public.of_type("monitor:PrivateLinkScope")
        == public.of_type("monitor:PrivateLinkScopedResource")
        == []
    )
    assert public.one("monitor:DataCollectionEndpoint").inputs["networkAcls"] == {
        "publicNetworkAccess": "Enabled"
    }


def test_a_hubs_private_link_scope_is_joined_not_duplicated():
    capture = build(public_network_access=False, existing_private_link_scope_id=HUB_SCOPE)
    assert capture.of_type("monitor:PrivateLinkScope") == []
    scoped = capture.one("monitor:PrivateLinkScopedResource").inputs
    assert (scoped["resourceGroupName"], scoped["scopeName"]) == ("hub-net", "hub-ampls")
    assert scoped["linkedResourceId"] == capture.one("monitor:DataCollectionEndpoint").id
    groups = {
        pe.inputs["privateLinkServiceConnections"][0]["groupIds"][0]
        for pe in capture.of_type("network:PrivateEndpoint")
    }
    assert "azuremonitor" not in groups  # the hub's endpoint and zones serve the scope
    zones = {z.inputs["privateZoneName"] for z in capture.of_type("privatedns:PrivateZone")}
    assert SCOPE_DNS_ZONE not in zones


def test_a_hub_workspace_and_grafana_are_used_not_created():
    capture = build(existing_workspace_id=HUB_WORKSPACE, existing_grafana_id=HUB_GRAFANA)
    assert capture.of_type("monitor:AzureMonitorWorkspace") == []
    assert capture.of_type("dashboard:Grafana") == []
    rule = capture.one("monitor:DataCollectionRule").inputs
    assert rule["destinations"]["monitoringAccounts"][0]["accountResourceId"] == HUB_WORKSPACE
    names = {r.name for r in capture.of_type("authorization:RoleAssignment")}
    assert "llm-monitoring-nodes-publish" in names
    assert not {"llm-monitoring-grafana-reads", "llm-monitoring-grafana-admin"} & names


def test_a_pipeline_deployer_can_be_a_service_principal():
    capture = build(grafana_admin_principal_type="ServicePrincipal")
    assert role(capture, "llm-monitoring-grafana-admin")["principalType"] == "ServicePrincipal"


def test_a_hub_workspace_with_a_new_grafana_is_read_by_it():
    capture = build(existing_workspace_id=HUB_WORKSPACE)
    assert role(capture, "llm-monitoring-grafana-reads")["scope"] == HUB_WORKSPACE
    link = capture.one("dashboard:Grafana").inputs["properties"]["grafanaIntegrations"]
    assert link["azureMonitorWorkspaceIntegrations"] == [{"azureMonitorWorkspaceResourceId": HUB_WORKSPACE}]


@pytest.mark.parametrize("cluster", ["llm", "a-very-long-cluster-name-x", "7b-train", "ab-cd-efghijklmn-"])
def test_grafana_names_fit_azure_rules(cluster):
    name = grafana_name(cluster)
    assert 2 <= len(name) <= GRAFANA_NAME_MAX
    assert name[0].isalpha() and name[-1].isalnum()
    assert "--" not in name.replace("-grafana", "")
