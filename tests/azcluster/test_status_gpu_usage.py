"""`status` with monitoring on: each island's GPU utilisation over the last hour, read from the workspace's
Prometheus query API (the real CLI, the fake `az`, azure-core's pipeline, the loopback Resource Manager
for the workspace's query endpoint and a loopback query API, tests/fakes/dataplane.py). The query itself
runs against a real Prometheus in tests/components/test_dashboards.py."""

from __future__ import annotations

import json
import time

import pytest

from azcluster.ops import gpu_usage
from tests.clirunner import run_cli
from tests.fakes.dataplane import DataPlaneServer, FakePrometheusQuery

H100 = "Standard_ND96isr_H100_v5"
STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: demo
    pools:
      - name: gpu
        size: Standard_ND96isr_H100_v5
        nodes: 4
{monitoring}"""
QUERY = gpu_usage.island_query("demo")


@pytest.fixture
def world(az_cli):
    arm = az_cli
    bin_dir = arm.tmp / "bin"  # where az_cli put the fake `az`
    arm.fake.add_cluster("demo", {"gpu": (H100, [2, 2])})
    service = FakePrometheusQuery()
    service.token = arm.fake.token
    with DataPlaneServer(service, arm.tmp, ca=arm.server.ca) as server:
        arm.fake.add_workspace("demo-rg", "demo-metrics", server.url)
        service.results[QUERY] = [
            {"metric": {"pool": "gpu", "island": "0"}, "value": 87.25},
            {"metric": {"pool": "gpu", "island": "1"}, "value": 3.0},
        ]
        arm.prometheus = service
        service.server_url = server.url
        arm.bin_dir = bin_dir
        yield arm


def _stack(world, monitoring: str = "    monitoring: {enabled: true}\n") -> str:
    path = world.tmp / "Pulumi.demo.yaml"
    path.write_text(STACK.format(monitoring=monitoring))
    return str(path)


def test_status_shows_each_islands_gpu_utilisation_of_the_last_hour(world):
    result = run_cli("status", _stack(world), "--auth", "cli", "--json", "--no-diagnose", "--no-slurm")
    assert result.exit_code == 0, result.stderr
    usage = json.loads(result.stdout)["gpu_utilization"]
    assert usage["error"] is None and usage["window"] == "1h"
    assert usage["islands"] == [
        {"pool": "gpu", "island": "0", "gpu_utilization_percent": 87.2},
        {"pool": "gpu", "island": "1", "gpu_utilization_percent": 3.0},
    ]
    (asked,) = world.prometheus.calls("GET", "/api/v1/query")
    assert asked.query["query"] == [QUERY] and abs(float(asked.query["time"][0]) - time.time()) < 60
    assert "https://prometheus.monitor.azure.com" in (world.bin_dir / "az-calls.log").read_text()
    human = run_cli(
        "status", _stack(world), "--auth", "cli", "--no-diagnose", "--no-slurm", env={"COLUMNS": "200"}
    )
    assert "GPUs 87% busy (last 1h)" in human.stdout and "GPUs 3% busy (last 1h)" in human.stdout


def test_an_island_without_metrics_says_so(world):
    world.prometheus.results[QUERY] = world.prometheus.results[QUERY][:1]
    human = run_cli(
        "status", _stack(world), "--auth", "cli", "--no-diagnose", "--no-slurm", env={"COLUMNS": "200"}
    )
    assert human.exit_code == 0, human.stderr
    assert "GPUs 87% busy" in human.stdout and "no GPU metrics (last 1h)" in human.stdout


def test_a_silent_query_endpoint_is_named_quickly_and_status_still_shows_the_nodes(world, monkeypatch):
    monkeypatch.setenv("AZCLUSTER_AZURE_READ_TIMEOUT", "0.5")
    world.prometheus.stall("/api/v1/query")
    started = time.monotonic()
    result = run_cli("status", _stack(world), "--auth", "cli", "--json", "--no-diagnose", "--no-slurm")
    assert time.monotonic() - started < 20
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    usage = doc["gpu_utilization"]
    assert "did not answer within 0.5s (2 tries)" in usage["error"]
    assert "/api/v1/query" in usage["error"] and usage["islands"] == []
    assert doc["found"] is True and doc["pools"][0]["islands"]  # the nodes are shown all the same
    human = run_cli(
        "status", _stack(world), "--auth", "cli", "--no-diagnose", "--no-slurm", env={"COLUMNS": "200"}
    )
    assert "GPU utilisation not read:" in human.stderr and "Traceback" not in human.stderr


def test_a_refused_query_says_which_role(world):
    world.prometheus.inject("GET", "/api/v1/query", 403, body={"status": "error", "error": "Forbidden"})
    result = run_cli("status", _stack(world), "--auth", "cli", "--json", "--no-diagnose", "--no-slurm")
    usage = json.loads(result.stdout)["gpu_utilization"]
    assert "answered 403" in usage["error"] and "Monitoring Data Reader" in usage["hint"]


def test_a_missing_workspace_is_a_line_not_a_failure(world):
    world.fake.workspaces.clear()
    result = run_cli("status", _stack(world), "--auth", "cli", "--json", "--no-diagnose", "--no-slurm")
    assert result.exit_code == 0, result.stderr
    usage = json.loads(result.stdout)["gpu_utilization"]
    assert "demo-metrics" in usage["error"] and world.prometheus.requests == []


def test_an_existing_workspace_is_read_where_the_spec_says(world):
    world.fake.workspaces.clear()
    world.fake.add_workspace("hub-rg", "hub-metrics", world.prometheus.server_url)
    hub = (
        f"/subscriptions/{world.fake.subscription_id}/resourceGroups/hub-rg/providers/Microsoft.Monitor/"
        "accounts/hub-metrics"
    )
    stack = _stack(world, f"    monitoring: {{enabled: true, existing_workspace_id: {hub}}}\n")
    result = run_cli("status", stack, "--auth", "cli", "--json", "--no-diagnose", "--no-slurm")
    assert json.loads(result.stdout)["gpu_utilization"]["islands"][0]["island"] == "0"


def test_no_monitoring_or_no_metrics_asks_nothing(world):
    off = run_cli("status", _stack(world, ""), "--auth", "cli", "--json", "--no-diagnose", "--no-slurm")
    assert json.loads(off.stdout)["gpu_utilization"] is None
    skipped = run_cli(
        "status", _stack(world), "--auth", "cli", "--json", "--no-diagnose", "--no-slurm", "--no-metrics"
    )
    assert json.loads(skipped.stdout)["gpu_utilization"] is None
    assert world.prometheus.requests == [] and not world.fake.calls("GET", "Microsoft.Monitor")


def test_an_island_whose_hour_averaged_to_nan_has_no_figure_and_the_json_stays_json(world):
    # Prometheus sends NaN and infinities as the strings "NaN", "+Inf" (its HTTP API); Python's
    # json.dumps would write a bare NaN, which no JSON parser accepts.
    world.prometheus.results[QUERY] = [
        {"metric": {"pool": "gpu", "island": "0"}, "value": float("nan")},
        {"metric": {"pool": "gpu", "island": "1"}, "value": float("inf")},
    ]
    result = run_cli("status", _stack(world), "--auth", "cli", "--json", "--no-diagnose", "--no-slurm")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in --json"))
    assert document["gpu_utilization"]["islands"] == []
    human = run_cli(
        "status", _stack(world), "--auth", "cli", "--no-diagnose", "--no-slurm", env={"COLUMNS": "200"}
    )
    assert "nan%" not in human.stdout.lower() and "inf%" not in human.stdout.lower()
    assert human.stdout.count("no GPU metrics (last 1h)") == 2


def test_a_query_error_that_looks_like_markup_or_holds_escapes_is_shown_as_text(world):
    hostile = "[red]x[/red] \x1b[2J\x1b]0;owned\x07 bad"
    world.prometheus.inject("GET", "/api/v1/query", 400, body={"status": "error", "error": hostile})
    human = run_cli(
        "status", _stack(world), "--auth", "cli", "--no-diagnose", "--no-slurm", env={"COLUMNS": "200"}
    )
    assert human.exit_code == 0, human.stderr
    assert "[red]x[/red]" in human.stderr and "\\x1b[2J" in human.stderr
    assert "\x1b" not in human.stderr and "\x07" not in human.stderr  # not a terminal: no colour codes either


def test_the_workspace_is_read_with_an_api_version_azure_serves(world, monkeypatch):
    # The ARM fake answers Microsoft.Monitor/accounts only at versions Azure publishes for it (as Azure
    # does: 400 NoRegisteredProviderFound); a made-up one is named in the line, never a traceback.
    monkeypatch.setattr(gpu_usage, "WORKSPACE_API_VERSION", "2023-04-01")
    result = run_cli("status", _stack(world), "--auth", "cli", "--json", "--no-diagnose", "--no-slurm")
    assert result.exit_code == 0, result.stderr
    usage = json.loads(result.stdout)["gpu_utilization"]
    assert "2023-04-01" in usage["error"] and world.prometheus.requests == []


@pytest.mark.parametrize(
    "body",
    [[], "ok", {"status": "success", "data": None}, {"status": "success", "data": {"result": [None, "x"]}}],
)
def test_an_answer_that_is_not_prometheus_shape_is_a_line_not_a_traceback(world, body):
    # A proxy or gateway in the way answers 200 with JSON of its own: status stays about the nodes.
    world.prometheus.inject("GET", "/api/v1/query", 200, body=body)
    result = run_cli("status", _stack(world), "--auth", "cli", "--json", "--no-diagnose", "--no-slurm")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["found"] is True and document["gpu_utilization"]["islands"] == []
