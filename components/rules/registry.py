"""The one registry of rules: `@rule(id, severity, name, title)` adds a check function, `check` runs them all.

A check takes the `ClusterSpec` and yields `(path, message, hint)` triples; the registry turns them into
`Finding`s with the rule's id and severity, drops suppressed ids and sorts the result.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..findings import Finding, Severity, sort_findings
from ..spec import ClusterSpec

Problem = tuple[str, str, str]
"""What a rule yields: (YAML path, message naming the offending value, hint saying what to do)."""
RuleCheck = Callable[[ClusterSpec], Iterable[Problem]]


@dataclass(frozen=True)
class Rule:
    """One registered rule: a stable id, a fixed severity, a kebab-case name and a one-line title."""

    id: str
    severity: Severity
    name: str
    title: str
    check: RuleCheck

    @property
    def doc(self) -> str:
        """Why the rule exists and where its limit comes from (the check function's docstring)."""
        return inspect.cleandoc(self.check.__doc__ or "")

    def run(self, spec: ClusterSpec) -> list[Finding]:
        return [
            Finding(self.id, self.severity, path, message, hint) for path, message, hint in self.check(spec)
        ]

    def to_json(self) -> dict[str, str]:
        """The rule as a CLI listing shows it (no docstring)."""
        return {"id": self.id, "severity": self.severity, "name": self.name, "title": self.title}


RULES: dict[str, Rule] = {}
"""Every rule by id, in id order once the package has imported its domains (`sort_by_id`)."""


def rule(rule_id: str, severity: Severity, name: str, title: str) -> Callable[[RuleCheck], RuleCheck]:
    """Register a rule function under `rule_id`. Ids and names must be unique."""

    def register(check: RuleCheck) -> RuleCheck:
        if rule_id in RULES:
            raise ValueError(f"rule id {rule_id} registered twice")
        if any(existing.name == name for existing in RULES.values()):
            raise ValueError(f"rule name {name} registered twice")
        RULES[rule_id] = Rule(rule_id, severity, name, title, check)
        return check

    return register


def sort_by_id() -> None:
    """Put RULES in id order, whatever order the domain modules were imported in."""
    ordered = sorted(RULES.items())
    RULES.clear()
    RULES.update(ordered)


def check(spec: ClusterSpec, suppress: Iterable[str] = ()) -> list[Finding]:
    """Run every rule over `spec`; drop the ids in `suppress` and in `spec.suppress`; sorted findings.

    Ids are matched without regard to case or surrounding blanks. AZC000 (schema errors) is not a rule
    here and cannot be suppressed.
    """
    silenced = {normalise_id(ident) for ident in (*suppress, *spec.suppress)}
    findings = [finding for r in RULES.values() if r.id not in silenced for finding in r.run(spec)]
    return sort_findings(findings)


def normalise_id(ident: str) -> str:
    return str(ident).strip().upper()
