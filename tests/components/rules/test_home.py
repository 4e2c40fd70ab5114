"""Shared home rules (AZC085-AZC086).

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import DELETE, assert_fires, assert_quiet, case_id

FIRES = [
    ("AZC085", {"location": "westus", "zone": DELETE, "storage.home.redundancy": "ZRS"}, "has none"),
    ("AZC086", {"storage.home.mount": "/opt/home"}, "under '/opt'"),
    ("AZC086", {"storage.home.mount": "/mnt/"}, "'/mnt'"),
    ("AZC086", {"storage.home.mount": "/lustre"}, "'/lustre'"),
]

QUIET = [
    ("AZC085", {"storage.home.redundancy": "ZRS"}),
    ("AZC085", {"location": "westus", "zone": DELETE, "storage.home.enabled": False}),
    ("AZC086", {"storage.home.mount": "/shared/home"}),
    ("AZC086", {"storage.home.mount": "/mnt/home"}),
    ("AZC086", {"storage.home.mount": "/usr", "storage.home.enabled": False}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)
