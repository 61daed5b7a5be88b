"""Empty study templates: an Excel workbook to type a study into, or CSV files with the headers.

The workbook has one sheet per table (``patients``, ``lesions``, ``failures``) with the format's headers in
row 1, a ``columns`` sheet that explains every column (generated from :mod:`pofa.schema`), data validation
(yes/no lists, dates, numbers; identifier columns formatted as text so that ``007`` stays ``007``) and a few
example rows. Example rows have ids starting with ``EXAMPLE-`` and a yellow fill; :func:`pofa.load_study`
warns about every such row left in a study (:func:`example_row_findings`), so they cannot pass for data.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
from pathlib import Path

from pofa import atomic
from pofa.findings import Finding, Severity
from pofa.io.readers import RawTable
from pofa.schema import MAX_YEAR, MIN_YEAR, TABLES, Column, Kind, TableName

#: Ids of example rows start with this (case ignored).
EXAMPLE_PREFIX = "EXAMPLE-"


class TemplateCode(enum.StrEnum):
    """The code of the warning for a template's example row left in a study (docs/data-entry.md)."""

    EXAMPLE_ROW = "example-row"


EXAMPLE_ROW = TemplateCode.EXAMPLE_ROW
#: Rows of the sheets that get data validation (header excluded).
VALIDATED_ROWS = 5000
HELP_SHEET = "columns"

#: Example rows per table (missing keys = blank cells). Two patients: one progressed with a local and a
#: new failure lesion, one did not.
EXAMPLE_ROWS: dict[TableName, tuple[dict[str, str], ...]] = {
    TableName.PATIENTS: (
        {"patient_id": "EXAMPLE-1", "index_date": "2021-03-01", "last_followup_date": "2022-03-01",
         "progression_date": "2021-09-15"},
        {"patient_id": "EXAMPLE-2", "index_date": "2021-05-10", "last_followup_date": "2022-06-30"},
    ),
    TableName.LESIONS: (
        {"patient_id": "EXAMPLE-1", "lesion_id": "L01", "site": "mediastinum", "extranodal": "no",
         "diameter_cm": "6.2", "suvmax": "14.1", "x_mm": "-31.5", "y_mm": "-69.2", "z_mm": "3.3",
         "mtv_ml": "25.0", "tlg": "180.0", "bridging_rt": "yes"},
        {"patient_id": "EXAMPLE-1", "lesion_id": "L02", "site": "bone", "extranodal": "yes",
         "diameter_cm": "2.1", "suvmax": "8.0", "bridging_rt": "no"},
        {"patient_id": "EXAMPLE-2", "lesion_id": "L01", "site": "cervical lymph node", "extranodal": "no",
         "diameter_cm": "1.5", "suvmax": "5.2"},
    ),
    TableName.FAILURES: (
        {"patient_id": "EXAMPLE-1", "failure_id": "F1", "scan_date": "2021-09-15",
         "baseline_lesion_id": "L01", "site": "mediastinum", "extranodal": "no", "diameter_cm": "3.0"},
        {"patient_id": "EXAMPLE-1", "failure_id": "F2", "scan_date": "2021-09-15", "site": "liver",
         "extranodal": "yes", "diameter_cm": "1.8"},
    ),
    TableName.MEASUREMENTS: (
        {"patient_id": "EXAMPLE-1", "lesion_id": "L01", "scan_date": "2021-02-22", "ldi_mm": "62",
         "sdi_mm": "40", "suvmax": "14.1", "deauville": "5", "target": "yes"},
        {"patient_id": "EXAMPLE-1", "lesion_id": "L01", "scan_date": "2021-03-31", "ldi_mm": "30",
         "sdi_mm": "21", "suvmax": "4.2", "deauville": "4", "target": "yes"},
    ),
    TableName.SCANS: (
        {"patient_id": "EXAMPLE-1", "scan_date": "2021-03-31", "deauville": "4", "bone_marrow": "no",
         "new_lesions": "no", "clinical_deterioration": "no"},
    ),
}

_WITHIN = {"lesion_id": "unique within its patient", "failure_id": "unique within its patient",
           "patient_id": "unique"}


def allowed_values(table: TableName, col: Column) -> str:
    """What a cell of the column may hold, in words (the ``columns`` sheet and docs).

    Parameters
    ----------
    table : TableName
        The column's table.
    col : Column
        The column.

    Returns
    -------
    str
        The allowed values in words.
    """
    if col.kind is Kind.ID:
        text = "text"
        if table is TableName.PATIENTS or col.name != "patient_id":
            text += f" ({_WITHIN[col.name]})" if col.name in _WITHIN else ""
        else:
            text += " (a patient_id of the patients sheet)"
        if col.name == "baseline_lesion_id":
            text = "text: a lesion_id of the same patient, blank for a new lesion"
        return text
    if col.kind is Kind.TEXT:
        return "free text"
    if col.kind is Kind.DATE:
        return f"a date YYYY-MM-DD ({MIN_YEAR}-{MAX_YEAR})"
    if col.kind is Kind.BOOLEAN:
        return "yes or no"
    text = "a number (decimal point)"
    if col.positive:
        text += ", > 0"
    if col.warn_above is not None:
        text += f"; above {col.warn_above:g} is implausible (a warning)"
    return text


def _required(table: TableName, col: Column) -> str:
    if table is TableName.FAILURES and col.name in ("site", "extranodal"):
        return "for new lesions"
    if not col.required:
        return "no"
    return "yes" if not col.blank_ok else "column yes, cell may be blank"


def column_rows() -> list[list[str]]:
    """The ``columns`` sheet: one row per column of every table, from :mod:`pofa.schema`.

    Returns
    -------
    list of list of str
        A header row (table, column, type, required, allowed values, example, meaning), then one row per
        column.
    """
    rows = [["table", "column", "type", "required", "allowed values", "example", "meaning"]]
    for table, spec in TABLES.items():
        example = EXAMPLE_ROWS[table][0]
        for col in spec.columns:
            rows.append([table.value, col.name, col.kind.value, _required(table, col),
                         allowed_values(table, col), example.get(col.name, ""), col.description])
    return rows


_INSTRUCTIONS = (
    "How to fill in this workbook (pofa study format, docs/study-format.md):",
    "1. One sheet per table: patients (one row per patient), lesions (one row per baseline lesion), failures "
    "(one row per lesion seen at a failure scan; may stay empty).",
    f"2. Rows whose ids start with {EXAMPLE_PREFIX} (yellow) are examples: delete them before entering data "
    "(pofa validate warns about every example row left).",
    "3. Keep row 1 of each sheet as it is (the column names). Add columns to the right for covariates "
    "(age, ECOG...): each extra column is kept with its type.",
    "4. Dates as YYYY-MM-DD; yes/no cells yes or no; numbers with a decimal point; leave unknown cells blank "
    "(not NA).",
    "5. Check the workbook with: pofa validate study.xlsx",
)


def _example_value(col: Column, text: str) -> object:
    if not text:
        return None
    if col.kind is Kind.DATE:
        return dt.date.fromisoformat(text)
    if col.kind is Kind.NUMBER:
        return float(text)
    return text


def workbook_bytes(examples: bool = True) -> bytes:
    """The template workbook (.xlsx) as bytes.

    Parameters
    ----------
    examples : bool
        Include the example rows.

    Returns
    -------
    bytes
        The .xlsx file contents.
    """
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    wb.remove(wb.active)
    example_fill = PatternFill("solid", fgColor="FFF2CC")
    bold = Font(bold=True)
    for table, spec in TABLES.items():
        ws = wb.create_sheet(table.value)
        ws.append([c.name for c in spec.columns])
        for cell in ws[1]:
            cell.font = bold
        ws.freeze_panes = "A2"
        for j, col in enumerate(spec.columns, start=1):
            letter = get_column_letter(j)
            ws.column_dimensions[letter].width = max(12, len(col.name) + 4)
            rng = f"{letter}2:{letter}{VALIDATED_ROWS + 1}"
            dv: DataValidation | None = None
            if col.kind in (Kind.ID, Kind.TEXT):
                ws.column_dimensions[letter].number_format = "@"
            elif col.kind is Kind.DATE:
                ws.column_dimensions[letter].number_format = "yyyy-mm-dd"
                dv = DataValidation(type="date", operator="between", formula1=f"DATE({MIN_YEAR},1,1)",
                                    formula2=f"DATE({MAX_YEAR},12,31)", allow_blank=True)
                dv.error = f"A date between {MIN_YEAR} and {MAX_YEAR}, typed as YYYY-MM-DD."
            elif col.kind is Kind.BOOLEAN:
                dv = DataValidation(type="list", formula1='"yes,no"', allow_blank=True)
                dv.error = "yes or no"
            elif col.kind is Kind.NUMBER:
                if col.positive:
                    dv = DataValidation(type="decimal", operator="greaterThan", formula1="0",
                                        allow_blank=True)
                    dv.error = "A number greater than 0 (decimal point)."
                else:
                    dv = DataValidation(type="decimal", operator="between", formula1="-100000",
                                        formula2="100000", allow_blank=True)
                    dv.error = "A number (decimal point)."
            note = (f"{col.description}\nAllowed: {allowed_values(table, col)}.\n"
                    f"Required: {_required(table, col)}.")
            ws.cell(row=1, column=j).comment = Comment(note, "pofa")
            if dv is not None:
                dv.showErrorMessage = True
                dv.errorTitle = col.name
                dv.prompt = allowed_values(table, col)
                dv.showInputMessage = True
                dv.add(rng)
                ws.add_data_validation(dv)
        for i, example in enumerate(EXAMPLE_ROWS[table] if examples else (), start=2):
            for j, col in enumerate(spec.columns, start=1):
                cell = ws.cell(row=i, column=j, value=_example_value(col, example.get(col.name, "")))
                cell.fill = example_fill
                if col.kind in (Kind.ID, Kind.TEXT):
                    cell.number_format = "@"
                elif col.kind is Kind.DATE:
                    cell.number_format = "yyyy-mm-dd"
            ws.cell(row=i, column=1).comment = Comment("Example row: delete it before entering data.", "pofa")
    help_ws = wb.create_sheet(HELP_SHEET)
    for line in _INSTRUCTIONS:
        help_ws.append([line])
    help_ws["A1"].font = bold
    help_ws.append([])
    first = help_ws.max_row + 1
    for row in column_rows():
        help_ws.append(row)
    for cell in help_ws[first]:
        cell.font = bold
    for letter, width in zip("ABCDEFG", (10, 20, 8, 16, 48, 14, 70), strict=True):
        help_ws.column_dimensions[letter].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_workbook(path: Path, examples: bool = True) -> Path:
    """Write the template workbook atomically.

    Parameters
    ----------
    path : pathlib.Path
        The .xlsx file to write (replaced if it exists).
    examples : bool
        Include the example rows.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    atomic.write_bytes(Path(path), workbook_bytes(examples))
    return Path(path)


def table_csv(table: TableName, examples: bool = True) -> str:
    """One table's header (and example rows) as CSV text.

    Parameters
    ----------
    table : TableName
        Which table.
    examples : bool
        Include the example rows.

    Returns
    -------
    str
        The CSV text.
    """
    cols = [c.name for c in TABLES[table].columns]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in EXAMPLE_ROWS[table] if examples else ():
        writer.writerow([row.get(c, "") for c in cols])
    return buf.getvalue()


def write_csv_templates(folder: Path, examples: bool = True, force: bool = False) -> Path:
    """Write patients.csv, lesions.csv and failures.csv with the headers into a new folder, atomically.

    Parameters
    ----------
    folder : pathlib.Path
        The folder to create.
    examples : bool
        Include the example rows.
    force : bool
        Replace a non-empty existing folder.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    pofa.errors.PofaError
        When the folder exists and is not empty (without ``force``).
    """
    with atomic.output_dir(Path(folder), force) as tmp:
        for table in TableName:
            atomic.write_text(tmp / f"{table.value}.csv", table_csv(table, examples))
    return Path(folder)


def example_row_findings(tables: dict[TableName, RawTable]) -> list[Finding]:
    """A warning for every row of a study whose id starts with ``EXAMPLE-`` (a template row left in).

    Parameters
    ----------
    tables : dict
        The tables as read.

    Returns
    -------
    list of Finding
        One warning per example row, at its file, row and id column.
    """
    out: list[Finding] = []
    for table, raw in tables.items():
        ids = [c.name for c in TABLES[table].columns if c.kind is Kind.ID and c.name in raw.frame.columns]
        for col in ids[:2]:  # patient_id and the table's own id
            text = raw.frame[col].astype(str).str.upper()
            for row in raw.frame.index[text.str.startswith(EXAMPLE_PREFIX).to_numpy(dtype=bool)]:
                value = str(raw.frame.at[row, col])
                out.append(Finding(
                    Severity.WARNING, EXAMPLE_ROW, raw.source, int(row), col,
                    f"{col} '{value}' is an example row of the template",
                    "delete the example rows (ids starting with EXAMPLE-) before entering or analysing data"))
    return _one_per_row(out)  # patient_id is checked first; the table's own id only for rows not yet named


def _one_per_row(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, int | None]] = set()
    out: list[Finding] = []
    for f in findings:
        if (f.file, f.row) in seen:
            continue
        seen.add((f.file, f.row))
        out.append(f)
    return out
