"""Ctrl-C during `azcluster up`: the real CLI in a subprocess, the stand-in `pulumi` (which handles SIGINT
as pulumi/pulumi pkg/backend/cancellation_scope.go does and holds the file backend's lock) on PATH.

Each test signals azcluster's process group, as a terminal does, while a resource step is in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.azcluster.test_engine_automation import REPO, _program, cli  # noqa: F401 - cli is a fixture

STEP = 2.0
"""Seconds each resource step of the stand-in takes."""


# A terminal's foreground job starts with SIGINT at its default. One started in the background of a shell
# without job control (`cmd &` in a script, as a CI runner or `nohup make test &` may start the suite)
# inherits SIGINT ignored, and so would azcluster: Ctrl-C then did nothing and these tests failed.
AS_FROM_A_TERMINAL = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from azcluster.cli import main; main()"
)


@pytest.fixture
def running(cli, tmp_path):  # noqa: F811 - the fixture imported above
    """Start `azcluster up example` and return (process, lock folder) once a step is in flight."""
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.example.yaml"):
        (stacks / name).write_text((REPO / "stacks" / name).read_text())
    cli.write(program=_program("example"), step_seconds=STEP)
    env = {**os.environ, "AZCLUSTER_STACKS_DIR": str(stacks), "COLUMNS": "300"}
    process = subprocess.Popen(
        [sys.executable, "-c", AS_FROM_A_TERMINAL, "up", "example", "--yes"]
        + ["--skip-preflight", "--no-hostfiles"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, signalled below as a terminal signals the foreground one
    )
    locks = tmp_path / "home" / ".azcluster" / "state" / ".pulumi" / "locks" / "organization" / "azcluster"
    try:
        _until(lambda: list((locks / "example").glob("*.json")), process)
        yield process, locks / "example"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _until(condition, process, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("timed out")


def _signals(cli) -> list[dict]:  # noqa: F811
    path = cli.root / "signals.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _ctrl_c(process) -> None:
    os.killpg(process.pid, signal.SIGINT)


def _state(cli) -> dict:  # noqa: F811
    return json.loads((cli.root / "state.json").read_text())["stacks"]["example"]


def test_ctrl_c_lets_pulumi_finish_what_runs_release_the_lock_and_says_refresh(running, cli):  # noqa: F811
    process, locks = running
    _ctrl_c(process)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    (received,) = _signals(cli)  # once, passed on by azcluster: pulumi never saw the terminal's signal
    assert received["signal"] == signal.SIGINT and received["pid"] == cli.find("up")["pid"]
    assert "asking Pulumi to stop" in err and "[bold yellow]" not in err  # styled, not markup shown
    assert "up of stack example was interrupted" in err and "lock is released" in err
    assert "azcluster refresh example" in err and "azcluster cancel" not in err
    assert list(locks.glob("*.json")) == []
    state = _state(cli)
    assert state["resources"] and "pending_operations" not in state  # the step in flight was recorded
    assert state["history"][0]["result"] == "failed"
    assert out == ""


def test_a_second_ctrl_c_stops_at_once_and_says_what_that_left(running, cli):  # noqa: F811
    process, locks = running
    _ctrl_c(process)
    _until(lambda: _signals(cli), process)
    _ctrl_c(process)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert [s["signal"] for s in _signals(cli)] == [signal.SIGINT, signal.SIGINT]
    assert "Pulumi stops at once" in err and "pending" in err
    assert "may exist in Azure without being in the state" in err
    assert "azcluster refresh example" in err and "azcluster cancel" not in err
    assert list(locks.glob("*.json")) == []
    assert _state(cli)["pending_operations"]


def test_a_cli_that_does_not_stop_is_killed_and_the_lock_it_leaves_is_named(running, cli):  # noqa: F811
    cli.write(hang=True)  # the stand-in reads its scenario per call: this one ignores signals from now on
    process, locks = running
    for count in (1, 2):
        _ctrl_c(process)
        _until(lambda count=count: len(_signals(cli)) >= count, process)
    _ctrl_c(process)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "killing the Pulumi CLI" in err
    (lock,) = locks.glob("*.json")
    assert "still locked" in err and "azcluster cancel example" in err and "azcluster refresh example" in err
    assert str(lock) in err.replace("\n", "")


def test_a_cancelled_ci_job_sigint_then_sigterm_stops_pulumi_at_once_lock_released(running, cli):  # noqa: F811
    """GitHub Actions cancels a job with SIGINT, then SIGTERM 7.5 s later, then SIGKILL."""
    process, locks = running
    _ctrl_c(process)
    _until(lambda: _signals(cli), process)
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert [s["signal"] for s in _signals(cli)] == [signal.SIGINT, signal.SIGINT]
    assert "Pulumi stops at once" in err and list(locks.glob("*.json")) == []
