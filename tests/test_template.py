"""``pofa template``: the workbook, the CSV files, and the demo study typed into the workbook."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

import pofa
from pofa.cli import app
from pofa.schema import TABLES, Kind, TableName
from pofa.template import EXAMPLE_ROWS, column_rows, write_csv_templates, write_workbook

DEMO = Path(__file__).resolve().parents[1] / "src" / "pofa" / "data" / "demo"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _typed(kind: Kind | None, text: str) -> object:
    """A cell as a person types it into the template: dates as dates, numbers as numbers."""
    if text == "":
        return None
    if kind is Kind.DATE:
        return dt.datetime.fromisoformat(text)
    if kind is Kind.NUMBER:
        return float(text)
    if kind is None:  # a covariate: numbers stay numbers
        try:
            return float(text) if "." in text else int(text)
        except ValueError:
            return text
    return text


def test_workbook_sheets_headers_and_help(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "study.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["patients", "lesions", "failures", "measurements", "scans", "columns"]
    for table, spec in TABLES.items():
        ws = wb[table.value]
        assert [c.value for c in ws[1]] == [c.name for c in spec.columns]
        assert ws.max_row == 1 + len(EXAMPLE_ROWS[table])
        for j, col in enumerate(spec.columns, start=1):
            letter = ws.cell(row=1, column=j).column_letter
            if col.kind in (Kind.ID, Kind.TEXT):
                assert ws.column_dimensions[letter].number_format == "@"
                assert ws.cell(row=2, column=j).number_format == "@"
            if col.kind is Kind.DATE:
                assert ws.column_dimensions[letter].number_format == "yyyy-mm-dd"
        validations = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}
        for j, col in enumerate(spec.columns, start=1):
            letter = ws.cell(row=1, column=j).column_letter
            dv = validations.get(f"{letter}2:{letter}5001")
            if col.kind is Kind.BOOLEAN:
                assert dv is not None and dv.type == "list" and dv.formula1 == '"yes,no"'
            elif col.kind is Kind.DATE:
                assert dv is not None and dv.type == "date" and dv.formula1 == "DATE(1900,1,1)"
            elif col.kind is Kind.NUMBER:
                assert dv is not None and dv.type == "decimal"
                assert (dv.operator == "greaterThan") == col.positive
            else:
                assert dv is None
        # Example rows: yellow, with a note on the id cell.
        assert ws.cell(row=2, column=1).value.startswith("EXAMPLE-")
        assert ws.cell(row=2, column=1).fill.fgColor.rgb.endswith("FFF2CC")
        assert "delete" in ws.cell(row=2, column=1).comment.text
    help_rows = [[c.value or "" for c in r] for r in wb["columns"].iter_rows()]
    header_at = next(i for i, r in enumerate(help_rows) if r[:2] == ["table", "column"])
    explained = {(r[0], r[1]) for r in help_rows[header_at + 1:]}
    assert explained == {(t.value, c.name) for t, s in TABLES.items() for c in s.columns}
    assert len(column_rows()) - 1 == sum(len(s.columns) for s in TABLES.values())
    by = {(r[0], r[1]): r for r in help_rows[header_at + 1:]}
    assert by[("lesions", "extranodal")][2:5] == ["yes/no", "yes", "yes or no"]
    assert by[("patients", "progression_date")][3] == "column yes, cell may be blank"
    assert by[("failures", "site")][3] == "for new lesions"
    assert "> 0" in by[("lesions", "suvmax")][4]


def test_example_rows_are_reported_and_otherwise_valid(tmp_path: Path) -> None:
    for study in (write_workbook(tmp_path / "study.xlsx"), write_csv_templates(tmp_path / "csv")):
        report = pofa.load_study(study).validate()
        assert {f.code for f in report.findings} == {"example-row"}, report.findings
        assert len(report.findings) == sum(len(r) for r in EXAMPLE_ROWS.values())  # one per row
        assert all(f.severity is pofa.Severity.WARNING and f.row is not None and f.column == "patient_id"
                   for f in report.findings)
        assert report.exit_code() == 1


def test_example_id_of_a_lesion_is_reported(tmp_path: Path) -> None:
    folder = write_csv_templates(tmp_path / "csv", examples=False)
    (folder / "patients.csv").write_text(
        "patient_id,index_date,last_followup_date,progression_date,death_date\nP1,2020-01-01,2021-01-01,,\n")
    (folder / "lesions.csv").write_text("patient_id,lesion_id,site,extranodal,diameter_cm,suvmax\n"
                                        "P1,example-9,bone,no,1.2,3.4\n")
    report = pofa.load_study(folder).validate()
    [f] = report.findings
    assert (f.code, f.file, f.row, f.column) == ("example-row", "lesions.csv", 2, "lesion_id")


def test_template_filled_with_the_demo_study_validates_without_findings(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "study.xlsx")
    wb = load_workbook(path)
    for table in TableName:
        ws = wb[table.value]
        ws.delete_rows(2, ws.max_row)  # the example rows
        rows = _rows(DEMO / f"{table.value}.csv")
        header = [c.value for c in ws[1]]
        extra = [c for c in rows[0] if c not in header]
        for j, name in enumerate(extra, start=len(header) + 1):  # covariates: columns to the right
            ws.cell(row=1, column=j, value=name)
        header += extra
        for r in rows:
            ws.append([_typed(k.kind if (k := TABLES[table].column(c)) else None, r.get(c, ""))
                       for c in header])
    wb.save(path)
    study = pofa.load_study(path)
    assert study.validate().findings == ()
    demo = pofa.load_study(DEMO)
    for name in ("patients", "lesions", "failures"):
        a, b = getattr(study, name), getattr(demo, name)
        # The template also has the format's optional columns that the demo leaves out (e.g. the
        # radiotherapy columns): they are read, and blank.
        assert [c for c in a.columns if c in set(b.columns)] == list(b.columns)
        assert all(a[c].isna().all() for c in a.columns if c not in set(b.columns))
        assert len(a) == len(b)
    assert (study.patients["index_date"] == demo.patients["index_date"]).all()
    assert (study.lesions["lesion_id"] == demo.lesions["lesion_id"]).all()


def test_cli_template_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["template", "--out", str(tmp_path / "study.xlsx")])
    assert res.exit_code == 0, res.output
    assert load_workbook(tmp_path / "study.xlsx").sheetnames[:3] == ["patients", "lesions", "failures"]
    res = runner.invoke(app, ["template", "--out", str(tmp_path / "study.xlsx")])
    assert res.exit_code == 2 and "--force" in res.output
    res = runner.invoke(app, ["template", "--csv", str(tmp_path / "csv"), "--no-examples"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "csv" / "lesions.csv").read_text().splitlines() == [
        ",".join(c.name for c in TABLES[TableName.LESIONS].columns)]
    res = runner.invoke(app, ["template", "--redcap", "--out", str(tmp_path / "dictionary.csv")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "dictionary.csv").read_text().startswith('"Variable / Field Name","Form Name"')
    res = runner.invoke(app, ["template", "--redcap", "--out", str(tmp_path / "d.xlsx")])
    assert res.exit_code == 2
    res = runner.invoke(app, ["template"])
    assert res.exit_code == 2 and "exactly one" in res.output


@pytest.mark.parametrize("table", list(TableName))
def test_csv_template_rows_are_the_examples(tmp_path: Path, table: TableName) -> None:
    folder = write_csv_templates(tmp_path / "csv")
    rows = _rows(folder / f"{table.value}.csv")
    assert [r["patient_id"] for r in rows] == [r["patient_id"] for r in EXAMPLE_ROWS[table]]
