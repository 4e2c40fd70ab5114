"""The layering contract types of tools/import_contracts.py fail when their rule is broken, say where, and
pass when it is kept: run through the real `lint-imports` on small packages written here.

The repository's own contracts run in `make lint` (and so in CI, .ci/run), not here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

CONFIG = """
[tool.importlinter]
root_packages = ["pkg"]
contract_types = [
    "suffix_on_top: tools.import_contracts.SuffixOnTopContract",
    "acyclic_modules: tools.import_contracts.AcyclicModulesContract",
]

[[tool.importlinter.contracts]]
name = "views on top"
type = "suffix_on_top"
container = "pkg.ops"
suffix = "_view"
{views_extra}

[[tool.importlinter.contracts]]
name = "no circles"
type = "acyclic_modules"
packages = ["pkg"]
{circles_extra}
"""


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def lint(root: Path, views_extra: str = "", circles_extra: str = "") -> subprocess.CompletedProcess:
    (root / "contracts.toml").write_text(CONFIG.format(views_extra=views_extra, circles_extra=circles_extra))
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run(
        [str(LINT_IMPORTS), "contracts.toml", "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


LAYERED = {
    "pkg/__init__.py": "",
    "pkg/ops/__init__.py": "",
    "pkg/ops/model.py": "class Node: ...\n",
    "pkg/ops/reader.py": "from .model import Node\n",
    "pkg/ops/reader_view.py": "from .reader import Node\n",
    "pkg/ops/all_view.py": "from . import reader_view\nfrom .model import Node\n",  # a view may use a view
}


def test_a_layered_package_keeps_both_contracts(tmp_path):
    write_tree(tmp_path, LAYERED)
    result = lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_a_reader_importing_a_view_is_named_with_its_line(tmp_path):
    write_tree(
        tmp_path,
        {
            **LAYERED,
            "pkg/ops/reader.py": "from .model import Node\n\n\ndef f():\n    from .all_view import x\n",
        },
    )
    result = lint(tmp_path)
    assert result.returncode == 1
    assert "pkg.ops.reader is not allowed to import pkg.ops.all_view (l.5)" in result.stdout
    assert "views on top BROKEN" in result.stdout


def test_a_package_and_its_child_importing_each_other_is_a_circle(tmp_path):
    """acyclic_siblings folds a package into one node; this contract sees __init__ <-> child."""
    write_tree(
        tmp_path,
        {
            **LAYERED,
            "pkg/__init__.py": "from .ops import model\nLIMIT = 1\n",
            "pkg/ops/model.py": "from pkg import LIMIT\n",
        },
    )
    result = lint(tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert "no circles BROKEN" in out
    assert "pkg -> pkg.ops.model (l.1)" in out and "pkg.ops.model -> pkg (l.1)" in out


def test_an_import_under_type_checking_counts(tmp_path):
    """A circle made only of annotations is still two modules that know each other."""
    write_tree(
        tmp_path,
        {
            **LAYERED,
            "pkg/ops/model.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from .reader import read\nclass Node: ...\n",
        },
    )
    result = lint(tmp_path)
    assert result.returncode == 1
    assert "2 modules import each other around a circle: pkg.ops.model, pkg.ops.reader" in result.stdout


def test_the_shortest_circle_is_shown_in_a_long_one(tmp_path):
    files = {**LAYERED, "pkg/a.py": "from . import b\n", "pkg/b.py": "from . import c\n"}
    files["pkg/c.py"] = "from . import a\nfrom . import d\n"
    files["pkg/d.py"] = "from . import c\n"
    write_tree(tmp_path, files)
    out = lint(tmp_path).stdout
    assert "4 modules import each other around a circle: pkg.a, pkg.b, pkg.c, pkg.d" in out
    shortest = out.split("The shortest circle among them:")[1].split("\n\n")[0]
    assert [line.strip() for line in shortest.strip().splitlines()] == [
        "pkg.c -> pkg.d (l.2)",
        "pkg.d -> pkg.c (l.1)",
    ]


def test_a_known_exception_keeps_the_contract_and_a_stale_one_is_an_error(tmp_path):
    files = {**LAYERED, "pkg/a.py": "from . import b\n", "pkg/b.py": "from . import a\n"}
    write_tree(tmp_path, files)
    kept = lint(tmp_path, circles_extra='ignore_imports = ["pkg.b -> pkg.a"]')
    assert kept.returncode == 0, kept.stdout
    assert "no circles KEPT (1 ignored import)" in kept.stdout

    (tmp_path / "pkg/b.py").write_text("")  # the circle is gone; the exception is now stale
    stale = lint(tmp_path, circles_extra='ignore_imports = ["pkg.b -> pkg.a"]')
    assert stale.returncode != 0
    assert "pkg.b -> pkg.a" in stale.stdout + stale.stderr
    warned = lint(
        tmp_path,
        circles_extra='ignore_imports = ["pkg.b -> pkg.a"]\nunmatched_ignore_imports_alerting = "warn"',
    )
    assert warned.returncode == 0, warned.stdout
    assert "pkg.b -> pkg.a" in warned.stdout
