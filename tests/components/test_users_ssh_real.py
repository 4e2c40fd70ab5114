"""A real sshd and the team's users: after azc-users.py applied the users file, OpenSSH's server (Debian
trixie's, with PAM as Debian configures it) accepts a listed user's key, and refuses them once they are
removed, even with the key left in their own ~/.ssh/authorized_keys on the shared home: the removal
expires the account, and PAM's account check refuses an expired account whatever the key.

The node is a trixie root with openssh-server in its own network namespace (tests/realroots.py), so sshd
listens on port 22 there without meeting any other suite's port. Needs root, unshare and the root
(root_or_skip says why it skips; `python -m tests.realroots trixie` builds it ahead).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from azcluster.components import team
from azcluster.components.spec import ClusterSpec
from tests import realroots
from tests.groups import REAL_DAEMONS

SCRIPTS = Path(__file__).resolve().parents[2] / "components" / "bootstrap" / "scripts"
WAIT_S = 30
"""Upper bound for sshd to listen (a loaded CI machine is slow); never a timing assert."""

pytestmark = pytest.mark.xdist_group(REAL_DAEMONS)  # a daemon suite: with the others, on its own worker


def keypair(comment: str) -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} {comment}"


def users_file(users: list[dict]) -> str:
    spec = ClusterSpec.model_validate({"name": "llm", "location": "eastus", "team": {"users": users}})
    return team.render_users_file(spec)


@pytest.fixture
def node(tmp_path):
    root = realroots.root_or_skip("trixie", realroots.SSH_PACKAGES)
    home = tmp_path / "home"
    (home / ".azcluster").mkdir(parents=True)
    os.chmod(home, 0o755)
    os.chmod(home / ".azcluster", 0o755)
    machine = realroots.Machine(root, "login", tmp_path / "m", binds={"/home": home, "/opt/azc": SCRIPTS})
    try:
        assert machine.run(["ssh-keygen", "-A"]).returncode == 0
        assert machine.run(["mkdir", "-p", "/run/sshd"]).returncode == 0
        yield home, machine, lambda: machine.popen(["/usr/sbin/sshd", "-D", "-e"], stderr=subprocess.PIPE)
    finally:
        machine.close()  # ends every process in it, sshd included


def hand_over(home: Path, text: str) -> None:
    path = home / ".azcluster" / "users.json"
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o644)


def ssh(machine: realroots.Machine, user: str, key_path: str) -> subprocess.CompletedProcess[str]:
    argv = ["ssh", "-i", key_path, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"]
    argv += ["-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", f"{user}@127.0.0.1", "id -u"]
    return machine.run(argv, timeout=30)


def wait_for_sshd(machine: realroots.Machine) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if machine.run(["sh", "-c", "ss -ltn | grep -q ':22 '"]).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError("sshd did not listen on port 22")


def test_sshd_accepts_a_listed_user_and_refuses_them_once_removed(node):
    home, machine, start_sshd = node
    private, public = keypair("alice@laptop")
    machine.path("/root/alice").write_text(private)
    machine.path("/root/alice").chmod(0o600)
    alice = {"name": "alice", "uid": 2001, "ssh_keys": [public]}

    hand_over(home, users_file([alice]))
    applied = machine.run(["python3", "/opt/azc/azc-users.py", "apply"])
    assert applied.returncode == 0, applied.stdout + applied.stderr
    sshd = start_sshd()
    try:
        wait_for_sshd(machine)
        login = ssh(machine, "alice", "/root/alice")
        assert login.returncode == 0, login.stderr
        assert login.stdout.strip() == "2001"

        # alice copies her key into her own authorized_keys on the shared home, then is removed
        (home / "alice" / ".ssh").mkdir(mode=0o700)
        (home / "alice" / ".ssh" / "authorized_keys").write_text(public + "\n")
        for path in (home / "alice" / ".ssh", home / "alice" / ".ssh" / "authorized_keys"):
            os.chown(path, 2001, 2001)
        assert ssh(machine, "alice", "/root/alice").returncode == 0  # her own copy works while listed
        hand_over(home, users_file([]))
        removed = machine.run(["python3", "/opt/azc/azc-users.py", "apply"])
        assert removed.returncode == 0 and "locked alice" in removed.stdout, removed.stdout
        refused = ssh(machine, "alice", "/root/alice")
        assert refused.returncode != 0 and refused.stdout.strip() == ""
        assert "Your account has expired" in refused.stderr, refused.stderr  # PAM, not a missing key
    finally:
        sshd.kill()
        sshd.wait(timeout=10)
