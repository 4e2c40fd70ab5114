"""Every check a component makes on spec values is a rule first, so `validate` and `plan` never disagree.

Each case is a spec that a component refuses while the stack program runs (shown by running it under the
Pulumi mocks with the rules switched off: the component's own ValueError comes out), and that the rules
already report as an error finding, which is what `validate` shows and what makes `Cluster` refuse before
any component is built. The component refusals were found by reading every `raise` in components/;
refusals no spec can reach (arguments only a Pulumi program passes, such as `bastion_sku` or custom data
of the wrong count) are not here.
"""

from __future__ import annotations

import gc
import logging
import re
from typing import Any

import pytest

from azcluster import mockrun as harness
from azcluster.components import bootstrap, cluster, rules
from azcluster.components.cluster_key import new_key
from azcluster.components.program import build as build_program

from .cases import CRG_ID, GALLERY_IMAGE, NC, VNET_ID, build
from .test_boot import ELASTIC_1000_ISLANDS

# (edits to the baseline, what the component says when it refuses, the rule that reports it first)
REFUSALS = [
    ({"pools.0.size": "Standard_ND96isr_H100_v6"}, "unknown GPU size", "AZC007"),
    ({"ssh.public_keys": []}, "no SSH public keys", "AZC045"),
    ({"pools": [], "ssh.public_keys": []}, "login node: no SSH public keys", "AZC045"),
    (
        {"pools.0.capacity_reservation_group_id": CRG_ID},
        "cannot associate with a capacity reservation",
        "AZC015",
    ),
    (
        {"pools.0.size": NC, "pools.0.spot": True, "pools.0.capacity_reservation_group_id": CRG_ID},
        "Spot VMs cannot use a capacity reservation group",
        "AZC013",
    ),
    ({"name": "c" * 40, "pools.0.name": "p" * 20}, "scale set name .* has 65 characters", "AZC041"),
    ({"name": "c" * 60, "pools": []}, "login VM name .* is longer than", "AZC041"),
    ({"pools.0.name": "p" * 53}, "too long for a host name prefix", "AZC041"),
    ({"pools.0.image": "ubuntu-hpc-2204"}, "neither a Marketplace URN", "AZC017"),
    ({"network.address_space": "10.42.0.0/33"}, "is not an IPv4 CIDR", "AZC020"),
    ({"network.address_space": "10.42.0.0/24"}, "subnet", "AZC026"),
    ({"network.existing_vnet_id": "hub-vnet"}, "is not a virtual network id", "AZC030"),
    (
        {"storage.blob.enabled": True, "storage.blob.containers": ["Data"]},
        "blob container name 'Data'",
        "AZC038",
    ),
    (
        {"storage.blob.enabled": True, "storage.blob.containers": ["10.0.0.0/32"]},
        "blob container name '10.0.0.0/32'",
        "AZC038",
    ),
    ({"storage.lustre.import_container": "datasets"}, "needs storage.blob.enabled", "AZC036"),
    (
        {"storage.blob.enabled": True, "storage.lustre.import_container": "lustre-logs"},
        "must differ from the HSM logging container",
        "AZC037",
    ),
    (
        {"storage.blob.enabled": True, "storage.lustre.import_container": "Data Sets"},
        "blob container name 'Data Sets'",
        "AZC037",
    ),
    ({"name": "demo ai"}, "AZC_CLUSTER=.demo ai.: only letters, digits .* in node settings", "AZC040"),
]


def _program_error(spec: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """What the stack program raises for `spec` when Cluster does not check the rules first."""
    monkeypatch.setattr(cluster, "check_spec", lambda spec: [])
    with pytest.raises(ValueError) as raised:
        harness.run(lambda: build_program(spec))
    # A refusal leaves the mocks' event loop and the other resources' futures behind, failed and unread;
    # collect them here, quietly, rather than have asyncio log each at exit (the marks below).
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.disabled = True
    try:
        gc.collect()
    finally:
        asyncio_log.disabled = False
    return str(raised.value)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("edits", "refusal", "rule_id"), REFUSALS, ids=lambda v: v if isinstance(v, str) else None
)
def test_what_a_component_refuses_a_rule_reports_first(
    edits: dict[str, Any], refusal: str, rule_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = build(edits)
    assert re.search(refusal, _program_error(spec, monkeypatch)), refusal
    errors = [f.id for f in rules.check(spec) if f.severity == "error"]
    assert rule_id in errors, errors


@pytest.mark.parametrize(
    "edits",
    [
        {"storage.blob.containers": ["10.0.0.0/32"]},  # no blob account, so no container is created
        {"storage.lustre.enabled": False, "storage.lustre.import_container": "lustre-logs"},
        {
            "pools.0.image": GALLERY_IMAGE,
            "network.existing_vnet_id": VNET_ID,
            "network.dns_zones.file": "create",
        },
    ],
)
def test_what_validates_clean_the_stack_program_builds(edits: dict[str, Any]) -> None:
    """The other half: no error finding, and the program builds it (a blob container named 10.0.0.0/32
    with the blob account off validated clean and was then refused by the storage component)."""
    spec = build(edits)
    assert [f for f in rules.check(spec) if f.severity == "error"] == []
    capture = harness.run(lambda: build_program(spec))
    assert capture.of_type("azure-native:compute:VirtualMachineScaleSet")


def test_a_login_cloud_config_past_the_custom_data_limit_is_a_rule_first() -> None:
    """Run through the whole program this case takes 20 s (1,000 scale sets), so the login node's boot is
    rendered here as LoginNode renders it: the Slurm controller of an elastic cluster with a shared home."""
    spec = build(ELASTIC_1000_ISLANDS)
    guid = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
    home = bootstrap.StorageValues(
        home_source="demohome1234abcd.file.core.windows.net:/demohome1234abcd/home"
    )
    boot = bootstrap.LoginBoot.for_cluster(
        spec,
        home,
        power_subscription=guid,
        power_client_id=guid,
        munge_key=new_key(),
        dns_zone="demo.azcluster.internal",
    )
    with pytest.raises(ValueError, match="login node: custom data is .* bytes after gzip and base64"):
        boot.custom_data()
    assert "AZC062" in [f.id for f in rules.check(spec) if f.severity == "error"]
