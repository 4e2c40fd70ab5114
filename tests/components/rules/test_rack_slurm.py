"""The racks' Slurm side (AZC135-AZC136): NVLink blocks that stay inside InfiniBand islands, and elastic
islands that are whole racks. Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import GB200, GB300, H100, assert_fires, assert_quiet, build, case_id, only

ELASTIC = {"elastic": {"enabled": True}}


def pools(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {"pools": [{"name": "gpu", **first}, second]}


FIRES = [
    # a GB island of 144 slots beside an H100 island of 18: the blocks stop at the rack
    (
        "AZC135",
        pools(
            {"size": GB200, "nodes": 36}, {"name": "small", "size": H100, "nodes": 2, "island_max_nodes": 2}
        ),
        "a job larger than 18 nodes may be placed across InfiniBand islands",
    ),
    (
        "AZC136",
        {**ELASTIC, "pools.0.size": GB300, "pools.0.nodes": 20, "pools.0.allow_partial_racks": True},
        "20 VMs",
    ),
    (
        "AZC136",
        {**ELASTIC, **pools({"size": GB200, "nodes": 18}, {"name": "h", "size": H100, "nodes": 3})},
        "pool 'h'",
    ),
]

QUIET = [
    ("AZC135", {"pools.0.size": GB200, "pools.0.nodes": 36}),  # one island: nothing to cross
    (
        "AZC135",
        pools({"size": GB200, "nodes": 36}, {"name": "h", "size": H100, "nodes": 4}),
    ),
    (
        "AZC135",
        pools({"size": H100, "nodes": 4}, {"name": "h", "size": H100, "nodes": 2, "island_max_nodes": 2}),
    ),
    ("AZC135", {"scheduler": "none", "pools.0.size": GB200, "pools.0.nodes": 36}),
    ("AZC136", {**ELASTIC, "pools.0.size": GB200, "pools.0.nodes": 36}),
    ("AZC136", {"pools.0.size": GB300, "pools.0.nodes": 20, "pools.0.allow_partial_racks": True}),
    ("AZC136", {**ELASTIC, "pools.0.nodes": 3}),  # no racks: no blocks
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


def test_an_elastic_island_of_partial_racks_is_an_error_that_names_the_fatal_block():
    finding = only(
        build({**ELASTIC, "pools.0.size": GB300, "pools.0.nodes": 20, "pools.0.allow_partial_racks": True}),
        "AZC136",
    )
    assert finding.severity == "error" and finding.path == "azcluster:cluster.pools[0].nodes"
    assert "18 slots" in finding.message and "turn elastic power off" in finding.hint
