"""Property: whatever stack file `validate` is given, it answers clearly and never with a traceback."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
BASE = {
    "config": {
        "azure-native:location": "eastus",
        "azcluster:cluster": {
            "name": "fuzz",
            "zone": "1",
            "network": {"address_space": "10.42.0.0/16", "bastion": True},
            "pools": [
                {"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 4, "island_max_nodes": 100}
            ],
            "storage": {"lustre": {"sku": "AMLFS-Durable-Premium-250", "capacity_tib": 8}},
            "ssh": {"admin_username": "azureuser", "public_keys": [KEY]},
        },
    }
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(["10.0.0.0/8", "8.8.8.0/24", "300.1.1.1/16", "Standard_ND96asr_v4", "1", "westeurope"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*prefix, index))


@st.composite
def mutated_documents(draw):
    document = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = [p for p in _paths(document) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
    return document


def _check(path: Path) -> None:
    result = run_cli("validate", str(path), "--json")
    assert result.exit_code in (0, 1, 2), result.stderr
    assert "Traceback" not in result.stderr and "error: unexpected" not in result.stderr, result.stderr
    if result.exit_code == 2:
        assert result.stderr.startswith("error:")
        document = json.loads(result.stdout)
        assert (
            document["ok"] is False and document["error"]["exit_code"] == 2 and document["error"]["message"]
        )
    else:
        document = json.loads(result.stdout)
        assert document["ok"] is (result.exit_code == 0)
        for finding in document["findings"]:
            assert set(finding) == {"id", "severity", "path", "message", "hint"}
            assert finding["severity"] in ("error", "warning", "info") and finding["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=mutated_documents())
def test_mutated_stack_files_get_a_clear_answer(tmp_path, document):
    path = tmp_path / "Pulumi.fuzz.yaml"
    with path.open("w") as stream:
        YAML(typ="safe", pure=True).dump(document, stream)
    _check(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200) | st.binary(max_size=100).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_gets_a_clear_answer(tmp_path, text):
    path = tmp_path / "Pulumi.fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    _check(path)
