"""Small XLSX workbooks written directly: reproducible byte for byte, free of dates, never a formula cell.

pofa's report writes each table as a workbook of two small sheets (the data with a bold header, and an
``about`` sheet). openpyxl wrote them before; for such workbooks its import and object model cost about a
tenth of a second of CPU per run (the nine tables of one report), and it stamps the save time into
``docProps/core.xml`` and every zip entry, so its output had to be unzipped and zipped again. This module
writes the same SpreadsheetML that openpyxl 3.1 writes for these workbooks (the same parts, the same XML,
openpyxl's default styles and theme in ``pofa/data/xlsx``; the tests compare the cells, types and header
style with openpyxl's own output) without the library and without dates: zip entries carry the fixed time
1980-01-01 00:00, in sorted order. Only the document properties differ: they name pofa, not openpyxl.

Every value goes through :func:`pofa.io.writers.xlsx_value` (text neutralised, numbers as numbers, missing as
no cell) and text is written as an inline string of explicit type: a cell is never written as a formula.
Reading XLSX files is openpyxl's job (:mod:`pofa.io.readers`).
"""

from __future__ import annotations

import functools
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pofa.errors import PofaError
from pofa.io.writers import xlsx_value

__all__ = ["Sheet", "column_letter", "xlsx_bytes"]

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: Excel's limit on the text of a cell (openpyxl cuts longer text there too).
_MAX_TEXT = 32767
#: Control characters XML 1.0 cannot hold (openpyxl refuses them with the same rule).
_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
#: Characters a sheet title may not hold (Excel's rule, which openpyxl enforces too).
_BAD_TITLE = re.compile(r"[\\*?:/\[\]]")
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument"
_SHEET_HEAD = (
    f'<worksheet xmlns="{_MAIN_NS}"><sheetPr><outlinePr summaryBelow="1" summaryRight="1" /><pageSetUpPr />'
    '</sheetPr><dimension ref="{dim}" /><sheetViews><sheetView workbookViewId="0"><selection activeCell="A1" '
    'sqref="A1" /></sheetView></sheetViews><sheetFormatPr baseColWidth="8" defaultRowHeight="15" />'
)
_SHEET_TAIL = ('<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5" />'
               "</worksheet>")
_APP = ('<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
        '<Application>pofa</Application></Properties>')
_CORE = ('<cp:coreProperties '
         'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
         'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
         'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>pofa</dc:creator>'
         '</cp:coreProperties>')
_ROOT_RELS = (
    f'<Relationships xmlns="{_REL_NS}"><Relationship Type="{_DOC_REL}/officeDocument" '
    'Target="xl/workbook.xml" Id="rId1" />'
    f'<Relationship Type="{_REL_NS}/metadata/core-properties" Target="docProps/core.xml" Id="rId2" />'
    f'<Relationship Type="{_DOC_REL}/extended-properties" Target="docProps/app.xml" Id="rId3" />'
    "</Relationships>"
)


@dataclass(frozen=True, slots=True)
class Sheet:
    """One worksheet: its title and its rows of values.

    Attributes
    ----------
    title : str
        Sheet name (at most 31 characters, none of ``[]:*?/\\``).
    rows : sequence of sequence
        The rows, top to bottom; each value as :func:`pofa.io.writers.xlsx_value` takes it (``None``: no
        cell).
    bold_rows : int
        How many leading rows are bold (a header: 1).
    """

    title: str
    rows: Sequence[Sequence[Any]]
    bold_rows: int = 0


def column_letter(index: int) -> str:
    """Return the letters of a 1-based column index (1 is ``A``, 27 is ``AA``).

    Parameters
    ----------
    index : int
        Column number, from 1.

    Returns
    -------
    str
        The column's letters.
    """
    letters = ""
    while index > 0:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _escape_text(text: str) -> str:
    # what xml.etree (and so openpyxl) escapes in element text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(text: str) -> str:
    # what xml.etree (and so openpyxl) escapes in an attribute value
    return (_escape_text(text).replace('"', "&quot;").replace("\r", "&#13;").replace("\n", "&#10;")
            .replace("\t", "&#09;"))


def _cell(ref: str, value: Any, bold: bool) -> str:
    style = ' s="1"' if bold else ""
    if value is None:  # only a bold cell without a value is written (openpyxl keeps a styled empty cell)
        return f'<c r="{ref}"{style} t="n" />'
    if isinstance(value, str):
        value = value[:_MAX_TEXT]
        if _ILLEGAL.search(value):
            raise PofaError(f"a spreadsheet cell cannot hold the control characters of {value[:60]!r}")
        if not value:
            return f'<c r="{ref}"{style} t="inlineStr" />'
        stripped = value.strip()
        space = ' xml:space="preserve"' if stripped and value != stripped else ""  # openpyxl's rule
        return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{_escape_text(value)}</t></is></c>'
    if isinstance(value, bool):
        return f'<c r="{ref}"{style} t="b"><v>{int(value)}</v></c>'
    # int or float, finite (xlsx_value made the rest None); "%.16g" is how openpyxl writes numbers
    return f'<c r="{ref}"{style} t="n"><v>{format(value, ".16g")}</v></c>'


def _sheet_xml(sheet: Sheet) -> bytes:
    parts = []
    max_col = 0
    n_rows = 0
    letters: list[str] = []
    for r, row in enumerate(sheet.rows, 1):
        values = [xlsx_value(v) for v in row]
        if not values:  # a row without cells leaves no trace, like openpyxl's append([])
            continue
        n_rows = r
        while len(letters) < len(values):
            letters.append(column_letter(len(letters) + 1))
        max_col = max(max_col, len(values))
        bold = r <= sheet.bold_rows
        cells = "".join(_cell(f"{letters[c]}{r}", v, bold) for c, v in enumerate(values)
                        if v is not None or bold)
        parts.append(f'<row r="{r}">{cells}</row>')
    first_row = next((r for r, row in enumerate(sheet.rows, 1) if len(row)), 0)
    dim = f"A{first_row}:{letters[max_col - 1]}{n_rows}" if n_rows else "A1:A1"
    data = f"<sheetData>{''.join(parts)}</sheetData>" if parts else "<sheetData />"
    return (_SHEET_HEAD.replace("{dim}", dim) + data + _SHEET_TAIL).encode("utf-8")


def _workbook_parts(titles: Sequence[str]) -> dict[str, bytes]:
    n = len(titles)
    sheets = "".join(f'<sheet name="{_escape_attr(t)}" sheetId="{i}" state="visible" r:id="rId{i}" />'
                     for i, t in enumerate(titles, 1))
    workbook = (
        f'<workbook xmlns:r="{_DOC_REL}" xmlns="{_MAIN_NS}"><workbookPr /><workbookProtection /><bookViews>'
        '<workbookView visibility="visible" minimized="0" showHorizontalScroll="1" showVerticalScroll="1" '
        'showSheetTabs="1" tabRatio="600" firstSheet="0" activeTab="0" autoFilterDateGrouping="1" />'
        f'</bookViews><sheets>{sheets}</sheets><definedNames /><calcPr calcId="124519" fullCalcOnLoad="1" />'
        "</workbook>"
    )
    sheet_rels = "".join(f'<Relationship Type="{_DOC_REL}/worksheet" Target="/xl/worksheets/sheet{i}.xml" '
                         f'Id="rId{i}" />' for i in range(1, n + 1))
    rels = (f'<Relationships xmlns="{_REL_NS}">{sheet_rels}<Relationship Type="{_DOC_REL}/styles" '
            f'Target="styles.xml" Id="rId{n + 1}" /><Relationship Type="{_DOC_REL}/theme" '
            f'Target="theme/theme1.xml" Id="rId{n + 2}" /></Relationships>')
    sheet_types = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
                          f'ContentType="{_CT}.spreadsheetml.worksheet+xml" />' for i in range(1, n + 1))
    types = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" />'
        '<Default Extension="xml" '
        'ContentType="application/xml" /><Override PartName="/xl/styles.xml" '
        f'ContentType="{_CT}.spreadsheetml.styles+xml" /><Override PartName="/xl/theme/theme1.xml" '
        f'ContentType="{_CT}.theme+xml" /><Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml" /><Override '
        f'PartName="/docProps/app.xml" ContentType="{_CT}.extended-properties+xml" />{sheet_types}'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.spreadsheetml.sheet.main+xml" /></Types>'
    )
    return {"[Content_Types].xml": types.encode("utf-8"), "xl/workbook.xml": workbook.encode("utf-8"),
            "xl/_rels/workbook.xml.rels": rels.encode("utf-8")}


@functools.cache
def _fixed_part(name: str) -> bytes:
    # openpyxl's default stylesheet (plus the bold font) and theme, as openpyxl 3.1 writes them
    return (resources.files("pofa.data") / "xlsx" / name).read_bytes()


def xlsx_bytes(sheets: Sequence[Sheet]) -> bytes:
    """Return a workbook of ``sheets`` as XLSX bytes: the same input gives the same bytes, and no dates.

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
        twice in the workbook), or a text cell holds a control character that XML cannot carry.
    """
    titles = [s.title for s in sheets]
    for title in titles:
        if not title or len(title) > 31 or _BAD_TITLE.search(title):
            raise PofaError(f"{title!r} cannot be a sheet title (1-31 characters, none of []:*?/\\)")
    if len({t.casefold() for t in titles}) != len(titles):
        raise PofaError(f"two sheets of one workbook have the same title: {titles}")
    parts = _workbook_parts(titles)
    parts["_rels/.rels"] = _ROOT_RELS.encode("utf-8")
    parts["docProps/app.xml"] = _APP.encode("utf-8")
    parts["docProps/core.xml"] = _CORE.encode("utf-8")
    parts["xl/styles.xml"] = _fixed_part("styles.xml")
    parts["xl/theme/theme1.xml"] = _fixed_part("theme1.xml")
    for i, sheet in enumerate(sheets, 1):
        parts[f"xl/worksheets/sheet{i}.xml"] = _sheet_xml(sheet)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in sorted(parts):
            zi = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, parts[name])
    return out.getvalue()
