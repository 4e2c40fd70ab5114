"""How `cost` reads on a terminal: one row per user, account or partition, then storage apart."""

from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

from .usage import Report, cents


def _hours(value: Fraction) -> str:
    return f"{float(value):,.2f}"


def _usd(value: Fraction) -> str:
    return f"${cents(value):,.2f}"


def print_report(stack: str, report: Report) -> None:
    from rich.table import Table

    from ..render import console, markup, stdout

    def day(epoch: int) -> str:
        return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    table = Table(
        title=f"{stack}: compute by {report.by}, {day(report.since)} to {day(report.now)}",
        title_justify="left",
    )
    for column in (report.by, "jobs", "GPU-hours", "node-hours", "cost"):
        table.add_column(column, justify="left" if column == report.by else "right")
    for line in report.lines:
        cost = _usd(line.usd)
        if line.unpriced_hours:
            cost += f" (+{_hours(line.unpriced_hours)} node-h unpriced)"
        table.add_row(line.key, str(line.jobs), _hours(line.gpu_hours), _hours(line.node_hours), cost)
    table.add_row(
        "total",
        str(sum(line.jobs for line in report.lines)),
        _hours(sum((line.gpu_hours for line in report.lines), Fraction(0))),
        _hours(sum((line.node_hours for line in report.lines), Fraction(0))),
        _usd(report.compute_usd),
        style="bold",
    )
    stdout.print(table)
    if not report.lines:
        console.print("no job ran in this window")
    if report.storage:
        console.print(
            markup("storage over the window ({} hours), billed whatever runs:", _hours(report.hours)),
            soft_wrap=True,
        )
        for label, usd in report.storage:
            console.print(markup("  {}: {}", label, _usd(usd)), soft_wrap=True)
    if report.unpriced_partitions:
        console.print(
            markup(
                "[yellow]unpriced[/]: partition {} is no pool of this stack now (renamed or removed)",
                ", ".join(report.unpriced_partitions),
            ),
            soft_wrap=True,
        )
    console.print(
        "priced at the catalogue's pay-as-you-go rate per node-hour, each job by its share of its nodes "
        "(GPUs or CPUs, the larger); reservations, Spot and discounts are not applied",
        soft_wrap=True,
    )
