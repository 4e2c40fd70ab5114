"""How `status` prints its unhealthy nodes: each one's failing checks, and what the diagnosis left out."""

from __future__ import annotations

from typing import Any

from .model import ClusterStatus, Node


def print_unhealthy(status: ClusterStatus) -> None:
    """The "unhealthy nodes" section: node, island, IP, health, then one line per failing check.

    Lines, not a table: check details are long sentences that a narrow table would chop into fragments,
    and one check per line is what people grep and paste into a ticket.
    """
    from ..render import markup, stdout

    rows = [
        (node, (node.computer_name or node.name, f"{island.pool}/{island.island} ({island.scale_set})"))
        for island, node in status.unhealthy()
    ]
    widths = [max(len(row[1][i]) for row in rows) for i in (0, 1)]
    enabled = bool(status.diagnosis and status.diagnosis.enabled)
    stdout.print(
        markup("[bold]unhealthy nodes[/] (node, island, private IP, health; then the failing check)")
    )
    for node, (name, where) in rows:
        stdout.print(
            markup(
                "  {:<" + str(widths[0]) + "}  {:<" + str(widths[1]) + "}  {:<15} [bold red]{}[/]",
                name,
                where,
                node.private_ip or "-",
                node.health,
            ),
            soft_wrap=True,
        )
        for line in _failing_lines(node, enabled):
            stdout.print(markup("      ") + line, soft_wrap=True)


def _failing_lines(node: Node, diagnosed: bool) -> list[Any]:
    from ..render import markup, styled

    diagnosis = node.diagnosis
    if diagnosis is None:
        lines = [styled(node.health_detail)] if node.health_detail else []
        return lines + ([] if diagnosed else [markup("[dim]failing check not read (--no-diagnose)[/]")])
    if diagnosis.state == "read" and diagnosis.failing:
        lines = [markup("[bold]{}[/]: {}", name, detail) for name, detail in diagnosis.failing]
        return lines + ([markup("[dim](checked {})[/]", diagnosis.time)] if diagnosis.time else [])
    style = "dim" if diagnosis.state == "skipped" else "yellow"
    return [styled(diagnosis.detail, style)]


def diagnosis_notes(status: ClusterStatus) -> list[Any]:
    """Say what the report left out: nodes over the limit, diagnosis turned off, or not allowed (once)."""
    from ..render import markup

    run = status.diagnosis
    if run is None:
        return []
    if not run.enabled:
        return [markup("[dim]failing checks were not read (--no-diagnose)[/]")]
    notes = []
    if run.denied:
        where = f"{run.denied['node']} ({run.denied['code']})"
        held = f"; {run.denied_nodes} more node(s) not asked" if run.denied_nodes else ""
        notes.append(
            markup(
                "[yellow]diagnosis stopped: Azure refused Run Command on {}[/]{}. Reading the failing "
                "check on the nodes needs Virtual Machine Contributor (Microsoft.Compute/virtualMachines/"
                "runCommand/action) on resource group {}; or pass --no-diagnose",
                where,
                held,
                status.resource_group,
            )
        )
    if run.over_limit:
        notes.append(
            markup(
                "[yellow]{} more unhealthy node(s) not diagnosed[/]: at most {} per run "
                "(Run Command is slow); raise it with --diagnose-limit",
                run.over_limit,
                run.limit,
            )
        )
    return notes
