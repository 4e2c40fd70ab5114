"""Clients for the Azure services azcluster calls beside Resource Manager: Azure Managed Grafana's HTTP API
and an Azure Monitor workspace's Prometheus query API.

Both take an Entra ID bearer token for their own audience, not Resource Manager's:
- Azure Managed Grafana: `https://dashboard.azure.com/.default` (learn.microsoft.com/azure/managed-grafana/
  how-to-authenticate-data-plane-api; Azure China: the app id 6f2d169c-08f3-4a4c-a982-bcaf2d038c45, on
  docs.azure.cn's copy of that page);
- the workspace's query endpoint: `https://prometheus.monitor.azure.com/.default` (learn.microsoft.com/
  azure/azure-monitor/metrics/prometheus-api-promql).

The pipeline is azure-core's own, as the SDK clients build it: retries with exponential backoff that
honour Retry-After on 408, 429 and 5xx (RetryPolicy), the bearer token policy (BearerTokenCredentialPolicy,
which refuses plain http), TLS verification on, proxies and CA bundle from the environment. And the
command's deadline and the short read timeout of timeouts.py, so an endpoint that accepts the connection
and never answers is named within seconds instead of azure-core's 300 s x 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import EXIT_MISSING_TOOL, EXIT_REFUSED, EXIT_USAGE, AzclusterError
from .timeouts import Deadline, client_options, is_deadline, silent_read

if TYPE_CHECKING:  # pragma: no cover
    from azure.core import PipelineClient
    from azure.core.credentials import TokenCredential

    from .azure import AzureContext

GRAFANA_SCOPES = {
    "AzureCloud": "https://dashboard.azure.com/.default",
    "AzureChinaCloud": "6f2d169c-08f3-4a4c-a982-bcaf2d038c45/.default",
}
PROMETHEUS_SCOPES = {
    "AzureCloud": "https://prometheus.monitor.azure.com/.default",
    "AzureChinaCloud": "https://prometheus.monitor.azure.cn/.default",
    "AzureUSGovernment": "https://prometheus.monitor.azure.us/.default",
}


def scope_for(scopes: dict[str, str], cloud: str) -> str:
    return scopes.get(cloud, scopes["AzureCloud"])


@dataclass
class DataPlane:
    """One service's endpoint and client, and how to name it in a message."""

    endpoint: str
    what: str
    client: PipelineClient

    def send(self, method: str, path: str, *, doing: str, **kwargs: Any) -> Any:
        """The response (any status) to `method path`; an unreachable or silent endpoint, or a credential
        that gives no token, becomes one AzclusterError naming the endpoint and what was being done."""
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
        from azure.core.rest import HttpRequest

        try:
            return self.client.send_request(HttpRequest(method, self.client.format_url(path), **kwargs))
        except ClientAuthenticationError as err:
            raise AzclusterError(
                f"no Azure credential for {self.what} while {doing}: {_first_line(err)}",
                "sign in (`az login`) or pass --auth; the identity also needs its role on the service",
                EXIT_MISSING_TOOL,
            ) from None
        except (ServiceRequestError, ServiceResponseError) as err:
            raise unreachable(err, self.what, self.endpoint, doing) from None


def connect(
    endpoint: str,
    what: str,
    credential: TokenCredential,
    scope: str,
    deadline: Deadline,
    read_timeout: float,
    **options: Any,
) -> DataPlane:
    """A client for `endpoint` (https:// only: a bearer token never travels in clear text).

    `options`: azure-core settings for the retry policy and transport (`retry_total`,
    `retry_backoff_factor`, `connection_verify`...), as the ARM clients take them."""
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import (
        BearerTokenCredentialPolicy,
        ContentDecodePolicy,
        HeadersPolicy,
        NetworkTraceLoggingPolicy,
        ProxyPolicy,
        RetryPolicy,
        UserAgentPolicy,
    )

    parts = urlsplit(endpoint)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise AzclusterError(
            f"{what} {endpoint!r} is not an https:// URL",
            "its address comes from the stack's outputs or Azure; a bearer token is never sent in clear text",
            EXIT_USAGE,
        )
    timing = client_options(deadline, read_timeout)
    retry_keys = ("retry_total", "retry_backoff_factor", "retry_backoff_max", "retry_connect", "retry_status")
    retry = {key: options.pop(key) for key in retry_keys if key in options}
    policies = [
        HeadersPolicy(**options),
        UserAgentPolicy(sdk_moniker="azcluster", **options),
        ProxyPolicy(**options),
        ContentDecodePolicy(**options),
        *timing["per_call_policies"],
        RetryPolicy(**retry),
        BearerTokenCredentialPolicy(credential, scope),
        *timing["per_retry_policies"],
        NetworkTraceLoggingPolicy(**options),
    ]
    client = PipelineClient(
        base_url=endpoint.rstrip("/"),
        policies=policies,
        connection_timeout=timing["connection_timeout"],
        read_timeout=timing["read_timeout"],
        **options,
    )
    return DataPlane(endpoint.rstrip("/"), what, client)


def connect_as(
    ctx: AzureContext,
    endpoint: str,
    what: str,
    scopes: dict[str, str],
    *,
    deadline: Deadline | None = None,
    read_timeout: float | None = None,
) -> DataPlane:
    """`connect` with the command's Azure context: its credential, the scope of its cloud, its deadline
    and read timeout unless given, and of its client options only those that mean the same off Resource
    Manager (the retry policy's and TLS verification)."""
    options = {
        key: value
        for key, value in ctx.client_options.items()
        if key.startswith(("retry_", "connection_verify"))
    }
    return connect(
        endpoint,
        what,
        ctx.credential,
        scope_for(scopes, ctx.cloud.name),
        deadline if deadline is not None else ctx.deadline,
        read_timeout if read_timeout is not None else ctx.read_timeout,
        **options,
    )


def unreachable(err: BaseException, what: str, endpoint: str, doing: str) -> AzclusterError:
    """Exit 1 naming the endpoint (and the request) that could not be reached or never answered."""
    request = getattr(err, "azcluster_request", None) or endpoint
    if is_deadline(err):
        seconds = getattr(err, "azcluster_deadline", 0)
        return AzclusterError(
            f"{what} ({request}) did not answer within the command's {seconds:g}s deadline while {doing}",
            f"is {endpoint} reachable from here (network, proxy, firewall, private endpoint)?",
            EXIT_REFUSED,
        )
    if (read := silent_read(err)) is not None:
        seconds, tries = read
        return AzclusterError(
            f"{what} ({request}) did not answer within {seconds:g}s ({tries} tries) while {doing}",
            f"is {endpoint} reachable from here (network, proxy, firewall)? With public network access off "
            "it answers only inside the cluster's network (or one peered with it).",
            EXIT_REFUSED,
        )
    return AzclusterError(
        f"cannot reach {what} ({request}) while {doing}: {_first_line(err)}",
        "check the network, proxy (HTTPS_PROXY) and CA bundle (REQUESTS_CA_BUNDLE)",
        EXIT_REFUSED,
    )


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
