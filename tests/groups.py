"""The groups `make test` runs the suite in, in parallel (pytest-xdist, `-n <2 x CPUs> --dist loadgroup`).

A group runs whole, on one worker, in collection order. Each test module is its own group, so its
module-scoped fixtures (plans built once, a Slurm controller started once) are built once. Modules that
start real daemons (Slurm now; monitoring, databases, sshd to come) add themselves to one shared group:

    pytestmark = pytest.mark.xdist_group(REAL_DAEMONS)

so those suites run one after another on one worker, never two controllers at once. A suite that runs
its daemons in namespaces of its own and takes minutes may name a group of its own instead (the boot
test's "boot-real"), to run beside them on another worker. Named groups are handed out first (they are
the longest chains), the module groups after them. Every daemon suite picks free ports (or runs in its
own network namespace) and keeps its state under its own tmp_path: it must be safe beside another
checkout's suite as well.

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

_TERMINAL = {name: os.environ.get(name) for name in ("COLUMNS", "LINES")}
"""The terminal size variables this process was started with (read when pytest imports tests/conftest.py)."""
_TERMINAL_KEY = "azcluster_terminal"

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

    def pytest_configure(self, config: pytest.Config) -> None:
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None:
            # A worker comes out of its start-up with COLUMNS=80 and LINES=24 in its environment (readline,
            # which it loads, exports them). azcluster's rich consoles read COLUMNS once, when render.py is
            # imported (at collection), and keep that width: tests that set COLUMNS for one wide table got
            # 80 columns under `make test`. Put back what the controller was started with.
            for name, value in workerinput.get(_TERMINAL_KEY, {}).items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            return
        if not self.wanted(config):
            return
        # The groups go out in the order set below (the daemons first), not xdist's "most tests first"
        # (which would start with test_rules' hundreds of quick tests and end with the daemons).
        config.option.loadscopereorder = False
        os.environ[_ENV] = tempfile.mkdtemp(prefix="azcluster-test-groups-")

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[_TERMINAL_KEY] = _TERMINAL

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
        # Named groups (the daemon suites: the longest chains) go out first; otherwise as collected.
        items.sort(key=lambda item: group_of(item) == item.nodeid.split("::", 1)[0])
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
