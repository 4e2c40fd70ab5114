"""Accounting that survives (AZC146-AZC149): slurmdbd's database and slurmctld's state against a rebuilt
login node. team accounting's block is AZC140-149; the accounts and limits are rules/accounting.py's.

What is at stake: the login VM's OS disk is deleted with the VM (components/login.py `deleteOption:
Delete`). slurmctld's state (the queue, running jobs) is kept on the shared home
(bootstrap/slurm.py `state_save_dir`), and the accounting history on Azure Database for MySQL flexible
server with `slurm.accounting.database: mysql` (components/accounting_db.py); without those, a rebuilt
login node starts empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..spec import ClusterSpec
from .common import at
from .registry import Problem, rule

TIER_SKU_PREFIX = {"Burstable": "Standard_B", "GeneralPurpose": "Standard_D", "MemoryOptimized": "Standard_E"}
"""Azure Database for MySQL flexible server sizes by tier: B-series burstable, D-series general purpose,
E-series memory optimized (learn.microsoft.com/azure/mysql/flexible-server/concepts-service-tiers-storage)."""
SKU_NAME = re.compile(r"^Standard_[BDE][0-9]+[a-z]*(_v[0-9]+)?$")


def _has_controller(spec: ClusterSpec) -> bool:
    return spec.scheduler == "slurm" and spec.login.enabled


@rule(
    "AZC146",
    "error",
    "accounting-mysql-sku-tier",
    "The accounting database's size is not a MySQL flexible server size of its tier",
)
def accounting_mysql_sku_tier(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses a server whose SKU is not of its tier (a Standard_D2ads_v5 in Burstable), at
    deployment time, after the rest of the cluster was built. Source: concepts-service-tiers-storage."""
    accounting = spec.slurm.accounting
    if accounting.database != "mysql":
        return
    mysql = accounting.mysql
    prefix = TIER_SKU_PREFIX[mysql.tier]
    if not SKU_NAME.match(mysql.sku):
        yield (
            at("slurm.accounting.mysql.sku"),
            f"{mysql.sku!r} is not a MySQL flexible server size (Standard_B1ms, Standard_D2ads_v5, "
            "Standard_E2ds_v4...).",
            "Use a size from `az mysql flexible-server list-skus --location <region>`.",
        )
    elif not mysql.sku.startswith(prefix):
        yield (
            at("slurm.accounting.mysql.tier"),
            f"size {mysql.sku} is not of tier {mysql.tier} (whose sizes are {prefix}*).",
            f"Set `tier` to the size's tier, or pick a {prefix}* size.",
        )


@rule(
    "AZC147",
    "warning",
    "slurm-state-on-login-disk",
    "slurmctld's state is lost when the login VM is replaced",
)
def slurm_state_on_login_disk(spec: ClusterSpec) -> Iterator[Problem]:
    """Without a shared home slurmctld keeps its state (StateSaveLocation: queued and running jobs, job
    ids) on the login VM's OS disk, which Azure deletes with the VM: a login node rebuilt by `up` forgets
    every job, and the jobs still running on GPU nodes are killed when their nodes register with the new
    controller. Sources: slurm.conf(5) StateSaveLocation; learn.microsoft.com/azure/virtual-machines/
    delete (OS disk deleteOption)."""
    if not _has_controller(spec) or spec.storage.home.enabled:
        return
    yield (
        at("storage.home.enabled"),
        "the cluster has no shared home, so slurmctld's state (the queue and running jobs) is kept on the "
        "login VM's OS disk and lost if that VM is replaced.",
        "Keep `storage.home.enabled: true` (the state goes to <home>/.azcluster/slurmctld), or accept "
        "that a rebuilt login node starts with an empty queue.",
    )


@rule(
    "AZC148",
    "info",
    "accounting-on-login-disk",
    "The accounting history lives on the login VM's OS disk",
)
def accounting_on_login_disk(spec: ClusterSpec) -> Iterator[Problem]:
    """`database: login` keeps slurmdbd's MariaDB on the login VM's OS disk: sacct history, fair-share
    usage and `azcluster cost` start from nothing after the VM is replaced or the cluster goes `down`. A
    valid choice for a short-lived cluster (no extra cost), said once so it is a choice."""
    accounting = spec.slurm.accounting
    if not _has_controller(spec) or not accounting.enabled or accounting.database != "login":
        return
    yield (
        at("slurm.accounting.database"),
        "job accounting is kept in MariaDB on the login node's OS disk: the history (sacct, fair-share "
        "usage, `azcluster cost`) is lost if the login VM is replaced or the cluster goes `down`.",
        "Set `slurm.accounting.database: mysql` for Azure Database for MySQL flexible server (private, "
        "backed up, kept by `down`), about $17 a month for the smallest (Burstable B1ms, 20 GiB).",
    )


@rule(
    "AZC149",
    "warning",
    "accounting-mysql-unused",
    "An accounting database server is asked for but nothing would use it",
)
def accounting_mysql_unused(spec: ClusterSpec) -> Iterator[Problem]:
    """The server is built only for slurmdbd on the controller: with accounting off, no Slurm or no login
    node, `database: mysql` builds nothing, which is worth saying rather than silently ignoring."""
    accounting = spec.slurm.accounting
    if accounting.database != "mysql":
        return
    if spec.scheduler != "slurm":
        why = "the cluster runs no Slurm (`scheduler: none`)"
    elif not spec.login.enabled:
        why = "there is no login node to run slurmdbd"
    elif not accounting.enabled:
        why = "Slurm accounting is off"
    else:
        return
    yield (
        at("slurm.accounting.database"),
        f"`database: mysql` is set but {why}: no database server is built.",
        "Set `slurm.accounting.enabled: true` (with Slurm and a login node), or leave `database` out.",
    )
