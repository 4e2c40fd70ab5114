"""Slurm rules (AZC070-AZC075).

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import GB200, GB300, MI300X, assert_fires, assert_quiet, case_id

FIRES = [
    ("AZC070", {"login.enabled": False}, "slurmctld"),
    ("AZC071", {"slurm.default_partition": "gpus"}, "Did you mean gpu"),
    ("AZC072", {"pools": []}, "no partition"),
    (
        "AZC073",
        {"slurm.reserved_cores": 96, "pools.0.size": "Standard_NC96ads_A100_v4", "pools.0.nodes": 1},
        "no cores",
    ),
    ("AZC074", {"pools.0.size": MI300X}, "Pyxis"),
    ("AZC075", {"pools.0.size": GB200, "pools.0.image": "microsoft-dsvm:ubuntu-hpc:2204:latest"}, "arm64"),
    ("AZC075", {"pools.0.size": GB300, "pools.0.image": "microsoft-dsvm:ubuntu-hpc:2204:latest"}, "arm64"),
]

QUIET = [
    ("AZC070", {"login.enabled": False, "scheduler": "none"}),
    ("AZC071", {"slurm.default_partition": "gpu"}),
    ("AZC071", {"scheduler": "none", "slurm.default_partition": "cpu"}),
    ("AZC072", {"pools": [], "scheduler": "none"}),
    ("AZC073", {"slurm.reserved_cores": 2}),
    (
        "AZC074",
        {
            "pools.0.size": MI300X,
            "slurm.containers": False,
            "pools.0.image": "microsoft-dsvm:ubuntu-hpc:2204-rocm:latest",
        },
    ),
    ("AZC075", {"pools.0.size": GB200}),
    ("AZC075", {"pools.0.size": GB300, "pools.0.nodes": 18}),
    (
        "AZC075",
        {
            "pools.0.size": GB200,
            "pools.0.image": "microsoft-dsvm:ubuntu-hpc:2204:latest",
            "scheduler": "none",
        },
    ),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)
