"""Team accounting rules (AZC140-AZC149): the Slurm accounts, fair shares and GPU limits of `team.accounts`.

Each case edits the baseline cluster (cases.py: 4 ND H100 v5 nodes, 32 GPUs) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import assert_fires, assert_quiet, case_id

ALICE = {"name": "alice", "uid": 2001, "account": "vision"}
ON = {"slurm.accounting": {"enabled": True}}


def accounts(*items: Any, users: tuple[dict[str, Any], ...] = (ALICE,), **edits: Any) -> dict[str, Any]:
    return {"team": {"users": list(users), "accounts": list(items)}, **ON, **edits}


FIRES = [
    ("AZC140", {"team": {"users": [ALICE], "accounts": ["vision"]}}, "Slurm accounting is off"),
    ("AZC140", {**accounts("vision"), "scheduler": "none"}, "runs no Slurm"),
    ("AZC141", accounts("vision", "root"), "root account"),
    ("AZC141", accounts("vision", "Vision"), "not a lower-case portable name"),
    ("AZC142", accounts("vision", {"name": "vision", "fairshare": 3}), "listed twice"),
    ("AZC143", accounts({"name": "vision", "max_gpus_per_user": 16, "max_gpus": 8}), "16 GPUs per user"),
    ("AZC143", accounts({"name": "vision", "max_gpus": 64}), "more than the cluster's 32 GPUs"),
]

QUIET = [
    ("AZC140", accounts("vision")),
    ("AZC140", {"team": {"users": [{"name": "bob", "uid": 2002}]}}),  # no accounts: nothing to apply
    ("AZC141", accounts("vision", "nlp-2", "_ops")),
    ("AZC142", accounts("vision", "nlp")),
    ("AZC143", accounts({"name": "vision", "max_gpus_per_user": 8, "max_gpus": 32})),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)
