"""The groups `make test` runs the suite in, in parallel (pytest-xdist, `-n auto --dist loadgroup`).

A group runs whole, on one worker, in collection order. Each test module is its own group, so its
module-scoped fixtures (plans built once, a Slurm controller started once) are built once. Modules that
start real daemons (Slurm now; monitoring, databases, sshd to come) add themselves to one shared group:

    pytestmark = pytest.mark.xdist_group(REAL_DAEMONS)

so those suites run one after another on one worker, never two controllers at once, and that chain is
handed out first while the other workers take the rest. Each daemon suite still picks free ports and
keeps its state under its own tmp_path: it must be safe beside another checkout's suite as well.

Why this module schedules instead of xdist's own `loadgroup`: xdist 3.8 passes the group by appending
`@group` to `item._nodeid`, which pytest 9.2's structured node ids no longer read, so its groups are
silently ignored (pytest-dev/pytest-xdist#1386). Here each worker writes the groups it collected to a
file the controller named, and the controller's scheduler (xdist's LoadScopeScheduling, with the scope
of a test taken from that file) reads them. Should xdist's `@group` suffix work again, it is honoured.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

REAL_DAEMONS = "real-daemons"
"""The group of the modules that start real daemons."""

_ENV = "AZCLUSTER_TEST_GROUPS_DIR"
"""Where workers write {test id: group} (set by the controller, inherited by the workers it starts)."""


def group_of(item: pytest.Item) -> str:
    """The item's group: its xdist_group marks joined (as xdist joins them), else its module's path."""
    names = sorted(
        {
            str(m.args[0] if m.args else m.kwargs.get("name", "default"))
            for m in item.iter_markers("xdist_group")
        }
    )
    return "_".join(names) if names else item.nodeid.split("::", 1)[0]


def _plain(nodeid: str) -> str:
    return nodeid[: nodeid.rfind("@")] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid


class GroupPlugin:
    """Registered only when pytest-xdist is installed (its hooks are unknown to pytest otherwise)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @staticmethod
    def wanted(config: pytest.Config) -> bool:
        """The controller under `--dist loadgroup`, or one of its workers."""
        return config.getoption("dist", "no") == "loadgroup" or bool(
            getattr(config.option, "loadgroup", False)
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        if hasattr(config, "workerinput") or not self.wanted(config):
            return
        # The groups go out in the order set below (the daemons first), not xdist's "most tests first"
        # (which would start with test_rules' hundreds of quick tests and end with the daemons).
        config.option.loadscopereorder = False
        os.environ[_ENV] = tempfile.mkdtemp(prefix="azcluster-test-groups-")

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist", "no") != "loadgroup":
            return None
        from xdist.scheduler import LoadScopeScheduling

        folder = Path(os.environ[_ENV])

        class GroupScheduling(LoadScopeScheduling):
            """xdist's scope scheduling, with each test's scope being its group."""

            groups: dict[str, str] | None = None

            def _split_scope(self, nodeid: str) -> str:
                if nodeid.rfind("@") > nodeid.rfind("]"):  # xdist's own suffix, should it work again
                    return nodeid.split("@")[-1]
                if self.groups is None:
                    self.groups = {}
                    for path in sorted(folder.glob("*.json")):
                        self.groups.update(json.loads(path.read_text(encoding="utf-8")))
                return self.groups.get(nodeid) or nodeid.split("::", 1)[0]

        return GroupScheduling(config, log)

    @pytest.hookimpl(trylast=True)  # after every mark is on the items
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if not self.wanted(config):
            return
        items.sort(key=lambda item: group_of(item) != REAL_DAEMONS)  # stable: otherwise as collected
        folder = os.environ.get(_ENV)
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        if folder and worker:
            groups = {_plain(item.nodeid): group_of(item) for item in items}
            partial = Path(folder) / f".{worker}.json.tmp"
            partial.write_text(json.dumps(groups), encoding="utf-8")
            partial.replace(Path(folder) / f"{worker}.json")  # whole or not at all

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        folder = os.environ.get(_ENV)
        if folder and not hasattr(config, "workerinput"):
            for path in Path(folder).glob("*"):
                path.unlink(missing_ok=True)
            Path(folder).rmdir()
            os.environ.pop(_ENV, None)
