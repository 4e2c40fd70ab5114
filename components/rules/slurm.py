"""Slurm (AZC070-AZC075; `scheduler: slurm`): the controller, partitions, reserved cores, containers and
the packages each node installs."""

from __future__ import annotations

from collections.abc import Iterator

from .. import catalog
from ..spec import ClusterSpec
from .common import at, did_you_mean, pool_at
from .registry import Problem, rule


def _slurm(spec: ClusterSpec) -> bool:
    return spec.scheduler == "slurm"


@rule("AZC070", "error", "slurm-needs-controller", "Slurm needs the login node, where slurmctld runs")
def slurm_needs_controller(spec: ClusterSpec) -> Iterator[Problem]:
    """slurmctld runs on the login node, and every node fetches its configuration from it (configless,
    https://slurm.schedmd.com/configless_slurm.html). Without a login node the nodes would boot and wait
    for a controller that never comes.
    """
    if _slurm(spec) and not spec.login.enabled:
        yield (
            at("login.enabled"),
            "scheduler is slurm but the login node, which runs slurmctld, is disabled.",
            "Enable the login node (`login.enabled: true`) or set `scheduler: none` for a cluster without "
            "a scheduler.",
        )


@rule("AZC071", "error", "slurm-default-partition-unknown", "The default partition names no pool")
def slurm_default_partition_unknown(spec: ClusterSpec) -> Iterator[Problem]:
    """Every pool is a partition of the same name; slurmctld refuses a Default partition that does not
    exist, so `slurm.default_partition` must name a pool. Source: slurm.conf(5), PartitionName / Default.
    """
    wanted = spec.slurm.default_partition
    names = [pool.name for pool in spec.pools]
    if _slurm(spec) and wanted is not None and wanted not in names:
        yield (
            at("slurm.default_partition"),
            f"default_partition {wanted!r} is not a pool; the partitions are: {', '.join(names) or 'none'}.",
            f"{did_you_mean(wanted, names)}Name one of the pools, or leave it out to use the first pool.",
        )


@rule("AZC072", "warning", "slurm-without-pools", "A Slurm cluster with no pool has no partition")
def slurm_without_pools(spec: ClusterSpec) -> Iterator[Problem]:
    """Partitions follow pools: with no pool, slurmctld starts with no partition and every `sbatch` is
    refused ("invalid partition specified").
    """
    if _slurm(spec) and not spec.pools:
        yield (
            at("pools"),
            "scheduler is slurm but there are no pools, so Slurm has no partition to run jobs in.",
            "Add a pool, or set `scheduler: none`.",
        )


@rule("AZC073", "error", "slurm-reserved-cores-too-many", "Reserved cores leave a pool no cores for jobs")
def slurm_reserved_cores_too_many(spec: ClusterSpec) -> Iterator[Problem]:
    """`slurm.reserved_cores` becomes CoreSpecCount on every node record; slurmctld rejects a node whose
    specialised cores are all its cores. Source: slurm.conf(5), CoreSpecCount.
    """
    reserved = spec.slurm.reserved_cores
    if not (_slurm(spec) and reserved):
        return
    for pool in spec.pools:
        size = catalog.find_size(pool.size)
        if size is not None and reserved >= size.vcpus:
            yield (
                at("slurm.reserved_cores"),
                f"reserved_cores {reserved} leaves pool {pool.name!r} ({size.name}, {size.vcpus} vCPUs) "
                "no cores for jobs.",
                "Reserve fewer cores (2 is plenty for system daemons).",
            )


@rule("AZC074", "info", "slurm-containers-nvidia-only", "AMD nodes get Docker, not Pyxis and Enroot")
def slurm_containers_nvidia_only(spec: ClusterSpec) -> Iterator[Problem]:
    """Pyxis (NVIDIA's Slurm plugin for `srun --container-image`) runs containers through Enroot, whose
    GPU support is NVIDIA's container toolkit; on AMD (ROCm) nodes azcluster leaves them out, so
    `--container-image` jobs there fail. What those nodes have instead is the image's: Azure's ROCm HPC
    images install and enable Docker (moby-engine) and no Apptainer/Singularity (Azure/azhpc-images
    distros/ubuntu22.04/install.sh and distros/ubuntu24.04/install.sh, the `GPU = AMD` branch), and ROCm
    containers reach the GPUs through /dev/kfd and /dev/dri (AMD's ROCm documentation, "Running ROCm
    Docker containers"). Sources: https://github.com/NVIDIA/pyxis, https://github.com/NVIDIA/enroot
    (GPU support via libnvidia-container), https://github.com/Azure/azhpc-images.
    """
    if not (_slurm(spec) and spec.slurm.containers):
        return
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is not None and size.gpu_vendor == "amd":
            yield (
                pool_at(index, "size"),
                f"pool {pool.name!r} ({size.name}) has AMD GPUs: Pyxis and Enroot are not installed there, "
                "so `srun --container-image` does not work in that partition. Its nodes get Docker instead "
                "(Azure's ROCm HPC image installs and enables it; it has no Apptainer or Singularity).",
                "Run containers inside the job with `docker run --device=/dev/kfd --device=/dev/dri "
                "--group-add video IMAGE` (Docker's containers run outside the job's cgroup: pass on the "
                "GPUs Slurm gave the job with -e ROCR_VISIBLE_DEVICES), or suppress this finding.",
            )


@rule("AZC075", "error", "slurm-no-packages-for-image", "No Slurm packages for the pool's image and CPU")
def slurm_no_packages_for_image(spec: ClusterSpec) -> Iterator[Problem]:
    """Nodes install Slurm from Microsoft's packages, which exist per Ubuntu release and CPU architecture:
    Arm64 (GB200) builds only for Ubuntu 24.04 ("Slurm is not supported on arm64 architecture for Ubuntu
    versions < 24.04", Azure/cyclecloud-slurm azure-slurm-install/ubuntu.sh; components/catalog/slurm.yaml).
    A node without a package never runs slurmd and never joins.
    """
    if not _slurm(spec):
        return
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is None:
            continue
        image = pool.image or size.default_image
        source = catalog.slurm_image(image)
        arch = "arm64" if size.architecture == "Arm64" else "amd64"
        if source is not None and arch not in source.architectures:
            yield (
                pool_at(index, "image"),
                f"pool {pool.name!r} ({size.name}, {arch}) uses {image}, Ubuntu {source.ubuntu}: Microsoft "
                f"publishes no {arch} Slurm packages for it, so its nodes could not join Slurm.",
                "Use microsoft-dsvm:ubuntu-hpc:2404:latest (Ubuntu 24.04 has Arm64 packages), or set "
                "`scheduler: none`.",
            )
