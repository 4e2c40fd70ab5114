"""Cluster and the stack program under Pulumi mocks: composition, outputs, refusal, dependency chain."""

from __future__ import annotations

import base64
import gzip
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

import azcluster.components as components
from azcluster import mockrun as harness
from azcluster.components.cluster import Cluster, ClusterSpecError
from azcluster.components.program import build, build_from_config
from azcluster.components.spec import ClusterSpec
from azcluster.components.tags import TAG_CLUSTER, TAG_POOL

from .test_gpu_pool import KEY, identity_outputs

H100 = "Standard_ND96isr_H100_v5"
NC = "Standard_NC80adis_H100_v5"


@pytest.fixture(scope="module", autouse=True)
def _identity_map_outputs():
    with pytest.MonkeyPatch.context() as patch:
        for kind in ("VirtualMachineScaleSet", "VirtualMachine"):
            patch.setitem(harness.EXTRA_OUTPUTS, f"azure-native:compute:{kind}", identity_outputs)
        yield


def cluster_data(**fields) -> dict:
    return {
        "name": "llm",
        "location": "eastus",
        "zone": "1",
        "pools": [
            {"name": "train", "size": H100, "nodes": 250, "repair": True},
            {"name": "infer", "size": NC, "nodes": 3},
        ],
        "storage": {
            "lustre": {"sku": "AMLFS-Durable-Premium-250", "capacity_tib": 16},
            "blob": {"enabled": True, "containers": ["datasets"]},
        },
        "ssh": {"public_keys": [KEY]},
        **fields,
    }


def spec(**fields) -> ClusterSpec:
    return ClusterSpec.model_validate(cluster_data(**fields))


@pytest.fixture(scope="module")
def full() -> harness.Capture:
    """The whole cluster, built once: two pools, Lustre, blob, login node."""
    return harness.run(lambda: Cluster("llm", spec()).outputs)


def scale_sets(capture: harness.Capture) -> list[harness.Resource]:
    return capture.of_type("compute:VirtualMachineScaleSet")


def decoded_custom_data(vmss: harness.Resource) -> str:
    return gzip.decompress(
        base64.b64decode(vmss.inputs["virtualMachineProfile"]["osProfile"]["customData"])
    ).decode()


def test_cluster_builds_a_scale_set_per_island_of_every_pool(full):
    by_pool: dict[str, list[int]] = {}
    for vmss in scale_sets(full):
        by_pool.setdefault(vmss.inputs["tags"][TAG_POOL], []).append(vmss.inputs["sku"]["capacity"])
        assert vmss.inputs["tags"][TAG_CLUSTER] == "llm"
    assert sorted(by_pool["train"]) == [83, 83, 84]
    assert by_pool["infer"] == [3]


def test_cluster_outputs_name_every_scale_set_and_where_storage_is(full):
    out = full.value
    assert out["resource_group_name"] == "llm-rg"
    train = out["scale_sets"]["train"]
    assert [(s["island"], s["nodes"], s["name"]) for s in train] == [
        (0, 84, "llm-train-ib0"),
        (1, 83, "llm-train-ib1"),
        (2, 83, "llm-train-ib2"),
    ]
    assert all(s["id"].endswith("/virtualMachineScaleSets/" + s["name"]) for s in train)
    assert [s["name"] for s in out["scale_sets"]["infer"]] == ["llm-infer"]
    login_nic = full.one("network:NetworkInterface")
    assert out["login_private_ip"] == login_nic.outputs["ipConfigurations"][0]["privateIPAddress"]
    login_vm = full.one("compute:VirtualMachine")
    assert out["login_vm_id"].endswith("/virtualMachines/" + login_vm.inputs["vmName"])
    lustre = full.one("storagecache:AmlFilesystem")
    assert out["lustre_mgs_address"] == lustre.outputs["clientInfo"]["mgsAddress"]
    assert isinstance(out["lustre_mount_host"], str) and out["lustre_mount_host"]
    assert out["lustre_mount_host"] in out["lustre_mount_command"]
    account = full.one("storage:StorageAccount", "llm-storage-blob")
    assert out["blob_account_name"] == account.inputs["accountName"]
    home = full.one("storage:StorageAccount", "llm-home-account").inputs["accountName"]
    assert out["home_nfs_source"] == f"{home}.file.core.windows.net:/{home}/home"


def test_login_and_every_gpu_node_mount_the_shared_home_without_waiting_for_it(full):
    """The shared home is the same on the login node and every GPU node; nothing waits for the share."""
    source = full.value["home_nfs_source"]
    login = full.one("compute:VirtualMachine")
    login_text = gzip.decompress(base64.b64decode(login.inputs["osProfile"]["customData"])).decode()
    for text in [login_text, *(decoded_custom_data(vmss) for vmss in scale_sets(full))]:
        assert f"AZC_HOME_SOURCE={source}" in text and "AZC_HOME_MOUNT=/home" in text
    share = full.one("storage:FileShare")
    for vm in [*scale_sets(full), login]:
        assert not full.depends_on(vm, share), f"{vm.name} waits for the home share"


def test_no_compute_waits_for_managed_lustre(full):
    lustre = full.one("storagecache:AmlFilesystem")
    # The check can fail: something does wait for the file system (its DNS record).
    assert full.dependents(lustre), "expected the Lustre DNS record to depend on the file system"
    for vm in [*scale_sets(full), full.one("compute:VirtualMachine")]:
        assert not full.depends_on(vm, lustre), f"{vm.name} waits for Managed Lustre"


def test_nodes_get_the_lustre_name_blob_account_and_identity_in_cloud_init(full):
    out = full.value
    client_id = full.one("managedidentity:UserAssignedIdentity").outputs["clientId"]
    for vmss in scale_sets(full):
        text = decoded_custom_data(vmss)
        assert out["lustre_mount_host"] in text
        assert out["blob_account_name"] in text
        assert client_id in text
        assert out["lustre_mgs_address"] not in text  # the name, never the file system's address


def test_every_gpu_scale_set_of_the_cluster_has_the_health_extension_and_repairs_follow_the_pool(full):
    for vmss in scale_sets(full):
        extensions = vmss.inputs["virtualMachineProfile"]["extensionProfile"]["extensions"]
        assert [e["type"] for e in extensions].count("ApplicationHealthLinux") == 1
        repairs = vmss.inputs.get("automaticRepairsPolicy")
        if vmss.inputs["tags"][TAG_POOL] == "train":
            assert repairs and repairs["enabled"] is True
        else:
            assert repairs is None


def test_nodes_and_login_use_the_cluster_subnets_and_identity(full):
    subnets = {s.inputs["subnetName"].removeprefix("llm-"): s for s in full.of_type("network:Subnet")}
    identity = full.one("managedidentity:UserAssignedIdentity")
    for vmss in scale_sets(full):
        nic = vmss.inputs["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
        assert nic["ipConfigurations"][0]["subnet"]["id"] == subnets["compute"].id
        assert vmss.inputs["identity"]["userAssignedIdentities"] == [identity.id]
    login_nic = full.one("network:NetworkInterface")
    assert login_nic.inputs["ipConfigurations"][0]["subnet"]["id"] == subnets["login"].id


def test_every_resource_sits_under_the_cluster_component(full):
    root = full.one("azcluster:index:Cluster")
    by_urn = {r.urn: r for r in full.resources}
    for resource in full.resources:
        if resource is root:
            continue
        parent = resource.parent
        while parent in by_urn and parent != root.urn:
            parent = by_urn[parent].parent
        assert parent == root.urn, resource.urn


def test_cluster_without_storage_or_login_has_none_of_them():
    capture = harness.run(
        lambda: (
            Cluster(
                "small", spec(name="small", storage={}, login={"enabled": False}, scheduler="none")
            ).outputs
        )
    )
    assert not capture.of_type("storagecache:AmlFilesystem")
    assert [a.name for a in capture.of_type("storage:StorageAccount")] == ["small-home-account"]
    assert not capture.of_type("compute:VirtualMachine")
    out = capture.value
    assert out["login_private_ip"] is None
    assert out["lustre_mount_host"] is None and out["blob_account_name"] is None
    text = decoded_custom_data(scale_sets(capture)[0])
    assert "AZC_LUSTRE_HOST=" not in text and "AZC_BLOB_ACCOUNT=" not in text
    no_home = harness.run(
        lambda: Cluster("bare", spec(name="bare", storage={"home": {"enabled": False}})).outputs
    )
    assert not no_home.of_type("storage:FileShare") and no_home.value["home_nfs_source"] is None
    assert "AZC_HOME_SOURCE=" not in decoded_custom_data(scale_sets(no_home)[0])


def test_cluster_refuses_a_spec_with_error_findings_and_creates_nothing():
    bad = spec(pools=[{"name": "train", "size": "Standard_ND96isr_H100_v9", "nodes": 4}])
    created: list = []

    def program():
        created.append(Cluster("llm", bad))

    with pytest.raises(ClusterSpecError) as caught:
        harness.run(program)
    assert created == []
    assert caught.value.findings and all(f.severity == "error" for f in caught.value.findings)
    assert any("pools[0].size" in f.path for f in caught.value.findings)
    assert "azcluster:cluster.pools[0].size" in str(caught.value)


# --- the stack program -----------------------------------------------------------------------------------


@pytest.fixture
def stack_config():
    """Set the stack's config the way `pulumi up` would, and clear it afterwards."""

    def set_config(cluster: dict, location: str | None = "eastus") -> None:
        config = {"azcluster:cluster": json.dumps(cluster)}
        if location:
            config["azure-native:location"] = location
        pulumi.runtime.set_all_config(config)

    yield set_config
    pulumi.runtime.set_all_config({})


def test_build_exports_the_cluster_outputs():
    def program():
        build(spec(storage={}))
        return dict(pulumi.runtime.get_root_resource().outputs)

    exported = harness.run(program).value
    assert {
        "resource_group_name",
        "scale_sets",
        "login_private_ip",
        "lustre_mount_host",
        "blob_account_name",
    } <= set(exported)
    assert exported["scale_sets"]["train"][0]["name"] == "llm-train-ib0"


def test_build_from_config_reads_the_stack_config_and_key_files(stack_config, tmp_path):
    (tmp_path / "id.pub").write_text(KEY + "\n")
    data = cluster_data(storage={}, ssh={"public_keys": ["id.pub"]})
    del data["location"]
    stack_config(data, location="West Europe")
    capture = harness.run(lambda: build_from_config(base_dir=tmp_path).outputs)
    vmss = scale_sets(capture)[0]
    assert vmss.inputs["location"] == "westeurope"
    keys = vmss.inputs["virtualMachineProfile"]["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"]
    assert keys[0]["keyData"] == KEY


def test_build_from_config_reports_schema_errors_with_yaml_paths(stack_config):
    data = cluster_data()
    data["pools"][0]["nodes"] = -1
    data["pools"][1]["sise"] = "typo"
    stack_config(data)
    with pytest.raises(pulumi.RunError) as caught:
        harness.run(build_from_config)
    message = str(caught.value)
    assert "azcluster:cluster.pools[0].nodes" in message
    assert "azcluster:cluster.pools[1].sise" in message
    assert "Traceback" not in message


def test_build_from_config_reports_rule_errors_without_a_traceback(stack_config):
    stack_config(cluster_data(pools=[{"name": "train", "size": "Standard_ND96isr_H100_v9", "nodes": 4}]))
    with pytest.raises(pulumi.RunError, match=r"azcluster:cluster\.pools\[0\]\.size"):
        harness.run(build_from_config)


def test_build_from_config_without_cluster_config_says_what_to_add(stack_config):
    pulumi.runtime.set_all_config({})
    with pytest.raises(pulumi.RunError, match="azcluster:cluster"):
        harness.run(build_from_config)


# --- the package as a library ----------------------------------------------------------------------------


def test_package_exports_resolve_lazily():
    for name in components.__all__:
        assert getattr(components, name) is not None
    assert components.Cluster is Cluster
    with pytest.raises(AttributeError):
        components.NotAThing  # noqa: B018


def test_importing_the_spec_does_not_load_pulumi():
    code = (
        "import sys, components, azcluster.components.spec, azcluster.components.catalog; "
        "print('pulumi_azure_native' in sys.modules, 'pulumi' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


# --- stacks/: the Pulumi project ------------------------------------------------------------------------

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def test_pulumi_project_runs_python_from_the_project_venv():
    from ruamel.yaml import YAML

    project = YAML(typ="safe").load((STACKS / "Pulumi.yaml").read_text())
    assert project["name"] == "azcluster"
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "../.venv"}}
    venv = STACKS / project["runtime"]["options"]["virtualenv"]
    assert venv.resolve() == (STACKS.parent / ".venv").resolve()


def test_stack_main_builds_the_cluster_from_the_stack_config(stack_config):
    stack_config(cluster_data(name="viamain", storage={}))
    capture = harness.run(lambda: runpy.run_path(str(STACKS / "__main__.py")) and None)
    assert capture.one("azcluster:index:Cluster").name == "viamain"
    assert {s.inputs["vmScaleSetName"] for s in scale_sets(capture)} == {
        "viamain-train-ib0",
        "viamain-train-ib1",
        "viamain-train-ib2",
        "viamain-infer",
    }
