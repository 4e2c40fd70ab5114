"""`plan` with monitoring on: the Azure side is in the graph, priced, and `plan` says what is public."""

from __future__ import annotations

import json
import textwrap

from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: watched
    zone: "1"
    pools:
      - name: gpu
        size: Standard_ND96isr_H100_v5
        nodes: 2
    monitoring:
      enabled: true
      public_network_access: {public}
    ssh:
      public_keys: ["{key}"]
"""


def _plan(tmp_path, public: bool) -> dict:
    stack = tmp_path / "Pulumi.watched.yaml"
    stack.write_text(textwrap.dedent(STACK).format(public=str(public).lower(), key=KEY), encoding="utf-8")
    result = run_cli("plan", str(stack), "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_plan_has_monitoring_in_the_graph_and_its_cost(tmp_path):
    document = _plan(tmp_path, public=True)
    types = {resource["type"] for resource in document["resources"]}
    assert {
        "azure-native:monitor:AzureMonitorWorkspace",
        "azure-native:monitor:DataCollectionRule",
        "azure-native:dashboard:Grafana",
        "azure-native:alertsmanagement:PrometheusRuleGroup",
    } <= types
    kinds = {item["kind"] for item in document["summary"]["cost_breakdown"]["resources"]}
    assert {"azure-native:dashboard:Grafana", "azure-native:monitor:AzureMonitorWorkspace"} <= kinds


def test_plan_says_what_is_public_and_why(tmp_path):
    public = {item["what"]: item["why"] for item in _plan(tmp_path, public=True)["public"]}
    assert "Grafana" in public and "Entra ID" in public["Grafana"]
    assert "Azure Monitor workspace query endpoint" in public
    assert "Private Link Scope" in public["metrics ingestion (data collection endpoint)"]
    private = {item["what"] for item in _plan(tmp_path, public=False)["public"]}
    assert "Grafana" not in private and "Azure Monitor workspace query endpoint" not in private
    assert "metrics ingestion (data collection endpoint)" not in private  # through the Private Link Scope


def test_human_plan_lists_the_public_surfaces(tmp_path):
    stack = tmp_path / "Pulumi.watched.yaml"
    stack.write_text(textwrap.dedent(STACK).format(public="true", key=KEY), encoding="utf-8")
    result = run_cli("plan", str(stack))
    assert result.exit_code == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "│ public " in line]
    assert any("Grafana: Entra ID sign-in required" in row for row in rows), result.stdout


def test_private_plan_names_the_approval_step_left_to_do(tmp_path):
    stack = tmp_path / "Pulumi.watched.yaml"
    stack.write_text(textwrap.dedent(STACK).format(public="false", key=KEY), encoding="utf-8")
    result = run_cli("plan", str(stack))
    assert result.exit_code == 0, result.stderr
    assert "approve Grafana's managed private endpoint" in " ".join(result.stderr.split())
