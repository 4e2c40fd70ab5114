"""`preflight` on each pool's capacity policy, through the real client against the ARM fake: whether the
zones a pool may move to offer its size, and whether a stand-in is offered and has quota for a whole
island (its cost and quota known before it is ever needed)."""

from __future__ import annotations

import copy

from azcluster.components.spec import ClusterSpec
from azcluster.preflight import run_preflight

H100 = "Standard_ND96isr_H100_v5"
H200 = "Standard_ND96isr_H200_v5"
A100 = "Standard_ND96asr_v4"


def spec(**capacity) -> ClusterSpec:
    pool = {"name": "gpu", "size": H100, "nodes": 2, "capacity": capacity}
    return ClusterSpec.model_validate({"name": "demo", "location": "eastus", "zone": "1", "pools": [pool]})


def offer_h200(arm, free_vcpus: int) -> None:
    """H200 offered in eastus zones 1-3 with its own quota family (as Azure lists it: skus, usages)."""
    h100 = next(s for s in arm.fake.skus if s["name"] == H100 and s["locations"] == ["eastus"])
    h200 = copy.deepcopy(h100)
    h200.update(name=H200, family="standardNDISRH200V5Family", restrictions=[])
    arm.fake.skus.append(h200)
    arm.fake.usages["eastus"].append(
        {
            "name": {"value": "standardNDISRH200V5Family", "localizedValue": "NDISR H200 v5"},
            "currentValue": 0,
            "limit": free_vcpus,
            "unit": "Count",
        }
    )


def test_a_stand_in_with_room_for_a_whole_island_is_ready_with_its_price(arm):
    offer_h200(arm, free_vcpus=192)
    result = run_preflight(spec(stand_in_sizes=[H200]), arm.context(), "demo")
    [ready] = result.stand_ins
    assert ready.ok and ready.offered
    assert (ready.quota_family, ready.island_vcpus, ready.free_vcpus) == (
        "standardNDISRH200V5Family",
        192,
        192,
    )
    assert ready.usd_per_hour == 84.80
    assert result.to_json()["stand_ins"][0]["ok"] is True


def test_a_stand_in_without_quota_for_an_island_is_not_ready(arm):
    offer_h200(arm, free_vcpus=96)
    [item] = run_preflight(spec(stand_in_sizes=[H200]), arm.context(), "demo").stand_ins
    assert not item.ok and item.offered and (item.island_vcpus, item.free_vcpus) == (192, 96)


def test_a_restricted_stand_in_is_not_ready_and_never_blocks_up(arm):
    result = run_preflight(spec(stand_in_sizes=[A100]), arm.context(), "demo")
    [item] = result.stand_ins
    assert not item.ok and "restricted for this subscription in eastus" in item.detail
    assert not any("A100" in blocker.message or "asr" in blocker.message for blocker in result.blockers)


def test_zones_a_pool_may_move_to_say_whether_they_offer_its_size(arm):
    h100 = next(s for s in arm.fake.skus if s["name"] == H100 and s["locations"] == ["eastus"])
    h100["locationInfo"][0]["zones"] = ["1", "3"]  # and the fixture restricts zone 3 for this subscription
    result = run_preflight(spec(zones=["1", "2", "3"]), arm.context(), "demo")
    [zones] = result.capacity_zones
    assert zones.zones == {"1": "offered", "2": "not offered", "3": "restricted"}
    assert result.to_json()["capacity_zones"][0]["pool"] == "gpu"


def test_a_pool_without_a_policy_adds_nothing(arm):
    result = run_preflight(spec(), arm.context(), "demo")
    assert result.stand_ins == [] and result.capacity_zones == []


NC_A100 = "Standard_NC96ads_A100_v4"
CRG = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/held-rg/providers/Microsoft.Compute/"
    "capacityReservationGroups/held"
)


def reserved_spec(nodes: int, **pool) -> ClusterSpec:
    body = {"name": "gpu", "size": NC_A100, "nodes": nodes, **pool}
    return ClusterSpec.model_validate({"name": "demo", "location": "eastus", "zone": "1", "pools": [body]})


def offer_nc_a100(arm, free_vcpus: int) -> None:
    """NC A100 v4 offered in eastus zones 1-3, family StandardNCADSA100v4Family with `free_vcpus` free."""
    nc = next(s for s in arm.fake.skus if s["name"] == "Standard_NC80adis_H100_v5")
    a100 = copy.deepcopy(nc)
    a100.update(name=NC_A100, family="StandardNCADSA100v4Family", restrictions=[])
    a100["locationInfo"][0]["zones"] = ["1", "2", "3"]
    a100["capabilities"] = [
        {"name": "vCPUs", "value": "96"} if c["name"] == "vCPUs" else c for c in a100["capabilities"]
    ]
    arm.fake.skus.append(a100)
    arm.fake.usages["eastus"].append(
        {
            "name": {"value": "StandardNCADSA100v4Family", "localizedValue": "NCADS A100 v4"},
            "currentValue": 0,
            "limit": free_vcpus,
            "unit": "Count",
        }
    )


def a100_quota(result):
    return next(line for line in result.quota if line.name.lower() == "standardncadsa100v4family")


def reservation_check(result):
    [pool] = [p for p in result.pools if p.pool == "gpu"]
    return next(c for c in pool.checks if c.name == "capacity reservation"), pool


def test_a_reservation_holding_every_node_needs_no_more_quota(arm):
    offer_nc_a100(arm, free_vcpus=0)  # the reservation already took the quota
    arm.fake.add_reservation("held-rg", "held", "a100", NC_A100, 4, zones=["1"])
    result = run_preflight(
        reserved_spec(4, capacity={"reservation": {"group_id": CRG, "zones": ["1"]}}), arm.context(), "demo"
    )
    check, _ = reservation_check(result)
    assert check.ok and (check.needed, check.limit) == (4, 4)
    family = a100_quota(result)
    assert family.needed == 0 and family.ok
    assert result.ok, [b.message for b in result.blockers]


def test_a_reservation_smaller_than_the_pool_says_what_the_rest_needs_and_how_to_raise_it(arm):
    offer_nc_a100(arm, free_vcpus=96)
    arm.fake.add_reservation("held-rg", "held", "a100", NC_A100, 2, zones=["1"])
    result = run_preflight(reserved_spec(4, capacity_reservation_group_id=CRG), arm.context(), "demo")
    check, _ = reservation_check(result)
    assert not check.ok and not check.to_json()["blocking"] and (check.needed, check.limit) == (4, 2)
    assert "2 are allocated beyond the reservation without its capacity guarantee" in check.detail
    assert "-CapacityToReserve 4" in check.detail and "-ReservationGroupName held" in check.detail
    family = a100_quota(result)
    # only the 2 unreserved nodes count against the family: 192 vCPUs, 96 free -> blocked, with the numbers
    assert (family.needed, family.available, family.request_limit) == (192, 96, 192)
    assert any("StandardNCADSA100v4Family" in b.message for b in result.blockers)


def test_a_group_without_the_pools_size_in_its_zone_blocks_with_what_it_holds(arm):
    offer_nc_a100(arm, free_vcpus=10_000)
    arm.fake.add_reservation("held-rg", "held", "a100", NC_A100, 4, zones=["2"])
    result = run_preflight(
        reserved_spec(4, capacity={"reservation": {"group_id": CRG, "zones": ["1"]}}), arm.context(), "demo"
    )
    check, _ = reservation_check(result)
    assert not check.ok and check.to_json()["blocking"]
    assert f"reserves no {NC_A100} in zone 1" in check.detail
    assert f"it holds {NC_A100} x 4 zone 2" in check.detail
    assert not result.ok


def test_a_group_azure_does_not_have_blocks_naming_the_yaml_path(arm):
    offer_nc_a100(arm, free_vcpus=10_000)
    result = run_preflight(
        reserved_spec(4, capacity={"reservation": {"group_id": CRG}}), arm.context(), "demo"
    )
    check, _ = reservation_check(result)
    assert not check.ok and "pools[0].capacity.reservation.group_id" in check.detail
    assert "no capacity reservation group held in resource group held-rg" in check.detail


def test_a_reservation_azcluster_creates_counts_every_node_against_the_quota(arm):
    offer_nc_a100(arm, free_vcpus=192)
    result = run_preflight(
        reserved_spec(4, capacity={"reservation": {"create": True}}), arm.context(), "demo"
    )
    check, _ = reservation_check(result)
    assert check.ok and "reserves all 4 or none" in check.detail
    family = a100_quota(result)
    assert (family.needed, family.available) == (384, 192) and not result.ok


def test_an_island_on_a_stand_in_is_checked_and_counted_as_that_size(arm):
    offer_h200(arm, free_vcpus=192)
    stand_in = {"stand_in_sizes": [H200], "island_stand_ins": {"1": H200}}
    pool = {"name": "gpu", "size": H100, "nodes": 4, "island_max_nodes": 2, "capacity": stand_in}
    result = run_preflight(
        ClusterSpec.model_validate({"name": "demo", "location": "eastus", "zone": "1", "pools": [pool]}),
        arm.context(),
        "demo",
    )
    reports = {(r.pool, r.size): r.nodes for r in result.pools if r.role == "compute"}
    assert reports == {("gpu", H100): 2, ("gpu (stand-in)", H200): 2}
    h200 = next(line for line in result.quota if line.name == "standardNDISRH200V5Family")
    assert (h200.needed, h200.available, h200.ok) == (192, 192, True)
