"""The preflight/status/stop/start/hosts commands end to end: the real CLI, the Azure CLI credential
(a fake `az` on PATH), the real SDK, the loopback Resource Manager. Exit codes and stdout contracts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clirunner import run_cli
from tests.fakes.arm import fake_az_script

H100 = "Standard_ND96isr_H100_v5"

STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: demo
    pools:
      - name: gpu
        size: {size}
        nodes: {nodes}
"""


@pytest.fixture
def cli(arm, monkeypatch):
    """The fake ARM plus a logged-in fake `az`; long-running operations end on their first poll."""
    bin_dir = arm.tmp / "bin"
    fake_az_script(bin_dir, arm.fake.token)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    arm.fake.lro_polls = 0
    return arm


def stack_file(tmp: Path, nodes: int = 2, size: str = H100) -> str:
    path = tmp / "Pulumi.demo.yaml"
    path.write_text(STACK.format(size=size, nodes=nodes), encoding="utf-8")
    return str(path)


def test_preflight_json_fits_exit_0(cli) -> None:
    result = run_cli("preflight", stack_file(cli.tmp), "--json", "--auth", "cli")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert doc["ok"] is True and doc["stack"] == "demo" and doc["location"] == "eastus"


def test_preflight_blocked_exit_1_with_the_increase_to_ask_for(cli) -> None:
    result = run_cli("preflight", stack_file(cli.tmp, nodes=3), "--auth", "cli")
    assert result.exit_code == 1
    assert "preflight blocked" in result.stderr
    assert "192 to 288" in result.stderr  # standardNDSH100v5Family: limit 192, in use 0, needed 288
    assert "southcentralus" in result.stdout


def test_no_subscription_is_exit_3(cli, monkeypatch) -> None:
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID")
    result = run_cli("preflight", stack_file(cli.tmp), "--auth", "cli")
    assert result.exit_code == 3
    assert "no Azure subscription selected" in result.stderr and "az login" in result.stderr
    assert result.stdout == ""


def test_azure_cli_not_logged_in_is_exit_3(cli) -> None:
    fake_az_script(cli.tmp / "bin", logged_in=False)
    result = run_cli("status", stack_file(cli.tmp), "--auth", "cli", "--json")
    assert result.exit_code == 3
    assert "no working Azure credential" in result.stderr
    assert result.stdout == ""


def test_status_json_and_missing_cluster(cli) -> None:
    missing = run_cli("status", stack_file(cli.tmp), "--auth", "cli", "--json")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["found"] is False

    sets = cli.fake.add_cluster("demo", {"gpu": (H100, [2, 2])})
    sets[0].instances[0].health = "HealthState/unhealthy"
    result = run_cli("status", stack_file(cli.tmp, nodes=4), "--auth", "cli", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["unhealthy"][0]["private_ip"] == "10.42.0.4"

    az_log = cli.tmp / "bin" / "az-calls.log"
    before = len(az_log.read_text().splitlines())
    human = run_cli("status", stack_file(cli.tmp, nodes=4), "--auth", "cli")
    assert human.exit_code == 0 and "unhealthy" in human.stderr and "10.42.1.5" in human.stdout
    # one client for the whole command: one `az account get-access-token`, however many islands
    assert len(az_log.read_text().splitlines()) - before == 1


def test_stop_then_partial_start_exit_codes(cli) -> None:
    sets = cli.fake.add_cluster("demo", {"gpu": (H100, [2, 2])})
    stopped = run_cli("stop", stack_file(cli.tmp, nodes=4), "--auth", "cli", "--json")
    assert stopped.exit_code == 0, stopped.stderr
    assert json.loads(stopped.stdout)["ok"] is True

    sets[1].start_error = ("ZonalAllocationFailed", "Allocation failed in the requested zone.")
    started = run_cli("start", stack_file(cli.tmp, nodes=4), "--auth", "cli")
    assert started.exit_code == 1
    assert "gpu/1" in started.stderr and "ZonalAllocationFailed" in started.stderr
    assert [i.power for i in sets[0].instances] == ["running", "running"]


def test_hosts_prints_hostfiles_and_rejects_unknown_islands(cli) -> None:
    cli.fake.add_cluster("demo", {"gpu": (H100, [2, 1])})
    result = run_cli(
        "hosts", stack_file(cli.tmp, nodes=3), "--auth", "cli", "--island", "0", "--format", "mpi"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "10.42.0.4 slots=8\n10.42.0.5 slots=8\n"
    both = run_cli("hosts", stack_file(cli.tmp, nodes=3), "--auth", "cli")
    assert "# pool gpu island 1" in both.stdout and "10.42.1.4" in both.stdout
    missing = run_cli("hosts", stack_file(cli.tmp, nodes=3), "--auth", "cli", "--island", "4")
    assert missing.exit_code == 2


def test_stack_that_does_not_parse_is_exit_2(cli) -> None:
    path = cli.tmp / "Pulumi.bad.yaml"
    path.write_text(STACK.format(size=H100, nodes=-1), encoding="utf-8")
    result = run_cli("preflight", str(path), "--auth", "cli")
    assert result.exit_code == 2 and "azcluster validate" in result.stderr
    assert not cli.fake.requests  # nothing asked of Azure
