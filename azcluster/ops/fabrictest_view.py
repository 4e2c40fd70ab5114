"""How `azcluster test` prints: one row per island, then why each island that is not ok is not."""

from __future__ import annotations

from .fabrictest import TestReport

_STYLE = {"ok": "green", "far-below": "red", "failed": "red", "skipped": "yellow", "measured": "cyan"}


def print_report(report: TestReport) -> None:
    """One line per island: nodes, peak bus bandwidth against the expected figure, the verdict and why."""
    from rich.markup import escape
    from rich.table import Table

    from ..render import stdout

    table = Table(title=f"{report.stack}: all-reduce per InfiniBand island", title_justify="left")
    for column in ("island", "size", "nodes", "job", "busbw GB/s", "expected", "verdict"):
        table.add_column(column, justify="right" if column in ("nodes", "busbw GB/s", "expected") else "left")
    for r in report.islands:
        busbw = f"{r.peak_busbw:.1f}" if r.peak_busbw is not None else "-"
        expected = f"{r.expected:.0f}" if r.expected is not None else "-"
        nodes = f"{r.tested_nodes}/{r.plan.nodes}"
        style = _STYLE.get(r.verdict, "white")
        table.add_row(
            r.plan.key, r.plan.size.name, nodes, r.job_id or "-", busbw, expected, f"[{style}]{r.verdict}[/]"
        )
    stdout.print(table)
    for r in report.islands:
        if r.reason and r.verdict != "ok":
            stdout.print(f"  {escape(r.plan.key)}: {escape(r.reason)}", soft_wrap=True)
    sources = sorted({r.plan.expectation.source for r in report.islands if r.plan.expectation})
    for source in sources:
        stdout.print(f"  [dim]expected figures: {escape(source)}[/]", soft_wrap=True)
