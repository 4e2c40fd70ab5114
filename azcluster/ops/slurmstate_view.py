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


def slurm_lines(view: SlurmView | None) -> Sequence[Any]:
    """Lines for the human status: counts by state, Slurm nodes without a VM, or why it is unread; then,
    in red, why MPI jobs will fail when the cluster's Slurm has no PMIx plugin."""
    if view is None:
        return []
    if view.error:
        lines: list[Any] = [f"slurm: not read ({view.error})"]
    else:
        states = ", ".join(f"{n} {state}" for state, n in view.counts().items()) or "no nodes registered"
        lines = [f"slurm: {states}"]
        lines += [f"  {node.name}: {node.describe()} (no VM in Azure)" for node in view.unmatched]
        if view.top_users:
            top = ", ".join(
                f"{u.user} {u.gpus} GPU{'s' if u.gpus != 1 else ''} on {u.nodes} "
                f"node{'s' if u.nodes != 1 else ''} ({u.jobs} "
                f"job{'s' if u.jobs != 1 else ''})"
                for u in view.top_users
            )
            lines.append(f"slurm: top users now: {top}")
    return lines + mpi_lines(view)


def mpi_lines(view: SlurmView) -> list[Any]:
    """'slurm: MPI jobs will fail: ...' in red when the login node's record says there is no PMIx; a
    plain note when the record could not be read (nothing when it says PMIx is there)."""
    from ..render import markup

    if view.mpi_problem:
        return [markup("[bold red]slurm: MPI jobs will fail[/]: {}", view.mpi_problem)]
    if view.mpi is None and view.mpi_error:
        return [markup("slurm: MPI support not read ({})", view.mpi_error)]
    return []
