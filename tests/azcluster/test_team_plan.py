"""Changing people never touches a VM's model: `plan --json` of one cluster with no team, a team of one,
and a team of two (from a team file) registers byte-identical resources, custom data included, so adding
or removing a user re-images nothing (a change of a scale set's custom data is a model update)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirunner import run_cli
from tests.components.rules.cases import ED25519_KEY

STACKS = Path(__file__).resolve().parents[2] / "stacks"
TEAM = """\
groups: [{name: vision, gid: 3001}]
accounts: [vision]
users:
  - {name: alice, uid: 2001, groups: [vision], account: vision, admin: true, ssh_keys: ["%s"]}
%s"""
BOB = f'  - {{name: bob, uid: 2002, ssh_keys: ["{ED25519_KEY}"]}}\n'


def _plan(tmp_path: Path, name: str, team_yaml: str | None, exit_code: int = 0) -> dict:
    folder = tmp_path / name
    folder.mkdir()
    stack = (STACKS / "Pulumi.example.yaml").read_text(encoding="utf-8")
    if team_yaml is not None:
        (folder / "team.yaml").write_text(team_yaml, encoding="utf-8")
        stack = stack.replace("  azcluster:cluster:\n", "  azcluster:cluster:\n    team: {file: team.yaml}\n")
    path = folder / "Pulumi.example.yaml"
    path.write_text(stack, encoding="utf-8")
    result = run_cli("plan", str(path), "--json")
    assert result.exit_code == exit_code, result.stderr + result.stdout
    return json.loads(result.stdout)


def test_adding_and_removing_users_leaves_every_vm_and_scale_set_byte_identical(tmp_path):
    plans = {
        "none": _plan(tmp_path, "none", None),
        "alice": _plan(tmp_path, "alice", TEAM % (ED25519_KEY, "")),
        "alice+bob": _plan(tmp_path, "both", TEAM % (ED25519_KEY, BOB)),
    }
    machines = {}
    for name, document in plans.items():
        assert not [f for f in document["findings"] if f["severity"] == "error"], document["findings"]
        vms = [
            r
            for r in document["resources"]
            if r["type"]
            in ("azure-native:compute:VirtualMachine", "azure-native:compute:VirtualMachineScaleSet")
        ]
        assert {r["type"] for r in vms} == {
            "azure-native:compute:VirtualMachine",
            "azure-native:compute:VirtualMachineScaleSet",
        }
        machines[name] = json.dumps(vms, sort_keys=True)
        assert "alice" not in json.dumps(document["resources"])  # nowhere in any resource
    assert machines["none"] == machines["alice"] == machines["alice+bob"]
    everything = {json.dumps(d["resources"], sort_keys=True) for d in plans.values()}
    assert len(everything) == 1


def test_plan_reads_the_team_file_and_refuses_a_broken_team(tmp_path):
    twice = TEAM % (ED25519_KEY, BOB.replace("uid: 2002", "uid: 2001"))
    document = _plan(tmp_path, "twice", twice, exit_code=1)
    assert "AZC111" in {f["id"] for f in document["findings"]}
