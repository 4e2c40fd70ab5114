"""Boot rules (AZC062): each role's cloud-config within Azure's custom data limit.

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from azcluster.components import bootstrap
from azcluster.components.rules.boot import encoded_size

from .cases import assert_fires, assert_quiet, build, case_id

ELASTIC_1000_ISLANDS = {
    "elastic": {},
    "pools.0.nodes": 2000,
    "pools.0.island_max_nodes": 2,
    "network.address_space": "10.0.0.0/8",
}

FIRES = [
    # Elastic and Slurm weigh about the same there (34 KiB each): the message names both among the largest.
    ("AZC062", ELASTIC_1000_ISLANDS, "elastic ("),
]

QUIET = [
    ("AZC062", {"elastic": {}}),
    ("AZC062", {**ELASTIC_1000_ISLANDS, "elastic": {"enabled": False}}),
    ("AZC062", {"pools.0.nodes": 2000, "pools.0.island_max_nodes": 2, "network.address_space": "10.0.0.0/8"}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


def test_the_size_counted_is_the_size_azure_gets() -> None:
    """encoded_size is the length of what bootstrap sends as customData."""
    boot = bootstrap.PoolBoot.gather(build(), "gpu")
    assert encoded_size(boot.cloud_config(0)) == len(boot.custom_data(0))
