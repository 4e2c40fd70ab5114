"""`azcluster plan` of GB200 and GB300 stacks: whole NVL72 racks, the Arm64 image, the rack rules, and the
GB-only node checks in their custom data. Through the real CLI, offline (Pulumi mocks), as
test_plan_fidelity.py does; the shipped example `stacks/Pulumi.gb300-144.yaml` is planned as a user would.
"""

from __future__ import annotations

import json

import pytest

from azcluster.components import catalog
from tests.azcluster.test_plan_fidelity import VMSS, node_env, of_type, plan
from tests.checkout import tracked
from tests.clirunner import run_cli

GB200 = "Standard_ND128isr_NDR_GB200_v6"
GB300 = "Standard_ND128isr_GB300_v6"


def cluster(size: str, nodes: int, extra: str = "") -> str:
    # scheduler none: a Slurm cluster's custom data carries the munge key and plans as "[secret]"
    return f"name: t\nscheduler: none\npools:\n  - {{name: gb, size: {size}, nodes: {nodes}{extra}}}\n"


@pytest.mark.parametrize("size", [GB200, GB300])
def test_a_gb_stack_plans_whole_racks_on_the_arm64_image_with_the_gb_checks(tmp_path, size):
    document = plan(tmp_path, cluster(size, 36))
    (vmss,) = of_type(document, VMSS)
    inputs = vmss["inputs"]
    assert inputs["sku"] == {"name": size, "tier": "Standard", "capacity": 36}
    storage = inputs["virtualMachineProfile"]["storageProfile"]
    assert storage["imageReference"]["sku"] == "2404-gb" and storage["diskControllerType"] == "NVMe"
    env = node_env(vmss)
    assert env["AZC_GB"] == "1" and env["AZC_ARCH"] == "Arm64" and env["AZC_GPUS"] == "4"
    assert env["AZC_IB_GBPS"] == "400"  # GB200's rate; GB300's health floor where sources disagree
    (pool,) = document["summary"]["pools"]
    assert pool["racks"] == {"vms_per_rack": 18, "whole": 2, "partial_vms": 0}
    assert document["summary"]["gpus"] == 144
    size_row = catalog.find_size(size)
    assert document["summary"]["quota"][0] == {"family": size_row.quota_family, "vcpus": 36 * 128}
    findings = {f["id"]: f for f in document["findings"]}
    assert not [f for f in document["findings"] if f["severity"] == "error"]
    assert findings["AZC131"]["severity"] == "warning"
    assert "interconnectGroupProfile" in findings["AZC131"]["message"]
    assert findings["AZC133"]["severity"] == "info"
    assert "AZC130" not in findings and "AZC055" not in findings


@pytest.mark.parametrize("size", [GB200, GB300])
def test_a_partial_rack_is_refused_until_the_pool_allows_it(tmp_path, size):
    path = tmp_path / "Pulumi.p.yaml"
    body = cluster(size, 20).replace("\n", "\n    ")
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
    path.write_text(
        f"config:\n  azure-native:location: eastus\n  azcluster:cluster:\n    {body}"
        f'ssh:\n      public_keys: ["{key}"]\n',
        encoding="utf-8",
    )
    refused = run_cli("plan", str(path), "--json")
    assert refused.exit_code == 1, refused.stdout
    errors = [f for f in json.loads(refused.stdout)["findings"] if f["severity"] == "error"]
    assert [f["id"] for f in errors] == ["AZC130"]
    assert errors[0]["path"] == "azcluster:cluster.pools[0].nodes" and "18 or 36" in errors[0]["hint"]
    allowed = plan(tmp_path, cluster(size, 20, ", allow_partial_racks: true"))
    assert allowed["summary"]["pools"][0]["racks"] == {"vms_per_rack": 18, "whole": 1, "partial_vms": 2}
    assert "AZC130" not in {f["id"] for f in allowed["findings"]}


def test_other_sizes_plan_without_racks_or_gb_checks(tmp_path):
    document = plan(tmp_path, cluster("Standard_ND96isr_H100_v5", 2))
    (vmss,) = of_type(document, VMSS)
    assert "AZC_GB" not in node_env(vmss)
    assert document["summary"]["pools"][0]["racks"] is None


def test_the_shipped_gb300_example_plans_clean_and_shows_its_racks():
    (stack,) = [p for p in tracked("stacks", "Pulumi.*.yaml") if p.name == "Pulumi.gb300-144.yaml"]
    result = run_cli("plan", str(stack), env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    assert "36 x Standard_ND128isr_GB300_v6: 1 IB island of 36; 2 NVL72 racks of 18" in result.stdout
    # no public GB300 price: the catalogue's figure is marked, in the table and the JSON
    assert "pool gb: 36 x Standard_ND128isr_GB300_v6 (estimate)" in result.stdout
    document = json.loads(run_cli("plan", str(stack), "--json").stdout)
    assert document["summary"]["gpus"] == 144
    (gb_price,) = [line for line in document["summary"]["prices"] if line["size"] == GB300]
    assert gb_price["estimate"] is True and gb_price["confidence"] == "low"
    (vmss,) = of_type(document, VMSS)
    assert vmss["inputs"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["sku"] == "2404-gb"
    assert not [f for f in document["findings"] if f["severity"] == "error"]
