"""How `stop` and `start` print each island's outcome, with the hint for a failed one."""

from __future__ import annotations

from .power import OperationReport


def print_operation(report: OperationReport) -> None:
    from ..render import console

    verb = {"stop": "deallocated", "start": "started"}[report.action]
    for outcome in report.islands:
        where = f"{outcome.pool}/{outcome.island} ({outcome.scale_set})"
        if outcome.ok:
            console.print(f"[green]{verb}[/] {where} in {outcome.seconds:.0f}s")
        else:
            console.print(f"[bold red]failed[/] {where}: {outcome.code}: {outcome.message}")
            if outcome.hint:
                console.print(f"  [dim]hint:[/] {outcome.hint}")
    failed = sum(not outcome.ok for outcome in report.islands)
    if failed:
        console.print(
            f"[bold red]{failed} of {len(report.islands)} island(s) failed;[/] the others stay {verb}"
        )
