"""What the rule tests share: a small valid baseline cluster, `build(edits)` to change a few fields of
it, real SSH keys, and the checks every domain's FIRES/QUIET table runs.

Specs are built the way the CLI builds them: a stack file's `config:` mapping through `parse_cluster`.
The baseline is a small, valid cluster with a real Ed25519 key; each case changes a few fields.
"""

from __future__ import annotations

import base64
import struct
import textwrap
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from azcluster.components import rules
from azcluster.components.spec import CLUSTER_CONFIG_KEY, LOCATION_CONFIG_KEY, ClusterSpec, parse_cluster


def openssh(public_key: Any, comment: str = "") -> str:
    text = public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return f"{text} {comment}" if comment else text


ED25519_KEY = openssh(ed25519.Ed25519PrivateKey.generate().public_key(), "alice@laptop")
RSA_2048_KEY = openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), "bob")
RSA_1024_KEY = openssh(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(), "old")
ECDSA_KEY = openssh(ec.generate_private_key(ec.SECP256R1()).public_key(), "carol")


def wire(*parts: bytes | int) -> bytes:
    out = b""
    for part in parts:
        data = part if isinstance(part, bytes) else part.to_bytes((part.bit_length() + 8) // 8, "big")
        out += struct.pack(">I", len(data)) + data
    return out


DSA_KEY = "ssh-dss " + base64.b64encode(wire(b"ssh-dss", 2**1023 + 7, 2**159 + 3, 5, 11)).decode()
ED25519_BODY = ED25519_KEY.split()[1]
RSA_BODY = RSA_2048_KEY.split()[1]
ED25519_RFC4716 = (
    "---- BEGIN SSH2 PUBLIC KEY ----\n"
    'Comment: "alice@laptop, a comment long enough \\\n'
    'to continue"\n' + "\n".join(textwrap.wrap(ED25519_BODY, 70)) + "\n---- END SSH2 PUBLIC KEY ----"
)
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
)

GUID = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
CRG_ID = (
    f"/subscriptions/{GUID}/resourceGroups/capacity-rg/providers/Microsoft.Compute/"
    "capacityReservationGroups/h100"
)
VNET_ID = f"/subscriptions/{GUID}/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/hub-vnet"
BLOB_ZONE_ID = (
    f"/subscriptions/{GUID}/resourceGroups/dns-rg/providers/Microsoft.Network/privateDnsZones/"
    "privatelink.blob.core.windows.net"
)
GALLERY_IMAGE = (
    f"/subscriptions/{GUID}/resourceGroups/img/providers/Microsoft.Compute/"
    "galleries/g/images/hpc/versions/1.0.0"
)
H100 = "Standard_ND96isr_H100_v5"
NC = "Standard_NC80adis_H100_v5"
MI300X = "Standard_ND96isr_MI300X_v5"
GB200 = "Standard_ND128isr_NDR_GB200_v6"
GB300 = "Standard_ND128isr_GB300_v6"
HPC_2404 = "microsoft-dsvm:ubuntu-hpc:2404:latest"
JAMMY_ARM64 = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-arm64:latest"
ALMA_HPC = "almalinux:almalinux-hpc:8_10-hpc-gen2:latest"
ALMA_PLAN = {"publisher": "almalinux", "product": "almalinux-hpc", "name": "8_10-hpc-gen2"}

DELETE = object()


def baseline() -> dict[str, Any]:
    """A small valid cluster: 4 x ND H100 v5 in zone 1 of eastus, 16 TiB of Lustre, a real Ed25519 key."""
    return {
        LOCATION_CONFIG_KEY: "eastus",
        CLUSTER_CONFIG_KEY: {
            "name": "demo",
            "zone": "1",
            "pools": [{"name": "gpu", "size": H100, "nodes": 4}],
            "storage": {"lustre": {"capacity_tib": 16}},
            "ssh": {"public_keys": [ED25519_KEY]},
        },
    }


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path ('pools.0.size') inside the cluster mapping; DELETE removes the key."""
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    node: Any = tree
    for key in keys[:-1]:
        node = node[key] if isinstance(key, int) else node.setdefault(key, {})
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


def build(edits: dict[str, Any] | None = None) -> ClusterSpec:
    config = baseline()
    for path, value in (edits or {}).items():
        if path == "location":
            config[LOCATION_CONFIG_KEY] = value
        else:
            _set(config[CLUSTER_CONFIG_KEY], path, value)
    return parse_cluster(config)


def ids(spec: ClusterSpec, suppress: tuple[str, ...] = ()) -> set[str]:
    return {finding.id for finding in rules.check(spec, suppress)}


def numbered_tags(count: int) -> dict[str, str]:
    return {f"tag{i}": "v" for i in range(count)}


def only(spec: ClusterSpec, rule_id: str) -> rules.Finding:
    """The one finding of `rule_id` (fails when there are none or several)."""
    [finding] = [f for f in rules.check(spec) if f.id == rule_id]
    return finding


def case_id(value: Any) -> str | None:
    """Test ids show the rule id; pytest numbers the rest."""
    return value if isinstance(value, str) else None


def assert_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    """`rule_id` fires for the edited baseline, with its own severity, and says `expected`."""
    findings = [f for f in rules.check(build(edits)) if f.id == rule_id]
    assert findings, f"{rule_id} did not fire for {edits}"
    rule = rules.RULES[rule_id]
    assert all(f.severity == rule.severity for f in findings)
    assert any(expected in f.message or expected in f.hint for f in findings), [f.message for f in findings]


def assert_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert rule_id not in ids(build(edits))
