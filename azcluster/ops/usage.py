"""`azcluster cost`: who used the cluster and what it cost, from Slurm's accounting (sacct on the login node).

What is read, through Run Command on the login node (runcommand.py), as `status` reads sinfo:
`sacct -a -X -n -P -S SINCE -E now -o SACCT_FIELDS` with SLURM_TIME_FORMAT=%s (sacct(1), ENVIRONMENT
VARIABLES: "%s" is strftime's seconds since the epoch, so Start and End are read without a time zone) and
TZ=UTC (so SINCE, which sacct reads as local time, is UTC). One line per job allocation (-X): its user,
account, partition, node count, allocated TRES (`billing=2,cpu=2,gres/gpu=2,mem=256M,node=1`: GPUs are
`gres/gpu=N`, counted because slurm.conf's AccountingStorageTRES names gres/gpu), its start and end
(`Unknown` while it runs; a job that never started has no start and costs nothing) and its nodes (slots
`<pool>-i<n>-NNN`: the island). Tests read real sacct output of Slurm 24.11
(tests/components/test_slurm_accounting_real.py) and a capture of it (tests/azcluster/fixtures/sacct).

Run Command returns 4 KiB of output, and a month of jobs is far more: so the login node adds the jobs up
itself (AGGREGATE, Python's standard library: every node has python3, azc-users.py needs it), into one line
per user, account, partition and job shape (nodes, GPUs, CPUs) with the number of jobs and their seconds
inside the window (a job that started before SINCE counts from SINCE; one still running counts to now),
whole seconds, exact. That listing is gzip'ed and read in chunks as slurmstate.py reads sinfo.

How a job is priced (price_rows), from the catalogue's price of the size its island is built as (the pool's,
or the island's stand-in: capacity.island_size_name):
a job holds `share` nodes' worth of its partition, the larger of its GPUs over the size's GPUs per node and
its CPUs over the size's vCPUs per node (a 4-GPU job on an 8-GPU node holds half of it; a CPU-only job
that takes every core holds all of it), at most its node count; it costs seconds / 3600 x share x the
size's price per hour. GPU-hours (GPUs x hours) and node-hours (nodes x hours) are shown beside it.
Arithmetic is exact (fractions), rounded to the cent only when shown. Storage (Lustre, the shared home,
blob) bills by the hour whatever runs, so it is shown apart, for the window, never split over users.
Partitions that are no pool of the spec (renamed or removed since) are listed unpriced.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any

from azcluster.components import catalog
from azcluster.components.spec import ClusterSpec

from . import runcommand

SACCT_FIELDS = "JobIDRaw,User,Account,Partition,NNodes,AllocTRES,Start,End,NodeList"
CHUNK = 3600
MARKER = "AZC-CHUNK"
MAX_CALLS = 24
TIMEOUT_S = 120.0
BY = ("user", "account", "partition")
STORAGE_ROLES = ("lustre", "home", "blob")

AGGREGATE = r"""
import sys
since, now = int(sys.argv[1]), int(sys.argv[2])
sums = {}
for line in sys.stdin:
    f = line.rstrip("\n").split("|")
    if len(f) != 9 or not f[6].isdigit():
        continue
    first = f[8].split(",")[0].split("[")[0]
    island = first.rsplit("-", 1)[0] if "-i" in first else ""
    start = max(int(f[6]), since)
    end = min(int(f[7]) if f[7].isdigit() else now, now)
    if end <= start:
        continue
    tres = dict(t.split("=", 1) for t in f[5].split(",") if "=" in t)
    gpus = tres.get("gres/gpu", "0")
    key = (f[1], f[2], f[3], island, f[4] if f[4].isdigit() else "0", gpus if gpus.isdigit() else "0",
           tres.get("cpu", "0") if tres.get("cpu", "0").isdigit() else "0")
    jobs, seconds = sums.get(key, (0, 0))
    sums[key] = (jobs + 1, seconds + end - start)
print("AZC-USAGE %d %d" % (since, now))
for key in sorted(sums):
    print("|".join(key) + "|%d|%d" % sums[key])
"""
"""Run on the login node: sacct's lines on stdin -> one line per user, account, partition, island and job
shape. The island is the node names' `<pool>-i<n>` (Slurm node names are island slots: a job never spans two
islands), so a job on an island built on a stand-in size is priced at that size."""

_RUN = re.compile(r"^[a-f0-9]{8}$")
_NAME = re.compile(r"^[A-Za-z0-9_.@-]*$")


@dataclass(frozen=True)
class UsageRow:
    """Jobs of one user, account, partition and shape, and their seconds inside the window."""

    user: str
    account: str
    partition: str
    island: str
    """The island key (`gpu-i1`) its nodes were in; '' when sacct named none."""
    nodes: int
    gpus: int
    cpus: int
    jobs: int
    seconds: int


@dataclass
class Usage:
    since: int
    now: int
    rows: list[UsageRow] = field(default_factory=list)


def since_epoch(since: datetime) -> int:
    return int(since.astimezone(timezone.utc).timestamp())


def script(run_id: str, start: int, since: int) -> list[str]:
    """The Run Command script: (first call) add up sacct's jobs since `since` (epoch), keep the result
    gzip'ed and base64'ed under /run; print one chunk of it."""
    if not _RUN.match(run_id) or start < 0 or since < 0:
        raise ValueError("run id: 8 lower-case hex digits; start, since: >= 0")
    path = f"${{AZC_ROOT:-}}/run/azcluster/usage-{run_id}.b64"
    lines = ["set -eu", "set -o pipefail", f'f="{path}"']
    if start == 0:
        iso = datetime.fromtimestamp(since, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        lines += [
            'mkdir -p "$(dirname "$f")"',
            "now=$(date +%s)",
            f"TZ=UTC SLURM_TIME_FORMAT=%s sacct -a -X -n -P -S {iso} -E now -o {SACCT_FIELDS}"
            f' | {runcommand.python_program(AGGREGATE)} {since} "$now" | gzip -9 | base64 -w0 >"$f"',
        ]
    return lines + runcommand.chunk_lines(MARKER, start, CHUNK)


def parse_usage(text: str) -> Usage:
    """The login node's listing (AGGREGATE's output) -> Usage; ValueError when it is not one."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("AZC-USAGE "):
        raise ValueError("the login node's sacct listing has no header")
    _, since, now = lines[0].split()
    usage = Usage(int(since), int(now))
    for line in lines[1:]:
        parts = line.split("|")
        if len(parts) != 9 or not all(_NAME.match(part) for part in parts[:4]):
            raise ValueError(f"unreadable line in the sacct listing: {line[:80]!r}")
        user, account, partition, island = parts[:4]
        nodes, gpus, cpus, jobs, seconds = (int(part) for part in parts[4:])
        usage.rows.append(UsageRow(user, account, partition, island, nodes, gpus, cpus, jobs, seconds))
    return usage


class UsageUnreadable(Exception):
    """Slurm's accounting could not be read on the login node; the message says why."""


def read_usage(
    begin: runcommand.Begin, since: int, *, timeout: float = TIMEOUT_S, run_id: str | None = None
) -> Usage:
    """sacct's jobs since `since` (epoch), added up on the login node and read in as few calls as needed."""
    run_id = run_id or secrets.token_hex(4)
    try:
        text = runcommand.read_listing(
            begin,
            lambda start: script(run_id, start, since),
            MARKER,
            tool="sacct",
            listing="the usage listing",
            timeout=timeout,
            max_calls=MAX_CALLS,
        )
    except runcommand.ListingUnreadable as err:
        raise UsageUnreadable(str(err)) from None
    try:
        return parse_usage(text)
    except ValueError as err:
        raise UsageUnreadable(str(err)) from None


# --- pricing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionPrice:
    """What one node of a partition (a pool) costs an hour, and what it holds."""

    size: str
    usd_per_hour: Fraction
    gpus: int
    vcpus: int


def partition_prices(spec: ClusterSpec) -> dict[str, PartitionPrice]:
    """Every pool of the spec as a partition, and every island of it as `<pool>-i<n>`, priced from the
    catalogue at the size it is built as (an island on a stand-in size: capacity.island_size_name);
    sizes the catalogue lacks are left out."""
    from azcluster.components.capacity import island_size_name
    from azcluster.components.topology import island_key

    prices = {}
    for pool in spec.pools:
        names = {pool.name: pool.size}
        names.update(
            {
                island_key(pool.name, index): island_size_name(pool, index)
                for index in range(len(pool.island_sizes()))
            }
        )
        for key, name in names.items():
            size = catalog.find_size(name)
            if size is not None:
                # str() first: the catalogue's decimal rate exactly as written, not its binary float
                price = Fraction(str(size.price.usd_per_hour))
                prices[key] = PartitionPrice(size.name, price, size.gpus, size.vcpus)
    return prices


def node_share(row: UsageRow, price: PartitionPrice) -> Fraction:
    """Nodes' worth of the partition the jobs held (module docstring), at most their node count."""
    shares = []
    if price.gpus:
        shares.append(Fraction(row.gpus, price.gpus))
    if price.vcpus:
        shares.append(Fraction(row.cpus, price.vcpus))
    share = max(shares, default=Fraction(row.nodes))
    return min(share, Fraction(row.nodes)) if row.nodes else share


@dataclass
class Line:
    """One user, account or partition over the window."""

    key: str
    jobs: int = 0
    gpu_hours: Fraction = Fraction(0)
    node_hours: Fraction = Fraction(0)
    usd: Fraction = Fraction(0)
    unpriced_hours: Fraction = Fraction(0)
    """Node-hours on partitions the spec has no pool for (not in `usd`)."""


@dataclass
class Report:
    since: int
    now: int
    by: str
    lines: list[Line]
    storage: list[tuple[str, Fraction]]
    """(label, USD over the window) of each storage resource, apart from the users' lines."""
    unpriced_partitions: list[str]

    @property
    def hours(self) -> Fraction:
        return Fraction(self.now - self.since, 3600)

    @property
    def compute_usd(self) -> Fraction:
        return sum((line.usd for line in self.lines), Fraction(0))

    @property
    def storage_usd(self) -> Fraction:
        return sum((usd for _, usd in self.storage), Fraction(0))


def storage_costs(spec: ClusterSpec, hours: Fraction) -> list[tuple[str, Fraction]]:
    """Each storage resource the spec builds at its catalogue price for `hours`."""
    from ..cost import price_resources

    resources, _unpriced = price_resources(spec)
    return [
        (cost.item.label, Fraction(str(cost.usd_per_hour)) * hours)
        for cost in resources
        if cost.item.role in STORAGE_ROLES and cost.usd_per_hour
    ]


def price_rows(spec: ClusterSpec, usage: Usage, by: str = "user") -> Report:
    """The usage, added up by user, account or partition and priced (module docstring)."""
    if by not in BY:
        raise ValueError(f"--by must be one of {', '.join(BY)}")
    prices = partition_prices(spec)
    lines: dict[str, Line] = {}
    unpriced: set[str] = set()
    for row in usage.rows:
        key = getattr(row, by) or "(none)"
        line = lines.setdefault(key, Line(key))
        hours = Fraction(row.seconds, 3600)
        line.jobs += row.jobs
        line.gpu_hours += row.gpus * hours
        line.node_hours += row.nodes * hours
        price = prices.get(row.island) if row.island.startswith(f"{row.partition}-i") else None
        price = price or prices.get(row.partition)
        if price is None:
            unpriced.add(row.partition)
            line.unpriced_hours += row.nodes * hours
            continue
        line.usd += hours * node_share(row, price) * price.usd_per_hour
    ordered = sorted(lines.values(), key=lambda line: (-line.usd, -line.gpu_hours, line.key))
    window = Fraction(usage.now - usage.since, 3600)
    return Report(usage.since, usage.now, by, ordered, storage_costs(spec, window), sorted(unpriced))


def require_accounting(spec: ClusterSpec, stack: str) -> None:
    """Exit 2 where there is no accounting to read: no Slurm, no login node, or accounting off."""
    from ..errors import EXIT_USAGE, AzclusterError

    if spec.scheduler != "slurm" or not spec.login.enabled:
        raise AzclusterError(
            f"stack {stack} runs no Slurm controller (scheduler: {spec.scheduler}, login node "
            f"{'on' if spec.login.enabled else 'off'}): there is no job accounting to read",
            "cost per user needs `scheduler: slurm` and the login node",
            EXIT_USAGE,
        )
    if not spec.slurm.accounting.enabled:
        raise AzclusterError(
            f"stack {stack} keeps no job accounting (slurm.accounting.enabled is false)",
            "set `slurm.accounting.enabled: true` and run `azcluster up`; usage is recorded from then on",
            EXIT_USAGE,
        )


def cluster_report(
    spec: ClusterSpec, ctx: Any, stack: str, since: datetime, by: str = "user", *, progress: bool = True
) -> Report:
    """sacct on the login node through Run Command, priced; AzclusterError when it cannot be read."""
    from ..azure import azure_errors, compute_client
    from ..errors import AzclusterError
    from .loginhosts import login_vm_name

    vm = login_vm_name(spec)
    begin = runcommand.on_vm(compute_client(ctx), spec.resource_group_name, vm)
    with (
        runcommand.waiting_line(f"reading Slurm's accounting on {vm} through Run Command", progress),
        azure_errors(ctx, f"reading Slurm's accounting on {vm}"),
    ):
        try:
            usage = read_usage(begin, since_epoch(since))
        except UsageUnreadable as err:
            raise AzclusterError(
                f"could not read Slurm's accounting on {vm}: {err}",
                f"check slurmdbd on {vm} (`systemctl status slurmdbd`), then run `azcluster cost {stack}` "
                "again",
            ) from None
    return price_rows(spec, usage, by)


def cents(value: Fraction) -> float:
    """USD rounded to the cent (half to even, on the exact value)."""
    return round(value * 100) / 100


def report_json(report: Report) -> dict[str, Any]:
    def iso(epoch: int) -> str:
        return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "since": iso(report.since),
        "until": iso(report.now),
        "hours": float(round(report.hours, 4)),
        "by": report.by,
        "lines": [
            {
                report.by: line.key,
                "jobs": line.jobs,
                "gpu_hours": float(round(line.gpu_hours, 4)),
                "node_hours": float(round(line.node_hours, 4)),
                "usd": cents(line.usd),
                "unpriced_node_hours": float(round(line.unpriced_hours, 4)),
            }
            for line in report.lines
        ],
        "compute_usd": cents(report.compute_usd),
        "storage": [{"resource": label, "usd": cents(usd)} for label, usd in report.storage],
        "storage_usd": cents(report.storage_usd),
        "unpriced_partitions": report.unpriced_partitions,
        "pricing": "job share of its nodes (max of GPUs/GPUs per node, CPUs/vCPUs per node) x hours x the "
        "size's pay-as-you-go price per hour (catalogue); storage for the whole window, apart",
    }
