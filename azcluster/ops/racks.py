"""The racks of a cluster's GB pools (NVL72: one NVLink domain per rack) as `status` shows them: per Slurm
block, whether its nodes are up, partly up, starting or powered off.

A GB pool's Slurm slots come in blocks of a rack (components/bootstrap/slurm.py): a node claims a slot in
the block of its own NVLink domain, so a block is a rack as the hardware says, whatever the VMs are called.
Read from Slurm's view (`sinfo`, slurmstate.py): a slot no node holds (reason `azc-slot: free`, or not
listed) is not counted; a powered-off slot (`~`) is a deallocated VM (elastic power), `#` one that Slurm is
powering up; a node Slurm can run jobs on is up; anything else (drained, down, not responding) is down.
"""

from __future__ import annotations

from azcluster.components import catalog
from azcluster.components.spec import ClusterSpec
from azcluster.components.topology import pool_island_slots, rack_blocks

from .model import RackState, SlurmNode, SlurmView

FREE_SLOT = "azc-slot: free"


def rack_states(spec: ClusterSpec, view: SlurmView) -> list[RackState]:
    """One RackState per block of a GB pool that any node holds, pool by pool, island by island."""
    nodes = {node.name: node for node in view.nodes}
    racks = []
    for pool in spec.pools:
        size = catalog.find_size(pool.size)
        if size is None or not size.rack_vms:
            continue
        for island in pool_island_slots(spec, pool):
            for block in rack_blocks(island, size.rack_vms):
                rack = RackState(pool.name, island.island, block.name, block.count)
                for index in range(block.first, block.first + block.count):
                    _count(rack, nodes.get(island.name(index)))
                if rack.held:
                    racks.append(rack)
    return racks


def _count(rack: RackState, node: SlurmNode | None) -> None:
    """Add one slot's node to its rack's tally (a slot no node holds is not counted)."""
    if node is None or (node.reason or "").startswith(FREE_SLOT):
        return
    if "~" in node.state:
        rack.off += 1
    elif "#" in node.state:
        rack.starting += 1
    elif node.usable:
        rack.up += 1
    else:
        rack.down += 1
