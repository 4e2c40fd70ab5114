"""What a machine's Slurm can do for MPI, as the machine records it: the contract between the node side
(the controller on the login node and every GPU node write SLURM_MPI_PATH once their Slurm runs) and
`azcluster status`, which reads the login node's in the Run Command that reads sinfo
(azcluster/ops/slurmstate.py says why the login node's answers for the cluster).

Why a fact file: `srun --mpi=pmix` and MPI libraries launched by srun need Slurm's PMIx plugin
(mpi_pmix / mpi_pmix_v<N>), which a Slurm build has only when it was built against PMIx. Microsoft's
packages are (PMIx 4.2.9, catalog/slurm.yaml); a build without it (Debian sid's Slurm 26.05 is one) makes
every `srun` fail under `MpiDefault=pmix` ("Invalid MPI type 'pmix'"). The node knows which plugins its
Slurm has; the person running `status` needs to be told, before their MPI job fails.

The file (JSON, one object):
    slurm        the node's Slurm version (`slurmd -V`), e.g. "25.11.5"
    plugins      the MPI plugin types its Slurm has (`srun --mpi=list`), e.g. ["none", "pmi2", "pmix"]
    pmix         true when one of them is a PMIx plugin
    mpi_default  what srun uses without --mpi on this node (slurm.conf MpiDefault as the node runs it)
    time         when it was written (UTC, ISO 8601)
    detail       optional: the node's own words (e.g. why it fell back to MpiDefault=none)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SLURM_MPI_PATH = "/var/lib/azcluster/slurm-mpi.json"


@dataclass(frozen=True)
class SlurmMpi:
    """One node's MPI facts (see the module docstring)."""

    slurm: str
    plugins: tuple[str, ...]
    pmix: bool
    mpi_default: str
    time: str = ""
    detail: str = ""

    def problem(self) -> str | None:
        """Why MPI jobs will fail on this node, in words a user acts on; None when PMIx is there."""
        if self.pmix:
            return None
        plugins = ", ".join(self.plugins) or "none listed"
        text = (
            f"Slurm {self.slurm or '(version unknown)'} has no PMIx plugin (MPI plugins: {plugins}): "
            "`srun --mpi=pmix` and MPI programs launched with srun will fail"
        )
        if self.mpi_default == "pmix":
            text += "; so does every plain srun (MpiDefault=pmix: \"Invalid MPI type 'pmix'\")"
        else:
            text += f"; plain srun runs (MpiDefault={self.mpi_default})"
        return text + (f"; {self.detail}" if self.detail else "")


def parse_slurm_mpi(text: str) -> SlurmMpi:
    """Parse SLURM_MPI_PATH's content; ValueError (saying what is wrong) when it is not that shape."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        plugins = data["plugins"]
        if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
            raise TypeError("'plugins' is not a list of names")
        if not isinstance(data["pmix"], bool):
            raise TypeError("'pmix' is not a boolean")
        return SlurmMpi(
            slurm=str(data.get("slurm", "")),
            plugins=tuple(plugins),
            pmix=data["pmix"],
            mpi_default=str(data.get("mpi_default", "")),
            time=str(data.get("time", "")),
            detail=str(data.get("detail", "")),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"not an azcluster Slurm MPI record: {err}") from None
