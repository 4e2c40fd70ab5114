"""Elastic pools (AZC093-AZC097; components/elastic.py): nodes powered off when idle and on for jobs."""

from __future__ import annotations

from collections.abc import Iterator

from .. import catalog
from ..spec import ClusterSpec
from .common import at, plural, pool_at
from .registry import Problem, rule


def _elastic_on(spec: ClusterSpec) -> bool:
    return spec.elastic is not None and spec.elastic.enabled


@rule("AZC093", "error", "elastic-needs-login-node", "Elastic pools need the login node")
def elastic_needs_login_node(spec: ClusterSpec) -> Iterator[Problem]:
    """The suspend/resume programs and the idle watcher run on the login node with its managed identity;
    without a login node nothing would ever power nodes off or on again (components/elastic.py).
    """
    if _elastic_on(spec) and not spec.login.enabled:
        yield (
            at("login.enabled"),
            "elastic is on but the login node is disabled: the power programs run there.",
            "Set `login.enabled: true`, or remove the `elastic:` section.",
        )


@rule(
    "AZC094",
    "warning",
    "elastic-idle-shorter-than-boot",
    "Nodes would be powered off sooner than they take to start",
)
def elastic_idle_shorter_than_boot(spec: ClusterSpec) -> Iterator[Problem]:
    """A node that is powered off after a shorter idle time than it takes to boot spends more time
    starting than working: a pause between two jobs costs a full start (an ND VM plus node preparation
    and health checks, about 15 minutes; components/elastic.py BOOT_MINUTES_IB, Azure/cyclecloud-slurm
    gives nodes 30 minutes).
    """
    from ..elastic import boot_minutes

    if not _elastic_on(spec) or spec.elastic is None:
        return
    idle = spec.elastic.idle_minutes
    boots = {boot_minutes(catalog.find_size(pool.size)) for pool in spec.pools}
    boot = max(boots, default=0)
    if idle < boot:
        yield (
            at("elastic.idle_minutes"),
            f"idle_minutes is {idle}, shorter than the ~{boot} minutes a node takes to start again.",
            f"Use at least {boot} (60 is a common choice), so a short pause between jobs does not cost a "
            "full start.",
        )


@rule(
    "AZC095",
    "error",
    "elastic-resume-timeout-shorter-than-boot",
    "Started nodes would be marked down before they can boot",
)
def elastic_resume_timeout_shorter_than_boot(spec: ClusterSpec) -> Iterator[Problem]:
    """Slurm sets a resumed node DOWN and requeues its job when the node has not registered within
    ResumeTimeout (slurm.conf(5)); shorter than a boot, every resume fails and jobs never start.
    Boot estimate: components/elastic.py BOOT_MINUTES_IB.
    """
    from ..elastic import boot_minutes

    if not _elastic_on(spec) or spec.elastic is None:
        return
    timeout = spec.elastic.resume_timeout_minutes
    boot = max((boot_minutes(catalog.find_size(pool.size)) for pool in spec.pools), default=0)
    if timeout < boot:
        yield (
            at("elastic.resume_timeout_minutes"),
            f"resume_timeout_minutes is {timeout}, shorter than the ~{boot} minutes a node takes to boot: "
            "every resumed node would be marked down before it is up.",
            f"Use at least {boot}; 30 leaves room for a slow start (CycleCloud's default).",
        )


@rule("AZC096", "warning", "elastic-spot-pool", "An elastic Spot pool may not get its nodes back")
def elastic_spot_pool(spec: ClusterSpec) -> Iterator[Problem]:
    """Starting a deallocated Spot VM needs spare capacity at that moment and fails with an allocation
    error when there is none; azcluster's Spot pools also use eviction policy Delete, so an evicted node
    is gone rather than deallocated (learn.microsoft.com/azure/virtual-machine-scale-sets/use-spot).
    Powering Spot nodes off trades a low price for a real chance of not getting them back.
    """
    if not _elastic_on(spec) or spec.elastic is None:
        return
    from ..elastic import pool_islands

    for index, pool in enumerate(spec.pools):
        if not pool.spot or not pool.nodes:
            continue
        islands = len(pool_islands(pool, catalog.find_size(pool.size)))
        if spec.elastic.keep_warm_islands >= islands:
            continue
        yield (
            pool_at(index, "spot"),
            f"pool {pool.name!r} uses Spot VMs and is elastic: a powered-off Spot node starts again only "
            "when Azure has spare capacity, and an evicted one is deleted.",
            "Keep Spot pools warm (`elastic.keep_warm_islands`), use regular VMs, or suppress this if "
            "losing capacity while idle is acceptable.",
        )


@rule(
    "AZC097",
    "warning",
    "elastic-keep-warm-exceeds-islands",
    "More islands kept warm than a pool has: nothing there is ever powered off",
)
def elastic_keep_warm_exceeds_islands(spec: ClusterSpec) -> Iterator[Problem]:
    """`keep_warm_islands` counts islands per pool; when it is as large as a pool's island count, the pool
    is never powered off and elastic saves nothing on it (components/elastic.py plan_islands). Larger than
    every pool usually means nodes were meant instead of islands.
    """
    if not _elastic_on(spec) or spec.elastic is None:
        return
    warm = spec.elastic.keep_warm_islands
    if warm == 0:
        return
    from ..elastic import pool_islands

    for pool in spec.pools:
        islands = len(pool_islands(pool, catalog.find_size(pool.size)))
        if pool.nodes and warm >= islands:
            more = "more than" if warm > islands else "all"
            yield (
                at("elastic.keep_warm_islands"),
                f"keep_warm_islands is {warm}, {more} of pool {pool.name!r}'s {plural(islands, 'island')} "
                f"({pool.nodes} nodes): that pool is never powered off.",
                f"Use a number below {islands} (islands, not nodes), or leave the pool out of elastic by "
                "removing the `elastic:` section.",
            )
