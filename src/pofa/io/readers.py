"""Readers: every table of a study becomes a frame of text cells, whatever the file format.

Cells are kept as text ("" for blank) so that nothing is guessed at read time: ``"007"`` stays ``"007"`` and
``"1.10"`` is not ``"1.1"``. Parsing into dates, numbers and booleans happens in :mod:`pofa.validation`, which
reports every cell it cannot parse. Input files are opened read-only and never modified.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pofa.findings import Finding, Severity
from pofa.schema import TABLES, Kind, TableName


class StudyFormat(enum.Enum):
    """How the tables of a study are stored."""

    CSV = "csv"
    EXCEL = "excel"
    PARQUET = "parquet"
    MIXED = "mixed"


#: Data rows start at spreadsheet row 2 (the header is row 1).
FIRST_DATA_ROW = 2

EXCEL_SUFFIXES = (".xlsx", ".xlsm")


@dataclass(frozen=True, slots=True)
class RawTable:
    """A table as read: text cells, normalised headers, and where it came from.

    ``frame`` is indexed by spreadsheet row number (header = row 1) and holds only strings.
    ``headers`` maps each normalised column name to the header as written.
    """

    name: TableName
    source: str
    path: Path
    frame: pd.DataFrame
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class ReadResult:
    """The tables found in a study and the problems met while reading them."""

    tables: dict[TableName, RawTable]
    findings: tuple[Finding, ...]
    format: StudyFormat
    files: tuple[Path, ...]


def _error(code: str, file: str, message: str, hint: str, row: int | None = None,
           column: str | None = None, severity: Severity = Severity.ERROR) -> Finding:
    return Finding(severity, code, file, row, column, message, hint)


def _text(value: object) -> str:
    """One cell as text, the way a user typed or Excel stored it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, pd.Timestamp):
        return _text(value.to_pydatetime())
    return str(value).strip()


def normalise_header(header: object) -> str:
    """Header as matched against the format: surrounding blanks removed, lower case, inner blanks as '_'."""
    return "_".join(str(header).strip().lower().split())


def _frame_from_rows(header: list[object], rows: list[list[str]], source: str,
                     findings: list[Finding]) -> tuple[pd.DataFrame, dict[str, str]]:
    names: list[str] = []
    headers: dict[str, str] = {}
    for pos, h in enumerate(header):
        written = _text(h)
        norm = normalise_header(written) if written else f"unnamed_{pos + 1}"
        if norm in headers:
            findings.append(_error(
                "duplicate-column", source, f"column {written!r} appears more than once", "keep one of them",
                row=1, column=norm))
            norm = f"{norm}__{pos + 1}"
        headers[norm] = written
        names.append(norm)
    width = len(names)
    cells = [(r + [""] * width)[:width] for r in rows]
    frame = pd.DataFrame(cells, columns=names, dtype=object)
    frame.index = pd.RangeIndex(FIRST_DATA_ROW, FIRST_DATA_ROW + len(frame), name="row")
    # Drop columns that are blank in the header and in every cell (stray Excel formatting).
    for name in [n for n in names if n.startswith("unnamed_")]:
        if (frame[name] == "").all():
            frame = frame.drop(columns=name)
            headers.pop(name)
    return frame, headers


def _drop_blank_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with every cell blank are not records (spreadsheets leave them); they keep their row numbers."""
    if frame.empty or frame.shape[1] == 0:
        return frame
    blank = (frame == "").all(axis=1)
    return frame.loc[~blank] if blank.any() else frame


def read_csv_table(path: Path, name: TableName, findings: list[Finding]) -> RawTable | None:
    """Read one CSV file as text cells (UTF-8, with or without BOM; Latin-1 accepted with a warning)."""
    source = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        findings.append(_error("unreadable-file", source, f"cannot read the file: {exc.strerror or exc}",
                               "check that the file exists and is readable"))
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        findings.append(_error("encoding", source, "the file is not UTF-8; it was read as Latin-1",
                               "save the file as CSV UTF-8", severity=Severity.WARNING))
    if "\x00" in text:
        findings.append(_error("unreadable-file", source, "the file holds binary data, not CSV text",
                               "export the table as CSV (comma-separated, UTF-8)"))
        return None
    import csv
    import io

    try:
        sample = text[:4096]
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else csv.excel
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False))
    except csv.Error as exc:
        findings.append(_error("unreadable-file", source, f"not a well-formed CSV file: {exc}",
                               "export the table again as CSV (comma-separated, UTF-8)"))
        return None
    if not rows or not any(c.strip() for c in rows[0]):
        findings.append(_error("empty-file", source, "the file has no header row",
                               "the first row must hold the column names"))
        return None
    header, body = rows[0], rows[1:]
    width = len(header)
    for i, r in enumerate(body):
        if len(r) > width and any(c.strip() for c in r[width:]):
            findings.append(_error("extra-cells", source, f"the row has {len(r)} cells but the header has {width}",
                                   "remove the extra cells or add a header for them", row=i + FIRST_DATA_ROW))
    body = [[c.strip() for c in r] for r in body]
    frame, headers = _frame_from_rows(list(header), body, source, findings)
    return RawTable(name, source, path, _drop_blank_rows(frame), headers)


def read_parquet_table(path: Path, name: TableName, findings: list[Finding]) -> RawTable | None:
    """Read one Parquet file; every cell becomes text as a user would have typed it."""
    source = path.name
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for corrupt files; all mean "cannot read"
        findings.append(_error("unreadable-file", source, f"not a readable Parquet file ({type(exc).__name__})",
                               "write the table again as Parquet, or use CSV"))
        return None
    header = list(df.columns)
    rows = [[_text(v) for v in rec] for rec in df.itertuples(index=False, name=None)]
    frame, headers = _frame_from_rows(header, rows, source, findings)
    _flag_numeric_ids(df, name, source, findings)
    return RawTable(name, source, path, _drop_blank_rows(frame), headers)


def _flag_numeric_ids(df: pd.DataFrame, name: TableName, source: str, findings: list[Finding]) -> None:
    spec = TABLES[name]
    for col in df.columns:
        norm = normalise_header(col)
        c = spec.column(norm)
        if c is not None and c.kind is Kind.ID and pd.api.types.is_float_dtype(df[col]):
            findings.append(_error(
                "numeric-id", source,
                "identifiers are stored as decimal numbers: '1.10' would read as '1.1' and '007' as '7'",
                "store identifier columns as text", column=norm, severity=Severity.WARNING))


def _workbook_sheets(path: Path, findings: list[Finding]) -> Iterator[tuple[str, list[list[object]]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl/zipfile raise many types for a damaged workbook
        findings.append(_error("unreadable-file", path.name, f"not a readable Excel workbook ({type(exc).__name__})",
                               "open it in Excel and save it again as .xlsx"))
        return
    try:
        for ws in wb.worksheets:
            yield ws.title, [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def read_workbook(path: Path, findings: list[Finding]) -> dict[TableName, RawTable]:
    """Read the sheets of one Excel workbook named like the tables (case-insensitive)."""
    wanted = {t.value: t for t in TableName}
    tables: dict[TableName, RawTable] = {}
    for title, rows in _workbook_sheets(path, findings):
        name = wanted.get(normalise_header(title))
        if name is None:
            continue
        source = f"{path.name}[{title}]"
        if not rows or not any(v is not None and str(v).strip() for v in rows[0]):
            findings.append(_error("empty-file", source, "the sheet has no header row",
                                   "the first row must hold the column names"))
            continue
        header = rows[0]
        while header and (header[-1] is None or not str(header[-1]).strip()):
            header = header[:-1]
        spec = TABLES[name]
        id_cols = {i for i, h in enumerate(header)
                   if (c := spec.column(normalise_header(_text(h)))) is not None and c.kind is Kind.ID}
        body: list[list[str]] = []
        for r_i, r in enumerate(rows[1:]):
            for i in id_cols:
                if i < len(r) and isinstance(r[i], float) and not float(r[i]).is_integer():
                    findings.append(_error(
                        "numeric-id", source,
                        f"identifier {r[i]!r} is stored as a number: '1.10' reads as '1.1'",
                        "format the identifier column as Text in Excel and type the ids again",
                        row=r_i + FIRST_DATA_ROW, column=normalise_header(_text(header[i])),
                        severity=Severity.WARNING))
            body.append([_text(v) for v in r])
        frame, headers = _frame_from_rows(list(header), body, source, findings)
        tables[name] = RawTable(name, source, path, _drop_blank_rows(frame), headers)
    return tables


def read_study_tables(path: Path) -> ReadResult:
    """Find and read the tables of a study.

    A study is a folder holding ``patients``, ``lesions`` and optionally ``failures`` as CSV or Parquet files,
    or one Excel workbook with one sheet per table; or the path of such a workbook.
    """
    findings: list[Finding] = []
    tables: dict[TableName, RawTable] = {}
    files: list[Path] = []
    formats: set[StudyFormat] = set()
    label = path.name or str(path)
    if path.is_file():
        if path.suffix.lower() in EXCEL_SUFFIXES:
            tables.update(read_workbook(path, findings))
            files.append(path)
            formats.add(StudyFormat.EXCEL)
        else:
            findings.append(_error("not-a-study", label, "a study is a folder of tables or one Excel workbook",
                                   "give the study folder (holding patients.csv, lesions.csv ...) or an .xlsx file"))
    elif path.is_dir():
        entries = {p.name.lower(): p for p in sorted(path.iterdir()) if p.is_file()}
        workbooks = [p for n, p in entries.items() if n.endswith(EXCEL_SUFFIXES) and not n.startswith("~$")]
        for name in TableName:
            candidates = [entries[f"{name.value}{ext}"] for ext in (".csv", ".parquet")
                          if f"{name.value}{ext}" in entries]
            if len(candidates) > 1:
                findings.append(_error(
                    "ambiguous-table", label,
                    f"the table {name.value} is given twice: {', '.join(p.name for p in candidates)}",
                    "keep one file per table"))
            if not candidates:
                continue
            p = candidates[0]
            files.append(p)
            if p.suffix.lower() == ".csv":
                formats.add(StudyFormat.CSV)
                t = read_csv_table(p, name, findings)
            else:
                formats.add(StudyFormat.PARQUET)
                t = read_parquet_table(p, name, findings)
            if t is not None:
                tables[name] = t
        if workbooks and not files:
            if len(workbooks) > 1:
                findings.append(_error(
                    "ambiguous-table", label,
                    f"the folder holds several workbooks: {', '.join(p.name for p in workbooks)}",
                    "keep one workbook per study folder"))
            else:
                tables.update(read_workbook(workbooks[0], findings))
                files.append(workbooks[0])
                formats.add(StudyFormat.EXCEL)
    else:
        findings.append(_error("not-a-study", label, f"no such file or folder: {path}",
                               "check the path of the study folder"))
    seen_unreadable = {f.file for f in findings if f.code in ("unreadable-file", "empty-file", "not-a-study")}
    where = files[0].name if len(files) == 1 and files[0].suffix.lower() in EXCEL_SUFFIXES else label
    for name in TableName:
        spec = TABLES[name]
        if spec.required and name not in tables:
            if any(s.startswith(name.value) or "[" + name.value in s.lower() for s in seen_unreadable):
                continue
            if "not-a-study" in {f.code for f in findings}:
                continue
            findings.append(_error(
                "missing-table", where, f"the required table '{name.value}' was not found",
                f"add {name.value}.csv (or {name.value}.parquet, or a sheet named '{name.value}' in the workbook)"))
    fmt = formats.pop() if len(formats) == 1 else (StudyFormat.MIXED if formats else StudyFormat.CSV)
    return ReadResult(tables, tuple(findings), fmt, tuple(files))
