"""What the nodes boot with (AZC062): each role's cloud-config must fit Azure's custom data limit.

The login node's and each pool's cloud-config are rendered here by components/bootstrap, as `Cluster`
renders them, with values of the same shape and length as the ones that exist only at deployment (the
storage account and Lustre names, identity and subscription ids, the munge key). The size found here is
within a few dozen bytes of what `plan` and `up` meet (gzip does not shrink two random keys alike), so a
cloud-config within DEPLOYMENT_MARGIN bytes of the limit is refused too.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from collections.abc import Iterator
from typing import Any

from ..spec import ClusterSpec
from .common import at, lustre_enabled, pool_at
from .registry import Problem, rule

_GUID = "00000000-0000-4000-8000-000000000000"
_MUNGE_KEY = base64.b64encode(
    hashlib.sha512(b"munge 1").digest() + hashlib.sha512(b"munge 2").digest()
).decode()
"""As long as components/cluster_key.py's key (128 bytes, base64) and as incompressible."""
DEPLOYMENT_MARGIN = 256
"""Bytes kept for what differs from the deployment's values (about five islands; measured: 8-16 bytes)."""


def _account(cluster: str, salt: str) -> str:
    """As long as components/storage.py `storage_account_name` makes it (the hash differs; its length not)."""
    prefix = re.sub(r"[^a-z0-9]", "", cluster.lower())[:16] or "azc"
    return (prefix + hashlib.sha256(f"{cluster}|{salt}".encode()).hexdigest()[:8])[:24]


def encoded_size(cloud_config: str) -> int:
    """Bytes of custom data Azure counts: the cloud-config gzip'ed, base64-encoded (bootstrap/document.py)."""
    return len(base64.b64encode(gzip.compress(cloud_config.encode("utf-8"), compresslevel=9, mtime=0)))


def _deployment_values(spec: ClusterSpec) -> tuple[Any, dict[str, Any]]:
    """(StorageValues, Slurm arguments) as Cluster passes them to the pools and the login node."""
    from ..bootstrap import StorageValues

    zone = f"{spec.name}.azcluster.internal"
    blob = spec.storage.blob
    blob_account = _account(spec.name, "blob") if blob.enabled and blob.mount else None
    home = _account(spec.name, "home") if spec.storage.home.enabled else None
    storage = StorageValues(
        f"lustre.{zone}" if lustre_enabled(spec) else None,
        blob_account,
        _GUID if blob_account else None,
        home_source=f"{home}.file.core.windows.net:/{home}/home" if home else None,
    )
    slurm = {"munge_key": _MUNGE_KEY, "dns_zone": zone} if spec.scheduler == "slurm" else {}
    return storage, slurm


def _metrics_values(spec: ClusterSpec) -> Any:
    """MetricsValues as Cluster passes them when monitoring is on: a remote-write URL as long as a real
    data collection endpoint's and rule's (bootstrap/metrics.write_url), and the identity's client id."""
    if not spec.monitoring.enabled:
        return None
    from ..bootstrap.metrics import MetricsValues, write_url

    endpoint = f"https://{spec.name}-metrics-dce-abcd.{spec.location}-1.metrics.ingest.monitor.azure.com"
    return MetricsValues(write_url(endpoint, "dcr-" + "0" * 32), _GUID)


def _largest_pieces(header: str, pieces: list[Any]) -> str:
    """The pieces of a role by what each adds on its own, largest first: where to look when it is too big."""
    from ..bootstrap.document import assemble

    base = encoded_size(assemble(header, []))
    sizes = []
    for piece in pieces:
        try:
            sizes.append((encoded_size(assemble(header, [piece])) - base, piece.name))
        except ValueError:  # a piece that starts a unit another piece writes cannot stand alone
            continue
    sizes.sort(reverse=True)
    return ", ".join(f"{name} ({size / 1024:.0f} KiB)" for size, name in sizes[:3])


@rule(
    "AZC062",
    "error",
    "custom-data-too-large",
    "A node's cloud-config is larger than Azure's custom data limit",
)
def custom_data_too_large(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure takes at most 65,535 bytes of custom data per VM or scale set (osProfile.customData, base64;
    https://learn.microsoft.com/azure/virtual-machines/custom-data); azcluster sends each role's
    cloud-config gzip'ed and base64-encoded (components/bootstrap/document.py) and refuses to build one that
    does not fit. What grows with the spec: the login node's power configuration lists every island when the
    cluster is elastic, and Slurm's node records grow with the islands.
    """
    from ..bootstrap import CUSTOM_DATA_LIMIT, LoginBoot, PoolBoot, SlurmBoot
    from ..catalog import find_size

    most = CUSTOM_DATA_LIMIT - DEPLOYMENT_MARGIN

    storage, slurm = _deployment_values(spec)
    metrics = _metrics_values(spec)
    if spec.login.enabled:
        power = {"power_subscription": _GUID, "power_client_id": _GUID} if spec.elastic_enabled else {}
        try:
            boot = LoginBoot.for_cluster(spec, storage, **power, **slurm, metrics=metrics)
            size = encoded_size(boot.cloud_config())
        except ValueError:  # something another rule reports stops the rendering
            size = 0
        if size > most:
            largest = _largest_pieces(boot.header(), boot.pieces())
            yield (
                at("login"),
                f"the login node's cloud-config is about {size:,} bytes of custom data (gzip + base64); "
                f"Azure allows {CUSTOM_DATA_LIMIT:,} (azcluster keeps {DEPLOYMENT_MARGIN} of them for values "
                f"known only at deployment). Largest parts: {largest}.",
                "Fewer islands shrink it (a larger island_max_nodes, or fewer pools); an elastic cluster's "
                "power configuration lists every island.",
            )
    node_slurm = SlurmBoot(slurm["munge_key"], slurm["dns_zone"]) if slurm else None
    for index, pool in enumerate(spec.pools):
        if find_size(pool.size) is None:
            continue  # AZC007
        try:
            boot = PoolBoot.gather(spec, pool, storage, node_slurm, metrics)
            size = max(encoded_size(boot.cloud_config(island)) for island in {0, boot.islands - 1})
        except ValueError:
            continue
        if size > most:
            yield (
                pool_at(index),
                f"pool {pool.name!r}: its nodes' cloud-config is about {size:,} bytes of custom data (gzip + "
                f"base64); Azure allows {CUSTOM_DATA_LIMIT:,} (less {DEPLOYMENT_MARGIN} kept for deployment "
                "values). Largest parts: "
                f"{_largest_pieces(boot.header(0), boot.pieces(0))}.",
                "Shorten what the spec puts into the nodes' boot, or report it: a pool's boot files do not "
                "normally grow with the spec.",
            )
