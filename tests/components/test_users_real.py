"""azc-users.py for real: two "nodes" (Debian trixie and sid root file systems, each in its own namespaces,
tests/realroots.py) share one "shared home" and apply the same users file, rendered from a spec by
components/team.py. Both end with identical /etc/passwd and /etc/group entries for the team; a removed user
is locked and expired with their keys gone and their home kept; a second run changes nothing; a name or
id already held on a node is reported (exit 1) and never changed.

Versions: shadow (useradd, groupadd, usermod) and python3 of Debian trixie and sid, as the roots hold them.
Needs root, unshare and the cached roots (root_or_skip says why it skips).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from azcluster.components import team
from azcluster.components.spec import ClusterSpec
from tests import realroots
from tests.components.rules.cases import ED25519_KEY, RSA_2048_KEY

SCRIPTS = Path(__file__).resolve().parents[2] / "components" / "bootstrap" / "scripts"
APPLY = ["python3", "/opt/azc/azc-users.py", "apply"]
GROUPS = [{"name": "vision", "gid": 3001}, {"name": "nlp", "gid": 3002}]
ALICE = {"name": "alice", "uid": 2001, "groups": ["vision", "nlp"], "ssh_keys": [ED25519_KEY], "admin": True}
BOB = {"name": "bob", "uid": 2002, "ssh_keys": [RSA_2048_KEY]}
CAROL = {"name": "carol", "uid": 2003, "groups": ["nlp"]}


def users_file(users: list[dict]) -> str:
    spec = ClusterSpec.model_validate(
        {"name": "llm", "location": "eastus", "team": {"users": users, "groups": GROUPS}}
    )
    return team.render_users_file(spec)


@pytest.fixture
def nodes(tmp_path):
    roots = [realroots.root_or_skip("trixie"), realroots.root_or_skip("sid")]
    home = tmp_path / "home"
    (home / ".azcluster").mkdir(parents=True)
    os.chmod(home, 0o755)
    os.chmod(home / ".azcluster", 0o755)
    machines = []
    try:
        for index, root in enumerate(roots):
            binds = {"/home": home, "/opt/azc": SCRIPTS}
            machines.append(realroots.Machine(root, f"node{index}", tmp_path / f"m{index}", binds=binds))
        yield home, machines
    finally:
        for machine in machines:
            machine.close()


def hand_over(home: Path, text: str) -> None:
    path = home / ".azcluster" / "users.json"
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o644)


def apply(machine: realroots.Machine, expect: int = 0) -> str:
    result = machine.run(APPLY)
    assert result.returncode == expect, result.stdout + result.stderr
    return result.stdout


def entries(machine: realroots.Machine, database: str, names: list[str]) -> list[str]:
    return machine.run(["getent", database, *names]).stdout.splitlines()


def shadow(machine: realroots.Machine, name: str) -> list[str]:
    return entries(machine, "shadow", [name])[0].split(":")


def snapshot(machine: realroots.Machine) -> dict[str, str]:
    files = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/sudoers.d/azcluster-team"]
    found = {path: machine.path(path).read_text() for path in files if machine.path(path).exists()}
    keys = machine.path("/etc/azcluster/authorized_keys")
    found.update({p.name: p.read_text() for p in sorted(keys.iterdir())} if keys.is_dir() else {})
    return found


def test_two_nodes_make_the_same_users_and_a_second_run_changes_nothing(nodes):
    home, machines = nodes
    hand_over(home, users_file([ALICE, BOB, CAROL]))
    for machine in machines:
        apply(machine)
    names = ["alice", "bob", "carol"]
    passwd = [entries(m, "passwd", names) for m in machines]
    group = [entries(m, "group", ["vision", "nlp", "bob", "carol"]) for m in machines]
    assert (
        passwd[0]
        == passwd[1]
        == [
            "alice:x:2001:3001:azcluster team:/home/alice:/bin/bash",
            "bob:x:2002:2002:azcluster team:/home/bob:/bin/bash",
            "carol:x:2003:3002:azcluster team:/home/carol:/bin/bash",
        ]
    )
    assert group[0] == group[1] == ["vision:x:3001:", "nlp:x:3002:alice", "bob:x:2002:"]
    # carol's primary group is nlp: no group of her own
    assert entries(machines[0], "group", ["carol"]) == []
    # homes made once, on the shared home, owned by each user, private
    for name, uid, gid in (("alice", 2001, 3001), ("bob", 2002, 2002), ("carol", 2003, 3002)):
        info = (home / name).stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (uid, gid, 0o700)
    node = machines[0]
    assert node.path("/etc/azcluster/authorized_keys/alice").read_text() == ED25519_KEY + "\n"
    assert node.path("/etc/sudoers.d/azcluster-team").read_text().endswith("alice ALL=(ALL) NOPASSWD:ALL\n")
    # a second run: nothing changes, on either node
    for machine in machines:
        before = snapshot(machine)
        out = apply(machine)
        assert out.strip().endswith("3 users, 0 changes"), out
        assert snapshot(machine) == before


def test_a_removed_user_is_locked_with_keys_gone_and_files_kept_and_listing_again_unlocks(nodes):
    home, machines = nodes
    hand_over(home, users_file([ALICE, BOB]))
    node = machines[0]
    apply(node)
    (home / "bob" / "results.txt").write_text("keep me")
    hand_over(home, users_file([ALICE]))
    out = apply(node)
    assert "locked bob" in out
    fields = shadow(node, "bob")
    assert fields[1].startswith("!") and fields[7] == "1"  # locked, expired on 1970-01-02
    assert not node.path("/etc/azcluster/authorized_keys/bob").exists()
    assert entries(node, "passwd", ["bob"]) == ["bob:x:2002:2002:azcluster team:/home/bob:/bin/bash"]
    assert (home / "bob" / "results.txt").read_text() == "keep me"
    before = snapshot(node)
    assert apply(node).strip().endswith("1 users, 0 changes")
    assert snapshot(node) == before
    # a node that never had bob does not make him
    apply(machines[1])
    assert entries(machines[1], "passwd", ["bob"]) == []
    # listed again: unlocked, keys back
    hand_over(home, users_file([ALICE, BOB]))
    assert "unlocked bob" in apply(node)
    assert shadow(node, "bob")[7] == ""
    assert node.path("/etc/azcluster/authorized_keys/bob").read_text() == RSA_2048_KEY + "\n"


def test_an_id_or_name_already_held_on_a_node_is_reported_and_never_changed(nodes):
    home, machines = nodes
    node = machines[0]
    assert node.run(["useradd", "-u", "2003", "-N", "-M", "imageuser"]).returncode == 0
    assert node.run(["groupadd", "-g", "4000", "vision"]).returncode == 0
    hand_over(home, users_file([ALICE, BOB, CAROL]))
    out = apply(node, expect=1)
    assert "group vision exists here with GID 4000, the file says 3001" in out
    assert "UID 2003 of user carol is held here by user imageuser" in out
    assert "user alice left out: group vision failed" in out
    # what could be applied was: bob is there, alice and carol are not, and nothing was renumbered
    assert entries(node, "passwd", ["bob"]) == ["bob:x:2002:2002:azcluster team:/home/bob:/bin/bash"]
    assert entries(node, "passwd", ["alice", "carol"]) == []
    assert entries(node, "group", ["vision"]) == ["vision:x:4000:"]
    assert entries(node, "passwd", ["imageuser"])[0].startswith("imageuser:x:2003:")
    assert not (home / "carol").exists()


def test_a_users_file_anyone_but_root_could_write_is_refused(nodes):
    home, machines = nodes
    hand_over(home, users_file([ALICE]))
    os.chmod(home / ".azcluster" / "users.json", 0o666)
    assert "writable by root only" in apply(machines[0], expect=1)
    assert entries(machines[0], "passwd", ["alice"]) == []
    os.chmod(home / ".azcluster" / "users.json", 0o644)
    os.chown(home / ".azcluster", 2001, 2001)
    assert "owned by UID 2001" in apply(machines[0], expect=1)


def test_no_users_file_is_not_an_empty_team(nodes):
    home, machines = nodes
    hand_over(home, users_file([ALICE]))
    apply(machines[0])
    (home / ".azcluster" / "users.json").unlink()
    assert "no users file" in apply(machines[0])
    assert shadow(machines[0], "alice")[7] == ""  # not locked
    json.loads(machines[0].path("/var/lib/azcluster/users-applied.json").read_text())


def test_sshd_is_told_where_the_team_keys_are_where_it_has_a_drop_in_folder(nodes):
    home, machines = nodes
    hand_over(home, users_file([ALICE]))
    with_sshd, without = machines
    assert with_sshd.run(["mkdir", "-p", "/etc/ssh/sshd_config.d"]).returncode == 0
    apply(with_sshd)
    apply(without)
    dropin = with_sshd.path("/etc/ssh/sshd_config.d/50-azcluster-team.conf").read_text()
    assert "AuthorizedKeysFile .ssh/authorized_keys /etc/azcluster/authorized_keys/%u\n" in dropin
    assert not without.path("/etc/ssh/sshd_config.d").exists()
