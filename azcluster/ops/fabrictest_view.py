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

    racks = any(r.kind != "island" for r in report.islands)
    title = "all-reduce per InfiniBand island" + (" and NVLink rack" if racks else "")
    table = Table(title=f"{report.stack}: {title}", title_justify="left")
    columns = ("island", *(("rack",) if racks else ()), "size", "nodes", "job", "busbw GB/s", "expected")
    for column in (*columns, "verdict"):
        table.add_column(column, justify="right" if column in _RIGHT else "left")
    for r in report.islands:
        style = _STYLE.get(r.verdict, "white")
        table.add_row(
            r.key,
            *((r.hosts or ("across" if r.kind == "across racks" else "-"),) if racks else ()),
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
            stdout.print(f"  {r.name}: {r.reason}", soft_wrap=True)
    sources = {r.to_json()["expected_source"] for r in report.islands if r.plan.expectation}
    for source in sorted(s for s in sources if s):
        stdout.print(markup("  [dim]expected figures: {}[/]", source), soft_wrap=True)
