"""What every test gets: the checkout's tracked stacks only, and the groups the suite runs in parallel by.

Stacks. The CLI looks a stack name up in $AZCLUSTER_STACKS_DIR, else ./stacks (the checkout's, when pytest
runs from its root). For the whole session that variable names a copy of the *tracked* stacks/ files, so
a stack file a developer made there (the README tour makes `stacks/Pulumi.research.yaml`) is never seen,
and a test that writes a stack by name writes into the copy, never into the checkout. A test that needs
its own stacks still sets the variable itself (monkeypatch restores this one after it). At the end the
controller checks that the run left no new untracked file in stacks/ or examples/.

Groups: `make test` runs the suite in parallel (pytest-xdist), one group per test module and one for
all the modules that start real daemons; tests/groups.py says how and why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.checkout import copy_tracked, untracked
from tests.groups import GroupPlugin

WATCHED = ("stacks", "examples")
"""Folders of the checkout the suite must never write into (tests copy what they need to tmp_path)."""

_STACKS_ENV = "AZCLUSTER_STACKS_DIR"


@pytest.fixture(scope="session", autouse=True)
def tracked_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the checkout's tracked stacks/ files, where the CLI looks stacks up for every test."""
    copy = copy_tracked("stacks", tmp_path_factory.mktemp("tracked") / "stacks")
    before = os.environ.get(_STACKS_ENV)
    os.environ[_STACKS_ENV] = str(copy)
    try:
        yield copy
    finally:
        if before is None:
            os.environ.pop(_STACKS_ENV, None)
        else:
            os.environ[_STACKS_ENV] = before


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(GroupPlugin(config), "azcluster-test-groups")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist)
        session.config.stash[_BEFORE] = {folder: set(untracked(folder)) for folder in WATCHED}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    left = sorted(name for folder in WATCHED for name in set(untracked(folder)) - before[folder])
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(
                "the suite left untracked files in the checkout (tests must write under tmp_path): "
                + ", ".join(left),
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BEFORE = pytest.StashKey[dict[str, set[str]]]()
