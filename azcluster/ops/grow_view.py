"""How `grow` reads on a terminal: requested vs obtained per island, and each refusal explained."""

from __future__ import annotations

from .grow import GrowReport


def print_growth(report: GrowReport) -> None:
    from rich.table import Table

    from ..render import console, markup, stdout

    table = Table(title=f"grow {report.stack}", title_justify="left")
    for column in ("island", "scale set", "zone", "size", "obtained", "Azure said"):
        table.add_column(column)
    for island in report.islands:
        style = "green" if island.complete else "yellow" if island.kept else "red"
        table.add_row(
            f"{island.pool}/{island.island}",
            island.scale_set,
            island.zone or "-",
            island.size or "-",
            markup("[" + style + "]{}[/]", island.summary()),
            island.code or "-",
        )
    stdout.print(table)
    for island in report.islands:
        explained = island.explanation
        if explained is None:
            continue
        console.print(
            markup("[bold]{}/{}[/]: {}", island.pool, island.island, explained.happened), soft_wrap=True
        )
        console.print(markup("  azcluster: {}", explained.did), soft_wrap=True)
        for step in explained.todo:
            console.print(markup("  you can: {}", step.replace("STACK", report.stack)), soft_wrap=True)
    total = sum(i.requested for i in report.islands)
    got = sum(i.obtained for i in report.islands)
    if report.complete:
        console.print(markup("[green]every island is whole[/]: {} of {} nodes", got, total))
    elif report.ok:
        console.print(
            markup(
                "[yellow]{} of {} nodes[/]: every island has what its pool calls worth keeping; "
                "`azcluster grow {}` fills the gap later",
                got,
                total,
                report.stack,
            ),
            soft_wrap=True,
        )
    else:
        console.print(markup("[bold red]{} of {} nodes[/]: some islands are below their minimum", got, total))
