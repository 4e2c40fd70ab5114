"""Fixtures for code that talks to Azure: a loopback HTTPS Resource Manager and the environment for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.arm import FakeArm, FakeArmServer, StaticTokenCredential, fake_az_script

# Fast retries and polling for tests: the same azure-core policies, shorter waits. Retry-After still rules.
FAST_CLIENT = {"retry_backoff_factor": 0.01, "retry_backoff_max": 1, "polling_interval": 0.01}

_AZURE_ENV = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "AZCLUSTER_ARM_SCOPE",
    "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT",
)


@dataclass
class ArmEnv:
    fake: FakeArm
    server: FakeArmServer
    credential: StaticTokenCredential
    tmp: Path

    @property
    def url(self) -> str:
        return self.server.url

    def context(self, credential: Any = None, **client_options: Any):
        """An AzureContext aimed at the fake, with the static credential and fast retries."""
        from azcluster import azure

        options = {**FAST_CLIENT, **client_options}
        return azure.connect(credential=credential or self.credential, client_options=options)


@pytest.fixture
def arm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmEnv]:
    fake = FakeArm()
    with FakeArmServer(fake, tmp_path) as server:
        monkeypatch.setenv("AZCLUSTER_ARM_ENDPOINT", server.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
        monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", fake.subscription_id)
        monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure-config"))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        for name in _AZURE_ENV:
            monkeypatch.delenv(name, raising=False)
        yield ArmEnv(fake, server, StaticTokenCredential(fake.token), tmp_path)


@pytest.fixture
def az_cli(arm: ArmEnv, monkeypatch: pytest.MonkeyPatch) -> ArmEnv:
    """The fake ARM with a logged-in fake `az` first on PATH (the CLI's credential), whose long-running
    operations end on their first poll: what the CLI tests run against."""
    bin_dir = arm.tmp / "bin"
    fake_az_script(bin_dir, arm.fake.token)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    arm.fake.lro_polls = 0
    return arm
