"""The spec's own `suppress:` list (AZC053): a typo there silences nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..findings import SCHEMA_ERROR_ID
from ..spec import ClusterSpec
from .common import at, did_you_mean, preview
from .registry import RULES, Problem, normalise_id, rule


@rule("AZC053", "warning", "unknown-suppressed-id", "`suppress` names an id that is not a rule")
def unknown_suppressed_id(spec: ClusterSpec) -> Iterator[Problem]:
    """A typo in `suppress` silences nothing, and the finding it meant to silence stays; AZC000 (schema
    errors) cannot be suppressed at all.
    """
    for index, raw in enumerate(spec.suppress):
        ident = normalise_id(raw)
        path = at(f"suppress[{index}]")
        if ident == SCHEMA_ERROR_ID:
            yield (
                path,
                f"{raw!r} is the schema-error id, which cannot be suppressed: a spec that does not parse "
                "cannot be built.",
                "Remove it and fix the schema error instead.",
            )
        elif ident not in RULES:
            padded = re.fullmatch(r"AZC0*(\d{1,3})", ident)
            meant = f"AZC{int(padded.group(1)):03d}" if padded else ""
            suggestion = f"Did you mean {meant}? " if meant in RULES else did_you_mean(ident, RULES)
            yield (
                path,
                f"suppress names {preview(raw, 40)!r}, which is not a rule id.",
                f"{suggestion}Rule ids run from {min(RULES)} to {max(RULES)} (rules.RULES).",
            )
