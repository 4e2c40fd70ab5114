"""The components are a library: importing every module of `azcluster.components` loads nothing of the
CLI side (typer, rich, the Azure SDKs, or any other `azcluster.*` module), and no module there imports one."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.checkout import python_ast

COMPONENTS = Path(__file__).resolve().parents[2] / "components"


def component_modules() -> list[str]:
    names = []
    for path in sorted(COMPONENTS.rglob("*.py")):
        if "scripts" in path.parts or path.name == "__main__.py":
            continue  # node scripts run on the VMs; __main__ only serves the package
        parts = path.relative_to(COMPONENTS).with_suffix("").parts
        names.append(".".join(("azcluster", "components", *[p for p in parts if p != "__init__"])))
    return names


def test_no_component_module_imports_the_cli_side():
    offenders = []
    for path in COMPONENTS.rglob("*.py"):
        for node in ast.walk(python_ast(path)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name == "azcluster" or (
                    name.startswith("azcluster.") and not name.startswith("azcluster.components")
                ):
                    offenders.append(f"{path.relative_to(COMPONENTS)}: {name}")
    assert offenders == []


def test_importing_every_component_module_loads_no_cli_module():
    modules = component_modules()
    assert len(modules) > 10
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click') "
        "or m.startswith('azure.') "
        "or (m.startswith('azcluster.') and not m.startswith('azcluster.components'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
