"""capacity_up.azure_readiness, asked about many (size, zone) pairs while `up` or `grow` waits: the quota is
read afresh each time (a raise granted while waiting counts), the region's SKU list once per command."""

from __future__ import annotations

from azcluster import capacity_up
from tests.azcluster.test_preflight_capacity import H200, offer_h200, spec


def test_quota_is_read_each_time_and_the_sku_list_once(arm) -> None:
    offer_h200(arm, free_vcpus=96)  # one node's worth: an island of 2 needs 192
    ready = capacity_up.azure_readiness(spec(stand_in_sizes=[H200]), arm.context())
    skus = "/providers/Microsoft.Compute/skus"
    assert "96 vCPUs free, 192 needed" in ready(H200, "1", 2)
    listed = len(arm.fake.calls("GET", skus))  # its pages (the fake pages it as Azure does)
    assert ready(H200, "2", 1) is None
    family = next(u for u in arm.fake.usages["eastus"] if u["name"]["value"] == "standardNDISRH200V5Family")
    family["limit"] = 192  # the raise is granted while azcluster waits
    assert ready(H200, "1", 2) is None
    assert "is not offered in eastus" in ready("Standard_Nope_v9", "1", 2)
    assert len(arm.fake.calls("GET", skus)) == listed
    assert len(arm.fake.calls("GET", "/providers/Microsoft.Compute/locations/eastus/usages")) == 3
