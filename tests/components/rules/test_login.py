"""Login node rules (AZC019).

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import assert_fires, assert_quiet, case_id

FIRES = [
    ("AZC019", {"login.size": "Standard_D4s_v9"}, "Standard_D4s_v9"),
]

QUIET = [
    ("AZC019", {"login.size": "Standard_D8s_v5"}),
    ("AZC019", {"login.size": "standard_d16s_v5"}),
    ("AZC019", {"login.enabled": False, "login.size": "Standard_Nonsense"}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)
