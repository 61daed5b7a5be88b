"""The report renders results; it does not compute them: no module of pofa.report imports an estimator.

Every module of ``pofa.report`` (including imports inside functions) may import from ``pofa.stats`` only the
typed result classes of :mod:`pofa.stats.results`. A report that imported ``kaplan_meier`` or
``cumulative_incidence`` could draw a curve other than the one the analysis estimated.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pofa.report

REPORT = Path(pofa.report.__file__).parent
ALLOWED = {"pofa.stats.results"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [
                (node.lineno, f"{node.module}.{a.name}")
                for a in node.names
                if node.module in ("pofa", "pofa.stats")
            ]
    return out


def _forbidden(path: Path, root: Path = REPORT.parent) -> list[str]:
    bad = []
    for line, name in _imports(path):
        if name == "pofa.stats" or name.startswith("pofa.stats."):
            if name not in ALLOWED and not any(name.startswith(a + ".") for a in ALLOWED):
                bad.append(f"{path.relative_to(root)}:{line} imports {name}")
    return bad


def test_report_imports_only_result_types_from_stats() -> None:
    modules = sorted(REPORT.rglob("*.py"))
    assert len(modules) > 10  # the package, its plots and tables
    bad = [b for p in modules for b in _forbidden(p)]
    assert bad == [], "the report imports estimators:\n" + "\n".join(bad)


def test_the_check_catches_an_estimator_import(tmp_path: Path) -> None:
    sneaky = tmp_path / "probe.py"
    sneaky.write_text(
        "def f():\n    from pofa.stats.survival import kaplan_meier\n    from pofa import stats\n",
        encoding="utf-8",
    )
    bad = _forbidden(sneaky, tmp_path)
    assert len(bad) == 2 and "pofa.stats.survival" in bad[0]


def test_report_reads_no_results_by_dotted_path() -> None:
    for p in REPORT.rglob("*.py"):
        text = p.read_text(encoding="utf-8")
        assert "lookup(" not in text, p
        assert "def term_label" not in text, p  # terms are labelled by the statistics, not re-parsed
