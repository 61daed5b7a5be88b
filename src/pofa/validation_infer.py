"""The type of an undeclared column inferred block by block: tallies per block, the decision at the end.

:func:`pofa.validation._infer_covariate` types an extra (undeclared covariate) column from all its cells:
all numbers, all yes/no or all dates give that type; a column :data:`~pofa.validation.MOSTLY` of one type
gets that type and an ``odd-cell`` warning per other cell (at most a few one by one, the rest counted); any
other column is text. :class:`InferTally` reaches the same decision, with the same findings, from counts kept
block by block (:mod:`pofa.validation_stream`): the non-blank cells, the cells that are not numbers, not
yes/no or not dates, the plain yes/no words, the decimal-comma cells, and for each type the first few odd
cells with their rows and text. Its memory is bounded by the findings kept, not by the rows.

The column's text, as :func:`pofa.privacy.category_of_content` examines it, is tallied on the way too
(:class:`pofa.privacy.ContentTally`): the cells as text, and the whole numbers as the integer column the
inference may give; the decision picks the tally of the type decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pofa.findings import MAX_PER_KIND
from pofa.findings import FindingCode as C
from pofa.privacy import ContentTally
from pofa.schema import FALSE_WORDS, MISSING_WORDS, TRUE_WORDS, Kind
from pofa.validation import (
    _AMBIGUOUS_BOOLEAN,
    _DECIMAL_COMMA_RE,
    _EMPTY,
    _MAX_EXACT_INT,
    _ODD_HINT,
    MOSTLY,
    _as_text,
    _Commas,
    _flag,
    _quote,
    parse_dates,
    parse_numbers,
)
from pofa.validation_collect import Collector

__all__ = ["InferTally"]


@dataclass
class _Cells:
    """Cells of one kind seen block by block: how many, the first few (row and text), the last row."""

    limit: int
    count: int = 0
    first: list[tuple[int, str]] = field(default_factory=list)
    last: int | None = None

    def add(self, mask: pd.Series, text: pd.Series) -> None:
        m = mask.to_numpy(dtype=bool)
        k = int(m.sum())
        if not k:
            return
        rows = mask.index[m]
        self.count += k
        self.last = int(rows[-1])
        room = self.limit - len(self.first)
        if room > 0:
            self.first.extend((int(r), str(text[r])) for r in rows[:room])


class InferTally:
    """One undeclared column's cells tallied block by block, typed and checked at the end.

    Parameters
    ----------
    source : str
        The file.
    column : str
        The column.
    decimal : str
        The decimal separator (``"."`` or ``","``).
    content : bool
        Tally the cells for :func:`pofa.privacy.category_of_content` too.
    limit : int
        Odd cells of a type kept one by one (one more is kept for the summary finding).
    """

    def __init__(self, source: str, column: str, decimal: str = ".", content: bool = False,
                 limit: int = MAX_PER_KIND) -> None:
        self.source, self.column, self.decimal = source, column, decimal
        self.given = self.not_number = self.not_boolean = self.not_date = self.plain_boolean = 0
        self.whole = True  # every number so far is whole and exact as an Int64
        self.odd = {kind: _Cells(limit + 1) for kind in (Kind.NUMBER, Kind.BOOLEAN, Kind.DATE)}
        self.commas = _Cells(1)
        self.text = ContentTally() if content else None
        self.integers = ContentTally(integer=True) if content else None

    def add(self, cells: pd.Series) -> None:
        """Add the cells of some rows (indexed by spreadsheet row, in file order).

        Parameters
        ----------
        cells : pandas.Series
            The column's cells of the next block, as read.
        """
        text = _as_text(cells)
        given = _flag(text != _EMPTY)
        self.given += int(given.sum())
        nums, bad_num = parse_numbers(text, self.decimal)
        comma = bad_num & _flag(text.str.match(_DECIMAL_COMMA_RE)) if self.decimal == "." else bad_num & False
        self.not_number += int(bad_num.sum())
        self.odd[Kind.NUMBER].add(bad_num & ~comma, text)
        self.commas.add(comma, text)
        values = nums.dropna().to_numpy()
        if self.whole and not (np.all(np.mod(values, 1) == 0) and np.all(np.abs(values) <= _MAX_EXACT_INT)):
            self.whole, self.integers = False, None
        low = text.str.lower()
        true, false = _flag(low.isin(TRUE_WORDS)), _flag(low.isin(FALSE_WORDS))
        not_boolean = given & ~true & ~false
        self.not_boolean += int(not_boolean.sum())
        self.odd[Kind.BOOLEAN].add(not_boolean, text)
        self.plain_boolean += int(((true | false) & _flag(~low.isin(_AMBIGUOUS_BOOLEAN))).sum())
        bad_date = parse_dates(text)[1]
        self.not_date += int(bad_date.sum())
        self.odd[Kind.DATE].add(bad_date, text)
        if self.text is not None:
            stripped = text[given].astype(object).str.strip()
            self.text.add(stripped[stripped != ""].tolist())
        if self.integers is not None:
            self.integers.add(values.astype(np.int64).astype(str).tolist())

    def finish(self, out: Collector, commas: _Commas) -> ContentTally | None:
        """Decide the column's type as :func:`pofa.validation._infer_covariate` does; report its odd cells.

        Parameters
        ----------
        out : Collector
            Receives the ``odd-cell`` findings.
        commas : _Commas
            Counts the decimal-comma cells of the file (those of a column read as numbers).

        Returns
        -------
        ContentTally or None
            The tally of the column's content as typed (``None`` for numbers with a fraction, yes/no, dates,
            or when not tallied).
        """
        n = self.given
        if n == 0:
            return self.text
        if self.not_number == 0:
            return self.integers if self.whole else None
        if self.not_boolean == 0 or self.not_date == 0:
            return None
        counts = {Kind.NUMBER: n - self.odd[Kind.NUMBER].count, Kind.BOOLEAN: self.plain_boolean,
                  Kind.DATE: n - self.not_date}
        kind = max(counts, key=lambda k: counts[k])  # ties: number, then yes/no, then date
        if counts[kind] < MOSTLY * n:
            return self.text
        tally: ContentTally | None = None
        if kind is Kind.NUMBER:
            if self.commas.count:
                row, value = self.commas.first[0]
                if commas.first is None or (row, self.column) < commas.first[:2]:
                    commas.first = (row, self.column, value)
                commas.cells += self.commas.count
                commas.columns = (commas.columns or set()) | {self.column}
            what = "whole number" if self.whole else "number"
            tally = self.integers if self.whole else None
        else:
            what = "yes/no" if kind is Kind.BOOLEAN else "date"
        share = counts[kind] / n
        odd = self.odd[kind]
        texts = dict(odd.first)
        column = self.column

        def message(r: int) -> str:
            return (f"{_quote(texts[r])} is not a {what}, unlike {share:.0%} of the column '{column}': the "
                    "cell is read as blank")

        def hint(r: int) -> str:
            if texts[r].lower() in MISSING_WORDS:
                return "leave the cell empty when the value is unknown"
            return (f"{_ODD_HINT[kind]}, or leave it empty; to keep such cells, declare the column in "
                    f'study.toml as [covariates.{column}] with type = "category" and its levels')

        if odd.count and odd.last is not None:
            out.counted([r for r, _ in odd.first], odd.count, odd.last, C.ODD_CELL, self.source, column,
                        message, hint)
        return tally
