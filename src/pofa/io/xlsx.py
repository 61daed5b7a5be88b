"""Small XLSX workbooks for the report's tables: reproducible byte for byte, never a formula cell.

Written with XlsxWriter, the library built for writing workbooks: for the report's nine small tables it costs
a few hundredths of a second where openpyxl (which pofa keeps for reading workbooks and for the data-entry
template) cost about 0.15 s per run, in its import, its object model and the rewriting of its zip to remove
the save time it stamps. XlsxWriter stamps no time when given one: every zip entry and the document's
created/modified properties carry the zip format's own epoch, 1980-01-01 00:00, never the date of the run.

Every value goes through :func:`pofa.io.writers.xlsx_value` (text neutralised, numbers as numbers, missing as
no cell), and text is written with ``write_string`` (and the workbook is told never to turn strings into
formulas, numbers or links): a cell is never a formula. Control characters that XML cannot carry are written
in Excel's own escape (``_x0001_``), as XlsxWriter does. Reading XLSX files is openpyxl's job
(:mod:`pofa.io.readers`).
"""

from __future__ import annotations

import datetime as _dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pofa.errors import PofaError
from pofa.io.writers import xlsx_value

__all__ = ["ZIP_EPOCH", "Sheet", "xlsx_bytes"]

#: The only time a workbook carries: the zip format's epoch (entries and document properties).
ZIP_EPOCH = _dt.datetime(1980, 1, 1)

_OPTIONS = {
    "in_memory": True,
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
    "nan_inf_to_errors": False,
}


@dataclass(frozen=True, slots=True)
class Sheet:
    """One worksheet: its title and its rows of values.

    Attributes
    ----------
    title : str
        Sheet name (1-31 characters, none of ``[]:*?/\\``, unique in the workbook ignoring case).
    rows : sequence of sequence
        The rows, top to bottom; each value as :func:`pofa.io.writers.xlsx_value` takes it (``None``: no
        cell).
    bold_rows : int
        How many leading rows are bold (a header: 1).
    """

    title: str
    rows: Sequence[Sequence[Any]]
    bold_rows: int = 0


def xlsx_bytes(sheets: Sequence[Sheet]) -> bytes:
    """Return a workbook of ``sheets`` as XLSX bytes: the same input gives the same bytes, dated 1980-01-01.

    Parameters
    ----------
    sheets : sequence of Sheet
        The worksheets, in order (at least one).

    Returns
    -------
    bytes
        The XLSX file.

    Raises
    ------
    PofaError
        When a sheet title is not one a spreadsheet accepts (empty, over 31 characters, one of ``[]:*?/\\``,
        twice in the workbook).
    """
    import xlsxwriter
    from xlsxwriter.exceptions import XlsxWriterException

    if not sheets:
        raise PofaError("cannot write a workbook without a sheet")
    for sheet in sheets:
        if not sheet.title:  # XlsxWriter would name it "Sheet1"
            raise PofaError("cannot write the workbook: a sheet title cannot be empty")
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, _OPTIONS)
    wb.set_properties({"created": ZIP_EPOCH, "author": "pofa"})
    bold = wb.add_format({"bold": True})
    try:
        for sheet in sheets:
            ws = wb.add_worksheet(sheet.title)
            for r, row in enumerate(sheet.rows):
                fmt = bold if r < sheet.bold_rows else None
                for c, raw in enumerate(row):
                    value = xlsx_value(raw)
                    if value is None or value == "":  # a blank cell (openpyxl wrote an empty one)
                        if fmt is not None:
                            ws.write_blank(r, c, None, fmt)
                    elif isinstance(value, str):
                        ws.write_string(r, c, value, fmt)
                    elif isinstance(value, bool):
                        ws.write_boolean(r, c, value, fmt)
                    else:  # int or float, finite (xlsx_value made the rest None)
                        ws.write_number(r, c, value, fmt)
    except XlsxWriterException as exc:  # an invalid or repeated sheet title
        raise PofaError(f"cannot write the workbook: sheet title refused ({exc})") from None
    wb.close()
    return buf.getvalue()
