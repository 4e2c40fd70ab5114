"""The runnable example of using the components from your own Pulumi program really runs."""

from __future__ import annotations

import runpy
from pathlib import Path

from azcluster.mockrun import run_program

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "own-program" / "__main__.py"


def test_own_program_example_builds_a_cluster_and_an_extra_pool():
    run = run_program(lambda: runpy.run_path(str(EXAMPLE)), "dev")
    scale_sets = [r for r in run.resources if r.type == "azure-native:compute:VirtualMachineScaleSet"]
    capacities = sorted((r.inputs["vmScaleSetName"], r.inputs["sku"]["capacity"]) for r in scale_sets)
    assert capacities == [("lab-extra-ib0", 4), ("lab-gpu-ib0", 16)]
    extra = next(r for r in scale_sets if r.inputs["vmScaleSetName"] == "lab-extra-ib0")
    assert extra.inputs["singlePlacementGroup"] is True
    subnet_ids = {
        r.inputs["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0][
            "ipConfigurations"
        ][0]["subnet"]["id"]
        for r in scale_sets
    }
    assert len(subnet_ids) == 1  # the extra pool joined the cluster's compute subnet
    assert run.outputs["extra_scale_sets"] == ["lab-extra-ib0"]
