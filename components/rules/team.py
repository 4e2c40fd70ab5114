"""The team (AZC110-AZC119): users and groups made on every node beside the admin user (`team:`).

Every node makes these users and groups by itself from one file (components/team.py,
bootstrap/scripts/azc-users.py), with the ids given here. A mistake that `useradd` or `sshd` would refuse
on a node, or an id two people would share there, is caught here instead, before any node sees it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from ..spec import ClusterSpec
from .common import at, preview
from .registry import Problem, rule
from .sshkey import SshKeyError, SshPublicKey, parse_ssh_public_key

ID_MIN = 1000
ID_MAX = 60000
NOBODY_ID = 65534
LOCAL_ID_MAX = 1999
"""Debian's and Ubuntu's /etc/login.defs: UID_MIN 1000, UID_MAX 60000 (ids below are the system's, 60001-
64999 are reserved, 65534 is nobody). Azure makes the admin user, and images make their own users, with
the first free id from 1000 (useradd), so ids 1000-1999 may already be taken on a node."""

NAME_MAX = 32
POSIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]*$")
"""A name every node's tools accept: lower-case letter or '_' first, then lower-case letters, digits, '_'
or '-' (Debian's useradd NAME_REGEX, with '_' first as POSIX's portable user names allow), at most 32
characters (utmp's ut_user, where `who` and `last` record logins)."""

RESERVED_NAMES = frozenset(
    {
        # Debian's base-passwd users and groups, and the ones Ubuntu and the HPC images add.
        "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
        "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "adm", "tty", "disk", "kmem",
        "dialout", "fax", "voice", "cdrom", "floppy", "tape", "sudo", "audio", "dip", "operator", "src",
        "shadow", "utmp", "video", "sasl", "plugdev", "staff", "users", "wheel", "admin", "lxd", "netdev",
        "docker", "render", "input", "kvm", "messagebus", "syslog", "sshd", "systemd-network",
        "systemd-resolve", "systemd-timesync", "polkitd", "_apt", "uuidd", "tcpdump", "landscape",
        # The cluster's own daemons (components/bootstrap: Slurm, munge, the accounting database).
        "slurm", "munge", "mysql",
    }
)  # fmt: skip
"""Names the node or azcluster's own services already use: a team member called `slurm` would own the
scheduler's files; `sudo` as a group would make everyone in it root."""


def _user_at(index: int, field: str = "") -> str:
    return at(f"team.users[{index}].{field}" if field else f"team.users[{index}]")


def _group_at(index: int, field: str = "") -> str:
    return at(f"team.groups[{index}].{field}" if field else f"team.groups[{index}]")


def personal_groups(spec: ClusterSpec) -> list[tuple[int, str, int]]:
    """(user index, name, gid) of the group each user without `groups` gets: their own name, GID = UID
    (what useradd's USERGROUPS_ENAB makes, and what the node-side applier makes)."""
    return [(i, user.name, user.uid) for i, user in enumerate(spec.team.users) if not user.groups]


@rule("AZC110", "error", "team-name-duplicate", "Two users or two groups of the team have the same name")
def team_name_duplicate(spec: ClusterSpec) -> Iterator[Problem]:
    """A name is one account on every node: a second entry would either be refused by useradd/groupadd or
    silently merged with the first. A user without `groups` gets a group of their own name, so that name
    must not be a declared group too."""
    users = Counter(user.name for user in spec.team.users)
    groups = Counter(group.name for group in spec.team.groups)
    for index, user in enumerate(spec.team.users):
        if users[user.name] > 1 and [u.name for u in spec.team.users].index(user.name) < index:
            yield _user_at(index, "name"), f"user {user.name!r} is listed twice.", "List each user once."
    for index, group in enumerate(spec.team.groups):
        if groups[group.name] > 1 and [g.name for g in spec.team.groups].index(group.name) < index:
            yield _group_at(index, "name"), f"group {group.name!r} is listed twice.", "List each group once."
    for index, name, _gid in personal_groups(spec):
        if name in groups:
            yield (
                _user_at(index, "groups"),
                f"user {name!r} has no `groups`, so gets a group of their own name, and group {name!r} is "
                "declared too.",
                f"Give the user `groups: [{name}]` (and the group the GID you want), or rename the group.",
            )


@rule("AZC111", "error", "team-id-duplicate", "Two users or two groups of the team have the same id")
def team_id_duplicate(spec: ClusterSpec) -> Iterator[Problem]:
    """Files on the shared home and Lustre belong to numbers, not names: two people with one UID own each
    other's files on every node. A user without `groups` gets a group with GID = UID, which must not be
    another group's GID."""
    seen_uid: dict[int, str] = {}
    for index, user in enumerate(spec.team.users):
        if user.uid in seen_uid and seen_uid[user.uid] != user.name:
            yield (
                _user_at(index, "uid"),
                f"user {user.name!r} has UID {user.uid}, which user {seen_uid[user.uid]!r} has too.",
                "Give every user a UID of their own, and never reuse a removed user's.",
            )
        seen_uid.setdefault(user.uid, user.name)
    seen_gid: dict[int, str] = {}
    for index, group in enumerate(spec.team.groups):
        if group.gid in seen_gid and seen_gid[group.gid] != group.name:
            yield (
                _group_at(index, "gid"),
                f"group {group.name!r} has GID {group.gid}, which group {seen_gid[group.gid]!r} has too.",
                "Give every group a GID of its own.",
            )
        seen_gid.setdefault(group.gid, group.name)
    for index, name, gid in personal_groups(spec):
        if gid in seen_gid and seen_gid[gid] != name:
            yield (
                _user_at(index, "uid"),
                f"user {name!r} has no `groups`, so gets a group of their own with GID {gid} (their UID), "
                f"which group {seen_gid[gid]!r} has.",
                "List the user's groups, or give the group another GID.",
            )


def _id_problem(value: int) -> str | None:
    if value == NOBODY_ID:
        return "is nobody's (65534), the id NFS maps unknown and squashed users to"
    if value < ID_MIN:
        return f"is below {ID_MIN}, the system's range"
    if value > ID_MAX:
        return f"is above {ID_MAX} (60001-65533 are reserved, 65535 and up are not portable)"
    return None


@rule("AZC112", "error", "team-id-system-range", "A team id is in the system's range or nobody's")
def team_id_system_range(spec: ClusterSpec) -> Iterator[Problem]:
    """Ids below 1000 belong to the system's users (root, daemons), 65534 is nobody (NFS maps squashed and
    unknown users to it), and ids above 60000 are reserved (Debian policy, /etc/login.defs UID_MAX).

    Source: https://www.debian.org/doc/debian-policy/ch-opersys.html#uid-and-gid-classes
    """
    for index, user in enumerate(spec.team.users):
        if problem := _id_problem(user.uid):
            yield (
                _user_at(index, "uid"),
                f"user {user.name!r}: UID {user.uid} {problem}.",
                "Use a UID from 2000 to 60000.",
            )
    for index, group in enumerate(spec.team.groups):
        if problem := _id_problem(group.gid):
            yield (
                _group_at(index, "gid"),
                f"group {group.name!r}: GID {group.gid} {problem}.",
                "Use a GID from 2000 to 60000.",
            )


def _name_problem(name: str) -> str | None:
    if not name:
        return "is empty"
    if len(name) > NAME_MAX:
        return f"has {len(name)} characters (at most {NAME_MAX})"
    if not POSIX_NAME.match(name):
        return "is not a portable name (a lower-case letter or '_' first, then a-z, 0-9, '_' or '-')"
    return None


@rule("AZC113", "error", "team-name-invalid", "A user or group name that useradd or Slurm would refuse")
def team_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """useradd refuses names outside its NAME_REGEX (Debian: a lower-case letter first, then lower-case
    letters, digits, '_' or '-'); names over 32 characters do not fit utmp's login records; Slurm keeps
    user and account names in lower case (sacctmgr lowers them), so an upper-case name would not match.

    Sources: useradd(8) and adduser.conf(5) NAME_REGEX; https://slurm.schedmd.com/sacctmgr.html.
    """
    for index, user in enumerate(spec.team.users):
        if problem := _name_problem(user.name):
            yield (
                _user_at(index, "name"),
                f"user name {preview(user.name, 40)!r} {problem}.",
                "Use lower-case letters, digits, '_' and '-', starting with a letter, e.g. alice or a-smith.",
            )
    for index, group in enumerate(spec.team.groups):
        if problem := _name_problem(group.name):
            yield (
                _group_at(index, "name"),
                f"group name {preview(group.name, 40)!r} {problem}.",
                "Use lower-case letters, digits, '_' and '-', starting with a letter, e.g. vision.",
            )


@rule("AZC114", "error", "team-name-reserved", "A team name the node or the cluster already uses")
def team_name_reserved(spec: ClusterSpec) -> Iterator[Problem]:
    """The admin user is made by Azure on every VM and stays apart from the team; the system's own users and
    groups (root, sudo, nobody...) and the cluster's daemons (slurm, munge, mysql) exist on every node, so a
    team entry of that name would change who they are.

    Source: Debian's base-passwd (/usr/share/base-passwd/passwd.master, group.master) and the users
    components/bootstrap's services run as.
    """
    admin = spec.ssh.admin_username
    for index, user in enumerate(spec.team.users):
        if user.name == admin:
            yield (
                _user_at(index, "name"),
                f"user {user.name!r} is the admin user (`ssh.admin_username`), made by Azure on every VM.",
                "Leave the admin user out of `team.users` (add keys under `ssh.public_keys`), or give the "
                "person a name of their own.",
            )
        elif user.name in RESERVED_NAMES:
            yield (
                _user_at(index, "name"),
                f"user name {user.name!r} is a system or service account on every node.",
                "Give the person a name of their own.",
            )
    for index, group in enumerate(spec.team.groups):
        if group.name == admin or group.name in RESERVED_NAMES:
            yield (
                _group_at(index, "name"),
                f"group name {group.name!r} is a system group or the admin user's on every node.",
                "Give the group a name of its own; make a person an administrator with `admin: true`.",
            )


@rule("AZC115", "warning", "team-id-local-range", "A team id that the admin user or the image may hold")
def team_id_local_range(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure makes the admin user, and an image its own users, with the first free id from 1000, so on a
    node UID 1000 (and a few after) are usually taken: the node-side applier then refuses that user rather
    than hand them someone else's files. Ids from 2000 up are clear of them."""
    for index, user in enumerate(spec.team.users):
        if ID_MIN <= user.uid <= LOCAL_ID_MAX:
            yield (
                _user_at(index, "uid"),
                f"user {user.name!r}: UID {user.uid} may be taken on a node by the admin user or the image's "
                "own users (they get ids from 1000).",
                "Use UIDs from 2000 up.",
            )
    for index, group in enumerate(spec.team.groups):
        if ID_MIN <= group.gid <= LOCAL_ID_MAX:
            yield (
                _group_at(index, "gid"),
                f"group {group.name!r}: GID {group.gid} may be taken on a node by the admin user's group "
                "or the image's own groups.",
                "Use GIDs from 2000 up.",
            )


def _parsed_keys(spec: ClusterSpec) -> Iterator[tuple[int, int, str, SshPublicKey | SshKeyError]]:
    for index, user in enumerate(spec.team.users):
        for key_index, text in enumerate(user.ssh_keys):
            try:
                yield index, key_index, text, parse_ssh_public_key(text)
            except SshKeyError as err:
                yield index, key_index, text, err


@rule("AZC116", "error", "team-ssh-key-malformed", "A team member's SSH public key is malformed")
def team_ssh_key_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """sshd skips an authorized_keys line it cannot read, so the person cannot log in and nothing says why;
    a pasted private key would be a secret copied to every node."""
    for index, key_index, text, parsed in _parsed_keys(spec):
        if isinstance(parsed, SshKeyError):
            user = spec.team.users[index].name
            if "PRIVATE KEY" in text:
                hint = "Never list a private key: give the matching .pub file, and replace the key."
            else:
                hint = "Paste the whole line of the .pub file (`type base64 comment`), or give its path."
            yield (
                _user_at(index, f"ssh_keys[{key_index}]"),
                f"SSH key {key_index + 1} of user {user!r} ({preview(text)!r}) is not a valid public key: "
                f"{parsed}.",
                hint,
            )


RSA_MIN_BITS = 2048


@rule("AZC117", "error", "team-ssh-key-refused", "A team member's SSH key that sshd refuses")
def team_ssh_key_refused(spec: ClusterSpec) -> Iterator[Problem]:
    """OpenSSH dropped DSA keys (9.8 removed them; off by default since 7.0) and refuses RSA keys under
    RequiredRSASize (1024 bits by default since 9.1); NIST SP 800-131A asks for 2048 bits or more.

    Sources: https://www.openssh.com/releasenotes.html (7.0, 9.1, 9.8) and sshd_config(5).
    """
    for index, key_index, _text, parsed in _parsed_keys(spec):
        if not isinstance(parsed, SshPublicKey):
            continue
        user = spec.team.users[index].name
        why = None
        if parsed.type == "ssh-dss":
            why = "a DSA key, which OpenSSH no longer accepts"
        elif parsed.type == "ssh-rsa" and parsed.bits < RSA_MIN_BITS:
            why = f"a {parsed.bits}-bit RSA key (at least {RSA_MIN_BITS} bits)"
        if why:
            yield (
                _user_at(index, f"ssh_keys[{key_index}]"),
                f"SSH key {key_index + 1} of user {user!r} is {why}.",
                "Use an Ed25519 key (`ssh-keygen -t ed25519`) or `ssh-keygen -t rsa -b 4096`.",
            )


@rule("AZC118", "error", "team-group-undeclared", "A user is in a group the team does not declare")
def team_group_undeclared(spec: ClusterSpec) -> Iterator[Problem]:
    """Groups are made with the GID `team.groups` gives, the same on every node; a group named only in a
    user's list has no GID, and letting each node pick one would give it a different GID per node."""
    declared = {group.name for group in spec.team.groups}
    for index, user in enumerate(spec.team.users):
        for group_index, name in enumerate(user.groups):
            if name not in declared:
                yield (
                    _user_at(index, f"groups[{group_index}]"),
                    f"user {user.name!r} is in group {name!r}, which `team.groups` does not declare.",
                    f"Add `{{name: {name}, gid: ...}}` under `team.groups`, or fix the name.",
                )


@rule("AZC119", "error", "team-account-undeclared", "A user's Slurm account the team does not declare")
def team_account_undeclared(spec: ClusterSpec) -> Iterator[Problem]:
    """Slurm refuses a user association with an account that does not exist (sacctmgr: "Parent account
    doesn't exist"), so every account a user is charged to is declared once in `team.accounts`.

    Source: https://slurm.schedmd.com/accounting.html (Database Configuration, adding users).
    """
    declared = set(spec.team.account_names)
    for index, user in enumerate(spec.team.users):
        if user.account is not None and user.account not in declared:
            yield (
                _user_at(index, "account"),
                f"user {user.name!r} is charged to Slurm account {user.account!r}, which `team.accounts` "
                "does not declare.",
                f"Add {user.account!r} to `team.accounts`, or fix the name.",
            )
