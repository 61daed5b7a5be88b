"""Reading a large CSV file block by block: the cells of each block as a table of text, the file never whole.

:func:`iter_csv_chunks` gives the same cells and spreadsheet row numbers as
:func:`pofa.io.readers.read_csv_table` (Arrow's CSV reader, as that function uses for large files), one
block of rows at a time, so that a check of every row needs memory for one block, not for the file. It reads
only files Arrow reads exactly as Python's ``csv`` module does: UTF-8 (BOM optional), every record as wide
as the header. Any other file raises :class:`StreamFallback` (possibly after some blocks were given): the
caller reads it whole, where every such problem becomes a finding with its row.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from pofa.findings import Finding
from pofa.io.readers import (
    TEXT_DTYPE,
    RawTable,
    _cells_from_columns,
    _detect_delimiter,
    _make_frame,
    release_arrow_memory,
)
from pofa.schema import TableName

#: Bytes of the file parsed at a time (about 100,000 rows of a lesions table).
BLOCK_BYTES = 1 << 22
_HEAD_BYTES = 1 << 16


class StreamFallback(Exception):
    """The file cannot be read block by block exactly as the whole-file reader reads it."""


def _header(path: Path) -> tuple[int, str]:
    """Byte offset of the text (after a UTF-8 BOM) and the first line of a CSV file."""
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    if not head.strip() or b"\x00" in head or head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise StreamFallback("empty, binary or UTF-16")
    offset = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    body = head[offset:]
    end = min((i for i in (body.find(b"\n"), body.find(b"\r")) if i >= 0), default=-1)
    if end <= 0:
        raise StreamFallback("no complete header line in the first block")
    try:
        first = body[:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StreamFallback("not UTF-8") from exc
    return offset, first


def iter_csv_chunks(path: Path, name: TableName, findings: list[Finding],
                    block_bytes: int = BLOCK_BYTES) -> Iterator[RawTable]:
    """Yield the rows of a CSV file as tables of text cells, one block of rows at a time.

    Each table is indexed by spreadsheet row number (header = row 1) like the table
    :func:`~pofa.io.readers.read_csv_table` makes of the whole file, with the same cells, headers and blank
    rows left out. Findings about the header (an unnamed or repeated column) are added once.

    Parameters
    ----------
    path : pathlib.Path
        The CSV file.
    name : TableName
        Which table it holds (for the separator).
    findings : list of Finding
        Receives the findings about the header.
    block_bytes : int
        Bytes parsed at a time.

    Yields
    ------
    RawTable
        The next rows of the file.

    Raises
    ------
    StreamFallback
        When the file is not one Arrow reads exactly as Python's ``csv`` module (not UTF-8, a record not as
        wide as the header, a header the two split differently, an empty or binary file).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    offset, first_line = _header(path)
    delimiter = _detect_delimiter(first_line, name)
    try:
        header = next(csv.reader(io.StringIO(first_line, newline=""), delimiter=delimiter, strict=False))
    except (csv.Error, StopIteration) as exc:
        raise StreamFallback("unreadable header") from exc
    if not header or not any(c.strip() for c in header):
        raise StreamFallback("blank header")
    width = len(header)
    names = [f"c{j}" for j in range(width)]

    def invalid(row: object) -> str:
        return "error"  # a ragged record: the whole-file reader reports it with its row

    source = path.name
    seen: set[tuple[str, int | None, str | None, str]] = set()
    rows_before = 0
    with open(path, "rb") as fh:
        fh.seek(offset)
        try:
            reader = pacsv.open_csv(
                fh,
                read_options=pacsv.ReadOptions(column_names=names, block_size=block_bytes),
                parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                                 ignore_empty_lines=False, invalid_row_handler=invalid),
                convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                     null_values=[], strings_can_be_null=False,
                                                     quoted_strings_can_be_null=False))
            first = True
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                if first:
                    if batch.num_rows == 0 or [batch.column(j)[0].as_py() for j in range(width)] != header:
                        raise StreamFallback("Arrow and Python split the header differently")
                    batch = batch.slice(1)
                    first = False
                n = batch.num_rows
                if n == 0:
                    continue
                columns = [pd.Series(batch.column(j), dtype=TEXT_DTYPE) for j in range(width)]
                del batch
                found: list[Finding] = []
                frame, headers = _make_frame([c.strip() for c in header], _cells_from_columns(columns, n),
                                             source, found)
                del columns
                for f in found:  # header findings: once for the file
                    key = (f.code, f.row, f.column, f.message)
                    if key not in seen:
                        seen.add(key)
                        findings.append(f)
                frame.index = pd.Index(frame.index.to_numpy() + rows_before, name="row")
                rows_before += n
                yield RawTable(name, source, path, frame, headers)
                release_arrow_memory()
        except (pa.ArrowException, ValueError, UnicodeDecodeError) as exc:
            raise StreamFallback(str(exc)) from exc
    if first:
        raise StreamFallback("no rows")
