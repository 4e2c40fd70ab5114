"""`plan` of an elastic stack: offline, the power role, identity and programs in the graph, and both
costs (all on, all idle) in the summary and the table."""

from __future__ import annotations

import base64
import gzip
import json
import textwrap
from pathlib import Path

import pytest

from azcluster import cost
from azcluster.components import catalog, elastic
from tests.azcluster.test_plan import KEY, no_network, spec_of  # noqa: F401 (fixture)
from tests.clirunner import run_cli

H100 = "Standard_ND96isr_H100_v5"


def test_all_idle_cost_leaves_the_login_node_the_warm_islands_and_the_other_resources():
    spec = spec_of(
        {
            "name": "llm",
            "pools": [{"name": "train", "size": H100, "nodes": 64, "island_max_nodes": 16}],
            "login": {"size": "Standard_D2s_v5"},
            "elastic": {"idle_minutes": 45, "keep_warm_islands": 1},
        }
    )
    summary = cost.summarize(spec)
    h100 = catalog.find_size(H100).price.usd_per_hour
    login = catalog.general_sizes()["Standard_D2s_v5"].price.usd_per_hour
    assert summary.elastic is not None
    assert summary.elastic.all_on_usd_per_hour == summary.cost_per_hour_usd
    # Storage, Bastion, NAT... bill the same whether nodes run or not (azcluster/cost.py).
    others = summary.resources_usd_per_hour
    assert others > 0
    assert summary.elastic.all_idle_usd_per_hour == pytest.approx(16 * h100 + login + others, abs=0.01)
    assert summary.to_json()["elastic"]["idle_minutes"] == 45


def test_a_cluster_that_is_not_elastic_has_no_idle_cost():
    spec = spec_of({"name": "llm", "pools": [{"name": "train", "size": H100, "nodes": 8}]})
    assert cost.summarize(spec).elastic is None
    assert cost.summarize(spec).to_json()["elastic"] is None


STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: llm
    zone: "1"
    pools:
      - name: h100
        size: Standard_ND96isr_H100_v5
        nodes: 64
        island_max_nodes: 16
    # No scheduler: the idle watcher runs, and the login custom data carries no munge key, so the plan
    # shows it (with Slurm it holds the cluster's key and is "[secret]").
    scheduler: none
    elastic:
      idle_minutes: 60
      keep_warm_islands: 1
    ssh:
      public_keys: ["{key}"]
"""


def test_plan_json_of_an_elastic_stack_shows_role_programs_and_both_costs(tmp_path: Path):
    path = tmp_path / "Pulumi.llm.yaml"
    path.write_text(textwrap.dedent(STACK).replace("{key}", KEY))
    result = run_cli("plan", str(path), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    types = {r["type"]: r for r in document["resources"]}
    role = types["azure-native:authorization:RoleDefinition"]
    assert role["inputs"]["permissions"][0]["actions"] == list(elastic.ROLE_ACTIONS)
    assert role["inputs"]["assignableScopes"] == [role["inputs"]["scope"]]
    assert role["inputs"]["scope"].endswith("/resourceGroups/llm-rg")
    assert "azcluster:index:ElasticPower" in types
    login = types["azure-native:compute:VirtualMachine"]
    cloud_config = gzip.decompress(base64.b64decode(login["inputs"]["osProfile"]["customData"])).decode()
    assert elastic.CONFIG_PATH in cloud_config and "azc-elastic-watch.timer" in cloud_config
    summary = document["summary"]["elastic"]
    assert summary["all_on_usd_per_hour"] == document["summary"]["cost_per_hour_usd"]
    assert summary["all_idle_usd_per_hour"] < summary["all_on_usd_per_hour"] / 3

    table = run_cli("plan", str(path))
    assert table.exit_code == 0
    assert "all idle" in table.output
