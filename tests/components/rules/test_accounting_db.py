"""Accounting that survives (AZC146-AZC149): the MySQL flexible server option for slurmdbd and slurmctld's
state against a rebuilt login node.

Each case edits the baseline cluster (cases.py: Slurm, a login node, the shared home) and must fire, or stay
quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import assert_fires, assert_quiet, case_id

MYSQL = {"slurm.accounting": {"enabled": True, "database": "mysql"}}


def mysql(**fields: Any) -> dict[str, Any]:
    return {"slurm.accounting": {"enabled": True, "database": "mysql", "mysql": fields}}


FIRES = [
    ("AZC146", mysql(sku="Standard_D2ads_v5"), "is not of tier Burstable"),
    ("AZC146", mysql(sku="Standard_B1ms", tier="GeneralPurpose"), "is not of tier GeneralPurpose"),
    ("AZC146", mysql(sku="db.t3.micro"), "is not a MySQL flexible server size"),
    ("AZC147", {"storage.home": {"enabled": False}}, "lost if that VM is replaced"),
    ("AZC148", {"slurm.accounting": {"enabled": True}}, "MariaDB on the login node's OS disk"),
    ("AZC149", {"slurm.accounting": {"database": "mysql"}}, "Slurm accounting is off"),
    ("AZC149", {**MYSQL, "scheduler": "none"}, "runs no Slurm"),
    ("AZC149", {**MYSQL, "login": {"enabled": False}}, "no login node"),
]

QUIET = [
    ("AZC146", MYSQL),
    ("AZC146", mysql(sku="Standard_D2ads_v5", tier="GeneralPurpose")),
    ("AZC146", mysql(sku="Standard_E4ds_v4", tier="MemoryOptimized")),
    ("AZC147", {}),  # the shared home holds the state
    ("AZC147", {"storage.home": {"enabled": False}, "scheduler": "none"}),
    ("AZC148", MYSQL),
    ("AZC148", {}),  # no accounting: nothing to keep
    ("AZC149", MYSQL),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)
