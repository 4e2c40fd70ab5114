"""Run the real `azcluster` app in-process, with stdout and stderr kept apart (JSON goes to stdout)."""

from __future__ import annotations

from typer.testing import CliRunner

from azcluster.cli import app


def run_cli(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    return CliRunner().invoke(app, list(args), env=env, input=input, catch_exceptions=False)
