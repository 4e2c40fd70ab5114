"""`up`, `preview`, `down`, `refresh`, `outputs`, `cancel`, `list` through the real CLI and a recording
fake engine (`lifecycle.engine_factory`): confirmations, refusals, data protection, error mapping, JSON
documents and exit codes. No Pulumi, no Azure."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from azcluster import lifecycle
from azcluster.engine import (
    AML_FILESYSTEM,
    OutputValue,
    PulumiCliMissing,
    ResourceFailure,
    StackLocked,
    StackSummary,
    UpdateFailed,
    UpdateInfo,
    build_failures,
)
from azcluster.errors import AzclusterError
from azcluster.ops import loginhosts
from tests.clirunner import run_cli
from tests.fakes.engine import FakeEngine, at, resource, urn

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 me@laptop"
STACK = textwrap.dedent(
    f"""\
    config:
      azure-native:location: eastus
      azcluster:cluster:
        name: demo
        zone: "1"
        pools:
          - name: gpu
            size: Standard_ND96isr_H100_v5
            nodes: 2
        storage:
          lustre:
            sku: AMLFS-Durable-Premium-500
            capacity_tib: 4
            import_container: datasets
            provider_principal_id: 0b7a2a4e-86f5-4e3b-9a8f-6a5c3a1f2d90
          blob:
            enabled: true
            containers: [datasets]
        ssh:
          public_keys: ["{KEY}"]
    """
)
VMSS = "azure-native:compute:VirtualMachineScaleSet"
RG = "azure-native:resources:ResourceGroup"
ACCOUNT = "azure-native:storage:StorageAccount"


@pytest.fixture
def fake(tmp_path, monkeypatch):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.demo.yaml").write_text(STACK)
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(stacks))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("CI", "GITHUB_ACTIONS", "PULUMI_BACKEND_URL", "AZCLUSTER_ALLOW_LOCAL_STATE"):
        monkeypatch.delenv(name, raising=False)  # .ci/run sets CI: tests choose it themselves
    engine = FakeEngine(stack="demo")
    engine.outputs_map = {
        "resource_group_name": OutputValue("demo-rg"),
        "login_private_ip": OutputValue("10.42.1.4"),
        "lustre_mount_command": OutputValue(
            "sudo mount -t lustre lustre.demo.internal@tcp:/lustrefs /lustre"
        ),
        "admin_password": OutputValue("hunter2", secret=True),
    }
    factory_calls = []

    def factory(options):
        factory_calls.append(options)
        return engine

    engine.factory_calls = factory_calls
    engine.preflights = []
    engine.hostfile_refreshes = []

    def passing_preflight(loaded, connection):
        engine.preflights.append((loaded, connection))
        return _Preflight()

    def recorded_refresh(spec, stack, connection):
        engine.hostfile_refreshes.append((spec.name, stack, connection))
        return loginhosts.Refresh("skipped", reason="not reached in this test")

    monkeypatch.setattr(lifecycle, "engine_factory", factory)
    monkeypatch.setattr(lifecycle, "preflight_runner", passing_preflight)
    monkeypatch.setattr(lifecycle, "hostfile_refresher", recorded_refresh)
    monkeypatch.setattr(lifecycle, "capacity_runner", unreachable_capacity)
    monkeypatch.setattr(lifecycle, "is_interactive", lambda: False)
    return engine


def unreachable_capacity(target, spec, connection, wait, move):
    """The capacity step of `up` (test_up_capacity.py tests it against the ARM fake) cannot reach Azure
    here: an allocation failure of the update stands as it is."""
    raise AzclusterError("not reached in this test", "", 3)


class _Preflight:
    def __init__(self, blockers=()):
        self.blockers = list(blockers)

    @property
    def ok(self):
        return not self.blockers

    def to_json(self):
        return {"ok": self.ok, "blockers": [vars(b) for b in self.blockers]}


def tty(monkeypatch):
    monkeypatch.setattr(lifecycle, "is_interactive", lambda: True)


def lustre(stack="demo", **outputs):
    hsm = {"settings": {"container": "/subscriptions/sub/.../containers/datasets"}, **outputs}
    return resource(
        stack,
        AML_FILESYSTEM,
        "demo-storage-lustre",
        protect=True,
        id="/subscriptions/sub/resourceGroups/demo-rg/providers/Microsoft.StorageCache/amlFilesystems/demo-lustre",
        outputs={"name": "demo-lustre", "hsm": hsm},
        deps=[urn(stack, RG, "demo-rg")],
    )


# --- up ---------------------------------------------------------------------------------------------------


def test_up_yes_json_deploys_and_prints_one_document_with_access(fake):
    result = run_cli("up", "demo", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)  # stdout holds exactly one JSON document
    assert fake.methods() == ["check_secrets", "preview", "up"]
    assert doc["ok"] is True and doc["stack"] == "demo"
    assert doc["preview"]["create"] == 24 and doc["changes"]["create"] == 24
    assert doc["cost_per_hour_usd"] > 190  # 2 x ND96isr_H100_v5 at ~98/h, plus the login node
    access = doc["access"]
    assert access["ssh"].startswith("az network bastion ssh --name demo-bastion --resource-group demo-rg ")
    assert "--target-ip-address 10.42.1.4 --auth-type ssh-key --username azureuser --ssh-key" in access["ssh"]
    assert access["hostfiles"] == "azcluster hosts demo"
    assert access["lustre_mount"].startswith("sudo mount -t lustre")
    assert doc["outputs"]["admin_password"] == "[secret]"
    assert "hunter2" not in result.stdout + result.stderr


def test_up_without_terminal_and_without_yes_refuses_before_anything(fake):
    """Not after a minute of preflight and preview: CI learns at once that it forgot --yes."""
    result = run_cli("up", "demo")
    assert result.exit_code == 2
    assert "--yes" in result.stderr and "no terminal" in result.stderr
    assert fake.methods() == []  # no preview either
    assert "Traceback" not in result.stderr


def test_up_asks_on_a_terminal_and_honours_no(fake, monkeypatch):
    tty(monkeypatch)
    declined = run_cli("up", "demo", input="n\n")
    assert declined.exit_code == 1 and "cancelled" in declined.stderr
    assert "up" not in fake.methods()
    accepted = run_cli("up", "demo", input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert fake.methods().count("up") == 1
    assert "az network bastion ssh" in accepted.stdout and "azcluster hosts demo" in accepted.stdout


def test_up_on_a_converged_stack_deploys_nothing_and_needs_no_confirmation(fake, monkeypatch):
    tty(monkeypatch)  # nobody is asked: no input is given, and none is needed
    fake.preview_changes = {"same": 31}
    result = run_cli("up", "demo", "--json")
    assert result.exit_code == 0, result.stderr
    assert "up" not in fake.methods() and "outputs" in fake.methods()
    assert json.loads(result.stdout)["changes"]["same"] == 31


def test_up_refresh_is_passed_to_the_engine(fake):
    assert run_cli("up", "demo", "--yes", "--refresh").exit_code == 0
    assert ("up", "demo", {"refresh": True}) in fake.calls


def test_up_runs_preflight_and_stops_when_azure_would_refuse(fake, monkeypatch):
    class Blocker:
        pool, check, message, hint = "gpu", "quota", "standardNDSH100v5Family needs 192 vCPUs, 0 free", "ask"

    monkeypatch.setattr(lifecycle, "preflight_runner", lambda loaded, connection: _Preflight([Blocker()]))
    result = run_cli("up", "demo", "--yes", "--json")
    assert result.exit_code == 1
    assert "preview" not in fake.methods()
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["preflight"]["ok"] is False
    assert "--skip-preflight" in doc["error"]["hint"]
    assert run_cli("up", "demo", "--yes", "--skip-preflight").exit_code == 0


def test_up_passes_subscription_auth_and_cloud_to_preflight(fake):
    sub = "11111111-2222-3333-4444-555555555555"
    result = run_cli(
        "up", "demo", "--yes", "--subscription", sub, "--auth", "oidc", "--cloud", "azureusgovernment"
    )
    assert result.exit_code == 0, result.stderr
    loaded, connection = fake.preflights[-1]
    assert loaded.name == "demo"
    assert connection == lifecycle.AzureOptions(sub, "oidc", "AzureUSGovernment")
    assert run_cli("up", "demo", "--yes").exit_code == 0
    assert fake.preflights[-1][1] == lifecycle.AzureOptions()  # nothing given: azure.connect's defaults
    assert run_cli("up", "demo", "--yes", "--auth", "kerberos").exit_code == 2  # same choices as preflight


def test_up_preflight_connects_as_told(fake, arm, monkeypatch):
    """The real preflight runner: --subscription, --auth and --cloud reach Azure, not the defaults."""
    from tests.fakes.arm import fake_az_script

    monkeypatch.setattr(lifecycle, "preflight_runner", lifecycle._default_preflight)
    bin_dir = arm.tmp / "bin"
    fake_az_script(bin_dir, arm.fake.token)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "99999999-0000-0000-0000-000000000000")  # not the fake's

    wrong = run_cli("up", "demo", "--yes", "--auth", "cli")
    assert wrong.exit_code == 1 and "SubscriptionNotFound" in wrong.stderr
    assert "preview" not in fake.methods()

    arm.fake.requests.clear()
    result = run_cli("up", "demo", "--yes", "--auth", "cli", "--subscription", arm.fake.subscription_id)
    assert result.exit_code == 0, result.stderr
    asked = arm.fake.calls("GET", f"/subscriptions/{arm.fake.subscription_id}/providers/Microsoft.Compute/")
    assert asked and all(r.headers["authorization"] == f"Bearer {arm.fake.token}" for r in arm.fake.requests)
    az_log = bin_dir / "az-calls.log"
    assert "get-access-token" in az_log.read_text() and "usgovcloudapi" not in az_log.read_text()
    assert fake.methods().count("up") == 1

    government = run_cli(
        "up",
        "demo",
        "--yes",
        "--auth",
        "cli",
        "--subscription",
        arm.fake.subscription_id,
        "--cloud",
        "AzureUSGovernment",
    )
    assert government.exit_code == 0, government.stderr
    assert "management.core.usgovcloudapi.net" in az_log.read_text()  # the token asked for that cloud


def test_up_writes_the_login_hostfiles_last_through_run_command(fake, arm, monkeypatch):
    """The real refresher: after the deploy, hostfiles go to the login node, connected as `up` was told."""
    from tests.fakes.arm import fake_az_script

    monkeypatch.setattr(lifecycle, "hostfile_refresher", lifecycle._default_hostfile_refresh)
    fake_az_script(arm.tmp / "bin", arm.fake.token)
    monkeypatch.setenv("PATH", f"{arm.tmp / 'bin'}:/usr/bin:/bin")
    arm.fake.lro_polls = 0
    arm.fake.add_cluster("demo", {"gpu": ("Standard_ND96isr_H100_v5", [2])})
    login = arm.fake.vms[("demo-rg", "demo-login")]
    sub = ["--auth", "cli", "--subscription", arm.fake.subscription_id]

    result = run_cli("up", "demo", "--yes", "--json", *sub)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["hostfiles"]["state"] == "installed"
    assert doc["hostfiles"]["install"]["files"] == [
        {"path": "/etc/azcluster/hostfiles/gpu-i0", "pool": "gpu", "island": 0, "hosts": 2}
    ]
    written = arm.fake.vm_root(login) / "etc/azcluster/hostfiles/gpu-i0"
    assert written.read_text() == "10.42.0.4\n10.42.0.5\n"
    assert fake.methods() == ["check_secrets", "preview", "up"]  # deployed first, hostfiles after

    human = run_cli("up", "demo", "--yes", *sub)
    assert human.exit_code == 0, human.stderr
    assert "/etc/azcluster/hostfiles/<pool>-i<island> on the login node" in human.stdout


def test_up_hostfile_failure_is_a_warning_and_no_hostfiles_sends_nothing(fake, arm, monkeypatch):
    from tests.fakes.arm import fake_az_script

    monkeypatch.setattr(lifecycle, "hostfile_refresher", lifecycle._default_hostfile_refresh)
    fake_az_script(arm.tmp / "bin", arm.fake.token)
    monkeypatch.setenv("PATH", f"{arm.tmp / 'bin'}:/usr/bin:/bin")
    arm.fake.lro_polls = 0
    arm.fake.add_cluster("demo", {"gpu": ("Standard_ND96isr_H100_v5", [2])})
    login = arm.fake.vms[("demo-rg", "demo-login")]
    login.run_command_error = ("VMAgentStatusCommunicationError", "VM 'demo-login' has not reported status.")
    sub = ["--auth", "cli", "--subscription", arm.fake.subscription_id]

    warned = run_cli("up", "demo", "--yes", "--json", *sub)
    assert warned.exit_code == 0, warned.stderr  # the cluster is up; only the hostfiles are not
    doc = json.loads(warned.stdout)
    assert doc["ok"] is True and doc["hostfiles"]["state"] == "failed"
    assert "VMAgentStatusCommunicationError" in doc["hostfiles"]["reason"]
    assert "warning:" in warned.stderr and "azcluster hosts demo --install" in warned.stderr

    before = len(arm.fake.requests)
    skipped = run_cli("up", "demo", "--yes", "--json", "--no-hostfiles", *sub)
    assert skipped.exit_code == 0, skipped.stderr
    assert json.loads(skipped.stdout)["hostfiles"] is None
    assert len(arm.fake.requests) == before  # not one request to Azure (preflight is the fixture's)


def test_up_refreshes_hostfiles_connected_as_told_and_only_after_a_deploy(fake):
    sub = "11111111-2222-3333-4444-555555555555"
    assert run_cli("up", "demo", "--yes", "--subscription", sub, "--auth", "oidc").exit_code == 0
    assert fake.hostfile_refreshes == [("demo", "demo", lifecycle.AzureOptions(sub, "oidc", None))]
    fake.fail_on["up"] = UpdateFailed("demo", "up", [], "deployment failed")
    assert run_cli("up", "demo", "--yes").exit_code == 1
    assert len(fake.hostfile_refreshes) == 1  # a failed deploy refreshes nothing


def test_up_with_validation_errors_deploys_nothing(fake, tmp_path):
    path = tmp_path / "stacks" / "Pulumi.demo.yaml"
    path.write_text(STACK.replace("capacity_tib: 4", "capacity_tib: 5"))  # not a multiple of the step
    result = run_cli("up", "demo", "--yes", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["findings"] and doc["findings"][0]["severity"] == "error"
    assert fake.methods() == []  # no preview, no secrets, no preflight
    preview = run_cli("preview", "demo", "--json")
    assert preview.exit_code == 1 and json.loads(preview.stdout)["findings"]
    assert fake.methods() == []


def test_missing_pulumi_cli_is_reported_first_exit_3(fake, monkeypatch):
    preflights = []

    def broken(options):
        raise PulumiCliMissing("no `pulumi` on PATH")

    monkeypatch.setattr(lifecycle, "engine_factory", broken)
    monkeypatch.setattr(lifecycle, "preflight_runner", lambda loaded, connection: preflights.append(loaded))
    result = run_cli("up", "demo", "--yes")
    assert result.exit_code == 3
    assert "https://www.pulumi.com/docs/install/" in result.stderr
    assert "curl -fsSL https://get.pulumi.com | sh" in result.stderr
    assert preflights == [] and "Traceback" not in result.stderr


def test_missing_passphrase_stops_before_preflight(fake, monkeypatch):
    def refuse(stack):
        raise AzclusterError("no passphrase for the stack's secrets", "set one", 3)

    monkeypatch.setattr(fake, "check_secrets", refuse)
    preflights = []
    monkeypatch.setattr(lifecycle, "preflight_runner", lambda loaded, connection: preflights.append(loaded))
    result = run_cli("up", "demo", "--yes")
    assert result.exit_code == 3 and "passphrase" in result.stderr
    assert preflights == []


def test_failed_deployment_lists_resources_with_azure_code_and_remedy(fake):
    text = (
        "RESPONSE 200: 200 OK\nERROR CODE UNAVAILABLE\n"
        '{"status": "Failed", "error": {"code": "ResourceDeploymentFailure", "details": '
        '[{"code": "AllocationFailed", "message": "Allocation failed. We do not have sufficient "'
        '"capacity."}]}}'
    )
    failures = build_failures({urn("demo", VMSS, "demo-gpu-0"): (VMSS, [text])})
    fake.fail_on["up"] = UpdateFailed("demo", "up", failures, "update failed")
    result = run_cli("up", "demo", "--yes", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    failure = doc["error"]["failures"][0]
    assert failure["code"] == "AllocationFailed" and failure["name"] == "demo-gpu-0"
    assert "capacity reservation" in failure["remedy"] and "azcluster up demo" in failure["remedy"]
    assert failure["retryable"] is True
    assert "resumes from what already exists" in doc["error"]["hint"]
    human = run_cli("up", "demo", "--yes")
    assert human.exit_code == 1
    assert "AllocationFailed" in human.stderr and "demo-gpu-0" in human.stderr
    assert "Traceback" not in human.stderr


def test_locked_stack_says_who_holds_it_and_how_to_cancel(fake):
    fake.fail_on["up"] = StackLocked("demo", "locked by alice@laptop, pid 4242, since 2026-03-01T10:00:00Z")
    result = run_cli("up", "demo", "--yes")
    assert result.exit_code == 1
    assert "alice@laptop" in result.stderr and "4242" in result.stderr
    assert "azcluster cancel demo" in result.stderr


# --- preview ------------------------------------------------------------------------------------------


def test_preview_json_has_changes_steps_and_cost(fake):
    result = run_cli("preview", "demo", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["changes"]["create"] == 24
    assert doc["steps"][0] == {
        "urn": urn("demo", VMSS, "gpu-0"),
        "type": "x",
        "name": "gpu-0",
        "op": "create",
    }
    assert doc["cost_per_hour_usd"] > 0
    assert "up" not in fake.methods()


# --- down -------------------------------------------------------------------------------------------


def _deployed(fake, *, with_compute=True, **lustre_outputs):
    rg = resource("demo", RG, "demo-rg")
    account = resource("demo", ACCOUNT, "demo-blob", protect=True, deps=[rg.urn])
    fake.resources = [rg, account, lustre(**lustre_outputs)]
    if with_compute:
        fake.resources.append(resource("demo", VMSS, "demo-gpu-0", deps=[rg.urn]))


def test_down_keeps_protected_storage_and_reports_it(fake):
    _deployed(fake)
    result = run_cli("down", "demo", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert ("destroy", "demo", {"exclude_protected": True}) in fake.calls
    assert "release" not in fake.methods()
    assert [c for c in fake.calls if c[0] == "destroy"] == [("destroy", "demo", {"exclude_protected": True})]
    doc = json.loads(result.stdout)
    assert doc["data_deleted"] is False and doc["destroyed"] == 1
    kept = {k["name"]: k["data"] for k in doc["kept"]}
    assert kept == {"demo-rg": False, "demo-blob": True, "demo-storage-lustre": True}
    human = run_cli("down", "demo", "--yes")
    assert "kept (holds data" in human.stdout and "--delete-data" in human.stdout


def test_down_without_yes_and_without_terminal_refuses(fake):
    _deployed(fake)
    result = run_cli("down", "demo")
    assert result.exit_code == 2 and "--yes" in result.stderr
    assert "destroy" not in fake.methods()


def test_delete_data_without_terminal_needs_yes_too(fake):
    _deployed(fake)
    result = run_cli("down", "demo", "--delete-data")
    assert result.exit_code == 2
    assert "--yes" in result.stderr and "--delete-data" in result.stderr
    assert "destroy" not in fake.methods()


def test_delete_data_asks_for_the_stack_name(fake, monkeypatch):
    tty(monkeypatch)
    _deployed(fake, with_compute=False, archiveStatus=[])
    fake.resources = [r for r in fake.resources if r.type != AML_FILESYSTEM]  # no Lustre: no archive check
    wrong = run_cli("down", "demo", "--delete-data", input="prod\n")
    assert wrong.exit_code == 1 and "nothing was deleted" in wrong.stderr
    assert "destroy" not in fake.methods()
    right = run_cli("down", "demo", "--delete-data", input="demo\n")
    assert right.exit_code == 0, right.stderr
    assert [m for m in fake.methods() if m in ("destroy", "release")] == ["destroy", "release", "destroy"]
    assert ("destroy", "demo", {"exclude_protected": False}) in fake.calls
    assert fake.resources == []


def test_delete_data_refuses_unarchived_lustre_right_after_removing_compute(fake):
    _deployed(fake)
    result = run_cli("down", "demo", "--yes", "--delete-data", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    hint = doc["error"]["hint"]
    assert "az amlfs archive --amlfs-name demo-lustre --resource-group demo-rg --filesystem-path /" in hint
    assert "azcluster down demo --delete-data" in hint
    assert "release" not in fake.methods()
    assert any(k["name"] == "demo-storage-lustre" for k in doc["kept"])
    assert not any(r.type == VMSS for r in fake.resources)  # the compute is gone, the data is not


def test_delete_data_accepts_an_archive_completed_after_the_last_change(fake):
    _deployed(fake, with_compute=False)
    fake.history_entries = [
        UpdateInfo("refresh", "succeeded", at("2026-03-02T09:00:00"), at("2026-03-02T09:01:00")),
        UpdateInfo("destroy", "succeeded", at("2026-03-01T10:00:00"), at("2026-03-01T10:20:00")),
    ]
    archived = lustre(
        archiveStatus=[
            {
                "filesystemPath": "/",
                "status": {
                    "state": "Completed",
                    "lastStartedTime": "2026-03-01T11:00:00.1234567Z",
                    "lastCompletionTime": "2026-03-01T11:30:00Z",
                    "percentComplete": 100,
                },
            }
        ]
    )
    fake.after_refresh = {archived.urn: archived}
    result = run_cli("down", "demo", "--yes", "--delete-data", "--json")
    assert result.exit_code == 0, result.stderr
    assert ("refresh", "demo", {"targets": [archived.urn]}) in fake.calls
    release = next(c for c in fake.calls if c[0] == "release")
    assert archived.urn in release[2]["urns"] and len(release[2]["urns"]) == 3  # data and the group
    doc = json.loads(result.stdout)
    assert doc["data_deleted"] is True and doc["kept"] == []


def test_delete_data_refuses_an_archive_older_than_the_last_change(fake):
    _deployed(fake, with_compute=False)
    fake.history_entries = [
        UpdateInfo("destroy", "succeeded", at("2026-03-01T10:00:00"), at("2026-03-01T10:20:00")),
    ]
    old = lustre(
        archiveStatus=[
            {
                "filesystemPath": "/",
                "status": {"state": "Completed", "lastStartedTime": "2026-03-01T09:00:00Z"},
            }
        ]
    )
    fake.after_refresh = {old.urn: old}
    result = run_cli("down", "demo", "--yes", "--delete-data")
    assert result.exit_code == 1
    assert "before the cluster last changed" in result.stderr
    assert "release" not in fake.methods()


def test_down_of_a_stack_with_nothing_deployed_is_fine(fake):
    result = run_cli("down", "demo", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["destroyed"] == 0
    assert "destroy" not in fake.methods()


# --- archive status rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ok", "words"),
    [
        ({"state": "InProgress", "percentComplete": 40}, False, "40% done"),
        ({"state": "FSScanInProgress"}, False, "still running"),
        ({"state": "Failed", "errorMessage": "blob unreachable"}, False, "blob unreachable"),
        ({"state": "NotConfigured"}, False, "no completed archive"),
        ({"state": "Completed", "lastStartedTime": "2026-03-01T12:00:00Z"}, True, "archived"),
        ({"state": "Completed", "lastStartedTime": "2026-02-01T12:00:00Z"}, False, "before the cluster"),
    ],
)
def test_archive_verdict(status, ok, words):
    outputs = {"hsm": {"archiveStatus": [{"filesystemPath": "/", "status": status}]}}
    verdict = lifecycle.archive_verdict(outputs, at("2026-03-01T00:00:00"))
    assert verdict.ok is ok and words in verdict.reason


# --- refresh, outputs, cancel, list ---------------------------------------------------------------------


def test_refresh_confirms_and_reports(fake):
    assert run_cli("refresh", "demo").exit_code == 2
    result = run_cli("refresh", "demo", "--yes", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["stack"] == "demo"
    assert "refresh" in fake.methods()


def test_outputs_mask_secrets_unless_asked(fake):
    masked = run_cli("outputs", "demo", "--json")
    assert masked.exit_code == 0
    assert json.loads(masked.stdout)["outputs"]["admin_password"] == "[secret]"
    assert "hunter2" not in masked.stdout
    shown = run_cli("outputs", "demo", "--json", "--show-secrets")
    assert json.loads(shown.stdout)["outputs"]["admin_password"] == "hunter2"
    human = run_cli("outputs", "demo")
    assert "login_private_ip" in human.stdout and "hunter2" not in human.stdout


def test_cancel_needs_confirmation_then_releases_the_lock(fake):
    assert run_cli("cancel", "demo").exit_code == 2
    assert "cancel" not in fake.methods()
    result = run_cli("cancel", "demo", "--yes")
    assert result.exit_code == 0 and "azcluster refresh demo" in result.stderr
    assert ("cancel", "demo", {}) in fake.calls


def test_list_merges_stack_files_and_the_backend(fake):
    fake.summaries = [
        StackSummary("demo", at("2026-03-01T10:20:00"), False, 31),
        StackSummary("organization/azcluster/gone", at("2026-02-01T10:00:00"), False, 0),
    ]
    result = run_cli("list", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {row["stack"]: row for row in json.loads(result.stdout)["stacks"]}
    assert rows["demo"]["state"] == "deployed" and rows["demo"]["resources"] == 31
    assert rows["demo"]["nodes"] == 2 and rows["demo"]["cost_per_hour_usd"] > 190
    assert rows["demo"]["last_update"].startswith("2026-03-01T10:20")
    assert rows["gone"]["state"] == "empty (no stack file)" and rows["gone"]["nodes"] is None
    human = run_cli("list")
    assert "demo" in human.stdout and "deployed" in human.stdout


def test_options_reach_the_engine_factory(fake):
    run_cli("preview", "demo", "--backend", "azblob://state?storage_account=acct", "--secrets-provider", "x")
    options = fake.factory_calls[-1]
    assert options.backend == "azblob://state?storage_account=acct" and options.secrets_provider == "x"


def test_failure_json_shape_for_every_engine_error(fake):
    fake.fail_on["preview"] = UpdateFailed(
        "demo",
        "preview",
        [ResourceFailure(urn("demo", "pulumi:pulumi:Stack", "azcluster-demo"), "x", "boom")],
    )
    result = run_cli("preview", "demo", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["exit_code"] == 1
    assert doc["error"]["operation"] == "preview" and doc["error"]["failures"][0]["message"] == "boom"


# --- up in CI with local state (issue 9 item 14) ---------------------------------------------------------


@pytest.mark.parametrize("variable", ["CI", "GITHUB_ACTIONS"])
def test_up_in_ci_refuses_the_local_state_backend(fake, monkeypatch, variable):
    monkeypatch.setenv(variable, "true")
    result = run_cli("up", "demo", "--yes", "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert "local state" in error["message"] and "thrown away" in error["message"]
    assert "PULUMI_BACKEND_URL=azblob://<container>?storage_account=<account>" in error["hint"]
    assert "AZCLUSTER_ALLOW_LOCAL_STATE=1" in error["hint"]
    assert "up" not in fake.methods() and "preview" not in fake.methods()


@pytest.mark.parametrize(
    "setting",
    [
        ("PULUMI_BACKEND_URL", "azblob://state?storage_account=team"),
        ("AZCLUSTER_ALLOW_LOCAL_STATE", "1"),
        ("CI", "false"),
    ],
)
def test_up_in_ci_deploys_with_remote_state_or_when_local_state_is_allowed(fake, monkeypatch, setting):
    monkeypatch.setenv("GITHUB_ACTIONS", "true") if setting[0] != "CI" else None
    monkeypatch.setenv(*setting)
    result = run_cli("up", "demo", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert fake.methods()[-1] == "up"


def test_up_in_ci_with_a_backend_flag_deploys(fake, monkeypatch):
    monkeypatch.setenv("CI", "1")
    result = run_cli("up", "demo", "--yes", "--json", "--backend", "azblob://state?storage_account=team")
    assert result.exit_code == 0, result.stderr


# --- Managed Lustre and role assignments still propagating (issue 9 item 7) ------------------------------


def _lustre_failure(code: str, message: str, typ: str = AML_FILESYSTEM) -> UpdateFailed:
    from azcluster.remedies import remedy_for

    text = f'Code="{code}" Message="{message}"'
    failure = ResourceFailure(
        urn("demo", typ, "demo-storage-lustre"), typ, message, code, remedy_for(code, text)
    )
    return UpdateFailed("demo", "up", [failure])


def test_up_waits_for_role_propagation_and_retries_lustre_once(fake, monkeypatch):
    waits = []
    monkeypatch.setattr(lifecycle, "role_wait", waits.append)
    fake.fail_once["up"] = _lustre_failure(
        "AuthorizationFailed", "The client does not have authorization to access the storage account."
    )
    result = run_cli("up", "demo", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert waits == [300] and fake.methods().count("up") == 2
    doc = json.loads(result.stdout)
    assert (
        "up to five minutes" in doc["retried"]["reason"] and "demo-storage-lustre" in doc["retried"]["reason"]
    )
    assert "waits 5 minutes and tries once more" in result.stderr and "[yellow]" not in result.stderr


def test_a_second_lustre_failure_after_the_wait_is_reported(fake, monkeypatch):
    waits = []
    monkeypatch.setattr(lifecycle, "role_wait", waits.append)
    fake.fail_on["up"] = _lustre_failure("AuthorizationFailed", "no access to the storage account")
    result = run_cli("up", "demo", "--yes", "--json")
    assert result.exit_code == 1 and waits == [300] and fake.methods().count("up") == 2


@pytest.mark.parametrize(
    "failure",
    [
        _lustre_failure("QuotaExceeded", "Managed Lustre capacity quota exceeded."),  # waiting cannot help
        _lustre_failure("AllocationFailed", "no capacity", typ=VMSS),  # not the file system
    ],
)
def test_other_failures_are_not_retried(fake, monkeypatch, failure):
    waits = []
    monkeypatch.setattr(lifecycle, "role_wait", waits.append)
    fake.fail_once["up"] = failure
    result = run_cli("up", "demo", "--yes", "--json")
    assert result.exit_code == 1 and waits == [] and fake.methods().count("up") == 1


def test_without_blob_integration_a_lustre_failure_is_not_retried(fake, monkeypatch, tmp_path):
    stack_file = tmp_path / "stacks" / "Pulumi.demo.yaml"
    # No provider principal: the stack grants no roles, so none can be propagating.
    stack_file.write_text(re.sub(r"\n *provider_principal_id: .*", "", STACK))
    waits = []
    monkeypatch.setattr(lifecycle, "role_wait", waits.append)
    fake.fail_once["up"] = _lustre_failure("AuthorizationFailed", "no access")
    result = run_cli("up", "demo", "--yes", "--json")
    assert result.exit_code == 1 and waits == []
