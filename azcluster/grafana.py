"""The cluster's dashboards into its Azure Managed Grafana through Grafana's HTTP API (the last step of `up`).

Why the HTTP API and not a Pulumi resource: pulumi-azure-native's `dashboard` module has Grafana itself,
its managed private endpoints and integration fabrics, and `Dashboard`/`DashboardDefinition`, which are
Azure's own managed dashboards (Microsoft.Dashboard/dashboards, a separate preview service), not dashboards
inside a Grafana workspace. Grafana's own API is what the Azure CLI's `az grafana dashboard create` calls.

- Folder: one per cluster, `GET /api/folders/:uid`, created by `POST /api/folders` when Grafana answers 404
  (grafana.com/docs/grafana/latest/developers/http_api/folder/).
- Dashboards: `POST /api/dashboards/db` with `{"dashboard", "folderUid", "overwrite": true, "message"}`;
  Grafana answers 200 `{"id", "uid", "url", "status": "success", "version", "slug"}`, 400 for a bad body,
  401/403 without rights, 412 when a dashboard of the same title or uid is in the way and `overwrite` is
  false (grafana.com/docs/grafana/latest/developers/http_api/dashboard/). `overwrite: true` makes `up`
  idempotent: each run puts back the repository's version (edits made in Grafana are replaced; save a copy
  under another name to keep them).
- Each cluster's dashboards have their own uids (`azc-<cluster>-<name>`, at most 40 characters, Grafana's
  limit) and titles, and the cluster variable defaults to the cluster: a hub team's shared Grafana holds
  many clusters side by side.
- Who may: the identity running `up` needs Grafana Editor or Admin on the Grafana (azcluster makes the
  deploying principal, or the spec's group, Grafana Admin on a Grafana it creates).

Best effort, like the hostfiles: a Grafana that refuses or does not answer is a warning of `up`, and
`azcluster dashboard STACK --install` tries again.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azcluster.components import catalog
from azcluster.components.spec import ClusterSpec

from .errors import EXIT_REFUSED, AzclusterError

if TYPE_CHECKING:  # pragma: no cover
    from .azure import AzureContext
    from .dataplane import DataPlane

UID_MAX = 40
"""Grafana's limit on a dashboard's (and folder's) uid (grafana.com dashboard HTTP API: "The uid can have a
maximum length of 40 characters")."""
CLUSTER_VARIABLE = "cluster"
MESSAGE = "azcluster up: the repository's version of this dashboard"


def _uid(cluster: str, name: str) -> str:
    uid = f"azc-{cluster}-{name}"
    if len(uid) <= UID_MAX:
        return uid
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:8]
    return f"azc-{cluster[: UID_MAX - len(name) - 15]}-{digest}-{name}"


def folder_uid(cluster: str) -> str:
    return _uid(cluster, "folder")


def dashboard_uid(cluster: str, name: str) -> str:
    return _uid(cluster, name)


def cluster_dashboards(cluster: str) -> list[dict[str, Any]]:
    """The repository's dashboards made the cluster's: its uids and titles, the cluster variable set to it."""
    documents = []
    for name, board in catalog.dashboards().items():
        board["uid"] = dashboard_uid(cluster, name)
        board["title"] = board["title"].replace("azcluster:", f"{cluster}:", 1)
        board.pop("id", None)
        board["version"] = 0
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("name") == CLUSTER_VARIABLE:
                variable["current"] = {"selected": True, "text": cluster, "value": cluster}
        documents.append(board)
    return documents


@dataclass
class InstallResult:
    """What `up` (or `dashboard --install`) did in Grafana."""

    endpoint: str
    installed: list[dict[str, str]] = field(default_factory=list)  # {"uid", "title", "url"}
    error: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "endpoint": self.endpoint,
            "installed": self.installed,
            "error": self.error,
            "hint": self.hint,
        }


def install(grafana: DataPlane, cluster: str) -> InstallResult:
    """The cluster's folder and every dashboard of the catalogue, overwriting the ones `up` put there before.
    Raises AzclusterError (exit 1) naming the call Grafana refused or the endpoint that did not answer."""
    result = InstallResult(grafana.endpoint)
    folder = folder_uid(cluster)
    _ensure_folder(grafana, folder, f"azcluster {cluster}")
    for board in cluster_dashboards(cluster):
        body = {"dashboard": board, "folderUid": folder, "overwrite": True, "message": MESSAGE}
        doing = f"saving dashboard {board['title']!r}"
        response = grafana.send("POST", "/api/dashboards/db", json=body, doing=doing)
        if response.status_code != 200:
            raise refused(response, grafana, doing)
        answer = _json(response)
        url = str(answer.get("url") or f"/d/{board['uid']}")
        result.installed.append({"uid": board["uid"], "title": board["title"], "url": grafana.endpoint + url})
    return result


def _ensure_folder(grafana: DataPlane, uid: str, title: str) -> None:
    doing = f"looking for folder {title!r}"
    found = grafana.send("GET", f"/api/folders/{uid}", doing=doing)
    if found.status_code == 200:
        return
    if found.status_code != 404:
        raise refused(found, grafana, doing)
    doing = f"creating folder {title!r}"
    made = grafana.send("POST", "/api/folders", json={"uid": uid, "title": title}, doing=doing)
    if made.status_code == 409:
        # Grafana answers 409 both for a folder of this uid (made meanwhile by another run: fine) and for
        # another folder of the same title (ErrFolderWithSameUIDExists and ErrFolderSameNameExists,
        # pkg/api/apierrors/folder.go): only the first leaves a folder the dashboards can be saved in.
        again = grafana.send("GET", f"/api/folders/{uid}", doing=doing)
        if again.status_code == 200:
            return
        raise AzclusterError(
            f"Grafana at {grafana.endpoint} already has a folder titled {title!r} (not azcluster's, whose "
            f"uid is {uid}) while {doing}",
            "rename or delete that folder in Grafana, then run `azcluster dashboard STACK --install`",
            EXIT_REFUSED,
        )
    if made.status_code != 200:
        raise refused(made, grafana, doing)


def refused(response: Any, grafana: DataPlane, doing: str) -> AzclusterError:
    """Grafana's answer as one message, with what to do for the statuses the API documents."""
    status = response.status_code
    message = str(_json(response).get("message") or response.reason or "").strip()
    if status == 401:
        hint = (
            "Grafana did not accept the Entra ID token: sign in again (`az login`); the token's audience "
            "must be https://dashboard.azure.com"
        )
    elif status == 403:
        hint = (
            "the identity running azcluster needs Grafana Editor or Grafana Admin on the Grafana "
            "(Azure portal > the Grafana > Access control (IAM))"
        )
    elif status == 412:
        hint = "another dashboard holds this title or uid in the folder: rename or delete it, then run again"
    elif status >= 500:
        hint = "Grafana failed on its side (after retries): run `azcluster dashboard STACK --install` later"
    else:
        hint = "run `azcluster dashboard STACK --install` again; with --debug for the whole answer"
    return AzclusterError(
        f"Grafana at {grafana.endpoint} answered {status} while {doing}"
        + (f": {message}" if message else ""),
        hint,
        EXIT_REFUSED,
    )


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


GRAFANA_API_VERSION = "2024-10-01"
"""Microsoft.Dashboard/grafana, the version pulumi-azure-native 3 builds Grafana with."""
INSTALL_DEADLINE_S = 180.0
"""The whole install (a folder and five dashboards, each answered in well under a second); a Grafana that
does not answer is named after two tries of the read timeout, long before this."""


def endpoint_of(spec: ClusterSpec, outputs: Mapping[str, Any], ctx: Callable[[], AzureContext]) -> str:
    """Grafana's URL: the stack's `grafana_endpoint` output, or, with `monitoring.existing_grafana_id`,
    the given Grafana's `properties.endpoint` read from Resource Manager (`ctx` connects only then)."""
    found = outputs.get("grafana_endpoint")
    value = getattr(found, "value", found)
    if isinstance(value, str) and value:
        return value.rstrip("/")
    given = spec.monitoring.existing_grafana_id
    if not given:
        raise AzclusterError(
            "the stack has no Grafana endpoint output yet",
            "run `azcluster up` first (Grafana is created with the stack when monitoring is on)",
            EXIT_REFUSED,
        )
    from .azure import arm_get_pages, azure_errors, compute_client

    azure = ctx()
    with azure_errors(azure, f"reading Grafana {given.rsplit('/', 1)[-1]}"):
        body = next(arm_get_pages(compute_client(azure), given.strip(), GRAFANA_API_VERSION), {})
    endpoint = (body.get("properties") or {}).get("endpoint")
    if not endpoint:
        raise AzclusterError(
            f"Grafana {given} has no endpoint", "is it still being created? Run it again", EXIT_REFUSED
        )
    return str(endpoint).rstrip("/")


def connect(endpoint: str, azure: AzureContext) -> DataPlane:
    """Grafana's API with the context's credential, for the cloud's Grafana audience."""
    from . import dataplane
    from .timeouts import Deadline

    deadline = Deadline(min(INSTALL_DEADLINE_S, max(azure.deadline.remaining(), 1.0)))
    return dataplane.connect_as(azure, endpoint, "Grafana", dataplane.GRAFANA_SCOPES, deadline=deadline)


def install_for_stack(
    spec: ClusterSpec, outputs: Mapping[str, Any], ctx: Callable[[], AzureContext]
) -> InstallResult:
    """`up`'s last step: never raises; a failure is the result's `error` (shown as a warning)."""
    azure = functools.cache(ctx)  # connect at most once: endpoint_of may need Azure, install does

    result = InstallResult(endpoint="")
    try:
        result.endpoint = endpoint_of(spec, outputs, azure)
        return install(connect(result.endpoint, azure()), spec.name)
    except AzclusterError as err:
        result.error, result.hint = err.message, err.hint
        return result


def print_install(result: InstallResult, stack: str) -> None:
    """One line on stderr: where the dashboards are, or the warning and how to retry."""
    from .render import console, markup, side_step_warning

    if result.ok:
        console.print(
            markup("dashboards: {} installed in Grafana, {}", len(result.installed), result.endpoint),
            soft_wrap=True,
        )
        return
    side_step_warning(
        "the dashboards were not installed",
        result.error,
        result.hint,
        f"azcluster dashboard {stack} --install",
    )
