"""Recording where azcluster moved an island, in the stack file, so the next program run builds it there.

The placement is part of the cluster's description (`pools[i].capacity.island_zones`, and
`capacity.island_stand_ins` for an island built on a stand-in size), not hidden state:
`plan`, a plain `pulumi up` and a reviewer of the stack file all see it. Written with ruamel's round-trip
loader and emitter, so comments, order and quoting elsewhere in the file stay as they were.
"""

from __future__ import annotations

from pathlib import Path

from azcluster.components.spec import CLUSTER_CONFIG_KEY

from .errors import EXIT_USAGE, AzclusterError


def record_island_zone(path: Path, pool: str, island: int, zone: str) -> None:
    """Set `pools[<pool>].capacity.island_zones["<island>"] = "<zone>"` in the stack file at `path`."""
    record_island_placement(path, pool, island, zone=zone)


def record_island_placement(
    path: Path, pool: str, island: int, *, zone: str | None = None, size: str | None = None
) -> None:
    """Record where island `island` of `pool` is built: `capacity.island_zones["<island>"] = zone` (when
    given) and `capacity.island_stand_ins["<island>"] = size` when `size` is a stand-in; `size` equal to the
    pool's own size removes the island's stand-in entry (the island is built as the pool's size again)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    document = yaml.load(path.read_text(encoding="utf-8"))
    try:
        pools = document["config"][CLUSTER_CONFIG_KEY]["pools"]
        entry = next(item for item in pools if item.get("name") == pool)
    except (KeyError, TypeError, StopIteration):
        raise AzclusterError(
            f"cannot record where island {pool}/{island} went: {path} has no pool {pool!r} under "
            f"config.{CLUSTER_CONFIG_KEY}.pools",
            "was the stack file changed while azcluster was running? Run `azcluster up` again",
            EXIT_USAGE,
        ) from None
    capacity = entry.setdefault("capacity", {})
    key = DoubleQuotedScalarString(str(island))
    if zone is not None:
        capacity.setdefault("island_zones", {})[key] = DoubleQuotedScalarString(zone)
    if size is not None:
        if str(size).lower() == str(entry.get("size", "")).lower():
            stand_ins = capacity.get("island_stand_ins") or {}
            stand_ins.pop(str(island), None)
            if "island_stand_ins" in capacity and not stand_ins:
                del capacity["island_stand_ins"]
        else:
            capacity.setdefault("island_stand_ins", {})[key] = DoubleQuotedScalarString(size)
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(document, out)
