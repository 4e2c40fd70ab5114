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
