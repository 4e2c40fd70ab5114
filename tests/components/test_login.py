"""LoginNode under Pulumi mocks: a private NIC, SSH keys only, the nodes' identity, bootstrap custom data."""

from __future__ import annotations

import base64
import gzip

import pytest

from azcluster import mockrun as harness
from azcluster.components.login import LoginNode, LoginNodeArgs
from azcluster.components.spec import ClusterSpec
from azcluster.components.tags import TAG_CLUSTER, TAG_ROLE

from .test_gpu_pool import IDENTITY, KEY, identity_outputs

LOGIN_SUBNET = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/login"
)


@pytest.fixture(autouse=True)
def _identity_map_outputs(monkeypatch):
    monkeypatch.setitem(harness.EXTRA_OUTPUTS, "azure-native:compute:VirtualMachine", identity_outputs)


def spec(**fields) -> ClusterSpec:
    data = {
        "name": "c1",
        "location": "eastus",
        "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 2}],
        "ssh": {"admin_username": "ops", "public_keys": [KEY]},
        **fields,
    }
    return ClusterSpec.model_validate(data)


def make_args(cluster: ClusterSpec | None = None, **overrides) -> LoginNodeArgs:
    args = LoginNodeArgs.from_spec(
        cluster or spec(),
        resource_group_name="c1-rg",
        subnet_id=LOGIN_SUBNET,
        identity_id=IDENTITY,
        **overrides,
    )
    return args


def build(args: LoginNodeArgs) -> harness.Capture:
    return harness.run(lambda: LoginNode("c1-login", args).private_ip)


def decode(custom_data: str) -> str:
    return gzip.decompress(base64.b64decode(custom_data)).decode()


def test_login_nic_is_private_in_the_login_subnet_and_its_ip_is_the_output():
    capture = build(make_args())
    nic = capture.one("network:NetworkInterface")
    (ip,) = nic.inputs["ipConfigurations"]
    assert ip["subnet"] == {"id": LOGIN_SUBNET}
    assert "publicIPAddress" not in ip
    assert ip["privateIPAllocationMethod"] == "Dynamic"
    assert capture.value == harness.MOCK_PRIVATE_IP


def test_login_vm_uses_keys_only_the_nodes_identity_and_its_nic():
    capture = build(make_args())
    vm = capture.one("compute:VirtualMachine")
    nic = capture.one("network:NetworkInterface")
    assert vm.inputs["vmName"] == "c1-login"
    assert vm.inputs["hardwareProfile"] == {"vmSize": "Standard_D4s_v5"}
    os_profile = vm.inputs["osProfile"]
    assert os_profile["computerName"] == "c1-login"
    assert "adminPassword" not in os_profile
    assert os_profile["linuxConfiguration"]["disablePasswordAuthentication"] is True
    assert os_profile["linuxConfiguration"]["ssh"]["publicKeys"] == [
        {"path": "/home/ops/.ssh/authorized_keys", "keyData": KEY}
    ]
    assert vm.inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [IDENTITY]}
    assert vm.inputs["networkProfile"] == {"networkInterfaces": [{"id": nic.id, "primary": True}]}
    assert capture.depends_on(vm, nic)
    assert vm.inputs["storageProfile"]["imageReference"] == {
        "publisher": "Canonical",
        "offer": "0001-com-ubuntu-server-jammy",
        "sku": "22_04-lts-gen2",
        "version": "latest",
    }
    assert vm.inputs["storageProfile"]["osDisk"]["managedDisk"] == {"storageAccountType": "Premium_LRS"}


def test_login_size_image_and_zone_come_from_the_spec():
    cluster = spec(
        zone="2", login={"size": "Standard_D8s_v5", "image": "Canonical:ubuntu-24_04-lts:server:latest"}
    )
    capture = build(make_args(cluster))
    vm = capture.one("compute:VirtualMachine")
    assert vm.inputs["hardwareProfile"] == {"vmSize": "Standard_D8s_v5"}
    assert vm.inputs["storageProfile"]["imageReference"]["offer"] == "ubuntu-24_04-lts"
    assert vm.inputs["zones"] == ["2"]


def test_login_tags_say_cluster_and_role():
    capture = build(make_args(spec(tags={"team": "llm"})))
    for resource in (capture.one("compute:VirtualMachine"), capture.one("network:NetworkInterface")):
        assert resource.inputs["tags"][TAG_CLUSTER] == "c1"
        assert resource.inputs["tags"][TAG_ROLE] == "login"
        assert resource.inputs["tags"]["team"] == "llm"


def test_login_custom_data_is_the_bootstrap_login_config_with_the_storage_names():
    cluster = spec(storage={"blob": {"enabled": True}})
    args = make_args(cluster, lustre_mount_host="lustre.c1.azcluster.internal", blob_account_name="c1data")
    capture = build(args)
    text = decode(capture.one("compute:VirtualMachine").inputs["osProfile"]["customData"])
    assert text.startswith("#cloud-config")
    assert "lustre.c1.azcluster.internal" in text
    assert "c1data" in text


def test_login_custom_data_waits_only_for_the_values_it_needs():
    """Outputs (blob account, identity client id) are rendered inside apply, into the same cloud-init."""
    import pulumi

    def program():
        args = make_args(
            spec(storage={"blob": {"enabled": True}}),
            lustre_mount_host="lustre.c1.azcluster.internal",
            blob_account_name=pulumi.Output.from_input("c1data"),
            identity_client_id=pulumi.Output.from_input("11111111-2222-4333-8444-555555555555"),
        )
        return LoginNode("c1-login", args).private_ip

    capture = harness.run(program)
    text = decode(capture.one("compute:VirtualMachine").inputs["osProfile"]["customData"])
    assert "c1data" in text
    assert "11111111-2222-4333-8444-555555555555" in text


def test_login_without_keys_is_refused():
    args = make_args()
    args.ssh_public_keys = []
    with pytest.raises(ValueError, match="no SSH public keys"):
        build(args)


def test_a_login_node_that_mounts_lustre_has_accelerated_networking_like_every_lustre_client():
    cluster = spec(storage={"lustre": {}})
    with_lustre = build(make_args(cluster, lustre_mount_host="lustre.c1.azcluster.internal"))
    assert with_lustre.one("network:NetworkInterface").inputs["enableAcceleratedNetworking"] is True
    without = build(make_args(spec()))
    assert without.one("network:NetworkInterface").inputs["enableAcceleratedNetworking"] is False
