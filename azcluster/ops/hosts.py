"""`hosts`: one hostfile per InfiniBand island, the running nodes' private IPs in instance order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azcluster.components import catalog
from azcluster.components.spec import ClusterSpec

from ..errors import EXIT_USAGE, AzclusterError
from .cluster import find_scale_sets, require_found
from .model import Node, ScaleSet
from .nodes import read_island, started_island
from .parallel import parallel

if TYPE_CHECKING:  # pragma: no cover
    from ..azure import AzureContext


@dataclass
class Hostfile:
    pool: str
    island: int
    scale_set: str
    slots: int
    hosts: list[Node]
    excluded: list[Node]

    def text(self, fmt: str = "plain") -> str:
        lines = []
        for node in self.hosts:
            lines.append(f"{node.private_ip} slots={self.slots}" if fmt == "mpi" else str(node.private_ip))
        return "\n".join(lines) + ("\n" if lines else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "scale_set": self.scale_set,
            "slots": self.slots,
            "hosts": [{"name": n.computer_name or n.name, "private_ip": n.private_ip} for n in self.hosts],
            "excluded": [
                {"name": n.computer_name or n.name, "power_state": n.power_state, "private_ip": n.private_ip}
                for n in self.excluded
            ],
        }


@dataclass(frozen=True)
class Known:
    """What a command that ran first already learnt, so the hostfiles need not ask again: the scale sets
    it listed, and those it has just started whole (every node running: only their IPs are read)."""

    sets: list[ScaleSet]
    started: frozenset[str] = frozenset()


def hostfiles(
    spec: ClusterSpec,
    ctx: AzureContext,
    stack: str,
    *,
    island: int | None = None,
    pool: str | None = None,
    client: Any = None,
    known: Known | None = None,
) -> list[Hostfile]:
    """One hostfile per InfiniBand island: the running nodes' private IPs, in instance order.

    `client`: the command's Compute client when it has one (so `hosts --install` signs in once).
    `known`: what `start` already knows (the scale sets, those it started), so no node is read twice.
    """
    from ..azure import azure_errors, compute_client

    client = client or compute_client(ctx)
    if known is not None:
        sets = known.sets
    else:
        with azure_errors(ctx, f"listing the scale sets of {spec.name} in {spec.resource_group_name}"):
            sets = find_scale_sets(client, spec)
    require_found(sets, spec, stack)
    chosen = [s for s in sets if (pool is None or s.pool == pool) and (island is None or s.island == island)]
    if not chosen:
        have = ", ".join(f"{s.pool}/{s.island}" for s in sets)
        wanted = "/".join(str(x) for x in (pool, island) if x is not None)
        raise AzclusterError(
            f"no island {wanted} in cluster {spec.name}", f"islands (pool/index): {have}", EXIT_USAGE
        )

    def read(found: ScaleSet) -> Hostfile:
        with azure_errors(ctx, f"reading the nodes of scale set {found.name}"):
            if known is not None and found.name in known.started:
                data = started_island(client, ctx, spec, found)
            else:
                data = read_island(client, ctx, spec, found)
        gpu = catalog.find_size(data.size)
        running = [n for n in data.nodes if n.power_state == "running" and n.private_ip]
        others = [n for n in data.nodes if n.power_state != "running" or not n.private_ip]
        return Hostfile(found.pool, found.island, found.name, gpu.gpus if gpu else 1, running, others)

    return parallel(read, chosen)
