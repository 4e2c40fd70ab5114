"""How `stop` and `start` print each island's outcome, with the hint for a failed one."""

from __future__ import annotations

from .power import OperationReport


def print_operation(report: OperationReport) -> None:
    from ..render import console, markup

    verb = {"stop": "deallocated", "start": "started"}[report.action]
    for outcome in report.islands:
        where = f"{outcome.pool}/{outcome.island} ({outcome.scale_set})"
        if outcome.ok:
            console.print(markup("[green]{}[/] {} in {:.0f}s", verb, where, outcome.seconds))
        else:
            console.print(markup("[bold red]failed[/] {}: {}: {}", where, outcome.code, outcome.message))
            if outcome.hint:
                console.print(markup("  [dim]hint:[/] {}", outcome.hint))
    failed = sum(not outcome.ok for outcome in report.islands)
    if failed:
        console.print(
            markup(
                "[bold red]{} of {} island(s) failed;[/] the others stay {}",
                failed,
                len(report.islands),
                verb,
            )
        )
