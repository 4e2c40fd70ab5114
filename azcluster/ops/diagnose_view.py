"""How `status` prints its unhealthy nodes: each one's failing checks, and what the diagnosis left out."""

from __future__ import annotations

from .nodes import Node
from .status import ClusterStatus


def print_unhealthy(status: ClusterStatus) -> None:
    """The "unhealthy nodes" section: node, island, IP, health, then one line per failing check.

    Lines, not a table: check details are long sentences that a narrow table would chop into fragments,
    and one check per line is what people grep and paste into a ticket.
    """
    from rich.markup import escape

    from ..render import stdout

    rows = [
        (node, (node.computer_name or node.name, f"{island.pool}/{island.island} ({island.scale_set})"))
        for island, node in status.unhealthy()
    ]
    widths = [max(len(row[1][i]) for row in rows) for i in (0, 1)]
    enabled = bool(status.diagnosis and status.diagnosis.enabled)
    stdout.print("[bold]unhealthy nodes[/] (node, island, private IP, health; then the failing check)")
    for node, (name, where) in rows:
        stdout.print(
            f"  {escape(name):<{widths[0]}}  {escape(where):<{widths[1]}}  {node.private_ip or '-':<15} "
            f"[bold red]{node.health}[/]",
            soft_wrap=True,
        )
        for line in _failing_lines(node, enabled):
            stdout.print(f"      {line}", soft_wrap=True)


def _failing_lines(node: Node, diagnosed: bool) -> list[str]:
    from rich.markup import escape

    diagnosis = node.diagnosis
    if diagnosis is None:
        lines = [escape(node.health_detail)] if node.health_detail else []
        return lines + ([] if diagnosed else ["[dim]failing check not read (--no-diagnose)[/]"])
    if diagnosis.state == "read" and diagnosis.failing:
        lines = [f"[bold]{escape(name)}[/]: {escape(detail)}" for name, detail in diagnosis.failing]
        return lines + ([f"[dim](checked {escape(diagnosis.time)})[/]"] if diagnosis.time else [])
    style = "dim" if diagnosis.state == "skipped" else "yellow"
    return [f"[{style}]{escape(diagnosis.detail)}[/]"]


def diagnosis_notes(status: ClusterStatus) -> list[str]:
    """Say what the report left out: nodes over the limit, diagnosis turned off, or not allowed (once)."""
    from rich.markup import escape

    run = status.diagnosis
    if run is None:
        return []
    if not run.enabled:
        return ["[dim]failing checks were not read (--no-diagnose)[/]"]
    notes = []
    if run.denied:
        where = escape(f"{run.denied['node']} ({run.denied['code']})")
        held = f"; {run.denied_nodes} more node(s) not asked" if run.denied_nodes else ""
        notes.append(
            f"[yellow]diagnosis stopped: Azure refused Run Command on {where}[/]{held}. Reading the failing "
            "check on the nodes needs Virtual Machine Contributor (Microsoft.Compute/virtualMachines/"
            f"runCommand/action) on resource group {escape(status.resource_group)}; or pass --no-diagnose"
        )
    if run.over_limit:
        notes.append(
            f"[yellow]{run.over_limit} more unhealthy node(s) not diagnosed[/]: at most {run.limit} per run "
            "(Run Command is slow); raise it with --diagnose-limit"
        )
    return notes
