"""Storage rules (AZC033-AZC039, AZC054): Managed Lustre and the blob account.

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import DELETE, assert_fires, assert_quiet, build, case_id, only

FIRES = [
    ("AZC033", {"storage.lustre.capacity_tib": 256}, "8-128"),
    (
        "AZC033",
        {"storage.lustre.sku": "AMLFS-Durable-Premium-40", "storage.lustre.capacity_tib": 16},
        "48-768",
    ),
    ("AZC034", {"storage.lustre.capacity_tib": 20}, "16 or 24"),
    ("AZC035", {"zone": DELETE}, "zone"),
    ("AZC036", {"storage.lustre.import_container": "data"}, "data"),
    ("AZC037", {"storage.lustre.import_container": "lustre-logs", "storage.blob.enabled": True}, "logs"),
    ("AZC037", {"storage.lustre.import_container": "Data Sets", "storage.blob.enabled": True}, "Data Sets"),
    ("AZC038", {"storage.blob.enabled": True, "storage.blob.containers": ["Data"]}, "Data"),
    ("AZC038", {"storage.blob.enabled": True, "storage.blob.containers": ["ab"]}, "ab"),
    ("AZC038", {"storage.blob.enabled": True, "storage.blob.containers": ["a--b"]}, "a--b"),
    ("AZC038", {"storage.blob.enabled": True, "storage.blob.containers": ["data-"]}, "data-"),
    ("AZC038", {"storage.blob.enabled": True, "storage.blob.containers": ["data", "data"]}, "twice"),
    ("AZC039", {"storage.blob.enabled": True, "storage.blob.containers": []}, "mount"),
    (
        "AZC054",
        {"storage.lustre.import_container": "datasets", "storage.blob.enabled": True},
        "az ad sp show",
    ),
    (
        "AZC054",
        {
            "storage.lustre.import_container": "datasets",
            "storage.blob.enabled": True,
            "storage.lustre.provider_principal_id": "hpc-cache",
        },
        "not an object id",
    ),
]

QUIET = [
    ("AZC033", {"storage.lustre.capacity_tib": 128}),
    ("AZC033", {"storage.lustre.enabled": False, "storage.lustre.capacity_tib": 9999}),
    ("AZC034", {"storage.lustre.capacity_tib": 24}),
    ("AZC034", {"storage.lustre.capacity_tib": 20, "storage.lustre.sku": "AMLFS-Durable-Premium-500"}),
    ("AZC035", {"zone": DELETE, "storage.lustre.enabled": False}),
    ("AZC035", {"zone": DELETE, "storage": {}}),
    ("AZC036", {"storage.lustre.import_container": "data", "storage.blob.enabled": True}),
    ("AZC037", {"storage.lustre.import_container": "datasets", "storage.blob.enabled": True}),
    ("AZC037", {"storage.lustre.enabled": False, "storage.lustre.import_container": "lustre-logs"}),
    ("AZC038", {"storage.blob.enabled": True, "storage.blob.containers": ["data", "check-points", "x1y"]}),
    ("AZC038", {"storage.blob.containers": ["BAD"]}),
    ("AZC039", {"storage.blob.enabled": True, "storage.blob.containers": [], "storage.blob.mount": False}),
    (
        "AZC054",
        {
            "storage.lustre.import_container": "datasets",
            "storage.blob.enabled": True,
            "storage.lustre.provider_principal_id": "0b7a2a4e-86f5-4e3b-9a8f-6a5c3a1f2d90",
        },
    ),
    ("AZC054", {"storage.lustre.enabled": False, "storage.lustre.import_container": "datasets"}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


def test_capacity_not_a_step_offers_the_neighbouring_steps() -> None:
    finding = only(build({"storage.lustre.capacity_tib": 127}), "AZC034")
    assert "Use 120 or 128 TiB." in finding.hint
