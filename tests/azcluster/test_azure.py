"""Credentials, subscriptions, clouds and the transport, through the real SDK against the loopback fake."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from azcluster import azure
from azcluster.errors import EXIT_MISSING_TOOL, EXIT_REFUSED, EXIT_USAGE, AzclusterError
from tests.fakes.arm import SUBSCRIPTION, RefusingCredential, fake_az_script

OTHER_SUB = "99999999-8888-7777-6666-555555555555"


def _profile(directory: Path, subscriptions: list[dict]) -> None:
    """Write azureProfile.json the way the Azure CLI does: UTF-8 with a byte-order mark."""
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"installationId": "x", "subscriptions": subscriptions})
    (directory / "azureProfile.json").write_bytes(b"\xef\xbb\xbf" + text.encode())


# --- subscription -----------------------------------------------------------------------------------


def test_subscription_order_flag_then_environment_then_cli_default(tmp_path: Path) -> None:
    _profile(
        tmp_path,
        [
            {"id": OTHER_SUB, "name": "research", "isDefault": False, "environmentName": "AzureUSGovernment"},
            {"id": SUBSCRIPTION.upper(), "name": "prod", "isDefault": True, "environmentName": "AzureCloud"},
        ],
    )
    env = {"AZURE_SUBSCRIPTION_ID": OTHER_SUB}
    assert azure.resolve_subscription(SUBSCRIPTION, env, tmp_path)[:2] == (SUBSCRIPTION, "--subscription")
    assert azure.resolve_subscription(None, env, tmp_path) == (
        OTHER_SUB,
        "AZURE_SUBSCRIPTION_ID",
        "AzureUSGovernment",
    )
    assert azure.resolve_subscription(None, {}, tmp_path) == (
        SUBSCRIPTION,
        "Azure CLI default subscription",
        "AzureCloud",
    )
    # a name the Azure CLI knows resolves to its id
    assert azure.resolve_subscription("Research", {}, tmp_path)[0] == OTHER_SUB


def test_no_subscription_anywhere_is_exit_3_saying_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(AzclusterError) as caught:
        azure.resolve_subscription(None, {}, tmp_path / "no-such-dir")
    assert caught.value.exit_code == EXIT_MISSING_TOOL
    for remedy in ("az login", "AZURE_SUBSCRIPTION_ID", "--subscription"):
        assert remedy in caught.value.hint


def test_malformed_subscription_values_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(AzclusterError) as caught:
        azure.resolve_subscription(None, {"AZURE_SUBSCRIPTION_ID": "my-sub"}, tmp_path)
    assert caught.value.exit_code == EXIT_USAGE
    with pytest.raises(AzclusterError) as caught:
        azure.resolve_subscription("unknown-name", {}, tmp_path)
    assert caught.value.exit_code == EXIT_USAGE


# --- clouds -----------------------------------------------------------------------------------------


def test_cloud_table_matches_the_sdks_own_endpoints_and_authorities() -> None:
    from azure.core import AzureClouds
    from azure.identity import AzureAuthorityHosts
    from azure.mgmt.core.tools import get_arm_endpoints

    sdk = {
        "AzureCloud": (AzureClouds.AZURE_PUBLIC_CLOUD, AzureAuthorityHosts.AZURE_PUBLIC_CLOUD),
        "AzureUSGovernment": (AzureClouds.AZURE_US_GOVERNMENT, AzureAuthorityHosts.AZURE_GOVERNMENT),
        "AzureChinaCloud": (AzureClouds.AZURE_CHINA_CLOUD, AzureAuthorityHosts.AZURE_CHINA),
    }
    assert set(azure.CLOUDS) == set(sdk)
    for name, (cloud_setting, authority) in sdk.items():
        endpoints = get_arm_endpoints(cloud_setting)
        assert azure.CLOUDS[name].arm_endpoint == endpoints["resource_manager"]
        assert [azure.CLOUDS[name].scope] == endpoints["credential_scopes"]
        assert azure.CLOUDS[name].authority == authority
    with pytest.raises(AzclusterError):
        azure.cloud_for("AzureGermanCloud")


def test_endpoint_override_must_be_https(arm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZCLUSTER_ARM_ENDPOINT", arm.url.replace("https://", "http://"))
    with pytest.raises(AzclusterError) as caught:
        arm.context()
    assert caught.value.exit_code == EXIT_USAGE


def test_cli_cloud_of_the_subscription_picks_scope_unless_cloud_given(arm, monkeypatch) -> None:
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID")
    _profile(
        arm.tmp / "azure-config",
        [{"id": SUBSCRIPTION, "name": "gov", "isDefault": True, "environmentName": "AzureUSGovernment"}],
    )
    assert arm.context().scope == "https://management.core.usgovcloudapi.net/.default"
    ctx = azure.connect(cloud="AzureChinaCloud", credential=arm.credential)
    assert ctx.scope == "https://management.chinacloudapi.cn/.default"
    assert ctx.arm_endpoint == arm.url + "/"  # AZCLUSTER_ARM_ENDPOINT still wins for the endpoint


# --- credentials and the wire -----------------------------------------------------------------------


def test_token_scope_and_bearer_reach_resource_manager(arm, monkeypatch) -> None:
    monkeypatch.setenv("AZCLUSTER_ARM_SCOPE", "https://management.example.test/.default")
    ctx = arm.context()
    list(azure.compute_client(ctx).usage.list("eastus"))
    assert arm.credential.scopes[-1] == ("https://management.example.test/.default",)
    call = arm.fake.calls("GET", "/usages")[-1]
    assert call.headers["authorization"] == f"Bearer {arm.fake.token}"
    assert call.query["api-version"]


def test_credential_that_cannot_get_a_token_is_exit_3(arm) -> None:
    ctx = arm.context(credential=RefusingCredential())
    client = azure.compute_client(ctx)
    with pytest.raises(AzclusterError) as caught, azure.azure_errors(ctx, "reading quota"):
        list(client.usage.list("eastus"))
    assert caught.value.exit_code == EXIT_MISSING_TOOL
    assert "no working Azure credential while reading quota" in caught.value.message
    assert "az login" in caught.value.hint
    assert not arm.fake.calls("GET", "/usages")  # nothing was sent without a token


def test_tls_is_verified_without_the_test_ca_the_call_fails(arm, monkeypatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    ctx = arm.context(retry_total=0)
    with pytest.raises(AzclusterError) as caught, azure.azure_errors(ctx, "reading quota"):
        list(azure.compute_client(ctx).usage.list("eastus"))
    assert caught.value.exit_code == EXIT_REFUSED
    assert "cannot reach" in caught.value.message


def test_429_with_retry_after_is_waited_out_then_succeeds(arm) -> None:
    arm.fake.inject("GET", "/usages", 429, headers={"Retry-After": "1"}, code="TooManyRequests")
    started = time.monotonic()
    usages = list(azure.compute_client(arm.context()).usage.list("eastus"))
    elapsed = time.monotonic() - started
    assert len(arm.fake.calls("GET", "/usages")) == 2
    assert usages and elapsed >= 0.9  # Retry-After: 1 was honoured, not the 0.01 s test backoff


def test_500_once_is_retried(arm) -> None:
    arm.fake.inject("GET", "/skus", 500)
    skus = list(azure.compute_client(arm.context()).resource_skus.list(filter="location eq 'eastus'"))
    assert {s.name for s in skus} >= {"Standard_ND96isr_H100_v5"}
    assert len(arm.fake.calls("GET", "/skus")) >= 2


def test_persistent_throttling_and_forbidden_are_clear_exit_1(arm) -> None:
    arm.fake.inject("GET", "/usages", 403, code="AuthorizationFailed", message="no read on subscription")
    ctx = arm.context()
    with pytest.raises(AzclusterError) as caught, azure.azure_errors(ctx, "reading quota"):
        list(azure.compute_client(ctx).usage.list("eastus"))
    assert caught.value.exit_code == EXIT_REFUSED
    assert "AuthorizationFailed" in caught.value.message
    assert "role" in caught.value.hint

    arm.fake.inject("GET", "/usages", 429, headers={"Retry-After": "0"}, times=20)
    with pytest.raises(AzclusterError) as caught, azure.azure_errors(ctx, "reading quota"):
        list(azure.compute_client(ctx, retry_total=2).usage.list("eastus"))
    assert caught.value.exit_code == EXIT_REFUSED
    assert "throttling" in caught.value.hint


def test_oidc_without_its_environment_is_exit_3_naming_the_variables(monkeypatch) -> None:
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(AzclusterError) as caught:
        azure.make_credential("oidc", azure.CLOUDS["AzureCloud"])
    assert caught.value.exit_code == EXIT_MISSING_TOOL
    assert "AZURE_FEDERATED_TOKEN_FILE" in caught.value.hint


def test_azure_cli_credential_runs_az_for_the_cloud_resource(arm, monkeypatch) -> None:
    bin_dir = arm.tmp / "bin"
    fake_az_script(bin_dir, arm.fake.token)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    ctx = azure.connect(auth="cli", client_options={"retry_backoff_factor": 0.01})
    assert len(list(azure.compute_client(ctx).usage.list("eastus"))) > 1
    assert "--resource https://management.azure.com" in (bin_dir / "az-calls.log").read_text()


def test_azure_cli_not_logged_in_is_exit_3(arm, monkeypatch) -> None:
    bin_dir = arm.tmp / "bin"
    fake_az_script(bin_dir, logged_in=False)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    ctx = azure.connect(auth="cli")
    with pytest.raises(AzclusterError) as caught, azure.azure_errors(ctx, "reading quota"):
        list(azure.compute_client(ctx).usage.list("eastus"))
    assert caught.value.exit_code == EXIT_MISSING_TOOL
    assert "az login" in caught.value.hint


def test_arm_get_pages_follows_next_link_through_the_pipeline(arm) -> None:
    arm.fake.add_cluster("demo", {"gpu": ("Standard_ND96isr_H100_v5", [5])}, login=False)
    ctx = arm.context()
    path = (
        f"/subscriptions/{ctx.subscription_id}/resourceGroups/demo-rg/providers/Microsoft.Compute/"
        "virtualMachineScaleSets/demo-gpu-0/networkInterfaces"
    )
    nics = list(azure.arm_get_pages(azure.compute_client(ctx), path, azure.VMSS_NIC_API_VERSION))
    assert [n["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] for n in nics] == [
        f"10.42.0.{4 + i}" for i in range(5)
    ]
    calls = arm.fake.calls("GET", "/networkInterfaces")
    assert len(calls) == 3  # pages of 2, 2, 1
    assert all(c.query["api-version"] == ["2018-10-01"] for c in calls)
    assert all(c.headers["authorization"].startswith("Bearer ") for c in calls)
