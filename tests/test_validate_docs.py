"""docs/study-format.md cannot drift from the code: columns, finding codes and settings are all listed."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from pofa.findings import FINDING_CODES, FindingCode
from pofa.schema import TABLES, TableName
from pofa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "study-format.md").read_text(encoding="utf-8")


def section(title_start: str) -> str:
    """The text from the heading that starts with ``title_start`` to the next heading of any level."""
    m = re.search(rf"^#+ {re.escape(title_start)}.*?$(.*?)(?=^#+ |\Z)", DOC, flags=re.M | re.S)
    assert m, f"no section {title_start!r} in docs/study-format.md"
    return m.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first markdown table in ``text`` (cells stripped, header and rule dropped)."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert len(lines) >= 2, "no table"
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    return rows[2:]


def code_cell(cell: str) -> str:
    m = re.fullmatch(r"`([^`]+)`", cell)
    assert m, f"expected a `code` cell, got {cell!r}"
    return m.group(1)


@pytest.mark.parametrize("name", list(TableName))
def test_every_column_is_documented(name: TableName) -> None:
    spec = TABLES[name]
    rows = table_rows(section(f"{name.value} ("))
    documented = {code_cell(r[0]): r for r in rows}
    assert list(documented) == [c.name for c in spec.columns], "columns listed, in schema order"
    for col in spec.columns:
        _, kind, required, blank_ok, meaning = documented[col.name]
        assert kind == col.kind.value, col.name
        assert required == ("yes" if col.required else "no"), col.name
        assert blank_ok == ("yes" if col.blank_ok else "no"), col.name
        assert meaning
    assert f"({'required' if spec.required else 'optional'})" in re.search(
        rf"^### {name.value} .*$", DOC, flags=re.M).group(0)


def test_every_finding_code_is_documented_with_its_severity() -> None:
    rows = table_rows(section("Findings"))
    documented = {code_cell(r[0]): r[1] for r in rows}
    assert set(documented) == {c.value for c in FINDING_CODES}
    for code, (severity, _) in FINDING_CODES.items():
        assert documented[code.value] == severity.value, code
    assert len(rows) == len(documented), "a code is listed twice"


def test_registry_covers_the_enum() -> None:
    assert set(FINDING_CODES) == set(FindingCode)


def _literal_codes_in_source() -> list[tuple[str, str]]:
    """(file, code) for every ``Finding(...)`` built in src/pofa with a literal code string."""
    out = []
    for path in (ROOT / "src" / "pofa").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Finding"
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
                out.append((path.name, node.args[1].value))
    return out


def test_no_finding_code_outside_the_registry() -> None:
    """Findings are made with a FindingCode (so a typo fails at import); a literal code must be registered."""
    codes = {c.value for c in FindingCode}
    for file, code in _literal_codes_in_source():
        assert code in codes, f"{file} emits the unregistered finding code {code!r}"


def test_every_setting_is_documented_with_its_default() -> None:
    rows = table_rows(section("study.toml"))
    documented = {code_cell(r[0]): code_cell(r[1]) for r in rows}
    defaults = Settings().to_json()
    expected = {f"{sec}.{key}": value for sec, values in defaults.items() for key, value in values.items()}
    assert set(documented) == set(expected)
    for key, text in documented.items():
        assert tomllib.loads(f"v = {text}")["v"] == expected[key], key


def test_documented_example_settings_are_valid() -> None:
    from pofa.settings import parse_settings

    block = re.search(r"```toml\n(.*?)```", section("study.toml"), flags=re.S).group(1)
    _, findings = parse_settings(tomllib.loads(block))
    assert findings == []
