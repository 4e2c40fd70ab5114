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
import time
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
from azcluster.errors import AzclusterError
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
        "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER",
        "CI",  # .ci/run sets it: `up` would then refuse the local state these tests use
        "GITHUB_ACTIONS",
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
    # The engine's closing URN-less "update failed" is a diagnostic like any other, never a failed resource.
    assert [e.kind for e in seen] == ["start", "diagnostic", "failed", "diagnostic", "summary"]
    assert seen[3].urn == "" and "update failed" in seen[3].message
    assert err.value.message == "up of stack demo failed: 1 resource failed"
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


# --- behaviours of the real CLI azcluster depends on (the stand-in takes each from pulumi/pulumi) ------


def _program(stack: str = "demo", *, protect_storage: bool = False) -> list[dict]:
    """A stack, its default provider, a component and four Azure resources (storage optionally protected)."""
    base = f"urn:pulumi:{stack}::azcluster::"
    stack_urn = f"{base}pulumi:pulumi:Stack::azcluster-{stack}"
    provider = f"{base}pulumi:providers:azure-native::default_3_0_0"
    component = f"{base}azcluster:index:Cluster::{stack}"

    def azure(kind: str, name: str, **extra) -> dict:
        return {
            "urn": f"{base}azcluster:index:Cluster$azure-native:{kind}::{stack}-{name}",
            "type": f"azure-native:{kind}",
            "custom": True,
            "parent": component,
            "provider": f"{provider}::0b9b",
            **extra,
        }

    rg = azure("resources:ResourceGroup", "rg")
    return [
        {"urn": stack_urn, "type": "pulumi:pulumi:Stack", "custom": False},
        {"urn": provider, "type": "pulumi:providers:azure-native", "custom": True},
        {"urn": component, "type": "azcluster:index:Cluster", "custom": False, "parent": stack_urn},
        rg,
        azure("storage:StorageAccount", "data", protect=protect_storage, dependencies=[rg["urn"]]),
        azure("network:VirtualNetwork", "vnet", dependencies=[rg["urn"]]),
        azure("compute:VirtualMachineScaleSet", "gpu-0", dependencies=[rg["urn"]]),
    ]


def test_change_counts_are_azure_resources_not_the_stack_provider_or_components(cli, tmp_path, project):
    cli.write(program=_program())
    engine = make_engine(cli, tmp_path)
    ref = StackRef("demo", project / "Pulumi.demo.yaml")
    assert engine.preview(ref).changes == {"create": 4}
    assert engine.up(ref).changes == {"create": 4}
    # Pulumi's own summary counted the stack and the component too (the default provider it leaves out).
    assert engine.history(ref)[0].changes == {"create": 6}
    assert engine.up(ref).changes == {"same": 4}


def test_a_second_down_with_only_protected_resources_left_destroys_nothing(cli, tmp_path, project):
    # gRPC events: with the file event log the SDK waits 5 s for a cancel event that the early return
    # never writes (automation/_stack.py `_cleanup`); the behaviour under test is the same either way.
    cli.write(program=_program(protect_storage=True), version="v3.210.0")
    engine = make_engine(cli, tmp_path)
    ref = StackRef("demo", project / "Pulumi.demo.yaml")
    engine.up(ref)
    assert engine.destroy(ref, exclude_protected=True).changes == {"delete": 2}  # vnet, scale set
    entries = len(engine.history(ref))
    again = engine.destroy(ref, exclude_protected=True)
    assert again.changes == {}  # not the previous destroy's summary, which the SDK hands back
    assert len(engine.history(ref)) == entries  # the CLI returned before any engine run
    assert [r.name for r in engine.state(ref) if r.custom and not r.is_provider] == ["demo-rg", "demo-data"]


def test_the_stand_in_rejects_flags_the_real_command_does_not_register(cli, project):
    run = subprocess.run(
        ["pulumi", "up", "--exclude-protected", "--stack", "demo"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "unknown flag: --exclude-protected" in run.stderr
    run = subprocess.run(
        ["pulumi", "destroy", "--exclude-protected", "--yes", "--stack", "nope"], cwd=project
    )
    assert run.returncode == 255  # the flag is destroy's: the command gets as far as the missing stack


def test_events_arrive_over_grpc_for_cli_versions_that_send_them_there(cli, tmp_path, project):
    cli.write(version="v3.210.0", program=_program())
    seen = []
    engine = make_engine(cli, tmp_path)
    update = engine.up(StackRef("demo", project / "Pulumi.demo.yaml"), seen.append)
    assert cli.find("up")["argv"][cli.find("up")["argv"].index("--event-log") + 1].startswith(
        "tcp://127.0.0.1:"
    )
    assert update.changes == {"create": 4}
    assert [e.name for e in seen if e.kind == "done" and e.is_resource][-1] == "demo-gpu-0"


def test_an_update_holds_the_file_backend_lock_and_a_second_one_is_refused(cli, tmp_path, project):
    cli.write(stacks=["demo"], program=_program(), step_seconds=30, version="v3.210.0")
    engine = make_engine(cli, tmp_path)
    env = {**os.environ, "PULUMI_BACKEND_URL": engine.settings.backend_url}
    first = subprocess.Popen(
        ["pulumi", "up", "--yes", "--skip-preview", "--stack", "demo"], cwd=project, env=env
    )
    ref = StackRef("demo", project / "Pulumi.demo.yaml")
    try:
        for _ in range(500):
            if engine.lock_files(ref):
                break
            time.sleep(0.02)
        (lock,) = engine.lock_files(ref)
        assert lock.parent.parts[-3:] == ("organization", "azcluster", "demo")
        with pytest.raises(StackLocked) as err:
            engine.up(ref)
        assert f"pid {first.pid}" in err.value.message
    finally:
        first.kill()
        first.wait()
    assert engine.lock_files(ref) == [lock]  # killed: nothing released it
    engine.cancel(ref)
    assert engine.lock_files(ref) == []


def test_a_relative_passphrase_file_reaches_the_cli_as_an_absolute_path(cli, tmp_path, project, monkeypatch):
    here = tmp_path / "elsewhere"
    here.mkdir()
    (here / "phrase.txt").write_text("correct horse battery staple\n")
    monkeypatch.chdir(here)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", "phrase.txt")
    engine = make_engine(cli, tmp_path)
    engine.preview(StackRef("demo", project / "Pulumi.demo.yaml"))  # the CLI runs in project/, not here
    assert cli.find("preview")["env"]["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(here / "phrase.txt")


def test_key_vault_stack_deploys_again_from_a_fresh_checkout(cli, tmp_path, project, monkeypatch):
    """CI: the first run records `secretsprovider:` in the runner's stack file; the next runner's checkout
    does not have it, and there is no passphrase."""
    vault = "azurekeyvault://team.vault.azure.net/keys/pulumi"
    checkout = (project / "Pulumi.demo.yaml").read_text()
    cli.write(version="v3.210.0")  # gRPC events: a refused run costs no 5 s wait for a cancel event
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    settings = {"backend": "azblob://state?storage_account=team", "secrets_provider": vault}
    ref = StackRef("demo", project / "Pulumi.demo.yaml")
    make_engine(cli, tmp_path, **settings).up(ref)
    assert f"secretsprovider: {vault}" in ref.path.read_text()
    ref.path.write_text(checkout)  # the next run's runner
    make_engine(cli, tmp_path, **settings).up(ref)
    assert cli.find("up")["env"]["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"] == "true"

    ref.path.write_text(checkout)
    monkeypatch.setenv("PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER", "false")
    with pytest.raises(AzclusterError) as err:
        make_engine(cli, tmp_path, **settings).up(ref)
    assert f"kept with {vault}" in err.value.message and "secretsprovider:" in err.value.message
    assert "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER=true" in err.value.hint
    assert err.value.exit_code == 3


def test_down_delete_data_after_an_earlier_down_archives_check_and_deletes(cli, tmp_path, monkeypatch):
    """Through the CLI with the real adapter: the second `down` finds only protected resources, so the
    CLI's destroy returns early; that must not read as "nodes were removed just now"."""
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.example.yaml"):
        (stacks / name).write_text((REPO / "stacks" / name).read_text())
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(stacks))
    monkeypatch.setattr(lifecycle, "engine_factory", open_engine)
    program = _program("example", protect_storage=True)
    rg, component = program[3]["urn"], program[2]["urn"]
    archived = {"state": "Completed", "lastStartedTime": "2099-01-01T00:00:00Z"}  # after every change here
    program.append(
        {
            "urn": f"{component}$azure-native:storagecache:AmlFilesystem::example-lustre",
            "type": "azure-native:storagecache:AmlFilesystem",
            "custom": True,
            "protect": True,
            "parent": component,
            "dependencies": [rg],
            "outputs": {
                "name": "example-lustre",
                "hsm": {
                    "settings": {"container": "/subscriptions/s/containers/datasets"},
                    "archiveStatus": [{"filesystemPath": "/", "status": archived}],
                },
            },
        }
    )
    cli.write(program=program, version="v3.210.0")  # gRPC events: no 5 s wait for a cancel event
    assert run_cli("up", "example", "--yes", "--skip-preflight", "--no-hostfiles").exit_code == 0
    first = run_cli("down", "example", "--yes", "--json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["destroyed"] == 2
    result = run_cli("down", "example", "--yes", "--delete-data", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["data_deleted"] is True and doc["kept"] == []
    assert doc["destroyed"] == 3  # resource group, storage account, file system: only this run's


def test_a_ctrl_c_during_a_preview_says_nothing_changed(cli, tmp_path, project):
    from azcluster.engine import OperationInterrupted
    from azcluster.interrupts import Interrupted

    engine = make_engine(cli, tmp_path)
    with pytest.raises(OperationInterrupted) as err, engine._errors(StackRef("demo", project), "preview"):
        raise Interrupted(1, 8, "", "error: preview cancelled")
    assert "changes nothing" in err.value.message and err.value.exit_code == 130
    assert "refresh" not in err.value.hint and "cancel" not in err.value.hint
