"""The team's users file (components/team.py): what every node applies, rendered the same way whatever the
spec's order, with keys as single authorized_keys lines; and the boot piece that applies it, which never
carries the list."""

from __future__ import annotations

import json

import pytest

from azcluster.components import bootstrap, team
from azcluster.components.spec import ClusterSpec
from tests.components.rules.cases import ED25519_KEY, ED25519_RFC4716, RSA_2048_KEY

H100 = "Standard_ND96isr_H100_v5"


def spec(users: list[dict], groups: list[dict] | None = None, **home) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "llm",
            "location": "eastus",
            "pools": [{"name": "h100", "size": H100, "nodes": 2}],
            "storage": {"home": {"enabled": True, **home}},
            "team": {"users": users, "groups": groups or [], "accounts": ["vision"]},
        }
    )


ALICE = {"name": "alice", "uid": 2001, "ssh_keys": [ED25519_KEY], "groups": ["vision", "nlp"], "admin": True,
         "account": "vision"}  # fmt: skip
BOB = {"name": "bob", "uid": 2002}
GROUPS = [{"name": "vision", "gid": 3001}, {"name": "nlp", "gid": 3002}]


def test_users_get_their_first_group_as_primary_or_a_group_of_their_own():
    document = team.users_document(spec([ALICE, BOB], GROUPS))
    alice, bob = document["users"]
    assert (alice["group"], alice["gid"], alice["groups"]) == ("vision", 3001, ["nlp"])
    assert (bob["group"], bob["gid"], bob["groups"]) == ("bob", 2002, [])
    assert alice["admin"] is True and bob["admin"] is False
    assert alice["account"] == "vision" and bob["account"] is None
    assert document["groups"] == [{"name": "nlp", "gid": 3002}, {"name": "vision", "gid": 3001}]
    assert document["home"] == "/home" and document["format"] == 1
    # the Slurm accounts travel in the same file: a plain name is an account with the defaults
    assert document["accounts"] == [
        {"name": "vision", "fairshare": 1, "max_gpus_per_user": None, "max_gpus": None}
    ]
    assert document["admin_user"] == "azureuser"


def test_accounts_carry_their_fair_share_and_gpu_limits():
    the_spec = spec([ALICE, BOB], GROUPS)
    limited = the_spec.model_copy(
        update={
            "team": the_spec.team.model_copy(
                update={
                    "accounts": [
                        *the_spec.team.accounts,
                        type(the_spec.team.accounts[0])(
                            name="nlp", fairshare=3, max_gpus_per_user=8, max_gpus=16
                        ),
                    ]
                }
            )
        }
    )
    accounts = team.users_document(limited)["accounts"]
    assert [a["name"] for a in accounts] == ["nlp", "vision"]
    assert accounts[0] == {"name": "nlp", "fairshare": 3, "max_gpus_per_user": 8, "max_gpus": 16}


def test_the_same_team_in_another_order_gives_the_same_bytes_and_another_team_another_hash():
    one = team.render_users_file(spec([ALICE, BOB], GROUPS))
    two = team.render_users_file(spec([BOB, ALICE], list(reversed(GROUPS))))
    assert one == two
    three = json.loads(team.render_users_file(spec([ALICE], GROUPS)))
    assert three["hash"] != json.loads(one)["hash"]
    body = {k: v for k, v in three.items() if k != "hash"}
    import hashlib

    canonical = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    assert three["hash"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_keys_become_single_authorized_keys_lines():
    injected = RSA_2048_KEY + '\ncommand="/bin/sh" ssh-ed25519 AAAA'  # a line break in the comment
    users = [{**BOB, "ssh_keys": [ED25519_RFC4716, injected]}]
    [bob] = team.users_document(spec(users))["users"]
    rfc, rsa = bob["ssh_keys"]
    assert rfc == "ssh-ed25519 " + ED25519_KEY.split()[1]
    assert "\n" not in rsa and rsa.startswith("ssh-rsa " + RSA_2048_KEY.split()[1] + " bob ")


def test_a_malformed_key_is_refused_when_rendering():
    with pytest.raises(ValueError, match="user 'bob'"):
        team.users_document(spec([{**BOB, "ssh_keys": ["ssh-ed25519 !!"]}]))


def test_the_users_file_lives_under_the_shared_home_and_the_piece_never_carries_the_list():
    custom = spec([ALICE], GROUPS, mount="/shared/home")
    assert team.users_file_path(custom) == "/shared/home/.azcluster/users.json"
    piece = bootstrap.users_piece(custom)
    assert piece is not None and piece.env == {"AZC_USERS_FILE": "/shared/home/.azcluster/users.json"}
    assert piece.start == ("azc-users.timer",)
    empty = bootstrap.users_piece(spec([]))
    assert empty is not None and empty.scripts == piece.scripts and empty.units == piece.units
    assert bootstrap.users_piece(spec([ALICE], GROUPS, enabled=False)) is None


def test_no_role_document_changes_with_the_team():
    storage = bootstrap.StorageValues(home_source="acct.file.core.windows.net:/acct/home")
    documents = set()
    for users in ([], [ALICE], [ALICE, BOB]):
        cluster = spec(users, GROUPS)
        login = bootstrap.LoginBoot(cluster, storage).cloud_config()
        node = bootstrap.PoolBoot.gather(cluster, "h100", storage).cloud_config(0)
        assert "alice" not in login + node
        documents.add((login, node))
    assert len(documents) == 1
