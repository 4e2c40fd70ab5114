"""Team rules (AZC110-AZC119): users and groups made on every node.

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import (
    DSA_KEY,
    ECDSA_KEY,
    ED25519_KEY,
    PRIVATE_KEY,
    RSA_1024_KEY,
    assert_fires,
    assert_quiet,
    case_id,
)

ALICE = {"name": "alice", "uid": 2001, "ssh_keys": [ED25519_KEY], "groups": ["vision"], "account": "vision"}
BOB = {"name": "bob", "uid": 2002, "groups": ["vision", "nlp"]}
VISION = {"name": "vision", "gid": 3001}
NLP = {"name": "nlp", "gid": 3002}


def team(*users: dict[str, Any], groups: tuple[dict[str, Any], ...] = (VISION, NLP), **extra: Any) -> dict:
    return {"team": {"users": list(users), "groups": list(groups), "accounts": ["vision"], **extra}}


def user(**changes: Any) -> dict[str, Any]:
    return {**ALICE, **changes}


FIRES = [
    ("AZC110", team(ALICE, user(uid=2005)), "listed twice"),
    ("AZC110", team(ALICE, BOB, groups=(VISION, NLP, {"name": "nlp", "gid": 3009})), "'nlp' is listed twice"),
    ("AZC110", team(ALICE, {"name": "nlp", "uid": 2010}), "group of their own name"),
    ("AZC111", team(ALICE, user(name="carol")), "which user 'alice' has too"),
    ("AZC111", team(ALICE, groups=(VISION, {"name": "nlp", "gid": 3001})), "which group 'vision' has too"),
    ("AZC111", team(ALICE, {"name": "dave", "uid": 3002}), "GID 3002 (their UID), which group 'nlp' has"),
    ("AZC112", team(user(uid=999)), "below 1000"),
    ("AZC112", team(user(uid=65534)), "nobody"),
    ("AZC112", team(user(uid=70000)), "above 60000"),
    ("AZC112", team(ALICE, groups=(VISION, {"name": "nlp", "gid": 100})), "GID 100 is below 1000"),
    ("AZC113", team(user(name="Alice")), "not a portable name"),
    ("AZC113", team(user(name="1alice")), "not a portable name"),
    ("AZC113", team(user(name="a" * 33)), "33 characters"),
    ("AZC113", team(ALICE, groups=(VISION, NLP, {"name": "ml team", "gid": 3003})), "group name 'ml team'"),
    ("AZC114", team(user(name="azureuser")), "admin user"),
    ("AZC114", team(user(name="slurm")), "system or service account"),
    ("AZC114", team(ALICE, groups=(VISION, NLP, {"name": "sudo", "gid": 3003})), "system group"),
    ("AZC115", team(user(uid=1000)), "may be taken"),
    ("AZC115", team(ALICE, groups=(VISION, {"name": "nlp", "gid": 1500})), "may be taken"),
    ("AZC116", team(user(ssh_keys=["ssh-ed25519 AAAAnotbase64!"])), "not a valid public key"),
    ("AZC116", team(user(ssh_keys=[ED25519_KEY, PRIVATE_KEY])), "Never list a private key"),
    ("AZC117", team(user(ssh_keys=[RSA_1024_KEY])), "1024-bit RSA"),
    ("AZC117", team(user(ssh_keys=[DSA_KEY])), "DSA"),
    ("AZC118", team(user(groups=["vision", "audio-ml"])), "'audio-ml'"),
    ("AZC119", team(user(account="robotics")), "'robotics'"),
]

QUIET = [
    ("AZC110", team(ALICE, BOB)),
    ("AZC110", team(ALICE, {"name": "erin", "uid": 2020})),
    ("AZC111", team(ALICE, BOB, {"name": "erin", "uid": 2020})),
    ("AZC112", team(user(uid=60000), groups=(VISION, {"name": "nlp", "gid": 2000}))),
    ("AZC113", team(user(name="_svc-ml_1"), user(name="a" * 32, uid=2040))),
    ("AZC114", team(ALICE, BOB)),
    ("AZC115", team(user(uid=2000))),
    ("AZC116", team(user(ssh_keys=[ED25519_KEY, ECDSA_KEY]))),
    ("AZC117", team(user(ssh_keys=[ECDSA_KEY, ED25519_KEY]))),
    ("AZC118", team(ALICE, BOB)),
    ("AZC119", team(ALICE, user(name="bob", uid=2002, account=None))),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)


def test_a_valid_team_has_no_team_findings() -> None:
    from azcluster.components import rules

    from .cases import build

    findings = rules.check(build(team(ALICE, BOB)))
    assert [f for f in findings if f.id >= "AZC110" and f.id <= "AZC119"] == []
