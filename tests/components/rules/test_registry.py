"""The registry and `check` as a whole: every rule has cases, the baseline and the shipped stacks are clean,
suppression, ordering, ids, and the id guide in rules/__init__.py."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from azcluster.components import rules
from azcluster.components.findings import SCHEMA_ERROR_ID, sort_findings
from azcluster.components.spec import CLUSTER_CONFIG_KEY, parse_cluster
from tests.checkout import tracked

from .cases import build, ids

REPO = Path(__file__).resolve().parents[3]


def _test_modules() -> dict[str, object]:
    """This package's test modules by name: each domain's FIRES and QUIET tables live in one."""
    found = pkgutil.iter_modules([str(Path(__file__).parent)])
    return {
        m.name: importlib.import_module(f"{__package__}.{m.name}")
        for m in found
        if m.name.startswith("test_")
    }


def _tables(name: str) -> list[tuple]:
    """FIRES or QUIET of every domain's test module."""
    return [case for module in _test_modules().values() for case in getattr(module, name, [])]


def test_every_rule_has_a_case_that_fires_and_one_that_does_not() -> None:
    fired = {rule_id for rule_id, _, _ in _tables("FIRES")}
    quiet = {rule_id for rule_id, _ in _tables("QUIET")} | {
        "AZC003",
        "AZC045",
    }  # the baseline is their quiet case
    assert fired == set(rules.RULES)
    assert quiet == set(rules.RULES)


def test_each_rule_is_tested_beside_its_domain() -> None:
    """A case for an images rule sits in test_images.py, as the rule sits in rules/images.py."""
    for name, module in _test_modules().items():
        for rule_id, *_ in [*getattr(module, "FIRES", []), *getattr(module, "QUIET", [])]:
            domain = rules.RULES[rule_id].check.__module__.rsplit(".", 1)[1]
            assert name == f"test_{domain}", (rule_id, name)


def test_the_guide_lists_every_domain_and_free_ids() -> None:
    """rules/__init__.py tells a newcomer where rules live and which id to take: keep it true."""
    guide = rules.__doc__ or ""
    domains = {r.check.__module__.rsplit(".", 1)[1] for r in rules.RULES.values()}
    assert domains == {d.__name__.rsplit(".", 1)[1] for d in rules.DOMAINS}
    for domain in domains:
        assert re.search(rf"^    {domain}\.py +AZC\d{{3}}", guide, re.MULTILINE), domain
    [next_free] = [line for line in guide.splitlines() if "Next free:" in line]
    free = re.findall(r"AZC\d{3}", next_free)
    assert free and not set(free) & set(rules.RULES)


# --------------------------------------------------------------------------------------------------------
# The baseline and the shipped stacks
# --------------------------------------------------------------------------------------------------------


def test_baseline_has_no_findings() -> None:
    assert rules.check(build()) == []


@pytest.mark.parametrize("stack", tracked("stacks", "Pulumi.*.yaml"), ids=lambda p: p.name)
def test_shipped_stacks_have_no_errors(stack: Path) -> None:
    config = YAML(typ="safe").load(stack.read_text(encoding="utf-8"))["config"]
    if not isinstance(config.get(CLUSTER_CONFIG_KEY), dict):
        pytest.skip("not a cluster stack")
    findings = rules.check(parse_cluster(config, stack.parent))
    assert [f for f in findings if f.severity == "error"] == []


# --------------------------------------------------------------------------------------------------------
# Suppression, ordering, registry
# --------------------------------------------------------------------------------------------------------

NOISY = {"pools.0.size": "Standard_Nope", "network.nat_gateway": False, "pools.0.nodes": 0}


def test_suppress_by_argument() -> None:
    assert {"AZC007", "AZC032", "AZC004"} <= ids(build(NOISY))
    remaining = ids(build(NOISY), suppress=("AZC007", "azc032"))
    assert "AZC007" not in remaining and "AZC032" not in remaining
    assert "AZC004" in remaining


def test_suppress_by_spec() -> None:
    remaining = ids(build({**NOISY, "suppress": ["AZC004", " azc007 "]}))
    assert "AZC004" not in remaining and "AZC007" not in remaining
    assert "AZC032" in remaining


def test_suppress_by_both_combines() -> None:
    remaining = ids(build({**NOISY, "suppress": ["AZC004"]}), suppress=("AZC007", "AZC032"))
    assert remaining.isdisjoint({"AZC004", "AZC007", "AZC032"})


def test_suppressing_the_unknown_id_rule_silences_it() -> None:
    assert ids(build({"suppress": ["AZC999", "AZC053"]})) == set()


def test_findings_are_sorted_errors_first() -> None:
    findings = rules.check(build({**NOISY, "pools.0.spot": True, "network.bastion": False}))
    assert findings == sort_findings(findings)
    severities = [f.severity for f in findings]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)


def test_rule_ids_are_unique_well_formed_and_described() -> None:
    # Ids are taken in ranges (several people add rules at once), so they need not be contiguous.
    assert len(rules.RULES) >= 25
    assert all(re.fullmatch(r"AZC\d{3}", rule_id) for rule_id in rules.RULES)
    assert SCHEMA_ERROR_ID not in rules.RULES
    names = [r.name for r in rules.RULES.values()]
    assert len(set(names)) == len(names)
    for rule_id, rule in rules.RULES.items():
        assert rule.id == rule_id
        assert rule.severity in ("error", "warning", "info")
        assert rule.title and rule.doc, rule_id
        assert rule.to_json() == {
            "id": rule_id,
            "severity": rule.severity,
            "name": rule.name,
            "title": rule.title,
        }


def test_registering_a_used_id_is_refused() -> None:
    with pytest.raises(ValueError, match="AZC001"):
        rules.rule("AZC001", "info", "another-name", "x")(lambda spec: iter(()))
    with pytest.raises(ValueError, match="unknown-region"):
        rules.rule("AZC900", "info", "unknown-region", "x")(lambda spec: iter(()))
    assert "AZC900" not in rules.RULES
