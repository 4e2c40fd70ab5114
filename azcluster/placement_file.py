"""Recording where azcluster moved an island, in the stack file, so the next program run builds it there.

The placement is part of the cluster's description (`pools[i].capacity.island_zones`), not hidden state:
`plan`, a plain `pulumi up` and a reviewer of the stack file all see it. Written with ruamel's round-trip
loader and emitter, so comments, order and quoting elsewhere in the file stay as they were.
"""

from __future__ import annotations

from pathlib import Path

from azcluster.components.spec import CLUSTER_CONFIG_KEY

from .errors import EXIT_USAGE, AzclusterError


def record_island_zone(path: Path, pool: str, island: int, zone: str) -> None:
    """Set `pools[<pool>].capacity.island_zones["<island>"] = "<zone>"` in the stack file at `path`."""
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
    zones = capacity.setdefault("island_zones", {})
    zones[DoubleQuotedScalarString(str(island))] = DoubleQuotedScalarString(zone)
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(document, out)
