"""Monitoring rules (AZC120-AZC129, AZC155-AZC156).

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet. Every rule is quiet while
monitoring is off, so each QUIET table has the firing value with `monitoring.enabled: false` too.
"""

from __future__ import annotations

from typing import Any

import pytest

from azcluster.components import rules
from azcluster.components.rules import monitoring as monitoring_rules

from .cases import GUID, VNET_ID, assert_fires, assert_quiet, build, case_id

ON = {"monitoring.enabled": True}
OFF = {"monitoring.enabled": False}
WORKSPACE_ID = f"/subscriptions/{GUID}/resourceGroups/hub-rg/providers/Microsoft.Monitor/accounts/hub-amw"
LA_WORKSPACE_ID = (
    f"/subscriptions/{GUID}/resourceGroups/hub-rg/providers/Microsoft.OperationalInsights/workspaces/hub-la"
)
GRAFANA_ID = f"/subscriptions/{GUID}/resourceGroups/hub-rg/providers/Microsoft.Dashboard/grafana/hub-grafana"
SCOPE_ID = (
    f"/subscriptions/{GUID}/resourceGroups/hub-rg/providers/Microsoft.Insights/privateLinkScopes/hub-ampls"
)
PRIVATE = {**ON, "monitoring.public_network_access": False}
IN_HUB = {"network.existing_vnet_id": VNET_ID}
# An ND H100 v5 node sends 142 series (8 GPUs x 9 DCGM fields + 8 IB ports x 7 + 14 of its own; measured
# by benchmarks/bench_series.py through the real Prometheus), the login node 20 (one partition).
# 7,043 x 142 + 20 = 1,000,126 active series: just above 1,000,000.
OVER_SERIES = {"pools.0.nodes": 7043, "monitoring.scrape_interval_seconds": 120}
# 3,521 x 142 + 20 = 500,002 series at 30 s = 1,000,004 samples a minute: just above 1,000,000.
OVER_SAMPLES = {"pools.0.nodes": 3521}

FIRES = [
    ("AZC120", {**ON, "monitoring.existing_workspace_id": "hub-amw"}, "not an Azure Monitor workspace"),
    ("AZC120", {**ON, "monitoring.existing_workspace_id": LA_WORKSPACE_ID}, "not an Azure Monitor workspace"),
    ("AZC121", {**ON, "monitoring.existing_grafana_id": WORKSPACE_ID}, "not an Azure Managed Grafana"),
    ("AZC122", {**ON, "monitoring.scrape_interval_seconds": 5}, "6x the samples"),
    ("AZC122", {**ON, "monitoring.scrape_interval_seconds": 300}, "5-minute lookback"),
    ("AZC123", {**ON, "monitoring.alert_webhook": "http://hooks.example.com/x"}, "not an https:// URL"),
    ("AZC123", {**ON, "monitoring.alert_webhook": "https:///path-only"}, "not an https:// URL"),
    ("AZC124", {**ON, "monitoring.alert_emails": ["ops@example.com", "oncall"]}, "'oncall'"),
    ("AZC124", {**ON, "monitoring.alert_emails": ["a" * 60 + "@example.com"]}, "at most 64"),
    ("AZC125", {**ON, "monitoring.grafana_admin_principal_id": "hpc-admins"}, "not an object id"),
    ("AZC126", {**ON, **OVER_SERIES}, "about 1,000,126 active series"),
    ("AZC127", {**ON, **OVER_SAMPLES}, "about 1,000,004 samples a minute"),
    # 6,000 x 142 + 20 = 852,020 series (85%); at 120 s, 426,010 samples a minute (43%)
    ("AZC150", {**ON, "pools.0.nodes": 6000, "monitoring.scrape_interval_seconds": 120}, "852,020 active"),
    # 3,000 x 142 + 20 = 426,020 series at 30 s: 852,040 samples a minute (85%)
    ("AZC150", {**ON, "pools.0.nodes": 3000}, "852,040 events per minute is 85%"),
    ("AZC128", {**PRIVATE, "monitoring.existing_private_link_scope_id": "hub-ampls"}, "not an Azure Monitor"),
    ("AZC128", {**PRIVATE, "monitoring.existing_private_link_scope_id": WORKSPACE_ID}, "Private Link Scope"),
    ("AZC129", {**ON, "monitoring.existing_private_link_scope_id": SCOPE_ID}, "is not used"),
    ("AZC155", {**PRIVATE, **IN_HUB}, "one scope only"),
    (
        "AZC156",
        {**ON, "monitoring.existing_grafana_id": GRAFANA_ID},
        "not linked to the cluster's new workspace",
    ),
]

QUIET = [
    ("AZC120", {**ON, "monitoring.existing_workspace_id": WORKSPACE_ID}),
    ("AZC120", {**OFF, "monitoring.existing_workspace_id": "hub-amw"}),
    ("AZC121", {**ON, "monitoring.existing_grafana_id": GRAFANA_ID}),
    ("AZC121", {**OFF, "monitoring.existing_grafana_id": WORKSPACE_ID}),
    ("AZC122", {**ON, "monitoring.scrape_interval_seconds": 10}),
    ("AZC122", {**ON, "monitoring.scrape_interval_seconds": 299}),
    ("AZC122", {**OFF, "monitoring.scrape_interval_seconds": 5}),
    ("AZC123", {**ON, "monitoring.alert_webhook": "https://hooks.example.com/services/T0/B0"}),
    ("AZC123", {**OFF, "monitoring.alert_webhook": "http://hooks.example.com/x"}),
    ("AZC124", {**ON, "monitoring.alert_emails": ["ops@example.com", "hpc.oncall@lab.example.org"]}),
    ("AZC124", {**OFF, "monitoring.alert_emails": ["oncall"]}),
    ("AZC125", {**ON, "monitoring.grafana_admin_principal_id": GUID}),
    ("AZC125", {**OFF, "monitoring.grafana_admin_principal_id": "hpc-admins"}),
    ("AZC126", {**ON, "pools.0.nodes": 7042, "monitoring.scrape_interval_seconds": 120}),  # 999,984
    ("AZC126", {**OFF, **OVER_SERIES}),
    ("AZC127", {**ON, "pools.0.nodes": 3520}),  # 499,860 series: 999,720 a minute
    ("AZC127", {**ON, **OVER_SAMPLES, "monitoring.scrape_interval_seconds": 60}),
    ("AZC127", {**OFF, **OVER_SAMPLES}),
    ("AZC150", {**ON, "pools.0.nodes": 2800}),  # 397,620 series: 795,240 samples a minute (80% is not over)
    ("AZC150", {**ON, **OVER_SERIES}),  # over 100%: AZC126 says it
    ("AZC150", {**OFF, "pools.0.nodes": 6000, "monitoring.scrape_interval_seconds": 120}),
    ("AZC128", {**PRIVATE, "monitoring.existing_private_link_scope_id": SCOPE_ID}),
    ("AZC128", {**OFF, "monitoring.existing_private_link_scope_id": "hub-ampls"}),
    ("AZC129", {**PRIVATE, "monitoring.existing_private_link_scope_id": SCOPE_ID}),
    ("AZC129", {**OFF, "monitoring.existing_private_link_scope_id": SCOPE_ID}),
    ("AZC155", {**PRIVATE, **IN_HUB, "monitoring.existing_private_link_scope_id": SCOPE_ID}),
    ("AZC155", {**ON, **IN_HUB}),  # public: no scope at all
    ("AZC155", {**PRIVATE}),  # the cluster's own network: its own scope and zone
    ("AZC155", {**OFF, "monitoring.public_network_access": False, **IN_HUB}),
    (
        "AZC156",
        {
            **ON,
            "monitoring.existing_grafana_id": GRAFANA_ID,
            "monitoring.existing_workspace_id": WORKSPACE_ID,
        },
    ),
    ("AZC156", {**OFF, "monitoring.existing_grafana_id": GRAFANA_ID}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


def test_monitoring_is_off_by_default_until_nodes_send_metrics() -> None:
    """A stack file without `monitoring:` keeps planning as it did (`azcluster init` writes it on)."""
    assert build().monitoring.enabled is False


def test_series_estimate_counts_each_pool_by_its_size_and_the_login_node() -> None:
    h100 = build({"pools.0.nodes": 10, "login.enabled": False})
    assert monitoring_rules.estimated_series(h100) == 10 * 142
    assert monitoring_rules.estimated_series(build({"pools.0.nodes": 10})) == 10 * 142 + 20
    # an NC A100 v4 node: 4 GPUs, no InfiniBand: 4 x 9 + 2 up + MemAvailable + 11 of azcluster's own
    nc = build({"pools.0.size": "Standard_NC96ads_A100_v4", "pools.0.nodes": 10, "login.enabled": False})
    assert monitoring_rules.estimated_series(nc) == 10 * 50


def test_the_raise_request_names_a_figure_above_the_estimate() -> None:
    spec = build({**ON, **OVER_SERIES})
    [finding] = [f for f in rules.check(spec) if f.id == "AZC126"]
    assert "1,500,000 active time series" in finding.hint
    assert "support request" in finding.hint
