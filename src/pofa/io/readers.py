"""Readers: every table of a study becomes a frame of text cells, whatever the file format.

Cells are kept as text ("" for blank) so that nothing is guessed at read time: ``"007"`` stays ``"007"`` and
``"1.10"`` is not ``"1.1"``. Parsing into dates, numbers and booleans happens in :mod:`pofa.validation`, which
reports every cell it cannot parse. Input files are opened read-only and never modified.

Reading never raises on bad input: every problem (a missing, damaged or empty file, a duplicate header, a
ragged row) becomes a :class:`~pofa.findings.Finding` with the file, row (header = row 1) and column.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import enum
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pofa.findings import Finding, finding
from pofa.findings import FindingCode as C
from pofa.io.writers import is_live_formula
from pofa.schema import TABLES, Kind, TableName, normalise_header


class StudyFormat(enum.Enum):
    """How the tables of a study are stored."""

    CSV = "csv"
    EXCEL = "excel"
    PARQUET = "parquet"
    MIXED = "mixed"


#: Data rows start at spreadsheet row 2 (the header is row 1).
FIRST_DATA_ROW = 2

EXCEL_SUFFIXES = (".xlsx", ".xlsm")
#: Spreadsheet files pofa does not read; the finding says to save them as .xlsx or CSV.
UNSUPPORTED_SUFFIXES = (".xls", ".ods", ".numbers")
TABLE_SUFFIXES = (".csv", ".parquet")
#: CSV separators recognised from the header row: comma, semicolon (European Excel), tab.
DELIMITERS = (",", ";", "\t")
_EMPTY_HINT = "the first row must hold the column names, the rows below one record each"
#: Text cells are held as Arrow-backed strings: comparisons, regular expressions and stripping run in C++.
TEXT_DTYPE = pd.StringDtype("pyarrow")


@dataclass(frozen=True, slots=True)
class RawTable:
    """A table as read: text cells, normalised headers, and where it came from.

    ``frame`` is indexed by spreadsheet row number (header = row 1) and holds only text (``""`` = blank),
    as :data:`TEXT_DTYPE`, stripped of surrounding blanks.
    ``headers`` maps each normalised column name to the header as written.
    """

    name: TableName
    source: str
    path: Path
    frame: pd.DataFrame
    headers: dict[str, str]

    @property
    def from_excel(self) -> bool:
        """Whether the table is a sheet of an Excel workbook.

        Returns
        -------
        bool
            True when :attr:`path` has an Excel suffix.
        """
        return self.path.suffix.lower() in EXCEL_SUFFIXES


@dataclass(frozen=True, slots=True)
class ReadResult:
    """The tables found in a study and the problems met while reading them."""

    tables: dict[TableName, RawTable]
    findings: tuple[Finding, ...]
    format: StudyFormat
    files: tuple[Path, ...]


def cell_text(value: object) -> str:
    """Return one cell as text, the way a user typed it or Excel/Parquet stored it (blank = ``""``).

    Booleans become ``yes``/``no``; date-times at midnight become ``YYYY-MM-DD`` (a time zone is dropped:
    the date is the one written in the file's own zone); whole floats lose their ``.0``.

    Parameters
    ----------
    value : object
        The cell's value as the reader gave it.

    Returns
    -------
    str
        The cell's text.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return ""
        try:
            value = pd.Timestamp(value)
        except (ValueError, OverflowError):
            return str(value)
    if isinstance(value, dt.datetime):  # also pandas.Timestamp
        if value.tzinfo is not None:
            value = value.replace(tzinfo=None)
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(v)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, decimal.Decimal):
        return "" if value.is_nan() else str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace").strip()
    return str(value).strip()


def _column_letter(pos: int) -> str:
    """Spreadsheet letter of a 0-based column position (0 -> A, 26 -> AA)."""
    letters = ""
    n = pos + 1
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(65 + r) + letters
    return letters


def _make_frame(header: Sequence[str], cells: pd.DataFrame, source: str,
                findings: list[Finding]) -> tuple[pd.DataFrame, dict[str, str]]:
    """A text frame indexed by spreadsheet row from header texts and the cells by position.

    ``cells`` has one column per header position (object dtype, text). A column without header is dropped (a
    warning if it holds values); a repeated header is an error and only its first column is kept.
    """
    keep: list[int] = []
    names: list[str] = []
    headers: dict[str, str] = {}
    for pos, written in enumerate(header):
        norm = normalise_header(written)
        where = f"{_column_letter(pos)} (column {pos + 1})"
        if not norm:
            if (_as_text(cells.iloc[:, pos]) != "").any():
                findings.append(finding(
                    C.UNNAMED_COLUMN, source, 1, None, f"column {where} holds values but has no header",
                    "write a header in row 1 of that column, or delete the column; it is ignored"))
            continue
        if norm in headers:
            findings.append(finding(
                C.DUPLICATE_COLUMN, source, 1, norm,
                f"column {where} repeats the header {written!r}; only the first such column is read",
                "keep one of the columns, or rename one"))
            continue
        headers[norm] = written
        keep.append(pos)
        names.append(norm)
    frame = pd.DataFrame({name: _as_text(cells.iloc[:, pos]) for name, pos in zip(names, keep, strict=True)},
                         columns=pd.Index(names, dtype=object))
    frame.index = pd.RangeIndex(FIRST_DATA_ROW, FIRST_DATA_ROW + len(cells), name="row")
    return _drop_blank_rows(frame), headers


def _cells_from_rows(rows: list[list[str]], width: int) -> pd.DataFrame:
    """Rows of text cut or padded to ``width`` cells, as an object frame with one column per position."""
    if any(len(r) != width for r in rows):
        rows = [r[:width] if len(r) >= width else r + [""] * (width - len(r)) for r in rows]
    if not rows:
        return pd.DataFrame({j: pd.Series([], dtype=object) for j in range(width)}, columns=range(width))
    return pd.DataFrame(rows, columns=range(width), dtype=object)


def _as_text(col: pd.Series) -> pd.Series:
    """A column of Python strings as Arrow-backed text with surrounding blanks removed (fast vector ops)."""
    try:
        text = col.astype(TEXT_DTYPE)
    except (UnicodeError, ValueError, TypeError):  # e.g. a lone surrogate, which UTF-8 cannot hold
        text = col.map(lambda v: str(v).encode("utf-8", "replace").decode("utf-8")).astype(TEXT_DTYPE)
    return text.str.strip()


def _cells_from_columns(columns: Sequence[pd.Series | Sequence[str]], n_rows: int) -> pd.DataFrame:
    """Columns of text cells (text Series or lists of str) as a frame with one column per position."""
    data = {j: (c.reset_index(drop=True) if isinstance(c, pd.Series) else pd.Series(list(c), dtype=object))
            for j, c in enumerate(columns)}
    return pd.DataFrame(data, index=range(n_rows), columns=range(len(columns)))


def _drop_blank_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with every cell blank are not records (spreadsheets leave them); the others keep their numbers."""
    if frame.empty or frame.shape[1] == 0:
        return frame
    blank = np.logical_and.reduce([(frame[c] == "").to_numpy(dtype=bool) for c in frame.columns])
    return frame.loc[~blank] if blank.any() else frame


def _decode(raw: bytes, source: str, findings: list[Finding]) -> str | None:
    """CSV bytes as text: UTF-8 (BOM optional), UTF-16 with BOM, else Windows-1252/Latin-1 with a warning."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            findings.append(finding(C.UNREADABLE_FILE, source, None, None,
                                    "the file starts like UTF-16 text but is not valid UTF-16",
                                    "export the table again as CSV UTF-8"))
            return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1252")
        how = "Windows-1252"
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        how = "Latin-1"
    findings.append(finding(C.ENCODING, source, None, None,
                            f"the file is not UTF-8; it was read as {how} (check accented letters)",
                            "save the file as 'CSV UTF-8' (Excel: File > Save As > CSV UTF-8)"))
    return text


#: The header record is looked for in this many characters at most (a header longer than that is not one).
_HEADER_CHARS = 1 << 20


def _detect_delimiter(text: str, name: TableName) -> str:
    """The separator that splits the header row into the most known column names (then the most cells).

    The header is the first record as the CSV reader reads it, so a quoted header cell holding a line break
    or a carriage return (a quoted header cell starting with one) does not cut it short.
    """
    head = text.lstrip("\r\n")[:_HEADER_CHARS]
    known = {c.name for c in TABLES[name].columns}
    best, best_score = ",", (-1, -1)
    old = csv.field_size_limit()
    csv.field_size_limit(_HEADER_CHARS + 1)
    try:
        for delim in DELIMITERS:
            try:
                cells = next(csv.reader(io.StringIO(head, newline=""), delimiter=delim, strict=False), [])
            except csv.Error:
                continue
            score = (sum(normalise_header(c) in known for c in cells), len(cells))
            if score > best_score:
                best, best_score = delim, score
    finally:
        csv.field_size_limit(old)
    return best


def _parse_csv(text: str, delimiter: str) -> list[list[str]]:
    old = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # a long free-text cell is data, not an error
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False))
    finally:
        csv.field_size_limit(old)


def unquote_formula(text: str) -> str:
    """Return a CSV cell as it was typed when it carries the single quote that keeps a formula inert.

    pofa writes a text cell that a spreadsheet would run (``=1+1``) as ``'=1+1`` (:mod:`pofa.io.writers`, as
    spreadsheets mark such text); reading drops that quote again, so that a study pofa wrote (``pofa
    import redcap``, ``pofa build-study``) reads back cell for cell. Any other cell is returned unchanged.

    Parameters
    ----------
    text : str
        A CSV cell (already stripped of surrounding blanks).

    Returns
    -------
    str
        ``text`` without its leading quote when the rest would run as a formula, else ``text``.
    """
    return text[1:] if text.startswith("'") and is_live_formula(text[1:]) else text


def _unquote_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`unquote_formula` on every cell of a text frame (only the cells starting with a quote)."""
    for column in frame.columns:
        quoted = frame[column].str.startswith("'").fillna(False).to_numpy(dtype=bool)
        if quoted.any():
            values = frame[column].copy()
            values[quoted] = [unquote_formula(v) for v in values[quoted]]
            frame[column] = values
    return frame


def _open_quote_finding(text: str, delimiter: str, header: Sequence[str], last: Sequence[object],
                        n_records: int, source: str) -> Finding | None:
    """An error when the file ends inside a quoted cell: a quote never closed swallowed the rows after it.

    ``last`` is the last record's cells. Only a last record with a line break in a cell can be such a cell;
    then the text is read again with a line ``x`` appended: when the quote was closed, ``x`` is a record of
    its own, else it is read into the open cell.
    """
    at = next((j for j, c in enumerate(last) if isinstance(c, str) and ("\n" in c or "\r" in c)), None)
    if at is None:
        return None
    old = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)
    try:
        rows = list(csv.reader(io.StringIO(text + "\nx", newline=""), delimiter=delimiter, strict=False))
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(old)
    if rows and rows[-1] == ["x"]:
        return None
    row = FIRST_DATA_ROW + n_records - 1
    column = normalise_header(header[at]) if at < len(header) else ""
    return finding(C.UNREADABLE_FILE, source, row, column or None,
                   "a quote opened in this cell is never closed: every line after it up to the end of the "
                   "file was read into this one cell",
                   "close the quote (or remove the stray double quote), then export the table again")


#: CSV files of at least this many bytes are read by Arrow's CSV reader (C++, multi-threaded, cells kept as
#: Arrow text) when they are UTF-8 and every record has as many cells as the header; others, and every
#: smaller file, by Python's csv module. Both give the same cells and row numbers
#: (tests/test_validate_scale.py).
FAST_CSV_BYTES = 1 << 20


def release_arrow_memory() -> None:
    """Give memory that Arrow's allocator keeps after large temporary arrays back to the system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _read_csv_fast(data: bytes, text: str, delimiter: str) -> tuple[list[str], list[pd.Series], int] | None:
    """Header and text columns of a CSV file read by Arrow; ``None`` when a record is not header-wide.

    A record with more or fewer cells than the header (a ragged row, a blank line) sends the file to the
    Python reader, which reports such rows with their numbers.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False))
    except (csv.Error, StopIteration):
        return None
    if not header or not any(c.strip() for c in header):
        return None
    width = len(header)
    ragged: list[object] = []

    def invalid(row: object) -> str:
        ragged.append(row)
        return "skip"

    names = [f"c{j}" for j in range(width)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=0, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             ignore_empty_lines=False, invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 null_values=[], strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False))
    except (pa.ArrowException, ValueError):
        return None
    if ragged or table.num_rows == 0:
        return None
    first = [table.column(j)[0].as_py() for j in range(width)]
    if first != header:  # Arrow and Python split the header differently: let Python read it all
        return None
    body = table.slice(1)
    columns = [pd.Series(body.column(j), dtype=TEXT_DTYPE) for j in range(width)]
    return [c.strip() for c in header], columns, body.num_rows


def _read_file_bytes(path: Path, source: str, findings: list[Finding]) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as exc:
        findings.append(finding(C.UNREADABLE_FILE, source, None, None,
                                f"cannot read the file: {exc.strerror or exc}",
                                "check that the file exists and that you may read it"))
        return None


def read_csv_table(path: Path, name: TableName, findings: list[Finding]) -> RawTable | None:
    """Read one CSV file as text cells.

    UTF-8 with or without BOM (UTF-16 with BOM also), else Windows-1252 with an ``encoding`` warning. The
    separator (comma, semicolon or tab) is the one that splits row 1 into the format's column names. Windows
    and old Mac line endings are accepted; a quoted cell may span lines (rows are counted as records, as a
    spreadsheet shows them).

    Parameters
    ----------
    path : pathlib.Path
        The CSV file.
    name : TableName
        Which table it holds (for the separator and the headers).
    findings : list of Finding
        Receives a finding for each problem met.

    Returns
    -------
    RawTable or None
        The table, ``None`` when the file cannot be read (the reason is in ``findings``).
    """
    source = path.name
    raw = _read_file_bytes(path, source, findings)
    if raw is None:
        return None
    binary = b"\x00" in raw and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    before = len(findings)
    text = None if binary else _decode(raw, source, findings)
    utf8 = len(findings) == before and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if binary or (text is not None and "\x00" in text):
        findings.append(finding(C.UNREADABLE_FILE, source, None, None,
                                "the file holds binary data, not CSV text (a workbook renamed .csv?)",
                                "export the table as CSV (comma-separated, UTF-8)"))
        return None
    if text is None:
        return None
    if not text.strip():
        findings.append(finding(C.EMPTY_FILE, source, None, None, "the file is empty", _EMPTY_HINT))
        return None
    delimiter = _detect_delimiter(text, name)
    if len(raw) >= FAST_CSV_BYTES and utf8:
        fast = _read_csv_fast(raw.removeprefix(codecs.BOM_UTF8), text, delimiter)
        if fast is not None:
            header, columns, n_rows = fast
            if n_rows:
                unclosed = _open_quote_finding(text, delimiter, header, [c.iloc[-1] for c in columns], n_rows,
                                               source)
                if unclosed is not None:
                    findings.append(unclosed)
            del raw, text  # the Arrow columns are all that is kept of a large file
            frame, headers = _make_frame([unquote_formula(h) for h in header],
                                         _cells_from_columns(columns, n_rows), source, findings)
            del columns
            release_arrow_memory()
            return RawTable(name, source, path, _unquote_frame(frame), headers)
    try:
        rows = _parse_csv(text, delimiter)
    except csv.Error as exc:  # only for malformed input the lenient reader still refuses
        findings.append(finding(C.UNREADABLE_FILE, source, None, None, f"not a well-formed CSV file: {exc}",
                                "export the table again as CSV (comma-separated, UTF-8)"))
        return None
    header = [c.strip() for c in rows[0]] if rows else []
    body = rows[1:]
    if not any(header):
        if any(c.strip() for r in body for c in r):
            findings.append(finding(C.NO_HEADER, source, 1, None, "row 1 is blank but rows below hold data",
                                    "put the column names in row 1 (delete the blank rows above them)"))
        else:
            findings.append(finding(C.EMPTY_FILE, source, None, None, "the file holds no header and no data",
                                    _EMPTY_HINT))
        return None
    width = len(header)
    if body:
        unclosed = _open_quote_finding(text, delimiter, header, body[-1], len(body), source)
        if unclosed is not None:
            findings.append(unclosed)
    for i, r in enumerate(body):
        if len(r) > width and any(c.strip() for c in r[width:]):
            findings.append(finding(
                C.EXTRA_CELLS, source, i + FIRST_DATA_ROW, None,
                f"the row has {len(r)} cells but the header has {width}",
                "put text holding the separator in double quotes, or remove the extra cells"))
    frame, headers = _make_frame([unquote_formula(h) for h in header], _cells_from_rows(body, width), source,
                                 findings)
    return RawTable(name, source, path, _unquote_frame(frame), headers)


def _float_text(v: float | None) -> str:
    """:func:`cell_text` for a float or null (the common case of a Parquet number column, made fast)."""
    if v is None or v != v:
        return ""
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _arrow_texts(column: object) -> pd.Series | list[str] | None:
    """The cells of one Arrow column as text; ``None`` when its values cannot be converted.

    Text, integer, boolean and floating-point columns take vectorised paths; other types (dates, time
    stamps, decimals, ...) go cell by cell through :func:`cell_text`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type  # type: ignore[attr-defined]
    try:
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return pd.Series(pc.fill_null(pc.cast(column, pa.string()), ""), dtype=TEXT_DTYPE)
        if pa.types.is_integer(kind):
            return pd.Series(pc.fill_null(pc.cast(column, pa.string()), ""), dtype=TEXT_DTYPE)
        if pa.types.is_boolean(kind):
            return pd.Series(pc.fill_null(pc.if_else(column, "yes", "no"), ""), dtype=TEXT_DTYPE)
        if pa.types.is_floating(kind):
            return [_float_text(v) for v in pc.cast(column, pa.float64()).to_pylist()]
        return [cell_text(v) for v in column.to_pylist()]  # type: ignore[attr-defined]
    except (ValueError, OverflowError, TypeError, pa.ArrowException):
        # e.g. a date beyond year 9999, which Python's datetime cannot hold: fall back to Arrow's own text
        return _arrow_text(column)


def _arrow_text(column: object) -> list[str] | None:
    """Cells as Arrow's text cast gives them, or None when even that fails."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return [cell_text(v) for v in pc.cast(column, pa.string()).to_pylist()]
    except (ValueError, OverflowError, TypeError, pa.ArrowException):
        return None


def _pandas_index_columns(table: object) -> set[str]:
    """Columns that pandas stored as the frame's index (``__index_level_0__``): not data."""
    try:
        meta = table.schema.pandas_metadata  # type: ignore[attr-defined]
    except Exception:  # damaged JSON metadata: treat every column as data
        return set()
    if not isinstance(meta, dict):
        return set()
    return {c for c in meta.get("index_columns", []) if isinstance(c, str)}


def read_parquet_table(path: Path, name: TableName, findings: list[Finding]) -> RawTable | None:
    """Read one Parquet file; every cell becomes text as a user would have typed it.

    Columns of any type are accepted (text, integers, floats, booleans, dates, time stamps with or without
    time zone, decimals); an identifier column stored as floating point gets a ``numeric-id`` warning.

    Parameters
    ----------
    path : pathlib.Path
        The Parquet file.
    name : TableName
        Which table it holds.
    findings : list of Finding
        Receives a finding for each problem met.

    Returns
    -------
    RawTable or None
        The table, ``None`` when the file cannot be read (the reason is in ``findings``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = path.name
    try:
        table = pq.read_table(path)
        # Full validation catches damage that reading lets through (invalid UTF-8 text, bad offsets),
        # which would otherwise surface later as an exception while converting a cell.
        table.validate(full=True)
        names = list(table.column_names)
    except Exception as exc:  # pyarrow raises many types for a damaged file; all mean "cannot read"
        findings.append(finding(C.UNREADABLE_FILE, source, None, None,
                                f"not a readable Parquet file ({type(exc).__name__})",
                                "write the table again as Parquet, or use CSV"))
        return None
    index_cols = _pandas_index_columns(table)
    keep = [i for i, n in enumerate(names) if n not in index_cols]
    if not keep:
        findings.append(finding(C.EMPTY_FILE, source, None, None, "the file has no columns",
                                "write the table with its columns (patient_id, ...)"))
        return None
    spec = TABLES[name]
    header: list[str] = []
    columns: list[pd.Series | list[str]] = []
    for i in keep:
        col = table.column(i)
        written = cell_text(names[i])
        texts = _arrow_texts(col)
        norm = normalise_header(written)
        if texts is None:
            findings.append(finding(C.UNREADABLE_FILE, source, None, norm or None,
                                    f"the column {written!r} holds values of type {col.type} that cannot "
                                    "be read",
                                    "store the column as text, numbers or dates"))
            texts = [""] * table.num_rows
        c = spec.column(norm)
        if c is not None and c.kind is Kind.ID and pa.types.is_floating(col.type):
            findings.append(finding(
                C.NUMERIC_ID, source, None, norm,
                "identifiers are stored as decimal numbers: '1.10' would read as '1.1' and '007' as '7'",
                "store identifier columns as text (string)"))
        header.append(written)
        columns.append(texts)
    frame, headers = _make_frame(header, _cells_from_columns(columns, table.num_rows), source, findings)
    return RawTable(name, source, path, frame, headers)


def read_workbook(path: Path, findings: list[Finding],
                  attempted: set[TableName]) -> tuple[dict[TableName, RawTable], tuple[str, ...]]:
    """Read the sheets of one Excel workbook named like the tables (case and blanks ignored).

    Cells are read as Excel stores them: a date cell is a date, a TRUE/FALSE cell a boolean, numbers are
    numbers (a decimal number in an id column gets a warning).

    Parameters
    ----------
    path : pathlib.Path
        The workbook.
    findings : list of Finding
        Receives a finding for each problem met.
    attempted : set of TableName
        Every table whose sheet was found (even if it could not be read) is added to it.

    Returns
    -------
    tuple of (dict of TableName to RawTable, tuple of str)
        The tables read and the titles of all sheets.
    """
    from openpyxl import load_workbook

    wanted = {t.value: t for t in TableName}
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl/zipfile raise many types for a damaged workbook
        findings.append(finding(C.UNREADABLE_FILE, path.name, None, None,
                                f"not a readable Excel workbook ({type(exc).__name__})",
                                "open it in Excel and save it again as .xlsx"))
        attempted.update(TableName)
        return {}, ()
    tables: dict[TableName, RawTable] = {}
    titles: list[str] = []
    try:
        for ws in wb.worksheets:
            titles.append(ws.title)
            name = wanted.get(normalise_header(ws.title))
            if name is None:
                continue
            source = f"{path.name}[{ws.title}]"
            attempted.add(name)
            if name in tables:
                findings.append(finding(C.AMBIGUOUS_TABLE, source, None, None,
                                        f"a second sheet for the table '{name.value}'; only "
                                        f"{tables[name].source} is read", "keep one sheet per table"))
                continue
            try:
                if hasattr(ws, "reset_dimensions"):
                    ws.reset_dimensions()  # the stored dimension can be wrong and would cut off cells
                rows = [list(r) for r in ws.iter_rows(values_only=True)]
            except Exception as exc:  # a damaged sheet raises from the XML parser (many types)
                findings.append(finding(C.UNREADABLE_FILE, source, None, None,
                                        f"the sheet cannot be read ({type(exc).__name__})",
                                        "open the workbook in Excel and save it again as .xlsx"))
                continue
            table = _sheet_table(path, name, source, rows, findings)
            if table is not None:
                tables[name] = table
    finally:
        wb.close()
    return tables, tuple(titles)


def _sheet_table(path: Path, name: TableName, source: str, rows: list[list[object]],
                 findings: list[Finding]) -> RawTable | None:
    header_cells = rows[0] if rows else []
    header = [cell_text(h) for h in header_cells]
    while header and not header[-1]:
        header.pop()
    body = rows[1:]
    if not any(header):
        if any(cell_text(v) for r in body for v in r):
            findings.append(finding(C.NO_HEADER, source, 1, None, "row 1 is blank but rows below hold data",
                                    "put the column names in row 1 (delete the blank rows above them)"))
        else:
            findings.append(finding(C.EMPTY_FILE, source, None, None, "the sheet is empty", _EMPTY_HINT))
        return None
    width = len(header)
    spec = TABLES[name]
    id_cols = {j for j, h in enumerate(header)
               if (c := spec.column(normalise_header(h))) is not None and c.kind is Kind.ID}
    for i, r in enumerate(body):
        if len(r) > width and any(cell_text(v) for v in r[width:]):
            findings.append(finding(
                C.EXTRA_CELLS, source, i + FIRST_DATA_ROW, None,
                f"the row has values beyond the last header (column {_column_letter(width)} onwards)",
                "add a header for those cells, or delete them"))
        for j in id_cols:
            v = r[j] if j < len(r) else None
            if isinstance(v, float) and math.isfinite(v) and not v.is_integer():
                findings.append(finding(
                    C.NUMERIC_ID, source, i + FIRST_DATA_ROW, normalise_header(header[j]),
                    f"identifier {cell_text(v)} is stored as a number: '1.10' reads as '1.1'",
                    "format the identifier column as Text in Excel and type the ids again"))
    cells = _cells_from_rows([[cell_text(v) for v in r[:width]] for r in body], width)
    frame, headers = _make_frame(header, cells, source, findings)
    return RawTable(name, source, path, frame, headers)


def rename_columns(table: RawTable, columns: Sequence[tuple[str, str]], findings: list[Finding]) -> RawTable:
    """Apply the ``[columns]`` mapping of ``study.toml`` (normalised header -> column name) to a table.

    The file is not changed: only the names under which its columns are read. A mapped header whose target
    is also a header of the file is a ``duplicate-column`` error (the first of the two is read).

    Parameters
    ----------
    table : RawTable
        The table as read.
    columns : sequence of (str, str)
        Normalised header -> normalised column name.
    findings : list of Finding
        Problems are appended here.

    Returns
    -------
    RawTable
        The table with its columns renamed (the same object when nothing applies).
    """
    mapping = dict(columns)
    if not any(c in mapping for c in table.frame.columns):
        return table
    names: list[str] = []
    keep: list[str] = []
    headers: dict[str, str] = {}
    for col in table.frame.columns:
        new = mapping.get(col, col)
        if new in headers:
            findings.append(finding(
                C.DUPLICATE_COLUMN, table.source, 1, new,
                f"the header {table.headers[col]!r} is read as '{new}' ([columns] of study.toml), but "
                f"the file also has {headers[new]!r}; only the first of the two is read",
                "remove one of the columns, or the line of [columns]"))
            continue
        headers[new] = table.headers[col]
        names.append(new)
        keep.append(col)
    frame = table.frame[keep].set_axis(pd.Index(names, dtype=object), axis=1)
    return RawTable(table.name, table.source, table.path, frame, headers)


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except OSError:
        return False


def read_study_tables(path: Path, columns: Sequence[tuple[str, str]] = ()) -> ReadResult:
    """Find and read the tables of a study.

    A study is a folder holding ``patients``, ``lesions`` and optionally ``failures`` as CSV or Parquet files
    (names in any case), or one Excel workbook with one sheet per table; or the path of such a workbook.
    CSV and Parquet files take precedence: a workbook in the folder is read only when the folder has no table
    file.

    Parameters
    ----------
    path : pathlib.Path
        The study folder or workbook.
    columns : sequence of tuple of (str, str)
        Normalised header -> column name (the ``[columns]`` of ``study.toml``): renames headers as they are
        read.

    Returns
    -------
    ReadResult
        The tables found, every finding, the format and the files read.
    """
    findings: list[Finding] = []
    tables: dict[TableName, RawTable] = {}
    files: list[Path] = []
    formats: set[StudyFormat] = set()
    attempted: set[TableName] = set()
    label = path.name or str(path)
    where = label
    sheet_titles: tuple[str, ...] | None = None
    try:
        is_file, is_dir = path.is_file(), path.is_dir()
    except (OSError, ValueError):
        is_file = is_dir = False

    def read_book(book: Path) -> None:
        nonlocal where, sheet_titles
        got, sheet_titles = read_workbook(book, findings, attempted)
        tables.update(got)
        files.append(book)
        formats.add(StudyFormat.EXCEL)
        where = book.name

    if is_file:
        suffix = path.suffix.lower()
        if suffix in EXCEL_SUFFIXES:
            read_book(path)
        elif suffix in UNSUPPORTED_SUFFIXES:
            findings.append(finding(C.UNSUPPORTED_FORMAT, label, None, None,
                                    f"pofa cannot read {suffix} workbooks",
                                    "open it and save it as an Excel workbook (.xlsx), or export CSV files"))
            attempted.update(TableName)
        else:
            findings.append(finding(C.NOT_A_STUDY, label, None, None,
                                    "a study is a folder of tables or one Excel workbook, not a single file",
                                    "give the folder holding patients.csv and lesions.csv, or an .xlsx file"))
            attempted.update(TableName)
    elif is_dir:
        try:
            listing = sorted(path.iterdir())
            entries = {p.name.lower(): p for p in listing if _is_file(p)}
            irregular = {p.name.lower(): p for p in listing if not _is_file(p)}
        except OSError as exc:
            findings.append(finding(C.UNREADABLE_FILE, label, None, None,
                                    f"cannot list the folder: {exc.strerror or exc}",
                                    "check that you may read the folder"))
            entries, irregular = {}, {}
            attempted.update(TableName)
        for name in TableName:
            for ext in TABLE_SUFFIXES:  # a folder, pipe or device named like a table is refused, not skipped
                odd = irregular.get(f"{name.value}{ext}")
                if odd is not None:
                    attempted.add(name)
                    findings.append(finding(C.UNREADABLE_FILE, odd.name, None, None,
                                            "not a regular file (a folder, pipe or device)",
                                            f"save the {name.value} table as an ordinary file"))
            candidates = [entries[f"{name.value}{ext}"] for ext in TABLE_SUFFIXES
                          if f"{name.value}{ext}" in entries]
            if not candidates:
                continue
            attempted.add(name)
            if len(candidates) > 1:
                findings.append(finding(
                    C.AMBIGUOUS_TABLE, candidates[1].name, None, None,
                    f"the table {name.value} is given twice: {', '.join(p.name for p in candidates)}; "
                    f"only {candidates[0].name} is read", "keep one file per table"))
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
        if not files:
            workbooks = [p for n, p in entries.items()
                         if n.endswith(EXCEL_SUFFIXES) and not n.startswith("~$")]  # ~$: Excel's lock file
            others = [p for n, p in entries.items() if n.endswith(UNSUPPORTED_SUFFIXES)]
            if len(workbooks) > 1:
                findings.append(finding(
                    C.AMBIGUOUS_TABLE, label, None, None,
                    f"the folder holds several workbooks: {', '.join(p.name for p in workbooks)}",
                    "keep one workbook per study folder, or give the workbook's path"))
                attempted.update(TableName)
            elif workbooks:
                read_book(workbooks[0])
            elif others:
                for p in others:
                    findings.append(finding(C.UNSUPPORTED_FORMAT, p.name, None, None,
                                            f"pofa cannot read {p.suffix.lower()} workbooks",
                                            "save it as an Excel workbook (.xlsx), or export CSV files"))
                attempted.update(TableName)
    else:
        findings.append(finding(C.NOT_A_STUDY, label, None, None, f"no such file or folder: {path}",
                                "check the path of the study folder"))
        attempted.update(TableName)
    for name in TableName:
        if TABLES[name].required and name not in tables and name not in attempted:
            if sheet_titles is not None:
                hint = (f"add a sheet named '{name.value}' (the workbook has: "
                        f"{', '.join(sheet_titles) or 'no sheets'})")
            else:
                hint = (f"add {name.value}.csv (or {name.value}.parquet, or one workbook with a sheet per "
                        "table)")
            findings.append(finding(C.MISSING_TABLE, where, None, None,
                                    f"the required table '{name.value}' was not found", hint))
    if columns:
        tables = {name: rename_columns(t, columns, findings) for name, t in tables.items()}
    fmt = formats.pop() if len(formats) == 1 else (StudyFormat.MIXED if formats else StudyFormat.CSV)
    return ReadResult(tables, tuple(findings), fmt, tuple(files))
