"""Slurm in the nodes' and the controller's cloud-init, and in the Pulumi graph: the same munge key on
both sides (and nowhere in `plan --json`), the controller's DNS name, the configuration files, sizes."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from azcluster import mockrun
from azcluster.components import bootstrap, cluster_key
from azcluster.components.bootstrap import slurm
from azcluster.components.catalog import slurm_image, slurm_release
from azcluster.components.cluster import Cluster
from azcluster.components.spec import ClusterSpec
from azcluster.components.topology import island_slots
from tests.components.test_bootstrap_render import _files, _load, _node_env, _schema_check
from tests.components.test_cluster import cluster_data

H100 = "Standard_ND96isr_H100_v5"
MI300X = "Standard_ND96isr_MI300X_v5"
KEY = base64.b64encode(bytes(range(128))).decode()
ZONE = "llm.azcluster.internal"


def _spec(**fields) -> ClusterSpec:
    data = {"name": "llm", "location": "eastus", "pools": [{"name": "h100", "size": H100, "nodes": 250}]}
    data.update(fields)
    return ClusterSpec.model_validate(data)


def _boot() -> bootstrap.SlurmBoot:
    return bootstrap.SlurmBoot(KEY, ZONE)


def test_a_gpu_node_gets_its_island_slots_the_controller_name_and_the_key(tmp_path) -> None:
    text = bootstrap.render_cloud_config(_spec(), "h100", 2, slurm=_boot())
    _schema_check(tmp_path, text)
    document = _load(text)
    env = _node_env(document)
    assert env["AZC_ISLAND_KEY"] == "h100-i2"
    assert env["AZC_SLURM_SLOTS"] == "100" and env["AZC_SLURM_SLOT_WIDTH"] == "3"
    assert env["AZC_SLURM_CONTROLLER"] == f"slurmctld.{ZONE}" and env["AZC_SLURM_PORT"] == "6817"
    assert env["AZC_SLURM_VERSION"] == slurm_release().version
    assert env["AZC_SLURM_CONTAINERS"] == "1" and env["AZC_PYXIS_VERSION"] == slurm_release().pyxis_version
    files = _files(document)
    key = files[bootstrap.MUNGE_KEY_B64_PATH]
    assert key["content"].strip() == KEY and key["permissions"] == "0600"
    scripts = ("azc-slurm-node.sh", "azc-slurm-health.sh", "azc-slurm-taskprolog.sh", "azc-slurm-prolog.sh")
    for name in (*scripts, "azc-slurm-lib.sh"):
        assert files[f"{bootstrap.INSTALL_DIR}/{name}"]["content"] == bootstrap.read_script(name)
    assert "azc-slurm-node.service" in document["runcmd"][2]
    # The node's slot names are the ones slurm.conf declares for its island.
    assert island_slots(_spec().pools[0], None)[2].hostlist == "h100-i2-[000-099]"


def test_amd_nodes_get_no_container_tooling() -> None:
    spec = _spec(pools=[{"name": "mi", "size": MI300X, "nodes": 2}])
    env = _node_env(_load(bootstrap.render_cloud_config(spec, "mi", 0, slurm=_boot())))
    assert env["AZC_SLURM_CONTAINERS"] == "0" and "AZC_PYXIS_VERSION" not in env


def test_without_slurm_the_node_has_no_slurm_parts() -> None:
    document = _load(bootstrap.render_cloud_config(_spec(scheduler="none"), "h100", 0))
    assert not any("slurm" in path or "munge" in path for path in _files(document))
    assert not any(key.startswith("AZC_SLURM") for key in _node_env(document))


def test_the_controller_gets_the_rendered_configuration_key_and_daemons(tmp_path) -> None:
    spec = _spec(slurm={"accounting": {"enabled": True}})
    text = bootstrap.render_login_cloud_config(spec, None, None, slurm=_boot())
    _schema_check(tmp_path, text)
    document = _load(text)
    files = _files(document)
    settings = slurm.SlurmSettings.for_cluster(spec, ZONE)
    for name, content in slurm.render_configs(spec, settings).items():
        assert files[f"/etc/slurm/{name}"]["content"] == content
    assert files[bootstrap.MUNGE_KEY_B64_PATH]["content"].strip() == KEY
    assert _node_env(document)["AZC_SLURM_ACCOUNTING"] == "1"
    started = document["runcmd"][2]
    assert "azc-slurm-controller.service" in started and "azc-slurm-reaper.timer" in started
    for name in ("azc-slurm-controller.sh", "azc-slurm-reaper.sh"):
        assert f"{bootstrap.INSTALL_DIR}/{name}" in files


def test_extra_slurm_parameters_reach_the_controllers_slurm_conf() -> None:
    boot = bootstrap.SlurmBoot(KEY, ZONE, extra={"SuspendTime": "3600"})
    files = _files(_load(bootstrap.render_login_cloud_config(_spec(), None, None, slurm=boot)))
    assert "\nSuspendTime=3600\n" in files["/etc/slurm/slurm.conf"]["content"]


def test_slurm_boot_never_prints_the_key() -> None:
    assert KEY not in repr(_boot()) and KEY not in str(_boot())


def test_every_hpc_image_has_a_recorded_slurm_source() -> None:
    assert slurm_image("microsoft-dsvm:ubuntu-hpc:2204:latest").repo.endswith("slurm-ubuntu-jammy/")
    assert "arm64" in slurm_image("microsoft-dsvm:ubuntu-hpc:2404:latest").architectures
    assert "arm64" not in slurm_image("microsoft-dsvm:ubuntu-hpc:2204:latest").architectures
    assert slurm_image("microsoft-dsvm:ubuntu-hpc:2204-rocm:latest") is not None
    assert slurm_image("someone:else:image:1") is None


@pytest.mark.parametrize("nodes", [8, 1024, 4096])
def test_custom_data_fits_for_the_largest_clusters(nodes: int) -> None:
    spec = _spec(pools=[{"name": "h100", "size": H100, "nodes": nodes}])
    login = bootstrap.login_custom_data(spec, "lustre.x", "acct", slurm=_boot())
    node = bootstrap.custom_data(spec, "h100", 0, "lustre.x", "acct", slurm=_boot())
    assert len(login) <= bootstrap.CUSTOM_DATA_LIMIT and len(node) <= bootstrap.CUSTOM_DATA_LIMIT


# --- the Pulumi graph ------------------------------------------------------------------------------------


def _decoded(custom_data: str) -> str:
    return gzip.decompress(base64.b64decode(custom_data)).decode()


@pytest.fixture(scope="module")
def graph() -> mockrun.Capture:
    return mockrun.run(lambda: Cluster("llm", ClusterSpec.model_validate(cluster_data())).outputs)


def test_nodes_and_controller_share_one_generated_munge_key(graph) -> None:
    key = graph.one("pulumi-python:dynamic:Resource", "llm-munge-key").inputs["value"]
    assert len(base64.b64decode(key)) == cluster_key.MUNGE_KEY_BYTES
    sets = graph.of_type("compute:VirtualMachineScaleSet")
    assert sets
    for vmss in sets:
        text = _decoded(vmss.inputs["virtualMachineProfile"]["osProfile"]["customData"])
        assert f"content: |\n      {key}\n" in text
    login = graph.one("compute:VirtualMachine")
    assert key in _decoded(login.inputs["osProfile"]["customData"])


def test_the_controller_has_a_dns_name_in_the_cluster_zone(graph) -> None:
    record = graph.one("privatedns:PrivateRecordSet", "llm-slurmctld-dns")
    assert record.inputs["relativeRecordSetName"] == slurm.CONTROLLER_RECORD
    assert record.inputs["privateZoneName"] == "llm.azcluster.internal"
    login_nic = graph.one("network:NetworkInterface")
    assert record.inputs["aRecords"][0]["ipv4Address"] == graph.value["login_private_ip"]
    assert login_nic.urn in record.dependencies or any(
        login_nic.urn in urns for urns in record.property_dependencies.values()
    )


def test_the_key_is_a_secret_nowhere_in_the_plan_document() -> None:
    spec = ClusterSpec.model_validate(cluster_data())
    seen: list[str] = []

    def program() -> None:
        key = Cluster("llm", spec).munge_key
        key.value.apply(seen.append)

    planned = mockrun.run_program(program, "test")
    document = json.dumps([r.to_json() for r in planned.resources])
    assert seen and seen[0] not in document
    vmss = next(r for r in planned.resources if r.type.endswith("VirtualMachineScaleSet"))
    assert vmss.inputs["virtualMachineProfile"]["osProfile"]["customData"] == mockrun.SECRET_MASK
    # Only the secret itself is masked: the rest of the scale set stays readable in the plan.
    assert vmss.inputs["virtualMachineProfile"]["extensionProfile"]["extensions"]
    key = next(r for r in planned.resources if r.type == "pulumi-python:dynamic:Resource")
    assert key.inputs["value"] == mockrun.SECRET_MASK


def test_a_cluster_without_scheduler_has_no_key_record_or_slurm_files() -> None:
    spec = ClusterSpec.model_validate(cluster_data(scheduler="none"))
    capture = mockrun.run(lambda: Cluster("llm", spec).outputs)
    assert not capture.of_type("pulumi-python:dynamic:Resource")
    assert not [r for r in capture.of_type("privatedns:PrivateRecordSet") if "slurmctld" in r.name]
    login = capture.one("compute:VirtualMachine")
    assert "/etc/slurm/" not in _decoded(login.inputs["osProfile"]["customData"])
