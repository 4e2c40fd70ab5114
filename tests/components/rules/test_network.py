"""Network rules (AZC020-AZC032, AZC060-AZC061): each case edits the baseline cluster (cases.py) and must
fire, or stay quiet."""

from __future__ import annotations

from typing import Any

import pytest

from .cases import BLOB_ZONE_ID, GUID, VNET_ID, assert_fires, assert_quiet, case_id

FIRES = [
    ("AZC020", {"network.address_space": "10.42.0.0"}, "10.42.0.0"),
    ("AZC020", {"network.address_space": "10.42.0.0/33"}, "/33"),
    ("AZC020", {"network.address_space": "fd00::/8"}, "fd00::/8"),
    ("AZC020", {"network.subnets.compute": "bogus"}, "bogus"),
    ("AZC021", {"network.address_space": "10.42.1.7/16"}, "10.42.0.0/16"),
    ("AZC022", {"network.address_space": "169.254.0.0/16"}, "link-local"),
    ("AZC022", {"network.address_space": "168.63.0.0/16"}, "168.63.129.16"),
    ("AZC022", {"network.address_space": "224.1.0.0/16"}, "multicast"),
    ("AZC023", {"network.address_space": "100.64.0.0/16"}, "RFC 6598"),
    ("AZC023", {"network.address_space": "20.0.0.0/16"}, "20.0.0.0/16"),
    ("AZC024", {"network.subnets.login": "10.99.0.0/27"}, "10.99.0.0/27"),
    (
        "AZC025",
        {"network.subnets.compute": "10.42.0.0/20", "network.subnets.login": "10.42.0.0/27"},
        "overlaps",
    ),
    ("AZC026", {"network.address_space": "10.42.0.0/24"}, "10.42.0.0/24"),
    ("AZC027", {"pools.0.nodes": 252, "network.subnets.compute": "10.42.0.0/24"}, "251 usable"),
    ("AZC028", {"network.subnets.bastion": "10.42.250.0/27"}, "/26"),
    (
        "AZC029",
        {"storage.lustre.sku": "AMLFS-Durable-Premium-40", "storage.lustre.capacity_tib": 240},
        "/23",
    ),
    ("AZC029", {"storage.lustre.capacity_tib": 48, "network.subnets.lustre": "10.42.250.0/26"}, "/25"),
    ("AZC030", {"network.existing_vnet_id": "hub-vnet"}, "hub-vnet"),
    ("AZC030", {"network.existing_vnet_id": VNET_ID.replace(GUID, "not-a-guid")}, "not-a-guid"),
    ("AZC031", {"network.bastion": False}, "Bastion"),
    ("AZC032", {"network.nat_gateway": False}, "NAT"),
    ("AZC060", {"network.existing_vnet_id": VNET_ID, "storage.blob.enabled": True}, "dns_zones.blob"),
    ("AZC060", {"network.existing_vnet_id": VNET_ID}, "dns_zones.file"),
    (
        "AZC060",
        {
            "network.existing_vnet_id": VNET_ID,
            "storage.home.enabled": False,
            "slurm.accounting": {"enabled": True, "database": "mysql"},
        },
        "dns_zones.mysql",
    ),
    ("AZC061", {"network.dns_zones": {"mysql": BLOB_ZONE_ID}}, "privatelink.mysql"),
    ("AZC061", {"network.dns_zones": {"blob": "privatelink.blob.core.windows.net"}}, "neither"),
    ("AZC061", {"network.dns_zones": {"blob": BLOB_ZONE_ID.replace(".blob.", ".file.")}}, "privatelink.file"),
]

QUIET = [
    ("AZC020", {"network.address_space": "172.20.0.0/16"}),
    ("AZC021", {"network.address_space": "10.42.0.0/16"}),
    ("AZC022", {"network.address_space": "10.0.0.0/8"}),
    ("AZC023", {"network.address_space": "192.168.0.0/16"}),
    ("AZC023", {"network.address_space": "172.16.0.0/12"}),
    ("AZC024", {"network.subnets.login": "10.42.200.0/27"}),
    ("AZC025", {"network.subnets.compute": "10.42.0.0/20", "network.subnets.login": "10.42.16.0/27"}),
    ("AZC026", {"network.address_space": "10.42.0.0/22"}),
    ("AZC027", {"pools.0.nodes": 251, "network.subnets.compute": "10.42.0.0/24"}),
    ("AZC027", {"pools.0.nodes": 2000}),
    ("AZC028", {"network.subnets.bastion": "10.42.250.0/26"}),
    ("AZC028", {"network.bastion": False, "network.subnets.bastion": "10.42.250.0/27"}),
    ("AZC029", {"storage.lustre.capacity_tib": 128}),
    ("AZC029", {"storage.lustre.capacity_tib": 48, "network.subnets.lustre": "10.42.250.0/25"}),
    ("AZC029", {"storage.lustre.enabled": False, "network.subnets.lustre": "10.42.250.0/29"}),
    ("AZC030", {"network.existing_vnet_id": VNET_ID}),
    ("AZC031", {"network.bastion": False, "network.existing_vnet_id": VNET_ID}),
    ("AZC032", {"network.nat_gateway": False, "network.existing_vnet_id": VNET_ID}),
    ("AZC060", {"storage.blob.enabled": True}),  # a new network: azcluster creates and links the zone
    (
        "AZC060",
        {"network.existing_vnet_id": VNET_ID, "network.dns_zones": {"blob": BLOB_ZONE_ID, "file": "create"}},
    ),
    (
        "AZC060",
        {
            "network.existing_vnet_id": VNET_ID,
            "storage.blob.enabled": True,
            "network.dns_zones.blob": "create",
            "storage.home.enabled": False,
        },
    ),
    ("AZC060", {"network.existing_vnet_id": VNET_ID, "storage.home.enabled": False}),  # no endpoints
    (
        "AZC060",
        {
            "network.existing_vnet_id": VNET_ID,
            "storage.home.enabled": False,
            "slurm.accounting": {"enabled": True, "database": "mysql"},
            "network.dns_zones.mysql": "create",
        },
    ),
    (
        "AZC060",
        {
            "network.existing_vnet_id": VNET_ID,
            "network.dns_zones.file": BLOB_ZONE_ID.replace(".blob.", ".file."),
        },
    ),
    ("AZC061", {"network.dns_zones": {"blob": BLOB_ZONE_ID}}),
    ("AZC061", {"network.dns_zones": {"blob": " Create "}}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)
