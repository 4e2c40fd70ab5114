"""How `azcluster test` prints: one row per island, then why each island that is not ok is not."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .fabrictest import TestReport

_STYLE = {"ok": "green", "far-below": "red", "failed": "red", "skipped": "yellow", "measured": "cyan"}
_RIGHT = ("nodes", "busbw GB/s", "expected")


def print_report(report: TestReport) -> None:
    """A table (island, size, tested/spec nodes, job, peak bus bandwidth, expected, verdict), the reasons
    of the islands that are not ok, and where the expected figures come from."""
    from rich.table import Table

    from ..render import markup, stdout

    table = Table(title=f"{report.stack}: all-reduce per InfiniBand island", title_justify="left")
    for column in ("island", "size", "nodes", "job", "busbw GB/s", "expected", "verdict"):
        table.add_column(column, justify="right" if column in _RIGHT else "left")
    for r in report.islands:
        style = _STYLE.get(r.verdict, "white")
        table.add_row(
            r.plan.key,
            r.plan.size.name,
            f"{r.tested_nodes}/{r.plan.nodes}",
            r.job_id or "-",
            f"{r.peak_busbw:.1f}" if r.peak_busbw is not None else "-",
            f"{r.expected:.0f}" if r.expected is not None else "-",
            markup(f"[{style}]{{}}[/]", r.verdict),
        )
    stdout.print(table)
    for r in report.islands:
        if r.reason and r.verdict != "ok":
            stdout.print(f"  {r.plan.key}: {r.reason}", soft_wrap=True)
    for source in sorted({r.plan.expectation.source for r in report.islands if r.plan.expectation}):
        stdout.print(markup("  [dim]expected figures: {}[/]", source), soft_wrap=True)
