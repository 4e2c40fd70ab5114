"""`azcluster dashboard` and `up`'s dashboards step, through the real CLI: a recording fake engine for the
stack's outputs, the Azure CLI credential (a fake `az`), azure-core's pipeline and a loopback Grafana that
answers as Grafana's HTTP API does (tests/fakes/dataplane.py). No Pulumi, no Azure."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from azcluster import lifecycle
from azcluster.components import catalog
from azcluster.engine import OutputValue
from azcluster.ops import loginhosts
from tests.clirunner import run_cli
from tests.fakes.dataplane import DataPlaneServer, FakeGrafana
from tests.fakes.engine import FakeEngine

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 me@laptop"


def _stack(monitoring: str) -> str:
    return textwrap.dedent(
        f"""\
        config:
          azure-native:location: eastus
          azcluster:cluster:
            name: demo
            pools:
              - name: gpu
                size: Standard_ND96isr_H100_v5
                nodes: 2
            ssh:
              public_keys: ["{KEY}"]
        {monitoring}"""
    )


MONITORING = "    monitoring: {enabled: true}\n"


@pytest.fixture
def world(az_cli, tmp_path, monkeypatch):
    """The ARM fake's environment (subscription, CA bundle), a logged-in fake `az`, a fake Grafana whose
    certificate that CA signed, and a fake engine whose outputs name it."""
    arm = az_cli
    bin_dir = arm.tmp / "bin"  # where az_cli put the fake `az`
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.demo.yaml").write_text(_stack(MONITORING))
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(stacks))
    for name in ("CI", "GITHUB_ACTIONS", "PULUMI_BACKEND_URL", "AZCLUSTER_ALLOW_LOCAL_STATE"):
        monkeypatch.delenv(name, raising=False)
    service = FakeGrafana()
    service.token = arm.fake.token  # the fake `az` hands out one token whatever the audience
    with DataPlaneServer(service, tmp_path, ca=arm.server.ca) as server:
        engine = FakeEngine(stack="demo")
        engine.outputs_map = {
            "resource_group_name": OutputValue("demo-rg"),
            "grafana_endpoint": OutputValue(server.url),
        }
        monkeypatch.setattr(lifecycle, "engine_factory", lambda options: engine)
        monkeypatch.setattr(lifecycle, "preflight_runner", lambda loaded, connection: _Passing())
        monkeypatch.setattr(
            lifecycle, "hostfile_refresher", lambda *a: loginhosts.Refresh("skipped", reason="not here")
        )
        monkeypatch.setattr(lifecycle, "capacity_runner", _no_capacity)
        monkeypatch.setattr(lifecycle, "is_interactive", lambda: False)
        yield _World(arm, service, server, engine, stacks, bin_dir)


class _World:
    def __init__(self, arm, grafana, server, engine, stacks, bin_dir):
        self.arm, self.grafana, self.server, self.engine = arm, grafana, server, engine
        self.stacks, self.bin_dir = stacks, bin_dir

    def az_calls(self) -> str:
        log = self.bin_dir / "az-calls.log"
        return log.read_text() if log.exists() else ""


class _Passing:
    ok = True
    blockers: list = []

    def to_json(self):
        return {"ok": True, "blockers": []}


def _no_capacity(*args):
    from azcluster.errors import AzclusterError

    raise AzclusterError("not reached in this test", "", 3)


def test_dashboard_prints_grafana_and_each_dashboard_from_the_outputs(world):
    result = run_cli("dashboard", "demo", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["grafana"] == world.server.url
    assert [board["name"] for board in doc["dashboards"]] == list(catalog.DASHBOARDS)
    assert doc["dashboards"][0]["url"] == f"{world.server.url}/d/azc-demo-overview"
    assert world.grafana.requests == [] and world.az_calls() == ""  # read from the outputs only
    human = run_cli("dashboard", "demo", env={"COLUMNS": "200"})
    assert world.server.url in human.stdout and "demo: GPUs" in human.stdout


def test_dashboard_install_puts_them_into_grafana_with_a_grafana_token(world):
    result = run_cli("dashboard", "demo", "--install", "--json", "--auth", "cli")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert len(doc["installed"]["installed"]) == len(catalog.DASHBOARDS)
    assert sorted(world.grafana.dashboards) == sorted(f"azc-demo-{name}" for name in catalog.DASHBOARDS)
    assert "https://dashboard.azure.com" in world.az_calls()  # the token asked for Grafana's audience


def test_dashboard_install_refused_names_grafana_and_exits_1(world):
    world.grafana.inject("POST", "/api/dashboards/db", 403, body={"message": "Access denied to save"})
    result = run_cli("dashboard", "demo", "--install", "--json", "--auth", "cli")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert (
        doc["ok"] is False
        and "403" in doc["error"]["message"]
        and world.server.url in doc["error"]["message"]
    )
    assert "Grafana Editor" in doc["error"]["hint"] and "Traceback" not in result.stderr


def test_dashboard_of_a_stack_without_monitoring_says_how_to_turn_it_on(world):
    (world.stacks / "Pulumi.demo.yaml").write_text(_stack(""))
    result = run_cli("dashboard", "demo")
    assert result.exit_code == 1
    assert "has no monitoring" in result.stderr and "monitoring: {enabled: true}" in result.stderr


@pytest.fixture
def fresh_browsers(monkeypatch):
    """webbrowser reads $BROWSER once per process (its registry is cached); the CLI runs in this one."""
    import webbrowser

    monkeypatch.setattr(webbrowser, "_tryorder", None)
    monkeypatch.setattr(webbrowser, "_browsers", {})


def test_dashboard_open_hands_the_overview_to_the_browser(world, monkeypatch, fresh_browsers):
    opened = world.bin_dir / "opened"
    browser = world.bin_dir / "browser"
    browser.write_text(f"#!{sys.executable}\nimport sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n")
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(browser))
    result = run_cli("dashboard", "demo", "--open")
    assert result.exit_code == 0, result.stderr
    assert opened.read_text() == f"{world.server.url}/d/azc-demo-overview"


def test_dashboard_open_without_a_browser_says_so(world, monkeypatch, fresh_browsers):
    monkeypatch.setenv("BROWSER", "/nonexistent/browser")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("PATH", str(world.bin_dir))  # no console browser (www-browser, lynx...) either
    result = run_cli("dashboard", "demo", "--open")
    assert result.exit_code == 0, result.stderr
    assert "no web browser here: open" in result.stderr


def test_up_installs_the_dashboards_last(world):
    result = run_cli("up", "demo", "--yes", "--json", "--auth", "cli")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["dashboards"]["ok"] is True and len(doc["dashboards"]["installed"]) == len(catalog.DASHBOARDS)
    assert doc["access"]["grafana"] == world.server.url
    assert len(world.grafana.dashboards) == len(catalog.DASHBOARDS)


def test_up_with_a_grafana_that_never_answers_warns_and_still_succeeds(world, monkeypatch):
    monkeypatch.setenv("AZCLUSTER_AZURE_READ_TIMEOUT", "0.5")
    world.grafana.stall("/api/folders/")
    result = run_cli("up", "demo", "--yes", "--json", "--auth", "cli")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["dashboards"]["ok"] is False and "did not answer within 0.5s" in doc["dashboards"]["error"]
    assert "warning: the dashboards were not installed" in result.stderr
    assert "azcluster dashboard demo --install" in result.stderr


def test_up_without_monitoring_has_no_dashboards_step(world):
    (world.stacks / "Pulumi.demo.yaml").write_text(_stack(""))
    result = run_cli("up", "demo", "--yes", "--json", "--auth", "cli")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["dashboards"] is None and world.grafana.requests == []


def _hub_grafana(world, name: str) -> str:
    subscription = world.arm.fake.subscription_id
    return f"/subscriptions/{subscription}/resourceGroups/hub-rg/providers/Microsoft.Dashboard/grafana/{name}"


def test_a_hubs_grafana_is_found_through_resource_manager_and_gets_the_dashboards(world):
    """With existing_grafana_id the stack has no grafana_endpoint output: Grafana_Get gives the URL."""
    hub = _hub_grafana(world, "hub-grafana")
    world.arm.fake.add_grafana("hub-rg", "hub-grafana", world.server.url)
    (world.stacks / "Pulumi.demo.yaml").write_text(
        _stack(f"    monitoring: {{enabled: true, existing_grafana_id: {hub}}}\n")
    )
    del world.engine.outputs_map["grafana_endpoint"]
    result = run_cli("dashboard", "demo", "--install", "--json", "--auth", "cli")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["grafana"] == world.server.url
    assert world.arm.fake.calls("GET", "/providers/Microsoft.Dashboard/grafana/hub-grafana")
    assert len(world.grafana.dashboards) == len(catalog.DASHBOARDS)


def test_a_missing_hub_grafana_is_named(world):
    hub = _hub_grafana(world, "gone")
    (world.stacks / "Pulumi.demo.yaml").write_text(
        _stack(f"    monitoring: {{enabled: true, existing_grafana_id: {hub}}}\n")
    )
    del world.engine.outputs_map["grafana_endpoint"]
    result = run_cli("dashboard", "demo", "--auth", "cli")
    assert result.exit_code == 1 and "Grafana gone" in result.stderr and "Traceback" not in result.stderr
