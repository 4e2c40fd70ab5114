#!/usr/bin/env python3
"""azc-users: make the team's users and groups on this node from the users file on the shared home.

Run by azc-users.timer every 2 minutes on every node, as root (components/team.py renders the file and says
more). Each run makes the node match it, changing nothing when it already does: exact GIDs and UIDs (a name
or id held otherwise is reported, exit 1, never changed); a home made once on the shared home; keys in
/etc/azcluster/authorized_keys/<user> (root-owned; an sshd drop-in reads them); administrators in a
visudo-checked sudoers file; a user no longer listed locked and expired (-L -e 1), keys removed, files and
UID kept, running jobs left alone. No file: nothing done. A file or directory anyone but root could write
is refused. Standard library only; tests move paths with AZC_* variables (`Paths`).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

NODE_ENV = "/etc/azcluster/node.env"
NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
KEY_LINE = re.compile(r"^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+( [^\n\r]*)?$")
ID_MIN, ID_MAX, NOBODY = 1000, 60000, 65534
FORMAT = 1
SSHD_DROPIN_TEXT = (
    "# azcluster: the team's keys (azc-users.py), beside each user's own ~/.ssh/authorized_keys\n"
    "AuthorizedKeysFile .ssh/authorized_keys /etc/azcluster/authorized_keys/%u\n"
)


class Invalid(Exception):
    """The users file cannot be used at all: nothing is applied."""


@dataclass
class Paths:
    users_file: str
    state: str
    keys_dir: str
    sudoers: str
    sshd_dropin: str

    @classmethod
    def from_env(cls) -> Paths:
        env = dict(_node_env())
        env.update(os.environ)
        return cls(
            users_file=env.get("AZC_USERS_FILE", "/home/.azcluster/users.json"),
            state=env.get("AZC_USERS_STATE", "/var/lib/azcluster/users-applied.json"),
            keys_dir=env.get("AZC_KEYS_DIR", "/etc/azcluster/authorized_keys"),
            sudoers=env.get("AZC_SUDOERS", "/etc/sudoers.d/azcluster-team"),
            sshd_dropin=env.get("AZC_SSHD_DROPIN", "/etc/ssh/sshd_config.d/50-azcluster-team.conf"),
        )


def _node_env():
    try:
        with open(NODE_ENV, encoding="utf-8") as handle:
            for line in handle:
                key, sep, value = line.strip().partition("=")
                if sep and not key.startswith("#"):
                    yield key, value
    except FileNotFoundError:
        return


def log(message: str) -> None:
    print(f"azc-users: {message}", flush=True)


# --- reading the file -----------------------------------------------------------------------------------


def check_owned_by_root(path: str, kind: str) -> None:
    """Refuse a file or directory that anyone but root could have written (or a link to elsewhere)."""
    info = os.lstat(path)
    if os.path.islink(path) or (kind == "file" and not os.path.isfile(path)):
        raise Invalid(f"{path} is not a plain {kind}")
    if info.st_uid != 0 or info.st_mode & 0o022:
        raise Invalid(
            f"{path} is owned by UID {info.st_uid} with mode {info.st_mode & 0o7777:o}: it must be "
            "owned by root and writable by root only (anyone who can write it can make themselves root)"
        )


def load(path: str) -> dict | None:
    """The users file, checked; None when there is none (nothing handed over, or home not mounted)."""
    if not os.path.lexists(path):
        return None
    check_owned_by_root(os.path.dirname(path) or "/", "directory")
    check_owned_by_root(path, "file")
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as err:
        raise Invalid(f"{path}: cannot read it as JSON: {err}") from None
    validate(document, path)
    return document


def _good_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and ID_MIN <= value <= ID_MAX


def validate(document: object, path: str) -> None:
    """What this script relies on, checked before anything is changed (it runs as root)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise Invalid(f"{path}: not a users file of format {FORMAT}")
    home = document.get("home")
    if not isinstance(home, str) or not home.startswith("/") or ".." in home.split("/"):
        raise Invalid(f"{path}: `home` {home!r} is not an absolute path")
    groups = document.get("groups")
    users = document.get("users")
    if not isinstance(groups, list) or not isinstance(users, list):
        raise Invalid(f"{path}: `groups` and `users` must be lists")
    for group in groups:
        if not (
            isinstance(group, dict) and NAME.match(str(group.get("name"))) and _good_id(group.get("gid"))
        ):
            raise Invalid(f"{path}: group {group!r} needs a POSIX name and a GID of {ID_MIN}-{ID_MAX}")
    for user in users:
        if not isinstance(user, dict) or not NAME.match(str(user.get("name"))):
            raise Invalid(f"{path}: user {user!r} needs a POSIX name")
        name = user["name"]
        if not _good_id(user.get("uid")) or not _good_id(user.get("gid")):
            raise Invalid(f"{path}: user {name}: UID and GID must be {ID_MIN}-{ID_MAX}")
        if not NAME.match(str(user.get("group"))):
            raise Invalid(f"{path}: user {name}: primary group {user.get('group')!r} is not a POSIX name")
        if not isinstance(user.get("groups"), list) or not all(NAME.match(str(g)) for g in user["groups"]):
            raise Invalid(f"{path}: user {name}: `groups` must be a list of group names")
        keys = user.get("ssh_keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) and KEY_LINE.match(k) for k in keys):
            raise Invalid(f"{path}: user {name}: every SSH key must be one `type base64 [comment]` line")


# --- applying it ------------------------------------------------------------------------------------------


class Run:
    """One application of the file: what changed and what could not be done."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.changes: list[str] = []
        self.problems: list[str] = []
        self._groups_of: dict[str, set[str]] | None = None

    def groups_of(self, name: str) -> set[str]:
        """The supplementary groups `name` is in, from one read of the group database per run (one read
        per user made an unchanged run of 1,000 users take seconds)."""
        if self._groups_of is None:
            self._groups_of = {}
            for group in grp.getgrall():
                for member in group.gr_mem:
                    self._groups_of.setdefault(member, set()).add(group.gr_name)
        return self._groups_of.get(name, set())

    def command(self, argv: list[str], what: str) -> bool:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            self.problems.append(f"{what}: {' '.join(argv)} failed: {result.stderr.strip()}")
            return False
        self.changes.append(what)
        return True

    # groups

    def group(self, name: str, gid: int) -> bool:
        try:
            found = grp.getgrnam(name)
        except KeyError:
            found = None
        if found is not None:
            if found.gr_gid != gid:
                self.problems.append(f"group {name} exists here with GID {found.gr_gid}, the file says {gid}")
                return False
            return True
        try:
            holder = grp.getgrgid(gid)
        except KeyError:
            return self.command(["groupadd", "-g", str(gid), name], f"made group {name} ({gid})")
        self.problems.append(f"GID {gid} of group {name} is held here by group {holder.gr_name}")
        return False

    # users

    def user(self, user: dict, team_groups: set[str], home_root: str) -> bool:
        name, uid, gid = user["name"], user["uid"], user["gid"]
        wanted = sorted(user["groups"])
        home = f"{home_root.rstrip('/')}/{name}"
        try:
            found = pwd.getpwnam(name)
        except KeyError:
            found = None
        if found is None:
            try:
                holder = pwd.getpwuid(uid)
            except KeyError:
                holder = None
            if holder is not None:
                self.problems.append(f"UID {uid} of user {name} is held here by user {holder.pw_name}")
                return False
            argv = ["useradd", "-u", str(uid), "-g", str(gid), "-d", home, "-M", "-s", "/bin/bash"]
            argv += ["-c", "azcluster team"]
            if wanted:
                argv += ["-G", ",".join(wanted)]
            if not self.command([*argv, name], f"made user {name} ({uid})"):
                return False
        elif found.pw_uid != uid:
            self.problems.append(f"user {name} exists here with UID {found.pw_uid}, the file says {uid}")
            return False
        else:
            member_of = self.groups_of(name)
            if found.pw_gid != gid or member_of & team_groups != set(wanted):
                keep = sorted((member_of - team_groups) | set(wanted))
                argv = ["usermod", "-g", str(gid), "-G", ",".join(keep), name]
                self.command(argv, f"groups of {name}: {','.join(wanted) or '(none)'}")
            if expired(name):
                self.command(unlock_argv(name), f"unlocked {name} (listed again)")
        self.home(name, uid, gid, home)
        return True

    def home(self, name: str, uid: int, gid: int, home: str) -> None:
        """Made once, by the first node to get there; never touched afterwards (the user owns it)."""
        try:
            os.mkdir(home, 0o700)
        except FileExistsError:
            return
        except OSError as err:
            self.problems.append(f"cannot make {name}'s home {home}: {err.strerror}")
            return
        if os.path.isdir("/etc/skel"):
            shutil.copytree("/etc/skel", home, symlinks=True, dirs_exist_ok=True)
        for parent, dirs, files in os.walk(home):
            for entry in [parent, *(os.path.join(parent, d) for d in dirs)]:
                os.lchown(entry, uid, gid)
            for entry in files:
                os.lchown(os.path.join(parent, entry), uid, gid)
        os.chmod(home, 0o700)
        self.changes.append(f"made {name}'s home {home}")

    def lock(self, name: str) -> None:
        """A user no longer listed: no login from now on, their files and UID kept."""
        try:
            pwd.getpwnam(name)
        except KeyError:
            return
        if not expired(name) or not password_locked(name):
            self.command(["usermod", "-L", "-e", "1", name], f"locked {name} (no longer listed)")

    # files

    def write(self, path: str, text: str | None, mode: int, what: str) -> bool:
        """Write `text` to `path` (atomically, root-owned) when it differs; None removes it."""
        try:
            with open(path, encoding="utf-8") as handle:
                current: str | None = handle.read()
        except FileNotFoundError:
            current = None
        if current == text:
            return False
        if text is None:
            os.unlink(path)
            self.changes.append(f"removed {what}")
            return True
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=0o755, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".azc-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
        self.changes.append(f"wrote {what}")
        return True

    def sudoers(self, admins: list[str]) -> None:
        text = None
        if admins:
            lines = [f"{name} ALL=(ALL) NOPASSWD:ALL" for name in sorted(admins)]
            text = "# azcluster team administrators (azc-users.py)\n" + "\n".join(lines) + "\n"
            visudo = shutil.which("visudo")
            if visudo:
                check = subprocess.run([visudo, "-cqf", "-"], input=text, text=True, capture_output=True)
                if check.returncode != 0:
                    self.problems.append(f"visudo refused the administrators file: {check.stderr.strip()}")
                    return
        self.write(self.paths.sudoers, text, 0o440, "the administrators' sudoers file")

    def sshd_dropin(self) -> None:
        if not os.path.isdir(os.path.dirname(self.paths.sshd_dropin)):
            return  # no sshd on this node
        changed = self.write(self.paths.sshd_dropin, SSHD_DROPIN_TEXT, 0o644, "sshd's team keys drop-in")
        if changed and os.path.isdir("/run/systemd/system") and shutil.which("systemctl"):
            reload = ["systemctl", "try-reload-or-restart", "ssh.service", "sshd.service"]
            subprocess.run(reload, check=False, capture_output=True)


def shadow_fields(name: str) -> list[str]:
    with open("/etc/shadow", encoding="utf-8") as handle:
        for line in handle:
            fields = line.rstrip("\n").split(":")
            if fields[0] == name:
                return fields
    return []


def expired(name: str) -> bool:
    """Expired on a day already past (`usermod -e 1` sets day 1 of 1970)."""
    fields = shadow_fields(name)
    return len(fields) > 7 and fields[7] not in ("", "-1") and int(fields[7]) <= 1


def unlock_argv(name: str) -> list[str]:
    """Undo `usermod -L -e 1`. Not -U: shadow 4.20 refuses it when that leaves no password."""
    password = (shadow_fields(name) + ["", ""])[1]
    extra = ["-p", password[1:] or "*"] if password.startswith("!") else []
    return ["usermod", "-e", "", *extra, name]


def password_locked(name: str) -> bool:
    fields = shadow_fields(name)
    return len(fields) > 1 and fields[1].startswith("!")


def load_state(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def apply(paths: Paths) -> int:
    try:
        document = load(paths.users_file)
    except Invalid as err:
        log(f"refused: {err}")
        return 1
    if document is None:
        log(f"no users file at {paths.users_file} (not handed over yet, or the shared home is not mounted)")
        return 0
    run = Run(paths)
    declared = {group["name"]: group["gid"] for group in document["groups"]}
    wanted_groups = dict(declared)
    for user in document["users"]:
        wanted_groups.setdefault(user["group"], user["gid"])
    made = {name for name, gid in sorted(wanted_groups.items()) if run.group(name, gid)}
    team_groups = set(declared)
    listed, keys, admins = [], {}, []
    for user in document["users"]:
        needs = {user["group"], *user["groups"]}
        if not needs <= made:
            run.problems.append(
                f"user {user['name']} left out: group {', '.join(sorted(needs - made))} failed"
            )
            continue
        if run.user(user, team_groups, document["home"]):
            listed.append(user["name"])
            keys[user["name"]] = "".join(f"{key}\n" for key in user["ssh_keys"])
            if user.get("admin") is True:
                admins.append(user["name"])
    state = load_state(paths.state)
    managed = sorted(set(state.get("managed", [])) | set(listed))
    everyone = {user["name"] for user in document["users"]}
    for name in managed:
        if name not in everyone:
            run.lock(name)
            keys[name] = None
    for name, text in sorted(keys.items()):
        run.write(f"{paths.keys_dir}/{name}", text, 0o644, f"{name}'s keys")
    run.sudoers(admins)
    run.sshd_dropin()
    new_state = {"hash": document.get("hash"), "managed": managed}
    if new_state != state:
        run.write(paths.state, json.dumps(new_state, sort_keys=True) + "\n", 0o644, "the applied state")
    for change in run.changes:
        log(change)
    for problem in run.problems:
        log(f"PROBLEM: {problem}")
    log(f"applied {document.get('hash', '?')[:12]}: {len(listed)} users, {len(run.changes)} changes")
    return 1 if run.problems else 0


def main(argv: list[str]) -> int:
    if argv[1:] not in ([], ["apply"]):
        print("usage: azc-users.py [apply]", file=sys.stderr)
        return 2
    return apply(Paths.from_env())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
