"""Property: whatever `validate` accepts, `plan` builds; what plan could fail on, validate reports first.

A CIDR with a trailing newline or a lone surrogate in a tag passed validate and then broke plan with Pulumi
internals (`<pulumi.output.Output object at ...>`). Each example runs the real CLI twice (plan under the
mocks takes about a second), so the example count stays small.
"""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from tests.azcluster.test_validate_fuzz import BASE
from tests.clirunner import run_cli

cidrs = st.sampled_from(["10.42.0.0/16", "10.0.0.0/8", "192.168.0.0/20", "172.16.0.0/12"]).flatmap(
    lambda cidr: st.sampled_from([cidr, f" {cidr}", f"{cidr}\n", f"{cidr} ", f"\t{cidr}"])
)
texts = st.text(max_size=12)  # any code point, lone surrogates included
EDITS = {
    ("network", "address_space"): cidrs,
    ("network", "subnets"): st.fixed_dictionaries({}, optional={"compute": cidrs, "login": cidrs}),
    ("network", "bastion"): st.booleans(),
    ("tags",): st.dictionaries(st.text(min_size=1, max_size=8), texts, max_size=3),
    ("pools", 0, "nodes"): st.integers(min_value=0, max_value=300),
    ("pools", 0, "island_max_nodes"): st.integers(min_value=1, max_value=300),
    ("pools", 0, "spot"): st.booleans(),
    ("pools", 0, "name"): st.sampled_from(["gpu", "train", "a-b", "x1"]) | texts,
    ("name",): st.sampled_from(["fuzz", "llm", "a1"]) | texts,
    ("storage", "lustre", "capacity_tib"): st.integers(min_value=0, max_value=200),
    ("zone",): st.sampled_from(["1", "2", "3"]),
}


@st.composite
def edited_clusters(draw):
    document = copy.deepcopy(BASE)
    cluster = document["config"]["azcluster:cluster"]
    for path in draw(st.lists(st.sampled_from(sorted(EDITS, key=str)), min_size=1, max_size=4, unique=True)):
        parent = cluster
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = draw(EDITS[path])
    return document


def _with(path: tuple, value: object) -> dict:
    document = copy.deepcopy(BASE)
    parent = document["config"]["azcluster:cluster"]
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return document


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=edited_clusters())
@example(document=_with(("network", "address_space"), "10.42.0.0/16\n"))
@example(document=_with(("tags",), {"team": "\udc80"}))
def test_what_validate_accepts_plan_builds(tmp_path, document):
    path = tmp_path / "Pulumi.fuzz.yaml"
    with path.open("w", encoding="utf-8") as stream:
        YAML(typ="safe", pure=True).dump(document, stream)
    validated = run_cli("validate", str(path), "--json")
    assert "unexpected" not in validated.stderr, validated.stderr
    if validated.exit_code != 0:
        return
    planned = run_cli("plan", str(path), "--json")
    assert planned.exit_code == 0, planned.stderr
    assert json.loads(planned.stdout)["resources"]
