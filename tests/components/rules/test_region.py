"""Region and zone rules (AZC001-AZC002).

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import DELETE, assert_fires, assert_quiet, build, case_id, only

FIRES = [
    ("AZC001", {"location": "eastuss"}, "eastuss"),
    ("AZC001", {"location": "atlantis"}, "atlantis"),
    ("AZC002", {"location": "westus"}, "westus"),
]

QUIET = [
    ("AZC001", {"location": "East US"}),
    ("AZC002", {"location": "westus", "zone": DELETE}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


def test_unknown_region_suggests_the_closest_region_at_the_location_key() -> None:
    finding = only(build({"location": "westeurop"}), "AZC001")
    assert finding.path == "azure-native:location"
    assert "westeurope" in finding.hint
