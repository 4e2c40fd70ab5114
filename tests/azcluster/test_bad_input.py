"""Bad input through the real CLI: a finding or a message with exit 1/2, never a hang, a crash or a bomb.

Each case here was an `unexpected X` (exit 1), a hang, or minutes of CPU and gigabytes of memory before.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"


def stack(
    tmp_path: Path, network: str = "", keys: str = f'["{KEY}"]', pool: str = "", extra: str = ""
) -> Path:
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            config:
              azure-native:location: eastus
              azcluster:cluster:
                name: demo
                zone: "1"
                {network}
                pools:
                  - name: gpu
                    size: Standard_ND96asr_v4
                    nodes: 2
                    {pool}
                ssh:
                  public_keys: {keys}
            {extra}
            """
        ),
        encoding="utf-8",
    )
    return path


def refused(path: Path, exit_code: int) -> dict:
    result = run_cli("validate", str(path), "--json")
    assert result.exit_code == exit_code, result.stdout + result.stderr
    assert "unexpected" not in result.stderr
    return json.loads(result.stdout)


def finding(document: dict, path: str) -> str:
    (message,) = [f["message"] for f in document["findings"] if f["path"] == path]
    return message


# --- strict types ----------------------------------------------------------------------------------------


def test_a_boolean_is_not_a_node_count(tmp_path):
    path = stack(tmp_path)
    path.write_text(path.read_text().replace("nodes: 2", "nodes: true"))
    document = refused(path, 1)
    assert "must be a number" in finding(document, "azcluster:cluster.pools[0].nodes")


def test_yes_is_not_a_boolean(tmp_path):
    document = refused(stack(tmp_path, pool='spot: "yes"'), 1)
    assert "must be true or false" in finding(document, "azcluster:cluster.pools[0].spot")


def test_integral_floats_still_count_as_numbers(tmp_path):
    """Pulumi's component plugin passes every number as a float (protobuf Struct): 2.0 nodes is 2."""
    path = stack(tmp_path)
    path.write_text(path.read_text().replace("nodes: 2", "nodes: 2.0"))
    assert refused(path, 0)["ok"] is True


# --- validate reports what plan would fail on ------------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "where"),
    [
        ('network: {subnets: {compute: " 10.42.0.0/20"}}', "network.subnets.compute"),
        ('network: {subnets: {compute: "10.42.0.0/20\\n"}}', "network.subnets.compute"),
        ('network: {address_space: "10.42.0.0/16\\n"}', "network.address_space"),
    ],
)
def test_a_cidr_with_space_around_it_is_a_finding(tmp_path, network, where):
    document = refused(stack(tmp_path, network=network), 1)
    assert "space or line break" in finding(document, f"azcluster:cluster.{where}")


def test_a_lone_surrogate_is_a_finding(tmp_path):
    document = refused(stack(tmp_path, network='tags: {team: "\\udc80"}'), 1)
    assert "not valid Unicode" in finding(document, "azcluster:cluster.tags")


# --- files that are not stack files ----------------------------------------------------------------------


def test_an_alias_bomb_stops_at_the_value_limit(tmp_path):
    """Nine levels of nine aliases: 9**10 values once expanded, under an unrelated config key."""
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = stack(tmp_path)
    path.write_text(path.read_text() + "  bomb:key: {" + ", ".join(levels) + "}\n")
    assert os.path.getsize(path) < 1024 + len(path.read_text().split("  bomb:key")[0])
    document = refused(path, 2)
    assert "expands to more than 100,000 values through YAML aliases" in document["error"]["message"]
    assert "aliases" in document["error"]["hint"]


def test_a_long_list_is_told_the_value_limit_not_aliases(tmp_path):
    """A genuinely large file (a 100,000-line list, no alias in it) hits the value count and says where."""
    path = stack(tmp_path)
    lines = path.read_text() + "  big:list:\n" + "  - 7\n" * 100_000
    path.write_text(lines)
    first_item = lines.splitlines().index("  - 7") + 1
    document = refused(path, 2)
    message = document["error"]["message"]
    where, _, said = message.partition(": ")
    assert said.startswith("the config holds more than 100,000 values")
    assert where.startswith(f"{path}:") and first_item < int(where.rsplit(":", 1)[1]) < first_item + 100_000
    assert "alias" not in message + document["error"]["hint"]
    assert document == {"stack": "t", "ok": False, "error": document["error"]}
    assert document["error"]["exit_code"] == 2


def test_deep_nesting_is_refused(tmp_path):
    for depth in (200, 3000):  # under and over Python's recursion limit
        path = tmp_path / "Pulumi.deep.yaml"
        path.write_text("config: {x: " + "[" * depth + "]" * depth + "}\n")
        assert "nested more than" in refused(path, 2)["error"]["message"]


def test_a_complex_key_is_refused(tmp_path):
    path = stack(tmp_path)
    path.write_text(path.read_text().replace("    name: demo\n", "    name: demo\n    ? [a, b]\n    : c\n"))
    assert "complex key" in refused(path, 2)["error"]["message"]


@pytest.mark.parametrize(
    "key",
    [
        "    ? lustre:\n        capacity_tib: 16\n    : x\n",  # ruamel cannot hash it: TypeError on load
        "    ? {lustre: 16}\n    : x\n",  # ruamel builds a CommentedKeyMap, which is no dict
    ],
)
def test_a_mapping_as_a_key_is_bad_input_at_its_line(tmp_path, key):
    path = stack(tmp_path)
    path.write_text(path.read_text().replace("    name: demo\n", "    name: demo\n" + key))
    document = refused(path, 2)
    assert (
        document["error"]["message"]
        == f"{path}:5: a mapping key is a list or mapping (YAML `? ...` complex key)"
    )
    assert "`lustre:` with its settings indented under it" in document["error"]["hint"]
    human = run_cli("validate", str(path))
    assert human.exit_code == 2
    assert f"{path}:5: a mapping key" in human.stderr and "unexpected" not in human.stderr
    assert "Traceback" not in human.stderr and human.stdout == ""


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_not_a_stack_file(device):
    result = run_cli("validate", device, "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["message"] == f"stack file {device} is not a regular file"


def test_a_fifo_is_not_a_stack_file_and_nothing_waits_for_a_writer(tmp_path):
    fifo = tmp_path / "Pulumi.f.yaml"
    os.mkfifo(fifo)
    result = run_cli("validate", str(fifo), "--json")
    assert result.exit_code == 2 and "not a regular file" in result.stderr


def test_a_huge_stack_file_is_refused(tmp_path):
    path = tmp_path / "Pulumi.big.yaml"
    path.write_text("config: {}\n" + "#" * (2 * 1024 * 1024))
    assert "larger than 1,048,576 bytes" in refused(path, 2)["error"]["message"]


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_an_ssh_key_path_that_is_not_a_regular_file_is_a_finding(tmp_path, target):
    key = tmp_path / "id.pub"
    if target == "fifo":
        os.mkfifo(key)
    else:
        key.symlink_to(target)
    document = refused(stack(tmp_path, keys=f'["{key}"]'), 1)
    assert "is not a regular file" in finding(document, "azcluster:cluster.ssh.public_keys")


def test_an_unknown_user_in_a_key_path_is_a_finding(tmp_path):
    document = refused(stack(tmp_path, keys='["~nosuchuser-azc/id.pub"]'), 1)
    assert "cannot read SSH public key file ~nosuchuser-azc/id.pub" in finding(
        document, "azcluster:cluster.ssh.public_keys"
    )


def test_an_unknown_user_in_the_stack_path_is_a_message():
    result = run_cli("validate", "~nosuchuser-azc/Pulumi.x.yaml", "--json")
    assert result.exit_code == 2 and "cannot find stack file" in result.stderr


# --- other commands --------------------------------------------------------------------------------------


def test_schema_into_a_missing_folder_is_a_message(tmp_path):
    result = run_cli("schema", "-o", str(tmp_path / "nope" / "schema.json"))
    assert result.exit_code == 2 and "cannot write" in result.stderr and "unexpected" not in result.stderr


@pytest.mark.parametrize("name", ["a:b", "a\nb", "a" * 300])
def test_init_refuses_names_that_cannot_name_a_stack(tmp_path, monkeypatch, name):
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(tmp_path))
    result = run_cli("init", name)
    assert result.exit_code == 2, result.stderr
    assert "stack name" in result.stderr and "unexpected" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_suppressing_an_unknown_id_says_so(tmp_path, command):
    result = run_cli(command, str(stack(tmp_path)), "--suppress", "AZC999")
    assert result.exit_code == 2
    assert "'AZC999' is not a finding id" in result.stderr


def test_suppressing_a_known_id_in_any_case_works(tmp_path):
    result = run_cli("validate", str(stack(tmp_path)), "--suppress", "azc012")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("text", "tag", "line"),
    [
        ('config: !!python/object/apply:os.system ["true"]\n', "!!python/object/apply:os.system", 1),
        (
            "config:\n  azcluster:cluster: !!python/object/apply:os.system [x]\n",
            "!!python/object/apply:os.system",
            2,
        ),
        ("config:\n  azcluster:cluster:\n    name: !!python/name:os.system\n", "!!python/name:os.system", 3),
        ("config:\n  azcluster:cluster:\n    name: x\n    slurm: !custom {a: 1}\n", "!custom", 4),
        ("config:\n  azcluster:cluster:\n    pools:\n      - !!python/tuple [a]\n", "!!python/tuple", 4),
        # tags ruamel turns into a value itself (bytes, a set), and a tagged key (no line kept for it)
        ("config:\n  azcluster:cluster:\n    name: !!binary aGk=\n", "!!binary", 3),
        ("config:\n  azcluster:cluster:\n    pools: !!set {a, b}\n", "!!set", 3),
        ("config:\n  azcluster:cluster:\n    !foo name: x\n", "!foo", None),
    ],
)
def test_a_yaml_tag_is_refused_naming_it_and_its_line(tmp_path, text, tag, line):
    """ruamel's round-trip loader runs no tag but keeps it on the value, which then reached the spec as an
    object nobody expects (`!!python/...` on `config:` was told "no `config:` mapping")."""
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(text, encoding="utf-8")
    error = refused(path, 2)["error"]
    where = f"{path}:{line}" if line else str(path)
    assert error["message"].startswith(f"{where}: YAML tag `{tag}` is not allowed"), error
    assert error["hint"] == "remove the tag; azcluster never builds objects from YAML tags"


def test_an_explicit_str_tag_is_just_text(tmp_path):
    path = stack(tmp_path)
    path.write_text(path.read_text().replace("name: demo", "name: !!str demo"))
    result = run_cli("validate", str(path), "--json")
    assert result.exit_code == 0, result.stdout


def test_a_tag_in_a_team_file_is_refused_at_its_line(tmp_path):
    team = tmp_path / "team.yaml"
    team.write_text("users:\n  - !!python/object:os.system {name: alice}\n", encoding="utf-8")
    path = stack(tmp_path, extra="")
    path.write_text(path.read_text().replace("    ssh:", "    team:\n      file: team.yaml\n    ssh:"))
    error = refused(path, 2)["error"]
    assert error["message"].startswith(f"{team}:2: YAML tag `!!python/object:os.system` is not allowed"), (
        error
    )


@pytest.mark.parametrize("command", ["status", "grow", "stop", "start", "preflight"])
def test_commands_on_a_cluster_name_the_first_schema_error_where_it_is(tmp_path, command):
    """status, grow, stop, start and preflight need the spec; on a schema error they said only "run
    validate". They now name the first error's file:line and YAML path, and count the others."""
    path = stack(tmp_path, pool="nodes_per_island: 2")
    path.write_text(path.read_text().replace("nodes: 2\n", "nodes: many\n", 1))
    result = run_cli(command, str(path), "--json")
    assert result.exit_code == 2, result.stdout + result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["message"].startswith(f"{path}:10: azcluster:cluster.pools[0].nodes: "), error
    assert "'many'" in error["message"] and error["message"].endswith("(and 1 more)"), error
    assert error["hint"].endswith(f"`azcluster validate {path}` lists every finding")
    assert "Traceback" not in result.stderr
