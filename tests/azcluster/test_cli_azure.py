"""The preflight/status/stop/start/hosts commands end to end: the real CLI, the Azure CLI credential
(a fake `az` on PATH), the real SDK, the loopback Resource Manager. Exit codes and stdout contracts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azcluster.components.bootstrap import HEALTH_RESULT_PATH, HOSTFILE_DIR
from azcluster.ops import diagnose
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
def cli(az_cli):
    """The fake ARM plus a logged-in fake `az`; long-running operations end on their first poll."""
    return az_cli


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
    document = json.loads(result.stdout)  # --json: the failure document, like every command's
    assert document["ok"] is False and document["stack"] == "demo"
    assert (
        document["error"]["exit_code"] == 3 and "no working Azure credential" in document["error"]["message"]
    )


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


def test_status_lists_unhealthy_nodes_with_the_failing_check(cli) -> None:
    sets = cli.fake.add_cluster("demo", {"gpu": (H100, [2, 2])})
    bad, missing = sets[0].instances
    for instance in (bad, missing):
        instance.health = "HealthState/unhealthy"
    failing = {
        "name": "infiniband",
        "ok": False,
        "detail": "7 of 8 ports ACTIVE at 400 Gb/s; mlx5_ib3/1 DOWN",
    }
    bad.files[HEALTH_RESULT_PATH] = json.dumps(
        {"healthy": False, "time": "2026-01-05T10:00:00Z", "checks": [failing]}
    )
    stack = stack_file(cli.tmp, nodes=4)

    human = run_cli("status", stack, "--auth", "cli")
    assert human.exit_code == 0, human.stderr
    section = human.stdout[human.stdout.index("unhealthy nodes") :]
    for shown in ("gpu0000000", "gpu/0", "infiniband:", "mlx5_ib3/1", "gpu0000001", "could not read the"):
        assert shown in section
    assert "reading the health result of 2 node(s) through Run Command" in human.stderr  # progress
    assert len(cli.fake.run_commands()) == 2

    result = run_cli("status", stack, "--auth", "cli", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)  # the progress stayed on stderr
    rows = {row["node"]: row for row in doc["unhealthy"]}
    assert rows["gpu0000000"]["failing_checks"] == [{"name": "infiniband", "detail": failing["detail"]}]
    assert rows["gpu0000001"]["failing_checks"] == []
    assert rows["gpu0000001"]["diagnosis"]["detail"].startswith("could not read the health result: cat: ")
    assert doc["diagnosis"]["diagnosed"] == 2 and len(cli.fake.run_commands()) == 4


def test_status_no_diagnose_and_diagnose_limit(cli) -> None:
    sets = cli.fake.add_cluster("demo", {"gpu": (H100, [2, 2])})
    for instance in sets[0].instances + sets[1].instances:
        instance.health = "HealthState/unhealthy"
    stack = stack_file(cli.tmp, nodes=4)

    skipped = run_cli("status", stack, "--auth", "cli", "--no-diagnose", "--json")
    assert skipped.exit_code == 0, skipped.stderr
    assert cli.fake.run_commands() == []  # not one Run Command
    doc = json.loads(skipped.stdout)
    assert doc["diagnosis"]["enabled"] is False and all(r["diagnosis"] is None for r in doc["unhealthy"])
    human = run_cli("status", stack, "--auth", "cli", "--no-diagnose")
    assert "--no-diagnose" in human.stderr and cli.fake.run_commands() == []

    capped = run_cli("status", stack, "--auth", "cli", "--diagnose-limit", "3")
    assert capped.exit_code == 0, capped.stderr
    assert len(cli.fake.run_commands()) == 3
    assert "1 more unhealthy node(s) not diagnosed" in capped.stderr and "--diagnose-limit" in capped.stderr
    assert "over the limit of 3" in capped.stdout
    assert run_cli("status", stack, "--diagnose-limit", "0").exit_code == 2


def test_status_diagnose_limit_defaults_to_ops() -> None:
    import inspect

    from azcluster import cli as commands

    parameter = inspect.signature(commands.status).parameters["diagnose_limit"]
    assert parameter.default == diagnose.DIAGNOSE_LIMIT


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


# --- hostfiles on the login node ------------------------------------------------------------------------


def login_files(cli) -> dict[str, str]:
    directory = cli.fake.vm_root(cli.fake.vms[("demo-rg", "demo-login")]) / HOSTFILE_DIR.lstrip("/")
    return {path.name: path.read_text() for path in sorted(directory.iterdir())} if directory.exists() else {}


def test_hosts_install_writes_the_login_nodes_hostfiles(cli) -> None:
    cli.fake.add_cluster("demo", {"gpu": (H100, [2, 1])})
    stack = stack_file(cli.tmp, nodes=3)
    human = run_cli("hosts", stack, "--auth", "cli", "--install")
    assert human.exit_code == 0, human.stderr
    assert f"hostfiles on demo-login in {HOSTFILE_DIR}: gpu-i0 (2 hosts), gpu-i1 (1 host)" in human.stdout
    assert login_files(cli) == {"gpu-i0": "10.42.0.4\n10.42.0.5\n", "gpu-i1": "10.42.1.4\n"}

    as_json = run_cli("hosts", stack, "--auth", "cli", "--install", "--json", "--format", "mpi")
    assert as_json.exit_code == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert [f["path"] for f in doc["install"]["files"]] == [
        f"{HOSTFILE_DIR}/gpu-i0",
        f"{HOSTFILE_DIR}/gpu-i1",
    ]
    assert login_files(cli)["gpu-i1"] == "10.42.1.4 slots=8\n"

    sent = len(cli.fake.vm_run_commands())
    printed = run_cli("hosts", stack, "--auth", "cli", "--json")
    assert json.loads(printed.stdout)["install"] is None and len(cli.fake.vm_run_commands()) == sent


def test_hosts_install_without_a_login_node_is_exit_2(cli) -> None:
    cli.fake.add_cluster("demo", {"gpu": (H100, [2])}, login=False)
    path = cli.tmp / "Pulumi.demo.yaml"
    path.write_text(STACK.format(size=H100, nodes=2) + "    login:\n      enabled: false\n", encoding="utf-8")
    result = run_cli("hosts", str(path), "--auth", "cli", "--install")
    assert result.exit_code == 2
    assert "no login node" in result.stderr and "--out DIR" in result.stderr
    assert cli.fake.requests == []  # refused before asking Azure anything


def test_start_refreshes_the_login_hostfiles_and_a_failure_there_is_only_a_warning(cli) -> None:
    sets = cli.fake.add_cluster("demo", {"gpu": (H100, [2, 1])})
    for instance in sets[0].instances + sets[1].instances:
        instance.power = "deallocated"
    stack = stack_file(cli.tmp, nodes=3)

    started = run_cli("start", stack, "--auth", "cli", "--json")
    assert started.exit_code == 0, started.stderr
    doc = json.loads(started.stdout)
    assert doc["ok"] is True and doc["hostfiles"]["state"] == "installed"
    assert login_files(cli) == {"gpu-i0": "10.42.0.4\n10.42.0.5\n", "gpu-i1": "10.42.1.4\n"}
    assert "hostfiles on demo-login" in started.stderr

    login = cli.fake.vms[("demo-rg", "demo-login")]
    login.run_command_refusal = (403, "AuthorizationFailed", "The client may not run commands on demo-login.")
    warned = run_cli("start", stack, "--auth", "cli")
    assert warned.exit_code == 0, warned.stderr  # the islands started: that is what start is for
    assert "warning:" in warned.stderr and "AuthorizationFailed" in warned.stderr
    assert "Virtual Machine Contributor" in warned.stderr and "hosts demo --install" in warned.stderr

    sent = len(cli.fake.vm_run_commands())
    skipped = run_cli("start", stack, "--auth", "cli", "--no-hostfiles", "--json")
    assert skipped.exit_code == 0, skipped.stderr
    assert json.loads(skipped.stdout)["hostfiles"] is None
    assert len(cli.fake.vm_run_commands()) == sent  # nothing sent to the login node


def test_status_as_a_reader_says_once_what_diagnosis_needs(cli) -> None:
    sets = cli.fake.add_cluster("demo", {"gpu": (H100, [2, 2])})
    for instance in sets[0].instances + sets[1].instances:
        instance.health = "HealthState/unhealthy"
        instance.run_command_refusal = (
            403,
            "AuthorizationFailed",
            "The client 'reader@example.com' does not have authorization to perform action "
            "'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action'.",
        )
    human = run_cli("status", stack_file(cli.tmp, nodes=4), "--auth", "cli")
    assert human.exit_code == 0, human.stderr
    assert len(cli.fake.run_commands()) == 1
    said = human.stdout + human.stderr
    assert said.count("Virtual Machine Contributor") == 1 and "--no-diagnose" in human.stderr
    assert said.count("not diagnosed: Azure refused Run Command on gpu0000000") == 3


def test_azure_sdk_log_lines_only_with_debug(cli) -> None:
    """azure-identity logs a WARNING for each failed credential; Python prints those on stderr when no
    handler is set (a real run, not pytest's log capture), before azcluster's own message says it better."""
    import os
    import subprocess
    import sys

    fake_az_script(cli.tmp / "bin", logged_in=False)
    command = [sys.executable, "-m", "azcluster", "status", stack_file(cli.tmp), "--auth", "cli", "--json"]
    quiet = subprocess.run(command, capture_output=True, text=True, env=os.environ, timeout=120)
    assert quiet.returncode == 3 and "no working Azure credential" in quiet.stderr
    assert "get_token_info failed" not in quiet.stderr, quiet.stderr
    loud = subprocess.run(
        command[:3] + ["--debug"] + command[3:], capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert "azure.identity" in loud.stderr and "get_token_info failed" in loud.stderr, loud.stderr
