"""Elastic pool rules (AZC093-AZC097).

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import assert_fires, assert_quiet, case_id

FIRES = [
    ("AZC093", {"elastic": {}, "login.enabled": False}, "login node"),
    ("AZC094", {"elastic": {"idle_minutes": 5}}, "idle_minutes is 5"),
    ("AZC095", {"elastic": {"resume_timeout_minutes": 10}}, "resume_timeout_minutes is 10"),
    ("AZC096", {"pools.0.spot": True, "elastic": {}}, "Spot"),
    ("AZC097", {"elastic": {"keep_warm_islands": 1}}, "keep_warm_islands is 1, all of pool 'gpu'"),
    ("AZC097", {"elastic": {"keep_warm_islands": 4}}, "islands, not nodes"),
]

QUIET = [
    ("AZC093", {"elastic": {}}),
    ("AZC093", {"login.enabled": False}),
    ("AZC094", {"elastic": {"idle_minutes": 15}}),
    ("AZC094", {"elastic": {"idle_minutes": 5, "enabled": False}}),
    ("AZC095", {"elastic": {"resume_timeout_minutes": 15}}),
    ("AZC096", {"pools.0.spot": True}),
    ("AZC096", {"pools.0.spot": True, "elastic": {"keep_warm_islands": 1}}),
    ("AZC097", {"elastic": {"keep_warm_islands": 0}}),
    ("AZC097", {"pools.0.nodes": 150, "elastic": {"keep_warm_islands": 1}}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)
