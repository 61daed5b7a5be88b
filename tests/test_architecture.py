"""The shape of the code: the import graph has no cycles, only the CLI speaks of the CLI, modules stay small.

The source is read with :mod:`ast` (nothing is imported), so the test is quick and sees imports inside
functions too: a lazy import is still a dependency. Imports under ``if TYPE_CHECKING:`` are for type hints
only and are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "pofa"

# Modules over MAX_LINES lines, each with the line count it may not exceed. The list may only shrink: a module
# split below MAX_LINES must leave it (the test says so), and no module may join it.
MAX_LINES = 1000
OVERSIZED: dict[str, tuple[int, str]] = {}

# The console script's entry module is the one place below pofa.cli allowed to import it.
CLI_ENTRY_POINTS = {"pofa.__main__"}


@dataclass(frozen=True)
class Module:
    """One source module: dotted name, file, whether it is a package's ``__init__``."""

    name: str
    path: Path
    is_package: bool


def source_modules(src: Path = SRC) -> dict[str, Module]:
    """Every module under ``src/pofa`` by dotted name."""
    modules: dict[str, Module] = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        modules[".".join(parts)] = Module(".".join(parts), path, is_package)
    return modules


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside ``if TYPE_CHECKING:`` blocks (their imports serve type hints only)."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}:
            for inner in node.body:
                ids.update(id(n) for n in ast.walk(inner))
    return ids


def _absolute(module: Module, target: str | None, level: int) -> str:
    """The dotted name a (possibly relative) ``from`` import refers to."""
    if level == 0:
        return target or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imported_names(module: Module) -> set[str]:
    """Dotted names a module imports at run time (anywhere in the file, TYPE_CHECKING blocks excepted)."""
    tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
    skip = _type_checking_nodes(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.module, node.level)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: Mapping[str, Module]) -> dict[str, set[str]]:
    """Module -> the pofa modules it imports (a name resolves to the longest module prefix that exists)."""
    graph: dict[str, set[str]] = {}
    for name, module in modules.items():
        targets: set[str] = set()
        for imported in imported_names(module):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def top_level_unit(name: str) -> str:
    """``pofa.report.html`` -> ``pofa.report``: the package (or top-level module) a module belongs to."""
    return ".".join(name.split(".")[:2])


def collapse(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """The graph between top-level units (``pofa.report``, ``pofa.analysis``, ...), self-edges dropped."""
    units: dict[str, set[str]] = {}
    for source, targets in graph.items():
        unit = top_level_unit(source)
        units.setdefault(unit, set()).update(t for t in map(top_level_unit, targets) if t != unit)
    return units


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                child = pending.pop()
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, sorted(graph.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _describe(component: list[str], graph: Mapping[str, set[str]]) -> str:
    members = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in members]
    return "cycle among " + ", ".join(component) + ": " + "; ".join(edges)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(source_modules())


def test_the_graph_is_read(graph: dict[str, set[str]]) -> None:
    # The checks below are only as good as the graph: known edges must be in it.
    assert "pofa.cli.output" in graph["pofa.cli.study"]
    assert "pofa.findings" in graph["pofa.cli.output"]
    assert "pofa.report" in graph["pofa.analysis"]  # a lazy import inside a function counts


def test_no_import_cycle_between_modules(graph: dict[str, set[str]]) -> None:
    problems = [_describe(c, graph) for c in cycles(graph)]
    assert not problems, "\n".join(problems)


def test_no_import_cycle_between_packages(graph: dict[str, set[str]]) -> None:
    # pofa.analysis -> pofa.report.html and pofa.report.example -> pofa.analysis is a cycle between the
    # analysis and the report package even though no two modules import each other.
    units = collapse(graph)
    problems = []
    for component in cycles(units):
        members = set(component)
        edges = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                       if top_level_unit(a) in members and top_level_unit(b) in members
                       and top_level_unit(a) != top_level_unit(b))
        problems.append(f"cycle among {', '.join(component)}: " + "; ".join(edges))
    assert not problems, "\n".join(problems)


def test_only_the_cli_imports_the_cli(graph: dict[str, set[str]]) -> None:
    offenders = sorted(f"{source} imports {target}" for source, targets in graph.items()
                       for target in targets
                       if (target == "pofa.cli" or target.startswith("pofa.cli."))
                       and not (source == "pofa.cli" or source.startswith("pofa.cli."))
                       and source not in CLI_ENTRY_POINTS)
    assert not offenders, "library code imports the command-line layer:\n" + "\n".join(offenders)


def test_modules_stay_small() -> None:
    sizes = {str(m.path.relative_to(SRC)): len(m.path.read_text(encoding="utf-8").splitlines())
             for m in source_modules().values()}
    too_long = sorted(f"{path}: {n} lines (at most {MAX_LINES}; split it by concern)"
                      for path, n in sizes.items() if n > MAX_LINES and path not in OVERSIZED)
    grown = sorted(f"{path}: {sizes[path]} lines, more than the {ceiling} it had ({why})"
                   for path, (ceiling, why) in OVERSIZED.items() if sizes.get(path, 0) > ceiling)
    done = sorted(f"{path}: {sizes.get(path, 0)} lines; remove it from OVERSIZED"
                  for path in OVERSIZED if sizes.get(path, 0) <= MAX_LINES)
    assert not (too_long or grown or done), "\n".join(too_long + grown + done)


def test_cycle_finder_on_known_graphs() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert sorted(cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}})) == [["a", "b"], ["c", "d"]]
    graph = {"p.x.a": {"p.y.b"}, "p.y.b": {"p.x.c"}, "p.x.c": set()}
    assert collapse(graph) == {"p.x": {"p.y"}, "p.y": {"p.x"}}


def test_type_checking_imports_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pofa.cli\n"
                    "def f():\n    from . import sibling\n", encoding="utf-8")
    names = imported_names(Module("pofa.pkg.m", path, is_package=False))
    assert "pofa.cli" not in names
    assert "pofa.pkg.sibling" in names


def test_units_and_vocabulary_have_one_home() -> None:
    # DAYS_PER_MONTH (30.4375) and friends are defined in pofa.units only; the vocabularies in
    # pofa.vocabulary only (other modules import them).
    homes = {"DAYS_PER_MONTH": "pofa.units", "DAYS_PER_YEAR": "pofa.units",
             "PatientPattern": "pofa.vocabulary", "LesionOutcome": "pofa.vocabulary",
             "FailureClass": "pofa.vocabulary", "MatchClass": "pofa.vocabulary",
             "PatternComponent": "pofa.vocabulary"}
    elsewhere = []
    for name, module in source_modules().items():
        tree = ast.parse(module.path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            defined: list[str] = []
            if isinstance(node, ast.ClassDef) and any("Enum" in ast.unparse(b) for b in node.bases):
                defined = [node.name]  # an enum (power.design.LesionOutcome is a planned design, not one)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined = [t.id for t in targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.Constant) and node.value in (30.4375, 365.25) and name != "pofa.units":
                elsewhere.append(f"{name}:{node.lineno}: the literal {node.value} (use pofa.units)")
            for d in defined:
                if d in homes and homes[d] != name:
                    elsewhere.append(f"{name}:{node.lineno}: defines {d} (its home is {homes[d]})")
    assert not elsewhere, "\n".join(elsewhere)
