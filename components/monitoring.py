"""ClusterMonitoring: the Azure side of the cluster's metrics (Azure Monitor managed Prometheus, Azure
Managed Grafana), built when `monitoring.enabled`; the nodes side (exporters and the Prometheus agent that
remote-writes to the rule) is bootstrap/metrics.py.

Why each setting is what it is:
- Azure Monitor workspace (`Microsoft.Monitor/accounts`, API 2023-04-03 in pulumi-azure-native 3): the
  store of managed Prometheus. It keeps metrics 18 months, fixed, so there is no retention setting
  (learn.microsoft.com/azure/azure-monitor/service-limits, "Prometheus metrics"). A hub team's workspace
  may be used instead (`existing_workspace_id`): hub teams share one.
- Data collection endpoint and rule (API 2022-06-01): a collector outside Kubernetes remote-writes to the
  rule's ingestion URL, `<endpoint>/dataCollectionRules/<immutable id>/streams/Microsoft-PrometheusMetrics/
  api/v1/write`, authenticating with the node's managed identity, which needs *Monitoring Metrics
  Publisher* on that rule (learn.microsoft.com/azure/azure-monitor/containers/
  prometheus-remote-write-virtual-machines). The rule has the shape of the workspace's own default rule:
  kind `Linux`, a `prometheusForwarder` source and a `monitoringAccounts` destination, one flow of the
  stream `Microsoft-PrometheusMetrics` (data-collection-rule-structure; the same body the Azure CLI's own
  managed-Prometheus onboarding sends, azure-cli `acs` module `create_dcr`). The cluster gets its own endpoint
  and rule even with a shared workspace, so its nodes can write there and nowhere else.
- Least privilege, each role on one resource (identity.assign_role): Monitoring Metrics Publisher
  (3913510d-42f4-4e42-8a64-420c390055eb) for the nodes' identity on the rule only; Monitoring Data Reader
  (b0d8363b-8ddd-447d-831f-62ca05bff136) for Grafana's identity on the workspace only (the portal grants it
  on the whole subscription; we do not); Grafana Admin (22926164-76b3-42b3-bc55-97df8dab3e41) on the Grafana
  for the group the spec names, else the principal that runs `up`
  (learn.microsoft.com/azure/role-based-access-control/built-in-roles/monitor).
- Azure Managed Grafana (`Microsoft.Dashboard/grafana`, API 2024-10-01), SKU Standard (Essential has no
  private endpoints and no SLA; managed-grafana/overview "Service tiers"), a system-assigned identity (how
  it reads the workspace), linked to the workspace through `grafanaIntegrations.
  azureMonitorWorkspaceIntegrations` (which adds the Prometheus data source), API keys off (Entra sign-in
  only), zone redundancy off (it costs extra and the cluster itself lives in one zone).
- Alerts: catalog/alerts.yaml (Prometheus's rule-file format, checked by promtool in the tests) becomes
  one `PrometheusRuleGroup` (API 2023-03-01) per group, scoped to the workspace, each rule routed to an
  action group (location Global, the common alert schema) when the spec names an e-mail or a webhook.
- Private where Azure allows (`monitoring.public_network_access: false`): the workspace's query endpoint
  and Grafana get `publicNetworkAccess: Disabled` and private endpoints in the `endpoints` subnet (group
  ids `prometheusMetrics` and `grafana`; DNS zones `privatelink.<region>.prometheus.monitor.azure.com` and
  `privatelink.grafana.azure.com`, created and linked when the cluster creates its network), and Grafana
  reaches the workspace through a Grafana managed private endpoint (azure-monitor/metrics/
  azure-monitor-workspace-private-endpoint, managed-grafana/how-to-connect-to-data-source-privately).
  Ingestion goes private the only way Azure offers for a data collection endpoint: an Azure Monitor
  Private Link Scope (`Microsoft.Insights/privateLinkScopes`, API 2023-06-01-preview in
  pulumi-azure-native 3, location `global`) holding the endpoint as a scoped resource, reached through a
  private endpoint of group `azuremonitor` (learn.microsoft.com/azure/azure-monitor/logs/
  private-link-configure; azure-monitor/agents/azure-monitor-agent-private-link: "add the data collection
  endpoints to your Azure Monitor Private Link Scope"), and the endpoint's own public access Disabled. Its
  access modes stay `Open`: `PrivateOnly` would stop every machine of the network from reaching any Azure
  Monitor resource outside the scope. Only the zone `privatelink.monitor.azure.com` is created (where the
  endpoint's ingestion and configuration names resolve); the scope's other zones serve Log Analytics
  (oms, ods, agentsvc) and storage (blob, which the data account's endpoint already owns), which the
  cluster does not send through it. "A virtual network can connect to only one AMPLS object", and
  networks sharing DNS should share one (azure-monitor/logs/private-link-design), so a hub network's
  scope is joined instead (`existing_private_link_scope_id`: the
  endpoint becomes one of its scoped resources; the hub's private endpoint and zones serve it).
  `public_surfaces()` says in `plan` what stays public, and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi_azure_native import alertsmanagement, authorization, dashboard, monitor, network

from . import catalog
from .bootstrap.metrics import write_url
from .exposure import PublicSurface, monitoring_surfaces
from .identity import assign_role
from .private_dns import endpoint_zone_group, linked_private_zone
from .storage import account_private_endpoint
from .tags import cluster_tags

if TYPE_CHECKING:
    from .identity import NodeIdentity
    from .network import ClusterNetwork
    from .spec import ClusterSpec

MONITORING_ROLE = "monitoring"
PROMETHEUS_STREAM = "Microsoft-PrometheusMetrics"
WORKSPACE_DESTINATION = "clusterWorkspace"
"""The rule's name for the workspace destination; the data flow refers to it."""
GRAFANA_SKU = "Standard"
WORKSPACE_PRIVATE_LINK_GROUP = "prometheusMetrics"
GRAFANA_PRIVATE_LINK_GROUP = "grafana"
GRAFANA_DNS_ZONE = "privatelink.grafana.azure.com"
SCOPE_PRIVATE_LINK_GROUP = "azuremonitor"
SCOPE_DNS_ZONE = "privatelink.monitor.azure.com"
SCOPE_ACCESS_MODE = "Open"
_SCOPE_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Insights/"
    r"privateLinkScopes/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
GRAFANA_NAME_MAX = 23
NODE_PUBLISHER_ROLE = "Monitoring Metrics Publisher"
GRAFANA_READER_ROLE = "Monitoring Data Reader"
GRAFANA_ADMIN_ROLE = "Grafana Admin"
ACTION_GROUP_SHORT_NAME_MAX = 12
"""An action group's short name (shown in SMS and e-mail) has at most 12 characters (monitor ActionGroup)."""
ALERT_AUTO_RESOLVE = "PT10M"
"""An Azure alert resolves itself once its condition has been false this long."""
_DURATION = re.compile(r"^(\d+)([smh])$")


def iso_duration(duration: str) -> str:
    """Prometheus's `5m` as Azure's ISO 8601 `PT5M` (the form PrometheusRuleGroup takes for `for` and
    `interval`); only the single-unit forms alerts.yaml uses."""
    match = _DURATION.fullmatch(duration.strip())
    if match is None:
        raise ValueError(f"duration {duration!r} is not a number of seconds, minutes or hours (e.g. 5m)")
    return f"PT{match.group(1)}{match.group(2).upper()}"


def action_group_short_name(cluster_name: str) -> str:
    return f"azc-{cluster_name}"[:ACTION_GROUP_SHORT_NAME_MAX].rstrip("-")


def workspace_dns_zone(location: str) -> str:
    """The workspace's private-link zone is regional (azure-monitor-workspace-private-endpoint)."""
    return f"privatelink.{location}.prometheus.monitor.azure.com"


def grafana_name(cluster_name: str) -> str:
    """`<cluster>-grafana` within Grafana's 2-23 characters (letters, digits, hyphens, starting with a
    letter, ending alphanumeric; managed-grafana quickstart): a long cluster name is cut, not refused."""
    stem = cluster_name if cluster_name[:1].isalpha() else f"g{cluster_name}"
    stem = stem[: GRAFANA_NAME_MAX - len("-grafana")].rstrip("-")
    return f"{stem}-grafana"


@dataclass
class ClusterMonitoringArgs:
    """Inputs of ClusterMonitoring (`from_spec` fills them from the spec, the network and the identity)."""

    cluster_name: str
    location: str
    resource_group_name: pulumi.Input[str]
    node_principal_id: pulumi.Input[str]
    endpoints_subnet_id: pulumi.Input[str] | None = None
    vnet_id: pulumi.Input[str] | None = None
    """The network to link new private DNS zones to; None: leave the records to the network's own DNS."""
    tags: dict[str, str] = field(default_factory=dict)
    existing_workspace_id: str | None = None
    existing_grafana_id: str | None = None
    existing_private_link_scope_id: str | None = None
    """A hub's Azure Monitor Private Link Scope the data collection endpoint joins (public access off)."""
    public_network_access: bool = True
    grafana_admin_principal_id: str | None = None
    grafana_admin_principal_type: str | None = None
    """None: Group when `grafana_admin_principal_id` is given, else User (the deploying person)."""
    alert_emails: list[str] = field(default_factory=list)
    alert_webhook: str | None = None

    @classmethod
    def from_spec(
        cls, spec: ClusterSpec, net: ClusterNetwork, identity: NodeIdentity
    ) -> ClusterMonitoringArgs:
        mon = spec.monitoring
        return cls(
            cluster_name=spec.name,
            location=spec.location,
            resource_group_name=net.resource_group_name,
            node_principal_id=identity.principal_id,
            endpoints_subnet_id=net.subnet_ids["endpoints"],
            vnet_id=net.vnet_id if spec.network.existing_vnet_id is None else None,
            tags=dict(spec.tags),
            existing_workspace_id=_stripped(mon.existing_workspace_id),
            existing_grafana_id=_stripped(mon.existing_grafana_id),
            existing_private_link_scope_id=_stripped(mon.existing_private_link_scope_id),
            public_network_access=mon.public_network_access,
            grafana_admin_principal_id=_stripped(mon.grafana_admin_principal_id),
            grafana_admin_principal_type=mon.grafana_admin_principal_type,
            alert_emails=[email.strip() for email in mon.alert_emails],
            alert_webhook=_stripped(mon.alert_webhook),
        )


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def public_surfaces(args: ClusterMonitoringArgs) -> list[PublicSurface]:
    """What of the monitoring side answers on a public address, and why (shown by `plan`)."""
    return monitoring_surfaces(
        public_network_access=args.public_network_access,
        creates_workspace=args.existing_workspace_id is None,
        creates_grafana=args.existing_grafana_id is None,
    )


def remote_write_url(args: ClusterMonitoringArgs, ingestion: Any, immutable_id: str | None) -> str:
    """Where the nodes' Prometheus agents write (bootstrap/metrics.write_url). Offline (plan's mocks)
    the endpoint and the rule's immutable id are unknown: the URL then has their documented shapes
    (`https://<endpoint>.<region>-1.metrics.ingest.monitor.azure.com`, `dcr-<32 hex>`), so plan measures
    the custom data the nodes will really get."""
    endpoint = (
        ingestion.get("endpoint") if isinstance(ingestion, dict) else getattr(ingestion, "endpoint", None)
    )
    endpoint = (
        endpoint
        or f"https://{args.cluster_name}-metrics-dce.{args.location}-1.metrics.ingest.monitor.azure.com"
    )
    return write_url(endpoint, immutable_id or "dcr-" + "0" * 32)


class ClusterMonitoring(pulumi.ComponentResource):
    """Azure Monitor workspace, data collection endpoint and rule, Azure Managed Grafana and their roles.

    Outputs: `write_url` (the rule's remote-write URL the nodes' agents send to), `workspace_id`,
    `data_collection_rule_id`, `data_collection_rule_immutable_id`,
    `data_collection_endpoint_id`, `grafana_id` (the given one with `existing_grafana_id`), `grafana_endpoint`
    (None with an existing Grafana), and `public_surfaces` (what answers on a public address, and why).
    """

    def __init__(self, name: str, args: ClusterMonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("azcluster:index:ClusterMonitoring", name, None, opts)
        self._name = name
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        tags = cluster_tags(args.cluster_name, MONITORING_ROLE, args.tags)
        self._tags = tags
        public = "Enabled" if args.public_network_access else "Disabled"

        self.workspace: monitor.AzureMonitorWorkspace | None = None
        if args.existing_workspace_id:
            self.workspace_id: pulumi.Output[str] = pulumi.Output.from_input(args.existing_workspace_id)
        else:
            self.workspace = monitor.AzureMonitorWorkspace(
                f"{name}-workspace",
                azure_monitor_workspace_name=f"{args.cluster_name}-metrics",
                resource_group_name=args.resource_group_name,
                location=args.location,
                public_network_access=public,
                tags=tags,
                opts=child,
            )
            self.workspace_id = self.workspace.id

        self.collection_endpoint = monitor.DataCollectionEndpoint(
            f"{name}-dce",
            data_collection_endpoint_name=f"{args.cluster_name}-metrics-dce",
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="Linux",
            description="azcluster: where the cluster's nodes remote-write Prometheus metrics",
            network_acls=monitor.DataCollectionEndpointNetworkAclsArgs(public_network_access=public),
            tags=tags,
            opts=child,
        )
        self.collection_rule = monitor.DataCollectionRule(
            f"{name}-dcr",
            data_collection_rule_name=f"{args.cluster_name}-prometheus",
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="Linux",
            description="azcluster: the cluster's Prometheus metrics into its Azure Monitor workspace",
            data_collection_endpoint_id=self.collection_endpoint.id,
            data_sources=monitor.DataCollectionRuleDataSourcesArgs(
                prometheus_forwarder=[
                    monitor.PrometheusForwarderDataSourceArgs(
                        name="PrometheusDataSource", streams=[PROMETHEUS_STREAM], label_include_filter={}
                    )
                ]
            ),
            destinations=monitor.DataCollectionRuleDestinationsArgs(
                monitoring_accounts=[
                    monitor.MonitoringAccountDestinationArgs(
                        account_resource_id=self.workspace_id, name=WORKSPACE_DESTINATION
                    )
                ]
            ),
            data_flows=[
                monitor.DataFlowArgs(streams=[PROMETHEUS_STREAM], destinations=[WORKSPACE_DESTINATION])
            ],
            tags=tags,
            opts=child,
        )
        self.node_publisher = assign_role(
            f"{name}-nodes-publish",
            scope=self.collection_rule.id,
            principal_id=args.node_principal_id,
            role=NODE_PUBLISHER_ROLE,
            opts=child,
        )

        self.grafana: dashboard.Grafana | None = None
        self.grafana_reader: authorization.RoleAssignment | None = None
        self.grafana_admin: authorization.RoleAssignment | None = None
        self.grafana_endpoint: pulumi.Output[str] | None = None
        if args.existing_grafana_id:
            self.grafana_id: pulumi.Output[str] = pulumi.Output.from_input(args.existing_grafana_id)
        else:
            self._grafana(name, args, public, child)

        self.private_endpoints: list[network.PrivateEndpoint] = []
        self.private_link_scope: monitor.PrivateLinkScope | None = None
        self.scoped_endpoint: monitor.PrivateLinkScopedResource | None = None
        if not args.public_network_access:
            self._private_access(name, args, child)
            self._private_ingestion(name, args, child)

        self.action_group: monitor.ActionGroup | None = None
        self.rule_groups: list[alertsmanagement.PrometheusRuleGroup] = []
        self._alerts(name, args, child)

        self.write_url = pulumi.Output.all(
            self.collection_endpoint.metrics_ingestion, self.collection_rule.immutable_id
        ).apply(lambda values: remote_write_url(args, *values))
        self.data_collection_rule_id = self.collection_rule.id
        self.data_collection_rule_immutable_id = self.collection_rule.immutable_id
        self.data_collection_endpoint_id = self.collection_endpoint.id
        self.public_surfaces = public_surfaces(args)
        self.register_outputs(
            {
                "workspace_id": self.workspace_id,
                "data_collection_rule_id": self.data_collection_rule_id,
                "data_collection_endpoint_id": self.data_collection_endpoint_id,
                "grafana_id": self.grafana_id,
                "grafana_endpoint": self.grafana_endpoint,
            }
        )

    def _grafana(
        self, name: str, args: ClusterMonitoringArgs, public: str, child: pulumi.ResourceOptions
    ) -> None:
        grafana = dashboard.Grafana(
            f"{name}-grafana",
            workspace_name=grafana_name(args.cluster_name),
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=dashboard.ResourceSkuArgs(name=GRAFANA_SKU),
            identity=dashboard.ManagedServiceIdentityArgs(type="SystemAssigned"),
            properties=dashboard.ManagedGrafanaPropertiesArgs(
                public_network_access=public,
                api_key="Disabled",
                deterministic_outbound_ip="Disabled",
                zone_redundancy="Disabled",
                grafana_integrations=dashboard.GrafanaIntegrationsArgs(
                    azure_monitor_workspace_integrations=[
                        dashboard.AzureMonitorWorkspaceIntegrationArgs(
                            azure_monitor_workspace_resource_id=self.workspace_id
                        )
                    ]
                ),
            ),
            tags=self._tags,
            opts=child,
        )
        self.grafana = grafana
        self.grafana_id = grafana.id
        self.grafana_endpoint = grafana.properties.apply(lambda props: props.endpoint)
        grafana_principal = grafana.identity.apply(lambda ident: ident.principal_id if ident else None)
        self.grafana_reader = assign_role(
            f"{name}-grafana-reads",
            scope=self.workspace_id,
            principal_id=grafana_principal,
            role=GRAFANA_READER_ROLE,
            opts=child,
        )
        # Azure refuses an assignment whose principalType does not match the principal
        # (UnmatchedPrincipalType), and pulumi-azure-native sends "User" when none is given.
        if args.grafana_admin_principal_id:
            admin: pulumi.Input[str] = args.grafana_admin_principal_id
            admin_type = args.grafana_admin_principal_type or "Group"
        else:  # the principal running `up`: a person at a laptop unless the spec says otherwise
            admin = authorization.get_client_config_output(
                opts=pulumi.InvokeOutputOptions(parent=self)
            ).object_id
            admin_type = args.grafana_admin_principal_type or "User"
        self.grafana_admin = assign_role(
            f"{name}-grafana-admin",
            scope=grafana.id,
            principal_id=admin,
            role=GRAFANA_ADMIN_ROLE,
            principal_type=admin_type,
            opts=child,
        )

    def _alerts(self, name: str, args: ClusterMonitoringArgs, child: pulumi.ResourceOptions) -> None:
        """One Prometheus rule group per group of catalog/alerts.yaml, evaluated in the workspace, and an
        action group that mails or calls the receivers the spec names (none named: alerts still show in
        Grafana and the portal, routed nowhere)."""
        actions = None
        if args.alert_emails or args.alert_webhook:
            self.action_group = monitor.ActionGroup(
                f"{name}-alerts",
                action_group_name=f"{args.cluster_name}-alerts",
                group_short_name=action_group_short_name(args.cluster_name),
                resource_group_name=args.resource_group_name,
                location="Global",
                enabled=True,
                email_receivers=[
                    monitor.MicrosoftCommonEmailReceiverArgs(
                        name=f"email-{index}", email_address=email, use_common_alert_schema=True
                    )
                    for index, email in enumerate(args.alert_emails)
                ],
                webhook_receivers=[
                    monitor.WebhookReceiverArgs(
                        name="webhook", service_uri=args.alert_webhook, use_common_alert_schema=True
                    )
                ]
                if args.alert_webhook
                else [],
                tags=self._tags,
                opts=child,
            )
            actions = [alertsmanagement.PrometheusRuleGroupActionArgs(action_group_id=self.action_group.id)]
        for group in catalog.alert_rule_groups():
            rules = [
                alertsmanagement.PrometheusRuleArgs(
                    alert=rule["alert"],
                    expression=rule["expr"],
                    for_=iso_duration(rule["for"]) if "for" in rule else None,
                    severity=int(rule.get("labels", {}).get("severity", 3)),
                    labels=dict(rule.get("labels", {})),
                    annotations=dict(rule.get("annotations", {})),
                    enabled=True,
                    actions=actions,
                    resolve_configuration=alertsmanagement.PrometheusRuleResolveConfigurationArgs(
                        auto_resolved=True, time_to_resolve=ALERT_AUTO_RESOLVE
                    ),
                )
                for rule in group["rules"]
            ]
            self.rule_groups.append(
                alertsmanagement.PrometheusRuleGroup(
                    f"{name}-{group['name']}",
                    rule_group_name=f"{args.cluster_name}-{group['name']}",
                    resource_group_name=args.resource_group_name,
                    location=args.location,
                    scopes=[self.workspace_id],
                    description=f"azcluster: {group['name']} alerts of cluster {args.cluster_name}",
                    interval=iso_duration(group.get("interval", "1m")),
                    enabled=True,
                    rules=rules,
                    tags=self._tags,
                    opts=child,
                )
            )

    def _private_access(self, name: str, args: ClusterMonitoringArgs, child: pulumi.ResourceOptions) -> None:
        """Private endpoints for what the cluster created (a given workspace or Grafana is its owner's),
        and Grafana's own managed private endpoint to the workspace so its queries stay private."""
        if args.endpoints_subnet_id is None:
            raise ValueError("monitoring without public network access needs the endpoints subnet")
        targets: list[tuple[str, pulumi.Input[str], str, str]] = []
        if self.workspace is not None:
            targets.append(
                (
                    "workspace",
                    self.workspace.id,
                    WORKSPACE_PRIVATE_LINK_GROUP,
                    workspace_dns_zone(args.location),
                )
            )
        if self.grafana is not None:
            targets.append(("grafana", self.grafana.id, GRAFANA_PRIVATE_LINK_GROUP, GRAFANA_DNS_ZONE))
        for label, target_id, group, zone_name in targets:
            endpoint = account_private_endpoint(
                f"{name}-{label}-pe",
                azure_name=f"{args.cluster_name}-{label}-pe",
                group=group,
                account_id=target_id,
                resource_group_name=args.resource_group_name,
                location=args.location,
                subnet_id=args.endpoints_subnet_id,
                tags=self._tags,
                opts=child,
            )
            self.private_endpoints.append(endpoint)
            if args.vnet_id is not None:
                self._dns_zone(f"{name}-{label}", args, endpoint, group, zone_name, child)
            else:  # joining a hub network: its zones (or Azure Policy) hold the records
                pulumi.log.info(
                    f"monitoring: the {label}'s private endpoint is not registered in {zone_name}; its DNS "
                    "record is left to the network's own private DNS.",
                    resource=self,
                )
        if self.grafana is not None:
            # Azure creates this connection pending on the workspace; it carries no data until approved.
            pulumi.log.warn(
                "monitoring: after `up`, approve Grafana's managed private endpoint on the Azure Monitor "
                "workspace (portal: the workspace > Networking > Private endpoint connections, the one "
                "requested by Grafana); until then Grafana cannot query the workspace (public access off).",
                resource=self,
            )
            self.grafana_workspace_link = dashboard.ManagedPrivateEndpoint(
                f"{name}-grafana-to-workspace",
                managed_private_endpoint_name="workspace",
                workspace_name=self.grafana.name,
                resource_group_name=args.resource_group_name,
                location=args.location,
                private_link_resource_id=self.workspace_id,
                private_link_resource_region=args.location,
                group_ids=[WORKSPACE_PRIVATE_LINK_GROUP],
                request_message="azcluster: Grafana queries the cluster's workspace privately",
                tags=self._tags,
                opts=child,
            )

    def _private_ingestion(
        self, name: str, args: ClusterMonitoringArgs, child: pulumi.ResourceOptions
    ) -> None:
        """The data collection endpoint into an Azure Monitor Private Link Scope: the hub's when given,
        else the cluster's own with its private endpoint (and zone, in a network the cluster creates)."""
        if args.existing_private_link_scope_id:
            match = _SCOPE_ID.fullmatch(args.existing_private_link_scope_id)
            if match is None:
                raise ValueError(
                    f"{args.existing_private_link_scope_id!r} is not an Azure Monitor Private Link Scope id"
                )
            scope_group: pulumi.Input[str] = match.group("rg")
            scope_name: pulumi.Input[str] = match.group("name")
        else:
            self.private_link_scope = monitor.PrivateLinkScope(
                f"{name}-ampls",
                scope_name=f"{args.cluster_name}-ampls",
                resource_group_name=args.resource_group_name,
                location="global",
                access_mode_settings=monitor.AccessModeSettingsArgs(
                    ingestion_access_mode=SCOPE_ACCESS_MODE,
                    query_access_mode=SCOPE_ACCESS_MODE,
                    exclusions=[],
                ),
                tags=self._tags,
                opts=child,
            )
            scope_group, scope_name = args.resource_group_name, self.private_link_scope.name
        self.scoped_endpoint = monitor.PrivateLinkScopedResource(
            f"{name}-ampls-dce",
            name=f"{args.cluster_name}-metrics-dce",
            scope_name=scope_name,
            resource_group_name=scope_group,
            linked_resource_id=self.collection_endpoint.id,
            kind="Resource",
            opts=child,
        )
        if self.private_link_scope is None:
            return  # the hub's scope has its private endpoint and zones already
        endpoint = account_private_endpoint(
            f"{name}-ampls-pe",
            azure_name=f"{args.cluster_name}-ampls-pe",
            group=SCOPE_PRIVATE_LINK_GROUP,
            account_id=self.private_link_scope.id,
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet_id=args.endpoints_subnet_id,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.scoped_endpoint]),
        )
        self.private_endpoints.append(endpoint)
        if args.vnet_id is not None:
            self._dns_zone(f"{name}-ampls", args, endpoint, SCOPE_PRIVATE_LINK_GROUP, SCOPE_DNS_ZONE, child)
        else:
            pulumi.log.info(
                f"monitoring: the Private Link Scope's endpoint is not registered in {SCOPE_DNS_ZONE}; its "
                "DNS records are left to the network's own private DNS.",
                resource=self,
            )

    def _dns_zone(
        self,
        prefix: str,
        args: ClusterMonitoringArgs,
        endpoint: network.PrivateEndpoint,
        group: str,
        zone_name: str,
        child: pulumi.ResourceOptions,
    ) -> None:
        zone = linked_private_zone(
            f"{prefix}-zone",
            zone_name,
            args.resource_group_name,
            args.cluster_name,
            args.vnet_id,
            self._tags,
            child,
        )
        endpoint_zone_group(f"{prefix}-dns", endpoint, group, zone.id, args.resource_group_name, child)
