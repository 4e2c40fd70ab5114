"""azcluster as a Pulumi component package: the schema the SDK's analyzer infers matches the spec, and
the provider's construct path (what a YAML or TypeScript program reaches) builds the same graph as a
Python program importing the components."""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pulumi
import pytest
from pulumi.provider.experimental.component import ComponentProvider
from pydantic import BaseModel
from ruamel.yaml import YAML

from azcluster import mockrun as harness
from azcluster.components import cluster_key, plugin
from azcluster.components.cluster import Cluster
from azcluster.components.gpu_pool import GpuPool, GpuPoolArgs
from azcluster.components.spec import ClusterSpec
from tests.components.test_gpu_pool import identity_outputs

REPO = Path(__file__).resolve().parents[2]
YAML_EXAMPLE = REPO / "examples" / "yaml-cluster" / "Pulumi.yaml"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 you@laptop"


@pytest.fixture(scope="module", autouse=True)
def _identity_map_outputs():
    """Azure answers a VM's list of user-assigned identities with a map (see test_gpu_pool)."""
    with pytest.MonkeyPatch.context() as patch:
        for kind in ("VirtualMachineScaleSet", "VirtualMachine"):
            patch.setitem(harness.EXTRA_OUTPUTS, f"azure-native:compute:{kind}", identity_outputs)
        yield


@pytest.fixture(scope="module")
def provider() -> ComponentProvider:
    return ComponentProvider(plugin.provider_components(), plugin.PACKAGE_NAME, "azcluster", "0.0.0")


@pytest.fixture(scope="module")
def schema(provider) -> dict[str, Any]:
    return json.loads(provider.schema)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def unwrap(tp: Any) -> Any:
    """The schema-relevant type of a pydantic annotation: no Optional, no Annotated."""
    while True:
        origin = get_origin(tp)
        if origin is typing.Annotated:
            tp = get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            (tp,) = [a for a in get_args(tp) if a is not type(None)]
        else:
            return tp


def resolve(schema: dict, prop: dict) -> dict:
    ref = prop.get("$ref", "")
    return schema["types"][ref.removeprefix("#/types/")] if ref.startswith("#/types/") else prop


# --- the schema --------------------------------------------------------------------------------------------


def check_model(
    schema: dict, model: type[BaseModel], properties: dict, required: list[str], path: str
) -> int:
    """Every field of `model` in the schema: camelCase name, the field's description, required as the spec
    says, enums with the Literal's values, nested models as their own types. Returns fields checked."""
    assert set(properties) == {camel(n) for n in model.model_fields}, path
    assert sorted(required) == sorted(camel(n) for n, f in model.model_fields.items() if f.is_required()), (
        path
    )
    checked = 0
    for name, info in model.model_fields.items():
        prop = properties[camel(name)]
        where = f"{path}.{name}"
        assert prop["description"] == info.description, where
        tp = unwrap(info.annotation)
        if get_origin(tp) is list:
            assert prop["type"] == "array", where
            prop, tp = prop["items"], unwrap(get_args(tp)[0])
        if get_origin(tp) is Literal:
            enum = resolve(schema, prop)
            assert [member["value"] for member in enum["enum"]] == list(get_args(tp)), where
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            nested = resolve(schema, prop)
            assert nested["description"].strip() == (tp.__doc__ or "").strip(), where
            checked += check_model(schema, tp, nested["properties"], nested.get("required", []), where)
        elif tp in (str, int, bool, float):
            expected = {str: "string", int: "integer", bool: "boolean", float: "number"}[tp]
            assert prop["type"] == expected, where
        checked += 1
    return checked


def test_cluster_inputs_are_the_spec_field_for_field(schema):
    cluster = schema["resources"]["azcluster:index:Cluster"]
    assert cluster["isComponent"] is True
    count = check_model(
        schema, ClusterSpec, cluster["inputProperties"], cluster["requiredInputs"], "ClusterSpec"
    )
    assert count > 40  # the whole tree was walked, not only the top level


def test_enums_carry_the_values_the_spec_accepts(schema):
    sku = schema["types"]["azcluster:index:LustreSku"]
    assert sku["type"] == "string"
    assert "AMLFS-Durable-Premium-250" in {member["value"] for member in sku["enum"]}


def test_gpu_pool_inputs_are_gpu_pool_args_with_their_docstrings(schema):
    pool = schema["resources"]["azcluster:index:GpuPool"]
    docs = plugin.attribute_docstrings(GpuPoolArgs)
    inputs = pool["inputProperties"]
    assert set(inputs) == {camel(n) for n in plugin._GPU_POOL_INPUTS}
    for name in plugin._GPU_POOL_INPUTS:
        assert inputs[camel(name)]["description"] == docs[name], name
    assert sorted(pool["requiredInputs"]) == sorted(
        ["clusterName", "pool", "location", "resourceGroupName", "subnetId", "identityId"]
    )
    # Values other resources produce may be outputs; the pool's shape must be known while the program runs.
    assert "plain" not in inputs["subnetId"]
    assert inputs["pool"]["plain"] is True


def test_every_output_is_described(schema):
    for token in ("azcluster:index:Cluster", "azcluster:index:GpuPool"):
        outputs = schema["resources"][token]["properties"]
        assert outputs, token
        for name, prop in outputs.items():
            assert prop.get("description"), f"{token}.{name} has no description"
    scale_sets = schema["resources"]["azcluster:index:Cluster"]["properties"]["scaleSets"]
    info = resolve(schema, scale_sets["additionalProperties"]["items"])
    assert set(info["properties"]) == {"island", "nodes", "name", "id"}


def test_the_declared_outputs_are_what_the_cluster_registers():
    spec = ClusterSpec.model_validate(
        {"name": "outs", "location": "eastus", "pools": [], "ssh": {"public_keys": [KEY]}}
    )
    built: dict[str, Cluster] = {}
    harness.run(lambda: built.setdefault("cluster", Cluster("outs", spec)) and None)
    cluster = built["cluster"]
    assert set(cluster.outputs) == set(plugin.output_annotations(Cluster))
    for name in cluster.outputs:
        assert getattr(cluster, name) is cluster.outputs[name], name


def test_a_spec_type_the_schema_cannot_express_is_named():
    class Odd(BaseModel):
        """Not expressible."""

        choice: int | str

    with pytest.raises(plugin.PluginTypeError, match=r"Odd\.choice"):
        plugin._Renderer().model(Odd)


# --- the construct path ------------------------------------------------------------------------------------


def wire(value: Any) -> Any:
    """Property values as the engine sends them: numbers are floats on the wire."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


def snake(value: Any) -> Any:
    """The YAML program's camelCase properties as the stack file's snake_case keys."""
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower(): snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake(v) for v in value]
    return value


def graph(capture: harness.Capture) -> list[tuple]:
    """The graph as comparable rows: type, name, parent, inputs, dependencies, protect, retain."""
    return sorted(
        (
            r.type,
            r.name,
            r.parent,
            json.dumps(r.inputs, sort_keys=True, default=str),
            tuple(sorted(r.dependencies)),
            r.protect,
            r.retain_on_delete,
        )
        for r in capture.resources
    )


def yaml_properties() -> dict[str, Any]:
    program = YAML(typ="safe").load(YAML_EXAMPLE.read_text())
    assert program["runtime"] == "yaml"
    assert program["packages"]["azcluster"] == "../../components"
    resource = program["resources"]["lab"]
    assert resource["type"] == "azcluster:index:Cluster"
    return resource["properties"]


def test_the_yaml_example_builds_the_same_graph_as_the_python_import(provider, monkeypatch):
    # Each build makes a fresh random munge key (components/cluster_key.py); the same one for both here.
    monkeypatch.setattr(cluster_key, "new_key", lambda: "c2FtZS1rZXk=")
    properties = yaml_properties()
    via_provider = harness.run(
        lambda: provider.construct("lab", "azcluster:index:Cluster", wire(properties), None).state
    )
    spec = ClusterSpec.model_validate(snake(properties))
    via_python = harness.run(lambda: Cluster("lab", spec).outputs)

    assert len(via_python.resources) > 20
    assert graph(via_provider) == graph(via_python)
    # The provider returns the outputs under the schema's names.
    assert via_provider.value["resourceGroupName"] == via_python.value["resource_group_name"]
    assert via_provider.value["scaleSets"] == via_python.value["scale_sets"]


def test_gpu_pool_through_the_provider_matches_the_python_import(provider):
    pool = {"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 3, "islandMaxNodes": 2}
    inputs = {
        "clusterName": "lab",
        "pool": pool,
        "location": "eastus",
        "resourceGroupName": "lab-rg",
        "subnetId": "/subscriptions/s/resourceGroups/lab-rg/providers/"
        "Microsoft.Network/virtualNetworks/v/subnets/c",
        "identityId": "/subscriptions/s/resourceGroups/lab-rg/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/lab-nodes",
        "sshPublicKeys": [KEY],
    }
    via_provider = harness.run(
        lambda: provider.construct("extra", "azcluster:index:GpuPool", wire(inputs), None)
    )

    spec = ClusterSpec.model_validate(
        {"name": "lab", "location": "eastus", "pools": [snake(pool)], "ssh": {"public_keys": [KEY]}}
    )
    args = GpuPoolArgs.from_spec(
        spec,
        spec.pools[0],
        resource_group_name=inputs["resourceGroupName"],
        subnet_id=inputs["subnetId"],
        identity_id=inputs["identityId"],
    )
    via_python = harness.run(lambda: GpuPool("extra", args) and None)
    assert len(via_python.of_type("compute:VirtualMachineScaleSet")) == 2  # two islands
    assert graph(via_provider) == graph(via_python)


def test_an_invalid_cluster_through_the_provider_names_the_finding(provider):
    properties = yaml_properties() | {
        "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v9", "nodes": 2}]
    }
    with pytest.raises(Exception, match=r"AZC\d{3}.*pools\[0\]\.size"):
        harness.run(lambda: provider.construct("lab", "azcluster:index:Cluster", wire(properties), None))


def test_the_plugin_manifest_runs_the_entry_point_with_the_project_venv():
    manifest = YAML(typ="safe").load((REPO / "components" / "PulumiPlugin.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    venv = REPO / "components" / manifest["runtime"]["options"]["virtualenv"]
    assert venv.resolve() == (REPO / ".venv").resolve()
    main = (REPO / "components" / "__main__.py").read_text()
    assert "from azcluster.components.plugin import main" in main


def test_the_generated_source_is_inspectable_like_a_file():
    """The analyzer reads descriptions with inspect.getsource; so must anyone debugging the schema."""
    import inspect

    module = plugin.generated_module()
    source = inspect.getsource(module.ClusterArgs)
    assert source.startswith("class ClusterArgs(TypedDict):")
    assert ClusterSpec.model_fields["zone"].description in source
    assert issubclass(module.Cluster, Cluster) and issubclass(module.Cluster, pulumi.ComponentResource)
