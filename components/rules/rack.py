"""Rack-scale sizes (AZC130-AZC139): ND GB200 v6 and ND GB300 v6, whose unit is an NVL72 rack.

A GB200 or GB300 VM is a 4-GPU slice of an NVL72 rack of 18 VMs; the rack's 72 GPUs share one NVLink
domain through NVSwitch trays, and racks are joined by InfiniBand (Microsoft's size pages:
https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/nd-gb200-v6-series and
.../nd-gb300-v6-series, "18 VMs per rack", "up to 72 GPUs per domain through NVLINK"). azcluster treats the
rack as the unit: pools come in whole racks (AZC130), and the rules below say what Azure's rack-scale
placement needs that azcluster cannot do for the user yet (AZC131). The catalogue's `rack_vms` marks these
sizes. Ids AZC130-134 are this module's; AZC135-139 are the Slurm side's (rack_slurm.py: block topology,
IMEX).
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import catalog
from ..spec import ClusterSpec, PoolSpec
from .common import plural, pool_at
from .registry import Problem, rule

INTERCONNECT_GAP = (
    "pulumi-azure-native 3.x builds scale sets with Compute API 2024-11-01, which has no "
    "`highSpeedInterconnectPlacement` (Compute API 2025-04-01) nor `interconnectGroupProfile` (2026-03-01), "
    "and has no Microsoft.Compute/interconnectBlocks resource; it can create a Microsoft.Network "
    "InterconnectGroup (API 2025-07-01) but nothing can join a scale set to it"
)
"""What is missing for rack-scale placement (AZC131, README "GB200/GB300 racks", components/gpu_pool.py)."""


def rack_pools(spec: ClusterSpec) -> Iterator[tuple[int, PoolSpec, catalog.GpuSize, int]]:
    """(index, pool, size, rack_vms) of every pool whose size comes in racks (catalogue `rack_vms`)."""
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is not None and size.rack_vms:
            yield index, pool, size, size.rack_vms


def racks(pool: PoolSpec, rack_vms: int) -> tuple[int, int]:
    """(whole racks, VMs left over) of a pool."""
    return divmod(pool.nodes, rack_vms)


@rule("AZC130", "error", "gb-pool-not-whole-racks", "A GB200/GB300 pool is not whole NVL72 racks")
def gb_pool_not_whole_racks(spec: ClusterSpec) -> Iterator[Problem]:
    """An NVL72 rack is one NVLink domain of 18 VMs (72 GPUs). A pool that is not whole racks ends in a
    partial domain: its VMs share the rack with VMs that are not the cluster's (or stand alone), so
    multi-node NVLink jobs there see fewer GPUs than a rack has, Slurm's block topology gets a short block,
    and whole-rack power saving cannot stop or start that rack as one. Azure's own rack-scale placement
    (interconnect blocks) is sized in whole racks too (Compute API samples: `sku.capacity` 18 and 36 for
    Standard_ND128isr_GB300_v6). Allowed with the pool's `allow_partial_racks: true`, e.g. for a test with
    a few VMs. Source: the GB200/GB300 size pages (module docstring); catalogue `rack_vms`.
    """
    for index, pool, size, rack in rack_pools(spec):
        whole, left = racks(pool, rack)
        if pool.nodes == 0 or not left or pool.allow_partial_racks:
            continue
        down, up = whole * rack, (whole + 1) * rack
        choices = f"{down} or {up}" if down else f"{up}"
        yield (
            pool_at(index, "nodes"),
            f"pool {pool.name!r}: {pool.nodes} {size.name} VMs are {plural(whole, 'whole rack')} and "
            f"{left} VM(s) of another: an NVL72 rack is one NVLink domain of {rack} VMs ({rack * size.gpus} "
            "GPUs), so that last rack would be a partial domain (multi-node NVLink jobs there see "
            f"{left * size.gpus} GPUs, whole-rack power saving cannot treat it as one).",
            f"Set nodes to whole racks ({choices}), or set `allow_partial_racks: true` on the pool if a "
            "partial rack is what you want (e.g. a small test).",
        )


@rule(
    "AZC131",
    "warning",
    "gb-interconnect-group-manual",
    "azcluster cannot place a GB pool in an Azure interconnect group",
)
def gb_interconnect_group_manual(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure places VMs of a rack-scale size together on its high-bandwidth interconnect through
    interconnect groups (Microsoft.Network/interconnectGroups, API 2025-07-01: `subgroupProfile` {vmSize,
    size, scope VerticalConnect}, scope InfiniBand) and, on the compute side, the scale set's
    `highSpeedInterconnectPlacement` (None|Trunk, Compute API 2025-04-01), `interconnectGroupProfile`
    (Compute API 2026-03-01) or interconnect blocks (Microsoft.Compute/interconnectBlocks, `sku` {name,
    capacity}, `properties.interconnectGroup.id`; a VM joins one through `interconnectBlockProfile`).
    The pulumi-azure-native azcluster pins cannot express the compute side (INTERCONNECT_GAP), so the
    scale sets are plain ones: Azure still puts a GB VM in some NVL72 rack, but it does not promise that a
    pool's VMs fill whole racks together. Sources: learn.microsoft.com New-AzInterconnectGroup and `az
    interconnect-group` (interconnect extension); Compute REST samples
    VirtualMachineScaleSet_Create_WithHighSpeedInterconnectPlacement.json (2025-04-01) and
    VirtualMachine_Create_WithInterconnectBlock.json; the SDK in
    pulumi_azure_native/network/interconnect_group.py and compute/virtual_machine_scale_set.py.
    """
    for index, pool, size, rack in rack_pools(spec):
        if pool.nodes == 0:
            continue
        yield (
            pool_at(index, "size"),
            f"pool {pool.name!r} ({size.name}): azcluster cannot ask Azure to place its VMs in whole NVL72 "
            f"racks: {INTERCONNECT_GAP}. The scale sets are created without rack-scale placement; which rack "
            "each VM lands in is read from the hardware at boot (nvidia-smi ClusterUUID + CliqueId).",
            "If your subscription has access to interconnect groups, create one by hand (`az "
            "interconnect-group create --scope InfiniBand ...` with subgroup scope VerticalConnect, size "
            f"{rack}, vm size {size.name}) and place the pool's capacity with your Azure account team; "
            "`azcluster test` then shows which racks the nodes landed in. Suppress this once done.",
        )


@rule(
    "AZC132",
    "warning",
    "allow-partial-racks-unused",
    "allow_partial_racks is set on a size that does not come in racks",
)
def allow_partial_racks_unused(spec: ClusterSpec) -> Iterator[Problem]:
    """`allow_partial_racks` only means something for rack-scale sizes (catalogue `rack_vms`: GB200 and
    GB300 v6); on any other size it does nothing, which usually means the pool's size is not the one
    intended."""
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if pool.allow_partial_racks and size is not None and not size.rack_vms:
            yield (
                pool_at(index, "allow_partial_racks"),
                f"pool {pool.name!r}: allow_partial_racks has no effect on {size.name}, which does not come "
                "in NVL72 racks.",
                "Remove allow_partial_racks, or use a rack-scale size (Standard_ND128isr_NDR_GB200_v6, "
                "Standard_ND128isr_GB300_v6).",
            )


@rule("AZC133", "info", "gb-health-checks", "What the node health checks cover on GB200/GB300 nodes")
def gb_health_checks(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure's node health checks (AzNHC, Azure/azurehpc-health-checks) reached GB sizes late and only in
    part: the GB200 configuration (conf/nd128isr_ndr_gb200_v6.conf: 4 GPUs, NVLink status, NCCL
    all-reduce 432 GB/s, GPU-direct IB 360 Gb/s per port) arrives with PR 165, and the Arm64 container it
    needs (dockerfile/azure-nvrt-nhc-aarch64.dockerfile, CUDA 13, sm100 and sm103) with PR 164 (merged
    2026-08-15); no tagged release has either (the latest tag, v0.4.5 of 2025-08-18, predates both), and
    there is no GB300 configuration. So GB nodes run azcluster's own checks (components/bootstrap/gb_boot.py:
    NVLink fabric state and domain from `nvidia-smi -q`, IMEX, InfiniBand ports and rate, XIDs in the kernel
    log, a quick DCGM diagnostic) and, on GB200 only, AzNHC as well where the image's copy has both the
    configuration and the Arm64 container; elsewhere the AzNHC check says it was skipped and why.
    """
    from ..bootstrap import AZNHC_SIZES

    for index, pool, size, _ in rack_pools(spec):
        if pool.nodes == 0:
            continue
        aznhc = (
            "AzNHC too where the image's copy has conf/nd128isr_ndr_gb200_v6.conf and its Arm64 container "
            "(no tagged AzNHC release has them yet)"
            if size.name.lower() in AZNHC_SIZES
            else "AzNHC has no configuration for this size"
        )
        yield (
            pool_at(index, "size"),
            f"pool {pool.name!r} ({size.name}): node health = GPU count, InfiniBand ports at >= "
            f"{size.infiniband.health_gbps if size.infiniband else 0} Gb/s, NVLink fabric state and domain, "
            f"IMEX, XIDs, a quick DCGM diagnostic (azcluster's own GB checks); {aznhc}.",
            "Nothing to do; a failed check drains the node in Slurm and marks it unhealthy for Azure "
            "(`azcluster status` shows which check).",
        )


@rule(
    "AZC134",
    "warning",
    "gb-capacity-keeps-partial-racks",
    "A GB pool's capacity policy keeps islands that are not whole racks",
)
def gb_capacity_keeps_partial_racks(spec: ClusterSpec) -> Iterator[Problem]:
    """`capacity.min_nodes` / `min_fraction` keep an island Azure placed in part when it has at least
    that many nodes (components/capacity.py, ops/grow.py). On a rack-scale size a smallest island that is
    not whole racks lets a partial NVLink domain through from the start: the same loss AZC130 refuses for
    `nodes`. Said as a warning, since keeping some capacity can still beat none."""
    for index, pool, size, rack in rack_pools(spec):
        policy = pool.capacity
        if pool.nodes == 0 or (policy.min_nodes is None and policy.min_fraction is None):
            continue
        uneven = sorted({low for n in pool.island_sizes() if (low := policy.smallest_island(n)) % rack})
        if not uneven:
            continue
        field = "min_nodes" if policy.min_nodes is not None else "min_fraction"
        whole = max(rack, uneven[0] // rack * rack)
        yield (
            pool_at(index, f"capacity.{field}"),
            f"pool {pool.name!r} ({size.name}): capacity.{field} keeps an island of "
            f"{', '.join(map(str, uneven))} node(s), which is not whole NVL72 racks of {rack}: a partial "
            "NVLink domain from the start.",
            f"Set capacity.min_nodes to a multiple of {rack} (e.g. {whole}), or leave it out to keep whole "
            "islands only.",
        )
