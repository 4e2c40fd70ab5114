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
