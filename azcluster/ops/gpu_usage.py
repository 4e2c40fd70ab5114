"""Each island's GPU utilisation over the last hour, for `status`, from the cluster's Azure Monitor
workspace: its Prometheus query API (learn.microsoft.com/azure/azure-monitor/metrics/prometheus-api-promql)
with an Entra ID token for `https://prometheus.monitor.azure.com`.

Where: the workspace's `properties.metrics.prometheusQueryEndpoint` (Microsoft.Monitor/accounts, API
2023-04-03), read from Resource Manager: the cluster's own `<name>-metrics` in its resource group, or the
spec's `monitoring.existing_workspace_id`. What: `avg_over_time` of dcgm-exporter's DCGM_FI_DEV_GPU_UTIL
over the hour, averaged per pool and island (the labels the nodes' agent adds to every series). The same
query runs against a real Prometheus over a synthetic cluster in tests/components/test_dashboards.py.

Best effort: `status` is about the nodes; a workspace that cannot be read, refuses the token or does not
answer within seconds is one line of the view (naming the endpoint), never the command's failure. Reading
it needs Monitoring Data Reader on the workspace.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from azcluster.components.spec import ClusterSpec

from ..errors import AzclusterError
from .model import GPU_USAGE_WINDOW, GpuUsage, IslandUsage

if TYPE_CHECKING:  # pragma: no cover
    from ..azure import AzureContext

WORKSPACE_API_VERSION = "2023-04-03"
"""Microsoft.Monitor/accounts, the version pulumi-azure-native 3 builds the workspace with."""
WINDOW = GPU_USAGE_WINDOW
QUERY_READ_TIMEOUT_S = 10.0
"""The query API answers an hour's average in well under a second; a silent endpoint is given up after two
tries of this (timeouts.py: a GET gets one retry), so `status` is late by 20 s at most."""


def island_query(cluster: str, window: str = WINDOW) -> str:
    return f'avg by (pool, island) (avg_over_time(DCGM_FI_DEV_GPU_UTIL{{cluster="{cluster}"}}[{window}]))'


def workspace_id(spec: ClusterSpec, subscription_id: str) -> str:
    given = spec.monitoring.existing_workspace_id
    if given:
        return given.strip()
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{spec.resource_group_name}/providers/"
        f"Microsoft.Monitor/accounts/{spec.name}-metrics"
    )


def read_gpu_usage(spec: ClusterSpec, ctx: AzureContext, window: str = WINDOW) -> GpuUsage:
    """Never raises for Azure's or the workspace's sake: a failure is the result's `error`."""
    usage = GpuUsage(window=window)
    try:
        usage.endpoint = query_endpoint(spec, ctx)
        usage.islands = _query(spec, ctx, usage.endpoint, window)
    except AzclusterError as err:
        usage.error, usage.hint = err.message, err.hint
    return usage


def query_endpoint(spec: ClusterSpec, ctx: AzureContext) -> str:
    """The workspace's Prometheus query endpoint, read from Resource Manager."""
    from ..azure import arm_get_pages, azure_errors, compute_client

    resource = workspace_id(spec, ctx.subscription_id)
    with azure_errors(ctx, f"reading Azure Monitor workspace {resource.rsplit('/', 1)[-1]}"):
        body = next(arm_get_pages(compute_client(ctx), resource, WORKSPACE_API_VERSION), {})
    endpoint = ((body.get("properties") or {}).get("metrics") or {}).get("prometheusQueryEndpoint")
    if not endpoint:
        raise AzclusterError(
            f"Azure Monitor workspace {resource} has no Prometheus query endpoint yet",
            "a workspace being created has none for a minute; run `azcluster status` again",
        )
    return str(endpoint)


def _query(spec: ClusterSpec, ctx: AzureContext, endpoint: str, window: str) -> list[IslandUsage]:
    from .. import dataplane

    client = dataplane.connect_as(
        ctx,
        endpoint,
        "the Azure Monitor workspace's query endpoint",
        dataplane.PROMETHEUS_SCOPES,
        read_timeout=min(ctx.read_timeout, QUERY_READ_TIMEOUT_S),
    )
    doing = f"querying the GPU utilisation of {spec.name}'s islands"
    response = client.send(
        "GET",
        "/api/v1/query",
        params={"query": island_query(spec.name, window), "time": f"{time.time():.3f}"},
        doing=doing,
    )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):  # a proxy's or a gateway's JSON, not Prometheus's answer
        body = {}
    if response.status_code != 200 or body.get("status") != "success":
        detail = body.get("error") or response.reason or ""
        hint = (
            "the identity needs Monitoring Data Reader on the workspace"
            if response.status_code in (401, 403)
            else "run `azcluster status` again; `azcluster dashboard` opens the same data in Grafana"
        )
        raise AzclusterError(
            f"the workspace's query endpoint answered {response.status_code} while {doing}"
            + (f": {detail}" if detail else ""),
            hint,
        )
    rows = []
    data = body.get("data")
    result = data.get("result") if isinstance(data, dict) else None
    for item in result if isinstance(result, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("metric", {}), dict):
            continue
        labels, value = item.get("metric", {}), item.get("value", [None, "nan"])
        try:
            percent = float(value[1])
        except (TypeError, ValueError, IndexError):
            continue
        if not math.isfinite(percent):
            # Prometheus sends "NaN", "+Inf" and "-Inf" as strings (its HTTP API: sample values are quoted
            # JSON strings so these can travel); an island whose hour averaged to NaN has no usable figure,
            # and a NaN in `status --json` would make the document invalid JSON.
            continue
        rows.append(IslandUsage(str(labels.get("pool", "")), str(labels.get("island", "")), percent))
    return sorted(rows, key=lambda row: (row.pool, row.island))
