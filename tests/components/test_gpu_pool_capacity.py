"""An island's node count belongs to azcluster once the island exists: Pulumi creates each scale set
asking for the whole island and ignores `sku.capacity` afterwards (components/gpu_pool.py)."""

from __future__ import annotations

from azcluster.components.gpu_pool import CAPACITY_PROPERTY
from tests.components.test_gpu_pool import H100, NC_H100, build, make_args


def test_every_island_asks_for_its_nodes_and_ignores_later_changes_to_the_count():
    _, sets = build(make_args(H100, 250))
    assert [vmss.inputs["sku"]["capacity"] for vmss in sets] == [84, 83, 83]
    for vmss in sets:
        assert vmss.ignore_changes == [CAPACITY_PROPERTY] == ["sku.capacity"]


def test_only_the_count_is_ignored_so_every_other_change_still_deploys():
    _, [vmss] = build(make_args(NC_H100, 2))
    assert vmss.ignore_changes == ["sku.capacity"]  # not sku.name, zones, image or tags


def test_an_island_is_built_whole_in_the_zone_the_policy_placed_it():
    args = make_args(
        H100, 200, island_max_nodes=100, capacity={"zones": ["1", "3"], "island_zones": {"1": "3"}}
    )
    args.zone = "1"
    _, sets = build(args)
    assert [vmss.inputs["zones"] for vmss in sets] == [["1"], ["3"]]


def test_the_first_zone_the_policy_lists_is_where_islands_start():
    args = make_args(H100, 4, capacity={"zones": ["2", "1"]})
    args.zone = "1"
    _, [vmss] = build(args)
    assert vmss.inputs["zones"] == ["2"]


def test_moving_an_island_replaces_its_scale_set_deleting_first():
    """zones cannot change in place, nor (without reimaging running nodes) the size, and the new set keeps
    the island's Azure name: delete, then create."""
    _, [vmss] = build(make_args(H100, 4))
    assert vmss.replace_on_changes == ["zones", "sku.name"]
    assert vmss.delete_before_replace is True


H200 = "Standard_ND96isr_H200_v5"


def test_an_island_on_a_stand_in_is_built_as_that_size_and_the_others_as_the_pools():
    args = make_args(
        H100,
        200,
        island_max_nodes=100,
        capacity={"stand_in_sizes": [H200], "island_stand_ins": {"1": H200}},
    )
    _, sets = build(args)
    assert [vmss.inputs["sku"]["name"] for vmss in sets] == [H100, H200]
    assert [vmss.inputs["sku"]["capacity"] for vmss in sets] == [100, 100]
    # the same InfiniBand island settings and naming as the pool's own islands
    assert sets[1].inputs["singlePlacementGroup"] is True
    assert sets[1].inputs["vmScaleSetName"].endswith("-ib1")
