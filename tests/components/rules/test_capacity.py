"""Capacity policy rules (AZC100-AZC109, AZC160-AZC169) and the policy's shape in the spec.

Each case edits the baseline cluster (cases.py: 4 x ND H100 v5 in zone 1 of eastus) and must fire, or
stay quiet.
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from azcluster.components.capacity import pool_capacity

from .cases import CRG_ID, DELETE, GB200, GB300, MI300X, NC, assert_fires, assert_quiet, build, case_id, only

H200 = "Standard_ND96isr_H200_v5"
NC_A100 = "Standard_NC96ads_A100_v4"

FIRES = [
    ("AZC100", {"pools.0.capacity": {"stand_in_sizes": ["Standard_ND96isr_H200_v6"]}}, H200),
    ("AZC101", {"pools.0.capacity": {"stand_in_sizes": [MI300X]}}, "AMD GPUs, not NVIDIA"),
    ("AZC101", {"pools.0.capacity": {"stand_in_sizes": [GB200]}}, "an Arm64 CPU, not x64"),
    ("AZC101", {"pools.0.capacity": {"stand_in_sizes": [GB300]}}, "an Arm64 CPU, not x64"),
    ("AZC102", {"pools.0.capacity": {"stand_in_sizes": [NC]}}, "has no InfiniBand"),
    (
        "AZC103",
        {"location": "westus", "zone": DELETE, "pools.0.capacity": {"zones": ["2", "3"]}},
        "has no availability zones",
    ),
    ("AZC104", {"pools.0.capacity_reservation_group_id": CRG_ID}, "ND-series"),
    (
        "AZC104",
        {"pools.0.size": NC, "pools.0.capacity_reservation_group_id": CRG_ID},
        "NCads H100 v5-series",
    ),
    (
        "AZC104",
        {
            "pools.0.size": NC_A100,
            "pools.0.capacity_reservation_group_id": CRG_ID,
            "pools.0.capacity": {"stand_in_sizes": [NC]},
        },
        "stand-in Standard_NC80adis_H100_v5 is NCads H100 v5-series",
    ),
    ("AZC104", {"pools.0.capacity": {"reservation": {"create": True}}}, "ND-series"),
    ("AZC104", {"pools.0.capacity": {"reservation": {"group_id": CRG_ID}}}, "ND-series"),
    (
        "AZC104",
        {
            "pools.0.size": NC_A100,
            "pools.0.capacity": {"reservation": {"create": True}, "stand_in_sizes": [NC]},
        },
        "remove capacity.reservation from the pool",
    ),
    ("AZC105", {"pools.0.capacity": {"stand_in_sizes": [H200]}}, "standardNDISRH200V5Family"),
    ("AZC106", {"pools.0.capacity": {"min_nodes": 4}}, "min_nodes 4"),
    ("AZC107", {"pools.0.capacity": {"zones": ["1", "3"]}}, "would run without Lustre"),
    ("AZC108", {"pools.0.capacity": {"island_zones": {"0": "2"}}}, "does not list (1)"),
    ("AZC108", {"pools.0.capacity": {"zones": ["1", "2"], "island_zones": {"1": "2"}}}, "no island 1"),
    ("AZC160", {"pools.0.capacity": {"island_stand_ins": {"0": H200}}}, "does not list (none)"),
    (
        "AZC160",
        {"pools.0.capacity": {"stand_in_sizes": [H200], "island_stand_ins": {"1": H200}}},
        "no island 1 to build",
    ),
    (
        "AZC161",
        {"pools.0.size": NC_A100, "pools.0.capacity_reservation_group_id": CRG_ID},
        "capacity: {reservation: {group_id:",
    ),
    (
        "AZC109",
        {"pools.0.size": NC_A100, "pools.0.capacity": {"reservation": {"create": True, "zones": ["2"]}}},
        "built in zone 1",
    ),
    (
        "AZC109",
        {
            "pools.0.size": NC_A100,
            "pools.0.capacity": {"reservation": {"group_id": CRG_ID, "zones": ["1", "3"]}},
        },
        "reservation is in zone 1, 3",
    ),
    (
        "AZC109",
        {
            "pools.0.size": NC_A100,
            "pools.0.capacity": {"zones": ["2", "1"], "reservation": {"group_id": CRG_ID, "zones": ["1"]}},
        },
        "built in zone 2",
    ),
    (
        "AZC109",
        {
            "location": "westus",
            "zone": DELETE,
            "storage.lustre": DELETE,
            "pools.0.size": NC_A100,
            "pools.0.capacity": {"reservation": {"create": True, "zones": ["1"]}},
        },
        "regional scale set cannot use a zonal reservation",
    ),
]

QUIET = [
    ("AZC100", {"pools.0.capacity": {"stand_in_sizes": [H200]}}),
    ("AZC101", {"pools.0.capacity": {"stand_in_sizes": [H200]}}),
    ("AZC101", {"pools.0.size": MI300X, "pools.0.capacity": {"stand_in_sizes": [MI300X]}}),
    ("AZC102", {"pools.0.capacity": {"stand_in_sizes": [H200]}}),
    ("AZC102", {"pools.0.size": NC_A100, "pools.0.capacity": {"stand_in_sizes": [NC]}}),
    ("AZC103", {"pools.0.capacity": {"zones": ["2", "3"]}}),
    ("AZC104", {"pools.0.size": NC_A100, "pools.0.capacity_reservation_group_id": CRG_ID}),
    ("AZC104", {"pools.0.capacity": {"stand_in_sizes": [H200]}}),
    ("AZC104", {"pools.0.size": NC_A100, "pools.0.capacity": {"reservation": {"create": True}}}),
    ("AZC105", {"pools.0.capacity": {"zones": ["2"]}}),
    ("AZC106", {"pools.0.capacity": {"min_nodes": 3}}),
    ("AZC106", {"pools.0.nodes": 150, "pools.0.capacity": {"min_nodes": 60}}),
    ("AZC107", {"pools.0.capacity": {"zones": ["1"]}}),
    ("AZC107", {"storage.lustre": DELETE, "pools.0.capacity": {"zones": ["1", "3"]}}),
    ("AZC108", {"pools.0.capacity": {"zones": ["1", "3"], "island_zones": {"0": "3"}}}),
    ("AZC160", {"pools.0.capacity": {"stand_in_sizes": [H200], "island_stand_ins": {"0": H200.lower()}}}),
    ("AZC161", {"pools.0.size": NC_A100, "pools.0.capacity": {"reservation": {"group_id": CRG_ID}}}),
    ("AZC109", {"pools.0.size": NC_A100, "pools.0.capacity": {"reservation": {"create": True}}}),
    (
        "AZC109",
        {"pools.0.size": NC_A100, "pools.0.capacity": {"reservation": {"create": True, "zones": ["1"]}}},
    ),
    (
        "AZC109",
        {
            "pools.0.size": NC_A100,
            "pools.0.capacity": {
                "zones": ["1", "2"],
                "island_zones": {"0": "2"},
                "reservation": {"group_id": CRG_ID, "zones": ["2"]},
            },
        },
    ),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


def test_reservation_refusal_says_why_and_where_from() -> None:
    finding = only(build({"pools.0.capacity_reservation_group_id": CRG_ID}), "AZC104")
    assert finding.path == "azcluster:cluster.pools[0].capacity_reservation_group_id"
    assert "capacity-reservation-overview" in finding.message
    assert "capacity:" in finding.hint


def test_stand_in_finding_points_at_the_stand_in() -> None:
    spec = build({"pools.0.capacity": {"stand_in_sizes": [H200, MI300X]}})
    finding = only(spec, "AZC101")
    assert finding.path == "azcluster:cluster.pools[0].capacity.stand_in_sizes[1]"


def test_stand_in_price_is_the_catalogues() -> None:
    finding = only(build({"pools.0.capacity": {"stand_in_sizes": [H200]}}), "AZC105")
    # H200 is listed below H100 in the catalogue: the message says by how much, per node and hour.
    assert "$84.80/hour per node ($13.52/hour per node less than Standard_ND96isr_H100_v5)" in finding.message
    assert "384 vCPUs for an island of 4 nodes" in finding.message


# --- the policy's shape and defaults -------------------------------------------------------------------


def test_defaults_suit_a_first_user() -> None:
    spec = build()
    policy = pool_capacity(spec, spec.pools[0])
    assert policy.zones == ("1",)  # the cluster's zone, nothing else
    assert [size.name for size in policy.sizes] == ["Standard_ND96isr_H100_v5"]  # no stand-in
    assert policy.whole_islands_only and policy.smallest == (4,)
    assert policy.wait_minutes == 0


def test_policy_resolves_zones_sizes_and_minimums() -> None:
    spec = build(
        {
            "pools.0.nodes": 256,
            "pools.0.island_max_nodes": 256,
            "pools.0.capacity": {"zones": ["2", "1"], "stand_in_sizes": [H200], "min_fraction": 0.75},
        }
    )
    policy = pool_capacity(spec, spec.pools[0])
    assert policy.zones == ("2", "1")
    assert policy.cross_zone("2") and not policy.cross_zone("1")
    stand_in = policy.sizes[1]
    assert (stand_in.name, stand_in.stand_in, stand_in.quota_family) == (
        H200,
        True,
        "standardNDISRH200V5Family",
    )
    assert stand_in.usd_per_hour == 84.80
    assert policy.smallest == (192,)  # ceil(0.75 * 256)
    assert policy.minimum_text() == "keep 192 of 256 or more"


def test_min_nodes_caps_at_the_island() -> None:
    spec = build({"pools.0.nodes": 150, "pools.0.capacity": {"min_nodes": 60}})
    assert pool_capacity(spec, spec.pools[0]).smallest == (60, 60)
    small = build({"pools.0.nodes": 2, "pools.0.capacity": {"min_fraction": 0.1}})
    assert pool_capacity(small, small.pools[0]).smallest == (1,)


@pytest.mark.parametrize(
    ("capacity", "says"),
    [
        ({"min_nodes": 2, "min_fraction": 0.5}, "not both"),
        ({"zones": ["1", "1"]}, "listed twice"),
        ({"zones": ["4"]}, "pattern"),
        ({"stand_in_sizes": [H200, H200.lower()]}, "listed twice"),
        ({"min_fraction": 0}, "greater than 0"),
        ({"min_fraction": 1.5}, "less than or equal to 1"),
        ({"min_nodes": 0}, "greater than or equal to 1"),
        ({"wait_minutes": -1}, "greater than or equal to 0"),
        ({"wait_minutes": True}, "must be a number"),
        ({"retries": 3}, "Extra inputs"),
        ({"island_zones": {"first": "2"}}, "not an island index"),
        ({"island_zones": {"0": "4"}}, "is not '1', '2' or '3'"),
    ],
)
def test_bad_policies_are_shape_errors(capacity: dict[str, Any], says: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        build({"pools.0.capacity": capacity})
    assert says in str(caught.value)
    assert all(error["loc"][:3] == ("pools", 0, "capacity") for error in caught.value.errors())


# --- capacity reservations: the two forms ---------------------------------------------------------------


def test_reservation_finding_points_at_the_form_used() -> None:
    created = only(build({"pools.0.capacity": {"reservation": {"create": True}}}), "AZC104")
    assert created.path == "azcluster:cluster.pools[0].capacity.reservation"
    given = only(build({"pools.0.capacity": {"reservation": {"group_id": CRG_ID}}}), "AZC104")
    assert given.path == "azcluster:cluster.pools[0].capacity.reservation.group_id"


@pytest.mark.parametrize(
    "reservation",
    [{}, {"create": False}, {"create": True, "group_id": CRG_ID}, {"zones": ["1"]}],
    ids=["empty", "create-false", "both", "zones-only"],
)
def test_a_reservation_is_an_existing_group_or_one_to_create(reservation: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError, match="exactly one"):
        build({"pools.0.capacity": {"reservation": reservation}})


def test_the_pool_level_id_and_the_policys_reservation_are_not_both_given() -> None:
    with pytest.raises(pydantic.ValidationError, match="not both"):
        build(
            {
                "pools.0.capacity_reservation_group_id": CRG_ID,
                "pools.0.capacity": {"reservation": {"create": True}},
            }
        )


def test_no_reservation_by_default() -> None:
    pool = build().pools[0]
    assert pool.capacity.reservation is None and not pool.uses_reservation
    assert pool.reservation_group_id is None
