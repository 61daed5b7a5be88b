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

from pofa.findings import Finding, finding
from pofa.findings import FindingCode as C
from pofa.io.readers import TEXT_DTYPE, RawTable
from pofa.response.validate import check_response_tables
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
)

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
        """Cells of ``column`` that were blank in the file (not merely unparsable)."""
        blank = self.frame[column].isna()
        return blank & ~self.unparsed[column] if column in self.unparsed else blank


class _Collector:
    """Accumulates findings; one call per (mask, message) so that the work stays vectorised."""

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def rows(self, mask: pd.Series, code: C, source: str, column: str | None, message: Message,
             hint: Message) -> None:
        """A finding for each row where ``mask`` is true (NA counts as false)."""
        m = mask.fillna(False).to_numpy(dtype=bool) if mask.dtype != bool else mask.to_numpy()
        if not m.any():
            return
        for row in mask.index[m]:
            r = int(row)
            self.items.append(finding(code, source, r, column, message(r) if callable(message) else message,
                                      hint(r) if callable(hint) else hint))

    def add(self, code: C, source: str, row: int | None, column: str | None, message: str, hint: str) -> None:
        self.items.append(finding(code, source, row, column, message, hint))


def _quote(v: object, limit: int = 40) -> str:
    s = str(v)
    return repr(s if len(s) <= limit else s[:limit] + "...")


def _day(v: object) -> str:
    """A date value as YYYY-MM-DD for messages."""
    return pd.Timestamp(v).date().isoformat() if not pd.isna(v) else "(blank)"


def _flag(mask: pd.Series) -> pd.Series:
    """A mask as a plain numpy-bool Series (NA counts as false)."""
    return pd.Series(mask.to_numpy(dtype=bool, na_value=False), index=mask.index)


def _as_text(text: pd.Series) -> pd.Series:
    return text if isinstance(text.dtype, pd.StringDtype) else text.astype(TEXT_DTYPE)


def parse_dates(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """ISO 8601 dates ``YYYY-MM-DD`` in 1900-2099 (a time part, as Excel stores, is allowed and dropped).

    Returns (dates as ``datetime64[ns]``, mask of non-blank cells that are not such a date).
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


def parse_numbers(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Finite decimal numbers (``4.5``, ``-0.5``, ``.5``, ``1e3``; a decimal point, not a comma).

    Returns (floats, mask of non-blank cells that are not such a number).
    """
    text = _as_text(text)
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
    """yes/no, true/false, y/n, t/f, 1/0 in any case. Returns (nullable booleans, unparsable mask)."""
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


def _infer_covariate(text: pd.Series) -> pd.Series:
    """A covariate kept with its type: whole number, number, yes/no, date or text (blank = missing)."""
    text = _as_text(text)
    given = _flag(text != _EMPTY)
    nonblank = text[given]
    if nonblank.empty:
        return pd.Series(pd.NA, index=text.index, dtype="object")
    nums, bad = parse_numbers(text)
    if not bad.any():
        v = nums.dropna().to_numpy()
        if np.all(np.mod(v, 1) == 0) and np.all(np.abs(v) <= _MAX_EXACT_INT):
            return nums.astype("Int64")
        return nums
    low = nonblank.str.lower()
    if low.isin(TRUE_WORDS | FALSE_WORDS).all():
        return parse_booleans(text)[0]
    dates, bad = parse_dates(text)
    if not bad.any():
        return dates
    return text.astype(object).where(given, None)


_KIND_HINT = {
    Kind.DATE: "write dates as YYYY-MM-DD (e.g. 2019-03-14); in Excel, use a Date cell",
    Kind.NUMBER: "write a plain number with a decimal point (e.g. 4.5)",
    Kind.BOOLEAN: "write yes or no (also accepted: true/false, y/n, t/f, 1/0)",
}
_BAD_CODE = {Kind.DATE: C.BAD_DATE, Kind.NUMBER: C.BAD_NUMBER, Kind.BOOLEAN: C.BAD_BOOLEAN}
_PARSERS = {Kind.DATE: parse_dates, Kind.NUMBER: parse_numbers, Kind.BOOLEAN: parse_booleans}


def parse_table(raw: RawTable, out: _Collector) -> TypedTable:
    """Typed columns of one table, with a finding for each missing column and unparsable or blank cell."""
    spec = TABLES[raw.name]
    frame = raw.frame
    typed: dict[str, pd.Series] = {}
    unparsed: dict[str, pd.Series] = {}
    for col in spec.columns:
        if col.name not in frame.columns:
            if col.required:
                out.add(C.MISSING_COLUMN, raw.source, 1, col.name,
                        f"the required column '{col.name}' is missing",
                        f"add a column headed '{col.name}': {col.description}")
            continue
        typed[col.name], unparsed[col.name] = _parse_column(raw, col, out)
    covariates = [c for c in frame.columns if spec.column(c) is None]
    for c in covariates:
        typed[c] = _infer_covariate(frame[c])
    df = pd.DataFrame(typed, index=frame.index, columns=list(typed))
    bad = pd.DataFrame(unparsed, index=frame.index, columns=list(unparsed), dtype=bool)
    return TypedTable(raw.name, raw.source, df, tuple(covariates), bad)


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


def _parse_column(raw: RawTable, col: Column, out: _Collector) -> tuple[pd.Series, pd.Series]:
    text = raw.frame[col.name]
    blank = _flag(text == _EMPTY)
    if not col.blank_ok:
        out.rows(blank, C.BLANK_CELL, raw.source, col.name,
                 f"'{col.name}' is blank", f"fill in {col.name}: {col.description}")
    if col.kind in (Kind.ID, Kind.TEXT):
        return text.astype(object).where(~blank, None), pd.Series(False, index=text.index)
    values, bad = _PARSERS[col.kind](text)
    code = _BAD_CODE[col.kind]
    reported = bad
    if col.kind is Kind.NUMBER:
        comma = bad & _flag(text.str.match(_DECIMAL_COMMA_RE))
        out.rows(comma, code, raw.source, col.name,
                 lambda r: f"{_quote(text[r])} uses a comma as decimal separator",
                 "write a decimal point (e.g. 4.5); in Excel, set the decimal separator to '.' before "
                 "exporting CSV, or give pofa the .xlsx workbook")
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
    seen: dict[tuple[object, ...], int] = {}
    for row, v in zip(k.index[valid], k[valid].itertuples(index=False, name=None), strict=True):
        seen.setdefault(v, int(row))
    for row in dup.index[dup.to_numpy()]:
        key = tuple(k.loc[row])
        out.add(C.DUPLICATE_ID, t.source, int(row), keys[-1],
                f"{what} {' / '.join(map(str, key))} repeats row {seen[key]}",
                f"give each {what} its own {keys[-1]}, or remove the repeated row")


def check_patients(t: TypedTable, out: _Collector) -> None:
    """Unique patient ids and a coherent order of each patient's dates."""
    df, src = t.frame, t.source
    _duplicates(t, ["patient_id"], out, "patient")
    has = set(df.columns)
    if "index_date" in has:
        index = df["index_date"]
        for col in ("last_followup_date", "progression_date", "death_date"):
            if col in has:
                out.rows(df[col] < index, C.BEFORE_INDEX, src, col,
                         lambda r, col=col: f"{col} {_day(df.at[r, col])} is before index_date "
                                            f"{_day(index[r])}",
                         "check both dates (the index date is the CAR T infusion)")
        if "last_followup_date" in has:
            years = (df["last_followup_date"] - index).dt.days / 365.25
            out.rows(years > MAX_FOLLOWUP_YEARS, C.IMPLAUSIBLE, src, "last_followup_date",
                     lambda r: f"follow-up of {years[r]:.1f} years is implausibly long "
                               f"(> {MAX_FOLLOWUP_YEARS:g})",
                     "check index_date and last_followup_date")
    if {"progression_date", "death_date"} <= has:
        out.rows(df["progression_date"] > df["death_date"], C.PROGRESSION_AFTER_DEATH, src,
                 "progression_date",
                 lambda r: f"progression_date {_day(df.at[r, 'progression_date'])} is after death_date "
                           f"{_day(df.at[r, 'death_date'])}",
                 "check both dates; progression cannot follow death")
    if {"progression_date", "last_followup_date"} <= has:
        out.rows(df["progression_date"] > df["last_followup_date"], C.PROGRESSION_AFTER_FOLLOWUP, src,
                 "progression_date",
                 lambda r: f"progression_date {_day(df.at[r, 'progression_date'])} is after "
                           f"last_followup_date {_day(df.at[r, 'last_followup_date'])}",
                 "last_followup_date must be on or after every event date")
    if {"death_date", "last_followup_date"} <= has:
        death, last = df["death_date"], df["last_followup_date"]
        out.rows(last > death, C.FOLLOWUP_AFTER_DEATH, src, "last_followup_date",
                 lambda r: f"last_followup_date {_day(last[r])} is after death_date {_day(death[r])}",
                 "for a patient who died, last_followup_date is the date of death")
        out.rows(death > last, C.DEATH_AFTER_FOLLOWUP, src, "death_date",
                 lambda r: f"death_date {_day(death[r])} is after last_followup_date {_day(last[r])}",
                 "pofa ends follow-up at the death date; set last_followup_date to the death date")


def _known_patients(patients: TypedTable | None) -> pd.DataFrame | None:
    """The first row of each patient id, indexed by id (``None`` when there is no usable patients table)."""
    if patients is None or "patient_id" not in patients.frame:
        return None
    pf = patients.frame
    cols = [c for c in ("index_date", "last_followup_date", "progression_date") if c in pf]
    p = pf.loc[pf["patient_id"].notna(), ["patient_id", *cols]]
    if "progression_date" in cols:
        p = p.assign(_progression_blank=patients.blank("progression_date")[p.index])
    return p.drop_duplicates("patient_id").set_index("patient_id")


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
        n = df["rt_fractions"]
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
    """Unique lesion ids within a patient, known patients, whole coordinates; patients without lesions."""
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
                   out: _Collector) -> None:
    """Failure rows against the patients (known, progressed, dates in order) and the baseline lesions."""
    df, src = t.frame, t.source
    _check_coordinates(t, out)
    _check_radiotherapy(t, out)
    if "patient_id" not in df:
        return
    _duplicates(t, ["patient_id", "failure_id"], out, "failure lesion")
    known_patients = _known_patients(patients)
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
        if "progression_date" in look:
            prog = look["progression_date"]
            out.rows(known & (scan < prog), C.FAILURE_BEFORE_PROGRESSION, src, "scan_date",
                     lambda r: f"scan_date {_day(scan[r])} is before the patient's progression_date "
                               f"{_day(prog[r])}",
                     "check scan_date; the first failure scan defines progression_date")
        if "last_followup_date" in look:
            last = look["last_followup_date"]
            out.rows(known & (scan > last), C.FAILURE_AFTER_FOLLOWUP, src, "scan_date",
                     lambda r: f"scan_date {_day(scan[r])} is after the patient's last_followup_date "
                               f"{_day(last[r])}",
                     "last_followup_date must be on or after every scan")
    if patients is not None and "progression_date" in patients.frame:
        pf = patients.frame
        with_failures = df["patient_id"].dropna().unique()
        ids = pf["patient_id"]
        lacking = pf["progression_date"].notna() & ids.notna() & ~ids.isin(with_failures)
        out.rows(lacking, C.PROGRESSION_WITHOUT_FAILURES, patients.source, "progression_date",
                 lambda r: f"patient {_quote(ids[r])} progressed but has no row in the failures table",
                 "add the lesions seen at the failure scan; without them the failure pattern is unknown")


def validate_tables(tables: dict[TableName, RawTable]) -> tuple[dict[TableName, TypedTable], list[Finding]]:
    """Parse every table and run every check; returns typed tables and all findings."""
    out = _Collector()
    typed = {name: parse_table(raw, out) for name, raw in tables.items()}
    patients = typed.get(TableName.PATIENTS)
    lesions = typed.get(TableName.LESIONS)
    if patients is not None:
        check_patients(patients, out)
    if lesions is not None:
        check_lesions(lesions, patients, out)
    failures = typed.get(TableName.FAILURES)
    if failures is not None:
        check_failures(failures, patients, lesions, out)
    out.items.extend(check_response_tables(typed))
    return typed, out.items


def empty_table(name: TableName, source: str) -> TypedTable:
    """An empty typed table with the required columns (used for an absent optional table)."""
    spec = TABLES[name]
    dtypes = {Kind.ID: object, Kind.TEXT: object, Kind.DATE: "datetime64[ns]", Kind.NUMBER: "float64",
              Kind.BOOLEAN: "boolean"}
    cols: Iterable[Column] = (c for c in spec.columns if c.required or c.name in ("site", "extranodal"))
    df = pd.DataFrame({c.name: pd.Series(dtype=dtypes[c.kind]) for c in cols})
    df.index.name = "row"
    return TypedTable(name, source, df, (), pd.DataFrame(index=df.index, dtype=bool))
