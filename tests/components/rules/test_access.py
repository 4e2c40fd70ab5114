"""Admin user and SSH key rules (AZC043-AZC048), and SSH public key parsing: each case edits the baseline
cluster (cases.py) and must fire, or stay quiet."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from azcluster.components import rules

from .cases import (
    DSA_KEY,
    ECDSA_KEY,
    ED25519_BODY,
    ED25519_KEY,
    ED25519_RFC4716,
    PRIVATE_KEY,
    RSA_1024_KEY,
    RSA_2048_KEY,
    RSA_BODY,
    assert_fires,
    assert_quiet,
    build,
    case_id,
    only,
    openssh,
    wire,
)

FIRES = [
    ("AZC043", {"ssh.admin_username": "admin"}, "admin"),
    ("AZC043", {"ssh.admin_username": "support_388945a0"}, "support_388945a0"),
    ("AZC044", {"ssh.admin_username": "Alice"}, "Alice"),
    ("AZC044", {"ssh.admin_username": "-bob"}, "-bob"),
    ("AZC044", {"ssh.admin_username": "bob smith"}, "bob smith"),
    ("AZC044", {"ssh.admin_username": "bob@corp"}, "'@'"),
    ("AZC044", {"ssh.admin_username": "b" * 65}, "65 characters"),
    ("AZC044", {"ssh.admin_username": ""}, "empty"),
    ("AZC045", {"ssh.public_keys": []}, "no SSH public key"),
    ("AZC046", {"ssh.public_keys": ["not a key"]}, "key type"),
    ("AZC046", {"ssh.public_keys": ["ssh-ed25519"]}, "missing"),
    ("AZC046", {"ssh.public_keys": ["ssh-ed25519 !!!notbase64 me"]}, "base64"),
    ("AZC046", {"ssh.public_keys": [f"ssh-ed25519 {RSA_BODY} me"]}, "ssh-rsa"),
    ("AZC046", {"ssh.public_keys": [f"ssh-ed25519 {ED25519_BODY[:40]}"]}, "truncated"),
    (
        "AZC046",
        {"ssh.public_keys": ["ssh-ed25519 " + base64.b64encode(wire(b"ssh-ed25519", b"x" * 31)).decode()]},
        "32 bytes",
    ),
    (
        "AZC046",
        {"ssh.public_keys": ["ssh-ed25519 " + base64.b64encode(wire(b"ssh-ed25519")).decode()]},
        "truncated",
    ),
    (
        "AZC046",
        {
            "ssh.public_keys": [
                "ssh-ed25519 " + base64.b64encode(wire(b"ssh-ed25519", b"k" * 32, b"x")).decode()
            ]
        },
        "after the key",
    ),
    ("AZC046", {"ssh.public_keys": [PRIVATE_KEY]}, "PRIVATE"),
    ("AZC046", {"ssh.public_keys": ["~/.ssh/id_ed25519"]}, "file path"),
    ("AZC046", {"ssh.public_keys": [ED25519_KEY, "   "]}, "SSH key 2"),
    ("AZC047", {"ssh.public_keys": [ECDSA_KEY]}, "ecdsa-sha2-nistp256"),
    ("AZC047", {"ssh.public_keys": [DSA_KEY]}, "ssh-dss"),
    ("AZC048", {"ssh.public_keys": [RSA_1024_KEY]}, "1024-bit"),
]

QUIET = [
    ("AZC043", {"ssh.admin_username": "azureuser"}),
    ("AZC044", {"ssh.admin_username": "deploy_bot-1"}),
    ("AZC046", {"ssh.public_keys": [ED25519_RFC4716]}),
    ("AZC046", {"ssh.public_keys": [ED25519_KEY.rsplit(" ", 1)[0]]}),
    ("AZC046", {"ssh.public_keys": [ED25519_KEY + " with a long comment"]}),
    ("AZC046", {"ssh.public_keys": [ECDSA_KEY, DSA_KEY]}),
    ("AZC047", {"ssh.public_keys": [ED25519_KEY, RSA_2048_KEY]}),
    ("AZC048", {"ssh.public_keys": [RSA_2048_KEY]}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


def test_private_key_hint_warns_about_the_secret() -> None:
    finding = only(build({"ssh.public_keys": [PRIVATE_KEY]}), "AZC046")
    assert "Never put a private key" in finding.hint
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in finding.message


@pytest.mark.parametrize(
    ("key", "key_type", "bits"),
    [
        (ED25519_KEY, "ssh-ed25519", 256),
        (ED25519_RFC4716, "ssh-ed25519", 256),
        (RSA_2048_KEY, "ssh-rsa", 2048),
        (RSA_1024_KEY, "ssh-rsa", 1024),
        (ECDSA_KEY, "ecdsa-sha2-nistp256", 256),
        (openssh(ec.generate_private_key(ec.SECP384R1()).public_key()), "ecdsa-sha2-nistp384", 384),
        (openssh(ec.generate_private_key(ec.SECP521R1()).public_key()), "ecdsa-sha2-nistp521", 521),
        (DSA_KEY, "ssh-dss", 1024),
    ],
    # ids that are the same in every process (pytest-xdist's workers must collect identical test ids;
    # the default id of a generated key changed with each run)
    ids=["ed25519", "ed25519-rfc4716", "rsa-2048", "rsa-1024", "ecdsa-256", "ecdsa-384", "ecdsa-521", "dsa"],
)
def test_parse_ssh_public_key(key: str, key_type: str, bits: int) -> None:
    parsed = rules.parse_ssh_public_key(key)
    assert (parsed.type, parsed.bits) == (key_type, bits)


def test_parse_ssh_public_key_keeps_the_comment() -> None:
    assert rules.parse_ssh_public_key(ED25519_KEY).comment == "alice@laptop"


def test_ecdsa_key_with_the_wrong_curve_is_malformed() -> None:
    body = base64.b64encode(wire(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" + b"q" * 96)).decode()
    with pytest.raises(rules.SshKeyError, match="curve"):
        rules.parse_ssh_public_key(f"ecdsa-sha2-nistp256 {body}")
