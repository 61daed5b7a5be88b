"""Property-based fuzzing of the readers and the validator (hypothesis).

Whatever is in the study folder -- random bytes, random CSV text, random cells in a valid study, random Excel
workbooks and Parquet files with odd column types, random study.toml -- ``pofa.load_study(...).validate()``
must not raise. Every problem is a finding with a file, a well-formed row (``None`` or >= 1) and column
(``None`` or a normalised column name), a registered code with its registered severity, a message and a hint.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import pofa
from pofa.data import bundled_study
from pofa.errors import StudyError
from pofa.findings import FINDING_CODES, FindingCode, Severity
from pofa.io.readers import normalise_header
from pofa.schema import TABLES, Kind, TableName

# About 100 examples per test keeps the file near a minute on a 2-core machine (hence the slow mark).
pytestmark = pytest.mark.slow
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                print_blob=True)

EXAMPLE = bundled_study("example")
TABLE_NAMES = ("patients", "lesions", "failures")


def example_rows(table: str) -> list[list[str]]:
    with open(EXAMPLE / f"{table}.csv", newline="", encoding="utf-8") as fh:
        return [list(r) for r in csv.reader(fh)]


EXAMPLE_ROWS = {t: example_rows(t) for t in TABLE_NAMES}


@contextmanager
def study_folder() -> Iterator[Path]:
    """A fresh copy of the example study (hypothesis examples cannot share pytest's tmp_path)."""
    with tempfile.TemporaryDirectory(prefix="pofa-fuzz-") as tmp:
        folder = Path(tmp) / "study"
        shutil.copytree(EXAMPLE, folder)
        yield folder


def check_study(path: Path) -> pofa.ValidationReport:
    """Load and validate; assert every finding is well formed; the typed tables are usable."""
    study = pofa.load_study(path)
    report = study.validate()
    folder = path if path.is_dir() else path.parent
    names = {p.name for p in folder.iterdir()} | {path.name}
    for f in report.findings:
        assert isinstance(f.file, str) and f.file
        assert f.file.split("[", 1)[0] in names, f.file
        assert f.row is None or (type(f.row) is int and f.row >= 1), f.row
        assert f.column is None or (isinstance(f.column, str) and f.column == normalise_header(f.column)
                                    and f.column), f.column
        code = FindingCode(f.code)
        assert f.severity is FINDING_CODES[code][0]
        assert isinstance(f.message, str) and f.message and isinstance(f.hint, str) and f.hint
    json.dumps(report.to_json(strict=True))
    for name in TableName:
        try:
            frame = getattr(study, name.value)
        except StudyError:
            assert name is not TableName.FAILURES
            continue
        if report.ok:
            check_types(name, frame)
    return report


_DTYPES = {Kind.DATE: "datetime64[ns]", Kind.NUMBER: "float64", Kind.BOOLEAN: "boolean"}


def check_types(name: TableName, frame: pd.DataFrame) -> None:
    """A valid study's format columns have their documented types; ids and text are str or None."""
    for col in TABLES[name].columns:
        if col.name not in frame:
            continue
        s = frame[col.name]
        if col.kind in _DTYPES:
            assert str(s.dtype) == _DTYPES[col.kind], (col.name, s.dtype)
        else:
            assert all(v is None or isinstance(v, str) for v in s), col.name
        if not col.blank_ok:
            assert s.notna().all(), col.name


# ---------------------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------------------

SPECIAL = [
    "", " ", "  \t", "NaN", "nan", "NA", "inf", "-inf", "Infinity", "1e308", "1e309", "-1e309", "-0", "0",
    "0.0", "1.10", "007", ".5", "5.", "+5", "1_000", "0x1A", "1,5", "1.000,5", "١٢", "½", "0001-01-01",
    "9999-12-31", "1899-12-31", "1900-01-01", "2099-12-31", "2100-01-01", "1677-09-21", "2262-04-12",
    "2019-02-29", "2020-02-29",
    "2019-13-01", "2019-03-14T10:00:00+02:00", "2019-03-14 00:00:00", "2019-03-14Z", "20190314", "14/03/2019",
    "43538", "yes", "No", "TRUE", "f", "y", "1.0", "maybe", "\ufeffP001", "\u00a0P001\u00a0", '"', '""', "'",
    "a\nb", "a\r\nb", "a,b", "a;b", "a\tb", "\x00", "\x1c", "#N/A", "=1+1", "P001", "P002", "L1", "L7", "F1",
    "x" * 5000,
]
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-1e3, max_value=1e3).map(lambda v: f"{v:.3f}"),
)
DATES = st.one_of(
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).map(dt.date.isoformat),
    st.datetimes(min_value=dt.datetime(1, 1, 1)).map(lambda v: v.isoformat(sep=" ")),
    st.dates(min_value=dt.date(2015, 1, 1), max_value=dt.date(2022, 12, 31)).map(dt.date.isoformat),
)
CELL = st.one_of(st.sampled_from(SPECIAL), NUMBERS, DATES, st.text(max_size=12))
KNOWN_HEADERS = sorted({c.name for spec in TABLES.values() for c in spec.columns})
HEADER = st.one_of(
    st.sampled_from(KNOWN_HEADERS),
    st.sampled_from(KNOWN_HEADERS).map(lambda h: f"  {h.upper()} "),
    st.sampled_from(["", " ", "age", "Patient ID", "patient id", "\ufeffpatient_id", "row", "known"]),
    st.text(max_size=8),
)


def csv_text(header: list[str], rows: list[list[str]], delimiter: str, quoted: bool, newline: str) -> str:
    if quoted:
        buf = io.StringIO()
        csv.writer(buf, delimiter=delimiter, lineterminator=newline).writerows([header, *rows])
        return buf.getvalue()
    return newline.join(delimiter.join(r) for r in [header, *rows]) + newline


def encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-8-sig":
        return text.encode("utf-8-sig", errors="surrogatepass")
    if encoding == "utf-16":
        return text.encode("utf-16", errors="surrogatepass")
    return text.encode(encoding, errors="replace")


# ---------------------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------------------

@FUZZ
@given(data=st.binary(max_size=3000), table=st.sampled_from(TABLE_NAMES), toml=st.binary(max_size=200))
def test_random_bytes(data: bytes, table: str, toml: bytes) -> None:
    with study_folder() as folder:
        (folder / f"{table}.csv").write_bytes(data)
        (folder / "study.toml").write_bytes(toml)
        check_study(folder)


@FUZZ
@given(
    table=st.sampled_from(TABLE_NAMES),
    header=st.lists(HEADER, min_size=0, max_size=12),
    rows=st.lists(st.lists(CELL, max_size=14), max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    quoted=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]),
)
def test_random_csv_text(table: str, header: list[str], rows: list[list[str]], delimiter: str, quoted: bool,
                         newline: str, encoding: str) -> None:
    with study_folder() as folder:
        text = csv_text(header, rows, delimiter, quoted, newline)
        (folder / f"{table}.csv").write_bytes(encode(text, encoding))
        check_study(folder)


EDIT = st.tuples(st.sampled_from(TABLE_NAMES), st.integers(0, 12), st.integers(0, 12), CELL)


@FUZZ
@given(edits=st.lists(EDIT, min_size=1, max_size=8), extra_rows=st.lists(
    st.tuples(st.sampled_from(TABLE_NAMES), st.lists(CELL, max_size=12)), max_size=3))
def test_random_cells_in_a_valid_study(edits: list[tuple[str, int, int, str]],
                                       extra_rows: list[tuple[str, list[str]]]) -> None:
    tables = {t: [list(r) for r in rows] for t, rows in EXAMPLE_ROWS.items()}
    for table, extra in extra_rows:
        tables[table].append(extra)
    for table, r, c, value in edits:
        rows = tables[table]
        row = rows[r % len(rows)]
        if row:
            row[c % len(row)] = value
    with study_folder() as folder:
        for t, rows in tables.items():
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(rows)
            (folder / f"{t}.csv").write_text(buf.getvalue(), encoding="utf-8", errors="surrogatepass")
        report = check_study(folder)
        # An edit that puts a header-row value must at worst give findings, never hide the table silently.
        assert all(f.file for f in report.findings)


# ---------------------------------------------------------------------------------------------------------
# Excel
# ---------------------------------------------------------------------------------------------------------

EXCEL_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs")), max_size=15)
EXCEL_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(9999, 12, 31)),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(9999, 12, 31)),
    st.times(), st.decimals(allow_nan=False, allow_infinity=False, places=3),
    EXCEL_TEXT, st.sampled_from([s for s in SPECIAL if "\x00" not in s and "\x1c" not in s]),
)
SHEET_TITLE = st.sampled_from(["{}", "{}", " {} ", "{}".upper(), "Sheet{}", "{}_old"])


def _excel_cell(value: object) -> object:
    return value if value != "" else None


@FUZZ
@given(
    edits=st.lists(st.tuples(st.sampled_from(TABLE_NAMES), st.integers(0, 12), st.integers(0, 12),
                             EXCEL_VALUE), max_size=8),
    titles=st.tuples(SHEET_TITLE, SHEET_TITLE, SHEET_TITLE),
    blank_rows=st.lists(st.integers(1, 6), max_size=2),
    extra_sheet=st.booleans(),
    as_path=st.booleans(),
)
def test_random_excel_workbooks(edits: list[tuple[str, int, int, object]], titles: tuple[str, str, str],
                                blank_rows: list[int], extra_sheet: bool, as_path: bool) -> None:
    from openpyxl import Workbook

    tables: dict[str, list[list[object]]] = {t: [[_excel_cell(v) for v in r] for r in rows]
                                             for t, rows in EXAMPLE_ROWS.items()}
    for table, r, c, value in edits:
        rows = tables[table]
        row = rows[r % len(rows)]
        row[c % len(row)] = value
    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for (t, rows), title in zip(tables.items(), titles, strict=True):
        name = title.format(t)
        if name.lower().strip() in used:
            name = f"{t}{len(used)}"
        used.add(name.lower().strip())
        ws = wb.create_sheet(name[:31])
        for i, r in enumerate(rows):
            if i in blank_rows:
                ws.append([])
            ws.append(r)
    if extra_sheet:
        wb.create_sheet("notes").append(["free text", 1, dt.datetime(2020, 1, 1)])
    with study_folder() as folder:
        for t in TABLE_NAMES:
            (folder / f"{t}.csv").unlink()
        path = folder / "Study.xlsx"
        wb.save(path)
        check_study(path if as_path else folder)


# ---------------------------------------------------------------------------------------------------------
# Parquet
# ---------------------------------------------------------------------------------------------------------

def arrow_column(kind: str, n: int) -> st.SearchStrategy[pa.Array]:
    """A random Arrow column of ``n`` values of one type (with nulls)."""
    def nullable(values: st.SearchStrategy[object]) -> st.SearchStrategy[list[object]]:
        return st.lists(st.one_of(st.none(), values), min_size=n, max_size=n)

    if kind == "string":
        return nullable(CELL).map(lambda v: pa.array(v, type=pa.string()))
    if kind == "int64":
        return nullable(st.integers(-(2**63), 2**63 - 1)).map(lambda v: pa.array(v, type=pa.int64()))
    if kind == "float64":
        return nullable(st.floats()).map(lambda v: pa.array(v, type=pa.float64()))
    if kind == "float32":
        return nullable(st.floats(width=32)).map(lambda v: pa.array(v, type=pa.float32()))
    if kind == "bool":
        return nullable(st.booleans()).map(lambda v: pa.array(v, type=pa.bool_()))
    if kind == "date32":
        return nullable(st.dates()).map(lambda v: pa.array(v, type=pa.date32()))
    if kind == "timestamp[us]":
        return nullable(st.datetimes()).map(lambda v: pa.array(v, type=pa.timestamp("us")))
    if kind == "timestamp[ns]":
        in_ns = st.datetimes(min_value=dt.datetime(1678, 1, 1), max_value=dt.datetime(2261, 12, 31))
        return nullable(in_ns).map(lambda v: pa.array(v, type=pa.timestamp("ns")))
    if kind == "timestamp[tz]":
        local = st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2200, 1, 1))
        return nullable(local).map(lambda v: pa.array(v, type=pa.timestamp("us", tz="America/New_York")))
    if kind == "decimal":
        decimals = st.decimals(allow_nan=False, allow_infinity=False, places=2,
                               min_value=decimal.Decimal(-(10**6)), max_value=decimal.Decimal(10**6))
        return nullable(decimals).map(lambda v: pa.array(v, type=pa.decimal128(12, 2)))
    if kind == "null":
        return st.just(pa.nulls(n))
    if kind == "binary":
        return nullable(st.binary(max_size=10)).map(lambda v: pa.array(v, type=pa.binary()))
    if kind == "duration":
        spans = st.timedeltas(min_value=dt.timedelta(days=-1000), max_value=dt.timedelta(days=1000))
        return nullable(spans).map(lambda v: pa.array(v, type=pa.duration("us")))
    if kind == "list":
        small = st.lists(st.integers(-5, 5), max_size=3)
        return nullable(small).map(lambda v: pa.array(v, type=pa.list_(pa.int8())))
    raise AssertionError(kind)


KINDS = ["string", "int64", "float64", "float32", "bool", "date32", "timestamp[us]", "timestamp[ns]",
         "timestamp[tz]", "decimal", "null", "binary", "duration", "list"]


@st.composite
def parquet_table(draw: st.DrawFn, table: str) -> pa.Table:
    """The example table with some columns replaced by random columns of odd types, maybe renamed."""
    rows = EXAMPLE_ROWS[table]
    n = len(rows) - 1
    arrays, names = [], []
    for j, header in enumerate(rows[0]):
        if draw(st.booleans()):
            arrays.append(pa.array([r[j] if r[j] != "" else None for r in rows[1:]], type=pa.string()))
        else:
            arrays.append(draw(arrow_column(draw(st.sampled_from(KINDS)), n)))
        names.append(draw(st.one_of(st.just(header), HEADER)))
    return pa.Table.from_arrays(arrays, names=names)


@FUZZ
@given(data=st.data(), which=st.lists(st.sampled_from(TABLE_NAMES), min_size=1, max_size=3, unique=True))
def test_random_parquet_files(data: st.DataObject, which: list[str]) -> None:
    with study_folder() as folder:
        for t in which:
            (folder / f"{t}.csv").unlink()
            pq.write_table(data.draw(parquet_table(t)), folder / f"{t}.parquet")
        check_study(folder)


# ---------------------------------------------------------------------------------------------------------
# Damaged files: a valid workbook or Parquet file with bytes overwritten (inside the zip's XML, too)
# ---------------------------------------------------------------------------------------------------------

def _valid_workbook_bytes() -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for t, rows in EXAMPLE_ROWS.items():
        ws = wb.create_sheet(t)
        for r in rows:
            ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _valid_parquet_bytes() -> bytes:
    buf = io.BytesIO()
    rows = EXAMPLE_ROWS["patients"]
    pq.write_table(pa.table({h: [r[j] for r in rows[1:]] for j, h in enumerate(rows[0])}), buf)
    return buf.getvalue()


WORKBOOK, PARQUET = _valid_workbook_bytes(), _valid_parquet_bytes()


def _damage(data: bytes, at: float, junk: bytes) -> bytes:
    i = int(at * len(data))
    return data[:i] + junk + data[i + len(junk):]


@FUZZ
@given(at=st.floats(0, 1), junk=st.binary(min_size=1, max_size=40), inside=st.booleans(),
       member=st.sampled_from(["xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml", "xl/workbook.xml",
                               "xl/sharedStrings.xml", "[Content_Types].xml"]),
       parquet=st.booleans())
# Found by this test: a text cell with invalid UTF-8 passed pyarrow's reader and failed later.
@example(at=0.12890625, junk=b"\x80", inside=False, member="xl/worksheets/sheet1.xml", parquet=True)
def test_damaged_workbooks_and_parquet(at: float, junk: bytes, inside: bool, member: str,
                                       parquet: bool) -> None:
    import zipfile

    with study_folder() as folder:
        if parquet:
            (folder / "patients.csv").unlink()
            (folder / "patients.parquet").write_bytes(_damage(PARQUET, at, junk))
            check_study(folder)
            return
        for t in TABLE_NAMES:
            (folder / f"{t}.csv").unlink()
        path = folder / "study.xlsx"
        if inside:  # a well-formed zip whose XML is damaged: openpyxl fails late, while reading rows
            with zipfile.ZipFile(io.BytesIO(WORKBOOK)) as zin, zipfile.ZipFile(path, "w") as zout:
                for info in zin.infolist():
                    data = zin.read(info.filename)
                    zout.writestr(info, _damage(data, at, junk) if info.filename == member else data)
        else:
            path.write_bytes(_damage(WORKBOOK, at, junk))
        check_study(folder)


# ---------------------------------------------------------------------------------------------------------
# study.toml
# ---------------------------------------------------------------------------------------------------------

def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise AssertionError(v)


SECTIONS = ["study", "classification", "features", "risk_factors", "survival", "lesion_models", "report",
            "nonsense"]
KEYS = ["name", "window_days", "use_geometry", "local_margin_mm", "marginal_margin_mm", "marginal_counts_as",
        "lesion", "patient", "ci_method", "landmarks_months", "small_sample", "firth", "show_ids",
        "diameter_cm_thresholds", "suvmax_thresholds", "x"]
SCALAR = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=10))
TOML_VALUE = st.one_of(SCALAR, st.lists(st.one_of(st.floats(), st.integers(-100, 100), st.text(max_size=5)),
                                        max_size=4))


@FUZZ
@given(doc=st.dictionaries(st.sampled_from(SECTIONS), st.dictionaries(st.sampled_from(KEYS), TOML_VALUE,
                                                                      max_size=5), max_size=4))
def test_random_settings(doc: dict[str, dict[str, object]]) -> None:
    text = "".join(f"[{sec}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items())
                   for sec, keys in doc.items())
    with study_folder() as folder:
        (folder / "study.toml").write_text(text, encoding="utf-8")
        report = check_study(folder)
        assert all(f.file == "study.toml" for f in report.findings), report.findings
        assert all(f.severity is Severity.ERROR for f in report.findings)
