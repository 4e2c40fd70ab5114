"""placement: one availability zone for the whole cluster, or none where the region has no zones."""

from __future__ import annotations

import pytest

from azcluster.components import catalog
from azcluster.components.placement import DEFAULT_ZONE, cluster_zone, lustre_zones, zones_for
from azcluster.components.spec import parse_cluster


def spec(location="eastus", lustre=True, **cluster):
    pools = [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 2}]
    data = {"name": "t", "pools": pools, **cluster}
    if lustre:
        data["storage"] = {"lustre": {}}
    return parse_cluster({"azcluster:cluster": data, "azure-native:location": location})


@pytest.mark.parametrize("region", ["westus", "northcentralus", "westcentralus", "australiacentral2"])
def test_the_catalogue_marks_regions_without_zones(region):
    assert catalog.regions()[region].zones is False


@pytest.mark.parametrize("region", ["eastus", "westus3", "swedencentral", "austriaeast", "belgiumcentral"])
def test_the_catalogue_marks_zonal_regions(region):
    assert catalog.regions()[region].zones is True


def test_lustre_in_a_zonal_region_without_zone_gets_the_default_zone_chosen():
    placement = cluster_zone(spec())
    assert (placement.zone, placement.chosen) == (DEFAULT_ZONE, True)


def test_a_spec_zone_wins_and_is_not_marked_chosen():
    placement = cluster_zone(spec(zone="3"))
    assert (placement.zone, placement.chosen) == ("3", False)


def test_no_lustre_and_no_zone_is_regional():
    assert cluster_zone(spec(lustre=False)).zone is None


def test_a_region_without_zones_never_gets_one_not_even_from_the_spec():
    assert cluster_zone(spec("northcentralus")).zone is None
    assert cluster_zone(spec("westus", zone="1")).zone is None  # AZC002 reports the spec's zone
    assert zones_for("westus", "1") is None and lustre_zones("northcentralus", None) is None


def test_zonal_inputs():
    assert zones_for("eastus", "2") == ["2"] and zones_for("eastus", None) is None
    assert lustre_zones("eastus", None) == [DEFAULT_ZONE] and lustre_zones("East US", "3") == ["3"]
