"""How `status` prints a cluster for people: a table per island, the login node, the running cost."""

from __future__ import annotations

from typing import Any

from .cluster import missing_hint
from .diagnose_view import diagnosis_notes, print_unhealthy
from .model import ClusterStatus
from .slurmstate_view import slurm_cell, slurm_lines


def print_status(status: ClusterStatus) -> None:
    from rich.table import Table

    from ..render import console, markup, stdout

    if not status.found:
        console.print(
            markup(
                "[yellow]nothing found[/] for {} in resource group {}", status.cluster, status.resource_group
            )
        )
        return
    for island in status.islands:
        zone = f", zone {'/'.join(island.zones)}" if island.zones else ""
        if status.cross_zone(island):
            zone += f", storage in zone {status.storage_zone}: read across zones"
        size = island.size
        if island.stand_in_for:
            price = island.usd_per_node_hour()
            size += f" standing in for {island.stand_in_for}" + (
                f", ${price:,.2f}/h per node" if price is not None else ""
            )
        title = (
            f"pool {island.pool} island {island.island}: {island.scale_set} ({size}, "
            f"capacity {island.capacity}{zone}, {island.provisioning_state or 'unknown'})"
        )
        table = Table(title=title)
        slurm = status.slurm is not None and not status.slurm.error
        for column in ("node", "private IP", "power", "health", "detail", *(("slurm",) if slurm else ())):
            table.add_column(column)
        for node in island.nodes:
            health = node.health or "-"
            if node.health in ("unhealthy", "unknown"):
                health = markup("[bold red]{}[/]", health)
            row = [node.computer_name or node.name, node.private_ip or "-", node.power_state or "?", health]
            row.append(node.health_detail or "")
            if slurm:
                row.append(slurm_cell(node.slurm))
            table.add_row(*row)
        stdout.print(table)
        states = (
            ", ".join(f"{count} {state}" for state, count in island.power_states.items()) or "no instances"
        )
        busy = _gpu_usage_text(status, island.pool, island.island)
        stdout.print(
            f"  {states}; ${island.cost_per_hour() or 0:.2f}/h" + ("; spot" if island.spot else "") + busy
        )
    if status.login:
        login = status.login
        stdout.print(
            f"login node {login.name} ({login.size}): {login.power_state or '?'}, "
            f"{login.private_ip or 'no IP'}"
        )
    for line in slurm_lines(status.slurm):
        stdout.print(line, soft_wrap=True)
    for line in rack_lines(status):
        stdout.print(line, soft_wrap=True)
    usage = status.gpu_usage
    if usage is not None and usage.error:
        console.print(markup("[yellow]GPU utilisation not read:[/] {}", usage.error), soft_wrap=True)
        if usage.hint:
            console.print(markup("  [dim]hint:[/] {}", usage.hint), soft_wrap=True)
    if status.missing:
        _print_missing(status)
    unhealthy = status.unhealthy()
    if unhealthy:
        console.print(
            markup(
                "[bold red]{} unhealthy node(s)[/] (Application Health: unhealthy or unknown)", len(unhealthy)
            )
        )
        print_unhealthy(status)
        for note in diagnosis_notes(status):
            console.print(note, soft_wrap=True)
    if status.elastic is not None:
        _print_elastic(status)
    _print_cost(status)


def _gpu_usage_text(status: ClusterStatus, pool: str, island: int) -> str:
    """`; GPUs 87% busy (last hour)` from the metrics workspace; `; no GPU metrics (last hour)` when it
    answered without this island (off all hour, or its nodes send nothing); nothing without monitoring."""
    usage = status.gpu_usage
    if usage is None or usage.error:
        return ""
    percent = usage.percent(pool, island)
    if percent is None:
        return f"; no GPU metrics (last {usage.window})"
    return f"; GPUs {percent:.0f}% busy (last {usage.window})"


def _print_cost(status: ClusterStatus) -> None:
    """The cost per hour now: the running VMs, and apart from them the other resources the stack builds,
    which bill while they exist whatever the nodes do (catalogue prices; usage-based charges left out)."""
    from ..cost import money, usage_text
    from ..render import console, markup

    console.print(
        markup(
            "running now: [bold]${:,.2f}/h[/] (compute ${:,.2f}/h for the running VMs + other resources "
            "${:,.2f}/h; catalogue pay-as-you-go prices, usage-based charges not included)",
            status.total_cost_per_hour(),
            status.cost_per_hour(),
            status.resources_cost_per_hour(),
        ),
        soft_wrap=True,
    )
    for item in status.resources:
        if item.price.unit == "included":
            continue  # billed on another line (a FileStorage account: its share)
        hourly = f"{money(item.usd_per_hour)}/h" if item.price.unit != "usage" else "usage-based only"
        if item.rate is not None and item.price.unit not in ("hour",):
            hourly += f" ({money(item.rate)}/{item.price.unit})"
        usage = usage_text(item)
        estimate = " (estimate)" if item.price.estimate else ""
        console.print(
            markup("  {}{}: {}{}", item.item.label, estimate, hourly, f"; by use: {usage}" if usage else ""),
            soft_wrap=True,
        )


def _print_elastic(status: ClusterStatus) -> None:
    """Per island: running / deallocated by the elastic policy / starting, since when; cost now vs all on."""
    from ..render import stdout

    elastic = status.elastic
    assert elastic is not None
    stdout.print(
        f"elastic: idle {elastic.idle_minutes} min, {elastic.keep_warm_islands} island(s) per pool kept warm "
        f"(why and since: {elastic.state_source})",
        markup=False,
        soft_wrap=True,
    )
    for island in elastic.islands:
        words = [f"  {island.key} ({island.scale_set}): {island.state}"]
        if island.state == "partly deallocated":
            words.append(f"{island.running} of {island.capacity} running")
        if island.by == "elastic":
            words.append("by the elastic policy")
        elif island.by:
            words.append(island.by)
        if island.since:
            words.append(f"since {island.since}")
        if island.reason:
            words.append(f"({island.reason})")
        if island.last_error and island.backoff_until:
            words.append(f"last start refused: {island.last_error.get('code')}")
        if island.keep_warm:
            words.append("kept warm")
        stdout.print(" ".join(words), markup=False, soft_wrap=True)
    stdout.print(
        f"  compute now ${elastic.cost_per_hour_usd:,.2f}/h; "
        f"with everything on ${elastic.all_on_cost_per_hour_usd:,.2f}/h (the other resources bill the same "
        "either way)",
        markup=False,
    )


def _print_missing(status: ClusterStatus) -> None:
    """Each island the spec has and Azure does not, by name, then what to do (once)."""
    from ..render import console, markup

    for island in status.missing:
        console.print(markup("[bold red]missing[/] island {}: no scale set in Azure", island.describe()))
    console.print(markup("  [dim]hint:[/] {}", missing_hint(status.stack)), soft_wrap=True)


def rack_lines(status: ClusterStatus) -> list[Any]:
    """Per GB pool island, its NVL72 racks (Slurm blocks): 'racks of pool gb island 0: gb-i0-r0 up (18/18),
    gb-i0-r1 partial (12 up, 6 off of 18)'. Nothing for clusters without racks."""
    from ..render import markup

    lines: list[str] = []
    keys = sorted({(rack.pool, rack.island) for rack in status.racks})
    for pool, island in keys:
        racks = [rack for rack in status.racks if (rack.pool, rack.island) == (pool, island)]
        counts = {
            state: sum(r.state == state for r in racks)
            for state in ("up", "partial", "starting", "powered off")
        }
        summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        lines.append(
            markup(
                "racks of pool {} island {} ({}): {}",
                pool,
                island,
                summary,
                "; ".join(r.describe() for r in racks),
            )
        )
    return lines
