"""How ``pofa validate`` prints findings: one grep-able line each off a terminal, a table that never breaks a
word on one, JSON on request; and each trap of hand-typed clinical data reported at file, row and column."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from pofa.cli import app
from pofa.cli import output as out

CORPUS = Path(__file__).parent / "corpus"
runner = CliRunner()
#: file:row:column: severity: message (what to do) -- row and column optional.
LINE = re.compile(r"^(?P<file>[^:]+)(?::(?P<row>[0-9]+))?(?::(?P<column>[a-z0-9_.()/-]+))?: "
                  r"(?P<severity>error|warning): (?P<message>.+) \((?P<hint>.+)\)$")


def expected(case: str) -> list[dict[str, object]]:
    return json.loads((CORPUS / case / "expected.json").read_text(encoding="utf-8"))["findings"]


def plain_lines(case: str, *args: str) -> list[str]:
    result = runner.invoke(app, ["validate", str(CORPUS / case), *args])
    return result.stdout.splitlines()


def test_piped_output_is_one_line_per_finding_and_one_summary() -> None:
    """Off a terminal (CliRunner has none, as `pofa validate STUDY | cat`): no table, no wrapping."""
    lines = plain_lines("csv_extra_cells")
    findings, summary = lines[:-1], lines[-1]
    assert len(findings) == len(expected("csv_extra_cells")) == 4
    for line in findings:
        assert LINE.match(line), line
    assert summary == "4 error(s), 0 warning(s)."
    assert sum("error(s)" in ln for ln in lines) == 1
    assert "lesions.csv:4:extranodal: error: 'left lobe' is not a yes/no" in lines[3]


def test_text_format_is_the_same_as_piped_and_json_is_an_alias() -> None:
    assert plain_lines("csv_bad_date", "--format", "text") == plain_lines("csv_bad_date")
    a = runner.invoke(app, ["validate", str(CORPUS / "csv_bad_date"), "--format", "json"])
    b = runner.invoke(app, ["validate", str(CORPUS / "csv_bad_date"), "--json"])
    assert a.exit_code == b.exit_code == 2
    assert json.loads(a.stdout) == json.loads(b.stdout)
    clash = runner.invoke(app, ["validate", str(CORPUS / "csv_bad_date"), "--json", "--format", "text"])
    assert clash.exit_code == 2


def test_summary_and_advice_are_separate_lines() -> None:
    result = runner.invoke(app, ["validate", str(CORPUS / "csv_bad_date")])
    assert result.stdout.endswith("1 error(s), 0 warning(s).\n")
    assert result.stderr == "Fix the errors above, then run pofa validate again.\n"


def test_a_line_break_in_a_cell_does_not_split_the_finding(tmp_path: Path) -> None:
    study = tmp_path / "s"
    study.mkdir()
    for p in (CORPUS / "csv_bad_date").glob("*.csv"):
        (study / p.name).write_bytes(p.read_bytes())
    text = (study / "patients.csv").read_text(encoding="utf-8").replace("02/06/2018", '"02/06\n2018"')
    (study / "patients.csv").write_text(text, encoding="utf-8")
    lines = runner.invoke(app, ["validate", str(study)]).stdout.splitlines()
    assert len(lines) == 2 and LINE.match(lines[0]), lines


@pytest.mark.parametrize("width", [80, 100, 200])
def test_table_wraps_at_word_boundaries_only(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    """A terminal table: column names and file names are never broken; long text wraps between words."""
    console = Console(force_terminal=True, color_system=None, width=width, highlight=False)
    monkeypatch.setattr(out, "console", console)
    with console.capture() as cap:
        from pofa.study import load_study

        report = load_study(CORPUS / "csv_header_suv_max").validate()
        out.print_report(report, 50)
    text = cap.get()
    lines = text.splitlines()
    assert all(len(ln) <= width for ln in lines), text
    assert "┃" in text or width < 200, "a wide terminal shows the table"
    if "┃" in text:  # the table was printed
        for name in ("diameter_cm", "suvmax", "lesions.csv"):
            assert name in text, text
        words = set(re.findall(r"[A-Za-z_']+", " ".join(
            f"{f.file} {f.column or ''} {f.message} {f.hint}" for f in report.findings)))
        for cell in re.findall(r"│([^│]*)", text):
            for w in re.findall(r"[A-Za-z_']+", cell):
                assert w in words or w in {"error", "warning"}, (w, text)
    else:  # too narrow for the table: the text form, one line per finding
        assert all(LINE.match(ln) for ln in lines[:-1]), text


def test_narrow_terminal_falls_back_to_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(force_terminal=True, color_system=None, width=50, highlight=False)
    monkeypatch.setattr(out, "console", console)
    from pofa.study import load_study

    report = load_study(CORPUS / "csv_extra_cells").validate()
    with console.capture() as cap:
        out.print_report(report, 50)
    assert "┃" not in cap.get()


TRAPS = [
    # (case, the trap of hand-typed data it shows)
    ("csv_covariate_unknown", "age = unknown in an undeclared number column"),
    ("csv_covariate_unit_in_cell", "age = 67 y"),
    ("csv_covariate_ecog_word", "ECOG 1 in a number column"),
    ("csv_covariate_declared_number", "a declared number covariate with text"),
    ("csv_covariate_declared_category", "a declared category with an unknown level"),
    ("csv_header_suv_max", "headers SUVmax (g/ml) and Diameter (cm)"),
    ("csv_semicolon_decimal_comma", "a file with decimal commas: one finding"),
    ("csv_decimal_comma", "one decimal comma"),
    ("csv_bad_progression_year", "one bad progression date: one finding"),
    ("csv_progression_after_followup", "progression after follow-up: its failure row not repeated"),
    ("csv_covariate_bad_declaration", "a misspelt covariate type in study.toml"),
]


@pytest.mark.parametrize(("case", "trap"), TRAPS)
def test_each_trap_is_one_located_line(case: str, trap: str) -> None:
    lines = plain_lines(case)[:-1]
    want = expected(case)
    assert len(lines) == len(want), (trap, lines)
    got = set()
    for line in lines:
        m = LINE.match(line)
        assert m, (trap, line)
        got.add((m["severity"], m["file"], int(m["row"]) if m["row"] else None, m["column"]))
    assert got == {(f["severity"], f["file"], f["row"], f["column"]) for f in want}, trap


def test_header_help_names_the_present_column() -> None:
    text = "\n".join(plain_lines("csv_header_suv_max"))
    assert "the column 'SUVmax (g/ml)' most likely means it" in text
    assert "the column 'Diameter (cm)' most likely means it" in text
    assert '[columns] "Diameter (cm)" = "diameter_cm"' in text
    assert "'Diameter (cm)', 'SUVmax (g/ml)'" in text  # the unrecognised columns, listed once


def test_skipped_checks_are_counted() -> None:
    (line,) = plain_lines("csv_bad_progression_year")[:-1]
    assert "(2 check(s) that depend on this cell were skipped)" in line


def test_the_real_program_into_a_pipe() -> None:
    """`pofa validate STUDY | cat`: the program's standard output is a pipe, so plain lines."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "40"}
    done = subprocess.run([sys.executable, "-m", "pofa", "validate", str(CORPUS / "csv_header_suv_max")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and all(LINE.match(ln) for ln in lines[:-1]), done.stdout
    assert lines[-1] == "2 error(s), 1 warning(s)."
