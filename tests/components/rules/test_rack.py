"""GB200/GB300 rack rules (AZC130-AZC133): whole racks, interconnect groups, partial racks allowed only
where they mean something, what the GB health checks cover.

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from azcluster.components import catalog
from azcluster.components.rules import rack

from .cases import GB200, GB300, H100, assert_fires, assert_quiet, build, case_id, only

FIRES = [
    ("AZC130", {"pools.0.size": GB200, "pools.0.nodes": 20}, "Set nodes to whole racks (18 or 36)"),
    ("AZC130", {"pools.0.size": GB300, "pools.0.nodes": 4}, "Set nodes to whole racks (18)"),
    ("AZC130", {"pools.0.size": GB300, "pools.0.nodes": 40}, "2 whole racks and 4 VM(s)"),
    ("AZC131", {"pools.0.size": GB200, "pools.0.nodes": 18}, "highSpeedInterconnectPlacement"),
    ("AZC131", {"pools.0.size": GB300, "pools.0.nodes": 36}, "az interconnect-group create"),
    ("AZC132", {"pools.0.allow_partial_racks": True}, H100),
    ("AZC133", {"pools.0.size": GB200, "pools.0.nodes": 18}, "AzNHC too where the image's copy"),
    ("AZC133", {"pools.0.size": GB300, "pools.0.nodes": 18}, "AzNHC has no configuration"),
    (
        "AZC134",
        {"pools.0.size": GB300, "pools.0.nodes": 36, "pools.0.capacity": {"min_nodes": 20}},
        "e.g. 18",
    ),
    (
        "AZC134",
        {"pools.0.size": GB200, "pools.0.nodes": 36, "pools.0.capacity": {"min_fraction": 0.75}},
        "an island of 27 node(s)",
    ),
]

QUIET = [
    ("AZC130", {"pools.0.size": GB200, "pools.0.nodes": 36}),
    ("AZC130", {"pools.0.size": GB300, "pools.0.nodes": 18}),
    ("AZC130", {"pools.0.size": GB300, "pools.0.nodes": 0}),
    ("AZC130", {"pools.0.size": GB300, "pools.0.nodes": 4, "pools.0.allow_partial_racks": True}),
    ("AZC130", {"pools.0.nodes": 20}),  # H100: no racks
    ("AZC131", {"pools.0.size": GB300, "pools.0.nodes": 0}),
    ("AZC131", {"pools.0.nodes": 2}),
    ("AZC132", {"pools.0.size": GB300, "pools.0.nodes": 4, "pools.0.allow_partial_racks": True}),
    ("AZC133", {"pools.0.nodes": 2}),
    ("AZC134", {"pools.0.size": GB300, "pools.0.nodes": 36, "pools.0.capacity": {"min_nodes": 18}}),
    ("AZC134", {"pools.0.size": GB300, "pools.0.nodes": 36, "pools.0.capacity": {"min_fraction": 0.5}}),
    ("AZC134", {"pools.0.size": GB300, "pools.0.nodes": 36}),
    ("AZC134", {"pools.0.nodes": 4, "pools.0.capacity": {"min_nodes": 3}}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


def test_a_partial_rack_is_an_error_that_points_at_nodes_and_names_the_gpus_it_strands():
    finding = only(build({"pools.0.size": GB300, "pools.0.nodes": 20}), "AZC130")
    assert finding.severity == "error"
    assert finding.path == "azcluster:cluster.pools[0].nodes"
    assert "1 whole rack and 2 VM(s) of another" in finding.message
    assert "see 8 GPUs" in finding.message and "18 VMs (72 GPUs)" in finding.message
    assert "allow_partial_racks: true" in finding.hint


def test_every_rack_size_is_in_the_catalogue_with_18_vms_and_an_arm64_image():
    racked = {s.name for s in catalog.gpu_sizes().values() if s.rack_vms}
    assert racked == {GB200, GB300}
    for name in racked:
        size = catalog.find_size(name)
        assert size.rack_vms == 18 and size.architecture == "Arm64"
        assert size.default_image.startswith("microsoft-dsvm:ubuntu-hpc:2404-gb")
        assert catalog.image_architecture(size.default_image) == "Arm64"


def test_the_interconnect_gap_names_what_the_installed_sdk_lacks():
    """AZC131's claim is checked against the installed pulumi-azure-native: the network module has
    InterconnectGroup, the scale set has no interconnect properties and there is no InterconnectBlock."""
    import inspect

    from pulumi_azure_native import compute, network

    assert hasattr(network, "InterconnectGroup")
    assert "2025-07-01" in (network.InterconnectGroup.__init__.__doc__ or "") + inspect.getsource(
        network.InterconnectGroup
    )
    parameters = inspect.signature(compute.VirtualMachineScaleSetArgs.__init__).parameters
    assert not [name for name in parameters if "interconnect" in name]
    assert not hasattr(compute, "InterconnectBlock")
    assert "2024-11-01" in inspect.getsource(compute.VirtualMachineScaleSet)
    assert "2024-11-01" in rack.INTERCONNECT_GAP
