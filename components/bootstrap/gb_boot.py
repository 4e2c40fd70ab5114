"""What only GB200/GB300 nodes (sizes that come in NVL72 racks, catalogue `rack_vms`) boot with.

An NVL72 rack's node needs checks no other size does, and Azure's node health checks cover them only in
part (AzNHC has a GB200 configuration only in copies newer than its last tag, and none for GB300: rule
AZC133). scripts/azc-gb-health-lib.sh, sourced by azc-health.sh so the verdict feeds the same health
endpoint and Slurm drain, adds:

- nvlink_fabric: every GPU's "Fabric" section of `nvidia-smi -q` says State Completed, Status Success
  (and Health/Bandwidth Full where reported), and all GPUs name one NVLink domain, ClusterUUID +
  CliqueId, written to /var/lib/azcluster/nvlink-domain as "<ClusterUUID>.<CliqueId>" (the id NVIDIA's
  topograph forms, pkg/providers/baremetal/mnnvl.go). Format: NVIDIA's nvidia-smi documentation (the
  Fabric block, driver R550+ on NVLink-switch systems).
- imex: while a job holds IMEX (/etc/nvidia-imex/nodes_config.cfg lists peers: the Slurm prolog writes
  it per job) the local daemon must be READY (`nvidia-imex-ctl -q`); the domain's "Domain State:
  UP|DEGRADED|DOWN" of `nvidia-imex-ctl -N` is reported (NVIDIA IMEX guide; the AWS PCS user guide's
  "Validate the IMEX setup" shows the output). No peers: skipped, nothing to check.
- xid: this boot's kernel log (`journalctl -k -b 0`) has none of the GPU XIDs after which the GPU must be
  reset or replaced: AzNHC's list (customTests/azure_gpu_xid.nhc), NVIDIA's XID catalogue
  (docs.nvidia.com/deploy/xid-errors); lines read "NVRM: Xid (PCI:0008:01:00): 79, pid=..., GPU has
  fallen off the bus.".
- dcgm: `dcgmi diag -r 1` (DCGM's quick deployment checks: seconds, fits a boot check; levels 2-4 run
  minutes to hours and need idle GPUs) once per boot, its verdict repeated until the next boot like
  AzNHC's; a test reading "Fail" fails the node, naming it and DCGM's Error line (table format: NVIDIA
  DCGM user guide, "DCGM Diagnostics"). A host engine that does not answer is reported, skipped.

The GPU count and InfiniBand ports and rate are azc-health.sh's own checks (GB300 at its catalogue
`health_floor_gbps`). They go only into GB pools' cloud-config: every other pool's custom data stays as it
was. Budget: GB-only pieces at most ~8 KB of encoded custom data together (this one: 3.1 KB on GB300;
`azcluster plan STACK --show-boot DIR` shows each role's file).

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

from ..catalog import GpuSize
from .document import Piece

GB_HEALTH_SCRIPTS = ("azc-gb-health-lib.sh",)


def is_rack_size(size: GpuSize) -> bool:
    """GB200 v6 and GB300 v6: a VM is a slice of an NVL72 rack (catalogue `rack_vms`)."""
    return bool(size.rack_vms)


def gb_health_piece(size: GpuSize) -> Piece | None:
    """The GB checks for a rack-scale size; None for every other size."""
    if not is_rack_size(size):
        return None
    # AZC_ARCH: azc-health.sh runs AzNHC on Arm64 only where the image's copy has its Arm64 container.
    return Piece("gb-health", env={"AZC_GB": 1, "AZC_ARCH": size.architecture}, scripts=GB_HEALTH_SCRIPTS)
