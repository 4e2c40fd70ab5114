"""The Slurm side of rack-scale sizes (AZC135-AZC139): NVLink domains as Slurm blocks, IMEX per job.

A Slurm cluster with a GB200/GB300 pool (catalogue `rack_vms`) runs topology/block, one block per NVLink
domain, every island cut into blocks of a rack (components/bootstrap/slurm.py says why and what was seen on
the real daemons). These rules say where a spec would make that go wrong.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..spec import ClusterSpec
from ..topology import cluster_rack_size, pool_island_slots
from .common import at, pool_at
from .registry import Problem, rule


@rule(
    "AZC135",
    "warning",
    "rack-blocks-cross-islands",
    "Jobs larger than Slurm's largest block may be placed across InfiniBand islands",
)
def rack_blocks_cross_islands(spec: ClusterSpec) -> Iterator[Problem]:
    """topology/block (cluster-wide once a pool has racks) keeps a job inside one aggregated block only up
    to the largest `BlockSizes`; a larger job may be given nodes of several islands, which share no
    InfiniBand fabric (Slurm 24.11.5 placed a 3-node job on two islands when BlockSizes was the 2-node base
    block only). azcluster doubles BlockSizes while every island is a whole number of the larger block, so
    islands of different sizes (a small island of another pool) stop it at the rack.
    """
    from ..bootstrap.slurm import block_sizes

    rack = cluster_rack_size(spec)
    if not rack:
        return
    try:
        islands = [(p.name, i.count) for p in spec.pools for i in pool_island_slots(spec, p)]
        largest = block_sizes(spec)[-1]
    except ValueError:  # a pool name no host name can hold: the names rules say so
        return
    if len(islands) < 2 or largest >= max(count for _, count in islands):
        return
    yield (
        at("pools"),
        f"Slurm's largest block is {largest} nodes, smaller than the largest island "
        f"({max(count for _, count in islands)} slots): a job larger than {largest} nodes may be placed "
        f"across InfiniBand islands ({', '.join(f'{name}: {count}' for name, count in islands)} slots).",
        f"Give every pool the same island_max_nodes (a power of two of {rack}-VM racks, e.g. {rack * 4}), "
        "or constrain big jobs to one island (`sbatch -C <pool>-i<n>`).",
    )


@rule(
    "AZC136",
    "error",
    "elastic-island-not-whole-racks",
    "With elastic power, every island of a cluster with racks must be whole racks",
)
def elastic_island_not_whole_racks(spec: ClusterSpec) -> Iterator[Problem]:
    """With elastic power an island has exactly as many Slurm slots as VMs (components/topology.py), and
    topology/block needs every block to hold at least the base block (a rack): a shorter one stops
    slurmctld ("Block configuration (...) children count lower than bblock_node_cnt", 24.11.5).
    """
    rack = cluster_rack_size(spec)
    if not rack or not spec.elastic_enabled:
        return
    for index, pool in enumerate(spec.pools):
        short = [n for n in pool.island_sizes() if n % rack]
        if pool.nodes and short:
            yield (
                pool_at(index, "nodes"),
                f"pool {pool.name!r}: elastic power gives each island as many Slurm slots as VMs, and its "
                f"islands hold {', '.join(map(str, pool.island_sizes()))} VMs; Slurm's NVLink blocks are "
                f"{rack} slots, so slurmctld would refuse the shorter block.",
                f"Make every island of the pool whole {rack}-VM racks (nodes and island_max_nodes multiples "
                f"of {rack}), or turn elastic power off.",
            )
