"""Capacity reservations under Pulumi mocks: a group azcluster creates (group, one reservation for the
pool's size and node count, the scale set allocating from it and waiting for it) or an existing group
referenced by id (components/gpu_pool.py; property names as pulumi-azure-native 3.x registers them)."""

from __future__ import annotations

from azcluster import mockrun as harness
from azcluster.components.gpu_pool import GpuPool
from tests.components.test_gpu_pool import CRG, make_args

NC_A100 = "Standard_NC96ads_A100_v4"
GROUP = "azure-native:compute:CapacityReservationGroup"
RESERVATION = "azure-native:compute:CapacityReservation"
SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"


def build(args) -> harness.Capture:
    return harness.run(lambda: GpuPool(f"{args.cluster_name}-{args.pool.name}", args).scale_set_names)


def created(nodes: int = 3, zone: str | None = "1", **capacity) -> harness.Capture:
    args = make_args(NC_A100, nodes, capacity={"reservation": {"create": True}, **capacity})
    args.zone = zone
    return build(args)


def test_a_created_reservation_holds_the_pools_size_and_count_in_its_zone():
    capture = created(3)
    group, reservation = capture.one(GROUP), capture.one(RESERVATION)
    assert group.inputs["capacityReservationGroupName"] == "c1-gpu-crg"
    assert group.inputs["location"] == "eastus" and group.inputs["zones"] == ["1"]
    assert reservation.inputs["sku"] == {"name": NC_A100, "capacity": 3}
    assert reservation.inputs["zones"] == ["1"]
    assert reservation.inputs["capacityReservationGroupName"] == "c1-gpu-crg"
    assert reservation.inputs["resourceGroupName"] == group.inputs["resourceGroupName"] == "c1-rg"


def test_the_scale_set_allocates_from_the_created_group_and_waits_for_the_reservation():
    capture = created(3)
    group, reservation, vmss = capture.one(GROUP), capture.one(RESERVATION), capture.one(SCALE_SET)
    profile = vmss.inputs["virtualMachineProfile"]
    assert profile["capacityReservation"] == {"capacityReservationGroup": {"id": group.outputs["id"]}}
    assert group.outputs["id"].endswith("/providers/Microsoft.Compute/capacityReservationGroups/c1-gpu-crg")
    assert capture.depends_on(vmss, reservation) and capture.depends_on(vmss, group)
    assert capture.depends_on(reservation, group)
    # What Azure requires of a Uniform set with a reservation: no single placement group.
    assert vmss.inputs["singlePlacementGroup"] is False and vmss.inputs["orchestrationMode"] == "Uniform"
    assert vmss.inputs["zones"] == reservation.inputs["zones"]


def test_the_reservation_holds_no_data_so_down_deletes_it():
    capture = created(2)
    for resource in (capture.one(GROUP), capture.one(RESERVATION)):
        assert not resource.protect and not resource.retain_on_delete


def test_the_group_spans_the_zones_the_policy_may_move_the_island_to_and_reserves_where_it_is():
    capture = created(2, zones=["2", "1"])
    assert capture.one(GROUP).inputs["zones"] == ["2", "1"]
    assert capture.one(RESERVATION).inputs["zones"] == ["2"]
    assert capture.one(SCALE_SET).inputs["zones"] == ["2"]


def test_a_regional_pool_gets_a_regional_group_and_reservation():
    capture = created(2, zone=None)
    assert "zones" not in capture.one(GROUP).inputs
    assert "zones" not in capture.one(RESERVATION).inputs


def test_an_existing_group_is_referenced_and_nothing_is_created():
    args = make_args(NC_A100, 2, capacity={"reservation": {"group_id": CRG}})
    capture = build(args)
    assert not capture.of_type(GROUP) and not capture.of_type(RESERVATION)
    profile = capture.one(SCALE_SET).inputs["virtualMachineProfile"]
    assert profile["capacityReservation"] == {"capacityReservationGroup": {"id": CRG}}


def test_without_a_reservation_nothing_is_reserved():
    capture = build(make_args(NC_A100, 2))
    assert not capture.of_type(GROUP) and not capture.of_type(RESERVATION)
    assert "capacityReservation" not in capture.one(SCALE_SET).inputs["virtualMachineProfile"]
