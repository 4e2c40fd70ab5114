"""Everything azcluster shows people: rich tables on the terminal, JSON on stdout, progress on stderr.

With `--json`, stdout carries exactly one JSON document and nothing else, so CI can pipe it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from azcluster.components.findings import Finding

console = Console(stderr=True, highlight=False)
"""Progress, logs and errors: stderr, so stdout stays clean for JSON and reports."""

stdout = Console(highlight=False)
"""Human reports (tables, trees)."""

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def error(message: str, hint: str = "") -> None:
    console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    if hint:
        console.print(f"[dim]hint:[/] {hint}", soft_wrap=True)


def findings_table(findings: list[Finding], source: str = "") -> Table:
    """Findings as a table; the location column reads `file:line path` so editors can jump there."""
    table = Table(show_header=True, header_style="bold", expand=False, show_lines=False)
    table.add_column("id", no_wrap=True)
    table.add_column("level", no_wrap=True)
    table.add_column("where")
    table.add_column("what, and what to do")
    for finding in findings:
        where = f"{source}:{finding.line}\n{finding.path}" if source and finding.line else finding.path
        text = finding.message + (f"\n[dim]hint: {finding.hint}[/]" if finding.hint else "")
        style = SEVERITY_STYLE[finding.severity]
        table.add_row(finding.id, f"[{style}]{finding.severity}[/]", where, text)
    return table


def print_findings(findings: list[Finding], source: str = "") -> None:
    if findings:
        stdout.print(findings_table(findings, source))
