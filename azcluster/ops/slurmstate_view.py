"""How `status` shows Slurm's view of the nodes: a table cell per node and a few plain lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .model import SlurmNode, SlurmView


def slurm_cell(node: SlurmNode | None) -> Any:
    """The status table's slurm cell: the state (drained and down in red) and reason; '-' when the VM is
    not a Slurm node (not registered yet, or its slurmd not started)."""
    from ..render import markup

    if node is None:
        return "-"
    if node.base_state.startswith(("drain", "down", "fail")) or "*" in node.state:
        return markup("[bold red]{}[/]", node.describe())
    return node.describe()


def slurm_lines(view: SlurmView | None) -> Sequence[str]:
    """Plain lines for the human status: counts by state, Slurm nodes without a VM, or why it is unread."""
    if view is None:
        return []
    if view.error:
        return [f"slurm: not read ({view.error})"]
    states = ", ".join(f"{count} {state}" for state, count in view.counts().items()) or "no nodes registered"
    lines = [f"slurm: {states}"]
    lines += [f"  {node.name}: {node.describe()} (no VM in Azure)" for node in view.unmatched]
    return lines
