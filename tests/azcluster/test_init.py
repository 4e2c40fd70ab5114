"""`azcluster init`: a commented stack file that validates as written, never overwriting by accident."""

from __future__ import annotations

import json

import pytest

from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 me@laptop"


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    stacks = tmp_path / "stacks"
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(stacks))
    return home


def test_init_writes_a_commented_stack_that_validates(home, tmp_path):
    (home / ".ssh" / "id_ed25519.pub").write_text(KEY + "\n")
    result = run_cli(
        "init", "lab", "--size", "Standard_ND96isr_H100_v5", "--nodes", "4", "--lustre-tib", "16"
    )
    assert result.exit_code == 0, result.stderr
    text = (tmp_path / "stacks" / "Pulumi.lab.yaml").read_text()
    assert KEY in text
    assert "# Azure Managed Lustre. sku:" in text and "capacity_tib: 16" in text
    assert "AMLFS-Durable-Premium-500" in text  # fastest SKU whose range and step take 16 TiB
    check = run_cli("validate", "lab", "--json")
    assert check.exit_code == 0, check.stdout
    assert json.loads(check.stdout)["ok"] is True


def test_init_refuses_to_overwrite_without_force(home, tmp_path):
    (home / ".ssh" / "id_rsa.pub").write_text(KEY.replace("ssh-ed25519", "ssh-ed25519") + "\n")
    assert run_cli("init", "lab").exit_code == 0
    path = tmp_path / "stacks" / "Pulumi.lab.yaml"
    path.write_text(path.read_text() + "# my edit\n")
    again = run_cli("init", "lab")
    assert again.exit_code == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert path.read_text().endswith("# my edit\n")
    assert run_cli("init", "lab", "--force").exit_code == 0
    assert not path.read_text().endswith("# my edit\n")


def test_init_rejects_impossible_lustre_size(home, tmp_path):
    result = run_cli("init", "lab", "--lustre-tib", "7")
    assert result.exit_code == 2 and "no Managed Lustre SKU takes 7 TiB" in result.stderr
    assert not (tmp_path / "stacks" / "Pulumi.lab.yaml").exists()


def test_init_rejects_unknown_size_before_writing(home, tmp_path):
    (home / ".ssh" / "id_ed25519.pub").write_text(KEY + "\n")
    result = run_cli("init", "lab", "--size", "Standard_ND96isr_H100")
    assert result.exit_code == 1 and "not written" in result.stderr
    # The refusal is a finding, as `validate` shows it: id, file:line, YAML path, and the option to change.
    assert "error AZC007" in result.stdout and "Pulumi.lab.yaml:" in result.stdout
    assert "azcluster:cluster.pools[0].size" in result.stdout
    assert "Standard_ND96isr_H100_v5" in result.stdout  # the closest real size is suggested
    assert "change --size" in result.stderr
    assert not (tmp_path / "stacks" / "Pulumi.lab.yaml").exists()


def test_init_offers_elastic_on_and_no_elastic_leaves_it_out(home, tmp_path):
    (home / ".ssh" / "id_ed25519.pub").write_text(KEY + "\n")
    from ruamel.yaml import YAML

    from azcluster.components.spec import parse_cluster

    path = tmp_path / "stacks" / "Pulumi.lab.yaml"
    assert run_cli("init", "lab", "--size", "Standard_ND96isr_H100_v5").exit_code == 0
    spec = parse_cluster(YAML(typ="safe").load(path.read_text())["config"])
    assert spec.elastic_enabled and spec.elastic.idle_minutes == 60
    check = run_cli("validate", "lab", "--json")
    assert check.exit_code == 0 and json.loads(check.stdout)["findings"] == []
    assert run_cli("init", "lab", "--no-elastic", "--force").exit_code == 0
    assert parse_cluster(YAML(typ="safe").load(path.read_text())["config"]).elastic is None


def test_init_writes_monitoring_on_and_no_monitoring_leaves_it_out(home, tmp_path):
    """New stacks get metrics, dashboards and alerts; a stack without the section stays as it was (off)."""
    (home / ".ssh" / "id_ed25519.pub").write_text(KEY + "\n")
    from ruamel.yaml import YAML

    from azcluster.components.spec import parse_cluster

    path = tmp_path / "stacks" / "Pulumi.lab.yaml"
    assert run_cli("init", "lab", "--size", "Standard_ND96isr_H100_v5").exit_code == 0
    spec = parse_cluster(YAML(typ="safe").load(path.read_text())["config"])
    assert spec.monitoring.enabled and spec.monitoring.scrape_interval_seconds == 30
    assert spec.monitoring.existing_workspace_id is None and spec.monitoring.existing_grafana_id is None
    check = run_cli("validate", "lab", "--json")
    assert check.exit_code == 0 and json.loads(check.stdout)["findings"] == []
    assert run_cli("init", "lab", "--no-monitoring", "--force").exit_code == 0
    text = path.read_text()
    assert "# monitoring: {enabled: true}" in text
    assert parse_cluster(YAML(typ="safe").load(text)["config"]).monitoring.enabled is False
