"""Derived-name rules (AZC040-AZC042): each case edits the baseline cluster (cases.py) and must fire, or stay
quiet."""

from __future__ import annotations

from typing import Any

import pytest

from .cases import NC, assert_fires, assert_quiet, build, case_id, ids

FIRES = [
    ("AZC040", {"name": "Demo"}, "Demo"),
    ("AZC040", {"name": "1demo"}, "1demo"),
    ("AZC040", {"name": "demo-"}, "demo-"),
    ("AZC040", {"name": "de_mo"}, "de_mo"),
    ("AZC041", {"name": "c" * 40, "pools.0.name": "p" * 20}, "65 characters"),
    ("AZC041", {"name": "c" * 40, "pools.0.size": NC, "pools.0.name": "p" * 24}, "65 characters"),
    ("AZC041", {"pools.0.name": "p" * 53}, "leaves no room"),
    ("AZC041", {"pools.0.name": "p" * 50, "pools.0.nodes": 1000, "pools.0.island_max_nodes": 1}, "-i999-"),
    ("AZC041", {"name": "c" * 60}, "login"),
    (
        "AZC041",
        {"name": "c" * 88, "login.enabled": False, "scheduler": "none", "pools": []},
        "resource group",
    ),
    ("AZC042", {"resource_group": "rg."}, "rg."),
    ("AZC042", {"resource_group": "my rg"}, "my rg"),
    ("AZC042", {"resource_group": "r" * 91}, "1-90"),
]

QUIET = [
    ("AZC040", {"name": "demo-2"}),
    ("AZC040", {"name": "d"}),
    ("AZC041", {"name": "c" * 40, "pools.0.name": "p" * 19}),
    ("AZC041", {"name": "c" * 40, "pools.0.size": NC, "pools.0.name": "p" * 23}),
    ("AZC041", {"pools.0.name": "p" * 51}),
    ("AZC041", {"name": "c" * 58, "pools": []}),
    ("AZC042", {"resource_group": "my_rg-(prod).1"}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


@pytest.mark.parametrize(
    ("path", "value", "rule_id"),
    [
        ("pools.0.name", "gpu\n", "AZC005"),
        ("name", "demo\n", "AZC"),
        ("resource_group", "demo-rg\n", "AZC"),
    ],
)
def test_a_trailing_newline_is_not_a_valid_name(path, value, rule_id) -> None:
    """`^...$` with re.match accepts a trailing newline; Azure does not. The rules match the whole value."""
    found = ids(build({path: value}))
    assert any(i.startswith(rule_id) for i in found - ids(build())), (path, found)
