"""Tags (AZC049-AZC052): how many, and names and values Azure accepts on every resource."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..spec import ClusterSpec
from .common import at, preview
from .registry import Problem, rule

TAGS_PER_PRIVATE_DNS_ZONE_MAX = 15
TAG_NAME_MAX = 512
TAG_NAME_MAX_STORAGE_ACCOUNT = 128
TAG_VALUE_MAX = 256
TAG_NAME_FORBIDDEN = re.compile(r"[<>%&\\?/\x00-\x1f\x7f]")
AZCLUSTER_TAG_PREFIX = "azcluster-"
AZCLUSTER_TAGS_EVERYWHERE = ("azcluster-cluster", "azcluster-role")
"""Tags components/tags.py `cluster_tags` adds to every resource (scale sets also get pool and island)."""


@rule("AZC049", "error", "too-many-tags", "More tags than the cluster's private DNS zones hold")
def too_many_tags(spec: ClusterSpec) -> Iterator[Problem]:
    """Every resource azcluster builds carries the cluster's tags plus azcluster-cluster and azcluster-role,
    including the private DNS zones (the cluster's own zone and privatelink.blob, components/network.py)
    and their virtual network links, which hold only 15 tags (other resources hold 50).

    Source: https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations
    """
    names = {name.lower() for name in spec.tags} | set(AZCLUSTER_TAGS_EVERYWHERE)
    if len(names) > TAGS_PER_PRIVATE_DNS_ZONE_MAX:
        room = TAGS_PER_PRIVATE_DNS_ZONE_MAX - len(AZCLUSTER_TAGS_EVERYWHERE)
        yield (
            at("tags"),
            f"{len(spec.tags)} tags make {len(names)} with azcluster's own; Azure private DNS zones hold "
            f"{TAGS_PER_PRIVATE_DNS_ZONE_MAX}.",
            f"Keep at most {room} tags; several values can share one tag as a JSON string.",
        )


@rule("AZC050", "error", "tag-name-invalid", "A tag name Azure refuses")
def tag_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """Tag names are 1-512 characters (128 on storage accounts) without < > % & \\ ? / or control
    characters, and are case-insensitive: two names differing only in case collide.

    Source: https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations
    """
    limit = TAG_NAME_MAX_STORAGE_ACCOUNT if spec.storage.blob.enabled else TAG_NAME_MAX
    seen: dict[str, str] = {}
    for name in spec.tags:
        if not name.strip():
            problem = "is empty"
        elif TAG_NAME_FORBIDDEN.search(name):
            problem = "contains one of < > % & \\ ? / or a control character"
        elif len(name) > limit:
            where = " (the blob data account allows 128)" if limit == TAG_NAME_MAX_STORAGE_ACCOUNT else ""
            problem = f"has {len(name)} characters, more than {limit}{where}"
        elif name.lower() in seen:
            problem = f"differs from tag {seen[name.lower()]!r} only in case (Azure treats them as one)"
        else:
            problem = None
        seen.setdefault(name.lower(), name)
        if problem:
            yield (at("tags"), f"tag name {preview(name, 40)!r} {problem}.", "Rename the tag.")


@rule("AZC051", "error", "tag-value-too-long", "A tag value is longer than 256 characters")
def tag_value_too_long(spec: ClusterSpec) -> Iterator[Problem]:
    """Tag values are at most 256 characters. Source: as AZC049."""
    for name, value in spec.tags.items():
        if len(value) > TAG_VALUE_MAX:
            yield (
                at("tags"),
                f"the value of tag {preview(name, 40)!r} has {len(value)} characters; Azure allows "
                f"{TAG_VALUE_MAX}.",
                "Shorten the value, or store a reference (a URL or id) instead of the data.",
            )


@rule(
    "AZC052",
    "warning",
    "tag-overrides-azcluster-tag",
    "A tag uses a name azcluster keeps for itself",
)
def tag_overrides_azcluster_tag(spec: ClusterSpec) -> Iterator[Problem]:
    """`azcluster status/stop/start` find resources by azcluster-* tags; azcluster's own values win, so a
    user tag of that name is silently replaced (components/tags.py).
    """
    for name in spec.tags:
        if name.lower().startswith(AZCLUSTER_TAG_PREFIX):
            yield (
                at("tags"),
                f"tag {preview(name, 40)!r} uses the azcluster- prefix azcluster keeps for its own tags; "
                "its value would be replaced or confuse the CLI.",
                "Rename the tag (any name not starting with azcluster-).",
            )
