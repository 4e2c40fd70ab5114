"""Tag names azcluster puts on what it builds: how `azcluster status/stop/start/hosts` find them.

The operations commands ask Azure for scale sets by these tags instead of reading Pulumi state, so they
work without the Pulumi CLI. The names and values are a contract: change them and every deployed cluster
becomes invisible to the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping

TAG_CLUSTER = "azcluster-cluster"
"""The cluster's name (`ClusterSpec.name`)."""
TAG_POOL = "azcluster-pool"
"""The GPU pool's name (`PoolSpec.name`), on compute scale sets only."""
TAG_ISLAND = "azcluster-island"
"""The InfiniBand island's index within its pool, as a decimal string ("0", "1", ...)."""
TAG_ROLE = "azcluster-role"
"""What the resource is for: one of the ROLE_* values below."""

ROLE_COMPUTE = "compute"
ROLE_LOGIN = "login"

RESERVED_TAGS = frozenset({TAG_CLUSTER, TAG_POOL, TAG_ISLAND, TAG_ROLE})


def cluster_tags(
    cluster: str,
    role: str,
    extra: Mapping[str, str] | None = None,
    *,
    pool: str | None = None,
    island: int | None = None,
) -> dict[str, str]:
    """The user's tags plus azcluster's own; ours win, so a user tag can never hide a set from the CLI."""
    tags = dict(extra or {})
    tags[TAG_CLUSTER] = cluster
    tags[TAG_ROLE] = role
    if pool is not None:
        tags[TAG_POOL] = pool
    if island is not None:
        tags[TAG_ISLAND] = str(island)
    return tags
