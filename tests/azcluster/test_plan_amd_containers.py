"""`plan` of a Slurm cluster with MI300X nodes says what those nodes get instead of Pyxis and Enroot
(AZC074: Docker, which Azure's ROCm HPC image ships) on the MI300X pool only; the nodes' side (no
Enroot/Pyxis on AMD nodes) is tested in tests/components/test_slurm_bootstrap.py."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
STACK = f"""\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: mixed
    scheduler: slurm
    pools:
      - name: h100
        size: Standard_ND96isr_H100_v5
        nodes: 2
      - name: mi
        size: Standard_ND96isr_MI300X_v5
        nodes: 2
    ssh:
      public_keys: ["{KEY}"]
"""


def test_plan_says_what_amd_nodes_get_instead_of_pyxis(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.mixed.yaml"
    path.write_text(textwrap.dedent(STACK))
    result = run_cli("plan", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    findings = [f for f in json.loads(result.stdout)["findings"] if f["id"] == "AZC074"]
    assert [f["path"] for f in findings] == ["azcluster:cluster.pools[1].size"]  # the MI300X pool only
    assert findings[0]["severity"] == "info"
    assert "Docker instead" in findings[0]["message"] and "--device=/dev/kfd" in findings[0]["hint"]
    human = run_cli("plan", str(path), env={"COLUMNS": "300"})
    assert "AZC074" in human.stdout and "Docker instead" in " ".join(human.stdout.split())
