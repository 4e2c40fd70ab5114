"""Two import-linter contract types for rules the built-in ones cannot say (used in pyproject.toml).

- `suffix_on_top`: inside a package, the modules whose names end with a suffix (azcluster/ops' `*_view`)
  stand on top: any other module of that package importing one breaks the contract. The rule follows the
  naming convention, so a new view or reader is covered the day it is written: import-linter's module
  expressions match whole names only (`azcluster.ops.*`, never `azcluster.ops.*_view`), and a list of
  names in pyproject.toml would fall behind.
- `acyclic_modules`: no module reaches itself through imports, with a package's `__init__` counted as a
  module of its own. The built-in `acyclic_siblings` folds each package with its descendants into one
  node, so it cannot see a package's `__init__` importing its child while the child imports the package
  back.

Both read the graph import-linter built (grimp), so every import counts: top-level, inside functions and
under `if TYPE_CHECKING:` (an annotation that names another module's class still ties the two together).
Run them with `make lint` (`lint-imports`); tests/test_import_contracts.py shows they fail when broken.
"""

from __future__ import annotations

from collections.abc import Iterable

from grimp import ImportGraph
from importlinter.application import contract_utils, output
from importlinter.application.contract_utils import AlertLevel
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _lines(graph: ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    return ", ".join(f"l.{d['line_number']}" for d in details) or "?"


def _remove_ignored(graph: ImportGraph, contract: Contract) -> contract_utils.ImportRemoval:
    return contract_utils.remove_ignored_imports_and_report(
        graph=graph,
        ignore_imports=contract.ignore_imports,  # type: ignore[attr-defined]
        unmatched_alerting=contract.unmatched_ignore_imports_alerting,  # type: ignore[attr-defined]
    )


class SuffixOnTopContract(Contract):
    """Modules of `container` whose last name ends with `suffix` may import the rest; never the reverse.

    Options: container (a package), suffix (e.g. `_view`); ignore_imports and
    unmatched_ignore_imports_alerting as import-linter's own contracts have them.
    """

    type_name = "suffix_on_top"

    container = fields.StringField()
    suffix = fields.StringField()
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(AlertLevel, default=AlertLevel.ERROR)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        removal = _remove_ignored(graph, self)
        container, suffix = str(self.container), str(self.suffix)
        if container not in graph.modules:
            raise ValueError(f"Module '{container}' does not exist.")
        members = [m for m in graph.modules if _inside(m, container) and m != container]
        on_top = {m for m in members if m.rsplit(".", 1)[-1].endswith(suffix)}
        broken = [
            {"importer": importer, "imported": imported, "lines": _lines(graph, importer, imported)}
            for importer in sorted(set(members) - on_top)
            for imported in sorted(graph.find_modules_directly_imported_by(importer) & on_top)
        ]
        return ContractCheck(
            kept=not broken,
            metadata={"broken": broken},
            warnings=list(removal.warnings),
            ignored_import_count=removal.ignored_import_count,
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["broken"]:
            output.print_error(
                f"{item['importer']} is not allowed to import {item['imported']} ({item['lines']}): "
                f"modules named *{self.suffix} stand on top of {self.container}",
                bold=False,
            )
        output.new_line()


class AcyclicModulesContract(Contract):
    """No circle of imports among the modules of `packages` (each package's `__init__` a module itself).

    Options: packages (one or more); ignore_imports (a known exception, said plainly where it is
    configured, until the circle is gone) and unmatched_ignore_imports_alerting as import-linter's own.
    """

    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.StringField())
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(AlertLevel, default=AlertLevel.ERROR)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        removal = _remove_ignored(graph, self)
        packages = [str(p) for p in self.packages]  # type: ignore[attr-defined]
        for package in packages:
            if package not in graph.modules:
                raise ValueError(f"Module '{package}' does not exist.")
        nodes = sorted(m for m in graph.modules if any(_inside(m, p) for p in packages))
        edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(nodes)) for m in nodes}
        circles = []
        for members in _strongly_connected(nodes, edges):
            if len(members) < 2:
                continue
            path = _shortest_circle(members, edges)
            steps = [
                {"importer": a, "imported": b, "lines": _lines(graph, a, b)}
                for a, b in zip(path, path[1:], strict=False)
            ]
            circles.append({"modules": members, "shortest": steps})
        return ContractCheck(
            kept=not circles,
            metadata={"circles": circles},
            warnings=list(removal.warnings),
            ignored_import_count=removal.ignored_import_count,
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for circle in check.metadata["circles"]:
            modules = circle["modules"]
            output.print_error(
                f"{len(modules)} modules import each other around a circle: {', '.join(modules)}"
            )
            output.print_error("The shortest circle among them:", bold=False)
            for item in circle["shortest"]:
                output.indent_cursor()
                output.print_error(f"{item['importer']} -> {item['imported']} ({item['lines']})", bold=False)
            output.new_line()


def _shortest_circle(members: list[str], edges: dict[str, list[str]]) -> list[str]:
    """The shortest path from a module back to itself inside one strongly connected component."""
    inner = set(members)
    best: list[str] = []
    for start in members:
        previous: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in previous:
            following = []
            for node in frontier:
                for target in edges[node]:
                    if target in inner and target not in previous:
                        previous[target] = node
                        following.append(target)
            frontier = following
        if start not in previous:
            continue
        path = [start]
        while True:
            path.append(previous[path[-1]])
            if path[-1] == start:
                break
        path.reverse()
        if not best or len(path) < len(best):
            best = path
    return best


def _strongly_connected(nodes: Iterable[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, without recursion (a long import chain is not a crash)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = edges.get(node, [])
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found
