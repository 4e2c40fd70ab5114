"""Credentials, clouds, subscriptions and the Compute client: how azcluster reaches Azure Resource Manager.

Every command that talks to Azure builds an `AzureContext` once (`connect`) and asks it for a client
(`compute_client`). The Azure SDKs are imported inside the functions, so importing this module (and
`azcluster --help`) stays fast.

- Credentials: azure-identity's DefaultAzureCredential (Azure CLI login, a service principal in the
  environment, managed identity, workload identity federation in CI), or one picked with `--auth`.
- Subscription: `--subscription`, then `AZURE_SUBSCRIPTION_ID`, then the Azure CLI's default subscription
  read from `~/.azure/azureProfile.json` (or `$AZURE_CONFIG_DIR`), without running `az`.
- Cloud: `--cloud` picks the Resource Manager endpoint, the token scope and the Entra authority;
  `AZCLUSTER_ARM_ENDPOINT` (and optionally `AZCLUSTER_ARM_SCOPE`) override them for private clouds and tests.
- Transport: azure-core's requests transport with TLS verification on; `REQUESTS_CA_BUNDLE` is honoured by
  requests; retries use azure-core's RetryPolicy defaults, which honour `Retry-After`.
- Time: every request has a connect and a read timeout, and every command one deadline (timeouts.py), so
  an endpoint that never answers is named and the command ends (exit 1) instead of hanging.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EXIT_MISSING_TOOL, EXIT_REFUSED, EXIT_USAGE, AzclusterError
from .timeouts import (
    ENV_DEADLINE,
    ENV_READ_TIMEOUT,
    Deadline,
    deadline_seconds,
    is_deadline,
    read_timeout_seconds,
    silent_read,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from azure.core.credentials import TokenCredential
    from azure.mgmt.compute import ComputeManagementClient

ENV_ARM_ENDPOINT = "AZCLUSTER_ARM_ENDPOINT"
ENV_ARM_SCOPE = "AZCLUSTER_ARM_SCOPE"
ENV_SUBSCRIPTION = "AZURE_SUBSCRIPTION_ID"
AUTH_MODES = ("cli", "env", "msi", "oidc")

# Microsoft.Network's scale-set NIC operations are served at this version only; the official samples
# (e.g. azure-sdk-for-js, x-ms-original-file .../Microsoft.Network/stable/2022-05-01/examples/
# VmssNetworkInterfaceList.json) pin `api-version=2018-10-01` for them.
VMSS_NIC_API_VERSION = "2018-10-01"
# Microsoft.Compute reads sent as plain REST (arm_get_pages) rather than through the SDK's models: the
# stable version whose examples the fake ARM's bodies are trimmed from (azure-rest-api-specs
# specification/compute/.../ComputeRP/stable/2024-07-01/examples/virtualMachineScaleSetExamples/
# VirtualMachineScaleSetVM_List_MaximumSet_Gen.json).
COMPUTE_API_VERSION = "2024-07-01"
NETWORK_API_VERSION = "2024-05-01"
# Long-running operations are polled as Azure's Retry-After says; without one, this often (seconds).
DEFAULT_POLL_INTERVAL_S = 10
# azure-core does not retry a POST answered 429 (a POST is not idempotent to it); Resource Manager asks
# callers to wait Retry-After and send it again, this many times at most.
POST_THROTTLE_RETRIES = 4

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Cloud:
    """An Azure cloud: where Resource Manager lives, the token scope it accepts, who issues tokens."""

    name: str
    arm_endpoint: str
    scope: str
    authority: str


# Endpoints and scopes as azure-mgmt-core's `get_arm_endpoints` gives them (a test keeps them in step);
# authorities as azure-identity's `AzureAuthorityHosts`.
CLOUDS: dict[str, Cloud] = {
    "AzureCloud": Cloud(
        "AzureCloud",
        "https://management.azure.com/",
        "https://management.azure.com/.default",
        "login.microsoftonline.com",
    ),
    "AzureUSGovernment": Cloud(
        "AzureUSGovernment",
        "https://management.usgovcloudapi.net/",
        "https://management.core.usgovcloudapi.net/.default",
        "login.microsoftonline.us",
    ),
    "AzureChinaCloud": Cloud(
        "AzureChinaCloud",
        "https://management.chinacloudapi.cn/",
        "https://management.chinacloudapi.cn/.default",
        "login.chinacloudapi.cn",
    ),
}


@dataclass
class AzureContext:
    """Everything a command needs to call Azure: credential, subscription, endpoint, client options.

    `client_options` go to the SDK clients as keyword arguments (azure-core settings such as
    `retry_backoff_factor`, `retry_total`, `polling_interval`, `connection_verify`); empty in production.
    """

    credential: TokenCredential
    subscription_id: str
    cloud: Cloud
    arm_endpoint: str
    scope: str
    auth: str = "default"
    subscription_source: str = ""
    client_options: dict[str, Any] = field(default_factory=dict)
    deadline: Deadline = field(default_factory=lambda: Deadline(deadline_seconds(None)))
    read_timeout: float = field(default_factory=read_timeout_seconds)  # one read (GET); timeouts.py

    def describe(self) -> str:
        return f"subscription {self.subscription_id} ({self.subscription_source}) at {self.arm_endpoint}"


def cloud_for(name: str | None) -> Cloud:
    if name is None:
        return CLOUDS["AzureCloud"]
    for key, cloud in CLOUDS.items():
        if key.lower() == name.lower():
            return cloud
    raise AzclusterError(
        f"unknown cloud {name!r}",
        f"use one of: {', '.join(CLOUDS)}; for another cloud set {ENV_ARM_ENDPOINT} (and {ENV_ARM_SCOPE})",
        EXIT_USAGE,
    )


def azure_config_dir() -> Path:
    return Path(os.environ.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")


def cli_profile_subscriptions(config_dir: Path | None = None) -> list[dict[str, Any]]:
    """The subscriptions the Azure CLI knows (`az account list`), read from its profile file.

    The CLI writes `azureProfile.json` with a UTF-8 byte-order mark; a missing or unreadable file means
    "none known", never a crash.
    """
    path = (config_dir or azure_config_dir()) / "azureProfile.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return []
    subscriptions = data.get("subscriptions") if isinstance(data, dict) else None
    return [s for s in subscriptions or [] if isinstance(s, dict) and s.get("id")]


def resolve_subscription(
    explicit: str | None = None,
    environ: Mapping[str, str] | None = None,
    config_dir: Path | None = None,
) -> tuple[str, str, str | None]:
    """(subscription id, where it came from, the Azure CLI cloud of that subscription or None).

    Order: `--subscription` (an id, or a name the Azure CLI knows), `AZURE_SUBSCRIPTION_ID`, the Azure CLI's
    default subscription. None found is exit 3 with the three ways to fix it.
    """
    environ = os.environ if environ is None else environ
    profile = cli_profile_subscriptions(config_dir)
    if explicit:
        if _GUID.match(explicit.strip()):
            return explicit.strip().lower(), "--subscription", _cloud_of(profile, explicit.strip())
        named = [s for s in profile if str(s.get("name", "")).lower() == explicit.strip().lower()]
        if len(named) == 1:
            return (
                str(named[0]["id"]).lower(),
                f"--subscription {explicit!r}",
                named[0].get("environmentName"),
            )
        raise AzclusterError(
            f"--subscription {explicit!r} is not a subscription id, nor the name of exactly one subscription "
            "the Azure CLI knows",
            "pass the subscription id (a GUID; `az account list -o table` shows them)",
            EXIT_USAGE,
        )
    from_env = (environ.get(ENV_SUBSCRIPTION) or "").strip()
    if from_env:
        if not _GUID.match(from_env):
            raise AzclusterError(
                f"{ENV_SUBSCRIPTION}={from_env!r} is not a subscription id (a GUID)",
                "set it to the id `az account show --query id -o tsv` prints",
                EXIT_USAGE,
            )
        return from_env.lower(), ENV_SUBSCRIPTION, _cloud_of(profile, from_env)
    default = [s for s in profile if s.get("isDefault")]
    if default:
        sub = default[0]
        return str(sub["id"]).lower(), "Azure CLI default subscription", sub.get("environmentName")
    raise AzclusterError(
        "no Azure subscription selected",
        f"run `az login` (and `az account set --subscription ID`), or set {ENV_SUBSCRIPTION}, "
        "or pass --subscription ID",
        EXIT_MISSING_TOOL,
    )


def _cloud_of(profile: list[dict[str, Any]], subscription_id: str) -> str | None:
    for sub in profile:
        if str(sub.get("id", "")).lower() == subscription_id.lower():
            return sub.get("environmentName")
    return None


def make_credential(auth: str | None, cloud: Cloud) -> TokenCredential:
    """The credential for `--auth` (None: DefaultAzureCredential). Nothing is fetched until first use."""
    if auth is not None and auth not in AUTH_MODES:
        raise AzclusterError(f"unknown --auth {auth!r}", f"use one of: {', '.join(AUTH_MODES)}", EXIT_USAGE)
    from azure import identity

    try:
        if auth is None:
            return identity.DefaultAzureCredential(authority=cloud.authority)
        if auth == "cli":
            return identity.AzureCliCredential()
        if auth == "env":
            return identity.EnvironmentCredential(authority=cloud.authority)
        if auth == "msi":
            return identity.ManagedIdentityCredential(client_id=os.environ.get("AZURE_CLIENT_ID") or None)
        return identity.WorkloadIdentityCredential(authority=cloud.authority)
    except ValueError as err:  # WorkloadIdentityCredential names the missing environment variables
        raise AzclusterError(
            f"cannot set up --auth {auth}: {err}", credential_hint(auth), EXIT_MISSING_TOOL
        ) from None


def credential_hint(auth: str | None) -> str:
    return {
        "cli": "run `az login` (and `az account set --subscription ID`)",
        "env": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
        "(or AZURE_CLIENT_CERTIFICATE_PATH)",
        "msi": "run on an Azure VM or service with a managed identity (set AZURE_CLIENT_ID for a "
        "user-assigned one) that has a role on the subscription",
        "oidc": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE (workload identity "
        "federation, e.g. GitHub Actions OIDC)",
    }.get(
        auth or "",
        "run `az login`, or set AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, or run where a managed "
        "identity exists; pick one explicitly with --auth cli|env|msi|oidc",
    )


def connect(
    subscription: str | None = None,
    auth: str | None = None,
    cloud: str | None = None,
    *,
    credential: TokenCredential | None = None,
    client_options: Mapping[str, Any] | None = None,
    deadline_s: float | None = None,
) -> AzureContext:
    """Resolve subscription, cloud, endpoint and credential. Raises AzclusterError (exit 2 or 3).

    `deadline_s`: how long the command may wait for Azure in all, from now (AZCLUSTER_AZURE_DEADLINE
    overrides it; timeouts.py). How long one read may wait: AZCLUSTER_AZURE_READ_TIMEOUT, else 20 s.
    """
    deadline = Deadline(deadline_seconds(deadline_s))
    read_timeout = read_timeout_seconds()
    subscription_id, source, cli_cloud = resolve_subscription(subscription)
    chosen = cloud_for(cloud if cloud is not None else cli_cloud if cli_cloud in CLOUDS else None)
    endpoint = (os.environ.get(ENV_ARM_ENDPOINT) or chosen.arm_endpoint).strip()
    if not endpoint.lower().startswith("https://"):
        raise AzclusterError(
            f"{ENV_ARM_ENDPOINT}={endpoint!r} is not an https:// URL",
            "Azure Resource Manager is only reached over TLS; bearer tokens are never sent in clear text",
            EXIT_USAGE,
        )
    scope = (os.environ.get(ENV_ARM_SCOPE) or chosen.scope).strip()
    return AzureContext(
        credential=credential if credential is not None else make_credential(auth, chosen),
        subscription_id=subscription_id,
        cloud=chosen,
        arm_endpoint=endpoint.rstrip("/") + "/",
        scope=scope,
        auth=auth or "default",
        subscription_source=source,
        client_options=dict(client_options or {}),
        deadline=deadline,
        read_timeout=read_timeout,
    )


def compute_client(ctx: AzureContext, **overrides: Any) -> ComputeManagementClient:
    """A ComputeManagementClient for the context's endpoint, scope and subscription.

    azure-core defaults apply unless the context or `overrides` say otherwise: retries with exponential
    backoff that honour `Retry-After` (429, 408, 5xx), TLS verification on, proxies and CA bundle from the
    environment. Long-running operations are polled at the interval Azure's `Retry-After` asks for.
    Each request has connect and read timeouts, and none outlives the command's deadline (timeouts.py).
    """
    from azure.mgmt.compute import ComputeManagementClient

    from .timeouts import client_options

    options = {
        "polling_interval": DEFAULT_POLL_INTERVAL_S,
        **client_options(ctx.deadline, ctx.read_timeout),
        **ctx.client_options,
        **overrides,
    }
    return ComputeManagementClient(
        ctx.credential,
        ctx.subscription_id,
        base_url=ctx.arm_endpoint,
        credential_scopes=[ctx.scope],
        **options,
    )


def arm_get_pages(
    client: ComputeManagementClient, path: str, api_version: str, query: Mapping[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """GET an ARM list (`{"value": [...], "nextLink": ...}`) through the client's pipeline, every page.

    For the Resource Manager reads azure-mgmt-compute has no method for (a scale set's network interfaces
    and a NIC, served by Microsoft.Network), and for the large ones whose SDK models cost more than the
    answer is worth (a scale set's VMs: building the models took most of the client's CPU at thousands of
    nodes; benchmarks/bench_ops.py). Same credential, retries, timeouts and TLS as every other call, and
    `HttpResponseError` on failure, exactly as the SDK's own operations raise.
    """
    from urllib.parse import urlencode

    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.core.rest import HttpRequest

    url: str | None = f"{path}?{urlencode({'api-version': api_version, **(query or {})}, safe='$')}"
    while url:
        response = client.send_request(HttpRequest("GET", url))
        if response.status_code == 404:
            raise ResourceNotFoundError(response=response)
        if response.status_code != 200:
            raise HttpResponseError(response=response)
        body = response.json()
        if isinstance(body, dict) and "value" not in body:
            yield body
            return
        yield from body.get("value") or []
        url = body.get("nextLink") or None


def begin_with_throttle_retry(
    begin: Callable[..., Any], *args: Any, update: Callable[[str], None] = lambda _text: None, **kwargs: Any
) -> Any:
    """`begin(*args, **kwargs)` (an SDK `begin_*` POST); a 429 answer waits Retry-After (at most 120 s) and
    retries.

    Shared by every long-running POST azcluster sends (start, deallocate, Run Command), so throttling
    is handled the same way everywhere; `update` says on the progress line that we are waiting.
    """
    from azure.core.exceptions import HttpResponseError

    for attempt in range(POST_THROTTLE_RETRIES + 1):
        try:
            return begin(*args, **kwargs)
        except HttpResponseError as err:
            if getattr(err, "status_code", None) != 429 or attempt == POST_THROTTLE_RETRIES:
                raise
            response = getattr(err, "response", None)
            retry_after = (response.headers.get("Retry-After") if response is not None else None) or "5"
            try:
                delay = min(max(float(retry_after), 0.0), 120.0)
            except ValueError:
                delay = 5.0
            update(f"throttled, retrying in {delay:g}s")
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def rest(model: Any) -> dict[str, Any]:
    """An SDK model as the REST JSON it came from (property names as in the REST API and its examples)."""
    if model is None:
        return {}
    if isinstance(model, dict):
        return model
    as_dict = getattr(model, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    return dict(model)


@contextmanager
def azure_errors(ctx: AzureContext | None, doing: str) -> Iterator[None]:
    """Turn the Azure SDK's failures into one clear AzclusterError each, with what to do.

    A credential that cannot get a token is exit 3; Azure refusing (403, 404, throttling that outlasts the
    retries, service errors) is exit 1; an unreachable endpoint is exit 1 naming the endpoint.
    """
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    auth = ctx.auth if ctx else None
    try:
        yield
    except AzclusterError:
        raise
    except ClientAuthenticationError as err:
        status = getattr(err, "status_code", None)
        if status in (401, 403) and getattr(err, "response", None) is not None:
            raise _http_error(err, ctx, doing) from None
        raise AzclusterError(
            f"no working Azure credential while {doing}: {_first_line(str(err))}",
            credential_hint(None if auth in (None, "default") else auth),
            EXIT_MISSING_TOOL,
        ) from None
    except HttpResponseError as err:
        raise _http_error(err, ctx, doing) from None
    except (ServiceRequestError, ServiceResponseError) as err:
        raise unreachable(err, ctx, doing) from None


def unreachable(err: BaseException, ctx: AzureContext | None, doing: str) -> AzclusterError:
    """The AzclusterError (exit 1) for an endpoint that could not be reached or did not answer in time,
    naming the request that was waiting."""
    where = ctx.arm_endpoint if ctx else "Azure Resource Manager"
    request = getattr(err, "azcluster_request", None)
    if is_deadline(err):
        seconds = getattr(err, "azcluster_deadline", 0)
        return AzclusterError(
            f"{request or where} did not answer within the command's {seconds:g}s deadline while {doing}",
            f"is {where} reachable from here (network, proxy, firewall)? Azure may be slow: run it again, "
            f"or give it longer with {ENV_DEADLINE}=SECONDS",
            EXIT_REFUSED,
        )
    if (read := silent_read(err)) is not None:
        seconds, tries = read
        return AzclusterError(
            f"{request or where} did not answer within {seconds:g}s ({tries} tries) while {doing}",
            f"a read answers in about a second: is {where} reachable from here (network, proxy, firewall)? "
            f"Run it again, or give each read longer with {ENV_READ_TIMEOUT}=SECONDS",
            EXIT_REFUSED,
        )
    asked = f" ({request})" if request else ""
    return AzclusterError(
        f"cannot reach {where}{asked} while {doing}: {_first_line(str(err))}",
        "check the network, proxy (HTTPS_PROXY) and CA bundle (REQUESTS_CA_BUNDLE), or "
        f"{ENV_ARM_ENDPOINT} if you set it",
        EXIT_REFUSED,
    )


def error_code(err: Exception) -> str:
    """The ARM error code of an SDK exception (e.g. AllocationFailed), or ''."""
    error = getattr(err, "error", None)
    code = getattr(error, "code", None)
    if code:
        return str(code)
    model = getattr(err, "model", None)
    inner = getattr(model, "error", None)
    return str(getattr(inner, "code", "") or "")


def error_message(err: Exception) -> str:
    error = getattr(err, "error", None)
    message = getattr(error, "message", None)
    return _first_line(str(message or getattr(err, "message", "") or err))


def _http_error(err: Any, ctx: AzureContext | None, doing: str) -> AzclusterError:
    status = getattr(err, "status_code", None)
    code = error_code(err)
    message = f"Azure refused {doing}: {code + ': ' if code else ''}{error_message(err)}"
    if status == 403 or code in ("AuthorizationFailed", "LinkedAuthorizationFailed"):
        sub = ctx.subscription_id if ctx else "the subscription"
        hint = (
            f"the signed-in identity needs a role that allows this on {sub} "
            "(Reader for status/preflight, Virtual Machine Contributor for stop/start)"
        )
    elif status == 401:
        hint = "the token was rejected: sign in again (`az login`) or check --cloud / " + ENV_ARM_SCOPE
    elif status == 429:
        hint = "Azure Resource Manager is throttling this subscription; wait a minute and retry"
    elif code in ("SubscriptionNotFound", "InvalidSubscriptionId"):
        hint = "check --subscription / AZURE_SUBSCRIPTION_ID (`az account list -o table`)"
    else:
        hint = "retry; if it persists, check the Azure status page and the activity log"
    return AzclusterError(message, hint, EXIT_REFUSED)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""
