"""`--json`: one JSON document on stdout however a command ends, failures in one shape for all commands.

`{"stack", "ok": false, "error": {"message", "hint", "exit_code"}}` (docs/architecture.md), printed in one
place (cli._Commands) unless the command already printed its own document (validate and plan print theirs,
with the findings, before they exit 1).
"""

from __future__ import annotations

import json

import pytest

from azcluster import plan as planner
from tests.clirunner import run_cli

WITH_STACK = ["validate", "plan", "preflight", "status", "stop", "start", "hosts"]
LIFECYCLE = ["up", "preview", "down", "refresh", "outputs", "cancel"]


def failure(result, exit_code: int) -> dict:
    assert result.exit_code == exit_code, result.stderr
    document = json.loads(result.stdout)  # exactly one document: json.loads refuses a second one
    assert document["ok"] is False
    assert set(document["error"]) >= {"message", "hint", "exit_code"}
    assert document["error"]["exit_code"] == exit_code and document["error"]["message"]
    return document


@pytest.mark.parametrize("command", WITH_STACK + LIFECYCLE)
def test_a_missing_stack_file_is_a_failure_document(command, tmp_path, monkeypatch):
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no `pulumi` and no `az`: lifecycle may stop there (3)
    result = run_cli(command, "nosuch", "--json")
    document = failure(result, result.exit_code)
    assert result.exit_code in (2, 3)
    assert document["stack"] == "nosuch"
    assert "error:" in result.stderr  # people still read the message on stderr


def test_a_stack_path_is_reported_by_its_stack_name(tmp_path):
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text("config: [unclosed\n", encoding="utf-8")
    document = failure(run_cli("validate", str(path), "--json"), 2)
    assert document["stack"] == "prod" and "not valid YAML" in document["error"]["message"]


def test_bad_usage_is_a_failure_document_too(tmp_path):
    document = failure(run_cli("hosts", "demo", "--format", "xml", "--json"), 2)
    assert document["stack"] == "demo" and "xml" in document["error"]["message"]


def test_an_unexpected_error_is_a_failure_document(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(planner, "plan_stack", broken)
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config: {}\n", encoding="utf-8")
    document = failure(run_cli("plan", str(path), "--json"), 1)
    assert document["error"]["message"] == "unexpected RuntimeError: a bug"


def test_an_interrupt_is_a_failure_document(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(planner, "plan_stack", interrupted)
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config: {}\n", encoding="utf-8")
    document = failure(run_cli("plan", str(path), "--json"), 130)
    assert document["error"]["message"] == "interrupted"


def test_a_command_that_printed_its_document_prints_no_second_one(tmp_path):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(
        "config: {azure-native:location: eastus, azcluster:cluster: {name: x}}\n", encoding="utf-8"
    )
    result = run_cli("plan", str(path), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["findings"] and "error" not in document


def test_without_json_a_failure_leaves_stdout_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(tmp_path))
    result = run_cli("status", "nosuch")
    assert result.exit_code == 2 and result.stdout == "" and "does not exist" in result.stderr
