"""Collecting the findings of a study check: at most a few of a kind one by one, the rest counted.

Used by :mod:`pofa.validation` (a whole study) and :mod:`pofa.validation_stream` (large files block by block):
memory and time grow with the findings kept, not with the number of bad cells.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd

from pofa.findings import MAX_PER_KIND, Finding, finding, more_finding
from pofa.findings import FindingCode as C

__all__ = ["Collector", "Message"]

Message = str | Callable[[int], str]


class Collector:
    """Accumulates findings; one call per (mask, message) so that the work stays vectorised.

    At most :data:`~pofa.findings.MAX_PER_KIND` findings of one kind (code, file, column) are made one by
    one; the rest are only counted and become one summary finding, so that memory and time are bounded by the
    findings kept, not by the number of bad cells.

    Parameters
    ----------
    limit : int
        Findings of one kind kept one by one.
    """

    def __init__(self, limit: int = MAX_PER_KIND) -> None:
        self._items: list[Finding] = []
        self._limit = limit
        self._kept: Counter[tuple[str, str, str | None]] = Counter()
        self._more: dict[tuple[str, str, str | None], list[Any]] = {}
        self._cells: dict[tuple[str, str | None], set[int]] = {}  # (file, column) -> rows with a finding
        self._skipped: Counter[tuple[str, int, str | None]] = Counter()
        #: While true, findings about the header (row 1 or no row) are dropped: a later block of a file
        #: checked block by block (pofa.validation_stream) would repeat them.
        self.header_once = False

    @property
    def items(self) -> list[Finding]:
        """The findings kept, then one summary finding per kind with more findings than the limit.

        A finding whose cell made other checks pointless says how many were skipped.

        Returns
        -------
        list of Finding
            The findings.
        """
        items = self._items
        if self._skipped:
            items = [self._with_skipped(f) for f in items]
        # the summaries in an order that does not depend on the order of the checks (nor on blocks of rows)
        more = sorted(self._more.values(),
                      key=lambda e: (e[0].file, e[0].column or "", -1 if e[2] is None else e[2], e[0].code))
        return items + [more_finding(f, n, lo, hi) for f, n, lo, hi in more]

    def _with_skipped(self, f: Finding) -> Finding:
        n = self._skipped.get((f.file, f.row, f.column), 0) if f.row is not None else 0
        if not n:
            return f
        return replace(f, message=f"{f.message} ({n} check(s) that depend on this cell were skipped)")

    def skip(self, source: str, column: str, counts: pd.Series) -> None:
        """Count checks skipped because the cell (``source``, row, ``column``) already has a finding.

        Only the cells whose findings are kept one by one are counted (the others are not shown).

        Parameters
        ----------
        source : str
            The file.
        column : str
            The column of the cell with a finding.
        counts : pandas.Series
            By row, how many checks were skipped (a mask counts 1 per true row).
        """
        rows = self._cells.get((source, column))
        if not rows:
            return
        c = counts.astype("int64") if counts.dtype == bool else counts
        for r in rows:
            if r in c.index:
                n = int(c.loc[r])
                if n:
                    self._skipped[(source, r, column)] += n

    def _room(self, key: tuple[str, str, str | None]) -> int:
        return max(self._limit - self._kept[key], 0)

    def _count_more(self, key: tuple[str, str, str | None], first: Finding, n: int, lo: int | None,
                    hi: int | None) -> None:
        entry = self._more.setdefault(key, [first, 0, lo, hi])
        entry[1] += n
        if lo is not None:
            entry[2] = lo if entry[2] is None else min(entry[2], lo)
        if hi is not None:
            entry[3] = hi if entry[3] is None else max(entry[3], hi)

    def rows(self, mask: pd.Series, code: C, source: str, column: str | None, message: Message,
             hint: Message) -> None:
        """Make a finding for each row where ``mask`` is true (NA counts as false).

        Parameters
        ----------
        mask : pandas.Series
            The rows (indexed by spreadsheet row) that fail the check.
        code : FindingCode
            The kind of finding.
        source : str
            The file.
        column : str or None
            The column.
        message, hint : str or callable
            The text, or a function of the row giving it (called only for the findings kept one by one).
        """
        m = mask.fillna(False).to_numpy(dtype=bool) if mask.dtype != bool else mask.to_numpy()
        if not m.any():
            return
        key = (str(code), source, column)
        rows = mask.index[m]
        room = self._room(key)
        cells = self._cells.setdefault((source, column), set())
        for row in rows[:room]:
            r = int(row)
            cells.add(r)
            self._items.append(finding(code, source, r, column, message(r) if callable(message) else message,
                                       hint(r) if callable(hint) else hint))
        self._kept[key] += min(room, len(rows))
        if len(rows) > room:
            r = int(rows[room])
            first = finding(code, source, r, column, "", hint(r) if callable(hint) else hint)
            self._count_more(key, first, len(rows) - room, r, int(rows[-1]))

    def counted(self, first: list[int], count: int, last: int, code: C, source: str, column: str | None,
                message: Message, hint: Message) -> None:
        """Make the findings :meth:`rows` makes, from cells counted block by block (not a mask of every row).

        Parameters
        ----------
        first : list of int
            The first rows with the problem, in order: at least one more than are kept one by one (or all).
        count : int
            How many rows have the problem.
        last : int
            The last of them.
        code : FindingCode
            The kind of finding.
        source : str
            The file.
        column : str or None
            The column.
        message, hint : str or callable
            The text, or a function of the row giving it (called only for the rows in ``first``).
        """
        if count <= 0:
            return
        key = (str(code), source, column)
        room = self._room(key)
        cells = self._cells.setdefault((source, column), set())
        for r in first[:room]:
            cells.add(r)
            self._items.append(finding(code, source, r, column, message(r) if callable(message) else message,
                                       hint(r) if callable(hint) else hint))
        self._kept[key] += min(room, count)
        if count > room:
            r = first[room]
            more = finding(code, source, r, column, "", hint(r) if callable(hint) else hint)
            self._count_more(key, more, count - room, r, last)

    def add(self, code: C, source: str, row: int | None, column: str | None, message: str, hint: str) -> None:
        """Make one finding (dropped while :attr:`header_once` is true and it is about the header).

        Parameters
        ----------
        code : FindingCode
            The kind of finding.
        source : str
            The file.
        row : int or None
            The spreadsheet row (1 = the header; ``None``: the whole file).
        column : str or None
            The column.
        message, hint : str
            The text.
        """
        if self.header_once and (row is None or row <= 1):
            return
        f = finding(code, source, row, column, message, hint)
        key = (str(code), source, column)
        if self._room(key):
            self._kept[key] += 1
            self._items.append(f)
            if row is not None:
                self._cells.setdefault((source, column), set()).add(row)
        else:
            self._count_more(key, f, 1, row, row)

    def extend(self, findings: list[Finding]) -> None:
        """Add findings made by another module (e.g. :mod:`pofa.response.validate`), under the same limit.

        Parameters
        ----------
        findings : list of Finding
            The findings.
        """
        for f in findings:
            key = (str(f.code), f.file, f.column)
            if self._room(key):
                self._kept[key] += 1
                self._items.append(f)
            else:
                self._count_more(key, f, 1, f.row, f.row)

    def full(self, code: C, source: str, column: str | None) -> bool:
        """Tell whether no further finding of this kind would be kept one by one (callers may just count).

        Parameters
        ----------
        code : FindingCode
            The kind of finding.
        source : str
            The file.
        column : str or None
            The column.

        Returns
        -------
        bool
            True when the findings of this kind are only counted from now on.
        """
        return not self._room((str(code), source, column))
