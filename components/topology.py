"""Which nodes share an InfiniBand fabric, and what they are called: host names, island keys, hostfiles and
the Slurm node slots of each island.

These names are the contract between the scale sets (computerNamePrefix), the nodes' first boot (node.env,
Slurm slots), the login node (hostfiles), the power programs (components/elastic.py) and the runtime that
reads a built cluster back (azcluster/ops). They sit at the bottom of components, below the bootstrap and
elastic modules that both use them, so neither has to import the other for a name.

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .catalog import GpuSize, find_size
from .spec import ClusterSpec, PoolSpec

# computerNamePrefix on Linux: at most 58 characters (64-character host name minus the 6-character
# base-36 instance suffix Azure appends; terraform-provider-azurerm ValidateLinuxComputerNamePrefix).
# One less here, so every host name (prefix + 6) is a valid 63-character DNS label.
COMPUTER_NAME_PREFIX_MAX = 57


@dataclass(frozen=True)
class ComputerName:
    """A node host name split into the parts `computer_name_prefix` put there."""

    cluster: str
    pool: str
    island: int
    instance: str

    @property
    def island_key(self) -> str:
        return island_key(self.pool, self.island)


_COMPUTER_NAME = re.compile(
    r"^(?P<cluster>[a-z0-9-]+?)-(?P<pool>[a-z0-9]+)-i(?P<island>\d+)-(?P<instance>[0-9a-z]{6})$",
    re.IGNORECASE,
)


def _pool_label(pool: str) -> str:
    label = re.sub(r"[^a-z0-9]", "", pool.lower())
    if not label:
        raise ValueError(f"pool name {pool!r} has no letters or digits to put in host names")
    return label


def island_key(pool: str, island_index: int) -> str:
    """The name of one IB island (one scale set) of a pool, e.g. 'h100-i0': hostfile names use it."""
    if island_index < 0:
        raise ValueError(f"island index must be >= 0, got {island_index}")
    return f"{_pool_label(pool)}-i{island_index}"


def computer_name_prefix(cluster: str, pool: str, island_index: int) -> str:
    """computerNamePrefix of one island's scale set: '<cluster>-<pool>-i<island>-'.

    Azure appends a 6-character base-36 instance number, so hosts read e.g. 'llm-h100-i0-00000a' and
    say which pool and IB island (scale set) they belong to. Lower-case letters, digits and hyphens;
    the cluster part is shortened when needed to keep the prefix within COMPUTER_NAME_PREFIX_MAX.
    """
    suffix = f"-{island_key(pool, island_index)}-"
    room = COMPUTER_NAME_PREFIX_MAX - len(suffix)
    if room < 1:
        raise ValueError(
            f"pool name {pool!r} is too long for a host name prefix "
            f"(at most {COMPUTER_NAME_PREFIX_MAX - 5} characters with the island number)"
        )
    head = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", cluster.lower())).strip("-") or "azc"
    head = head[:room].rstrip("-") or "azc"
    return head + suffix


def parse_computer_name(hostname: str) -> ComputerName | None:
    """Split a node host name made from `computer_name_prefix`; None for other names (e.g. login)."""
    match = _COMPUTER_NAME.match(hostname.strip().split(".", 1)[0])
    if match is None:
        return None
    return ComputerName(
        cluster=match["cluster"].lower(),
        pool=match["pool"].lower(),
        island=int(match["island"]),
        instance=match["instance"],
    )


def group_by_island(hostnames: Iterable[str]) -> dict[str, list[str]]:
    """Host names by island key ('h100-i0'); names not made by `computer_name_prefix` are left out."""
    groups: dict[str, list[str]] = {}
    for name in hostnames:
        parsed = parse_computer_name(name)
        if parsed is not None:
            groups.setdefault(parsed.island_key, []).append(name.strip())
    return groups


def _host_order(name: str) -> tuple[Any, ...]:
    """Node names in instance order (the suffix is base 36); other names in natural order."""
    parsed = parse_computer_name(name)
    if parsed is not None:
        return (0, name[: -len(parsed.instance)].lower(), int(parsed.instance, 36), "")
    return (1, "", 0, [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)])


def hostfile(nodes_by_island: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """One MPI/NCCL hostfile text per island: host names, one per line, sorted, no duplicates.

    Jobs that must stay on one InfiniBand fabric take the hostfile of one island; a job spread over
    two islands falls back to Ethernet between them.
    """
    files = {}
    for key, names in nodes_by_island.items():
        hosts = sorted({name.strip() for name in names if name.strip()}, key=_host_order)
        files[key] = "".join(f"{host}\n" for host in hosts)
    return files


# --- Slurm node slots -------------------------------------------------------------------------------------
# Why slots (and not Slurm's dynamic nodes): components/bootstrap/slurm.py, which renders them into
# slurm.conf and topology.conf. They live here because the power programs (elastic.py) name them too.


@dataclass(frozen=True)
class IslandSlots:
    """The node records (slots) of one island: names `<key>-<index>` for index in 0..count-1."""

    pool: str
    island: int
    key: str
    count: int
    width: int

    def name(self, index: int) -> str:
        return f"{self.key}-{index:0{self.width}d}"

    @property
    def hostlist(self) -> str:
        """All slots as one Slurm hostlist expression, e.g. 'h100-i0-[000-099]'."""
        if self.count == 1:
            return self.name(0)
        return f"{self.key}-[{0:0{self.width}d}-{self.count - 1:0{self.width}d}]"


def island_slots(
    pool: PoolSpec, size: GpuSize | None, elastic: bool = False, rack: int | None = None
) -> list[IslandSlots]:
    """One slot range per island of the pool.

    InfiniBand islands hold at most `island_max_nodes` VMs (one placement group), so that many slots cover
    every node the island can ever have, replacements included (a replaced node's slot is reaped).
    A pool without InfiniBand is one scale set: as many slots as nodes, at least `island_max_nodes`.
    elastic: the cluster powers nodes on and off (spec.elastic_enabled): as many slots as the island has
    VMs, since Slurm resumes any slot it knows and only a VM can answer (the name width stays that of
    the island's maximum, so names do not change when a pool grows).
    rack: the cluster's NVLink block size (`cluster_rack_size`): where set, the island's slots are whole
    blocks of that many, a power of two of them (`rack_slot_count`), so each block is one NVLink domain
    and Slurm's aggregated blocks never reach past the island (components/bootstrap/slurm.py).
    """
    if size is not None and not size.has_infiniband:
        islands, most = [pool.nodes], rack_slot_count(max(pool.nodes, pool.island_max_nodes), rack)
    else:
        islands, most = pool.island_sizes(), rack_slot_count(pool.island_max_nodes, rack)
    width = max(3, len(str(most - 1)))
    return [
        IslandSlots(pool.name, index, island_key(pool.name, index), max(nodes, 1) if elastic else most, width)
        for index, nodes in enumerate(islands)
    ]


# --- NVLink domains as Slurm blocks -----------------------------------------------------------------------
# Why blocks of slots, and how a node picks its block from its own fabric: components/bootstrap/slurm.py.


def rack_slot_count(count: int, rack: int | None) -> int:
    """`count` slots rounded up to whole blocks of `rack`, a power of two of them (unchanged without)."""
    if not rack:
        return count
    blocks = 1
    while blocks * rack < count:
        blocks *= 2
    return blocks * rack


@dataclass(frozen=True)
class RackBlock:
    """One Slurm block: `count` slots of an island from `first`, held by the nodes of one NVLink domain."""

    island: IslandSlots
    index: int
    first: int
    count: int

    @property
    def name(self) -> str:
        """e.g. 'gb-i0-r1': the island's second block."""
        return f"{self.island.key}-r{self.index}"

    @property
    def hostlist(self) -> str:
        last = self.first + self.count - 1
        if self.count == 1:
            return self.island.name(self.first)
        width = self.island.width
        return f"{self.island.key}-[{self.first:0{width}d}-{last:0{width}d}]"


def rack_blocks(island: IslandSlots, rack: int) -> list[RackBlock]:
    """The island's slots cut into blocks of `rack` (the last one shorter when the island is not whole
    blocks, which only an elastic island can be)."""
    return [
        RackBlock(island, index, first, min(rack, island.count - first))
        for index, first in enumerate(range(0, island.count, rack))
    ]


def cluster_rack_size(spec: ClusterSpec) -> int | None:
    """The VMs of one NVLink domain (catalogue `rack_vms`, 18 for GB200 and GB300 v6) when a Slurm cluster
    has a pool of such a size, else None. Slurm's topology/block is cluster-wide, so every island of such a
    cluster is cut into blocks of this size (bootstrap/slurm.py)."""
    if spec.scheduler != "slurm":
        return None
    sizes = [pool.rack_vms for pool in spec.pools if pool.rack_vms]
    return min(sizes) if sizes else None


def pool_island_slots(spec: ClusterSpec, pool: PoolSpec) -> list[IslandSlots]:
    """island_slots of a pool of this cluster: elastic when its power is, in blocks where it has racks."""
    return island_slots(pool, find_size(pool.size), spec.elastic_enabled, cluster_rack_size(spec))
