"""`azcluster users sync STACK`: the team's users file handed to the login node's shared home through Run
Command on a plain VM: the real CLI and SDK against the loopback Resource Manager fake, which runs each
script with bash the way the Linux extension does (in the VM's own directory, AZC_ROOT), so these tests
read back what was written, and feed it to the node-side applier's own checks."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from azcluster.components import team
from azcluster.components.spec import ClusterSpec
from azcluster.ops import runcommand, users
from tests.clirunner import run_cli
from tests.components.rules.cases import ED25519_KEY, RSA_2048_KEY

H100 = "Standard_ND96isr_H100_v5"
SCRIPTS = Path(__file__).resolve().parents[2] / "components" / "bootstrap" / "scripts"
STACK = f"""\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: demo
    pools:
      - name: gpu
        size: {H100}
        nodes: 2
    ssh:
      public_keys: ["{ED25519_KEY}"]
    team:
      groups: [{{name: vision, gid: 3001}}]
      accounts: [vision]
      users:
        - {{name: alice, uid: 2001, groups: [vision], account: vision, ssh_keys: ["{ED25519_KEY}"]}}
        - {{name: bob, uid: 2002, ssh_keys: ["{RSA_2048_KEY}"]}}
"""


@pytest.fixture
def cli(az_cli):
    """The fake ARM plus a logged-in fake `az`; long-running operations end on their first poll."""
    arm = az_cli
    arm.fake.add_cluster("demo", {"gpu": (H100, [2])})
    return arm


def stack_file(tmp: Path, text: str = STACK) -> str:
    path = tmp / "Pulumi.demo.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def login_root(cli) -> Path:
    return cli.fake.vm_root(cli.fake.vms[("demo-rg", "demo-login")])


def applier():
    """azc-users.py as a module, for its own reading of the file (the checks a node makes)."""
    spec = importlib.util.spec_from_file_location("azc_users", SCRIPTS / "azc-users.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["azc_users"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_sync_puts_the_rendered_file_on_the_shared_home_root_owned_and_a_node_accepts_it(cli) -> None:
    stack = stack_file(cli.tmp)
    result = run_cli("users", "sync", stack, "--auth", "cli", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    written = login_root(cli) / "home/.azcluster/users.json"
    text = written.read_text()
    from azcluster import stackfile

    assert text == team.render_users_file(stackfile.load_stack(stack).spec)
    assert document == {
        "stack": "demo",
        "ok": True,
        "sync": {
            "vm": "demo-login",
            "path": "/home/.azcluster/users.json",
            "hash": hashlib.sha256(text.encode()).hexdigest(),
            "users": 2,
            "groups": 1,
            "bytes": len(text.encode()),
            "run_commands": 1,
            "applied_within_s": 120,
        },
    }
    info, folder = written.stat(), written.parent.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (0, 0o644)
    assert (folder.st_uid, folder.st_mode & 0o777) == (0, 0o755)
    assert [p.name for p in written.parent.iterdir()] == ["users.json"]  # no part file left
    loaded = applier().load(str(written))  # what a node's azc-users.py reads: accepted as it is
    assert [u["name"] for u in loaded["users"]] == ["alice", "bob"]
    # human output, and a second sync of the same team writes the same bytes
    human = run_cli("users", "sync", stack, "--auth", "cli")
    assert human.exit_code == 0, human.stderr
    assert "every node applies it within about 2 minutes" in human.stdout
    assert written.read_text() == text
    (post, *_rest) = cli.fake.vm_run_commands("demo-login")
    assert post.body["commandId"] == "RunShellScript"
    assert "alice" not in "\n".join(post.body["script"])  # the list travels as base64 only


def test_a_large_team_travels_in_several_scripts_and_arrives_whole(cli) -> None:
    users_yaml = "".join(
        f'        - {{name: u{i:04d}, uid: {3000 + i}, ssh_keys: ["{RSA_2048_KEY}"]}}\n' for i in range(400)
    )
    text = STACK.split("      users:\n")[0] + "      users:\n" + users_yaml
    text = text.replace("groups: [{name: vision, gid: 3001}]", "groups: [{name: vision, gid: 2999}]")
    stack = stack_file(cli.tmp, text)
    result = run_cli("users", "sync", stack, "--auth", "cli", "--json")
    assert result.exit_code == 0, result.stderr + result.stdout
    sync = json.loads(result.stdout)["sync"]
    assert sync["users"] == 400 and sync["run_commands"] >= 2
    scripts = [r.body["script"] for r in cli.fake.vm_run_commands("demo-login")]
    assert len(scripts) == sync["run_commands"]
    assert all(runcommand.script_size(s) <= runcommand.SCRIPT_BUDGET for s in scripts)
    written = (login_root(cli) / "home/.azcluster/users.json").read_bytes()
    assert hashlib.sha256(written).hexdigest() == sync["hash"] and len(written) == sync["bytes"]


def test_a_file_damaged_on_the_way_is_never_put_in_place() -> None:
    spec = ClusterSpec.model_validate({"name": "demo", "location": "eastus", "team": {"users": []}})
    [script] = users.plan_scripts(spec, "{}\n")
    damaged = [line.replace("printf %s 'e30K'", "printf %s 'e31K'") for line in script]
    assert damaged != script
    assert any(line.startswith("echo ") and users.MARKER in line for line in damaged)
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        env = {"PATH": "/usr/bin:/bin", "AZC_ROOT": root}
        run = subprocess.run(["bash", "-c", "\n".join(damaged)], env=env, capture_output=True, text=True)
        assert run.returncode == 4 and users.DAMAGED in run.stderr
        assert os.listdir(Path(root) / "home/.azcluster") == []
        good = subprocess.run(["bash", "-c", "\n".join(script)], env=env, capture_output=True, text=True)
        assert good.returncode == 0, good.stderr
        assert (Path(root) / "home/.azcluster/users.json").read_text() == "{}\n"


def test_validation_errors_are_exit_1_with_findings_and_nothing_is_sent(cli) -> None:
    stack = stack_file(cli.tmp, STACK.replace("uid: 2002", "uid: 2001"))
    result = run_cli("users", "sync", stack, "--auth", "cli", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and "validation errors" in document["error"]["message"]
    assert [f["id"] for f in document["findings"] if f["severity"] == "error"] == ["AZC111"]
    assert cli.fake.requests == []


def test_no_login_node_or_no_shared_home_is_exit_2_before_asking_azure(cli) -> None:
    for extra in (
        "    scheduler: none\n    login:\n      enabled: false\n",
        "    storage:\n      home:\n        enabled: false\n",
    ):
        result = run_cli("users", "sync", stack_file(cli.tmp, STACK + extra), "--auth", "cli", "--json")
        assert result.exit_code == 2, result.stdout
        assert json.loads(result.stdout)["error"]["exit_code"] == 2
    assert cli.fake.requests == []


def test_a_refused_run_command_is_exit_1_with_what_to_do(cli) -> None:
    cli.fake.vms[("demo-rg", "demo-login")].run_command_error = (
        "OperationNotAllowed",
        "The VM is deallocated",
    )
    result = run_cli("users", "sync", stack_file(cli.tmp), "--auth", "cli")
    assert result.exit_code == 1
    assert "could not hand the users file to demo-login" in result.stderr
    assert "az vm start" in result.stderr
