"""Monitoring (AZC120-AZC129, AZC155-AZC156; Azure Monitor managed Prometheus and Azure Managed Grafana,
components/monitoring.py). Every rule here is quiet while `monitoring.enabled` is false.

The ingestion limits are those of one Azure Monitor workspace (learn.microsoft.com/azure/azure-monitor/
service-limits, "Prometheus metrics" > Ingestion): 1,000,000 active time series (series reported in the
last ~12 hours) and 1,000,000 events (samples) per minute, both raisable on request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from ..spec import ClusterSpec
from .common import GUID, RESOURCE_GROUP, at, plural, preview
from .registry import Problem, rule

WORKSPACE_ACTIVE_SERIES_LIMIT = 1_000_000
WORKSPACE_EVENTS_PER_MINUTE_LIMIT = 1_000_000
"""Azure Monitor workspace defaults (service-limits, "Prometheus metrics" > Ingestion); raisable."""

SERIES_SOURCE = "benchmarks/bench_series.py"
"""Where the series a node sends are measured: a synthetic ND H100 v5 node (8 GPUs, 8 InfiniBand ports)
through the real node_exporter and Prometheus agent (tests/components/test_metrics_real.py checks the
figure bootstrap.metrics.series_per_node gives is what a node sends)."""

SCRAPE_INTERVAL_MIN = 10
SCRAPE_INTERVAL_MAX = 300
"""Below 10 s, every node sends three times the samples of the 30 s default (cost and the per-minute
limit); from 300 s on, Prometheus's 5-minute lookback (`--query.lookback-delta`, default 5m,
prometheus.io/docs/prometheus/latest/command-line/prometheus/) finds no sample between two scrapes, so
series and alerts blink out."""

ACTION_GROUP_EMAIL_MAX = 64
"""Azure Monitor action groups: "the character limit in email address is 64" (service-limits, Action
groups)."""

WORKSPACE_ID = re.compile(
    rf"^/subscriptions/{GUID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft\.Monitor/"
    r"accounts/[A-Za-z0-9][A-Za-z0-9_-]{2,42}[A-Za-z0-9]$",
    re.IGNORECASE,
)
"""Azure Monitor workspace names: 4-44 characters, alphanumerics, hyphens and underscores, starting and
ending alphanumeric (Microsoft.Monitor/accounts, resource-name-rules)."""
GRAFANA_ID = re.compile(
    rf"^/subscriptions/{GUID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft\.Dashboard/"
    r"grafana/[A-Za-z][A-Za-z0-9-]{0,21}[A-Za-z0-9]$",
    re.IGNORECASE,
)
"""Azure Managed Grafana names: 2-23 characters, alphanumerics and hyphens, starting with a letter and
ending alphanumeric (learn.microsoft.com/azure/managed-grafana/quickstart-managed-grafana-portal)."""
SCOPE_ID = re.compile(
    rf"^/subscriptions/{GUID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft\.Insights/"
    r"privateLinkScopes/[^/]{1,255}$",
    re.IGNORECASE,
)
"""An Azure Monitor Private Link Scope (Microsoft.Insights/privateLinkScopes)."""
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
OBJECT_ID = re.compile(rf"^{GUID}$")


def _on(spec: ClusterSpec) -> bool:
    return spec.monitoring.enabled


def _malformed_id(
    spec: ClusterSpec, field: str, pattern: re.Pattern[str], what: str, hint: str
) -> Iterator[Problem]:
    """One problem when `monitoring.<field>` is set (and monitoring on) but does not match `pattern`."""
    value = getattr(spec.monitoring, field)
    if _on(spec) and value is not None and not pattern.fullmatch(value.strip()):
        yield (at(f"monitoring.{field}"), f"{preview(value, 60)!r} is not {what}.", hint)


@rule(
    "AZC120",
    "error",
    "monitoring-workspace-id-malformed",
    "monitoring.existing_workspace_id is not an Azure Monitor workspace resource id",
)
def workspace_id_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The data collection rule sends to the workspace by its resource id; a name, or the id of a Log
    Analytics workspace (Microsoft.OperationalInsights, a different service), fails the deployment."""
    return _malformed_id(
        spec,
        "existing_workspace_id",
        WORKSPACE_ID,
        "an Azure Monitor workspace resource id",
        "Use /subscriptions/<guid>/resourceGroups/<group>/providers/Microsoft.Monitor/accounts/<name> "
        "(`az monitor account show -g <group> -n <name> --query id`); a Log Analytics workspace "
        "does not hold Prometheus metrics.",
    )


@rule(
    "AZC121",
    "error",
    "monitoring-grafana-id-malformed",
    "monitoring.existing_grafana_id is not an Azure Managed Grafana resource id",
)
def grafana_id_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The existing Grafana is named by its resource id (Microsoft.Dashboard/grafana); anything else
    leaves the cluster without dashboards."""
    return _malformed_id(
        spec,
        "existing_grafana_id",
        GRAFANA_ID,
        "an Azure Managed Grafana resource id",
        "Use /subscriptions/<guid>/resourceGroups/<group>/providers/Microsoft.Dashboard/grafana/<name> "
        "(`az grafana show -g <group> -n <name> --query id`).",
    )


@rule(
    "AZC122",
    "warning",
    "monitoring-scrape-interval-out-of-range",
    "The scrape interval is below 10 s or 5 minutes or more",
)
def scrape_interval_out_of_range(spec: ClusterSpec) -> Iterator[Problem]:
    """Below 10 s each node sends three times the 30 s default's samples: three times the ingestion bill
    and a third of the nodes before the workspace's per-minute limit. From 300 s on, Prometheus's 5-minute
    lookback finds no sample between two scrapes: panels show gaps and alerts resolve and fire again.
    Sources: SCRAPE_INTERVAL_MIN/MAX above."""
    interval = spec.monitoring.scrape_interval_seconds
    if not _on(spec):
        return
    if interval < SCRAPE_INTERVAL_MIN:
        yield (
            at("monitoring.scrape_interval_seconds"),
            f"a scrape every {interval} s sends {30 / interval:.0f}x the samples of the 30 s default "
            "(ingestion is billed per sample, and the workspace takes 1,000,000 a minute).",
            f"Use {SCRAPE_INTERVAL_MIN} s or more (30 s is the default).",
        )
    elif interval >= SCRAPE_INTERVAL_MAX:
        yield (
            at("monitoring.scrape_interval_seconds"),
            f"a scrape every {interval} s is not within Prometheus's 5-minute lookback: series vanish "
            "between scrapes and alerts flap.",
            "Use less than 300 s (30 s is the default; 60 s halves the samples).",
        )


@rule(
    "AZC123",
    "error",
    "monitoring-alert-webhook-not-https",
    "monitoring.alert_webhook is not an https:// URL",
)
def alert_webhook_not_https(spec: ClusterSpec) -> Iterator[Problem]:
    """An action group posts the alert (host names, node states) to the webhook: over plain http anyone on
    the path reads it, and a URL without a host cannot be called at all. Azure Monitor action groups
    take a webhook's service URI (learn.microsoft.com/azure/azure-monitor/alerts/action-groups)."""
    url = spec.monitoring.alert_webhook
    if not _on(spec) or url is None:
        return
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "https" or not parts.hostname:
        yield (
            at("monitoring.alert_webhook"),
            f"{preview(url, 60)!r} is not an https:// URL with a host name.",
            "Give the receiver's https:// URL, e.g. https://hooks.example.com/azcluster.",
        )


@rule(
    "AZC124",
    "error",
    "monitoring-alert-email-malformed",
    "An address in monitoring.alert_emails is not an e-mail address Azure accepts",
)
def alert_email_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The action group refuses an address without a user, an @ and a domain, or one longer than 64
    characters (Azure Monitor service limits, Action groups: "the character limit in email address is
    64"), and the whole deployment fails with it."""
    if not _on(spec):
        return
    for index, email in enumerate(spec.monitoring.alert_emails):
        address = email.strip()
        if not EMAIL.fullmatch(address) or len(address) > ACTION_GROUP_EMAIL_MAX:
            yield (
                at(f"monitoring.alert_emails[{index}]"),
                f"{preview(email, 70)!r} is not an e-mail address of at most {ACTION_GROUP_EMAIL_MAX} "
                "characters.",
                "Write one address per item, e.g. hpc-oncall@example.com.",
            )


@rule(
    "AZC125",
    "error",
    "monitoring-grafana-admin-not-object-id",
    "monitoring.grafana_admin_principal_id is not an object id (GUID)",
)
def grafana_admin_not_object_id(spec: ClusterSpec) -> Iterator[Problem]:
    """A role assignment names its principal by Entra object id; a user name, e-mail or group name is
    refused by Azure Resource Manager (learn.microsoft.com/azure/role-based-access-control/
    role-assignments-template: principalId is the object id)."""
    return _malformed_id(
        spec,
        "grafana_admin_principal_id",
        OBJECT_ID,
        "an object id",
        "Give the group's or user's object id: `az ad group show -g <name> --query id -o tsv` or "
        "`az ad user show --id <upn> --query id -o tsv`.",
    )


def series_per_gpu_node(size_name: str) -> int:
    """Active series one node of a size sends with the default keep-list (bootstrap/metrics.py)."""
    from ..bootstrap.metrics import series_per_node
    from ..catalog import find_size

    size = find_size(size_name)
    if size is None:
        return series_per_node(8, 8)  # an unknown size: count it as the catalogue's largest
    ports = size.infiniband.ports if size.infiniband else 0
    return series_per_node(size.gpus, ports, vendor=size.gpu_vendor, gb=size.rack_vms is not None)


def estimated_series(spec: ClusterSpec) -> int:
    """Active series the cluster sends: every GPU node by its size, plus the login node (with Slurm's
    series per partition when it runs the scheduler)."""
    from ..bootstrap.metrics import series_per_node

    gpu = sum(pool.nodes * series_per_gpu_node(pool.size) for pool in spec.pools)
    if not spec.login.enabled:
        return gpu
    return gpu + series_per_node(0, 0, "login", partitions=max(1, len(spec.pools)))


def _raise_hint(what: str, wanted: int) -> str:
    return (
        f"Ask Azure for a higher {what} limit on the workspace before `up`: Azure portal > Help + support "
        f"> Create a support request, issue type 'Service and subscription limits (quotas)', naming the "
        f"Azure Monitor workspace and asking for {wanted:,} {what} (Microsoft: azure-monitor-workspace-"
        "scaling-best-practice). Or send fewer series (fewer nodes per workspace, a longer "
        "`monitoring.scrape_interval_seconds`)."
    )


@rule(
    "AZC126",
    "warning",
    "monitoring-series-above-workspace-limit",
    "The cluster would send more active series than a workspace takes by default",
)
def series_above_limit(spec: ClusterSpec) -> Iterator[Problem]:
    """An Azure Monitor workspace takes 1,000,000 active series by default; above that Azure drops the
    samples of new series, so nodes added last have no metrics. A shared workspace
    (`existing_workspace_id`) already holds other clusters' series, so the margin is smaller still."""
    if not _on(spec):
        return
    series = estimated_series(spec)
    if series > WORKSPACE_ACTIVE_SERIES_LIMIT:
        yield (
            at("pools"),
            f"about {series:,} active series ({plural(spec.total_nodes, 'GPU node')}, "
            f"~{series // max(1, spec.total_nodes):,} each) is above the workspace's default limit of "
            f"{WORKSPACE_ACTIVE_SERIES_LIMIT:,}.",
            _raise_hint("active time series", _rounded_up(series)),
        )


@rule(
    "AZC127",
    "warning",
    "monitoring-samples-above-workspace-limit",
    "The cluster would send more samples a minute than a workspace takes by default",
)
def samples_above_limit(spec: ClusterSpec) -> Iterator[Problem]:
    """An Azure Monitor workspace ingests 1,000,000 events (samples) a minute by default; every series
    sends 60 / scrape interval samples a minute, so at the 30 s default this limit is met at half the
    series limit."""
    if not _on(spec):
        return
    per_minute = estimated_series(spec) * 60 // spec.monitoring.scrape_interval_seconds
    if per_minute > WORKSPACE_EVENTS_PER_MINUTE_LIMIT:
        yield (
            at("monitoring.scrape_interval_seconds"),
            f"about {per_minute:,} samples a minute (a scrape every "
            f"{spec.monitoring.scrape_interval_seconds} s) is above the workspace's default limit of "
            f"{WORKSPACE_EVENTS_PER_MINUTE_LIMIT:,} events per minute.",
            _raise_hint("events per minute", _rounded_up(per_minute)),
        )


SCRAPE_PATH = "monitoring.scrape_interval_seconds"
REQUEST_INCREASE_AT = 0.8
"""Microsoft's advice: request a higher limit once utilisation passes 80% of it (learn.microsoft.com/azure/
azure-monitor/metrics/azure-monitor-workspace-scaling-best-practice, "Service limits and quotas"; the
workspace reports it as the platform metrics Active Time Series % Utilization and Events Per Minute
Ingested % Utilization)."""


@rule(
    "AZC150",
    "warning",
    "monitoring-series-near-workspace-limit",
    "The cluster would use more than 80% of a workspace's default series or samples limit",
)
def series_near_limit(spec: ClusterSpec) -> Iterator[Problem]:
    """Above 80% of the active-series or samples-a-minute limit, Microsoft advises asking for more before
    it is reached (REQUEST_INCREASE_AT): an increase is a support request that takes days, nodes added by
    `grow` or a second cluster in a shared workspace reach the limit with no warning from Azure (it drops
    the new series' samples), and dashboards then miss the newest nodes. Over 100%, AZC126 and AZC127 say
    so instead."""
    if not _on(spec):
        return
    series = estimated_series(spec)
    per_minute = series * 60 // spec.monitoring.scrape_interval_seconds
    for used, limit, what, path in (
        (series, WORKSPACE_ACTIVE_SERIES_LIMIT, "active time series", "pools"),
        (per_minute, WORKSPACE_EVENTS_PER_MINUTE_LIMIT, "events per minute", SCRAPE_PATH),
    ):
        if REQUEST_INCREASE_AT * limit < used <= limit:
            yield (
                at(path),
                f"about {used:,} {what} is {used / limit:.0%} of the workspace's default limit of {limit:,}: "
                "Microsoft advises requesting more above 80%.",
                _raise_hint(what, _rounded_up(used)),
            )


def _rounded_up(value: int) -> int:
    """The next 500,000 above `value`: a figure to ask support for, with headroom."""
    step = 500_000
    return (value // step + 1) * step


@rule(
    "AZC128",
    "error",
    "monitoring-private-link-scope-id-malformed",
    "monitoring.existing_private_link_scope_id is not an Azure Monitor Private Link Scope resource id",
)
def private_link_scope_id_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The data collection endpoint joins the scope by its resource group and name, read from the id;
    a name alone, or a private endpoint's or DNS zone's id, cannot be joined and fails the deployment."""
    return _malformed_id(
        spec,
        "existing_private_link_scope_id",
        SCOPE_ID,
        "an Azure Monitor Private Link Scope resource id",
        "Use /subscriptions/<guid>/resourceGroups/<group>/providers/Microsoft.Insights/"
        "privateLinkScopes/<name> (`az monitor private-link-scope show -g <group> -n <name> "
        "--query id`).",
    )


@rule(
    "AZC129",
    "warning",
    "monitoring-private-link-scope-unused",
    "monitoring.existing_private_link_scope_id is given but monitoring is public",
)
def private_link_scope_unused(spec: ClusterSpec) -> Iterator[Problem]:
    """The scope is joined only for private ingestion (`public_network_access: false`); with public
    access the nodes send to the endpoint's public address and the scope is left alone, which is
    probably not what its author meant."""
    mon = spec.monitoring
    if _on(spec) and mon.existing_private_link_scope_id is not None and mon.public_network_access:
        yield (
            at("monitoring.existing_private_link_scope_id"),
            "the Private Link Scope is not used: metrics go to the public ingestion address while "
            "`monitoring.public_network_access` is true.",
            "Set `monitoring.public_network_access: false` to send them through the scope, or remove "
            "existing_private_link_scope_id.",
        )


@rule(
    "AZC155",
    "warning",
    "monitoring-own-private-link-scope-in-shared-network",
    "Private monitoring in a network the cluster joins creates a second Azure Monitor Private Link Scope",
)
def own_scope_in_shared_network(spec: ClusterSpec) -> Iterator[Problem]:
    """ "A virtual network can connect to only one AMPLS object", and networks that share DNS should have
    one scope between them: a second scope's private endpoint overrides the same Azure Monitor names in
    the shared DNS, and the first network's resources stop being reached; hub-and-spoke networks set up
    one private link on the hub (learn.microsoft.com/azure/azure-monitor/logs/private-link-design, "AMPLS
    limits", "Use a single AMPLS to avoid DNS overrides", "Hub-and-spoke networks"). In a hub, join the
    hub's scope instead."""
    mon = spec.monitoring
    if (
        _on(spec)
        and not mon.public_network_access
        and spec.network.existing_vnet_id is not None
        and mon.existing_private_link_scope_id is None
    ):
        yield (
            at("monitoring.public_network_access"),
            "the cluster would create an Azure Monitor Private Link Scope of its own in a network it "
            "shares; a network resolves Azure Monitor through one scope only, and the records of its "
            "private endpoint are left to the network's own private DNS.",
            "If the hub has a scope, set `monitoring.existing_private_link_scope_id` to it (the cluster's "
            "data collection endpoint joins it); if it has none, make sure the hub's "
            "privatelink.monitor.azure.com zone gets the records of `<cluster>-ampls-pe`.",
        )


@rule(
    "AZC156",
    "info",
    "monitoring-existing-grafana-not-linked",
    "An existing Grafana is not linked to the workspace the cluster creates",
)
def existing_grafana_not_linked(spec: ClusterSpec) -> Iterator[Problem]:
    """azcluster never changes a Grafana it did not create: with `existing_grafana_id` and a new
    workspace, that Grafana has no data source for it and no right to read it until its owner adds both
    (the dashboards are installed all the same, and show data once it does)."""
    mon = spec.monitoring
    if _on(spec) and mon.existing_grafana_id is not None and mon.existing_workspace_id is None:
        yield (
            at("monitoring.existing_grafana_id"),
            f"the Grafana is not linked to the cluster's new workspace {spec.name}-metrics: its dashboards "
            "stay empty until it is.",
            "After `up`, link the workspace to the Grafana (Azure portal: the Azure Monitor workspace > "
            "Linked Grafana workspaces) and give the Grafana's identity Monitoring Data Reader on it; or "
            "set `monitoring.existing_workspace_id` to the workspace that Grafana already reads.",
        )
