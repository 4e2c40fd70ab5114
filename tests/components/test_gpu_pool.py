"""GpuPool under Pulumi mocks: islands, InfiniBand settings, security, spot, reservations, health, tags.

Every test builds a GpuPool on its own (plain resource group, subnet and identity ids), the way a user
imports it into another Pulumi program, and asserts the inputs Azure would receive (camelCase).
"""

from __future__ import annotations

import base64
import gzip

import pytest

from azcluster import mockrun as harness
from azcluster.components import bootstrap, catalog
from azcluster.components.gpu_pool import (
    CUSTOM_DATA_MAX_BYTES,
    REPAIR_GRACE_PERIOD,
    SCALE_SET_NAME_MAX,
    GpuPool,
    GpuPoolArgs,
    plan_islands,
)
from azcluster.components.spec import PoolSpec
from azcluster.components.tags import TAG_CLUSTER, TAG_ISLAND, TAG_POOL, TAG_ROLE

H100 = "Standard_ND96isr_H100_v5"
H200 = "Standard_ND96isr_H200_v5"
GB200 = "Standard_ND128isr_NDR_GB200_v6"
NC_H100 = "Standard_NC80adis_H100_v5"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
SUBNET = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/compute"
IDENTITY = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/n"
CRG = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/capacityReservationGroups/crg"


@pytest.fixture(autouse=True)
def _identity_map_outputs(monkeypatch):
    """Azure answers `identity.userAssignedIdentities` (a list of ids going in) with a map of id -> ids."""
    monkeypatch.setitem(
        harness.EXTRA_OUTPUTS, "azure-native:compute:VirtualMachineScaleSet", identity_outputs
    )


def identity_outputs(inputs: dict, name: str, id_: str) -> dict:
    identity = inputs.get("identity") or {}
    ids = identity.get("userAssignedIdentities")
    if not isinstance(ids, list):
        return {}
    return {
        "identity": {
            **identity,
            "userAssignedIdentities": {i: {"principalId": "p", "clientId": "c"} for i in ids},
        }
    }


def make_args(size: str = H100, nodes: int = 4, *, cluster: str = "c1", **pool_fields) -> GpuPoolArgs:
    pool = PoolSpec(name=pool_fields.pop("name", "gpu"), size=size, nodes=nodes, **pool_fields)
    return GpuPoolArgs(
        cluster_name=cluster,
        pool=pool,
        size=catalog.find_size(size),
        location="eastus",
        resource_group_name="c1-rg",
        subnet_id=SUBNET,
        identity_id=IDENTITY,
        admin_username="ops",
        ssh_public_keys=[KEY],
    )


def build(args: GpuPoolArgs) -> tuple[harness.Capture, list[harness.Resource]]:
    capture = harness.run(lambda: GpuPool(f"{args.cluster_name}-{args.pool.name}", args).scale_set_names)
    return capture, sorted(capture.of_type("compute:VirtualMachineScaleSet"), key=island_of)


def island_of(vmss: harness.Resource) -> int:
    """Registration order is not island order (Pulumi registers concurrently); the tag is."""
    return int(vmss.inputs["tags"][TAG_ISLAND])


def profile(vmss: harness.Resource) -> dict:
    return vmss.inputs["virtualMachineProfile"]


# --- islands ---------------------------------------------------------------------------------------------


def test_250_nodes_become_three_islands_of_84_83_83():
    capture, sets = build(make_args(H100, 250))
    assert [s.inputs["sku"]["capacity"] for s in sets] == [84, 83, 83]
    assert [s.inputs["vmScaleSetName"] for s in sets] == ["c1-gpu-ib0", "c1-gpu-ib1", "c1-gpu-ib2"]
    assert capture.value == ["c1-gpu-ib0", "c1-gpu-ib1", "c1-gpu-ib2"]
    assert [s.inputs["tags"][TAG_ISLAND] for s in sets] == ["0", "1", "2"]


def test_512_h200_nodes_become_six_islands_that_add_up():
    _, sets = build(make_args(H200, 512))
    sizes = [s.inputs["sku"]["capacity"] for s in sets]
    assert len(sets) == 6
    assert sum(sizes) == 512
    assert max(sizes) <= 100 and max(sizes) - min(sizes) <= 1
    assert {s.inputs["sku"]["name"] for s in sets} == {H200}


def test_raised_island_limit_gives_fewer_larger_islands():
    _, sets = build(make_args(H200, 1024, island_max_nodes=256))
    assert [s.inputs["sku"]["capacity"] for s in sets] == [256, 256, 256, 256]


def test_every_gpu_scale_set_has_the_infiniband_settings():
    _, sets = build(make_args(H100, 250))
    for vmss in sets:
        assert vmss.inputs["orchestrationMode"] == "Uniform"
        assert vmss.inputs["singlePlacementGroup"] is True
        assert vmss.inputs["platformFaultDomainCount"] == 1
        assert vmss.inputs["overprovision"] is False
        assert vmss.inputs["upgradePolicy"] == {"mode": "Manual"}
        assert vmss.inputs["sku"]["tier"] == "Standard"


def test_non_infiniband_size_gets_one_scale_set_without_ib_settings():
    _, sets = build(make_args(NC_H100, 150))
    assert len(sets) == 1
    (vmss,) = sets
    assert vmss.inputs["vmScaleSetName"] == "c1-gpu"
    assert vmss.inputs["sku"]["capacity"] == 150
    assert vmss.inputs["singlePlacementGroup"] is False
    assert "platformFaultDomainCount" not in vmss.inputs
    assert vmss.inputs["overprovision"] is False
    assert vmss.inputs["tags"][TAG_ISLAND] == "0"


def test_plan_islands_matches_what_is_built():
    args = make_args(H100, 250)
    islands = plan_islands("c1", args.pool, args.size)
    assert [(i.index, i.nodes, i.name) for i in islands] == [
        (0, 84, "c1-gpu-ib0"),
        (1, 83, "c1-gpu-ib1"),
        (2, 83, "c1-gpu-ib2"),
    ]


# --- network and access ----------------------------------------------------------------------------------


def test_nodes_have_one_accelerated_nic_in_the_compute_subnet_and_no_public_ip():
    _, sets = build(make_args(H100, 250))
    for vmss in sets:
        nics = profile(vmss)["networkProfile"]["networkInterfaceConfigurations"]
        assert len(nics) == 1
        nic = nics[0]
        assert nic["primary"] is True
        assert nic["enableAcceleratedNetworking"] is True
        for ip in nic["ipConfigurations"]:
            assert "publicIPAddressConfiguration" not in ip
            assert ip["subnet"] == {"id": SUBNET}


def test_password_authentication_is_off_and_keys_go_to_the_admin_user():
    _, sets = build(make_args(H100, 2))
    os_profile = profile(sets[0])["osProfile"]
    assert os_profile["adminUsername"] == "ops"
    assert "adminPassword" not in os_profile
    linux = os_profile["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True
    assert linux["ssh"]["publicKeys"] == [{"path": "/home/ops/.ssh/authorized_keys", "keyData": KEY}]


def test_no_ssh_keys_is_refused():
    args = make_args(H100, 2)
    args.ssh_public_keys = []
    with pytest.raises(ValueError, match="no SSH public keys"):
        build(args)


def test_nodes_use_the_user_assigned_identity():
    _, sets = build(make_args(H100, 2))
    assert sets[0].inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [IDENTITY]}


def test_computer_name_prefix_names_pool_and_island():
    _, sets = build(make_args(H100, 250))
    prefixes = [profile(s)["osProfile"]["computerNamePrefix"] for s in sets]
    assert prefixes == [bootstrap.computer_name_prefix("c1", "gpu", i) for i in range(3)]
    assert len(set(prefixes)) == 3


# --- spot, reservations, zones ---------------------------------------------------------------------------


def test_spot_pool_is_spot_with_delete_eviction_and_no_price_cap():
    _, sets = build(make_args(H100, 250, spot=True))
    for vmss in sets:
        vm = profile(vmss)
        assert vm["priority"] == "Spot"
        assert vm["evictionPolicy"] == "Delete"
        assert vm["billingProfile"] == {"maxPrice": -1}


def test_regular_pool_has_no_spot_settings():
    _, sets = build(make_args(H100, 2))
    vm = profile(sets[0])
    assert not {"priority", "evictionPolicy", "billingProfile"} & set(vm)


def test_capacity_reservation_group_is_used_when_given():
    _, sets = build(make_args(NC_H100, 3, capacity_reservation_group_id=CRG))
    assert profile(sets[0])["capacityReservation"] == {"capacityReservationGroup": {"id": CRG}}
    _, plain = build(make_args(NC_H100, 3))
    assert "capacityReservation" not in profile(plain[0])


def test_capacity_reservation_is_refused_where_azure_refuses_it():
    """Uniform sets take a reservation only without a single placement group (so never on IB), never Spot."""
    with pytest.raises(ValueError, match="single placement group"):
        build(make_args(H100, 2, capacity_reservation_group_id=CRG))
    with pytest.raises(ValueError, match="Spot VMs cannot use a capacity reservation"):
        build(make_args(NC_H100, 2, spot=True, capacity_reservation_group_id=CRG))


def test_zone_is_set_only_when_given():
    args = make_args(H100, 2)
    args.zone = "2"
    _, sets = build(args)
    assert sets[0].inputs["zones"] == ["2"]
    _, regional = build(make_args(H100, 2))
    assert "zones" not in regional[0].inputs


# --- health and repairs ----------------------------------------------------------------------------------


def test_every_gpu_scale_set_carries_the_health_extension_probing_the_bootstrap_endpoint():
    for size, nodes in ((H100, 250), (NC_H100, 3)):
        _, sets = build(make_args(size, nodes))
        for vmss in sets:
            extensions = profile(vmss)["extensionProfile"]["extensions"]
            health = [e for e in extensions if e["type"] == "ApplicationHealthLinux"]
            assert len(health) == 1, vmss.name
            ext = health[0]
            assert ext["publisher"] == "Microsoft.ManagedServices"
            assert ext["typeHandlerVersion"] == "2.0"
            settings = ext["settings"]
            assert settings["protocol"] == "http"
            assert settings["port"] == bootstrap.HEALTH_PORT
            assert settings["requestPath"] == bootstrap.HEALTH_PATH
            assert 5 <= settings["intervalInSeconds"] <= 60
            assert 1 <= settings["numberOfProbes"] <= 24
            assert 0 < settings["gracePeriod"] <= 14400


def test_automatic_repairs_only_when_the_pool_asks():
    _, off = build(make_args(H100, 250))
    assert all("automaticRepairsPolicy" not in s.inputs for s in off)
    _, on = build(make_args(H100, 250, repair=True))
    for vmss in on:
        assert vmss.inputs["automaticRepairsPolicy"] == {
            "enabled": True,
            "gracePeriod": REPAIR_GRACE_PERIOD,
            "repairAction": "Replace",
        }


# --- disks and images ------------------------------------------------------------------------------------


def test_os_disk_from_the_catalogue_image_on_premium_ssd():
    _, sets = build(make_args(H100, 2, os_disk_gb=512))
    storage = profile(sets[0])["storageProfile"]
    assert storage["imageReference"] == {
        "publisher": "microsoft-dsvm",
        "offer": "ubuntu-hpc",
        "sku": "2204",
        "version": "latest",
    }
    assert storage["osDisk"] == {
        "createOption": "FromImage",
        "caching": "ReadWrite",
        "managedDisk": {"storageAccountType": "Premium_LRS"},
        "diskSizeGB": 512,
    }
    assert "diskControllerType" not in storage


@pytest.mark.parametrize("size", [GB200, "Standard_ND128isr_GB300_v6"])
def test_gb_sizes_use_the_nvme_disk_controller_and_no_interconnect_group(size):
    capture, sets = build(make_args(size, 18))
    assert profile(sets[0])["storageProfile"]["diskControllerType"] == "NVMe"
    # rack-scale placement cannot be expressed with the SDK's scale set (rules/rack.py AZC131): nothing of
    # it is sent, and no interconnect group is created that nothing could join
    assert not [key for key in sets[0].inputs if "interconnect" in key.lower()]
    assert not capture.of_type("network:InterconnectGroup")


def test_pool_image_may_be_an_image_resource_id():
    image = "/subscriptions/s/resourceGroups/i/providers/Microsoft.Compute/galleries/g/images/hpc/versions/1"
    _, sets = build(make_args(H100, 2, image=image))
    assert profile(sets[0])["storageProfile"]["imageReference"] == {"id": image}


def test_malformed_image_is_refused_with_the_accepted_forms():
    with pytest.raises(ValueError, match="publisher:offer:sku:version"):
        build(make_args(H100, 2, image="ubuntu-hpc"))


# --- custom data -----------------------------------------------------------------------------------------


def encoded(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode())).decode()


def test_custom_data_per_island_from_a_function_or_a_list():
    args = make_args(H100, 250)
    args.custom_data = lambda island: encoded(f"#cloud-config\n# island {island}\n")
    _, sets = build(args)
    seen = [gzip.decompress(base64.b64decode(profile(s)["osProfile"]["customData"])).decode() for s in sets]
    assert seen == [f"#cloud-config\n# island {i}\n" for i in range(3)]

    args.custom_data = [encoded("a"), encoded("b"), encoded("c")]
    _, sets = build(args)
    assert [profile(s)["osProfile"]["customData"] for s in sets] == args.custom_data


def test_custom_data_list_must_match_the_islands():
    args = make_args(H100, 250)
    args.custom_data = [encoded("a")]
    with pytest.raises(ValueError, match="1 custom data values for 3 scale sets"):
        build(args)


def test_custom_data_must_be_base64_and_within_azure_limit():
    args = make_args(H100, 2)
    args.custom_data = ["#cloud-config\nnot: encoded\n"]
    with pytest.raises(ValueError, match="not base64"):
        build(args)
    args.custom_data = [base64.b64encode(b"x" * (CUSTOM_DATA_MAX_BYTES + 1)).decode()]
    with pytest.raises(ValueError, match="Azure allows 65535"):
        build(args)


# --- tags, names, errors ---------------------------------------------------------------------------------


def test_tags_name_cluster_pool_island_and_role_and_keep_user_tags():
    args = make_args(H100, 250, name="train")
    args.tags = {"team": "llm", TAG_POOL: "spoofed"}
    _, sets = build(args)
    for index, vmss in enumerate(sets):
        tags = vmss.inputs["tags"]
        assert tags[TAG_CLUSTER] == "c1"
        assert tags[TAG_POOL] == "train"
        assert tags[TAG_ISLAND] == str(index)
        assert tags[TAG_ROLE] == "compute"
        assert tags["team"] == "llm"


def test_unknown_size_is_refused_with_suggestions_and_nothing_is_created():
    args = make_args("Standard_ND96isr_H100_v6", 2)
    assert args.size is None
    created: list = []

    def program():
        created.append(GpuPool("c1-gpu", args))

    with pytest.raises(
        ValueError, match=r"unknown GPU size 'Standard_ND96isr_H100_v6'; did you mean .*H100_v5"
    ):
        harness.run(program)
    assert created == []


def test_scale_set_names_longer_than_azure_allows_are_refused():
    args = make_args(H100, 2, cluster="c" * 60)
    with pytest.raises(ValueError, match=f"Azure allows {SCALE_SET_NAME_MAX}"):
        build(args)


def test_children_are_parented_to_the_pool_component():
    capture, sets = build(make_args(H100, 250))
    component = capture.one("azcluster:index:GpuPool")
    assert component.name == "c1-gpu"
    assert all(s.parent == component.urn for s in sets)
    assert [s.name for s in sets] == ["c1-gpu-ib0", "c1-gpu-ib1", "c1-gpu-ib2"]


def test_pool_composes_with_resources_from_the_same_program():
    """Module use: subnet and identity ids may be Outputs of the user's own resources."""
    from pulumi_azure_native import managedidentity, network, resources

    def program():
        rg = resources.ResourceGroup("rg", resource_group_name="mine-rg", location="eastus")
        vnet = network.VirtualNetwork(
            "vnet",
            resource_group_name=rg.name,
            address_space={"address_prefixes": ["10.9.0.0/16"]},
        )
        subnet = network.Subnet(
            "compute",
            resource_group_name=rg.name,
            virtual_network_name=vnet.name,
            address_prefix="10.9.0.0/20",
        )
        uami = managedidentity.UserAssignedIdentity("nodes", resource_group_name=rg.name)
        args = make_args(H100, 2, cluster="mine")
        args.resource_group_name = rg.name
        args.subnet_id = subnet.id
        args.identity_id = uami.id
        return GpuPool("mine-gpu", args).scale_set_ids

    capture = harness.run(program)
    (vmss,) = capture.of_type("compute:VirtualMachineScaleSet")
    assert capture.depends_on(vmss, capture.one("network:Subnet"))
    assert capture.depends_on(vmss, capture.one("managedidentity:UserAssignedIdentity"))
    assert vmss.inputs["resourceGroupName"] == "mine-rg"
    assert capture.value == [vmss.id]
    assert vmss.id.endswith("/virtualMachineScaleSets/mine-gpu-ib0")
