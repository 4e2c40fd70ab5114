"""At 80 columns nothing a user must act on is cut: findings, `skus`, every command's --help.

CliRunner's output is not a terminal, so rich and click lay it out at 80 columns, the width of the
narrowest terminal people use; COLUMNS=80 pins click's help formatter to the same width.
"""

from __future__ import annotations

import re

import pytest
import typer
from rich.console import Console

from azcluster import skus as skus_view
from azcluster.cli import app
from azcluster.components import catalog
from tests.clirunner import run_cli

LONG_DIR = "a-directory-name-long-enough-that-a-path-cannot-fit-in-one-column-of-a-table"


def _commands() -> dict[str, typer.main.TyperCommand]:
    return typer.main.get_command(app).commands  # type: ignore[attr-defined]


def test_findings_show_the_whole_file_line_and_yaml_path(tmp_path):
    stacks = tmp_path / LONG_DIR
    stacks.mkdir()
    source = (
        "config:\n"
        "  azure-native:location: eastus\n"
        "  azcluster:cluster:\n"
        "    name: lab\n"
        "    pools:\n"
        "      - name: gpu\n"
        "        size: Standard_ND96isr_H100_v5\n"
        "        nodes: 2\n"
        "    ssh:\n"
        "      public_keys: []\n"
    )
    path = stacks / "Pulumi.lab.yaml"
    path.write_text(source)
    result = run_cli("validate", str(path), env={"COLUMNS": "80"})
    assert result.exit_code == 1
    assert "…" not in result.stdout
    lines = result.stdout.splitlines()
    # `file:line` is one line (soft-wrapped by the terminal, never cut), so it can be copied or clicked.
    assert any(line.endswith(f"{path}:10") for line in lines), result.stdout
    assert "  azcluster:cluster.ssh.public_keys" in lines
    assert all(len(line) <= 80 for line in lines if not line.startswith("error ")), result.stdout
    # The hint wraps at words, every word of it is there.
    hint = " ".join(line.strip() for line in lines if line.startswith("  ")).split("hint: ", 1)[1]
    assert "ssh-keygen -t ed25519" in hint


def test_findings_text_is_not_read_as_markup(tmp_path):
    path = tmp_path / "Pulumi.lab.yaml"
    path.write_text(
        "config:\n  azure-native:location: eastus\n  azcluster:cluster:\n    name: lab\n"
        "    pools:\n      - name: gpu\n        size: '[bold]Standard_X[/]'\n        nodes: 2\n"
    )
    result = run_cli("validate", str(path))
    assert "[bold]Standard_X[/]" in result.stdout


def test_skus_at_80_columns_shows_every_value_whole():
    result = run_cli("skus", env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "…" not in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    for size in catalog.gpu_sizes().values():
        assert size.name in result.stdout
        assert size.quota_family in result.stdout
        assert f"{size.price.usd_per_hour:.2f}" in result.stdout


def test_skus_keeps_the_table_on_a_wide_terminal_and_blocks_on_a_narrow_one():
    sizes = list(catalog.gpu_sizes().values())
    wide, narrow = Console(width=200, record=True), Console(width=80, record=True)
    skus_view.print_skus(sizes, wide)
    skus_view.print_skus(sizes, narrow)
    wide_text, narrow_text = wide.export_text(), narrow.export_text()
    assert "┃ size" in wide_text and "quota family" in wide_text
    assert "┃" not in narrow_text and "  quota family  standardNDSH100v5Family" in narrow_text


@pytest.mark.parametrize("name", sorted(_commands()))
def test_help_at_80_columns_cuts_no_option_and_shows_no_bool_metavar(name):
    result = run_cli(name, "--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "…" not in text and "<bool>" not in text
    assert all(len(line) <= 80 for line in text.splitlines() if not line.lstrip().startswith("--cloud"))
    command = _commands()[name]
    for param in command.params:
        for opt in [*param.opts, *param.secondary_opts]:
            if opt.startswith("--"):
                assert re.search(rf"(^|[\s,/]){re.escape(opt)}(\s|,|$)", text, re.M), (opt, text)


def test_shell_completion_is_offered_and_completes_stack_names(tmp_path):
    top = run_cli("--help")
    assert "--install-completion" in top.stdout and "--show-completion" in top.stdout
    (tmp_path / "Pulumi.research.yaml").write_text("config: {}\n")
    (tmp_path / "Pulumi.rocket.yaml").write_text("config: {}\n")
    (tmp_path / "Pulumi.example.yaml").write_text("config: {}\n")
    result = run_cli(
        env={
            "_AZCLUSTER_COMPLETE": "complete_bash",
            "COMP_WORDS": "azcluster validate r",
            "COMP_CWORD": "2",
            "AZCLUSTER_STACKS_DIR": str(tmp_path),
        },
    )
    assert sorted(result.stdout.split()) == ["research", "rocket"]
