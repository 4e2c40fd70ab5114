"""`azcluster plan`: run the stack program offline under Pulumi mocks and show what it would build.

The program runs through `mockrun.run_program` (no credentials, no network, no Pulumi CLI); the summary
(nodes, GPUs, scale sets, IB islands, cost, quota) comes from `cost.summarize`, the spec and the catalogue.
A spec with error findings builds nothing.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azcluster.components.capacity import PoolCapacity, capacity_plan
from azcluster.components.exposure import PublicSurface, public_surfaces
from azcluster.components.findings import Finding, has_errors
from azcluster.components.spec import ClusterSpec

from .cost import HOURS_PER_MONTH, Summary, summarize
from .errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError
from .mockrun import SECRET_MASK, PlannedResource, ProgramRun, azure_resource_name, run_program
from .render import LazyList

if TYPE_CHECKING:
    from .stackfile import LoadedStack


# --- the result ------------------------------------------------------------------------------------------


@dataclass
class PlanResult:
    stack: str
    location: str
    findings: list[Finding]
    resources: list[PlannedResource]
    summary: Summary
    outputs: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    """The stack file, for `file:line` in human output."""
    messages: list[tuple[str, str]] = field(default_factory=list)
    """What the program logged (`pulumi.log`): shown on stderr, not part of the JSON document."""
    capacity: list[PoolCapacity] = field(default_factory=list)
    """Each pool's capacity policy, resolved (components/capacity.py): what `up` and `grow` will try."""
    public: list[PublicSurface] = field(default_factory=list)
    """What the cluster exposes on a public address, and why (components/exposure.py)."""
    secrets: frozenset[str] = field(default=frozenset(), repr=False)
    """Every secret the program registered: masked custom data is checked against them."""

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    def to_json(self) -> dict[str, Any]:
        """The `plan --json` document (README, docs/architecture.md)."""
        return {
            "stack": self.stack,
            "location": self.location,
            "findings": [finding.to_json() for finding in self.findings],
            # made one at a time as print_json writes them: each may hold a decoded cloud-config (~70 KB)
            "resources": LazyList(self.resources, lambda resource: _resource_json(resource, self.secrets)),
            "summary": self.summary.to_json(),
            "capacity": [policy.to_json() for policy in self.capacity],
            "public": [surface.to_json() for surface in self.public],
        }


# --- custom data people can review -------------------------------------------------------------------


@dataclass(frozen=True)
class BootDocument:
    """One VM's or scale set's cloud-config, decoded, with its secret files masked."""

    resource: PlannedResource
    azure_name: str
    cloud_config: str | None
    """None when it cannot be shown: a secret outside the files known to hold one (or not decodable)."""
    masked: list[str]
    """The write_files paths whose content reads "[secret]"."""


def boot_documents(result: PlanResult) -> list[BootDocument]:
    """The cloud-config of every resource with custom data (the login node, each scale set), in plan
    order, with the munge key masked (components/bootstrap/review.py)."""
    from azcluster.components.bootstrap.review import masked_cloud_config

    documents = []
    for resource in result.resources:
        if resource.custom_data is None:
            continue
        name = azure_resource_name(resource.type, resource.name, resource.inputs)
        try:
            text, masked = masked_cloud_config(resource.custom_data, result.secrets)
        except ValueError:
            text, masked = None, []
        documents.append(BootDocument(resource, name, text, masked))
    return documents


def _resource_json(resource: PlannedResource, secrets: frozenset[str]) -> dict[str, Any]:
    """A resource for `plan --json`: a secret custom data shown decoded with its secret files masked,
    `{"cloudConfig": text, "secretsMasked": [paths]}`, instead of "[secret]" (which stays when it cannot
    be masked safely). Custom data that is not secret stays as registered (base64 of gzip)."""
    document = resource.to_json()
    if resource.custom_data is None:
        return document
    from azcluster.components.bootstrap.review import masked_cloud_config

    try:
        text, masked = masked_cloud_config(resource.custom_data, secrets)
    except ValueError:
        return document
    document["inputs"] = _replace_secret_custom_data(
        document["inputs"], {"cloudConfig": text, "secretsMasked": masked}
    )
    return document


def _replace_secret_custom_data(value: Any, shown: dict[str, Any]) -> Any:
    """`value` with every customData that reads "[secret]" replaced by `shown` (dicts on the way copied)."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key == "customData" and item == SECRET_MASK:
            out[key] = shown
        else:
            out[key] = _replace_secret_custom_data(item, shown) if isinstance(item, dict) else item
    return out


def write_boot_documents(result: PlanResult, directory: Path) -> tuple[list[Path], list[str]]:
    """`plan --show-boot DIR`: one `<Azure name>.yaml` per VM and scale set with custom data. Returns the
    files written and the Azure names of the documents that cannot be shown (a secret outside the files
    known to hold one), which are left out."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AzclusterError(
            f"cannot write the cloud-configs to {directory}: {err.strerror or err}",
            "give --show-boot a directory you can write to (it is created if missing)",
            EXIT_USAGE,
        ) from None
    written, unshown = [], []
    for document in boot_documents(result):
        if document.cloud_config is None:
            unshown.append(document.azure_name)
            continue
        path = directory / f"{_SAFE_NAME.sub('-', document.azure_name)}.yaml"
        try:
            path.write_text(document.cloud_config, encoding="utf-8")
        except OSError as err:
            raise AzclusterError(
                f"cannot write {path}: {err.strerror or err}",
                "give --show-boot a directory you can write to",
                EXIT_USAGE,
            ) from None
        written.append(path)
    return written, unshown


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


# --- plan ------------------------------------------------------------------------------------------------


def plan_stack(loaded: LoadedStack, suppress: Iterable[str] = ()) -> PlanResult:
    """Validate the stack and, when it has no error findings, run its program under mocks.

    A stack with error findings is not built: the result has the findings, the summary (as far as the spec
    allows) and no resources; `PlanResult.ok` is False and the CLI exits 1.
    """
    from . import stackfile

    findings = stackfile.validate(loaded, suppress)
    spec = loaded.spec
    source = str(loaded.path)
    location = spec.location if spec is not None else str(loaded.config.get("azure-native:location", ""))
    if spec is None:
        return PlanResult(loaded.name, location, findings, [], _empty_summary(), source=source)
    summary = summarize(spec)
    capacity = capacity_plan(spec)
    if has_errors(findings):
        return PlanResult(loaded.name, location, findings, [], summary, source=source, capacity=capacity)
    run = _run_build(spec, loaded.name)
    return PlanResult(
        loaded.name,
        location,
        findings,
        run.resources,
        summary,
        run.outputs,
        source=source,
        messages=run.messages,
        capacity=capacity,
        public=public_surfaces(spec),
        secrets=run.secrets,
    )


def refusal(result: PlanResult) -> AzclusterError:
    """The error the CLI raises (after showing the findings) for a plan with error findings."""
    errors = [finding for finding in result.findings if finding.severity == "error"]
    count = len(errors)
    first = errors[0] if errors else None
    where = f" (first: {first.id} at {first.path})" if first else ""
    return AzclusterError(
        f"stack {result.stack!r} has {count} error finding{'s' if count != 1 else ''}{where}; "
        "nothing was planned",
        f"fix the findings listed above (or suppress one with --suppress ID), then run `azcluster plan "
        f"{result.stack}` again",
        EXIT_REFUSED,
    )


def _run_build(spec: ClusterSpec, stack: str) -> ProgramRun:
    """The stack program under mocks; a component's refusal becomes one clear message (exit 1)."""
    from pulumi.errors import RunError

    def program() -> None:
        from azcluster.components.program import build

        build(spec)

    try:
        with _collector_paused():
            return run_program(program, stack=stack)
    except (ValueError, RunError) as err:  # components refuse what Azure would, saying what to change
        raise AzclusterError(
            f"the stack program refused stack {stack!r}: {err}",
            "fix the stack file as the message says; `azcluster validate` lists the rule findings",
            EXIT_REFUSED,
        ) from None


@contextlib.contextmanager
def _collector_paused() -> Any:
    """No cyclic garbage collection while the program imports pulumi-azure-native and runs.

    The imports create ~200k long-lived objects that every collection rescans, to free almost nothing:
    about a fifth of a plan's time. A plan's garbage is small (peak RSS stays ~130 MiB); the collector's
    previous state comes back afterwards, so callers (and tests) see no difference.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def pause_collector_until_exit() -> None:
    """For a process that ends after the plan (the console script): no cyclic collection from here on.

    The Pulumi SDK leaves ~800 objects of cyclic garbage per scale set. Left to the collector, the first
    allocation after `_collector_paused` scans all of them (its young generation held everything the
    program made) and `settle_before_exit` scans them again: together ~1 ms a scale set, ~1.3 s of a
    1,429-set plan (benchmarks/bench_plan_scale.py), to free memory the process gives back a moment later.
    """
    gc.disable()


def settle_before_exit() -> None:
    """For a process that ends after the plan: freeze what is left, collecting it first unless the
    collector is paused until exit (`pause_collector_until_exit`).

    Python's exit runs the cyclic collector over every object left, ~250k after pulumi-azure-native's
    imports: about 0.3 s, a fifth of a whole plan. `gc.freeze()` exempts them from that pass (and every
    later one). Only the CLI calls this, as its last step.
    """
    if gc.isenabled():
        gc.collect()
    gc.freeze()


def _empty_summary() -> Summary:
    return Summary(nodes=0, gpus=0, scale_sets=0, ib_islands=0, cost_per_hour_usd=0.0, quota=[])


# --- human output ----------------------------------------------------------------------------------------

_KEY_SETTINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "azure-native:compute:VirtualMachineScaleSet": (
        ("sku.name", "{}"),
        ("sku.capacity", "x{}"),
        ("zones", "zone {}"),
        ("virtualMachineProfile.priority", "{}"),
        ("singlePlacementGroup", "singlePlacementGroup={}"),
    ),
    "azure-native:compute:VirtualMachine": (("hardwareProfile.vmSize", "{}"), ("zones", "zone {}")),
    "azure-native:network:VirtualNetwork": (("addressSpace.addressPrefixes", "{}"),),
    "azure-native:network:Subnet": (("addressPrefix", "{}"), ("delegations", "{} delegation(s)")),
    "azure-native:network:NetworkSecurityGroup": (("securityRules", "{} rules"),),
    "azure-native:network:PublicIPAddress": (("sku.name", "{}"), ("publicIPAllocationMethod", "{}")),
    "azure-native:storage:StorageAccount": (("sku.name", "{}"), ("kind", "{}"), ("isHnsEnabled", "HNS={}")),
    "azure-native:storagecache:AmlFilesystem": (
        ("sku.name", "{}"),
        ("storageCapacityTiB", "{} TiB"),
        ("zones", "zone {}"),
    ),
    "azure-native:resources:ResourceGroup": (("location", "{}"),),
}


def _setting(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for step in path.split("."):
        if not isinstance(value, dict) or step not in value:
            return None
        value = value[step]
    if isinstance(value, list):
        return len(value) if path in ("securityRules", "delegations") else ", ".join(str(v) for v in value)
    return value


def key_settings(resource: PlannedResource) -> str:
    """The few inputs people check at a glance (size, capacity, prefix...), as one short string."""
    wanted = _KEY_SETTINGS.get(resource.type, (("location", "{}"),))
    shown = []
    for path, template in wanted:
        value = _setting(resource.inputs, path)
        if value not in (None, "", [], 0) or (path == "sku.capacity" and value == 0):
            shown.append(template.format(value))
    return "  ".join(shown)


def _short_type(typ: str) -> str:
    parts = typ.split(":")
    if parts[0] == "azure-native" and len(parts) == 3:
        return f"{parts[1]}:{parts[2]}"
    return parts[-1]


def resource_tree(result: PlanResult) -> Any:
    from rich.tree import Tree

    from .render import markup

    custom = sum(1 for resource in result.resources if resource.custom)
    root = Tree(markup("[bold]stack {}[/] [dim]({} Azure resources)[/]", result.stack, custom))
    nodes: dict[str | None, Any] = {None: root}
    for resource in result.resources:  # parents come before children
        azure_name = (
            azure_resource_name(resource.type, resource.name, resource.inputs) if resource.custom else ""
        )
        label = markup("[bold]{}[/] {}", _short_type(resource.type), resource.name)
        if azure_name and azure_name != resource.name:
            label.append_text(markup(" [dim]({})[/]", azure_name))
        settings = key_settings(resource) if resource.custom else ""
        if settings:
            label.append_text(markup("  [cyan]{}[/]", settings))
        parent = nodes.get(resource.parent, root)
        nodes[resource.urn] = parent.add(label)
    return root


def summary_table(result: PlanResult) -> Any:
    from rich.table import Table
    from rich.text import Text

    summary = result.summary
    table = Table(
        title=f"summary: {result.stack} in {result.location}",
        show_header=False,
        title_justify="left",
    )
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("value")
    table.add_row("nodes", f"{summary.nodes:,}")
    table.add_row("GPUs", f"{summary.gpus:,}")
    table.add_row("scale sets", str(summary.scale_sets))
    table.add_row("InfiniBand islands", str(summary.ib_islands))
    zone = f"zone {summary.zone}" if summary.zone else "none"
    table.add_row("availability zone", f"{zone} ({summary.zone_note})" if summary.zone_note else zone)
    for pool in summary.pools:
        count = len(pool.islands)
        if pool.infiniband:
            shape = f"{count} IB island{'s' if count != 1 else ''} of {'/'.join(map(str, pool.islands))}"
        else:
            shape = "one scale set, no InfiniBand"
        spot = ", spot" if pool.spot else ""
        if pool.racks is not None:
            whole, partial = pool.racks
            shape += f"; {whole} NVL72 rack{'s' if whole != 1 else ''} of {pool.rack_vms}"
            shape += f" + {partial} VM(s) of a partial rack" if partial else ""
        stand_in = "".join(f"; {nodes} on stand-in {name}" for name, nodes in pool.stand_ins)
        table.add_row(f"  pool {pool.name}", f"{pool.nodes} x {pool.size}: {shape}{spot}{stand_in}")
    table.add_row(
        "cost per hour",
        f"${summary.cost_per_hour_usd:,.2f} (compute ${summary.compute_usd_per_hour:,.2f} + other resources "
        f"${summary.resources_usd_per_hour:,.2f}; usage-based charges not included)",
    )
    table.add_row("cost per month", f"${summary.cost_per_month_usd:,.2f} ({HOURS_PER_MONTH} h)")
    if summary.elastic is not None:
        elastic = summary.elastic
        table.add_row(
            "cost per hour, all idle",
            f"${elastic.all_idle_usd_per_hour:,.2f} (elastic: nodes idle {elastic.idle_minutes} min are "
            f"deallocated; {elastic.keep_warm_islands} island(s) per pool kept warm)",
        )
    for surface in result.public:
        table.add_row("public", f"{surface.what}: {surface.why}")
    table.add_row("", Text(price_note(summary), style="dim"))
    return table


def price_note(summary: Summary) -> str:
    """Where the estimate's prices come from and what it leaves out."""
    dated = summary.price_dates
    dates = (f"{dated[0]} to {dated[-1]}" if len(dated) > 2 else ", ".join(dated)) or "n/a"
    regions = {line.region for line in summary.prices} | {cost.price.region for cost in summary.resources}
    note = (
        f"prices as of {dates} ({', '.join(sorted(regions)) or 'n/a'}), pay-as-you-go; VMs Linux; "
        "usage-based charges (GB processed or stored, queries) not included"
    )
    if any(pool.spot for pool in summary.pools):
        note += "; spot priced as pay-as-you-go (an upper bound)"
    low = sorted({line.size for line in summary.prices if line.confidence == "low"})
    if low:
        note += f"; low-confidence price: {', '.join(low)}"
    if any(cost.price.estimate for cost in summary.resources) or any(
        line.estimate for line in summary.prices
    ):
        note += "; lines marked (estimate): not verified against Azure's price list (prices.yaml says why)"
    if summary.unpriced:
        note += f"; not priced: {', '.join(summary.unpriced)}"
    return note


def cost_table(summary: Summary) -> Any:
    """What the cluster costs per hour, compute apart from the other resources, each line with its rate
    and, where Azure also bills by use, the usage-based rates left out of the sum. Months are the hourly
    figures x 730, on the totals only, so the column adds up (the JSON has each line's month)."""
    from rich.table import Table
    from rich.text import Text

    from .cost import money, rate_text, usage_text

    table = Table(title="cost per hour", title_justify="left")
    table.add_column("what")
    table.add_column("rate")
    table.add_column("$/hour", justify="right")
    table.add_column("$/month", justify="right")
    table.add_column("billed by use (not in the sum)", style="dim")
    table.add_row(Text("compute (VMs: billed while running)", style="bold"), "", "", "", "")
    for line in summary.prices:
        table.add_row(
            f"  {line.role}: {line.count} x {line.size}" + (" (estimate)" if line.estimate else ""),
            f"{money(line.usd_per_hour)}/hour each",
            f"{line.total_per_hour:,.2f}",
            "",
            "",
        )
    table.add_row(
        Text("  compute total", style="bold"),
        "",
        f"{summary.compute_usd_per_hour:,.2f}",
        f"{summary.compute_usd_per_hour * HOURS_PER_MONTH:,.2f}",
        "",
    )
    table.add_row(Text("other resources (billed every hour they exist)", style="bold"), "", "", "", "")
    for cost in summary.resources:
        if cost.price.unit == "included":
            continue  # billed on another line (a FileStorage account: its share); the JSON lists it
        label = cost.item.label + (" (estimate)" if cost.price.estimate else "")
        table.add_row(
            f"  {label}",
            rate_text(cost),
            f"{cost.usd_per_hour:,.2f}" if cost.usd_per_hour >= 0.005 or not cost.usd_per_hour else "<0.01",
            "",
            usage_text(cost),
        )
    table.add_row(
        Text("  other resources total", style="bold"),
        "",
        f"{summary.resources_usd_per_hour:,.2f}",
        f"{summary.resources_usd_per_hour * HOURS_PER_MONTH:,.2f}",
        "",
    )
    table.add_row(
        Text("total", style="bold"),
        "",
        f"{summary.cost_per_hour_usd:,.2f}",
        f"{summary.cost_per_month_usd:,.2f}",
        "",
    )
    return table


def quota_table(summary: Summary) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="vCPU quota needed", title_justify="left")
    table.add_column("quota family")
    table.add_column("vCPUs", justify="right")
    for need in summary.quota:
        table.add_row(need.family, f"{need.vcpus:,}")
    table.add_row(
        Text("regional total (cores)", style="dim"), Text(f"{summary.regional_vcpus:,}", style="dim")
    )
    return table


def show_messages(result: PlanResult) -> None:
    """What the program logged (e.g. a step to do by hand before `up`), on stderr."""
    from . import render

    styles = {"warning": "yellow", "error": "bold red"}
    for level, text in result.messages:
        style = styles.get(level, "cyan")
        render.console.print(render.markup("[" + style + "]{}:[/] {}", level, text), soft_wrap=True)


def show(result: PlanResult) -> None:
    """Human output: findings, the resource tree (when built) and the summary, on the terminal."""
    from . import render

    render.print_findings(result.findings, result.source)
    if not result.ok:  # nothing was planned: a cost or a quota for a cluster that cannot be built misleads
        show_messages(result)
        return
    if result.resources:
        render.stdout.print(resource_tree(result))
    render.stdout.print(summary_table(result))
    render.stdout.print(cost_table(result.summary))
    render.stdout.print(quota_table(result.summary))
    if result.capacity:
        from .capacity_view import policy_table

        render.stdout.print(policy_table(result.capacity))
    show_messages(result)
    warnings = sum(1 for finding in result.findings if finding.severity == "warning")
    tail = f" with {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    render.console.print(render.markup("[green]plan ok[/]{}: offline, nothing was created", tail))
