"""Tag rules (AZC049-AZC052).

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import assert_fires, assert_quiet, case_id, numbered_tags

FIRES = [
    ("AZC049", {"tags": numbered_tags(14)}, "16 with azcluster"),
    ("AZC049", {"tags": {**numbered_tags(13), "Env": "x"}}, "14 tags make 16"),
    ("AZC050", {"tags": {"a/b": "x"}}, "a/b"),
    ("AZC050", {"tags": {"": "x"}}, "empty"),
    ("AZC050", {"tags": {"k" * 513: "x"}}, "513"),
    ("AZC050", {"tags": {"k" * 129: "x"}, "storage.blob.enabled": True}, "128"),
    ("AZC050", {"tags": {"Env": "a", "env": "b"}}, "only in case"),
    ("AZC051", {"tags": {"note": "v" * 257}}, "257"),
    ("AZC052", {"tags": {"azcluster-pool": "mine"}}, "azcluster-pool"),
    ("AZC052", {"tags": {"AZCluster-Role": "mine"}}, "AZCluster-Role"),
]

QUIET = [
    ("AZC049", {"tags": numbered_tags(13)}),
    ("AZC049", {"tags": {**numbered_tags(13), "azcluster-role": "x"}}),
    ("AZC050", {"tags": {"cost-center": "x", "Env": "prod"}}),
    ("AZC050", {"tags": {"k" * 300: "x"}}),
    ("AZC051", {"tags": {"note": "v" * 256}}),
    ("AZC052", {"tags": {"my-azcluster-pool": "x"}}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)
