"""The Automation API adapter, driven for real against a stand-in `pulumi` executable
(tests/fakes/fake_pulumi.py) on PATH: the stack, work dir, backend, secrets provider and flags it passes,
how it reads events, outputs, history and state, and how CLI failures become azcluster errors. The
missing-CLI path runs the real `azcluster` in a subprocess with no pulumi anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from azcluster import lifecycle
from azcluster.engine import (
    AutomationEngine,
    EngineOptions,
    PulumiCliTooOld,
    StackLocked,
    StackNotFound,
    StackRef,
    UpdateFailed,
    check_pulumi_cli,
    open_engine,
)
from tests.clirunner import run_cli

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "fakes" / "fake_pulumi.py"
VMSS = "azure-native:compute:VirtualMachineScaleSet"
VM_URN = f"urn:pulumi:demo::azcluster::azcluster:index:Cluster${VMSS}::demo-gpu-0"


class FakeCli:
    """The stand-in pulumi: its scenario in, its recorded calls out."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scenario: dict = {}

    def write(self, **scenario) -> None:
        self.scenario.update(scenario)
        (self.root / "scenario.json").write_text(json.dumps(self.scenario))

    def calls(self) -> list[dict]:
        path = self.root / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def commands(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]

    def find(self, word: str) -> dict:
        return next(call for call in self.calls() if word in call["argv"])


@pytest.fixture
def cli(tmp_path, monkeypatch) -> FakeCli:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "pulumi"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    home = tmp_path / "fake"
    home.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAKE_PULUMI_DIR", str(home))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct horse battery staple")
    for name in (
        "PULUMI_BACKEND_URL",
        "PULUMI_CONFIG_PASSPHRASE_FILE",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK",
    ):
        monkeypatch.delenv(name, raising=False)
    fake = FakeCli(home)
    fake.write()
    return fake


@pytest.fixture
def project(tmp_path) -> Path:
    """A Pulumi project like stacks/: Pulumi.yaml (with a relative virtualenv) and one stack file."""
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "Pulumi.yaml").write_text(
        "name: azcluster\nruntime:\n  name: python\n  options:\n    virtualenv: ../.venv\n"
    )
    (directory / "Pulumi.demo.yaml").write_text("config:\n  azure-native:location: eastus\n")
    return directory


def make_engine(cli: FakeCli, tmp_path: Path, **settings) -> AutomationEngine:
    engine = open_engine(EngineOptions(**settings))
    assert isinstance(engine, AutomationEngine)
    return engine


def test_the_cli_is_checked_and_its_version_read(cli, tmp_path):
    command = check_pulumi_cli()
    assert str(command.version) == "3.200.0"
    assert cli.commands() == [["version"]]


def test_too_old_a_cli_is_exit_3_with_how_to_update(cli, tmp_path):
    cli.write(version="v3.100.0")
    with pytest.raises(PulumiCliTooOld) as err:
        check_pulumi_cli()
    assert err.value.exit_code == 3
    assert "3.200.0" in err.value.message and "3.100.0" in err.value.message
    assert "get.pulumi.com" in err.value.hint


def test_preview_creates_the_stack_with_the_options_built_here(cli, tmp_path, project):
    cli.write(
        responses={
            "preview": {
                "events": [
                    {
                        "resourcePreEvent": {
                            "metadata": {"op": "create", "urn": VM_URN, "type": VMSS},
                            "planning": True,
                        }
                    },
                    {"resourcePreEvent": {"metadata": {"op": "same", "urn": "urn:x::y", "type": "t"}}},
                    {"summaryEvent": {"resourceChanges": {"create": 1, "same": 1}}},
                ]
            }
        }
    )
    engine = make_engine(cli, tmp_path)
    ref = StackRef("demo", project / "Pulumi.demo.yaml")
    result = engine.preview(ref)
    assert result.changes == {"create": 1, "same": 1}
    assert [(s.name, s.op) for s in result.steps] == [("demo-gpu-0", "create")]

    commands = cli.commands()
    assert commands[1][:3] == ["stack", "select", "--stack"] and commands[1][3] == "demo"
    assert commands[2][:5] == ["stack", "init", "demo", "--secrets-provider", "passphrase"]
    preview = cli.find("preview")
    assert preview["cwd"] == str(project)  # Pulumi reads Pulumi.demo.yaml from the project directory
    assert preview["argv"][preview["argv"].index("--stack") :][:2] == ["--stack", "demo"]
    assert "--event-log" in preview["argv"] and "--color" in preview["argv"]
    state = tmp_path / "home" / ".azcluster" / "state"
    assert preview["env"]["PULUMI_BACKEND_URL"] == state.as_uri() and state.is_dir()
    assert preview["env"]["PULUMI_SKIP_UPDATE_CHECK"] == "true"
    assert preview["env"]["AZCLUSTER_STACK_FILE"] == str(project / "Pulumi.demo.yaml")
    assert preview["env"]["PULUMI_CONFIG_PASSPHRASE"]  # inherited by the CLI ...
    options = engine.workspace_options(ref)
    assert "PULUMI_CONFIG_PASSPHRASE" not in options.env_vars  # ... but never copied where reprs show it
    assert options.work_dir == str(project) and options.secrets_provider == "passphrase"
    assert options.pulumi_command is engine.command


def test_backend_and_key_vault_options_reach_the_cli(cli, tmp_path, project):
    vault = "azurekeyvault://team.vault.azure.net/keys/pulumi"
    engine = make_engine(cli, tmp_path, backend="azblob://state?storage_account=team", secrets_provider=vault)
    engine.preview(StackRef("demo", project / "Pulumi.demo.yaml"))
    init = cli.find("init")
    assert init["argv"][:5] == ["stack", "init", "demo", "--secrets-provider", vault]
    assert cli.find("preview")["env"]["PULUMI_BACKEND_URL"] == "azblob://state?storage_account=team"


def test_a_stack_file_elsewhere_runs_from_a_linked_workspace(cli, tmp_path, project):
    elsewhere = tmp_path / "clusters" / "Pulumi.lab.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text("config:\n  azure-native:location: westus3\n")
    import azcluster.engine as engine_module

    original = engine_module.default_program_dir
    engine_module.default_program_dir = lambda: project
    try:
        engine = make_engine(cli, tmp_path)
        engine.preview(StackRef("lab", elsewhere))
    finally:
        engine_module.default_program_dir = original
    workdir = Path(cli.find("preview")["cwd"])
    assert workdir.parent == tmp_path / "home" / ".azcluster" / "workspaces"
    link = workdir / "Pulumi.lab.yaml"
    assert link.is_symlink() and link.resolve() == elsewhere.resolve()
    import yaml

    settings = yaml.safe_load((workdir / "Pulumi.yaml").read_text())
    assert settings["main"] == str(project) and settings["name"] == "azcluster"
    assert settings["runtime"]["options"]["virtualenv"] == str((tmp_path / ".venv").resolve())
    assert f"main: {project}\n" in (workdir / "Pulumi.yaml").read_text()  # one line, not folded
    assert any("runs from" in note for note in engine.notes)


def test_up_failure_lists_resources_with_codes_from_the_event_stream(cli, tmp_path, project):
    cli.write(
        stacks=["demo"],
        responses={
            "up": {
                "code": 255,
                "stdout": "Diagnostics:\n  pulumi:pulumi:Stack (azcluster-demo):\n    error: update failed\n",
                "events": [
                    {"resourcePreEvent": {"metadata": {"op": "create", "urn": VM_URN, "type": VMSS}}},
                    {
                        "diagnosticEvent": {
                            "urn": VM_URN,
                            "severity": "error",
                            "message": "ERROR CODE: ZonalAllocationFailed\n"
                            '{"error": {"code": "ZonalAllocationFailed", '
                            '"message": "Allocation failed in zone 1."}}',
                        }
                    },
                    {
                        "resOpFailedEvent": {
                            "metadata": {"op": "create", "urn": VM_URN, "type": VMSS},
                            "status": 1,
                        }
                    },
                ],
            }
        },
    )
    seen = []
    engine = make_engine(cli, tmp_path)
    with pytest.raises(UpdateFailed) as err:
        engine.up(StackRef("demo", project / "Pulumi.demo.yaml"), seen.append, refresh=True)
    (failure,) = err.value.failures
    assert failure.code == "ZonalAllocationFailed" and failure.name == "demo-gpu-0"
    assert failure.message == "Allocation failed in zone 1." and failure.remedy.retryable
    assert err.value.exit_code == 1
    assert [e.kind for e in seen] == ["start", "diagnostic", "failed"]
    up = cli.find("up")["argv"]
    assert "--refresh" in up and "--skip-preview" in up and "--yes" in up


def test_failure_without_events_is_read_from_the_diagnostics_text(cli, tmp_path, project):
    cli.write(
        stacks=["demo"],
        responses={
            "up": {
                "code": 255,
                "events": [],
                "stdout": textwrap.dedent(
                    """\
                    Diagnostics:
                      azure-native:storagecache:AmlFilesystem (demo-storage-lustre):
                        error: Code="QuotaExceeded" Message="Managed Lustre capacity quota exceeded."
                    """
                ),
            }
        },
    )
    with pytest.raises(UpdateFailed) as err:
        make_engine(cli, tmp_path).up(StackRef("demo", project / "Pulumi.demo.yaml"))
    assert [(f.name, f.code) for f in err.value.failures] == [("demo-storage-lustre", "QuotaExceeded")]


def test_a_locked_stack_names_the_holder(cli, tmp_path, project):
    cli.write(
        stacks=["demo"],
        responses={
            "up": {
                "code": 255,
                "stderr": "error: the stack is currently locked by 1 lock(s). Either wait for the other "
                "process(es) to end or delete the lock file with `pulumi cancel`.\n  file:///s/.pulumi/locks/"
                "organization/azcluster/demo/1.json: created by bob@ci-runner (pid 77) at "
                "2026-03-01T10:00:00Z\n",
            }
        },
    )
    with pytest.raises(StackLocked) as err:
        make_engine(cli, tmp_path).up(StackRef("demo", project / "Pulumi.demo.yaml"))
    assert "bob@ci-runner" in err.value.message and "pid 77" in err.value.message
    assert "azcluster cancel demo" in err.value.hint


def test_destroy_refresh_cancel_pass_the_right_flags(cli, tmp_path, project):
    cli.write(stacks=["demo"])
    engine = make_engine(cli, tmp_path)
    ref = StackRef("demo", project / "Pulumi.demo.yaml")
    engine.destroy(ref, exclude_protected=True)
    engine.refresh(ref, targets=[VM_URN])
    engine.cancel(ref)
    destroy = cli.find("destroy")["argv"]
    assert "--exclude-protected" in destroy and "--yes" in destroy
    refresh = cli.find("refresh")["argv"]
    assert refresh[refresh.index("--target") + 1] == VM_URN
    cancel = cli.find("cancel")["argv"]
    assert cancel[:4] == ["cancel", "--yes", "--stack", "demo"]
    assert all("init" not in argv for argv in cli.commands())  # these never create a stack


def test_operations_on_a_stack_never_deployed_say_so(cli, tmp_path, project):
    engine = make_engine(cli, tmp_path)
    ref = StackRef("demo", project / "Pulumi.demo.yaml")
    with pytest.raises(StackNotFound) as err:
        engine.outputs(ref)
    assert "azcluster up demo" in err.value.hint
    assert engine.state(ref) == [] and engine.history(ref) == []


def test_outputs_history_list_and_state(cli, tmp_path, project):
    cli.write(
        stacks=["demo"],
        outputs={"login_private_ip": {"value": "10.0.1.4"}, "token": {"value": "s3cret", "secret": True}},
        ls=[
            {"name": "demo", "current": False, "lastUpdate": "2026-03-01T10:05:00.000Z", "resourceCount": 31},
            {"name": "lab", "current": False, "updateInProgress": True},
        ],
        deployment={
            "resources": [
                {
                    "urn": VM_URN,
                    "type": VMSS,
                    "custom": True,
                    "id": "/subscriptions/s/x",
                    "dependencies": ["urn:a"],
                },
                {"urn": "urn:lustre", "type": "t", "custom": True, "protect": True, "retainOnDelete": True},
            ]
        },
    )
    engine = make_engine(cli, tmp_path)
    ref = StackRef("demo", project / "Pulumi.demo.yaml")
    outs = engine.outputs(ref)
    assert outs["login_private_ip"].value == "10.0.1.4" and not outs["login_private_ip"].secret
    assert outs["token"].secret and outs["token"].value == "s3cret"
    (entry,) = engine.history(ref)
    assert entry.kind == "update" and entry.end_time.isoformat() == "2026-03-01T10:05:00+00:00"
    stacks = {s.name: s for s in engine.list_stacks()}
    assert stacks["demo"].resource_count == 31 and stacks["lab"].update_in_progress
    resources = engine.state(ref)
    assert [r.name for r in resources] == ["demo-gpu-0", "urn:lustre"]
    assert resources[1].protect and resources[1].retain_on_delete and resources[0].dependencies == ("urn:a",)


def test_release_clears_protect_and_retain_on_delete_in_the_state(cli, tmp_path, project):
    keep = {"urn": "urn:other", "type": "t", "custom": True, "protect": True, "retainOnDelete": True}
    cli.write(
        stacks=["demo"],
        deployment={
            "manifest": {"time": "2026-03-01T10:00:00Z"},
            "resources": [
                {"urn": "urn:lustre", "type": "t", "custom": True, "protect": True, "retainOnDelete": True},
                keep,
            ],
        },
    )
    make_engine(cli, tmp_path).release(StackRef("demo", project / "Pulumi.demo.yaml"), ["urn:lustre"])
    imported = cli.find("import")["imported"]
    assert imported["version"] == 3 and imported["deployment"]["manifest"] == {"time": "2026-03-01T10:00:00Z"}
    released, other = imported["deployment"]["resources"]
    assert released["protect"] is False and "retainOnDelete" not in released
    assert other == keep


def test_up_through_the_cli_with_the_real_adapter(cli, tmp_path, monkeypatch):
    """`azcluster up --yes --json` end to end with the real engine factory and the stand-in pulumi."""
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.example.yaml"):
        (stacks / name).write_text((REPO / "stacks" / name).read_text())
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(stacks))
    monkeypatch.setattr(lifecycle, "engine_factory", open_engine)
    cli.write(
        outputs={"login_private_ip": {"value": "10.42.1.4"}, "resource_group_name": {"value": "example-rg"}}
    )
    result = run_cli("up", "example", "--yes", "--json", "--skip-preflight", "--no-hostfiles")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["changes"]["create"] == 3 and "--target-ip-address 10.42.1.4" in doc["access"]["ssh"]
    assert cli.find("up")["cwd"] == str(stacks)


def test_missing_cli_exits_3_with_the_install_message_and_no_traceback(tmp_path):
    """The real `azcluster`, in a subprocess whose PATH and HOME hold no pulumi at all."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {"PATH": str(empty), "HOME": str(tmp_path), "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    env["PULUMI_CONFIG_PASSPHRASE"] = ""  # also wrong, but the CLI is reported first
    run = subprocess.run(
        [sys.executable, "-c", "from azcluster.cli import main; main()", "up", "example", "--yes"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 3
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert "Pulumi CLI is not installed" in run.stderr
    assert "https://www.pulumi.com/docs/install/" in run.stderr
    assert "curl -fsSL https://get.pulumi.com | sh" in run.stderr
    assert "passphrase" not in run.stderr.lower()
    assert os.environ.get("PATH")  # the test process itself is untouched


def test_importing_the_cli_and_the_engine_does_not_load_pulumi():
    """`azcluster --help` stays fast: pulumi.automation loads only when a lifecycle command runs."""
    code = (
        "import sys; from azcluster import cli, engine, lifecycle, live, remedies; "
        "heavy = ('pulumi', 'grpc', 'pulumi_azure_native'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.strip() == "[]"
