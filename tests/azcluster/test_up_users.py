"""`up` hands the team's users file to the login node last (after the hostfiles), through the real hand-over
against the ARM fake; a stack without `team:` gets nothing more, and a failure is a warning, never a failed
`up` (the cluster it built is fine without it)."""

from __future__ import annotations

import json

from azcluster import lifecycle
from tests.azcluster.test_cli_lifecycle import KEY, STACK
from tests.azcluster.test_cli_lifecycle import fake as fake  # the recording engine fixture, as it is
from tests.clirunner import run_cli
from tests.fakes.arm import fake_az_script

TEAM = f"""\
    team:
      users:
        - {{name: alice, uid: 2001, ssh_keys: ["{KEY}"]}}
"""


def _cli(arm, monkeypatch, tmp_path, stack: str) -> list[str]:
    (tmp_path / "stacks" / "Pulumi.demo.yaml").write_text(stack, encoding="utf-8")
    monkeypatch.setattr(lifecycle, "users_handover", lifecycle._default_users_handover)
    fake_az_script(arm.tmp / "bin", arm.fake.token)
    monkeypatch.setenv("PATH", f"{arm.tmp / 'bin'}:/usr/bin:/bin")
    arm.fake.lro_polls = 0
    arm.fake.add_cluster("demo", {"gpu": ("Standard_ND96isr_H100_v5", [2])})
    return ["--auth", "cli", "--subscription", arm.fake.subscription_id]


def test_up_hands_the_users_file_over_when_the_stack_has_a_team(fake, arm, monkeypatch, tmp_path):  # noqa: F811
    sub = _cli(arm, monkeypatch, tmp_path, STACK + TEAM)
    result = run_cli("up", "demo", "--yes", "--json", *sub)
    assert result.exit_code == 0, result.stderr
    users = json.loads(result.stdout)["users"]
    assert users["state"] == "handed-over" and users["sync"]["users"] == 1
    login = arm.fake.vms[("demo-rg", "demo-login")]
    written = json.loads((arm.fake.vm_root(login) / "home/.azcluster/users.json").read_text())
    assert [u["name"] for u in written["users"]] == ["alice"]
    assert fake.methods() == ["check_secrets", "preview", "up"]  # deployed first, handed over after
    # the team emptied: still handed over, so the nodes lock alice
    sub = ["--auth", "cli", "--subscription", arm.fake.subscription_id]
    emptied = STACK + "    team:\n      users: []\n"
    (tmp_path / "stacks" / "Pulumi.demo.yaml").write_text(emptied, encoding="utf-8")
    again = run_cli("up", "demo", "--yes", "--json", *sub)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["users"]["sync"]["users"] == 0
    assert json.loads((arm.fake.vm_root(login) / "home/.azcluster/users.json").read_text())["users"] == []


def test_up_without_a_team_sends_nothing_more_and_a_failure_is_a_warning(fake, arm, monkeypatch, tmp_path):  # noqa: F811
    sub = _cli(arm, monkeypatch, tmp_path, STACK)
    plain = run_cli("up", "demo", "--yes", "--json", *sub)
    assert plain.exit_code == 0, plain.stderr
    assert json.loads(plain.stdout)["users"] is None
    assert arm.fake.vm_run_commands("demo-login") == []  # the fixture's hostfile refresher sends none

    (tmp_path / "stacks" / "Pulumi.demo.yaml").write_text(STACK + TEAM, encoding="utf-8")
    login = arm.fake.vms[("demo-rg", "demo-login")]
    login.run_command_error = ("VMAgentStatusCommunicationError", "VM 'demo-login' has not reported status.")
    warned = run_cli("up", "demo", "--yes", "--json", *sub)
    assert warned.exit_code == 0, warned.stderr  # the cluster is up; only the users file is not there
    users = json.loads(warned.stdout)["users"]
    assert users["state"] == "failed" and "VMAgentStatusCommunicationError" in users["reason"]
    assert "warning:" in warned.stderr and "azcluster users sync demo" in warned.stderr
