"""Elastic GPU pools: idle nodes are deallocated and started again when work needs them.

Pure: no pulumi, no Azure SDK. This module says, from the spec alone, which islands are elastic, what the
login node's power programs are told (`render_config`), which Azure actions they may perform
(`ROLE_ACTIONS`), and which Slurm power-saving keys drive them (`slurm_power_save`). The programs
themselves are `bootstrap/scripts/azc-elastic.py` (standard library only; they run on the login node).

The unit: Slurm powers *nodes* down and up, and azcluster passes those nodes to Azure batched per
InfiniBand island, as one `deallocate`/`start` call on the island's scale set with their instance ids.
A started node rejoins its island's InfiniBand fabric because an island is one Uniform scale set with a
single placement group: Azure places every VM of such a set in that placement group, so a VM started
again lands on the same fabric as its running neighbours (learn.microsoft.com/azure/virtual-machines/
workloads/hpc/infiniband: "VMs in the same scale set or availability set share the InfiniBand fabric";
virtual-machine-scale-sets-placement-groups: a single-placement-group set keeps all VMs in one group).
Slurm's topology (one switch per island, no common root) keeps each job inside one island, so the nodes
resumed for a job all come from one scale set. Powering whole islands only would idle 8-100 GPUs-worth of
nodes to run a one-node job; powering single nodes without the island grouping would risk a job
spanning fabrics. Without a scheduler nothing knows which node a job will use, so the idle watcher works
on whole islands: it deallocates an island when all its GPUs stayed idle and `azcluster start` starts
the island as a whole (deallocating every VM of a pinned placement group and starting them together is
also what Azure advises against allocation failures).

GB pools (NVL72 racks, Slurm blocks of a rack each) are powered by the rack: when Slurm resumes some slots
of a block, the resume program asks Slurm to power up the rest of that block too (`scontrol update
State=POWER_UP`, so Slurm waits for them and resumes them through the same program: each slot's own VM,
the rack it was in); and the watch keeps every block that has a busy node out of suspension
(`scontrol update SuspendExcNodes=`, Slurm 23.02+; the kept-warm islands stay in the list), so Slurm
suspends a rack only once all of it has stayed idle. A value set that way lives only in the running
slurmctld (a reconfigure puts slurm.conf's back), so the watch compares with what slurmctld holds, not
with what it last sent. tests/components/test_elastic_racks_real.py runs all of this through slurmctld's
own power saving on 24.11 and 26.05.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from . import catalog
from .capacity import island_size
from .spec import ClusterSpec, PoolSpec
from .topology import cluster_rack_size, computer_name_prefix, island_key, pool_island_slots

BOOT_MINUTES_IB = 15
"""Rough minutes from `start` until an InfiniBand GPU node is usable: Azure starts the VM (several
minutes for ND sizes), the HPC image brings up the NVMe RAID, fabric manager and IB, and azc-prepare and
the first health check run (about 10-20 minutes; components/bootstrap HEALTH_GRACE_PERIOD_S). CycleCloud's
Slurm integration gives nodes 30 minutes (Azure/cyclecloud-slurm, attributes/default.rb resume_timeout
1800 s)."""
BOOT_MINUTES_OTHER = 8
"""The same for GPU sizes without InfiniBand (no fabric to bring up)."""

CONFIG_PATH = "/etc/azcluster/elastic.json"
STATE_DIR = "/var/lib/azcluster/elastic"
LOG_PATH = "/var/log/azcluster/elastic.log"
PROGRAM = "/usr/local/lib/azcluster/azc-elastic.py"
SLURM_PROGRAMS = {
    "SuspendProgram": ("/usr/local/lib/azcluster/azc-elastic-suspend", "suspend"),
    "ResumeProgram": ("/usr/local/lib/azcluster/azc-elastic-resume", "resume"),
    "ResumeFailProgram": ("/usr/local/lib/azcluster/azc-elastic-resume-fail", "resume-fail"),
}
"""slurmctld execs these paths with the host list as the only argument (a value with a space would be one
file name), so each is a two-line wrapper around `azc-elastic.py <command>`."""
ARM_API_VERSION = "2024-07-01"
"""Microsoft.Compute api-version of the calls the programs make (the version the fake's fixtures come
from: Azure/azure-rest-api-specs .../ComputeRP/stable/2024-07-01)."""

ROLE_ACTIONS: tuple[str, ...] = (
    "Microsoft.Compute/virtualMachineScaleSets/read",
    "Microsoft.Compute/virtualMachineScaleSets/instanceView/read",
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/instanceView/read",
    "Microsoft.Compute/virtualMachineScaleSets/start/action",
    "Microsoft.Compute/virtualMachineScaleSets/deallocate/action",
)
"""Exactly what the power programs do: read scale sets and their VMs (power states), start and
deallocate instances through the scale set (`POST .../virtualMachineScaleSets/{name}/start|deallocate`
with `instanceIds`). Action names from Azure's resource provider operations list
(learn.microsoft.com/azure/role-based-access-control/resource-provider-operations#microsoftcompute).
No write, delete, reimage or Run Command: a stolen token can only switch this cluster's nodes on and off."""
ROLE_NAME_PREFIX = "azcluster elastic power"


@dataclass(frozen=True)
class ElasticIsland:
    """One scale set as the power programs see it."""

    key: str
    """Island key, e.g. 'h100-i0' (hostfile and Slurm switch name)."""
    pool: str
    index: int
    scale_set: str
    nodes: int
    host_prefix: str
    """computerNamePrefix: a host name is this plus the base-36 instance id (6 characters)."""
    gpus_per_node: int
    usd_per_node_hour: float | None
    keep_warm: bool
    spot: bool
    rack: int = 0
    """VMs per NVLink domain when the island's Slurm slots come in rack blocks (GB pools in a Slurm
    cluster: components/bootstrap/slurm.py), else 0: the power programs start and stop such racks whole."""
    slot_width: int = 3
    """Digits of the island's Slurm slot names ('gb-i0-017'), to name the rest of a rack's slots."""


def pool_islands(pool: PoolSpec, size: catalog.GpuSize | None) -> list[int]:
    """Nodes per scale set: IB sizes split into islands, other sizes are one scale set."""
    if size is not None and not size.has_infiniband:
        return [pool.nodes]
    return pool.island_sizes()


def boot_minutes(size: catalog.GpuSize | None) -> int:
    return BOOT_MINUTES_OTHER if size is not None and not size.has_infiniband else BOOT_MINUTES_IB


def plan_islands(spec: ClusterSpec) -> list[ElasticIsland]:
    """Every scale set of the cluster with what the power programs need; `keep_warm` marks the first
    `elastic.keep_warm_islands` islands of each pool (never powered off)."""
    warm = spec.elastic.keep_warm_islands if spec.elastic is not None else 0
    islands = []
    for pool in spec.pools:
        size = catalog.find_size(pool.size)
        slots = pool_island_slots(spec, pool) if scheduler(spec) == "slurm" else []
        for index, nodes in enumerate(pool_islands(pool, size)):
            suffix = f"-ib{index}" if size is None or size.has_infiniband else ""
            built = island_size(pool, index) or size  # a stand-in island's GPUs and price are its own
            islands.append(
                ElasticIsland(
                    key=island_key(pool.name, index),
                    pool=pool.name,
                    index=index,
                    scale_set=f"{spec.name}-{pool.name}{suffix}",
                    nodes=nodes,
                    host_prefix=computer_name_prefix(spec.name, pool.name, index),
                    gpus_per_node=built.gpus if built else 0,
                    usd_per_node_hour=built.price.usd_per_hour if built and built.price else None,
                    keep_warm=index < warm,
                    spot=pool.spot,
                    rack=(size.rack_vms or 0) if size is not None and cluster_rack_size(spec) else 0,
                    slot_width=slots[min(index, len(slots) - 1)].width if slots else 3,
                )
            )
    return islands


def scheduler(spec: ClusterSpec) -> str:
    """'slurm' or 'none' (the spec's `scheduler`; specs from before the Slurm issue have none)."""
    return str(getattr(spec, "scheduler", None) or "none")


def render_config(spec: ClusterSpec, subscription_id: str, client_id: str) -> str:
    """/etc/azcluster/elastic.json: what the power programs on the login node act on."""
    if spec.elastic is None:
        raise ValueError("the spec has no `elastic:` section")
    elastic = spec.elastic
    config = {
        "cluster": spec.name,
        "scheduler": scheduler(spec),
        "subscription_id": subscription_id,
        "resource_group": spec.resource_group_name,
        "client_id": client_id,
        "api_version": ARM_API_VERSION,
        "idle_minutes": elastic.idle_minutes,
        "resume_timeout_minutes": elastic.resume_timeout_minutes,
        "islands": [asdict(island) for island in plan_islands(spec)],
        # slurm.conf's SuspendExcNodes: the watch adds the racks that are not wholly idle to it
        "suspend_exc_nodes": ",".join(warm_slots(spec)),
    }
    return json.dumps(config, indent=1, sort_keys=True) + "\n"


# --- Slurm power saving ----------------------------------------------------------------------------------


def slurm_power_save(spec: ClusterSpec) -> dict[str, str]:
    """The slurm.conf keys that hand idle and wanted nodes to the power programs (slurm.conf(5),
    slurm.schedmd.com/power_save.html). Empty when the cluster is not elastic.

    SuspendTime: idle seconds before SuspendProgram. ResumeTimeout: seconds a resumed node has to register
    before Slurm sets it DOWN and requeues its job. SuspendTimeout: seconds a deallocation is given
    before the node may be resumed again (deallocating an ND VM takes minutes). ResumeRate/SuspendRate 0:
    no rate limit, the programs batch per island. SuspendExcNodes: the islands kept warm.
    ResumeFailProgram: called for nodes that did not come back in time (logged, and their island backs
    off). BatchStartTimeout: a batch job's launch waits for its nodes to boot. The node records are the
    renderer's `State=CLOUD` slots, which power saving treats as powered down until resumed.
    """
    if not spec.elastic_enabled or spec.elastic is None:
        return {}
    elastic = spec.elastic
    keys = {
        **{key: path for key, (path, _command) in SLURM_PROGRAMS.items()},
        "SuspendTime": str(elastic.idle_minutes * 60),
        "ResumeTimeout": str(elastic.resume_timeout_minutes * 60),
        "SuspendTimeout": "600",
        "ResumeRate": "0",
        "SuspendRate": "0",
        "BatchStartTimeout": str(elastic.resume_timeout_minutes * 60),
    }
    warm = warm_slots(spec)
    if warm:
        keys["SuspendExcNodes"] = ",".join(warm)
    return keys


def slurm_wrapper(command: str) -> str:
    """The wrapper Slurm execs for one power command."""
    return f'#!/bin/sh\nexec /usr/bin/python3 {PROGRAM} {command} "$@"\n'


def warm_slots(spec: ClusterSpec) -> list[str]:
    """Slurm's node names (slot ranges, components/topology.py) of the islands kept warm."""
    if spec.elastic is None:
        return []
    out = []
    for pool in spec.pools:
        if not pool.nodes:
            continue
        for slots in pool_island_slots(spec, pool):
            if slots.island < spec.elastic.keep_warm_islands:
                out.append(slots.hostlist)
    return out


# --- cost ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ElasticCost:
    """GPU node cost per hour with every island on, and with every elastic island powered off."""

    all_on_usd_per_hour: float
    floor_usd_per_hour: float
    """What keeps running when the whole cluster is idle: the islands kept warm."""
    idle_minutes: int
    """How long idle nodes keep running before the policy powers them off."""

    def per_day(self, busy_hours: float) -> float:
        """GPU cost of a day busy `busy_hours` (one busy stretch; every node on), idle otherwise: the
        nodes keep running `idle_minutes` after the work ends, then only the floor runs."""
        busy = min(24.0, max(0.0, busy_hours))
        on = min(24.0, busy + self.idle_minutes / 60) if busy else 0.0
        return round(on * self.all_on_usd_per_hour + (24 - on) * self.floor_usd_per_hour, 2)


def elastic_cost(spec: ClusterSpec) -> ElasticCost:
    """GPU node cost per hour all on versus the floor (keep-warm islands only); unpriced sizes count 0.
    A cluster that is not elastic has its floor equal to all on."""
    total = floor = 0.0
    for island in plan_islands(spec):
        hourly = (island.usd_per_node_hour or 0.0) * island.nodes
        total += hourly
        if island.keep_warm or not spec.elastic_enabled:
            floor += hourly
    idle = spec.elastic.idle_minutes if spec.elastic is not None else 0
    return ElasticCost(round(total, 2), round(floor, 2), idle)
