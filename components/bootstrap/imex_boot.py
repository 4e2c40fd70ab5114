"""What a Slurm cluster with NVLink domains (GB200/GB300 v6 pools, catalogue `rack_vms`) adds to its nodes:
the block claim and the IMEX prolog/epilog (scripts/azc-imex.sh; why and how: bootstrap/slurm.py).

- A GB node gets azc-imex.sh and node.env's AZC_IMEX=1, AZC_SLURM_RACK (VMs per NVLink domain) and
  AZC_NVL_CLAIM (azc-slurm-node.sh then claims its slot through it: a slot in its domain's block). The
  domain is read from the node's GPUs: every GPU's "Fabric" section of `nvidia-smi -q` (State, Status,
  CliqueId, ClusterUUID: NVML's nvmlGpuFabricInfo_t, docs.nvidia.com/deploy/nvml-api; the id
  "<ClusterUUID>.<CliqueId>" is the one NVIDIA's topograph forms, pkg/providers/baremetal) through
  azc-gb-health-lib.sh's parser, which the GB health checks share.
- IMEX: nvidia-imex and nvidia-imex-ctl come with the GB image's driver (NVIDIA IMEX guide, "Getting
  Started with IMEX"; the service reads /etc/nvidia-imex/nodes_config.cfg, one peer IP address a line,
  "Deployment Models"); the channel device is made from /proc/devices' major for
  nvidia-caps-imex-channels (IMEX guide, "IMEX Channels": channels are not created by default).
- Every other node of such a cluster gets only a two-line stand-in at the same path: Slurm runs the
  Prolog on every node of every job and fails the job where it is missing (24.11.5: "Prolog failure"
  on a node whose Prolog glob matched nothing), so GB-only logic stays in GB pools' custom data.

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

from ..catalog import GpuSize
from ..spec import ClusterSpec
from ..topology import cluster_rack_size
from .document import Piece, file_entry
from .slurm import IMEX_SCRIPT

IMEX_SCRIPTS = ("azc-imex.sh",)
STAND_IN = "#!/bin/sh\n# azcluster: Slurm's Prolog/Epilog; no NVLink domain in this pool.\nexit 0\n"


def imex_piece(spec: ClusterSpec, size: GpuSize) -> Piece | None:
    """The claim and IMEX prolog for a GB pool; the stand-in for other pools of a cluster with racks;
    None where the cluster has no racks (or no Slurm)."""
    rack = cluster_rack_size(spec)
    if not rack:
        return None
    if not size.rack_vms:
        return Piece("imex", files=(file_entry(IMEX_SCRIPT, STAND_IN, "0755"),))
    env = {"AZC_IMEX": 1, "AZC_SLURM_RACK": rack, "AZC_NVL_CLAIM": IMEX_SCRIPT}
    return Piece("imex", env=env, scripts=IMEX_SCRIPTS)
