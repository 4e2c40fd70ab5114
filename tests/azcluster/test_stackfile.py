"""Reading stack files: names and paths, unreadable input (exit 2), schema errors as AZC000 findings."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from azcluster import stackfile
from azcluster.errors import EXIT_USAGE, AzclusterError
from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"


def write_stack(tmp_path: Path, body: str, name: str = "t") -> Path:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


VALID = f"""\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: demo
    zone: "1"
    pools:
      - name: gpu
        size: Standard_ND96asr_v4
        nodes: 2
    ssh:
      public_keys: ["{KEY}"]
"""


def test_stack_name_resolves_in_stacks_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(tmp_path))
    write_stack(tmp_path, VALID, name="demo")
    name, path = stackfile.resolve("demo")
    assert (name, path) == ("demo", tmp_path / "Pulumi.demo.yaml")
    assert stackfile.available_stacks() == ["demo"]


def test_path_argument_gives_stack_name_from_file_name(tmp_path):
    path = write_stack(tmp_path, VALID, name="prod")
    loaded = stackfile.load_stack(str(path))
    assert loaded.name == "prod"
    assert loaded.spec is not None and loaded.spec.location == "eastus"


def test_missing_stack_names_the_file_and_lists_stacks(tmp_path, monkeypatch):
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(tmp_path))
    write_stack(tmp_path, VALID, name="alpha")
    with pytest.raises(AzclusterError) as caught:
        stackfile.load_stack("nope")
    assert caught.value.exit_code == EXIT_USAGE
    assert "Pulumi.nope.yaml" in caught.value.message
    assert "alpha" in caught.value.hint


def test_broken_yaml_reports_line(tmp_path):
    path = write_stack(tmp_path, "config:\n  a: [1, 2\n  b: 3\n")
    result = run_cli("validate", str(path))
    assert result.exit_code == 2
    assert "not valid YAML" in result.stderr and f"{path}:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_no_config_mapping_is_usage_error(tmp_path):
    path = write_stack(tmp_path, "hello: world\n")
    result = run_cli("validate", str(path))
    assert result.exit_code == 2
    assert "no `config:` mapping" in result.stderr


def test_typo_in_key_suggests_the_right_key_with_line(tmp_path):
    path = write_stack(tmp_path, VALID.replace("        nodes: 2", "        nodse: 2"))
    loaded = stackfile.load_stack(str(path))
    assert loaded.spec is None
    by_path = {f.path: f for f in loaded.schema_findings}
    typo = by_path["azcluster:cluster.pools[0].nodse"]
    assert typo.id == "AZC000" and "did you mean `nodes`" in typo.hint
    assert typo.line == 9  # the line of `nodse:` in the file
    assert "azcluster:cluster.pools[0].nodes" in by_path  # and the required key is reported missing


def test_wrong_type_and_out_of_range_values(tmp_path):
    path = write_stack(tmp_path, VALID.replace("nodes: 2", "nodes: -3").replace('zone: "1"', "zone: nine"))
    result = run_cli("validate", str(path), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    paths = {f["path"] for f in document["findings"]}
    assert {"azcluster:cluster.pools[0].nodes", "azcluster:cluster.zone"} <= paths
    assert all(set(f) == {"id", "severity", "path", "message", "hint"} for f in document["findings"])


def test_missing_region_points_at_provider_key(tmp_path):
    path = write_stack(tmp_path, VALID.replace("  azure-native:location: eastus\n", ""))
    loaded = stackfile.load_stack(str(path))
    assert [f.path for f in loaded.schema_findings] == ["azure-native:location"]


def test_missing_cluster_key_is_a_finding(tmp_path):
    path = write_stack(tmp_path, "config:\n  azure-native:location: eastus\n")
    loaded = stackfile.load_stack(str(path))
    assert loaded.schema_findings[0].path == "azcluster:cluster"
    assert loaded.schema_findings[0].line == 1


def test_key_file_path_is_read_relative_to_stack(tmp_path):
    (tmp_path / "me.pub").write_text(KEY + "\n")
    path = write_stack(tmp_path, VALID.replace(f'["{KEY}"]', "[me.pub]"))
    loaded = stackfile.load_stack(str(path))
    assert loaded.spec is not None and loaded.spec.ssh.public_keys == [KEY]


def test_unreadable_key_file_is_a_finding_naming_it(tmp_path):
    path = write_stack(tmp_path, VALID.replace(f'["{KEY}"]', "[missing.pub]"))
    loaded = stackfile.load_stack(str(path))
    assert loaded.spec is None
    assert "missing.pub" in loaded.schema_findings[0].message
    assert loaded.schema_findings[0].path == "azcluster:cluster.ssh.public_keys"


def test_line_of_walks_nested_paths(tmp_path):
    path = write_stack(tmp_path, VALID)
    loaded = stackfile.load_stack(str(path))
    assert loaded.line_of("azcluster:cluster.pools[0].size") == 8
    assert loaded.line_of("azure-native:location") == 2
    assert loaded.line_of("azcluster:cluster.pools[5].size") == 6  # nearest existing ancestor: pools
