"""What rules of several domains share: YAML paths into the stack file, message helpers, id patterns."""

from __future__ import annotations

from collections.abc import Iterable

from .. import catalog
from ..spec import CLUSTER_CONFIG_KEY, LOCATION_CONFIG_KEY, ClusterSpec

LOCATION_PATH = LOCATION_CONFIG_KEY

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
RESOURCE_GROUP = r"[-\w.()]{0,89}[-\w()]"
"""Regex pieces of Azure resource ids: a subscription or object GUID, a resource group name."""


def at(path: str = "") -> str:
    """`azcluster:cluster.<path>`: where a finding points in the stack file's `config:`."""
    return f"{CLUSTER_CONFIG_KEY}.{path}" if path else CLUSTER_CONFIG_KEY


def pool_at(index: int, field: str = "") -> str:
    """`azcluster:cluster.pools[<index>].<field>`."""
    return at(f"pools[{index}].{field}" if field else f"pools[{index}]")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """'Did you mean X? ' for the closest choices, or '' when none is close."""
    matches = catalog.closest(name, list(choices))
    return f"Did you mean {' or '.join(matches)}? " if matches else ""


def preview(text: str, width: int = 24) -> str:
    """User text on one line, cut at `width` characters: long values stay readable in a message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width] + "..."


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def lustre_enabled(spec: ClusterSpec) -> bool:
    return spec.storage.lustre is not None and spec.storage.lustre.enabled
