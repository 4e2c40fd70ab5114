"""The cluster's alert rules (catalog/alerts.yaml): real promtool checks the file and runs a unit test for
every alert (fires on the bad series, stays silent on healthy ones), and the graph turns each group into
an Azure Prometheus rule group on the workspace, routed to the action group when receivers are named.

promtool is Debian's (package `prometheus`), of two releases (promlab.RELEASES): the host's (2.42 on Debian
12; .ci/run installs it) and sid's 3.5, the nodes' release; the tests that need it skip, saying so, where it
is missing.
"""

from __future__ import annotations

import json
import re
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from azcluster.components import catalog
from azcluster.components.monitoring import action_group_short_name, iso_duration

from . import promlab
from .test_monitoring import build

RULES_FILE = Path(str(resources.files("azcluster.components").joinpath("catalog/alerts.yaml")))
AZURE_RULES_PER_GROUP = 20
"""Azure Monitor service limits, Prometheus alert and recording rules: 20 rules per group, 1-15 minutes."""


def _rules() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in catalog.alert_rule_groups() for rule in group["rules"]}


def _annotations(alert: str, labels: dict[str, str], value: str) -> dict[str, str]:
    """The rule's annotations as Prometheus renders them, for the two template forms alerts.yaml uses."""

    def render(text: str) -> str:
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)
        return text.replace("{{ $value }}", value)

    return {key: render(text) for key, text in _rules()[alert]["annotations"].items()}


def _expected(alert: str, value: str, **labels: str) -> dict[str, Any]:
    labels = {**labels, "severity": _rules()[alert]["labels"]["severity"]}
    return {"exp_labels": labels, "exp_annotations": _annotations(alert, labels, value)}


GPU = {"instance": "gpu-0", "gpu": "0"}
IB = {"instance": "gpu-0", "device": "mlx5_ib0", "port": "1"}


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    inside = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{inside}}}", "values": values}


# alert -> (series that must fire it, eval time, expected alerts, healthy series that must not)
CASES: dict[str, tuple[list[dict], str, list[dict], list[dict]]] = {
    "GpuFellOffTheBus": (
        [_series("DCGM_FI_DEV_XID_ERRORS", "0 0 79x10", **GPU)],
        "5m",
        [_expected("GpuFellOffTheBus", "79", **GPU)],
        [_series("DCGM_FI_DEV_XID_ERRORS", "0x12", **GPU), _series("DCGM_FI_DEV_XID_ERRORS", "13x12", **GPU)],
    ),
    "GpuXidError": (
        [_series("DCGM_FI_DEV_XID_ERRORS", "0 0 48x10", **GPU)],
        "5m",
        [_expected("GpuXidError", "48", **GPU)],
        [_series("DCGM_FI_DEV_XID_ERRORS", "0x12", **GPU), _series("DCGM_FI_DEV_XID_ERRORS", "79x12", **GPU)],
    ),
    "GpuUncorrectableEccError": (
        [_series("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "0 0 0 2 2 2 2", **GPU)],
        "5m",
        [_expected("GpuUncorrectableEccError", "2", **GPU)],
        [_series("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "3x12", **GPU)],  # old errors, none new
    ),
    "GpuThermalThrottling": (
        [_series("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "65x12", **GPU)],  # 0x40 HW thermal + 0x1 idle
        "8m",
        [_expected("GpuThermalThrottling", "1", **GPU)],
        [_series("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "4x12", **GPU)],  # 0x4 power cap only
    ),
    "InfinibandPortDown": (
        [_series("node_infiniband_state_id", "4 4 1x10", **IB)],
        "6m",
        [_expected("InfinibandPortDown", "1", **IB)],
        [_series("node_infiniband_state_id", "4x12", **IB)],
    ),
    "InfinibandPortFlapping": (
        [_series("node_infiniband_link_downed_total", "0 1 2 3 4 5 6 6 6 6 6", **IB)],
        "10m",
        [_expected("InfinibandPortFlapping", "6", **IB)],
        [_series("node_infiniband_link_downed_total", "7x12", **IB)],
    ),
    "NodeUnreachable": (
        [_series("up", "1 1 0x10", instance="gpu-0", job="node")],
        "9m",
        [_expected("NodeUnreachable", "0", instance="gpu-0", job="node")],
        [_series("up", "1x12", instance="gpu-0", job="node")],
    ),
    "NodeUnhealthy": (
        [_series("azcluster_node_healthy", "1 0x10", instance="gpu-0")],
        "5m",
        [_expected("NodeUnhealthy", "0", instance="gpu-0")],
        [_series("azcluster_node_healthy", "1x12", instance="gpu-0")],
    ),
    "SlurmNodesDrained": (
        [_series("slurm_nodes_drain", "0 2x10", instance="login")],
        "8m",
        [_expected("SlurmNodesDrained", "2", instance="login")],
        [_series("slurm_nodes_drain", "0x12", instance="login")],
    ),
}


def test_every_alert_has_a_unit_test():
    assert set(CASES) == set(_rules())


@pytest.fixture(params=promlab.RELEASES)
def promtool(request) -> str:
    return promlab.program(promlab.bin_dir_or_skip(request.param), "promtool")


def test_promtool_accepts_the_rules_file(promtool):
    result = subprocess.run([promtool, "check", "rules", str(RULES_FILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_every_alert_fires_on_bad_series_and_stays_silent_on_healthy_ones(tmp_path, promtool):
    tests = []
    for alert, (bad, at, expected, healthy) in CASES.items():
        fires = {"eval_time": at, "alertname": alert, "exp_alerts": expected}
        silent = {"eval_time": "11m", "alertname": alert, "exp_alerts": []}
        tests.append({"interval": "1m", "input_series": bad, "alert_rule_test": [fires]})
        tests.append({"interval": "1m", "input_series": healthy, "alert_rule_test": [silent]})
    suite = tmp_path / "alerts_test.yaml"  # JSON is YAML: promtool reads it as it is
    suite.write_text(
        json.dumps({"rule_files": [str(RULES_FILE)], "evaluation_interval": "1m", "tests": tests}),
        encoding="utf-8",
    )
    result = subprocess.run([promtool, "test", "rules", str(suite)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_groups_fit_azures_limits():
    for group in catalog.alert_rule_groups():
        assert len(group["rules"]) <= AZURE_RULES_PER_GROUP, group["name"]
        assert 1 <= int(iso_duration(group["interval"])[2:-1]) <= 15 and iso_duration(
            group["interval"]
        ).endswith("M")
        for rule in group["rules"]:
            assert 0 <= int(rule["labels"]["severity"]) <= 4, rule["alert"]
            assert rule["annotations"]["meaning"].strip(), rule["alert"]


def test_each_group_is_a_rule_group_on_the_workspace_routed_nowhere_without_receivers():
    capture = build()
    workspace = capture.one("monitor:AzureMonitorWorkspace").id
    groups = capture.of_type("alertsmanagement:PrometheusRuleGroup")
    assert len(groups) == len(catalog.alert_rule_groups())
    assert capture.of_type("monitor:ActionGroup") == []
    rules = {}
    for group in groups:
        assert group.inputs["scopes"] == [workspace]
        assert group.inputs["interval"] == "PT1M"
        for rule in group.inputs["rules"]:
            assert "actions" not in rule
            rules[rule["alert"]] = rule
    assert set(rules) == set(_rules())
    unreachable = rules["NodeUnreachable"]
    assert (unreachable["expression"], unreachable["for"], unreachable["severity"]) == ("up == 0", "PT5M", 1)
    assert "for" not in rules["GpuFellOffTheBus"]


def test_named_receivers_get_every_alert():
    capture = build(alert_emails=["hpc-oncall@example.com"], alert_webhook="https://hooks.example.com/x")
    action_group = capture.one("monitor:ActionGroup")
    inputs = action_group.inputs
    assert inputs["location"] == "Global"
    assert inputs["groupShortName"] == action_group_short_name("llm")
    assert [r["emailAddress"] for r in inputs["emailReceivers"]] == ["hpc-oncall@example.com"]
    assert [r["serviceUri"] for r in inputs["webhookReceivers"]] == ["https://hooks.example.com/x"]
    for group in capture.of_type("alertsmanagement:PrometheusRuleGroup"):
        for rule in group.inputs["rules"]:
            assert rule["actions"] == [{"actionGroupId": action_group.id}]


@pytest.mark.parametrize("cluster", ["llm", "a-long-cluster-name", "abcdefgh-x"])
def test_action_group_short_names_fit(cluster):
    name = action_group_short_name(cluster)
    assert 1 <= len(name) <= 12 and not name.endswith("-")


@pytest.mark.parametrize(("prometheus", "azure"), [("5m", "PT5M"), ("30s", "PT30S"), ("1h", "PT1H")])
def test_durations_become_iso_8601(prometheus, azure):
    assert iso_duration(prometheus) == azure


def test_a_duration_azure_cannot_take_is_refused():
    with pytest.raises(ValueError, match="5m"):
        iso_duration("1h30m")
