#!/usr/bin/env python3
"""azc-slurm-accounts: keep Slurm's accounts, users and limits in step with the team's users file.

Run on the controller (the login node) by azc-slurm-accounts.timer every 2 minutes when the cluster keeps
accounts (slurm.accounting.enabled), and right after `azcluster users sync` hands a new file over. It
reads the same users file as azc-users.py (components/team.py renders it) and makes slurmdbd's
associations match it with sacctmgr, changing nothing when they already do:

- every account of the file is a Slurm account of this cluster with its `fairshare`, marked
  Organization=azcluster so this script never touches accounts someone made by hand;
- every account has a QOS of its own, `azc-<account>`, its default and only QOS, holding the account's
  GPU limits: MaxTRESPerUser=gres/gpu=N (`max_gpus_per_user`) and GrpTRES=gres/gpu=N (`max_gpus`), cleared
  (-1) when the file has none. A job over a limit pends with reason QOSMaxGRESPerUser or QOSGrpGRES;
- every user is in their account (`account`), or in GENERAL_ACCOUNT when they have none, with it as their
  default account; the cluster's admin user (`admin_user`) is in GENERAL_ACCOUNT too, so with
  AccountingStorageEnforce=associations the admin can still run jobs (the fabric test does);
- a user who left (or moved to another account) is handled as README's team section says: new jobs are
  refused at once (MaxSubmitJobs=0 on the association), pending jobs are cancelled, running jobs run to
  their end, and the association is deleted once none runs (a later run of this script); after that,
  slurmctld refuses every submission of theirs (no association). The Linux side (azc-users.py) locks
  the login at the same time;
- an account that left is deleted, with its QOS, once it has no users left.

Never deleted: accounts, users and QOS this script did not make (root, those made by hand). It remembers
the users it manages in its state file, as azc-users.py does.

Python, standard library only, like azc-users.py (whose checks of the file it reuses). For tests the
programs and paths can be moved through AZC_* environment variables (see `Settings`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

GENERAL_ACCOUNT = "general"
"""The account of users the file gives none, and of the admin user."""
ORGANIZATION = "azcluster"
"""Organization of the accounts this script makes: the mark of what it may change or delete."""
QOS_PREFIX = "azc-"
UNLIMITED = "-1"
ADD_BATCH = 100


def _users_module():
    """azc-users.py, installed beside this script: its loading and checking of the users file."""
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("azc_users", os.path.join(here, "azc-users.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["azc_users"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


azc_users = _users_module()


@dataclass
class Settings:
    users_file: str
    state: str
    cluster: str
    sacctmgr: str
    squeue: str
    scancel: str

    @classmethod
    def from_env(cls) -> Settings:
        env = dict(azc_users._node_env())
        env.update(os.environ)
        return cls(
            users_file=env.get("AZC_USERS_FILE", "/home/.azcluster/users.json"),
            state=env.get("AZC_SLURM_ACCOUNTS_STATE", "/var/lib/azcluster/slurm-accounts.json"),
            cluster=env.get("AZC_CLUSTER", ""),  # Slurm's ClusterName is the cluster's name
            sacctmgr=env.get("SACCTMGR", "sacctmgr"),
            squeue=env.get("SQUEUE", "squeue"),
            scancel=env.get("SCANCEL", "scancel"),
        )


def log(message: str) -> None:
    print(f"azc-slurm-accounts: {message}", flush=True)


class SlurmError(Exception):
    """slurmdbd cannot be read: nothing is changed this run."""


@dataclass
class Association:
    account: str
    user: str
    fairshare: str
    qos: str
    default_qos: str
    max_submit: str


@dataclass
class Current:
    """What slurmdbd holds for this cluster, read once per run."""

    accounts: dict[str, str] = field(default_factory=dict)  # name -> organization
    qos: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (MaxTRESPerUser, GrpTRES)
    associations: list[Association] = field(default_factory=list)
    default_account: dict[str, str] = field(default_factory=dict)  # user -> default account


class Run:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.changes: list[str] = []
        self.problems: list[str] = []
        self.waiting: list[str] = []

    # sacctmgr

    def read(self, *args: str) -> list[list[str]]:
        argv = [self.settings.sacctmgr, "-n", "-P", *args]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise SlurmError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
        return [line.split("|") for line in done.stdout.splitlines() if line.strip()]

    def change(self, what: str, *args: str) -> bool:
        argv = [self.settings.sacctmgr, "-i", *args]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        out = (done.stdout + done.stderr).strip()
        # sacctmgr exits 0 with " Nothing ..." when there was nothing to do, 1 on a refusal.
        if done.returncode != 0:
            self.problems.append(f"{what}: {' '.join(argv[1:])} failed: {out}")
            return False
        self.changes.append(what)
        return True

    def current(self) -> Current:
        c = self.settings.cluster
        now = Current()
        for row in self.read("show", "account", "format=account,organization"):
            now.accounts[row[0]] = row[1] if len(row) > 1 else ""
        for row in self.read("show", "qos", "format=name,maxtrespu,grptres"):
            now.qos[row[0]] = (row[1] if len(row) > 1 else "", row[2] if len(row) > 2 else "")
        fields = "account,user,fairshare,qos,defaultqos,maxsubmitjobs"
        for row in self.read("show", "assoc", f"cluster={c}", f"format={fields}"):
            row += [""] * (6 - len(row))
            now.associations.append(Association(*row[:6]))
        for row in self.read("show", "user", "format=user,defaultaccount"):
            now.default_account[row[0]] = row[1] if len(row) > 1 else ""
        return now

    # jobs

    def jobs(self, user: str, states: str) -> list[str]:
        argv = [self.settings.squeue, "-h", "-u", user, "-t", states, "-o", "%i"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            self.problems.append(f"squeue for {user} failed: {done.stderr.strip()}")
            return ["?"]
        return done.stdout.split()

    def cancel_pending(self, user: str) -> None:
        if not self.jobs(user, "PENDING"):
            return
        argv = [self.settings.scancel, "--state=PENDING", f"--user={user}"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            self.problems.append(f"scancel of {user}'s pending jobs failed: {done.stderr.strip()}")
        else:
            self.changes.append(f"cancelled {user}'s pending jobs")


def qos_name(account: str) -> str:
    return f"{QOS_PREFIX}{account}"


def _gpus(tres: str) -> str:
    """The gres/gpu count in a TRES list ('cpu=4,gres/gpu=2' -> '2'), UNLIMITED when absent."""
    for item in tres.split(","):
        key, _, value = item.partition("=")
        if key == "gres/gpu":
            return value
    return UNLIMITED


def _limit(value: object) -> str:
    return UNLIMITED if value is None else str(value)


def wanted(document: dict) -> tuple[dict[str, dict], dict[str, str]]:
    """({account: its settings}, {user: account}) the file asks for, GENERAL_ACCOUNT included."""
    accounts = {a["name"]: a for a in document.get("accounts") or [] if isinstance(a, dict) and "name" in a}
    members: dict[str, str] = {}
    for user in document["users"]:
        members[user["name"]] = user.get("account") or GENERAL_ACCOUNT
    admin = document.get("admin_user")
    if isinstance(admin, str) and azc_users.NAME.match(admin):
        members.setdefault(admin, GENERAL_ACCOUNT)
    if GENERAL_ACCOUNT in members.values():
        accounts.setdefault(GENERAL_ACCOUNT, {"name": GENERAL_ACCOUNT})
    for name, account in accounts.items():
        if not azc_users.NAME.match(name):
            raise azc_users.Invalid(f"account {name!r} is not a name sacctmgr keeps as it is")
        for key in ("fairshare", "max_gpus_per_user", "max_gpus"):
            value = account.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise azc_users.Invalid(f"account {name}: {key} {value!r} is not a whole number")
    return accounts, members


def apply_accounts(run: Run, now: Current, accounts: dict[str, dict]) -> None:
    cluster = run.settings.cluster
    for name, account in sorted(accounts.items()):
        fairshare = str(account.get("fairshare") or 1)
        qos = qos_name(name)
        limits = (_limit(account.get("max_gpus_per_user")), _limit(account.get("max_gpus")))
        if qos not in now.qos:
            run.change(f"made QOS {qos}", "add", "qos", qos)
            now.qos[qos] = ("", "")
        have = (_gpus(now.qos[qos][0]), _gpus(now.qos[qos][1]))
        if have != limits:
            run.change(
                f"QOS {qos}: GPUs per user {limits[0]}, GPUs in all {limits[1]}",
                "modify", "qos", "where", f"name={qos}", "set",
                f"maxtresperuser=gres/gpu={limits[0]}", f"grptres=gres/gpu={limits[1]}",
            )  # fmt: skip
        if name not in now.accounts:
            run.change(
                f"made account {name}",
                "add", "account", name, f"cluster={cluster}", f"organization={ORGANIZATION}",
                "description=azcluster team account", f"fairshare={fairshare}", f"qos={qos}",
                f"defaultqos={qos}",
            )  # fmt: skip
            continue
        if now.accounts[name] != ORGANIZATION:
            run.problems.append(f"account {name} exists and was not made by azcluster: left as it is")
            continue
        row = next((a for a in now.associations if a.account == name and not a.user), None)
        if row is None:
            run.change(
                f"added account {name} to cluster {cluster}",
                "add", "account", name, f"cluster={cluster}", f"fairshare={fairshare}", f"qos={qos}",
                f"defaultqos={qos}",
            )  # fmt: skip
        elif row.fairshare != fairshare or row.qos != qos or row.default_qos != qos:
            run.change(
                f"account {name}: fair share {fairshare}, QOS {qos}",
                "modify", "account", "where", f"name={name}", f"cluster={cluster}", "set",
                f"fairshare={fairshare}", f"qos={qos}", f"defaultqos={qos}",
            )  # fmt: skip


def apply_users(run: Run, now: Current, members: dict[str, str], managed: set[str]) -> set[str]:
    """Users in their accounts; the ones who left or moved handled; the users still managed returned."""
    cluster = run.settings.cluster
    ours = {name for name, org in now.accounts.items() if org == ORGANIZATION} | set(members.values())
    held: dict[str, list[Association]] = {}
    for assoc in now.associations:
        if assoc.user and assoc.account in ours:
            held.setdefault(assoc.user, []).append(assoc)
    joining: dict[str, list[str]] = {}
    for user, account in sorted(members.items()):
        if not any(a.account == account for a in held.get(user, [])):
            joining.setdefault(account, []).append(user)
            continue
        row = next(a for a in held[user] if a.account == account)
        if row.max_submit not in ("", UNLIMITED):
            run.change(
                f"{user} may submit again (listed again)",
                "modify", "user", "where", f"name={user}", f"account={account}", f"cluster={cluster}",
                "set", f"maxsubmitjobs={UNLIMITED}",
            )  # fmt: skip
    # one sacctmgr call per account and ADD_BATCH users (a team of hundreds is a few calls, not hundreds)
    for account, users in sorted(joining.items()):
        for start in range(0, len(users), ADD_BATCH):
            batch = users[start : start + ADD_BATCH]
            run.change(
                f"added {', '.join(batch)} to account {account}",
                "add", "user", ",".join(batch), f"account={account}", f"cluster={cluster}",
            )  # fmt: skip
    for user, account in sorted(members.items()):
        # a user new to Slurm gets the account they were added to as default (sacctmgr add user)
        if user in now.default_account and now.default_account[user] != account:
            run.change(
                f"{user}'s default account: {account}",
                "modify", "user", "where", f"name={user}", "set", f"defaultaccount={account}",
            )  # fmt: skip
    still = set(members)
    for user in sorted(set(held) | managed):
        stale = [a for a in held.get(user, []) if members.get(user) != a.account]
        if not stale:
            continue
        gone = user not in members
        if gone:
            # new jobs refused now; pending ones cancelled; running ones finish (README, team section)
            for assoc in stale:
                if assoc.max_submit != "0":
                    run.change(
                        f"{user} may not submit to {assoc.account} (no longer listed)",
                        "modify", "user", "where", f"name={user}", f"account={assoc.account}",
                        f"cluster={cluster}", "set", "maxsubmitjobs=0",
                    )  # fmt: skip
            run.cancel_pending(user)
            if run.jobs(user, "RUNNING,COMPLETING,CONFIGURING,SUSPENDED"):
                run.waiting.append(f"{user}: running jobs finish first, then the association goes")
                still.add(user)
                continue
        for assoc in stale:
            if not run.change(
                f"removed {user} from account {assoc.account}",
                "delete", "user", "where", f"name={user}", f"account={assoc.account}", f"cluster={cluster}",
            ):  # fmt: skip
                still.add(user)
    return still


def remove_accounts(run: Run, now: Current, accounts: dict[str, dict]) -> None:
    for name, org in sorted(now.accounts.items()):
        if org != ORGANIZATION or name in accounts:
            continue
        users = [a.user for a in now.associations if a.account == name and a.user]
        if users:
            run.waiting.append(f"account {name}: removed once its users are ({', '.join(sorted(users))})")
            continue
        removed = run.change(f"removed account {name}", "delete", "account", "where", f"name={name}")
        if removed and qos_name(name) in now.qos:
            run.change(f"removed QOS {qos_name(name)}", "delete", "qos", "where", f"name={qos_name(name)}")


def apply(settings: Settings) -> int:
    if not settings.cluster:
        log("AZC_CLUSTER is not set (node.env): which cluster's accounts is unknown")
        return 1
    try:
        document = azc_users.load(settings.users_file)
        if document is None:
            log(f"no users file at {settings.users_file}: nothing to do")
            return 0
        accounts, members = wanted(document)
    except azc_users.Invalid as err:
        log(f"refused: {err}")
        return 1
    run = Run(settings)
    state = azc_users.load_state(settings.state)
    managed = set(state.get("managed", []))
    try:
        now = run.current()
        apply_accounts(run, now, accounts)
        now = run.current() if run.changes else now
        still = apply_users(run, now, members, managed)
        now = run.current() if run.changes else now
        remove_accounts(run, now, accounts)
    except SlurmError as err:
        log(f"slurmdbd cannot be read, nothing changed: {err}")
        return 1
    new_state = {"hash": document.get("hash"), "managed": sorted(still)}
    if new_state != state:
        os.makedirs(os.path.dirname(settings.state) or ".", exist_ok=True)
        with open(settings.state + ".tmp", "w", encoding="utf-8") as out:
            out.write(json.dumps(new_state, sort_keys=True) + "\n")
        os.replace(settings.state + ".tmp", settings.state)
    for change in run.changes:
        log(change)
    for wait in run.waiting:
        log(f"waiting: {wait}")
    for problem in run.problems:
        log(f"PROBLEM: {problem}")
    log(
        f"applied {str(document.get('hash', '?'))[:12]}: {len(accounts)} accounts, {len(members)} users, "
        f"{len(run.changes)} changes"
    )
    return 1 if run.problems else 0


def main(argv: list[str]) -> int:
    if argv[1:] not in ([], ["apply"]):
        print("usage: azc-slurm-accounts.py [apply]", file=sys.stderr)
        return 2
    return apply(Settings.from_env())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
