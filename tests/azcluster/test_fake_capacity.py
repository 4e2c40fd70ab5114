"""The ARM fake's capacity model (tests/fakes/capacity.py), driven through the real azure-mgmt-compute
client: partial placement inside a scale set, a zone that refuses, deleting failed instances, throttling.

These pin down the Azure behaviour the capacity code depends on, so that code's tests stand on it.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from azcluster import azure

H100 = "Standard_ND96isr_H100_v5"
RG = "cap-rg"


@pytest.fixture
def client(arm):
    return azure.compute_client(arm.context())


def empty_island(arm, name: str = "cap-gpu-ib0", zone: str = "1"):
    scale_set = arm.fake.add_scale_set(RG, name, H100, 0, computer_prefix="gpu0")
    scale_set.zones = [zone]
    return scale_set


def grow(client, name: str, capacity: int) -> None:
    client.virtual_machine_scale_sets.begin_update(RG, name, {"sku": {"capacity": capacity}}).result()


def instances(arm, name: str) -> list[dict]:
    client = azure.compute_client(arm.context())
    group = f"/subscriptions/{arm.fake.subscription_id}/resourceGroups/{RG}"
    path = f"{group}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}/virtualMachines"
    return list(azure.arm_get_pages(client, path, azure.COMPUTE_API_VERSION, {"$expand": "instanceView"}))


def test_a_scale_out_azure_can_only_partly_place_keeps_both_kinds_of_instance(arm, client):
    empty_island(arm)
    arm.fake.capacity.limit(H100, "1", 200)
    with pytest.raises(HttpResponseError) as caught:
        grow(client, "cap-gpu-ib0", 256)
    assert caught.value.error is not None and caught.value.error.code == "AllocationFailed"
    assert "sufficient capacity for the requested VM size in this region" in str(caught.value)
    vms = instances(arm, "cap-gpu-ib0")
    states = [vm["properties"]["provisioningState"] for vm in vms]
    assert states.count("Succeeded") == 200 and states.count("Failed") == 56
    failed = next(vm for vm in vms if vm["properties"]["provisioningState"] == "Failed")
    [status] = failed["properties"]["instanceView"]["statuses"]
    assert status["code"] == "ProvisioningState/failed/AllocationFailed" and status["level"] == "Error"
    vmss = client.virtual_machine_scale_sets.get(RG, "cap-gpu-ib0")
    assert vmss.sku.capacity == 256 and vmss.provisioning_state == "Failed"


def test_deleting_the_failed_instances_lowers_the_capacity_and_frees_nothing(arm, client):
    empty_island(arm)
    arm.fake.capacity.limit(H100, "1", 3)
    with pytest.raises(HttpResponseError):
        grow(client, "cap-gpu-ib0", 5)
    failed = [
        vm["instanceId"]
        for vm in instances(arm, "cap-gpu-ib0")
        if vm["properties"]["provisioningState"] == "Failed"
    ]
    assert failed == ["3", "4"]
    client.virtual_machine_scale_sets.begin_delete_instances(
        RG, "cap-gpu-ib0", {"instanceIds": failed}
    ).result()
    assert client.virtual_machine_scale_sets.get(RG, "cap-gpu-ib0").sku.capacity == 3
    # Failed instances held no host: nothing came free, so another scale-out still gets nothing.
    with pytest.raises(HttpResponseError):
        grow(client, "cap-gpu-ib0", 4)
    # New instances keep counting up, as Azure's ids do.
    assert [vm["instanceId"] for vm in instances(arm, "cap-gpu-ib0")] == ["0", "1", "2", "5"]


def test_a_zone_that_refuses_places_nothing_while_another_zone_places_all(arm, client):
    empty_island(arm, "cap-gpu-ib0", zone="2")
    empty_island(arm, "cap-gpu-ib1", zone="3")
    arm.fake.capacity.refuse(H100, "2", "ZonalAllocationFailed")
    with pytest.raises(HttpResponseError) as caught:
        grow(client, "cap-gpu-ib0", 4)
    assert caught.value.error.code == "ZonalAllocationFailed" and "in this zone" in str(caught.value)
    assert {vm["properties"]["provisioningState"] for vm in instances(arm, "cap-gpu-ib0")} == {"Failed"}
    grow(client, "cap-gpu-ib1", 4)
    assert {vm["properties"]["provisioningState"] for vm in instances(arm, "cap-gpu-ib1")} == {"Succeeded"}


def test_sku_not_available_names_the_size_location_and_zone(arm, client):
    empty_island(arm, zone="3")
    arm.fake.capacity.refuse(H100, "3", "SkuNotAvailable")
    with pytest.raises(HttpResponseError) as caught:
        grow(client, "cap-gpu-ib0", 2)
    assert caught.value.error.code == "SkuNotAvailable"
    assert "is currently not available in location 'eastus' zones '3'" in str(caught.value)


def test_capacity_that_appears_later_fills_the_gap(arm, client):
    empty_island(arm)
    arm.fake.capacity.limit(H100, "1", 2)
    with pytest.raises(HttpResponseError):
        grow(client, "cap-gpu-ib0", 4)
    arm.fake.capacity.add(H100, "1", 2)
    failed = [
        vm["instanceId"]
        for vm in instances(arm, "cap-gpu-ib0")
        if vm["properties"]["provisioningState"] == "Failed"
    ]
    client.virtual_machine_scale_sets.begin_delete_instances(
        RG, "cap-gpu-ib0", {"instanceIds": failed}
    ).result()
    grow(client, "cap-gpu-ib0", 4)
    assert arm.fake.capacity.asked == [(H100, "1", 4, 2), (H100, "1", 2, 2)]


def test_a_throttled_scale_out_is_sent_again_after_the_wait_azure_asks_for(arm, client):
    """azure-core's retry policy retries any method answered with Retry-After (RetryPolicy.is_retry), so
    a throttled PATCH is sent again by the client itself; the fake answers as Resource Manager does."""
    empty_island(arm)
    arm.fake.inject(
        "PATCH", "/virtualMachineScaleSets/cap-gpu-ib0", 429, headers={"Retry-After": "0"}, times=2
    )
    grow(client, "cap-gpu-ib0", 2)
    patches = arm.fake.calls("PATCH", "/virtualMachineScaleSets/cap-gpu-ib0")
    assert len(patches) == 3
    assert client.virtual_machine_scale_sets.get(RG, "cap-gpu-ib0").sku.capacity == 2
    assert arm.fake.capacity.asked == [(H100, "1", 2, 2)]  # the two throttled tries placed nothing
