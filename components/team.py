"""The team's users file: what every node applies to make the team's users and groups (spec `team:`).

People change more often than machines, and a change of a VM's custom data re-images it (a scale set's
model update), so the list of people never goes into custom data. It is rendered here as one JSON file,
handed to the cluster on the shared home at `<home mount>/.azcluster/users.json` (root-owned; `users sync`
puts it there), and every node's azc-users timer (bootstrap/users_boot.py, scripts/azc-users.py) applies it
by itself: the same UID and GID on the login node and every GPU node, so a job runs as its user on every
node and files on the shared home and Lustre belong to the same person everywhere.

The file holds names, ids, groups, keys (one authorized_keys line each), whether a user is an administrator
and their Slurm account; the Slurm accounts with their fair share and GPU limits (the controller's
azc-slurm-accounts.py makes Slurm's associations and QOS from them, so a change of limits re-images
nothing either); and `hash`: the SHA-256 of everything else, so a node can log which version it
applied and `status` can compare nodes. Users are sorted by name and groups by name: the same team gives
the same bytes, whatever the order in the spec.

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .bootstrap.users_boot import USERS_DIR_NAME, USERS_FILE_NAME, users_file_path
from .rules.sshkey import SshKeyError, openssh_line
from .spec import ClusterSpec

__all__ = ["USERS_DIR_NAME", "USERS_FILE_NAME", "render_users_file", "users_document", "users_file_path"]

USERS_FILE_FORMAT = 1


def users_document(spec: ClusterSpec) -> dict[str, Any]:
    """The users file's content, hash included. Raises ValueError for a key the rules refuse (AZC116):
    render only specs without error findings."""
    groups = {group.name: group.gid for group in spec.team.groups}
    users = []
    for user in sorted(spec.team.users, key=lambda u: u.name):
        primary, *others = user.groups or [user.name]
        try:
            keys = [openssh_line(text) for text in user.ssh_keys]
        except SshKeyError as err:
            raise ValueError(f"user {user.name!r}: an SSH key is not a valid public key: {err}") from None
        users.append(
            {
                "name": user.name,
                "uid": user.uid,
                "group": primary,
                "gid": groups.get(primary, user.uid),
                "groups": sorted(others),
                "ssh_keys": keys,
                "admin": user.admin,
                "account": user.account,
            }
        )
    accounts = [
        {
            "name": account.name,
            "fairshare": account.fairshare,
            "max_gpus_per_user": account.max_gpus_per_user,
            "max_gpus": account.max_gpus,
        }
        for account in sorted(spec.team.accounts, key=lambda a: a.name)
    ]
    body = {
        "format": USERS_FILE_FORMAT,
        "accounts": accounts,
        "admin_user": spec.ssh.admin_username,
        "cluster": spec.name,
        "home": spec.storage.home.mount.rstrip("/") or "/",
        "groups": [{"name": name, "gid": gid} for name, gid in sorted(groups.items())],
        "users": users,
    }
    digest = hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest()
    return {**body, "hash": digest}


def render_users_file(spec: ClusterSpec) -> str:
    """The users file's text: canonical JSON, sorted keys, indented so a person can read it on a node."""
    return _canonical(users_document(spec), indent=1) + "\n"


def _canonical(value: Any, indent: int | None = None) -> str:
    separators = (",", ": ") if indent is not None else (",", ":")
    return json.dumps(value, sort_keys=True, ensure_ascii=True, indent=indent, separators=separators)
