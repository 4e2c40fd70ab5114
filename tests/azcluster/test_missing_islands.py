"""A scale set deleted outside azcluster: `status`, `stop` and `start` compare what Azure has with the
islands the spec expects, name each missing one, and exit 1 (they used to exit 0 with one island fewer)."""

from __future__ import annotations

import json

import pytest

from azcluster.ops.power import start_cluster, stop_cluster
from azcluster.ops.status import cluster_status
from tests.azcluster.demo import H100, NC
from tests.clirunner import run_cli

STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: demo
    pools:
      - {name: gpu, size: Standard_ND96isr_H100_v5, nodes: 5, island_max_nodes: 3}
      - {name: infer, size: Standard_NC80adis_H100_v5, nodes: 1}
"""


@pytest.fixture
def deleted(az_cli):
    """The demo cluster as the spec above builds it (gpu in islands of 3 and 2, infer), then island gpu/1
    deleted in the portal. Returns the stack file's path."""
    arm = az_cli
    arm.fake.add_cluster("demo", {"gpu": (H100, [3, 2]), "infer": (NC, [1])})
    del arm.fake.scale_sets[("demo-rg", "demo-gpu-1")]
    path = arm.tmp / "Pulumi.demo.yaml"
    path.write_text(STACK, encoding="utf-8")
    return str(path)


def test_status_names_the_missing_island_and_exits_1(deleted) -> None:
    result = run_cli("status", deleted, "--auth", "cli", "--no-diagnose")
    assert result.exit_code == 1, result.stderr
    said = " ".join(result.stderr.split())
    assert "missing island gpu/1 (scale set demo-gpu-ib1)" in said
    assert "azcluster refresh demo" in said
    assert "pool gpu island 0" in result.stdout  # what is there is still shown


def test_status_json_lists_missing_islands(deleted) -> None:
    result = run_cli("status", deleted, "--auth", "cli", "--no-diagnose", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["missing_islands"] == [{"pool": "gpu", "island": 1, "scale_set": "demo-gpu-ib1"}]
    assert [i["island"] for p in doc["pools"] for i in p["islands"]] == [0, 0]


@pytest.mark.parametrize("command", ["stop", "start"])
def test_stop_and_start_do_the_rest_name_the_missing_island_and_exit_1(deleted, command) -> None:
    args = [command, deleted, "--auth", "cli", "--json"] + (["--no-hostfiles"] if command == "start" else [])
    result = run_cli(*args)
    assert result.exit_code == 1, result.stderr
    doc = json.loads(result.stdout)
    by_island = {(o["pool"], o["island"]): o for o in doc["islands"]}
    assert by_island[("gpu", 0)]["ok"] and by_island[("infer", 0)]["ok"]
    missing = by_island[("gpu", 1)]
    assert not missing["ok"] and missing["code"] == "NotFound" and missing["scale_set"] == "demo-gpu-ib1"
    assert "demo-gpu-ib1" in missing["message"] and "azcluster up demo" in missing["hint"]


def test_a_complete_cluster_reports_nothing_missing(arm) -> None:
    from azcluster.components.spec import ClusterSpec

    arm.fake.add_cluster("demo", {"gpu": (H100, [3, 2])})
    spec = ClusterSpec.model_validate(
        {
            "name": "demo",
            "location": "eastus",
            "pools": [{"name": "gpu", "size": H100, "nodes": 5, "island_max_nodes": 3}],
        }
    )
    arm.fake.lro_polls = 0
    assert cluster_status(spec, arm.context(), "demo", diagnose=False).missing == []
    assert stop_cluster(spec, arm.context(), "demo", progress=False).ok
    assert start_cluster(spec, arm.context(), "demo", progress=False).ok
