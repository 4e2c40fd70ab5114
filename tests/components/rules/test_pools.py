"""GPU pool rules (AZC003-AZC016): names, sizes, islands, Spot, capacity reservations.

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import CRG_ID, GB200, GB300, H100, NC, assert_fires, assert_quiet, build, case_id, only

FIRES = [
    ("AZC003", {"pools": []}, "no GPU pools"),
    ("AZC004", {"pools.0.nodes": 0}, "0 nodes"),
    ("AZC005", {"pools.0.name": "GPU-A"}, "GPU-A"),
    ("AZC005", {"pools.0.name": "gpu_1"}, "gpu_1"),
    (
        "AZC006",
        {"pools": [{"name": "gpu", "size": H100, "nodes": 1}, {"name": "gpu", "size": NC, "nodes": 1}]},
        "pools[0]",
    ),
    ("AZC007", {"pools.0.size": "Standard_ND96isr_H100_v6"}, "Standard_ND96isr_H100_v6"),
    ("AZC008", {"pools.0.nodes": 400, "pools.0.island_max_nodes": 400}, "400"),
    ("AZC008", {"pools.0.nodes": 301, "pools.0.island_max_nodes": 1000}, "301"),
    ("AZC009", {"pools.0.nodes": 200, "pools.0.island_max_nodes": 200}, "200"),
    ("AZC009", {"pools.0.nodes": 600, "pools.0.island_max_nodes": 300}, "300"),
    ("AZC010", {"pools.0.nodes": 250}, "3 scale sets of at most 100 nodes (84, 83, 83)"),
    ("AZC011", {"pools.0.size": NC, "pools.0.nodes": 2}, NC),
    ("AZC012", {"pools.0.size": GB200, "pools.0.nodes": 20, "pools.0.allow_partial_racks": True}, "18"),
    ("AZC012", {"pools.0.size": GB200, "pools.0.nodes": 36, "pools.0.island_max_nodes": 12}, "12, 12, 12"),
    ("AZC012", {"pools.0.size": GB300, "pools.0.nodes": 36, "pools.0.island_max_nodes": 12}, "18 or more"),
    (
        "AZC012",
        {"pools.0.size": GB300, "pools.0.nodes": 20, "pools.0.allow_partial_racks": True},
        "Use whole racks: 18 or 36 nodes.",
    ),
    (
        "AZC013",
        {"pools.0.size": NC, "pools.0.spot": True, "pools.0.capacity_reservation_group_id": CRG_ID},
        "Spot",
    ),
    ("AZC014", {"pools.0.spot": True}, "eviction"),
    ("AZC015", {"pools.0.capacity_reservation_group_id": CRG_ID}, H100),
    ("AZC016", {"pools.0.size": NC, "pools.0.capacity_reservation_group_id": "my-crg"}, "my-crg"),
    ("AZC016", {"pools.0.size": NC, "pools.0.capacity_reservation_group_id": CRG_ID + "/"}, "capacity"),
    ("AZC016", {"pools.0.size": NC, "pools.0.capacity": {"reservation": {"group_id": "my-crg"}}}, "my-crg"),
    (
        "AZC013",
        {"pools.0.size": NC, "pools.0.spot": True, "pools.0.capacity": {"reservation": {"create": True}}},
        "Spot",
    ),
    ("AZC015", {"pools.0.capacity": {"reservation": {"create": True}}}, "single placement"),
]

QUIET = [
    ("AZC004", {"pools.0.nodes": 1}),
    ("AZC005", {"pools.0.name": "gpu2"}),
    (
        "AZC006",
        {"pools": [{"name": "gpu", "size": H100, "nodes": 1}, {"name": "gpu2", "size": NC, "nodes": 1}]},
    ),
    ("AZC007", {"pools.0.size": H100.lower()}),
    ("AZC008", {"pools.0.nodes": 600, "pools.0.island_max_nodes": 300}),
    ("AZC008", {"pools.0.nodes": 300, "pools.0.island_max_nodes": 1000}),
    ("AZC008", {"pools.0.size": NC, "pools.0.nodes": 400, "pools.0.island_max_nodes": 400}),
    ("AZC009", {"pools.0.nodes": 200}),
    ("AZC009", {"pools.0.nodes": 100, "pools.0.island_max_nodes": 300}),
    ("AZC010", {"pools.0.nodes": 100}),
    ("AZC010", {"pools.0.size": NC, "pools.0.nodes": 250}),
    ("AZC011", {"pools.0.size": NC, "pools.0.nodes": 1}),
    ("AZC012", {"pools.0.size": GB200, "pools.0.nodes": 36}),
    ("AZC012", {"pools.0.size": GB300, "pools.0.nodes": 144}),  # 2 islands of 72: whole racks
    ("AZC012", {"pools.0.size": GB200, "pools.0.nodes": 126}),  # 72 + 54: racks are never split
    ("AZC012", {"pools.0.size": GB300, "pools.0.nodes": 198}),  # 72 + 72 + 54
    ("AZC012", {"pools.0.size": GB200, "pools.0.nodes": 20}),  # not whole racks at all: AZC130's error
    ("AZC012", {"pools.0.size": GB200, "pools.0.nodes": 144}),
    ("AZC013", {"pools.0.size": NC, "pools.0.spot": True}),
    ("AZC014", {"pools.0.spot": True, "pools.0.nodes": 1}),
    ("AZC014", {"pools.0.size": NC, "pools.0.spot": True, "pools.0.nodes": 4}),
    ("AZC015", {"pools.0.size": NC, "pools.0.capacity_reservation_group_id": CRG_ID}),
    ("AZC016", {"pools.0.size": NC, "pools.0.capacity_reservation_group_id": CRG_ID.lower()}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


def test_unknown_size_suggests_the_closest_catalogue_names() -> None:
    finding = only(build({"pools.0.size": "Standard_ND96isr_H100_v6"}), "AZC007")
    assert finding.path == "azcluster:cluster.pools[0].size"
    assert "Did you mean Standard_ND96isr_H100_v5" in finding.hint


def test_split_pool_names_the_islands_path_and_count() -> None:
    finding = only(build({"pools.0.nodes": 1000, "pools.0.island_max_nodes": 300}), "AZC010")
    assert finding.path == "azcluster:cluster.pools[0].nodes"
    assert "will be split into 4 scale sets of at most 300 nodes (250, 250, 250, 250)" in finding.message
    assert "each its own InfiniBand island" in finding.message


def test_findings_point_at_the_pool_that_is_wrong() -> None:
    spec = build(
        {
            "pools": [
                {"name": "ok", "size": H100, "nodes": 1},
                {"name": "bad", "size": "Standard_Nope", "nodes": 1},
            ]
        }
    )
    assert only(spec, "AZC007").path == "azcluster:cluster.pools[1].size"
