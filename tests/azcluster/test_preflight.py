"""`preflight` through the real ComputeManagementClient against the loopback Resource Manager fake."""

from __future__ import annotations

from typing import Any

from azcluster.components.spec import ClusterSpec
from azcluster.preflight import run_preflight

H100 = "Standard_ND96isr_H100_v5"
A100 = "Standard_ND96asr_v4"


def spec(nodes: int = 2, size: str = H100, **extra: Any) -> ClusterSpec:
    pool = {"name": "gpu", "size": size, "nodes": nodes}
    pool.update(extra.pop("pool", {}))
    return ClusterSpec.model_validate({"name": "demo", "location": "eastus", "pools": [pool], **extra})


def checks(result, pool: str = "gpu") -> dict[str, Any]:
    report = next(p for p in result.pools if p.pool == pool)
    return {check.name: check for check in report.checks}


def quota(result, kind: str, name: str | None = None):
    return next(q for q in result.quota if q.kind == kind and (name is None or q.name == name))


def test_fits_with_figures_per_family_region_and_login(arm) -> None:
    result = run_preflight(spec(2), arm.context(), "demo")
    assert result.ok, [b.message for b in result.blockers]
    family = quota(result, "family", "standardNDSH100v5Family")
    assert (family.needed, family.limit, family.in_use, family.available) == (192, 192, 0, 192)
    login = quota(result, "family", "standardDSv5Family")
    assert (login.needed, login.pools) == (4, ["login"])
    regional = quota(result, "regional")
    assert (regional.name, regional.needed, regional.limit, regional.in_use) == ("cores", 196, 350, 20)
    gpu = checks(result)
    assert gpu["InfiniBand (RdmaEnabled)"].ok and gpu["accelerated networking"].ok and gpu["GPUs"].ok
    assert gpu["quota standardNDSH100v5Family"].needed == 192
    assert not result.alternatives  # nothing blocked, so the all-regions SKU list is never fetched
    assert all("$filter" in call.query for call in arm.fake.calls("GET", "/skus"))


def test_json_document_shape(arm) -> None:
    doc = run_preflight(spec(3), arm.context(), "demo").to_json()
    assert set(doc) >= {"stack", "location", "ok", "pools", "quota", "blockers", "alternatives"}
    assert doc["stack"] == "demo" and doc["location"] == "eastus" and doc["ok"] is False
    pool = doc["pools"][0]
    assert set(pool) >= {"pool", "size", "checks"}
    for check in pool["checks"]:
        assert set(check) >= {"name", "ok", "detail", "needed", "limit", "in_use"}
    assert {"name", "kind", "needed", "limit", "in_use", "request_limit"} <= set(doc["quota"][0])
    assert {"pool", "check", "message", "hint"} == set(doc["blockers"][0])
    assert {"size", "locations"} == set(doc["alternatives"][0])


def test_quota_short_gives_the_exact_increase_and_other_regions(arm) -> None:
    arm.fake.usage("eastus", "standardNDSH100v5Family")["currentValue"] = 96
    result = run_preflight(spec(3), arm.context(), "demo")
    assert not result.ok
    family = quota(result, "family", "standardNDSH100v5Family")
    assert (family.needed, family.available, family.request_limit) == (288, 96, 384)
    blocker = next(b for b in result.blockers if b.check == "quota standardNDSH100v5Family")
    assert "raised from 192 to 384" in blocker.hint and "eastus" in blocker.hint
    assert not checks(result)["quota standardNDSH100v5Family"].ok
    # alternatives come from the unfiltered SKU list: offered and unrestricted, never eastus or westus3
    assert [c for c in arm.fake.calls("GET", "/skus") if "$filter" not in c.query]
    places = [item["location"] for item in result.alternatives[0].locations]
    assert places == ["southcentralus"]


def test_regional_total_can_block_on_its_own(arm) -> None:
    arm.fake.usage("eastus", "cores")["limit"] = 100
    result = run_preflight(spec(1), arm.context(), "demo")
    assert quota(result, "family", "standardNDSH100v5Family").ok
    regional = quota(result, "regional")
    assert not regional.ok and regional.request_limit == 20 + 96 + 4
    assert [b.check for b in result.blockers] == ["quota cores"]


def test_size_restricted_for_the_subscription(arm) -> None:
    result = run_preflight(spec(2, A100), arm.context(), "demo")
    restricted = checks(result)["not restricted"]
    assert not restricted.ok and "NotAvailableForSubscription" in restricted.detail
    blocker = next(b for b in result.blockers if b.check == "not restricted")
    assert "support" in blocker.hint
    # the usage list spells this family 'Standard NDASv4_A100 Family', the SKU 'standardNDASv4_A100Family'
    family = quota(result, "family")
    assert family.name == "Standard NDASv4_A100 Family" and family.limit == 0
    assert result.alternatives[0].size == A100
    assert result.alternatives[0].locations == [{"location": "westus2", "zones": ["2"]}]


def test_zone_restriction_and_zone_choice(arm) -> None:
    blocked = run_preflight(spec(1, zone="3"), arm.context(), "demo")
    zone = checks(blocked)["zone"]
    assert not zone.ok and "restricted" in zone.detail and "usable zones: 1, 2" in zone.detail
    assert any(b.check == "zone" for b in blocked.blockers)
    # zone-aware alternatives: regions offering zone 3 come first
    assert blocked.alternatives[0].locations[0] == {"location": "southcentralus", "zones": ["1", "3"]}

    fine = run_preflight(spec(1, zone="1"), arm.context(), "demo")
    assert checks(fine)["zone"].ok and fine.ok

    regional = run_preflight(spec(1), arm.context(), "demo")
    assert checks(regional)["zone"].ok and "restricted: 3" in checks(regional)["zone"].detail


def test_size_not_offered_in_the_region(arm) -> None:
    result = run_preflight(spec(1, "Standard_ND96isr_H200_v5"), arm.context(), "demo")
    offered = checks(result)["size offered"]
    assert not offered.ok and "not offered in eastus" in offered.detail
    assert result.alternatives[0].locations == []


def test_spot_pools_count_against_low_priority_cores_only(arm) -> None:
    result = run_preflight(spec(2, pool={"spot": True}), arm.context(), "demo")
    spot = quota(result, "spot")
    assert (spot.name, spot.needed, spot.limit, spot.request_limit) == ("lowPriorityCores", 192, 96, 192)
    assert not any(q.name == "standardNDSH100v5Family" for q in result.quota)
    assert quota(result, "regional").pools == ["login"]
    assert checks(result)["spot capable"].ok
    assert "lowPriorityCores" in next(b.hint for b in result.blockers if b.check == "quota lowPriorityCores")


def test_capabilities_that_do_not_match_the_catalogue(arm) -> None:
    sku = arm.fake.sku(H100, "eastus")
    for cap in sku["capabilities"]:
        if cap["name"] == "RdmaEnabled":
            cap["value"] = "False"
        if cap["name"] == "GPUs":
            cap["value"] = "4"
    result = run_preflight(spec(1), arm.context(), "demo")
    gpu = checks(result)
    assert not gpu["InfiniBand (RdmaEnabled)"].ok and gpu["InfiniBand (RdmaEnabled)"].blocking
    assert not gpu["GPUs"].ok and not gpu["GPUs"].blocking  # a warning, not a blocker
    assert [b.check for b in result.blockers] == ["InfiniBand (RdmaEnabled)"]


def test_vcpus_the_cluster_already_holds_are_not_needed_twice(arm) -> None:
    arm.fake.add_cluster("demo", {"gpu": (H100, [2])}, login=False)
    arm.fake.usage("eastus", "standardNDSH100v5Family")["currentValue"] = 192
    result = run_preflight(spec(2), arm.context(), "demo")
    family = quota(result, "family", "standardNDSH100v5Family")
    assert (family.planned, family.existing, family.needed) == (192, 192, 0)
    assert result.ok
    grown = run_preflight(spec(3), arm.context(), "demo")
    assert quota(grown, "family", "standardNDSH100v5Family").needed == 96
    assert not grown.ok


def test_sku_list_is_paged_and_faults_are_retried(arm) -> None:
    arm.fake.sku_page_size = 2
    # Retry-After 0: retried after the test's short backoff (test_azure proves a real Retry-After is waited)
    arm.fake.inject("GET", "/usages", 429, headers={"Retry-After": "0"})
    arm.fake.inject("GET", "/skus", 500)
    result = run_preflight(spec(2), arm.context(), "demo")
    assert result.ok
    filtered = [c for c in arm.fake.calls("GET", "/skus") if "$filter" in c.query]
    assert len(filtered) == 1 + 3  # one 500, then pages of 2, 2, 1 joined by nextLink
    assert any("$skiptoken" in c.query for c in filtered)


def _hub_scope(subscription: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/hub-rg/providers/Microsoft.Insights/"
        "privateLinkScopes/hub-ampls"
    )


def test_a_hub_private_link_scope_in_another_subscription_blocks_before_up(arm) -> None:
    # The endpoint joins the scope as its child resource, created from the deployment's subscription:
    # a hub scope elsewhere (the usual hub-and-spoke layout) would fail `up` half way.
    other = "99999999-8888-7777-6666-555555555555"
    monitoring = {"enabled": True, "public_network_access": False, "existing_private_link_scope_id": ""}
    result = run_preflight(
        spec(2, monitoring={**monitoring, "existing_private_link_scope_id": _hub_scope(other)}),
        arm.context(),
        "demo",
    )
    [blocker] = [b for b in result.blockers if b.check == "monitoring private link scope"]
    assert other in blocker.message and arm.fake.subscription_id in blocker.message
    assert f"--subscription {other}" in blocker.hint and not result.ok
    same = spec(
        2, monitoring={**monitoring, "existing_private_link_scope_id": _hub_scope(arm.fake.subscription_id)}
    )
    assert run_preflight(same, arm.context(), "demo").ok
    public = spec(2, monitoring={"enabled": True, "existing_private_link_scope_id": _hub_scope(other)})
    assert run_preflight(public, arm.context(), "demo").ok  # a public endpoint never joins the scope
