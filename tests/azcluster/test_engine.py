"""The engine's pure parts: Azure error codes -> remedies, Pulumi's text -> failures and lock holders,
where state and secrets live (refusing an empty passphrase), and the live progress view."""

from __future__ import annotations

import textwrap

import pytest
from rich.console import Console

from azcluster import engine
from azcluster.engine import (
    PASSPHRASE,
    Event,
    lock_holder,
    parse_diagnostics,
    resolve_backend,
    resolve_secrets,
)
from azcluster.errors import AzclusterError
from azcluster.live import LiveView, duration
from azcluster.remedies import REMEDIES, azure_message, extract_codes, primary_code, remedy_for

VMSS = "azure-native:compute:VirtualMachineScaleSet"
AZCORE_QUOTA = textwrap.dedent(
    """\
    PUT https://management.azure.com/subscriptions/x/resourceGroups/demo-rg/providers/Microsoft.Compute/virtualMachineScaleSets/demo-gpu-0
    --------------------------------------------------------------------------------
    RESPONSE 409: 409 Conflict
    ERROR CODE: OperationNotAllowed
    --------------------------------------------------------------------------------
    {
      "error": {
        "code": "OperationNotAllowed",
        "message": "Operation could not be completed as it results in exceeding approved FAMILY quota."
      }
    }
    """
).replace("FAMILY", "standardNDSH100v5Family Cores")
NESTED_ALLOCATION = (
    '{"status": "Failed", "error": {"code": "ResourceDeploymentFailure", "message": "The resource operation '
    'completed with terminal provisioning state \'Failed\'.", "details": [{"code": "AllocationFailed", '
    '"message": "Allocation failed. Please try reducing the VM size or number of VMs."}]}}'
)
AUTOREST_SKU = (
    'autorest/azure: Service returned an error. Status=409 Code="SkuNotAvailable" Message="The requested '
    "size for resource '/subscriptions/x/.../demo-gpu-0' is currently not available in location 'eastus' "
    "zones '1' for subscription 'x'.\""
)
TEMPLATE_QUOTA = (
    "Azure Error: InvalidTemplateDeployment\nMessage: The template deployment is not valid.\n"
    "Exception Details:\n\tError Code: QuotaExceeded\n"
    "\tMessage: Operation results in exceeding quota limits of Core."
)


# --- error codes and remedies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (AZCORE_QUOTA, "OperationNotAllowed"),
        (NESTED_ALLOCATION, "AllocationFailed"),
        (AUTOREST_SKU, "SkuNotAvailable"),
        (TEMPLATE_QUOTA, "QuotaExceeded"),
        ('Code="ZonalAllocationFailed" Message="no capacity in zone 2"', "ZonalAllocationFailed"),
        ('"code": "OverconstrainedAllocationRequest"', "OverconstrainedAllocationRequest"),
        ("the program raised: ValueError bad spec", None),
    ],
)
def test_primary_code_finds_the_cause_not_the_wrapper(text, code):
    assert primary_code(text) == code


def test_every_code_is_extracted_in_order_without_repeats():
    assert extract_codes(NESTED_ALLOCATION) == ["ResourceDeploymentFailure", "AllocationFailed"]
    assert extract_codes(AZCORE_QUOTA) == ["OperationNotAllowed"]


def test_operation_not_allowed_means_quota_only_when_azure_says_quota():
    quota = remedy_for("OperationNotAllowed", AZCORE_QUOTA)
    assert quota is not None and "preflight" in quota.todo and "quota" in quota.todo
    other = remedy_for("OperationNotAllowed", "Operation 'start' is not allowed since the VM is deallocating")
    assert other is not None and "quota" not in other.todo


def test_remedies_cover_the_allocation_family_and_say_how_to_retry():
    for code in ("AllocationFailed", "ZonalAllocationFailed", "OverconstrainedAllocationRequest"):
        remedy = REMEDIES[code]
        assert remedy.retryable
        assert "azcluster up demo" in remedy.for_stack("demo")
    assert "capacity reservation" in REMEDIES["AllocationFailed"].todo
    assert not REMEDIES["SkuNotAvailable"].retryable
    assert remedy_for(None) is None and remedy_for("NoSuchCode") is None


def test_remedies_say_what_kind_of_problem_and_re_run_the_command_that_failed():
    assert REMEDIES["AllocationFailed"].kind == REMEDIES["ZonalAllocationFailed"].kind == "capacity"
    assert remedy_for("OperationNotAllowed", AZCORE_QUOTA).kind == "quota"
    assert remedy_for("OperationNotAllowed", "the VM is deallocating").kind == "other"
    assert REMEDIES["VMStartTimedOut"].for_stack("demo", "start").startswith("re-run `azcluster start demo`")
    assert "azcluster up demo" in REMEDIES["VMStartTimedOut"].for_stack("demo")
    # an unknown code whose message says throttled is throttling; a known one keeps its meaning
    assert remedy_for("SomethingNew", "Too many requests were throttled").code == "TooManyRequests"
    assert remedy_for("AllocationFailed", "throttled").code == "AllocationFailed"
    # generic codes count only where Azure names them as codes, not as words in a sentence
    assert extract_codes('the file NotFound in a sentence; "code": "NotFound"') == ["NotFound"]


def test_azure_message_is_azures_own_sentence():
    assert azure_message(AZCORE_QUOTA, "OperationNotAllowed").startswith("Operation could not be completed")
    assert azure_message(NESTED_ALLOCATION, "AllocationFailed").startswith("Allocation failed.")
    assert "not available in location 'eastus'" in azure_message(AUTOREST_SKU, "SkuNotAvailable")
    assert azure_message("error: something broke\nmore", None) == "something broke"


# --- Pulumi's text --------------------------------------------------------------------------------------

PULUMI_STDOUT = textwrap.dedent(
    """\
    Updating (demo):
     +  azure-native:compute:VirtualMachineScaleSet demo-gpu-0 creating (241s) error: ...
    Diagnostics:
      azure-native:compute:VirtualMachineScaleSet (demo-gpu-0):
        error: Code="AllocationFailed" Message="Allocation failed. We do not have sufficient capacity."
        Correlation ID: 1234

      pulumi:pulumi:Stack (azcluster-demo):
        error: update failed

    Resources:
        + 12 created
    Duration: 4m3s
    """
)


def test_diagnostics_section_is_parsed_per_resource():
    found = parse_diagnostics(PULUMI_STDOUT)
    assert [(urn, typ) for urn, typ, _ in found] == [
        (
            "azure-native:compute:VirtualMachineScaleSet::demo-gpu-0",
            "azure-native:compute:VirtualMachineScaleSet",
        ),
        ("pulumi:pulumi:Stack::azcluster-demo", "pulumi:pulumi:Stack"),
    ]
    assert "Correlation ID: 1234" in found[0][2][0]
    failures = engine.Recorder().failures(PULUMI_STDOUT)
    assert [f.code for f in failures] == ["AllocationFailed"]  # the stack's "update failed" is dropped
    assert failures[0].name == "demo-gpu-0" and failures[0].message.startswith("Allocation failed.")


def test_events_feed_failures_with_codes():
    recorder = engine.Recorder()
    vm = f"urn:pulumi:demo::azcluster::azcluster:index:Cluster${VMSS}::demo-gpu-0"
    recorder(Event("start", urn=vm, type="azure-native:compute:VirtualMachineScaleSet", op="create"))
    recorder(Event("diagnostic", urn=vm, message=AUTOREST_SKU, severity="error"))
    recorder(Event("diagnostic", urn=vm, message="just a warning", severity="warning"))
    recorder(Event("failed", urn=vm, type="azure-native:compute:VirtualMachineScaleSet", op="create"))
    (failure,) = recorder.failures("ignored when events said it")
    assert failure.code == "SkuNotAvailable" and failure.type == "azure-native:compute:VirtualMachineScaleSet"
    assert failure.remedy is REMEDIES["SkuNotAvailable"] and "just a warning" not in failure.detail
    assert recorder.steps[0].op == "create"


def test_lock_holder_is_read_from_the_file_backend_message():
    text = (
        "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or "
        "delete the lock file with `pulumi cancel`.\n  file:///home/a/.azcluster/state/.pulumi/locks/organization/"
        "azcluster/demo/0f.json: created by alice@laptop (pid 4242) at 2026-03-01T10:00:00Z"
    )
    assert lock_holder(text) == "locked by alice@laptop, pid 4242, since 2026-03-01T10:00:00Z"
    assert "Pulumi Cloud" in lock_holder("[409] Conflict: Another update is currently in progress.")


# --- where state lives ------------------------------------------------------------------------------


def test_default_backend_is_a_local_directory_that_gets_created(tmp_path):
    env = {"HOME": str(tmp_path)}
    url = resolve_backend(None, env)
    assert url == (tmp_path / ".azcluster" / "state").as_uri()
    assert (tmp_path / ".azcluster" / "state").is_dir()


def test_backend_flag_beats_environment_beats_default(tmp_path):
    env = {"HOME": str(tmp_path), "PULUMI_BACKEND_URL": "azblob://state?storage_account=team"}
    assert resolve_backend(None, env) == "azblob://state?storage_account=team"
    assert resolve_backend("file://~/elsewhere", env) == "file://~/elsewhere"
    assert (tmp_path / "elsewhere").is_dir()
    with pytest.raises(AzclusterError) as err:
        resolve_backend("just-a-name", env)
    assert err.value.exit_code == 2


# --- secrets ------------------------------------------------------------------------------------------


def test_passphrase_from_environment_is_accepted_and_never_echoed():
    secrets = resolve_secrets(None, None, "file:///s", {"PULUMI_CONFIG_PASSPHRASE": "correct horse"})
    assert secrets == engine.Secrets(PASSPHRASE, "PULUMI_CONFIG_PASSPHRASE")
    assert "correct horse" not in repr(secrets)


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_passphrase_is_refused_with_exit_3(value):
    with pytest.raises(AzclusterError) as err:
        resolve_secrets(None, None, "file:///s", {"PULUMI_CONFIG_PASSPHRASE": value})
    assert err.value.exit_code == 3 and "empty" in err.value.message
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" in err.value.hint


def test_missing_passphrase_is_refused_and_says_how_to_set_one():
    with pytest.raises(AzclusterError) as err:
        resolve_secrets(None, None, "file:///s", {})
    assert err.value.exit_code == 3
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" in err.value.hint and "azurekeyvault://" in err.value.hint


def test_passphrase_file_must_exist_and_hold_something(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path in (tmp_path / "missing", empty):
        with pytest.raises(AzclusterError) as err:
            resolve_secrets(None, None, "file:///s", {"PULUMI_CONFIG_PASSPHRASE_FILE": str(path)})
        assert err.value.exit_code == 3
    good = tmp_path / "phrase"
    good.write_text("s3cret\n")
    secrets = resolve_secrets(None, None, "file:///s", {"PULUMI_CONFIG_PASSPHRASE_FILE": str(good)})
    assert secrets.provider == PASSPHRASE and str(good) in secrets.source


def test_key_vault_needs_no_passphrase_and_mismatches_are_refused():
    vault = "azurekeyvault://team.vault.azure.net/keys/pulumi"
    assert resolve_secrets(vault, None, "file:///s", {}).provider == vault
    assert resolve_secrets(None, vault, "file:///s", {}).provider == vault  # from the stack file
    with pytest.raises(AzclusterError) as err:
        resolve_secrets(vault, PASSPHRASE, "file:///s", {"PULUMI_CONFIG_PASSPHRASE": "x"})
    assert err.value.exit_code == 2 and "change-secrets-provider" in err.value.hint
    with pytest.raises(AzclusterError) as err:
        resolve_secrets("vault://nope", None, "file:///s", {})
    assert err.value.exit_code == 2
    assert resolve_secrets(None, None, "https://api.pulumi.com", {}).provider == "default"


def test_stack_file_records_its_secrets_provider(tmp_path):
    path = tmp_path / "Pulumi.demo.yaml"
    path.write_text("encryptionsalt: v1:abc\nconfig: {}\n")
    assert engine.stack_file_secrets_provider(path) == PASSPHRASE
    path.write_text(
        "secretsprovider: azurekeyvault://v.vault.azure.net/keys/k\nencryptedkey: x\nconfig: {}\n"
    )
    assert engine.stack_file_secrets_provider(path) == "azurekeyvault://v.vault.azure.net/keys/k"
    path.write_text("config: {}\n")
    assert engine.stack_file_secrets_provider(path) is None


# --- the live view --------------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_without_a_terminal_the_view_prints_one_line_per_finished_resource():
    console, clock = Console(record=True, width=200, force_terminal=False), Clock()
    with LiveView(console, "up demo", live=False, clock=clock) as view:
        view(Event("start", urn="u::demo-gpu-0", type=VMSS, op="create"))
        view(Event("start", urn="u::Cluster", type="azcluster:index:Cluster", op="create"))
        view(Event("start", urn="u::demo-gpu-1", type=VMSS, op="create"))
        clock.now += 252
        view(Event("done", urn="u::demo-gpu-0", type=VMSS, op="create"))
        view(Event("failed", urn="u::demo-gpu-1", type=VMSS, op="create"))
        view(Event("diagnostic", urn="u::demo-gpu-1", message="boom", severity="error"))
    text = console.export_text()
    assert "✓ created VirtualMachineScaleSet demo-gpu-0 (4m12s)" in text
    assert "✗ creating VirtualMachineScaleSet demo-gpu-1 failed after 4m12s" in text
    assert "Cluster" not in text and "boom" not in text
    assert "up demo: 1 created, 1 failed in 4m12s" in text


def test_on_a_terminal_the_view_shows_resources_in_flight_with_elapsed_time():
    clock = Clock()
    view = LiveView(Console(width=120), "up demo", live=False, clock=clock)
    view(Event("start", urn="u::demo-lustre", type="azure-native:storagecache:AmlFilesystem", op="create"))
    clock.now += 30
    view(Event("start", urn="u::demo-gpu-0", type=VMSS, op="create"))
    clock.now += 95
    console = Console(record=True, width=120)
    console.print(view.render())
    text = console.export_text()
    assert "AmlFilesystem" in text and "2m05s" in text and "1m35s" in text
    assert text.index("demo-lustre") < text.index("demo-gpu-0")  # oldest first
    assert duration(3 * 3600 + 120) == "3h02m"


def test_live_panel_runs_on_a_terminal_and_leaves_a_summary():
    import io

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, highlight=False)
    with LiveView(console, "down demo") as view:
        assert view.live
        view(Event("start", urn="u::demo-gpu-0", type=VMSS, op="delete"))
        view(Event("done", urn="u::demo-gpu-0", type=VMSS, op="delete"))
    assert "down demo: 1 deleted" in out.getvalue()


def test_the_view_leaves_out_components_of_any_program_not_only_azclusters():
    console, clock = Console(record=True, width=200, force_terminal=False), Clock()
    with LiveView(console, "up demo", live=False, clock=clock) as view:
        view(Event("start", urn="u::mine", type="acme:index:Training", op="create", custom=False))
        view(Event("done", urn="u::mine", type="acme:index:Training", op="create", custom=False))
        view(Event("done", urn="u::demo-gpu-0", type=VMSS, op="create", custom=True))
    text = console.export_text()
    assert "Training" not in text and "up demo: 1 created" in text
