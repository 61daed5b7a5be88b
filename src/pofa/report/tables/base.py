"""What every report table shares: the cell fragments, the table record and the CSV/XLSX writers.

A :class:`ReportTable` has two views of the same content:

* ``rows``: what the HTML shows, cell by cell. A cell is a tuple of :class:`Frag` fragments; a fragment that
  shows a number of results.json carries its results.json path and exact value (the HTML writes them into
  ``data-result`` and ``data-value`` attributes, which the report's tests compare with results.json);
* ``data``: a tidy DataFrame written to ``tables/<name>.csv`` and ``.xlsx`` (full-precision numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pofa.atomic import write_bytes
from pofa.io.writers import csv_text
from pofa.io.xlsx import Sheet, xlsx_bytes
from pofa.report.format import DASH
from pofa.stats.results import json_number

__all__ = ["Cell", "Frag", "ReportTable", "cell_text", "num", "ratio_ci", "text", "write_table"]


@dataclass(frozen=True, slots=True)
class Frag:
    """A piece of a table cell: text, and for a number of results.json its path and exact JSON value.

    Attributes
    ----------
    text : str
        As shown.
    path : str or None
        Where results.json stores the number (``"lesion_models[3].or"``), for the report's tests.
    value : object
        The number as results.json stores it (``None`` when not estimable).
    """

    text: str
    path: str | None = None
    value: Any = None


Cell = tuple[Frag, ...]


@dataclass(frozen=True, slots=True)
class ReportTable:
    """A table of the report.

    Attributes
    ----------
    name : str
        File stem (``tables/<name>.csv``) and HTML anchor.
    title : str
        Table title (``"Table 1. Cohort characteristics"``).
    header : tuple of str
        Column headings of the HTML view.
    rows : tuple of tuple of Cell
        HTML view.
    data : DataFrame
        CSV/XLSX view.
    note : str
        Footnote: definitions, methods, abbreviations.
    heading_rows : frozenset of int
        Rows of ``rows`` that are section headings (one cell spanning the table).
    """

    name: str
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    data: pd.DataFrame
    note: str = ""
    heading_rows: frozenset[int] = field(default_factory=frozenset)


def text(t: str) -> Cell:
    """Make a cell of plain text.

    Parameters
    ----------
    t : str
        The text shown.

    Returns
    -------
    Cell
        A cell of one fragment without a results.json path.
    """
    return (Frag(t),)


def num(value: float | int | None, path: str, fmt: Callable[[Any], str]) -> Frag:
    """A fragment showing a result's number formatted by ``fmt``, with its results.json path and JSON value.

    Parameters
    ----------
    value : float, int or None
        The number (``nan``/``None`` when not estimable: shown as ``NE``).
    path : str
        Its results.json path.
    fmt : callable
        The formatter (:mod:`pofa.report.format`).

    Returns
    -------
    Frag
        The formatted text with ``path`` and the JSON value of the number.
    """
    v = json_number(value)
    return Frag(fmt(v), path, v)


def ratio_ci(est: float, lo: float, hi: float, base: str, est_key: str, fmt: Callable[[Any], str]) -> Cell:
    """``2.34 (1.55–3.55)``: an estimate and its CI, each fragment with its results.json path.

    Parameters
    ----------
    est, lo, hi : float
        Estimate and limits.
    base : str
        The results.json path of the object holding them.
    est_key : str
        The key of the estimate (``"or"``, ``"hr"``, ``"median_months"``).
    fmt : callable
        The formatter.

    Returns
    -------
    Cell
        The estimate, `` (``, the lower limit, a dash, the upper limit and ``)`` as fragments.
    """
    return (
        num(est, f"{base}.{est_key}", fmt),
        Frag(" ("),
        num(lo, f"{base}.ci_low", fmt),
        Frag(DASH),
        num(hi, f"{base}.ci_high", fmt),
        Frag(")"),
    )


def cell_text(cell: Sequence[Frag]) -> str:
    """Join the text of a cell as shown.

    Parameters
    ----------
    cell : sequence of Frag
        The cell's fragments.

    Returns
    -------
    str
        The fragments' texts joined.
    """
    return "".join(f.text for f in cell)


# ------------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------------

def _xlsx_bytes(table: ReportTable) -> bytes:
    """The table as an XLSX workbook (bold header, an ``about`` sheet), reproducible and free of dates."""
    # each value is converted once, by xlsx_bytes (pofa.io.writers.xlsx_value: numpy scalars, missing and
    # non-finite numbers, lists as text, text neutralised)
    rows = table.data.itertuples(index=False, name=None)
    data = Sheet(table.name[:31], [[str(c) for c in table.data.columns], *rows], bold_rows=1)
    about = Sheet("about", [["title", table.title], ["note", table.note], ["made by", "pofa"]])
    return xlsx_bytes([data, about])


def table_csv_bytes(table: ReportTable) -> bytes:
    """Write the table's data as UTF-8 CSV bytes (full precision; blank = missing).

    Parameters
    ----------
    table : ReportTable
        The table whose ``data`` is written.

    Returns
    -------
    bytes
        The CSV text encoded as UTF-8.
    """
    return csv_text(table.data).encode("utf-8")


def write_table(table: ReportTable, folder: Path) -> list[Path]:
    """Write ``<name>.csv`` and ``<name>.xlsx`` into ``folder`` (atomically).

    Parameters
    ----------
    table : ReportTable
        The table to write (its ``data`` view).
    folder : Path
        The existing folder written into.

    Returns
    -------
    list of Path
        The paths of the CSV and the XLSX file.
    """
    folder = Path(folder)
    csv_path = folder / f"{table.name}.csv"
    xlsx_path = folder / f"{table.name}.xlsx"
    write_bytes(csv_path, table_csv_bytes(table))
    write_bytes(xlsx_path, _xlsx_bytes(table))
    return [csv_path, xlsx_path]
