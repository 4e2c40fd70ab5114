"""ElasticPower in the planned graph: the login node's own identity with a custom role that holds only the
power actions, assignable to and assigned at the cluster's resource group; the login node carries the
identity and the power programs; GPU nodes carry neither."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
import yaml

from azcluster import mockrun as harness
from azcluster.components import bootstrap, elastic
from azcluster.components.cluster import Cluster
from azcluster.components.power import power_role_guid, require_resource_group_scope

from .test_bootstrap_render import _schema_check
from .test_cluster import _identity_map_outputs, spec  # noqa: F401 (fixture)

RG_ID = f"/subscriptions/{harness.MOCK_SUBSCRIPTION}/resourceGroups/llm-rg"


@pytest.fixture(scope="module")
def elastic_cluster() -> harness.Capture:
    return harness.run(lambda: Cluster("llm", spec(elastic={"idle_minutes": 45})).outputs)


def _login_cloud_config(capture: harness.Capture) -> dict:
    vm = capture.one("compute:VirtualMachine")
    text = gzip.decompress(base64.b64decode(vm.inputs["osProfile"]["customData"])).decode()
    return yaml.safe_load(text)


def _power_identity(capture: harness.Capture) -> harness.Resource:
    return next(
        r
        for r in capture.of_type("managedidentity:UserAssignedIdentity")
        if r.inputs["resourceName"] == "llm-power"
    )


def test_the_role_lists_only_the_power_actions_scoped_to_the_resource_group(elastic_cluster):
    role = elastic_cluster.one("authorization:RoleDefinition")
    [permission] = role.inputs["permissions"]
    assert permission["actions"] == list(elastic.ROLE_ACTIONS)
    assert not permission.get("dataActions") and not permission.get("notActions")
    for action in permission["actions"]:
        assert action.startswith("Microsoft.Compute/virtualMachineScaleSets/"), action
        assert "*" not in action and not action.endswith(("/write", "/delete")), action
    assert {a.rsplit("/", 1)[-1] for a in permission["actions"]} == {"read", "action"}
    assert role.inputs["scope"] == RG_ID
    assert role.inputs["assignableScopes"] == [RG_ID]
    assert role.inputs["roleType"] == "CustomRole"
    assert role.inputs["roleDefinitionId"] == power_role_guid(harness.MOCK_SUBSCRIPTION, "llm-rg", "llm")


def test_the_role_is_assigned_to_the_login_nodes_own_identity_at_the_resource_group(elastic_cluster):
    role = elastic_cluster.one("authorization:RoleDefinition")
    power = _power_identity(elastic_cluster)
    assignment = next(
        a
        for a in elastic_cluster.of_type("authorization:RoleAssignment")
        if a.inputs["roleDefinitionId"].endswith(role.inputs["roleDefinitionId"])
    )
    assert assignment.inputs["scope"] == RG_ID
    assert assignment.inputs["principalId"] == power.outputs["principalId"]
    assert assignment.inputs["roleDefinitionId"] == (
        f"/subscriptions/{harness.MOCK_SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
        + role.inputs["roleDefinitionId"]
    )
    assert elastic_cluster.depends_on(assignment, role)


def test_only_the_login_node_carries_the_power_identity(elastic_cluster):
    power_id = _power_identity(elastic_cluster).outputs["id"]
    login = elastic_cluster.one("compute:VirtualMachine")
    assert power_id in login.inputs["identity"]["userAssignedIdentities"]
    for vmss in elastic_cluster.of_type("compute:VirtualMachineScaleSet"):
        assert power_id not in vmss.inputs["identity"]["userAssignedIdentities"]


def test_the_login_node_gets_the_programs_its_config_and_the_timer(elastic_cluster, tmp_path):
    document = _login_cloud_config(elastic_cluster)
    files = {entry["path"]: entry for entry in document["write_files"]}
    config = json.loads(files[elastic.CONFIG_PATH]["content"])
    assert config["client_id"] == _power_identity(elastic_cluster).outputs["clientId"]
    assert config["subscription_id"] == harness.MOCK_SUBSCRIPTION
    assert config["resource_group"] == "llm-rg" and config["idle_minutes"] == 45
    assert [i["scale_set"] for i in config["islands"]] == [
        "llm-train-ib0",
        "llm-train-ib1",
        "llm-train-ib2",
        "llm-infer",
    ]
    program = files[elastic.PROGRAM]
    assert program["content"] == bootstrap.read_script("azc-elastic.py") and program["permissions"] == "0755"
    assert "azc-elastic-watch.timer" in document["runcmd"][-1]
    # a Slurm cluster (the default): slurmctld execs one wrapper per command, as SlurmUser
    assert config["scheduler"] == "slurm"
    for path, command in elastic.SLURM_PROGRAMS.values():
        assert (
            files[path]["content"] == elastic.slurm_wrapper(command) and files[path]["permissions"] == "0755"
        )
    assert "User=slurm" in files[f"{bootstrap.UNIT_DIR}/azc-elastic-watch.service.d/user.conf"]["content"]
    # and the controller's slurm.conf hands idle and wanted nodes to them (45 idle minutes)
    slurm_conf = next(entry["content"] for path, entry in files.items() if path.endswith("/slurm.conf"))
    params = dict(line.split("=", 1) for line in slurm_conf.splitlines() if "=" in line and " " not in line)
    for key, (path, _command) in elastic.SLURM_PROGRAMS.items():
        assert params[key] == path
    assert params["SuspendTime"] == "2700" and params["ResumeTimeout"] == "1800"
    assert document["runcmd"][0] == ["systemd-tmpfiles", "--create", bootstrap.ELASTIC_TMPFILES_PATH]
    text = gzip.decompress(
        base64.b64decode(elastic_cluster.one("compute:VirtualMachine").inputs["osProfile"]["customData"])
    ).decode()
    _schema_check(tmp_path, text)


def test_without_elastic_there_is_no_role_and_no_power_identity():
    capture = harness.run(lambda: Cluster("llm", spec()).outputs)
    assert capture.of_type("authorization:RoleDefinition") == []
    assert [r.inputs["resourceName"] for r in capture.of_type("managedidentity:UserAssignedIdentity")] == [
        "llm-nodes"
    ]
    files = {entry["path"] for entry in _login_cloud_config(capture)["write_files"]}
    assert elastic.CONFIG_PATH not in files


def test_the_power_scope_must_be_exactly_one_resource_group():
    assert require_resource_group_scope(RG_ID) == RG_ID
    for scope in (
        f"/subscriptions/{harness.MOCK_SUBSCRIPTION}",
        RG_ID + "/providers/Microsoft.Compute/x",
        "/",
    ):
        with pytest.raises(ValueError, match="not exactly one resource group"):
            require_resource_group_scope(scope)


def test_gpu_nodes_open_the_utilisation_endpoint_only_for_the_idle_watcher():
    watched = bootstrap.render_cloud_config(spec(elastic={}, scheduler="none"), "train", 0)
    assert "AZC_HEALTH_BIND=0.0.0.0" in watched
    assert "AZC_HEALTH_BIND=" not in bootstrap.render_cloud_config(spec(), "train", 0)
    # With Slurm (the default scheduler) Slurm's own power saving decides, not the idle watcher.
    assert "AZC_HEALTH_BIND=" not in bootstrap.render_cloud_config(spec(elastic={}), "train", 0)
