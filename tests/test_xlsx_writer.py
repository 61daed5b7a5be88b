"""pofa.io.xlsx: the report's workbooks equal openpyxl's, part for part, without dates or formula cells."""

from __future__ import annotations

import io
import math
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
from pofa.io.writers import append_xlsx_row
from pofa.io.xlsx import Sheet, column_letter, xlsx_bytes
from pofa.report.tables.base import ReportTable, _xlsx_bytes, _xlsx_value

#: The parts that name the program that wrote the workbook (pofa, where openpyxl named itself).
_PROGRAM_PARTS = {"docProps/app.xml", "docProps/core.xml"}


def _openpyxl_bytes(table: ReportTable) -> bytes:
    """The workbook as openpyxl writes it (how pofa wrote its tables before pofa.io.xlsx), entries sorted."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = table.name[:31]
    for c in append_xlsx_row(ws, [str(c) for c in table.data.columns]):
        c.font = Font(bold=True)
    for rec in table.data.itertuples(index=False, name=None):
        append_xlsx_row(ws, [_xlsx_value(v) for v in rec])
    about = wb.create_sheet("about")
    append_xlsx_row(about, ["title", table.title])
    append_xlsx_row(about, ["note", table.note])
    append_xlsx_row(about, ["made by", "pofa"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _parts(data: bytes) -> dict[str, bytes]:
    z = zipfile.ZipFile(io.BytesIO(data))
    return {i.filename: z.read(i.filename) for i in z.infolist()}


def _assert_same_as_openpyxl(table: ReportTable) -> None:
    ours = _xlsx_bytes(table)
    theirs = _parts(_openpyxl_bytes(table))
    mine = _parts(ours)
    assert set(mine) == set(theirs)
    for name in sorted(set(mine) - _PROGRAM_PARTS):
        assert mine[name] == theirs[name], name
    # read back: the same cells, types and bold header, never a formula
    wb = load_workbook(io.BytesIO(ours))
    ref = load_workbook(io.BytesIO(_openpyxl_bytes(table)))
    for ws, ws_ref in zip(wb.worksheets, ref.worksheets, strict=True):
        assert ws.title == ws_ref.title
        got = [[(c.value, c.data_type, bool(c.font.b)) for c in row] for row in ws.iter_rows()]
        want = [[(c.value, c.data_type, bool(c.font.b)) for c in row] for row in ws_ref.iter_rows()]
        assert got == want
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
    # (a table without columns has no bold cell: openpyxl then leaves the bold font out of styles.xml, pofa
    # keeps its fixed stylesheet; the report has no such table)
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


def test_reproducible_and_free_of_dates() -> None:
    table = _table(pd.DataFrame({"a": [1.5, 2.0], "b": ["x", "=y"]}))
    first, second = _xlsx_bytes(table), _xlsx_bytes(table)
    assert first == second
    z = zipfile.ZipFile(io.BytesIO(first))
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())
    assert [i.filename for i in z.infolist()] == sorted(i.filename for i in z.infolist())
    assert "dcterms:" not in z.read("docProps/core.xml").decode().replace("xmlns:dcterms", "")
    cells = load_workbook(io.BytesIO(first))["t"]
    assert cells["B3"].value == "'=y" and cells["B3"].data_type == "s"


@pytest.mark.parametrize("titles", [["a/b"], ["x[1]"], [""], ["a" * 32], ["about", "About"]])
def test_sheet_titles_a_spreadsheet_refuses_are_refused(titles: list[str]) -> None:
    with pytest.raises(PofaError, match="sheet"):
        xlsx_bytes([Sheet(t, [["x"]]) for t in titles])


def test_control_characters_refused() -> None:
    with pytest.raises(PofaError, match="control characters"):
        xlsx_bytes([Sheet("s", [["a\x01b"]])])


def test_column_letters() -> None:
    letters = [column_letter(i) for i in (1, 26, 27, 52, 53, 702, 703)]
    assert letters == ["A", "Z", "AA", "AZ", "BA", "ZZ", "AAA"]
