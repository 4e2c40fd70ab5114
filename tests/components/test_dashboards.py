"""The cluster's Grafana dashboards (catalog/dashboards/*.json): every panel's PromQL parses (promtool) and,
evaluated by a real Prometheus holding a synthetic cluster's series (tests/components/synthetic_metrics.py,
backfilled with `promtool tsdb create-blocks-from openmetrics`), returns data: no panel is left empty by a
typo in a metric, a label or a variable. The variables' own queries find values too, and `status`'s
per-island query (ops/gpu_usage.py) is run the same way.

Prometheus and promtool are Debian's (package `prometheus`), of two releases: the host's (2.42 on Debian
12; .ci/run installs it) and sid's 3.5, the release the nodes run (catalog/metrics.yaml), from the sid
monitoring root of tests/realroots.py (MONITORING_PACKAGES). Prometheus 3 changed PromQL (regexes' `.`
matches a newline, range selectors are left-open, some functions renamed), so a panel is checked on both.
The tests that need one skip, saying so, where it is missing.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from azcluster.components import catalog
from azcluster.ops import gpu_usage
from tests.groups import REAL_DAEMONS

from . import promlab
from . import synthetic_metrics as synthetic

pytestmark = pytest.mark.xdist_group(REAL_DAEMONS)  # a real Prometheus (on a free port of its own)


@pytest.fixture(scope="module", params=promlab.RELEASES)
def release(request) -> str:
    return request.param


BUILT_IN = {"__rate_interval": "2m", "__interval": "30s", "__range": "1h"}
"""Grafana's own variables, as it would set them for the last hour at the default 30 s scrape."""
TEST_VALUES = {"cluster": synthetic.CLUSTER, "job": synthetic.JOB_ID}
"""The synthetic cluster's values for the variables that take one value; the others take their All (.*)."""


def _boards() -> dict[str, dict[str, Any]]:
    return catalog.dashboards()


def _variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board["templating"]["list"]}


def _targets() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every query of every panel."""
    return [
        (name, panel["title"], target["expr"])
        for name, board in _boards().items()
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def _substitute(expr: str, variables: dict[str, dict[str, Any]]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in BUILT_IN:
            return BUILT_IN[name]
        variable = variables[name]  # KeyError: a variable the dashboard does not declare
        if name in TEST_VALUES:
            return TEST_VALUES[name]
        assert variable.get("includeAll"), f"variable {name} needs a test value"
        return variable.get("allValue") or ".*"

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def test_every_dashboard_is_a_grafana_model_azcluster_can_install():
    boards = _boards()
    assert list(boards) == list(catalog.DASHBOARDS)
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)
    for name, board in boards.items():
        assert board["title"].startswith("azcluster: ") and "azcluster" in board["tags"], name
        variables = _variables(board)
        assert (
            variables["datasource"]["type"] == "datasource"
            and variables["datasource"]["query"] == "prometheus"
        )
        assert "cluster" in variables, f"{name}: every dashboard selects one cluster (a shared Grafana)"
        ids = [panel["id"] for panel in board["panels"]]
        assert len(set(ids)) == len(ids), name
        for panel in board["panels"]:
            where = f"{name}: {panel['title']}"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel.get("description"), f"{where} says what it shows"
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, where
            assert panel["targets"] and all(t.get("expr") for t in panel["targets"]), where


def test_every_variable_a_query_uses_is_declared():
    for board in _boards().values():
        variables = _variables(board)
        for panel in board["panels"]:
            for target in panel["targets"]:
                _substitute(target["expr"], variables)  # raises KeyError on an undeclared variable
        for variable in variables.values():
            if variable["type"] == "query":
                _substitute(variable["query"]["query"], variables)


def test_the_dashboards_cover_what_issue_19_asks():
    exprs = " ".join(expr for _, _, expr in _targets())
    for metric in (
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_XID_ERRORS",
        "node_infiniband_port_data_received_bytes_total",
        "node_infiniband_port_errors_received_total",
        "slurm_nodes_alloc",
        "azcluster_node_price_usd_per_hour",
        "azcluster_node_healthy",
        "hpc_job",
    ):
        assert metric in exprs, metric
    assert "by (pool, rack)" in exprs and "by (pool, island)" in exprs


def test_the_readme_shows_every_dashboard_and_what_every_alert_means():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Monitoring") :]
    section = section[: section.index("\n## ")]
    for board in _boards().values():
        title = board["title"].removeprefix("azcluster: ")
        assert f"| {title} |" in section, title
    for group in catalog.alert_rule_groups():
        for rule in group["rules"]:
            assert f"| {rule['alert']} |" in section, rule["alert"]


def test_every_panel_query_parses(tmp_path, release):
    """promtool checks each query as a recording rule's expression: one PromQL parser, Prometheus's own."""
    rules = []
    for index, (name, title, expr) in enumerate(_targets()):
        query = _substitute(expr, _variables(_boards()[name]))
        rules.append({"record": f"panel_{index}", "expr": query, "labels": {"panel": f"{name}: {title}"}})
    path = tmp_path / "panels.yaml"
    path.write_text(json.dumps({"groups": [{"name": "panels", "rules": rules}]}))
    promtool = promlab.program(promlab.bin_dir_or_skip(release), "promtool")
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


# --- a real Prometheus holding the synthetic cluster ----------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, release) -> Any:
    bin_dir = promlab.bin_dir_or_skip(release)
    with promlab.synthetic_prometheus(tmp_path_factory.mktemp(f"prometheus-{release}"), bin_dir) as server:
        yield server


def _has_data(answer: dict[str, Any]) -> bool:
    return answer.get("status") == "success" and bool(answer["data"]["result"])


@pytest.mark.parametrize(("board", "title", "expr"), _targets(), ids=[f"{b}:{t}" for b, t, _ in _targets()])
def test_every_panel_shows_the_synthetic_clusters_data(prometheus, board, title, expr):
    query = _substitute(expr, _variables(_boards()[board]))
    panel = next(p for p in _boards()[board]["panels"] if p["title"] == title)
    answer = (
        prometheus.range(query)
        if panel["type"] in ("timeseries", "state-timeline")
        else prometheus.instant(query)
    )
    assert answer.get("status") == "success", answer
    assert _has_data(answer), f"{board}: {title!r} is empty: {query}"


def test_every_variable_finds_values(prometheus):
    """`label_values(metric{...}, label)` as Grafana asks it: the series' values of that label."""
    for name, board in _boards().items():
        variables = _variables(board)
        for variable in variables.values():
            if variable["type"] != "query":
                continue
            query = _substitute(variable["query"]["query"], variables)
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
            assert match, f"{name}.{variable['name']}: {query}"
            answer = prometheus.get(
                f"/api/v1/label/{match.group(2)}/values",
                **{"match[]": match.group(1)},
                start=prometheus.end - 3600,
                end=prometheus.end,
            )
            assert answer["status"] == "success" and answer["data"], f"{name}.{variable['name']}: {query}"


def test_the_panels_show_the_synthetic_faults(prometheus):
    """Spot checks that the panels compute what they say, not only that they are not empty."""
    xid = prometheus.instant(_substitute(_expr("gpus", "XID errors now"), _variables(_boards()["gpus"])))[
        "data"
    ]["result"]
    assert [(r["metric"]["instance"], r["metric"]["gpu"], r["value"][1]) for r in xid] == [
        (synthetic.SICK_GPU[0], str(synthetic.SICK_GPU[1]), "79")
    ]
    down = prometheus.instant(
        _substitute(_expr("infiniband", "Ports not active"), _variables(_boards()["infiniband"]))
    )
    assert {(r["metric"]["instance"], r["metric"]["device"]) for r in down["data"]["result"]} == {
        synthetic.DOWN_PORT
    }
    cost = prometheus.instant(
        _substitute(_expr("overview", "Cost per hour now"), _variables(_boards()["overview"]))
    )
    # the price series is the catalogue's, sent by every node the agent runs on (the unreachable one too)
    assert float(cost["data"]["result"][0]["value"][1]) == pytest.approx(
        sum(n.price for n in synthetic.NODES)
    )
    job = prometheus.instant(_substitute(_expr("job", "GPUs of the job"), _variables(_boards()["job"])))
    assert len(job["data"]["result"]) == sum(
        n.gpus for n in synthetic.NODES if n.pool == "gpu" and n.island == 0
    )


def test_status_per_island_query_returns_each_island(prometheus):
    answer = prometheus.instant(gpu_usage.island_query(synthetic.CLUSTER, gpu_usage.WINDOW))
    assert answer["status"] == "success"
    rows = {
        (r["metric"]["pool"], r["metric"]["island"]): float(r["value"][1]) for r in answer["data"]["result"]
    }
    assert set(rows) == {("gpu", "0"), ("gpu", "1"), ("gb", "0")}
    assert rows[("gpu", "0")] > 50 > rows[("gpu", "1")]


def _expr(board: str, title: str) -> str:
    panel = next(p for p in _boards()[board]["panels"] if p["title"] == title)
    return panel["targets"][0]["expr"]
