"""Property-based fuzzing of the CSV reader over bytes (hypothesis; docs/security.md, untrusted inputs).

Well-formed CSV files with hostile cells (carriage returns and line feeds inside quotes, quotes, separators,
formula payloads, blanks), any of the three separators and line ends, with or without a byte-order mark,
quoted headers: the reader (Python's csv module and Arrow's reader for large files alike) returns every
record in its place -- the same cells, stripped of surrounding blanks (and of the quote that keeps a formula
inert), and the record's row number -- with no finding. The same bytes with random damage: never a
traceback, and every finding located (file, and a row of at least 1 when it has one).
"""

from __future__ import annotations

import codecs
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pofa.findings import Finding
from pofa.io import readers
from pofa.io.readers import DELIMITERS, FIRST_DATA_ROW, read_csv_table, unquote_formula
from pofa.schema import TableName

pytestmark = pytest.mark.slow
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                print_blob=True)

HEADER = ["patient_id", "index_date", "notes", "histology"]
_CELL = st.text(alphabet=st.sampled_from(list("ab Z09=+-@'\"\r\n\t,;|é")), max_size=12)
_ID = st.from_regex(r"P[0-9]{1,4}", fullmatch=True)


def _quote(cell: str, delimiter: str, always: bool) -> str:
    if always or any(c in cell for c in (delimiter, '"', "\r", "\n")) or cell != cell.strip():
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_bytes(header: list[str], rows: list[list[str]], delimiter: str, newline: str, quote_all: bool,
              header_cr: bool, bom: bool) -> bytes:
    """The table as CSV bytes; ``header_cr`` puts a carriage return at the start of each quoted header."""
    head = [_quote(("\r" + h) if header_cr else h, delimiter, quote_all or header_cr) for h in header]
    body = [delimiter.join(_quote(c, delimiter, quote_all) for c in r) for r in rows]
    lines = [delimiter.join(head), *body]
    data = (newline.join(lines) + newline).encode("utf-8")
    return codecs.BOM_UTF8 + data if bom else data


def read(data: bytes, fast: bool) -> tuple[object, list[Finding]]:
    """Read ``data`` as patients.csv (by Arrow's reader when ``fast``); the table (or None) and findings."""
    findings: list[Finding] = []
    old = readers.FAST_CSV_BYTES
    readers.FAST_CSV_BYTES = 0 if fast else 1 << 40
    try:
        with tempfile.TemporaryDirectory(prefix="pofa-fuzz-csv-") as tmp:
            path = Path(tmp) / "patients.csv"
            path.write_bytes(data)
            table = read_csv_table(path, TableName.PATIENTS, findings)
    finally:
        readers.FAST_CSV_BYTES = old
    return table, findings


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[list[str]], dict[str, object]]:
    rows = draw(st.lists(st.tuples(_ID, _CELL, _CELL, _CELL), min_size=1, max_size=8))
    options = {"delimiter": draw(st.sampled_from(DELIMITERS)),
               "newline": draw(st.sampled_from(["\n", "\r\n", "\r"])),
               "quote_all": draw(st.booleans()), "header_cr": draw(st.booleans()), "bom": draw(st.booleans())}
    return [list(r) for r in rows], options


def check_in_place(rows: list[list[str]], options: dict[str, object], fast: bool) -> None:
    data = csv_bytes(HEADER, rows, **options)  # type: ignore[arg-type]
    table, findings = read(data, fast)
    assert not findings, [f.message for f in findings]
    assert table is not None
    frame = table.frame  # type: ignore[attr-defined]
    assert list(frame.columns) == HEADER
    assert list(frame.index) == list(range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(rows)))
    got = frame.astype(str).to_numpy().tolist()
    # stripped of surrounding blanks, and of the quote that keeps a formula inert (pofa.io.writers)
    assert got == [[unquote_formula(c.strip()) for c in r] for r in rows]


@FUZZ
@given(tables(), st.booleans())
@example(([["P1", "\rx", "", "=1+1"], ["P2", "y", "\r", "\r\n"]],
          {"delimiter": ",", "newline": "\r\n", "quote_all": False, "header_cr": False, "bom": False}), False)
@example(([["P1", "a", "b", "c"], ["P2", "\r", "\rz", "w"]],
          {"delimiter": ";", "newline": "\n", "quote_all": True, "header_cr": True, "bom": False}), False)
@example(([["P1", "a", "b", "c"]],
          {"delimiter": "\t", "newline": "\r", "quote_all": True, "header_cr": True, "bom": True}), True)
def test_every_record_stays_in_its_place(table: tuple[list[list[str]], dict[str, object]],
                                         fast: bool) -> None:
    rows, options = table
    check_in_place(rows, options, fast)


def test_quoted_header_starting_with_a_carriage_return_keeps_its_columns() -> None:
    """The red-team case: ``"\\rpatient_id";...`` was split at the carriage return when the separator was
    chosen, so a semicolon file was read as one column."""
    data = b'"\rpatient_id";"\rindex_date";notes\nP1;2020-01-01;"\rx"\nP2;2020-01-02;y\n'
    for fast in (False, True):
        table, findings = read(data, fast)
        assert not findings and table is not None
        assert table.frame.to_dict("list") == {  # type: ignore[attr-defined]
            "patient_id": ["P1", "P2"], "index_date": ["2020-01-01", "2020-01-02"], "notes": ["x", "y"]}


@FUZZ
@given(tables(), st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=0, max_size=4)), max_size=6),
       st.booleans())
def test_damaged_bytes_give_located_findings(table: tuple[list[list[str]], dict[str, object]],
                                            damage: list[tuple[int, bytes]], fast: bool) -> None:
    rows, options = table
    data = bytearray(csv_bytes(HEADER, rows, **options))  # type: ignore[arg-type]
    for at, chunk in damage:
        at %= len(data) + 1
        data[at:at + len(chunk) // 2] = chunk  # overwrite some bytes, insert others
    result, findings = read(bytes(data), fast)
    for f in findings:
        assert f.file == "patients.csv" and f.message and f.hint
        assert f.row is None or (type(f.row) is int and f.row >= 1)
    if result is not None:
        frame = result.frame  # type: ignore[attr-defined]
        assert all(isinstance(i, int) and i >= FIRST_DATA_ROW for i in frame.index)
        assert frame.index.is_monotonic_increasing and frame.index.is_unique


@FUZZ
@given(tables(), st.integers(0, 100), st.booleans())
def test_a_quote_never_closed_is_an_error_at_its_row(table: tuple[list[list[str]], dict[str, object]],
                                                     pick: int, fast: bool) -> None:
    """A stray opening quote swallows the rest of the file into one cell: an error located at the row and
    column where it opened, never rows silently lost."""
    rows, options = table
    options = {**options, "quote_all": False}
    row = pick % len(rows)
    clean = [["".join(ch for ch in c if ch.isalnum()) for c in r] for r in rows]  # no quoting needed
    data = csv_bytes(HEADER, clean, **options)  # type: ignore[arg-type]
    cells = csv_bytes(HEADER, clean[:row], **options)  # type: ignore[arg-type]
    # the stray quote opens the notes cell of the chosen row
    before = options["delimiter"].join([*clean[row][:2], ""])  # type: ignore[attr-defined]
    prefix = len(cells) + len(before.encode("utf-8"))
    broken = data[:prefix] + b'"' + data[prefix:]
    if row == len(rows) - 1:
        return  # the quote opens in the last line: nothing after it is lost
    result, findings = read(broken, fast)
    located = [(f.code, f.row, f.column) for f in findings]
    assert ("unreadable-file", FIRST_DATA_ROW + row, "notes") in located, located
    assert result is not None and len(result.frame) == row + 1  # type: ignore[attr-defined]
