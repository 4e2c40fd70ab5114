"""Findings: what validation says about a spec, in the shape the CLI and CI read.

Every finding has a stable id (AZC001...), a severity, the YAML path it is about, a message and a hint.
Schema errors (wrong types, unknown keys) are findings too, with id AZC000, so `validate --json` gives CI
one shape for every problem. AZC000 cannot be suppressed: a spec that does not parse cannot be built.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]
SCHEMA_ERROR_ID = "AZC000"
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    path: str
    message: str
    hint: str = ""
    line: int | None = None
    file: str | None = None
    """The file the line is in when it is not the stack file (a team file the stack names)."""

    def to_json(self) -> dict[str, str]:
        """The contract's shape: id, severity, path, message, hint (line and file: for people only)."""
        data = asdict(self)
        data.pop("line")
        data.pop("file")
        return data


def has_errors(findings: list[Finding]) -> bool:
    return any(finding.severity == "error" for finding in findings)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.id, f.path))
