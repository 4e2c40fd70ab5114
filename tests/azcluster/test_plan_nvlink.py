"""`azcluster plan` of GB200 and GB300 Slurm stacks (issue 18): whole racks, the Arm64 image, Slurm's block
topology (one block per NVLink domain, BlockSizes within the island), the IMEX Prolog/Epilog, the block claim
only in GB pools' custom data, and AZC057 quiet because IMEX is configured (per job). Planned through the
real CLI, offline; the cloud-configs read back from `--show-boot`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from azcluster.components.bootstrap.imex_boot import STAND_IN
from azcluster.components.bootstrap.slurm import IMEX_SCRIPT, PROLOG_SCRIPT
from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: rack
    ssh:
      public_keys: ["{key}"]
    pools:
      - {{name: gb, size: {size}, nodes: 36, island_max_nodes: 72}}
      - {{name: h100, size: Standard_ND96isr_H100_v5, nodes: 2, island_max_nodes: 72}}
"""


def _files(text: str) -> dict[str, str]:
    return {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}


def _env(files: dict[str, str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in files["/etc/azcluster/node.env"].splitlines() if "=" in line)


@pytest.mark.parametrize("size", ["Standard_ND128isr_NDR_GB200_v6", "Standard_ND128isr_GB300_v6"])
def test_a_gb_slurm_stack_plans_racks_as_slurm_blocks_with_imex_per_job(tmp_path: Path, size: str) -> None:
    stack = tmp_path / "Pulumi.rack.yaml"
    stack.write_text(STACK.format(key=KEY, size=size), encoding="utf-8")
    boot = tmp_path / "boot"
    result = run_cli("plan", str(stack), "--json", "--show-boot", str(boot))
    assert result.exit_code == 0, result.stdout + result.stderr
    findings = {f["id"]: f for f in json.loads(result.stdout)["findings"]}
    assert not [f for f in findings.values() if f["severity"] == "error"]
    assert "AZC057" not in findings  # IMEX is configured: per job, from the Prolog
    assert "AZC135" not in findings  # both islands are 4 racks: aggregated blocks stay inside each

    login = _files((boot / "rack-login.yaml").read_text())
    conf = login["/etc/slurm/slurm.conf"]
    assert "TopologyPlugin=topology/block\n" in conf
    # One Prolog/Epilog for every node: the HPC job mapping, then azc-imex.sh (the GB script, or a stand-in)
    assert f"Prolog={PROLOG_SCRIPT}\n" in conf and f"Epilog={PROLOG_SCRIPT}\n" in conf
    assert "PrologFlags=Alloc\n" in conf
    topology = login["/etc/slurm/topology.conf"].splitlines()
    blocks = [line for line in topology if line.startswith("BlockName=")]
    assert blocks[:4] == [
        f"BlockName=gb-i0-r{r} Nodes=gb-i0-[{18 * r:03d}-{18 * r + 17:03d}]" for r in range(4)
    ]
    assert blocks[4] == "BlockName=h100-i0-r0 Nodes=h100-i0-[000-017]" and len(blocks) == 8
    assert topology[-1] == "BlockSizes=18,36,72"

    gb = _files((boot / "rack-gb-ib0.yaml").read_text())
    env = _env(gb)
    assert env["AZC_IMEX"] == "1" and env["AZC_SLURM_RACK"] == "18" and env["AZC_NVL_CLAIM"] == IMEX_SCRIPT
    assert env["AZC_SLURM_SLOTS"] == "72"
    assert gb[IMEX_SCRIPT].startswith("#!/usr/bin/env bash\n# azc-imex")
    h100 = _files((boot / "rack-h100-ib0.yaml").read_text())
    assert h100[IMEX_SCRIPT] == STAND_IN  # GB-only logic stays in GB pools' custom data
    assert "AZC_NVL_CLAIM" not in _env(h100)


def test_a_cluster_without_racks_keeps_its_tree_topology_and_the_job_mapping_prolog(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.rack.yaml"
    stack.write_text(
        STACK.format(key=KEY, size="Standard_ND96isr_H100_v5").replace("nodes: 36", "nodes: 4"),
        encoding="utf-8",
    )
    boot = tmp_path / "boot"
    result = run_cli("plan", str(stack), "--json", "--show-boot", str(boot))
    assert result.exit_code == 0, result.stdout + result.stderr
    login = _files((boot / "rack-login.yaml").read_text())
    assert "TopologyPlugin=topology/tree\n" in login["/etc/slurm/slurm.conf"]
    conf = login["/etc/slurm/slurm.conf"]
    assert f"Prolog={PROLOG_SCRIPT}\n" in conf and f"Epilog={PROLOG_SCRIPT}\n" in conf
    assert "PrologFlags=" not in conf  # allocation-time prologs only where IMEX needs them
    assert login["/etc/slurm/topology.conf"].splitlines()[1] == "SwitchName=gb-i0 Nodes=gb-i0-[000-071]"
    assert IMEX_SCRIPT not in _files((boot / "rack-gb-ib0.yaml").read_text())


def test_the_gb_only_slurm_pieces_stay_within_their_custom_data_budget() -> None:
    """The block claim and IMEX prolog add at most ~5 KB of encoded custom data, only to GB pools."""
    from azcluster.components.bootstrap import SlurmBoot
    from azcluster.components.bootstrap.document import assemble, encode_custom_data
    from azcluster.components.bootstrap.gpu_node import PoolBoot
    from azcluster.components.spec import ClusterSpec

    spec = ClusterSpec.model_validate(
        {
            "name": "rack",
            "location": "eastus",
            "pools": [
                {"name": "gb", "size": "Standard_ND128isr_GB300_v6", "nodes": 36},
                {"name": "h100", "size": "Standard_ND96isr_H100_v5", "nodes": 2},
            ],
        }
    )
    slurm = SlurmBoot(munge_key_b64="a2V5" * 11, dns_zone="rack.azcluster.internal")
    sizes = {}
    for pool in ("gb", "h100"):
        boot = PoolBoot.gather(spec, pool, slurm=slurm)
        pieces = boot.pieces(0)
        without = [p for p in pieces if p.name != "imex"]
        assert len(without) == len(pieces) - 1
        sizes[pool] = len(boot.custom_data(0)) - len(
            encode_custom_data(assemble(boot.header(0), without), pool)
        )
    assert 1000 < sizes["gb"] <= 5 * 1024, sizes
    assert sizes["h100"] <= 200, sizes  # the stand-in Prolog only
