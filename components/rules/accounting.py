"""Team accounting (AZC140-AZC149): the Slurm accounts, fair shares and GPU limits of `team.accounts`.

The controller's azc-slurm-accounts.py makes Slurm's accounts, associations and QOS from the users file
(components/team.py) with sacctmgr; a name sacctmgr would change, an account only Slurm may own, or a
limit that cannot bind is caught here, before the file reaches the cluster.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import catalog
from ..spec import ClusterSpec
from .common import at, preview
from .registry import Problem, rule
from .team import NAME_MAX, POSIX_NAME

SLURM_ACCOUNTS = frozenset({"root"})
"""Slurm's own account: every cluster's association tree hangs from `root` (sacctmgr(1), accounting.html)."""


def _account_at(index: int, field: str = "") -> str:
    return at(f"team.accounts[{index}].{field}" if field else f"team.accounts[{index}]")


def _has_slurm_side(spec: ClusterSpec) -> bool:
    return bool(spec.team.accounts) or any(user.account for user in spec.team.users)


@rule("AZC140", "warning", "team-accounts-without-accounting", "Team accounts on a cluster that keeps none")
def team_accounts_without_accounting(spec: ClusterSpec) -> Iterator[Problem]:
    """Accounts, fair shares and GPU limits live in Slurm's accounting database (slurmdbd): without it the
    controller never makes them, every job runs uncharged and no limit holds
    (https://slurm.schedmd.com/accounting.html)."""
    if not _has_slurm_side(spec):
        return
    if spec.scheduler != "slurm":
        yield (
            at("team.accounts"),
            "the team names Slurm accounts, but the cluster runs no Slurm (`scheduler: none`).",
            "Leave `team.accounts` and `users[].account` out, or use `scheduler: slurm`.",
        )
    elif not spec.slurm.accounting.enabled:
        yield (
            at("slurm.accounting.enabled"),
            "the team names Slurm accounts, but Slurm accounting is off: no account, fair share or GPU "
            "limit is applied and jobs are not recorded for `azcluster cost`.",
            "Set `slurm.accounting.enabled: true` (slurmdbd and MariaDB on the login node).",
        )


@rule("AZC141", "error", "team-account-name-invalid", "A Slurm account name sacctmgr would change or refuse")
def team_account_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """sacctmgr lowers account names, so `Vision` would be stored as `vision` and the next sync would never
    find it; the node-side applier accepts the same portable names as for users. `root` is Slurm's own
    account (the top of every association tree).

    Sources: https://slurm.schedmd.com/sacctmgr.html; https://slurm.schedmd.com/accounting.html.
    """
    for index, account in enumerate(spec.team.accounts):
        name = account.name
        if name in SLURM_ACCOUNTS:
            yield (
                _account_at(index, "name"),
                f"account {name!r} is Slurm's own root account.",
                "Give the project an account of its own, e.g. vision.",
            )
        elif not name or len(name) > NAME_MAX or not POSIX_NAME.match(name):
            yield (
                _account_at(index, "name"),
                f"account name {preview(name, 40)!r} is not a lower-case portable name of at most "
                f"{NAME_MAX} characters.",
                "Use lower-case letters, digits, '_' and '-', starting with a letter, e.g. vision.",
            )


@rule("AZC142", "error", "team-account-duplicate", "A Slurm account listed twice")
def team_account_duplicate(spec: ClusterSpec) -> Iterator[Problem]:
    """An account is one row of slurmdbd: listed twice with different shares or limits, one entry would
    silently win."""
    seen: set[str] = set()
    for index, account in enumerate(spec.team.accounts):
        if account.name in seen:
            yield (_account_at(index, "name"), f"account {account.name!r} is listed twice.", "List it once.")
        seen.add(account.name)


@rule("AZC143", "warning", "team-gpu-limit-never-binds", "A GPU limit larger than what it can ever bind")
def team_gpu_limit_never_binds(spec: ClusterSpec) -> Iterator[Problem]:
    """A per-user limit above the account's own limit, or a limit above every GPU the cluster has, never
    stops a job: it reads as a limit but is none (Slurm QOS MaxTRESPerUser, GrpTRES:
    https://slurm.schedmd.com/resource_limits.html)."""
    total = 0
    for pool in spec.pools:
        size = catalog.find_size(pool.size)
        total += pool.nodes * size.gpus if size is not None else 0
    for index, account in enumerate(spec.team.accounts):
        per_user, whole = account.max_gpus_per_user, account.max_gpus
        if per_user is not None and whole is not None and per_user > whole:
            yield (
                _account_at(index, "max_gpus_per_user"),
                f"account {account.name!r}: {per_user} GPUs per user, but {whole} for the whole account.",
                "Lower max_gpus_per_user to at most max_gpus, or raise max_gpus.",
            )
        for field, value in (("max_gpus_per_user", per_user), ("max_gpus", whole)):
            if value is not None and total and value > total:
                yield (
                    _account_at(index, field),
                    f"account {account.name!r}: {field} {value} is more than the cluster's {total} GPUs.",
                    f"Set it to at most {total}, or leave it out for no limit.",
                )
