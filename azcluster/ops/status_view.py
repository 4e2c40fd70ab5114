"""How `status` prints a cluster for people: a table per island, the login node, the running cost."""

from __future__ import annotations

from .cluster import missing_hint
from .diagnose_view import diagnosis_notes, print_unhealthy
from .status import ClusterStatus


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
        title = (
            f"pool {island.pool} island {island.island}: {island.scale_set} ({island.size}, "
            f"capacity {island.capacity}, {island.provisioning_state or 'unknown'})"
        )
        table = Table(title=title)
        for column in ("node", "private IP", "power", "health", "detail"):
            table.add_column(column)
        for node in island.nodes:
            health = node.health or "-"
            if node.health in ("unhealthy", "unknown"):
                health = markup("[bold red]{}[/]", health)
            table.add_row(
                node.computer_name or node.name,
                node.private_ip or "-",
                node.power_state or "?",
                health,
                node.health_detail or "",
            )
        stdout.print(table)
        states = (
            ", ".join(f"{count} {state}" for state, count in island.power_states.items()) or "no instances"
        )
        stdout.print(f"  {states}; ${island.cost_per_hour() or 0:.2f}/h" + ("; spot" if island.spot else ""))
    if status.login:
        login = status.login
        stdout.print(
            f"login node {login.name} ({login.size}): {login.power_state or '?'}, "
            f"{login.private_ip or 'no IP'}"
        )
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
    console.print(
        markup("running now: [bold]${:.2f}/h[/] (catalogue pay-as-you-go prices)", status.cost_per_hour())
    )


def _print_missing(status: ClusterStatus) -> None:
    """Each island the spec has and Azure does not, by name, then what to do (once)."""
    from ..render import console, markup

    for island in status.missing:
        console.print(markup("[bold red]missing[/] island {}: no scale set in Azure", island.describe()))
    console.print(markup("  [dim]hint:[/] {}", missing_hint(status.stack)), soft_wrap=True)
