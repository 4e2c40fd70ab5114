"""`azcluster plan` of stacks a first real `up` would trip on (issue 9): each plans to what Azure accepts.

Each test writes a stack file, plans it through the real CLI (offline, Pulumi mocks) and asserts the
properties Azure checks: no `zones` in a region without availability zones, one zone for Lustre and its
clients, the Arm64 image for GB200, a hub network's existing private DNS zones reused, purchase plans.
"""

from __future__ import annotations

import base64
import gzip
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from azcluster.components import catalog
from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
VMSS = "azure-native:compute:VirtualMachineScaleSet"
VM = "azure-native:compute:VirtualMachine"
AMLFS = "azure-native:storagecache:AmlFilesystem"
NAT = "azure-native:network:NatGateway"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
NIC = "azure-native:network:NetworkInterface"
ZONAL_TYPES = {VMSS, VM, AMLFS, NAT, PUBLIC_IP}


def plan(tmp_path: Path, cluster: str, location: str = "eastus") -> dict[str, Any]:
    """Plan a stack whose `azcluster:cluster` block is `cluster` (YAML, indented by 4); exit 0 expected."""
    body = textwrap.indent(textwrap.dedent(cluster).strip(), "    ")
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(
        f"config:\n  azure-native:location: {location}\n  azcluster:cluster:\n{body}\n"
        f'    ssh:\n      public_keys: ["{KEY}"]\n',
        encoding="utf-8",
    )
    result = run_cli("plan", str(path), "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def of_type(document: dict[str, Any], *types: str) -> list[dict[str, Any]]:
    return [r for r in document["resources"] if r["type"] in types]


LUSTRE_CLUSTER = """\
name: t
pools:
  - {name: gpu, size: Standard_ND96isr_H100_v5, nodes: 2}
storage:
  lustre: {sku: AMLFS-Durable-Premium-250, capacity_tib: 8}
  blob: {enabled: true}
"""


# --- item 3: regions without availability zones; Lustre and its clients in one zone ---------------------


@pytest.mark.parametrize("location", ["northcentralus", "westus"])
def test_a_region_without_zones_sends_zones_to_nothing(tmp_path, location):
    document = plan(tmp_path, LUSTRE_CLUSTER, location)
    zonal = of_type(document, *ZONAL_TYPES)
    assert {r["type"] for r in zonal} == ZONAL_TYPES  # all of them are planned, none with zones
    assert [r["name"] for r in zonal if r["inputs"].get("zones")] == []
    assert document["summary"]["zone"] is None
    assert "AZC035" not in {f["id"] for f in document["findings"]}


def test_lustre_without_a_zone_puts_every_zonal_resource_in_zone_1_and_plan_says_so(tmp_path):
    document = plan(tmp_path, LUSTRE_CLUSTER, "eastus")
    zonal = of_type(document, VMSS, VM, AMLFS, NAT)
    assert {r["type"] for r in zonal} == {VMSS, VM, AMLFS, NAT}
    assert {r["name"]: r["inputs"].get("zones") for r in zonal} == {r["name"]: ["1"] for r in zonal}
    assert document["summary"]["zone"] == "1" and "chosen" in document["summary"]["zone_note"]
    chosen = [f for f in document["findings"] if f["id"] == "AZC035"]
    assert chosen and chosen[0]["severity"] == "info" and "zone 1" in chosen[0]["message"]


def test_a_zone_in_the_spec_is_used_everywhere(tmp_path):
    document = plan(tmp_path, 'zone: "2"\n' + LUSTRE_CLUSTER, "eastus")
    zones = {r["name"]: r["inputs"].get("zones") for r in of_type(document, VMSS, VM, AMLFS, NAT)}
    assert set(map(tuple, zones.values())) == {("2",)}
    assert "AZC035" not in {f["id"] for f in document["findings"]}


def test_without_lustre_a_cluster_without_zone_stays_regional(tmp_path):
    document = plan(tmp_path, "name: t\npools:\n  - {name: gpu, size: Standard_ND96isr_H100_v5, nodes: 2}\n")
    assert [r["name"] for r in of_type(document, *ZONAL_TYPES) if r["inputs"].get("zones")] == []


# --- item 5: the login node is a Lustre client ------------------------------------------------------------


def test_the_login_nic_has_accelerated_networking_when_it_mounts_lustre(tmp_path):
    (nic,) = of_type(plan(tmp_path, LUSTRE_CLUSTER), NIC)
    assert nic["inputs"]["enableAcceleratedNetworking"] is True


# --- item 2: joining a hub network that already has its private DNS zones ---------------------------------

GUID = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
HUB_VNET = (
    f"/subscriptions/{GUID}/resourceGroups/hub-net/providers/Microsoft.Network/virtualNetworks/hub-vnet"
)
HUB_BLOB_ZONE = (
    f"/subscriptions/{GUID}/resourceGroups/hub-dns/providers/Microsoft.Network/privateDnsZones/"
    "privatelink.blob.core.windows.net"
)
HUB_FILE_ZONE = HUB_BLOB_ZONE.replace(".blob.", ".file.")
ZONE = "azure-native:privatedns:PrivateZone"
LINK = "azure-native:privatedns:VirtualNetworkLink"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"


def hub_cluster(dns_zones: str = "") -> str:
    """A cluster joining the hub's network, with a blob account; `dns_zones` is YAML under network."""
    return f"""\
name: t
network:
  existing_vnet_id: {HUB_VNET}
  address_space: 10.80.0.0/16
{textwrap.indent(dns_zones, "  ")}
pools:
  - {{name: gpu, size: Standard_ND96isr_H100_v5, nodes: 2}}
storage:
  blob: {{enabled: true}}
"""


def test_a_hub_network_s_zones_are_reused_never_created_or_linked_again(tmp_path):
    zones = f"dns_zones: {{blob: {HUB_BLOB_ZONE}, file: {HUB_FILE_ZONE}}}"
    document = plan(tmp_path, hub_cluster(zones))
    names = {r["inputs"].get("privateZoneName") for r in of_type(document, ZONE)}
    assert names == {"t.azcluster.internal"}  # only the cluster's own zone, whose name nobody else uses
    groups = {
        g["inputs"]["privateDnsZoneConfigs"][0]["name"]: g["inputs"]["privateDnsZoneConfigs"][0][
            "privateDnsZoneId"
        ]
        for g in of_type(document, ZONE_GROUP)
    }
    assert groups == {"blob": HUB_BLOB_ZONE, "file": HUB_FILE_ZONE}
    (link,) = of_type(document, LINK)  # the cluster zone's link, to the hub network
    assert link["inputs"]["virtualNetwork"]["id"] == HUB_VNET
    assert of_type(document, "azure-native:network:VirtualNetwork") == []
    subnets = of_type(document, "azure-native:network:Subnet")
    assert subnets and {s["inputs"]["resourceGroupName"] for s in subnets} == {"hub-net"}
    assert {s["inputs"]["virtualNetworkName"] for s in subnets} == {"hub-vnet"}
    assert "AZC060" not in {f["id"] for f in document["findings"]}


def test_joining_a_hub_without_naming_its_zones_creates_no_second_zone_and_warns(tmp_path):
    document = plan(tmp_path, hub_cluster())
    assert {r["inputs"].get("privateZoneName") for r in of_type(document, ZONE)} == {"t.azcluster.internal"}
    assert of_type(document, ZONE_GROUP) == [] and len(of_type(document, LINK)) == 1
    warnings = [f for f in document["findings"] if f["id"] == "AZC060"]
    assert {w["severity"] for w in warnings} == {"warning"}
    assert any("dns_zones.blob" in w["hint"] for w in warnings)
    assert any("dns_zones.file" in w["hint"] for w in warnings)


def test_joining_a_hub_with_create_makes_and_links_the_zones(tmp_path):
    document = plan(tmp_path, hub_cluster("dns_zones: {blob: create, file: create}"))
    zones = {r["inputs"].get("privateZoneName") for r in of_type(document, ZONE)}
    assert zones == {
        "t.azcluster.internal",
        "privatelink.blob.core.windows.net",
        "privatelink.file.core.windows.net",
    }
    assert len(of_type(document, LINK)) == 3 and len(of_type(document, ZONE_GROUP)) == 2


# --- item 1: GB200 v6 and GB300 v6 are Arm64 (Grace) --------------------------------------------------------

# No scheduler: a Slurm cluster's custom data carries its munge key, so `plan --json` shows it as
# "[secret]"; these tests read the node.env inside it.
GB200_CLUSTER = """\
name: t
scheduler: none
pools:
  - {name: gb, size: Standard_ND128isr_NDR_GB200_v6, nodes: 18}
storage:
  lustre: {sku: AMLFS-Durable-Premium-250, capacity_tib: 8}
"""


def node_env(resource: dict[str, Any]) -> dict[str, str]:
    """The node.env a scale set's or VM's custom data writes (gzip + base64 cloud-config)."""
    profile = resource["inputs"].get("virtualMachineProfile", resource["inputs"])
    text = gzip.decompress(base64.b64decode(profile["osProfile"]["customData"])).decode()
    files = YAML(typ="safe").load(text)["write_files"]
    body = next(entry["content"] for entry in files if entry["path"] == "/etc/azcluster/node.env")
    pairs = (line.strip().split("=", 1) for line in body.splitlines() if "=" in line)
    return {key: value for key, value in pairs}


@pytest.mark.parametrize("size", ["Standard_ND128isr_NDR_GB200_v6", "Standard_ND128isr_GB300_v6"])
def test_a_gb_stack_plans_the_arm64_image_with_an_arm64_lustre_client(tmp_path, size):
    document = plan(tmp_path, GB200_CLUSTER.replace("Standard_ND128isr_NDR_GB200_v6", size))
    (vmss,) = of_type(document, VMSS)
    storage = vmss["inputs"]["virtualMachineProfile"]["storageProfile"]
    assert storage["imageReference"] == {
        "publisher": "microsoft-dsvm",
        "offer": "ubuntu-hpc",
        "sku": "2404-gb",
        "version": "latest",
    }
    assert storage["diskControllerType"] == "NVMe"
    assert catalog.image_architecture("microsoft-dsvm:ubuntu-hpc:2404-gb:latest") == "Arm64"
    env = node_env(vmss)
    assert env["AZC_LUSTRE_CLIENT_PKG"] == catalog.lustre_clients()["ubuntu-24.04"].package
    assert "Arm64" in catalog.lustre_clients()["ubuntu-24.04"].architectures
    findings = {f["id"]: f for f in document["findings"]}
    assert not [f for f in document["findings"] if f["severity"] == "error"]
    assert "AZC055" not in findings  # image and size architectures agree
    assert findings["AZC057"]["severity"] == "warning" and "nvidia-imex" in findings["AZC057"]["message"]
    assert "AZC056" not in findings  # GB nodes run azcluster's own GB checks; AZC133 says which
    assert "AzNHC" in findings["AZC133"]["message"]


@pytest.mark.parametrize("size", ["Standard_ND128isr_NDR_GB200_v6", "Standard_ND128isr_GB300_v6"])
def test_a_gb_stack_with_the_x64_image_is_refused(tmp_path, size):
    path = tmp_path / "Pulumi.x.yaml"
    cluster = GB200_CLUSTER.replace("Standard_ND128isr_NDR_GB200_v6", size).replace(
        "nodes: 18}", "nodes: 18, image: 'microsoft-dsvm:ubuntu-hpc:2404:latest'}"
    )
    body = textwrap.indent(cluster, "    ")
    path.write_text(
        f"config:\n  azure-native:location: eastus\n  azcluster:cluster:\n{body}"
        f'    ssh:\n      public_keys: ["{KEY}"]\n',
        encoding="utf-8",
    )
    result = run_cli("plan", str(path), "--json")
    assert result.exit_code == 1
    errors = [f for f in json.loads(result.stdout)["findings"] if f["severity"] == "error"]
    assert [f["id"] for f in errors] == ["AZC055"] and "2404-gb" in errors[0]["hint"]


# --- item 8: the Lustre client is catalogue data per image and OS ------------------------------------------


def test_the_login_node_installs_the_lustre_client_the_managed_lustre_docs_give_for_its_os(tmp_path):
    cluster = "scheduler: none\n" + LUSTRE_CLUSTER  # readable custom data (see GB200_CLUSTER)
    jammy = plan(tmp_path, cluster)
    (login,) = of_type(jammy, VM)
    assert node_env(login)["AZC_LUSTRE_CLIENT_PKG"] == "amlfs-lustre-client-dkms-2.15.8-39-g2d32b59"
    noble = plan(tmp_path, cluster + "login: {image: 'Canonical:ubuntu-24_04-lts:server:latest'}\n")
    (login,) = of_type(noble, VM)
    assert node_env(login)["AZC_LUSTRE_CLIENT_PKG"] == "amlfs-lustre-client-dkms-2.17.0-19-gbb5310f"


# --- item 4: Marketplace images sold under a purchase plan -------------------------------------------------


def test_plan_images_carry_their_purchase_plan_on_scale_sets_and_the_login_vm(tmp_path):
    cluster = """\
    name: t
    pools:
      - name: gpu
        size: Standard_ND96isr_H100_v5
        nodes: 2
        image: almalinux:almalinux-hpc:8_10-hpc-gen2:latest
    login: {image: 'resf:rockylinux-x86_64:9-base:latest'}
    """
    document = plan(tmp_path, cluster)
    (vmss,) = of_type(document, VMSS)
    assert vmss["inputs"]["plan"] == {
        "publisher": "almalinux",
        "product": "almalinux-hpc",
        "name": "8_10-hpc-gen2",
    }
    (login,) = of_type(document, VM)
    assert login["inputs"]["plan"] == {"publisher": "resf", "product": "rockylinux-x86_64", "name": "9-base"}
    assert {f["id"] for f in document["findings"] if f["id"] == "AZC058"} == {"AZC058"}


def test_images_without_a_plan_send_none(tmp_path):
    document = plan(tmp_path, LUSTRE_CLUSTER)
    assert [r["name"] for r in of_type(document, VMSS, VM) if "plan" in r["inputs"]] == []
