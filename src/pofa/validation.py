"""Parsing text cells into typed tables, and checking a study: every problem at once.

Each check is vectorised over the table and builds findings only for the rows that fail it, so a study of
10,000 patients and 75,000 lesions validates in about a second (benchmarks/validate_large.py).

A cell that cannot be parsed is reported once, as what it is (``bad-date``, ``bad-number``, ...); checks that
would need its value skip it rather than report a consequence (a failure row of a patient whose
progression date is unreadable is not also a "failure without progression").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pofa.covariates import Covariate, CovariateType
from pofa.findings import Finding
from pofa.findings import FindingCode as C
from pofa.io.readers import TEXT_DTYPE, RawTable, release_arrow_memory
from pofa.schema import (
    COORDINATES,
    FALSE_WORDS,
    MAX_FOLLOWUP_YEARS,
    MAX_YEAR,
    MIN_YEAR,
    MISSING_WORDS,
    TABLES,
    TRUE_WORDS,
    Column,
    Kind,
    TableName,
    likely_header,
)
from pofa.units import DAYS_PER_YEAR
from pofa.validation_collect import Collector as _Collector

#: ISO 8601 date, optionally with a time (as Excel and pandas write date-times) and a zone; only the date
#: part is used. ASCII digits only ("\d" would also match other scripts' digits).
_DATE_RE = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
            r"(?:[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?$")
_DECIMAL_COMMA_RE = r"^[+-]?[0-9]*,[0-9]+$"
#: The accepted number syntax (what a spreadsheet writes): sign, digits, decimal point, exponent.
_NUMBER_RE = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
#: Excel stores dates as day numbers counted from 1899-12-30; a plain number in a date column of a workbook
#: is most likely a date whose cell lost its date format.
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EMPTY = ""

Message = str | Callable[[int], str]


@dataclass(frozen=True, slots=True)
class TypedTable:
    """A parsed table: typed columns, indexed by spreadsheet row number, plus its source label.

    ``unparsed`` marks the cells of the format's date, number and yes/no columns that held text which
    could not be parsed (they are NaT/NaN/NA in ``frame``, unlike truly blank cells).
    """

    name: TableName
    source: str
    frame: pd.DataFrame
    covariates: tuple[str, ...]
    unparsed: pd.DataFrame

    def blank(self, column: str) -> pd.Series:
        """Return the cells of ``column`` that were blank in the file (not merely unparsable).

        Parameters
        ----------
        column : str
            A column of :attr:`frame`.

        Returns
        -------
        pandas.Series
            Boolean mask over the rows: missing in ``frame`` and not marked in :attr:`unparsed`.
        """
        blank = self.frame[column].isna()
        return blank & ~self.unparsed[column] if column in self.unparsed else blank


def _quote(v: object, limit: int = 40) -> str:
    s = str(v)
    return repr(s if len(s) <= limit else s[:limit] + "...")


def _day(v: object) -> str:
    """A date value as YYYY-MM-DD for messages."""
    if isinstance(v, (dt.date, np.datetime64, str, int, float, np.integer)) and not pd.isna(v):
        return pd.Timestamp(v).date().isoformat()
    return "(blank)"


def _flag(mask: pd.Series) -> pd.Series:
    """A mask as a plain numpy-bool Series (NA counts as false)."""
    return pd.Series(mask.to_numpy(dtype=bool, na_value=False), index=mask.index)


def _as_text(text: pd.Series) -> pd.Series:
    return text if isinstance(text.dtype, pd.StringDtype) else text.astype(TEXT_DTYPE)


def parse_dates(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ISO 8601 dates ``YYYY-MM-DD`` in 1900-2099 (an Excel time part is dropped).

    Parameters
    ----------
    text : pandas.Series
        The cells as read.

    Returns
    -------
    tuple of pandas.Series
        The dates as ``datetime64[ns]`` (NaT where blank or unparsable) and the mask of non-blank cells that
        are not such a date.
    """
    text = _as_text(text)
    blank = _flag(text == _EMPTY)
    shaped = _flag(text.str.match(_DATE_RE))
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    if shaped.any():
        day = text[shaped].str.slice(0, 10)
        year = day.str.slice(0, 4).astype("int64")
        day = day[_flag((year >= MIN_YEAR) & (year <= MAX_YEAR))]
        parsed = pd.to_datetime(day.astype(object), format="%Y-%m-%d", errors="coerce")
        out.loc[parsed.index] = parsed.astype("datetime64[ns]")
    bad = ~blank & out.isna()
    return out, bad


def parse_numbers(text: pd.Series, decimal: str = ".") -> tuple[pd.Series, pd.Series]:
    """Parse finite decimal numbers (``4.5``, ``-0.5``, ``.5``, ``1e3``; a decimal point, not a comma).

    With ``decimal=","`` a decimal comma is accepted as well (``4,5``; ``[study] decimal`` of study.toml).

    Parameters
    ----------
    text : pandas.Series
        The cells as read.
    decimal : str
        The decimal separator, ``"."`` or ``","``.

    Returns
    -------
    tuple of pandas.Series
        The floats (NaN where blank or unparsable) and the mask of non-blank cells that are not such a number.
    """
    text = _as_text(text)
    if decimal == ",":
        comma = _flag(text.str.match(_DECIMAL_COMMA_RE))
        if comma.any():
            text = text.where(~comma, text.str.replace(",", ".", regex=False))
    blank = _flag(text == _EMPTY)
    shaped = _flag(text.str.match(_NUMBER_RE))
    out = pd.Series(np.nan, index=text.index, dtype="float64")
    if shaped.any():
        values = pd.to_numeric(text[shaped].astype(object), errors="coerce").to_numpy(dtype="float64",
                                                                                      na_value=np.nan)
        out[shaped] = np.where(np.isfinite(values), values, np.nan)  # 1e999 overflows to inf: not a number
    bad = ~blank & out.isna()
    return out, bad


def parse_booleans(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse yes/no, true/false, y/n, t/f, 1/0 in any case.

    Parameters
    ----------
    text : pandas.Series
        The cells as read.

    Returns
    -------
    tuple of pandas.Series
        The nullable booleans (NA where blank or unparsable) and the mask of non-blank unparsable cells.
    """
    low = _as_text(text).str.lower()
    blank = _flag(low == _EMPTY)
    true = _flag(low.isin(TRUE_WORDS))
    false = _flag(low.isin(FALSE_WORDS))
    out = pd.Series(pd.NA, index=text.index, dtype="boolean")
    out[true] = True
    out[false] = False
    bad = ~blank & ~true & ~false
    return out, bad


#: Whole numbers up to this size are exact in float64 and become an Int64 covariate.
_MAX_EXACT_INT = 2.0**53
#: An undeclared column whose non-blank cells are at least this share of one type is read as that type; each
#: other cell is an ``odd-cell`` warning (and read as blank).
MOSTLY = 0.8
#: Boolean words that are also common category codes (sex F/M, T stage): they do not make a column yes/no.
_AMBIGUOUS_BOOLEAN = frozenset({"t", "f"})


@dataclass
class _Commas:
    """The cells of one file written with a decimal comma: counted, the first kept as the example."""

    first: tuple[int, str, str] | None = None  # row, column, cell text
    cells: int = 0
    columns: set[str] | None = None

    def add(self, mask: pd.Series, column: str, text: pd.Series) -> None:
        m = mask.to_numpy(dtype=bool)
        if not m.any():
            return
        rows = mask.index[m]
        r = int(rows[0])
        if self.first is None or (r, column) < self.first[:2]:
            self.first = (r, column, str(text[r]))
        self.cells += int(m.sum())
        self.columns = (self.columns or set()) | {column}

    def report(self, source: str, out: _Collector) -> None:
        if self.first is None:
            return
        row, column, value = self.first
        others = self.cells - 1
        cols = len(self.columns or ())
        more = (f" (and {others} more cell(s) in {cols} column(s))" if others else "")
        out.add(C.DECIMAL_COMMA, source, row, column,
                f"the file writes numbers with a decimal comma: {_quote(value)}{more}",
                'write decimal = "," under [study] in study.toml to read such numbers, or export the file '
                "with a decimal point (Excel: set the decimal separator to '.')")


def _integers(nums: pd.Series) -> pd.Series | None:
    """Whole numbers as Int64, or ``None`` when some value has a fraction or is too large to be exact."""
    v = nums.dropna().to_numpy()
    if np.all(np.mod(v, 1) == 0) and np.all(np.abs(v) <= _MAX_EXACT_INT):
        return nums.astype("Int64")
    return None


def _infer_covariate(text: pd.Series, source: str = "", column: str = "", out: _Collector | None = None,
                     decimal: str = ".", commas: _Commas | None = None) -> pd.Series:
    """An undeclared covariate kept with its type: whole number, number, yes/no, date or text.

    A column all of one type gets that type (blank = missing). A column mostly of one type (:data:`MOSTLY` of
    its non-blank cells or more) gets that type too, and each other cell an ``odd-cell`` warning (the cell is
    read as blank) -- never silently: ``age`` with one ``unknown`` stays a number column. Other columns are
    text.
    """
    text = _as_text(text)
    given = _flag(text != _EMPTY)
    n = int(given.sum())
    if n == 0:
        return pd.Series(pd.NA, index=text.index, dtype="object")
    nums, bad_num = parse_numbers(text, decimal)
    comma = bad_num & _flag(text.str.match(_DECIMAL_COMMA_RE)) if decimal == "." else bad_num & False
    if not bad_num.any():
        ints = _integers(nums)
        return ints if ints is not None else nums
    low = text.str.lower()
    true, false = _flag(low.isin(TRUE_WORDS)), _flag(low.isin(FALSE_WORDS))
    if not (given & ~true & ~false).any():
        return parse_booleans(text)[0]
    dates, bad_date = parse_dates(text)
    if not bad_date.any():
        return dates
    plain_bool = (true | false) & _flag(~low.isin(_AMBIGUOUS_BOOLEAN))
    counts = {Kind.NUMBER: n - int((bad_num & ~comma).sum()), Kind.BOOLEAN: int(plain_bool.sum()),
              Kind.DATE: n - int(bad_date.sum())}
    kind = max(counts, key=lambda k: counts[k])  # ties: number, then yes/no, then date
    if out is None or counts[kind] < MOSTLY * n:
        return text.astype(object).where(given, None)
    if kind is Kind.NUMBER:
        odd, typed = bad_num & ~comma, nums
        if commas is not None:
            commas.add(comma, column, text)
        ints = _integers(nums)
        typed = ints if ints is not None else nums
        what = "whole number" if ints is not None else "number"
    elif kind is Kind.BOOLEAN:
        typed, odd = parse_booleans(text)
        what = "yes/no"
    else:
        typed, odd, what = dates, bad_date, "date"
    share = counts[kind] / n

    def message(r: int) -> str:
        return (f"{_quote(text[r])} is not a {what}, unlike {share:.0%} of the column '{column}': the cell "
                "is read as blank")

    def hint(r: int) -> str:
        if str(text[r]).lower() in MISSING_WORDS:
            return "leave the cell empty when the value is unknown"
        return (f"{_ODD_HINT[kind]}, or leave it empty; to keep such cells, declare the column in study.toml "
                f'as [covariates.{column}] with type = "category" and its levels')

    out.rows(odd, C.ODD_CELL, source, column, message, hint)
    return typed


_KIND_HINT = {
    Kind.DATE: "write dates as YYYY-MM-DD (e.g. 2019-03-14); in Excel, use a Date cell",
    Kind.NUMBER: "write a plain number with a decimal point (e.g. 4.5)",
    Kind.BOOLEAN: "write yes or no (also accepted: true/false, y/n, t/f, 1/0)",
}
_ODD_HINT = {
    Kind.DATE: "write the date as YYYY-MM-DD",
    Kind.NUMBER: "write the number alone (no unit or words, a decimal point: 67 or 4.5)",
    Kind.BOOLEAN: "write yes or no",
}
_BAD_CODE = {Kind.DATE: C.BAD_DATE, Kind.NUMBER: C.BAD_NUMBER, Kind.BOOLEAN: C.BAD_BOOLEAN}
_PARSERS = {Kind.DATE: parse_dates, Kind.BOOLEAN: parse_booleans}


def _parse_declared(raw: RawTable, cov: Covariate, out: _Collector, decimal: str,
                    commas: _Commas) -> pd.Series:
    """A declared covariate parsed by its declared type; every non-conforming cell is an error."""
    text = _as_text(raw.frame[cov.column])
    src, name = raw.source, cov.column
    declared = f'(study.toml: [covariates.{name}] type = "{cov.type.value}")'

    def hint_for(what: str) -> Callable[[int], str]:
        def hint(r: int) -> str:
            if str(text[r]).lower() in MISSING_WORDS:
                return "leave the cell empty when the value is unknown"
            return what
        return hint

    if cov.type in (CovariateType.NUMBER, CovariateType.WHOLE_NUMBER):
        nums, bad = parse_numbers(text, decimal)
        comma = bad & _flag(text.str.match(_DECIMAL_COMMA_RE)) if decimal == "." else bad & False
        commas.add(comma, name, text)
        bad = bad & ~comma
        out.rows(bad, C.BAD_NUMBER, src, name, lambda r: f"{_quote(text[r])} is not a number {declared}",
                 hint_for(_KIND_HINT[Kind.NUMBER] + (f" in {cov.unit}" if cov.unit else "")))
        if cov.type is CovariateType.WHOLE_NUMBER:
            frac = _flag(nums.notna() & ((np.mod(nums.fillna(0), 1) != 0) | (nums.abs() > _MAX_EXACT_INT)))
            out.rows(frac, C.BAD_NUMBER, src, name,
                     lambda r: f"{_quote(text[r])} is not a whole number {declared}",
                     "write a whole number (e.g. 2), or declare the covariate as type = \"number\"")
            return nums.where(~frac).astype("Int64")
        return nums
    if cov.type is CovariateType.YES_NO:
        values, bad = parse_booleans(text)
        out.rows(bad, C.BAD_BOOLEAN, src, name, lambda r: f"{_quote(text[r])} is not yes/no {declared}",
                 hint_for(_KIND_HINT[Kind.BOOLEAN]))
        return values
    if cov.type is CovariateType.DATE:
        dates, bad = parse_dates(text)
        out.rows(bad, C.BAD_DATE, src, name, lambda r: f"{_quote(text[r])} is not a date {declared}",
                 hint_for(_KIND_HINT[Kind.DATE]))
        return dates
    by_lower = {level.lower(): level for level in cov.levels}
    level = text.str.lower().map(by_lower.get, na_action="ignore").astype(object)
    given = _flag(text != _EMPTY)
    bad = given & _flag(level.isna())
    levels = ", ".join(cov.levels)
    out.rows(bad, C.BAD_CATEGORY, src, name,
             lambda r: f"{_quote(text[r])} is not one of the levels {levels} {declared}",
             hint_for(f"write one of {levels}, or add the level to levels in [covariates.{name}]"))
    return pd.Series(pd.Categorical(level.where(given & ~bad), categories=list(cov.levels)),
                     index=text.index)


def parse_table(raw: RawTable, out: _Collector, covariates: tuple[Covariate, ...] = (),
                decimal: str = ".", commas: _Commas | None = None, extras: bool = True) -> TypedTable:
    """Parse one table into typed columns, with a finding for each missing column, unparsable or blank cell.

    Parameters
    ----------
    raw : RawTable
        The table as read (text cells, spreadsheet row numbers).
    out : _Collector
        Receives the findings.
    covariates : tuple of Covariate
        The study's declared covariates (those of this table are parsed by their type).
    decimal : str
        The decimal separator (``"."`` or ``","``).
    commas : _Commas, optional
        Counts the decimal-comma cells of the file; when given, the caller reports them (a file parsed block
        by block), else they are reported here.
    extras : bool
        Parse the extra (covariate) columns too; without, they are named in ``covariates`` but left out of
        the frame (see :func:`parse_extras`).

    Returns
    -------
    TypedTable
        The parsed table, with the cells that could not be parsed marked in ``unparsed``.
    """
    spec = TABLES[raw.name]
    frame = raw.frame
    typed: dict[str, pd.Series] = {}
    unparsed: dict[str, pd.Series] = {}
    report_commas = commas is None
    commas = _Commas() if commas is None else commas
    declared = {c.column: c for c in covariates if c.table == raw.name.value}
    unknown = {c: raw.headers.get(c, c) for c in frame.columns
               if spec.column(c) is None and c not in declared}
    missing_required = False
    for col in spec.columns:
        if col.name not in frame.columns:
            if col.required:
                missing_required = True
                _missing_column(raw, col.name, f"add a column headed '{col.name}': {col.description}",
                                unknown, out)
            continue
        typed[col.name], unparsed[col.name] = _parse_column(raw, col, out, decimal, commas)
    for name, cov in declared.items():
        if name not in frame.columns:
            _missing_column(raw, name, f"add the column '{name}', or correct [covariates.{name}] in "
                            f"study.toml (its name or table = \"{cov.table}\")", unknown, out, covariate=True)
    names = [c for c in frame.columns if spec.column(c) is None]
    if extras:
        typed.update(parse_extras(raw, names, covariates, out, decimal, commas))
    if unknown and (missing_required or covariates):
        listed = ", ".join(repr(w) for w in unknown.values())
        out.add(C.UNKNOWN_COLUMN, raw.source, 1, None,
                f"column(s) neither of the format nor declared as covariates: {listed}",
                "rename each to the format's name or map it under [columns] in study.toml; declare a "
                "covariate under [covariates.NAME]; until then such columns are read as undeclared "
                "covariates")
    if report_commas:
        commas.report(raw.source, out)
    df = pd.DataFrame(typed, index=frame.index, columns=list(typed))
    bad = pd.DataFrame(unparsed, index=frame.index, columns=list(unparsed), dtype=bool)
    return TypedTable(raw.name, raw.source, df, tuple(names), bad)


def parse_extras(raw: RawTable, names: list[str], covariates: tuple[Covariate, ...], out: _Collector,
                 decimal: str, commas: _Commas) -> dict[str, pd.Series]:
    """Parse the extra columns ``names`` of a table: declared covariates by their type, others inferred.

    Parameters
    ----------
    raw : RawTable
        The table as read (all its rows: an undeclared column's type is inferred from the whole column).
    names : list of str
        The extra columns.
    covariates : tuple of Covariate
        The study's declared covariates.
    out : _Collector
        Receives the findings.
    decimal : str
        The decimal separator.
    commas : _Commas
        Counts the decimal-comma cells.

    Returns
    -------
    dict of str to pandas.Series
        The typed columns.
    """
    declared = {c.column: c for c in covariates if c.table == raw.name.value}
    typed: dict[str, pd.Series] = {}
    for c in names:
        if c in declared:
            typed[c] = _parse_declared(raw, declared[c], out, decimal, commas)
        else:
            typed[c] = _infer_covariate(raw.frame[c], raw.source, c, out, decimal, commas)
    return typed


def _missing_column(raw: RawTable, name: str, hint: str, unknown: dict[str, str], out: _Collector,
                    covariate: bool = False) -> None:
    """A ``missing-column`` finding that names the present column most likely meant, if any."""
    what = f"the declared covariate '{name}'" if covariate else f"the required column '{name}'"
    likely = likely_header(name, unknown)
    if likely is None:
        out.add(C.MISSING_COLUMN, raw.source, 1, name, f"{what} is missing", hint)
        return
    out.add(C.MISSING_COLUMN, raw.source, 1, name,
            f"{what} is missing; the column {likely!r} most likely means it",
            f"rename the header {likely!r} to '{name}', or keep the file as it is and add to study.toml: "
            f'[columns] "{likely}" = "{name}"')


def _bad_message(raw: RawTable, col: Column, text: pd.Series) -> Callable[[int], str]:
    def message(r: int) -> str:
        v = text[r]
        if col.kind is Kind.DATE:
            if re.match(_DATE_RE, v) and not MIN_YEAR <= int(v[:4]) <= MAX_YEAR:
                return f"{_quote(v)} is outside the years {MIN_YEAR}-{MAX_YEAR}"
            if raw.from_excel and re.fullmatch(r"[0-9]{1,5}(?:\.[0-9]+)?", v) and 0 < float(v) < 73051:
                day = _EXCEL_EPOCH + dt.timedelta(days=int(float(v)))
                return f"{_quote(v)} is a number, not a date (as an Excel day number it is {day.isoformat()})"
        return f"{_quote(v)} is not a {col.kind.value}"

    return message


def _bad_hint(raw: RawTable, col: Column, text: pd.Series) -> Callable[[int], str]:
    def hint(r: int) -> str:
        v = text[r]
        if v.lower() in MISSING_WORDS:
            return ("leave the cell empty when the value is unknown" if col.blank_ok
                    else f"fill in {col.name}; it must not be blank")
        if col.kind is Kind.DATE and raw.from_excel:
            return "format the cells as Date in Excel (Format Cells > Date) or type YYYY-MM-DD"
        return _KIND_HINT[col.kind]

    return hint


def _parse_column(raw: RawTable, col: Column, out: _Collector, decimal: str = ".",
                  commas: _Commas | None = None) -> tuple[pd.Series, pd.Series]:
    text = raw.frame[col.name]
    blank = _flag(text == _EMPTY)
    if not col.blank_ok:
        out.rows(blank, C.BLANK_CELL, raw.source, col.name,
                 f"'{col.name}' is blank", f"fill in {col.name}: {col.description}")
    if col.kind in (Kind.ID, Kind.TEXT):
        return text.astype(object).where(~blank, None), pd.Series(False, index=text.index)
    if col.kind is Kind.NUMBER:
        values, bad = parse_numbers(text, decimal)
    else:
        values, bad = _PARSERS[col.kind](text)
    code = _BAD_CODE[col.kind]
    reported = bad
    if col.kind is Kind.NUMBER and decimal == ".":
        # Decimal commas are one finding for the file (see _Commas), not one per cell.
        comma = bad & _flag(text.str.match(_DECIMAL_COMMA_RE))
        if commas is not None:
            commas.add(comma, col.name, text)
        reported = bad & ~comma
    out.rows(reported, code, raw.source, col.name, _bad_message(raw, col, text), _bad_hint(raw, col, text))
    if col.kind is Kind.NUMBER and col.positive:
        out.rows(values <= 0, C.NON_POSITIVE, raw.source, col.name,
                 lambda r: f"{col.name} = {text[r]} is not greater than 0",
                 f"{col.name} must be > 0; leave it blank if unknown" if col.blank_ok
                 else f"{col.name} must be > 0; check the value")
    if col.kind is Kind.NUMBER and col.warn_above is not None:
        limit = col.warn_above
        out.rows(values > limit, C.IMPLAUSIBLE, raw.source, col.name,
                 lambda r: f"{col.name} = {text[r]} is implausibly large (> {limit:g})",
                 "check the value and its unit")
    return values, bad


def _duplicates(t: TypedTable, keys: list[str], out: _Collector, what: str) -> None:
    df = t.frame
    if not set(keys) <= set(df.columns):
        return
    k = df[keys]
    valid = k.notna().all(axis=1)
    dup = k.duplicated(keep="first") & valid
    if not dup.any():
        return
    # The first row of each key that repeats (vectorised: no loop over all rows).
    firsts = k[valid & k.duplicated(keep=False) & ~dup]
    seen = {tuple(v): int(r) for r, v in zip(firsts.index, firsts.itertuples(index=False, name=None),
                                             strict=True)}

    def message(r: int) -> str:
        key = tuple(k.loc[r])
        return f"{what} {' / '.join(map(str, key))} repeats row {seen[key]}"

    out.rows(dup, C.DUPLICATE_ID, t.source, keys[-1], message,
             f"give each {what} its own {keys[-1]}, or remove the repeated row")


_DATES = ("index_date", "last_followup_date", "progression_date", "death_date")


def _before_index(df: pd.DataFrame, col: str) -> Callable[[int], str]:
    def message(r: int) -> str:
        return f"{col} {_day(df.at[r, col])} is before index_date {_day(df.at[r, 'index_date'])}"
    return message


def _scan_message(scan: pd.Series, what: str, date: pd.Series) -> Callable[[int], str]:
    def message(r: int) -> str:
        return f"scan_date {_day(scan[r])} {what} {_day(date[r])}"
    return message


def check_patients(t: TypedTable, out: _Collector) -> dict[str, pd.Series]:
    """Check unique patient ids and a coherent order of each patient's dates.

    One root cause, one finding: a date cell that is unreadable, or already reported by an earlier rule, is
    not compared again; the checks so skipped are counted in its finding.

    Parameters
    ----------
    t : TypedTable
        The parsed patients table.
    out : _Collector
        Receives the findings.

    Returns
    -------
    dict of str to pandas.Series
        Per date column, the cells that have a finding (the failure checks skip them too).
    """
    df, src = t.frame, t.source
    _duplicates(t, ["patient_id"], out, "patient")
    has = set(df.columns)
    flag = {c: (_flag(t.unparsed[c]) if c in t.unparsed else pd.Series(False, index=df.index))
            for c in _DATES if c in has}

    def rule(col: str, other: str, fires: pd.Series, code: C, message: Message, hint: str) -> None:
        """Report ``col`` where ``fires``, unless one of the two cells already has a finding."""
        if not {col, other} <= has:
            return
        fires = _flag(fires)
        blocked = flag[col] | flag[other]
        out.rows(fires & ~blocked, code, src, col, message, hint)
        # A check that cannot be made (an unreadable cell) or would repeat a finding is counted as skipped.
        given_col, given_other = df[col].notna() | flag[col], df[other].notna() | flag[other]
        out.skip(src, col, flag[col] & given_other)
        out.skip(src, other, flag[other] & given_col & ~flag[col])
        flag[col] = flag[col] | (fires & ~blocked)

    if "index_date" in has:
        index = df["index_date"]
        for col in ("last_followup_date", "progression_date", "death_date"):
            if col in has:
                rule(col, "index_date", df[col] < index, C.BEFORE_INDEX, _before_index(df, col),
                     "check both dates (the index date is the CAR T infusion)")
        if "last_followup_date" in has:
            years = (df["last_followup_date"] - index).dt.days / DAYS_PER_YEAR
            rule("last_followup_date", "index_date", years > MAX_FOLLOWUP_YEARS, C.IMPLAUSIBLE,
                 lambda r: f"follow-up of {years[r]:.1f} years is implausibly long "
                           f"(> {MAX_FOLLOWUP_YEARS:g})",
                 "check index_date and last_followup_date")
    if {"progression_date", "death_date"} <= has:
        rule("progression_date", "death_date", df["progression_date"] > df["death_date"],
             C.PROGRESSION_AFTER_DEATH,
             lambda r: f"progression_date {_day(df.at[r, 'progression_date'])} is after death_date "
                       f"{_day(df.at[r, 'death_date'])}",
             "check both dates; progression cannot follow death")
    if {"progression_date", "last_followup_date"} <= has:
        rule("progression_date", "last_followup_date", df["progression_date"] > df["last_followup_date"],
             C.PROGRESSION_AFTER_FOLLOWUP,
             lambda r: f"progression_date {_day(df.at[r, 'progression_date'])} is after "
                       f"last_followup_date {_day(df.at[r, 'last_followup_date'])}",
             "last_followup_date must be on or after every event date")
    if {"death_date", "last_followup_date"} <= has:
        death, last = df["death_date"], df["last_followup_date"]
        rule("last_followup_date", "death_date", last > death, C.FOLLOWUP_AFTER_DEATH,
             lambda r: f"last_followup_date {_day(last[r])} is after death_date {_day(death[r])}",
             "for a patient who died, last_followup_date is the date of death")
        rule("death_date", "last_followup_date", death > last, C.DEATH_AFTER_FOLLOWUP,
             lambda r: f"death_date {_day(death[r])} is after last_followup_date {_day(last[r])}",
             "pofa ends follow-up at the death date; set last_followup_date to the death date")
    return flag


def _known_patients(patients: TypedTable | None,
                    flags: dict[str, pd.Series] | None = None) -> pd.DataFrame | None:
    """The first row of each patient id, indexed by id (``None`` when there is no usable patients table).

    Columns: the patient dates, ``_row`` (the patient's row) and ``_flag_<date>`` (the date cell has a
    finding of its own, from :func:`check_patients`).
    """
    if patients is None or "patient_id" not in patients.frame:
        return None
    pf = patients.frame
    cols = [c for c in ("index_date", "last_followup_date", "progression_date") if c in pf]
    ids = pf["patient_id"]
    first = ids.notna().to_numpy(dtype=bool) & ~ids.duplicated().to_numpy()  # one row per id, built once
    rows = pf.index[first]
    data: dict[str, object] = {c: pf[c].to_numpy()[first] for c in cols}
    data["_row"] = rows.to_numpy()
    if "progression_date" in cols:
        data["_progression_blank"] = patients.blank("progression_date").to_numpy(dtype=bool)[first]
    for c, mask in (flags or {}).items():
        data[f"_flag_{c}"] = mask[rows].to_numpy(dtype=bool)
    return pd.DataFrame(data, index=pd.Index(ids[first], name="patient_id"))


def _unknown_patients(t: TypedTable, known: pd.DataFrame | None, out: _Collector) -> pd.Series:
    """Flag rows whose patient is not in the patients table; returns the mask of rows with a known patient."""
    ids = t.frame["patient_id"]
    if known is None:
        return pd.Series(False, index=t.frame.index)
    is_known = ids.isin(known.index) & ids.notna()
    out.rows(ids.notna() & ~is_known, C.UNKNOWN_PATIENT, t.source, "patient_id",
             lambda r: f"patient {_quote(ids[r])} is not in the patients table",
             "add the patient to the patients table, or correct the patient_id")
    return is_known


def _check_coordinates(t: TypedTable, out: _Collector) -> None:
    df, src = t.frame, t.source
    present = [c for c in COORDINATES if c in df]
    if not present:
        return
    if len(present) < len(COORDINATES):
        for c in COORDINATES:
            if c not in present:
                out.add(C.PARTIAL_COORDINATES, src, 1, c,
                        f"the column '{c}' is missing although {', '.join(present)} is given",
                        "a lesion centre needs x_mm, y_mm and z_mm: add the missing column or remove "
                        "the others")
        return
    given = df[present].notna() | t.unparsed[present]
    partial = given.any(axis=1) & ~given.all(axis=1)
    if not partial.any():
        return
    first_blank = (~given).idxmax(axis=1)
    for r in partial.index[partial.to_numpy()]:
        out.add(C.PARTIAL_COORDINATES, src, int(r), str(first_blank[r]),
                "the lesion centre has some of x_mm, y_mm, z_mm but not all three",
                "fill in all three coordinates or leave all blank")


def _check_radiotherapy(t: TypedTable, out: _Collector) -> None:
    """The radiotherapy columns: rt_field from its set; rt_fractions whole; rt_dose_gy with rt_fractions."""
    from pofa.schema import RT_FIELD_CLASSES

    df, src = t.frame, t.source
    if "rt_field" in df:
        text = df["rt_field"].astype(object).where(df["rt_field"].notna(), None)
        norm = text.map(lambda v: None if v is None else str(v).strip().lower())
        bad = _flag(norm.notna() & ~norm.isin(RT_FIELD_CLASSES))
        out.rows(bad, C.BAD_RADIOTHERAPY, src, "rt_field",
                 lambda r: f"rt_field {_quote(text[r])} is not a field class",
                 f"write one of {', '.join(RT_FIELD_CLASSES)}, or leave it blank")
    if "rt_fractions" in df:
        # a cell that is no number was reported by the type check; here only numbers are looked at
        n = pd.to_numeric(df["rt_fractions"], errors="coerce").astype("float64")
        out.rows(_flag(n.notna() & (n > 0) & (n != n.round())), C.BAD_RADIOTHERAPY, src, "rt_fractions",
                 lambda r: f"rt_fractions = {n[r]:g} is not a whole number", "write the number of fractions")
    if "rt_dose_gy" in df or "rt_fractions" in df:
        for have, lack in (("rt_dose_gy", "rt_fractions"), ("rt_fractions", "rt_dose_gy")):
            given = df[have].notna() if have in df else pd.Series(False, index=df.index)
            absent = ~df[lack].notna() if lack in df else pd.Series(True, index=df.index)
            out.rows(_flag(given & absent), C.BAD_RADIOTHERAPY, src, lack,
                     f"{have} is given but {lack} is blank",
                     "give both the total dose and the number of fractions, or neither")


def check_lesions(t: TypedTable, patients: TypedTable | None, out: _Collector) -> None:
    """Check unique lesion ids within a patient, known patients, whole coordinates; patients without lesions.

    Parameters
    ----------
    t : TypedTable
        The parsed lesions table.
    patients : TypedTable or None
        The parsed patients table (``None`` when it could not be read).
    out : _Collector
        Receives the findings.
    """
    df = t.frame
    _check_coordinates(t, out)
    _check_radiotherapy(t, out)
    if "patient_id" not in df:
        return
    _duplicates(t, ["patient_id", "lesion_id"], out, "lesion")
    _unknown_patients(t, _known_patients(patients), out)
    if patients is not None and "patient_id" in patients.frame:
        with_lesions = df["patient_id"].dropna().unique()
        pf = patients.frame
        none = pf["patient_id"].notna() & ~pf["patient_id"].isin(with_lesions)
        out.rows(none, C.NO_LESIONS, patients.source, "patient_id",
                 lambda r: f"patient {_quote(pf.at[r, 'patient_id'])} has no lesions",
                 "add the patient's pretreatment lesions; without them the patient counts only in survival")


def check_failures(t: TypedTable, patients: TypedTable | None, lesions: TypedTable | None,
                   out: _Collector, flags: dict[str, pd.Series] | None = None) -> None:
    """Check failure rows against the patients (known, progressed, dates in order) and the baseline lesions.

    Parameters
    ----------
    t : TypedTable
        The parsed failures table.
    patients : TypedTable or None
        The parsed patients table (``None`` when it could not be read).
    lesions : TypedTable or None
        The parsed lesions table (``None`` when it could not be read).
    out : _Collector
        Receives the findings.
    flags : dict of str to pandas.Series, optional
        From :func:`check_patients`: patient date cells that have a finding of their own; the failure rows'
        checks against such a date are skipped and counted in that finding.
    """
    df, src = t.frame, t.source
    _check_coordinates(t, out)
    _check_radiotherapy(t, out)
    if "patient_id" not in df:
        return
    _duplicates(t, ["patient_id", "failure_id"], out, "failure lesion")
    known_patients = _known_patients(patients, flags)
    known = _unknown_patients(t, known_patients, out)
    if "baseline_lesion_id" in df:
        base = df["baseline_lesion_id"]
        if lesions is not None and {"patient_id", "lesion_id"} <= set(lesions.frame.columns):
            pairs = pd.MultiIndex.from_frame(lesions.frame[["patient_id", "lesion_id"]].dropna())
            mine = pd.MultiIndex.from_arrays([df["patient_id"], base])
            missing = known & base.notna() & ~pd.Series(mine.isin(pairs), index=df.index)
            out.rows(missing, C.UNKNOWN_LESION, src, "baseline_lesion_id",
                     lambda r: f"lesion {_quote(base[r])} is not a lesion of patient "
                               f"{_quote(df.at[r, 'patient_id'])}",
                     "correct baseline_lesion_id, or leave it blank for a new lesion")
        new = base.isna()
        for col in ("site", "extranodal"):
            if col in df:
                out.rows(new & t.blank(col), C.BLANK_CELL, src, col,
                         f"'{col}' is blank for a new lesion (no baseline_lesion_id)",
                         f"fill in {col} for new lesions")
            elif new.any():
                out.add(C.MISSING_COLUMN, src, 1, col,
                        f"the column '{col}' is missing but the table has new lesions "
                        "(blank baseline_lesion_id)",
                        f"add a column headed '{col}' and fill it in for new lesions")
    if known_patients is None:
        return
    look = known_patients.reindex(df["patient_id"].where(known).to_numpy())
    look.index = df.index
    if "_progression_blank" in look:
        no_prog = known & look["_progression_blank"].fillna(False).astype(bool)
        out.rows(no_prog, C.FAILURE_WITHOUT_PROGRESSION, src, "patient_id",
                 lambda r: f"patient {_quote(df.at[r, 'patient_id'])} has a failure lesion but no "
                           "progression_date",
                 "fill in the patient's progression_date, or remove the failure row")
    if "scan_date" in df:
        scan = df["scan_date"]
        for col, code in (("progression_date", C.FAILURE_BEFORE_PROGRESSION),
                          ("last_followup_date", C.FAILURE_AFTER_FOLLOWUP)):
            if col not in look:
                continue
            date = look[col]
            flag_col = f"_flag_{col}"
            flagged = _flag(look[flag_col]) if flag_col in look else pd.Series(False, index=df.index)
            if patients is not None:  # the checks of these rows are skipped: counted on the patient's cell
                scanned = scan.notna() | t.unparsed.get("scan_date", False)
                per_patient = look["_row"][known & flagged & scanned]
                out.skip(patients.source, col, per_patient.value_counts())
            if col == "progression_date":
                out.rows(known & ~flagged & (scan < date), code, src, "scan_date",
                         _scan_message(scan, "is before the patient's progression_date", date),
                         "check scan_date; the first failure scan defines progression_date")
            else:
                out.rows(known & ~flagged & (scan > date), code, src, "scan_date",
                         _scan_message(scan, "is after the patient's last_followup_date", date),
                         "last_followup_date must be on or after every scan")
    if patients is not None and "progression_date" in patients.frame:
        pf = patients.frame
        with_failures = df["patient_id"].dropna().unique()
        ids = pf["patient_id"]
        lacking = pf["progression_date"].notna() & ids.notna() & ~ids.isin(with_failures)
        out.rows(lacking, C.PROGRESSION_WITHOUT_FAILURES, patients.source, "progression_date",
                 lambda r: f"patient {_quote(ids[r])} progressed but has no row in the failures table",
                 "add the lesions seen at the failure scan; without them the failure pattern is unknown")


def validate_tables(tables: dict[TableName, RawTable], covariates: tuple[Covariate, ...] = (),
                    decimal: str = ".") -> tuple[dict[TableName, TypedTable], list[Finding]]:
    """Parse every table and run every check; returns typed tables and all findings.

    Parameters
    ----------
    tables : dict
        The tables as read.
    covariates : tuple of Covariate
        The covariates declared in study.toml (parsed by their declared type).
    decimal : str
        The decimal separator of numbers (``"."`` or ``","``).

    Returns
    -------
    tuple
        The typed tables and the findings (at most :data:`~pofa.findings.MAX_PER_KIND` of a kind one by one).
    """
    out = _Collector()
    typed = {name: parse_table(raw, out, covariates, decimal) for name, raw in tables.items()}
    patients = typed.get(TableName.PATIENTS)
    lesions = typed.get(TableName.LESIONS)
    flags = check_patients(patients, out) if patients is not None else None
    if lesions is not None:
        check_lesions(lesions, patients, out)
    failures = typed.get(TableName.FAILURES)
    if failures is not None:
        check_failures(failures, patients, lesions, out, flags)
    if TableName.MEASUREMENTS in typed or TableName.SCANS in typed:
        from pofa.response.validate import check_response_tables  # only a study with response tables

        out.extend(check_response_tables(typed))
    release_arrow_memory()
    return typed, out.items


def empty_table(name: TableName, source: str) -> TypedTable:
    """Return an empty typed table with the required columns (used for an absent optional table).

    Parameters
    ----------
    name : TableName
        Which table.
    source : str
        The source label findings would name.

    Returns
    -------
    TypedTable
        A table without rows, with the required columns (and ``site``, ``extranodal``) typed.
    """
    spec = TABLES[name]
    dtypes: dict[Kind, type[object] | str]
    dtypes = {Kind.ID: object, Kind.TEXT: object, Kind.DATE: "datetime64[ns]", Kind.NUMBER: "float64",
              Kind.BOOLEAN: "boolean"}
    cols: Iterable[Column] = (c for c in spec.columns if c.required or c.name in ("site", "extranodal"))
    df = pd.DataFrame({c.name: pd.Series(dtype=dtypes[c.kind]) for c in cols})
    df.index.name = "row"
    return TypedTable(name, source, df, (), pd.DataFrame(index=df.index, dtype=bool))
