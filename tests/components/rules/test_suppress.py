"""The spec's `suppress:` list (AZC053).

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import assert_fires, assert_quiet, build, case_id, only

FIRES = [
    ("AZC053", {"suppress": ["AZC999"]}, "AZC999"),
    ("AZC053", {"suppress": ["AZC000"]}, "cannot be suppressed"),
    ("AZC053", {"suppress": ["AZC01"]}, "AZC01"),
]

QUIET = [
    ("AZC053", {"suppress": ["azc010", " AZC001 "]}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


def test_suppress_list_suggests_the_id_that_was_meant() -> None:
    finding = only(build({"suppress": ["AZC07"]}), "AZC053")
    assert finding.path == "azcluster:cluster.suppress[0]"
    assert "Did you mean AZC007" in finding.hint
