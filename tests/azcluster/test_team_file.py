"""The team in the stack file or in a file it names: read with the stack file's loader and limits, keys
relative to the team file, problems located at the team file's own lines."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from azcluster import stackfile
from azcluster.errors import EXIT_USAGE, AzclusterError
from tests.azcluster.test_stackfile import KEY, VALID, write_stack
from tests.clirunner import run_cli

TEAM_FILE = """\
groups:
  - name: vision
    gid: 3001
accounts: [vision]
users:
  - name: alice
    uid: 2001
    ssh_keys: [keys/alice.pub]
    groups: [vision]
    account: vision
  - name: bob
    uid: 2002
    groups: [vision]
"""


def with_team(tmp_path: Path, team_yaml: str, team_file: str = "team.yaml") -> Path:
    (tmp_path / team_file).write_text(team_yaml, encoding="utf-8")
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "alice.pub").write_text(KEY + "\n")
    return write_stack(tmp_path, VALID + f"    team:\n      file: {team_file}\n")


def test_team_file_is_read_relative_to_the_stack_and_its_keys_relative_to_itself(tmp_path):
    sub = tmp_path / "people"
    sub.mkdir()
    (sub / "keys").mkdir()
    (sub / "keys" / "alice.pub").write_text(KEY + "\n")
    (sub / "team.yaml").write_text(TEAM_FILE)
    path = write_stack(tmp_path, VALID + "    team:\n      file: people/team.yaml\n")
    loaded = stackfile.load_stack(str(path))
    assert loaded.spec is not None, loaded.schema_findings
    team = loaded.spec.team
    assert [(u.name, u.uid, u.groups, u.account) for u in team.users] == [
        ("alice", 2001, ["vision"], "vision"),
        ("bob", 2002, ["vision"], None),
    ]
    assert team.users[0].ssh_keys == [KEY]
    assert [(g.name, g.gid) for g in team.groups] == [("vision", 3001)]
    # valid; the one finding says the accounts wait for Slurm accounting (off in this stack)
    assert [(f.id, f.severity) for f in stackfile.validate(loaded)] == [("AZC140", "warning")]


def test_a_rule_finding_names_the_team_file_and_its_line(tmp_path):
    path = with_team(tmp_path, TEAM_FILE.replace("uid: 2002", "uid: 2001"))
    loaded = stackfile.load_stack(str(path))
    [finding] = [f for f in stackfile.validate(loaded) if f.id == "AZC111"]
    assert finding.path == "azcluster:cluster.team.users[1].uid"
    assert finding.file == str(tmp_path / "team.yaml")
    assert finding.line == 12  # `uid: 2001` of bob, in team.yaml
    result = run_cli("validate", str(path))
    assert result.exit_code == 1
    assert "team.yaml:12" in result.stdout + result.stderr


def test_a_schema_error_in_the_team_file_names_its_line(tmp_path):
    path = with_team(tmp_path, TEAM_FILE.replace("    uid: 2002", "    uid: many"))
    loaded = stackfile.load_stack(str(path))
    assert loaded.spec is None
    [finding] = loaded.schema_findings
    assert (finding.path, finding.file, finding.line) == (
        "azcluster:cluster.team.users[1].uid",
        str(tmp_path / "team.yaml"),
        12,
    )


def test_validate_json_keeps_the_contract_shape_for_team_findings(tmp_path):
    path = with_team(
        tmp_path, TEAM_FILE.replace("groups: [vision]\n    account", "groups: [nope]\n    account")
    )
    result = run_cli("validate", str(path), "--json")
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert [f["id"] for f in findings if f["severity"] == "error"] == ["AZC118"]
    assert all(set(f) == {"id", "severity", "path", "message", "hint"} for f in findings)


@pytest.mark.parametrize(
    ("team_yaml", "expected"),
    [
        ("users: [1, 2\n", "team.yaml:2: not valid YAML"),
        ("- alice\n", "a team file is a mapping"),
        ("people: []\n", "team.yaml:1: unknown key `people`"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcd", "bcde", strict=True)
            ),
            "YAML aliases",
        ),
    ],
)
def test_unreadable_team_files_are_usage_errors_naming_the_file(tmp_path, team_yaml, expected):
    path = with_team(tmp_path, team_yaml)
    with pytest.raises(AzclusterError) as caught:
        stackfile.load_stack(str(path))
    assert caught.value.exit_code == EXIT_USAGE
    assert expected in caught.value.message


def test_missing_team_file_and_a_team_given_twice_are_usage_errors(tmp_path):
    path = write_stack(tmp_path, VALID + "    team:\n      file: gone.yaml\n")
    result = run_cli("validate", str(path))
    assert result.exit_code == 2
    assert "team file" in result.stderr and "gone.yaml does not exist" in result.stderr
    path = with_team(tmp_path, TEAM_FILE)
    path.write_text(path.read_text() + "      users: []\n")
    with pytest.raises(AzclusterError) as caught:
        stackfile.load_stack(str(path))
    assert (
        "Pulumi.t.yaml:14" in caught.value.message
        and "`team.users` is given here too" in caught.value.message
    )


def test_team_inline_in_the_stack_file(tmp_path):
    team = textwrap.indent(TEAM_FILE.replace("keys/alice.pub", KEY), "      ")
    path = write_stack(tmp_path, VALID + "    team:\n" + team)
    loaded = stackfile.load_stack(str(path))
    assert loaded.spec is not None and [u.name for u in loaded.spec.team.users] == ["alice", "bob"]
    assert [(f.id, f.severity) for f in stackfile.validate(loaded)] == [("AZC140", "warning")]
