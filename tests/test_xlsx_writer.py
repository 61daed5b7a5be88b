"""pofa.io.xlsx: the report's workbooks hold what openpyxl would have written, cell for cell, with no date but
the zip epoch and no formula cell."""

from __future__ import annotations

import datetime
import io
import math
import re
import zipfile
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font

from pofa.errors import PofaError
from pofa.io.writers import xlsx_value
from pofa.io.xlsx import Sheet, xlsx_bytes
from pofa.report.tables.base import ReportTable, _xlsx_bytes


def append_xlsx_row(ws: Any, values: list[Any]) -> Any:
    """Append a row to an openpyxl sheet as pofa wrote its tables with openpyxl: every value through
    xlsx_value, text cells typed as text (openpyxl would store text starting with "=" as a formula)."""
    row = [xlsx_value(v) for v in values]
    ws.append(row)
    cells = ws[ws.max_row] if row else ()
    for cell, v in zip(cells, row, strict=False):
        if isinstance(v, str):
            cell.data_type = "s"
    return cells


def _openpyxl_bytes(table: ReportTable) -> bytes:
    """The workbook as openpyxl writes it (how pofa wrote its tables before pofa.io.xlsx), entries sorted."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = table.name[:31]
    for c in append_xlsx_row(ws, [str(c) for c in table.data.columns]):
        c.font = Font(bold=True)
    for rec in table.data.itertuples(index=False, name=None):
        append_xlsx_row(ws, list(rec))
    about = wb.create_sheet("about")
    append_xlsx_row(about, ["title", table.title])
    append_xlsx_row(about, ["note", table.note])
    append_xlsx_row(about, ["made by", "pofa"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _as_excel_reads(v: Any) -> Any:
    """A text as Excel shows it: ``_xHHHH_`` escapes decoded (how XlsxWriter stores control characters),
    line ends as XML reads them (openpyxl's inline text arrives with CR as LF)."""
    if not isinstance(v, str):
        return v
    v = re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), v)
    return v.replace("\r\n", "\n").replace("\r", "\n")


def _cells(ws: Any) -> list[tuple[int, int, Any, str | None, bool]]:
    """Every non-blank cell: row, column, value, type, bold (a blank cell, empty or not written, has none)."""
    return [(c.row, c.column, _as_excel_reads(c.value), c.data_type, bool(c.font.b)) for row in ws.iter_rows()
            for c in row if c.value not in (None, "")]


def _assert_same_as_openpyxl(table: ReportTable) -> None:
    """Read back with openpyxl: the same sheets, cells, types and bold header as openpyxl's own workbook of
    the table (how pofa wrote its tables before), and never a formula."""
    wb = load_workbook(io.BytesIO(_xlsx_bytes(table)))
    ref = load_workbook(io.BytesIO(_openpyxl_bytes(table)))
    for ws, ws_ref in zip(wb.worksheets, ref.worksheets, strict=True):
        assert ws.title == ws_ref.title
        assert _cells(ws) == _cells(ws_ref)
        assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


def _table(data: pd.DataFrame, name: str = "t", title: str = "A title", note: str = "") -> ReportTable:
    return ReportTable(name=name, title=title, header=tuple(map(str, data.columns)), rows=(), data=data,
                       note=note)


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=[
    chr(c) for c in [*range(0, 9), 11, 12, *range(14, 32)]]), max_size=12)
_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**17), 10**17),
    st.floats(allow_nan=True, allow_infinity=True), _text,
    st.sampled_from(["=1+1", "+A1", "-2", "@SUM(A1)", "-1.5", " pad ", "a&b<c>\"d'", "\tx", "é ✓", ""]),
)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4).flatmap(lambda n: st.tuples(
    st.lists(_text, min_size=n, max_size=n, unique=True),
    st.lists(st.lists(_values, min_size=n, max_size=n), max_size=5))), _text)
def test_workbook_equals_openpyxl(columns_rows: tuple[list[str], list[list[Any]]], note: str) -> None:
    columns, rows = columns_rows
    data = pd.DataFrame(rows, columns=columns, dtype=object)
    _assert_same_as_openpyxl(_table(data, note=note))


def test_typed_columns_equal_openpyxl() -> None:
    data = pd.DataFrame({
        "term": ["age", "=cmd()", None],
        "n": pd.array([1, None, 3], dtype="Int64"),
        "or": [1.25, math.nan, 1e-300],
        "flag": pd.array([True, None, False], dtype="boolean"),
        "big": np.array([2**53 + 1, 7, -3], dtype=np.int64),
        "label": pd.array(["x", None, "-y"], dtype="string"),
        "levels": [("a", "b"), [1], {"k": 1}],
    })
    wide = pd.DataFrame({f"c{i}": [i] for i in range(30)})  # columns beyond Z: AA, AB, ...
    _assert_same_as_openpyxl(_table(data, name="typed_columns_with_a_long_name_beyond_31", note="n < 5 & y"))
    _assert_same_as_openpyxl(_table(wide))


def test_reproducible_and_dated_only_by_the_zip_epoch() -> None:
    table = _table(pd.DataFrame({"a": [1.5, 2.0], "b": ["x", "=y"]}))
    first, second = _xlsx_bytes(table), _xlsx_bytes(table)
    assert first == second
    z = zipfile.ZipFile(io.BytesIO(first))
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())
    core = z.read("docProps/core.xml").decode()
    # the document's created/modified properties carry the same epoch, never the day of the run
    assert re.findall(r"<dcterms:(\w+)[^>]*>([^<]*)<", core) == [("created", "1980-01-01T00:00:00Z"),
                                                                   ("modified", "1980-01-01T00:00:00Z")]
    today = datetime.date.today()
    for name in z.namelist():
        assert today.isoformat() not in z.read(name).decode("utf-8", "replace")
    cells = load_workbook(io.BytesIO(first))["t"]
    assert cells["B3"].value == "'=y" and cells["B3"].data_type == "s"


@pytest.mark.parametrize("titles", [["a/b"], ["x[1]"], [""], ["a" * 32], ["about", "About"]])
def test_sheet_titles_a_spreadsheet_refuses_are_refused(titles: list[str]) -> None:
    with pytest.raises(PofaError, match="sheet"):
        xlsx_bytes([Sheet(t, [["x"]]) for t in titles])
    with pytest.raises(PofaError, match="sheet"):
        xlsx_bytes([])


def test_control_characters_written_in_excels_escape() -> None:
    """A control character XML cannot carry (messy input) is kept in Excel's escape, not a crash."""
    data = xlsx_bytes([Sheet("s", [["a\x01b", "tab\tok"]])])
    ws = load_workbook(io.BytesIO(data))["s"]
    assert ws["A1"].value in ("a\x01b", "a_x0001_b") and ws["B1"].value == "tab\tok"
