"""Parsing text cells into typed tables, and checking a study: every problem at once.

Each check is vectorised over the table and builds findings only for the rows that fail it, so a study of
10,000 patients and 75,000 lesions validates in well under a second per table (benchmarks/validate_large.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pofa.findings import Finding, Severity
from pofa.io.readers import RawTable
from pofa.schema import (
    COORDINATES,
    FALSE_WORDS,
    MAX_FOLLOWUP_YEARS,
    TABLES,
    TRUE_WORDS,
    Column,
    Kind,
    TableName,
)

_DATE_RE = r"^\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
_DECIMAL_COMMA_RE = r"^[+-]?\d+,\d+$"
_EMPTY = ""


@dataclass(frozen=True, slots=True)
class TypedTable:
    """A parsed table: typed columns, indexed by spreadsheet row number, plus its source label."""

    name: TableName
    source: str
    frame: pd.DataFrame
    covariates: tuple[str, ...]


class _Collector:
    """Accumulates findings; one call per (mask, message) so that the work stays vectorised."""

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def rows(self, mask: pd.Series, severity: Severity, code: str, source: str, column: str | None,
             message: str | callable, hint: str) -> None:  # type: ignore[valid-type]
        if not mask.any():
            return
        for row in mask.index[mask.to_numpy()]:
            msg = message(row) if callable(message) else message
            self.items.append(Finding(severity, code, source, int(row), column, msg, hint))

    def add(self, severity: Severity, code: str, source: str, row: int | None, column: str | None,
            message: str, hint: str) -> None:
        self.items.append(Finding(severity, code, source, row, column, message, hint))


def _quote(v: str, limit: int = 40) -> str:
    return repr(v if len(v) <= limit else v[:limit] + "...")


def parse_dates(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """ISO 8601 dates (a time part, as Excel stores, is allowed and dropped). Returns (dates, bad mask)."""
    text = text.astype(object)
    blank = text == _EMPTY
    shaped = text.str.match(_DATE_RE, na=False)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    if shaped.any():
        parsed = pd.to_datetime(text[shaped].str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
        out.loc[shaped] = parsed
    bad = ~blank & out.isna()
    return out, bad


def parse_numbers(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Finite decimal numbers (a decimal point, not a comma). Returns (floats, bad mask)."""
    text = text.astype(object)
    blank = text == _EMPTY
    values = pd.to_numeric(text.where(~blank, None), errors="coerce").astype("float64")
    finite = np.isfinite(values.to_numpy())
    values = values.where(finite)
    bad = ~blank & ~pd.Series(finite, index=text.index)
    return values, bad


def parse_booleans(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """yes/no, true/false, 1/0, y/n in any case. Returns (nullable booleans, bad mask)."""
    low = text.astype(object).str.lower()
    blank = low == _EMPTY
    true = low.isin(TRUE_WORDS)
    false = low.isin(FALSE_WORDS)
    out = pd.Series(pd.NA, index=text.index, dtype="boolean")
    out[true] = True
    out[false] = False
    bad = ~blank & ~true & ~false
    return out, bad


def _infer_covariate(text: pd.Series) -> pd.Series:
    """A covariate kept with its type: number, yes/no, date or text (blank = missing)."""
    nonblank = text[text != _EMPTY]
    if nonblank.empty:
        return pd.Series(pd.NA, index=text.index, dtype="object")
    nums, bad = parse_numbers(text)
    if not bad.any():
        if np.all(np.mod(nums.dropna().to_numpy(), 1) == 0):
            return nums.astype("Int64")
        return nums
    low = nonblank.str.lower()
    if low.isin(TRUE_WORDS | FALSE_WORDS).all():
        return parse_booleans(text)[0]
    dates, bad = parse_dates(text)
    if not bad.any():
        return dates
    return text.where(text != _EMPTY, None).astype(object)


_KIND_HINT = {
    Kind.DATE: "write dates as YYYY-MM-DD (e.g. 2019-03-14)",
    Kind.NUMBER: "write a plain number with a decimal point (e.g. 4.5)",
    Kind.BOOLEAN: "write yes or no (also accepted: true/false, y/n, 1/0)",
}


def parse_table(raw: RawTable, out: _Collector) -> TypedTable:
    """Typed columns of one table, with a finding for each missing column and unparsable or blank cell."""
    spec = TABLES[raw.name]
    frame = raw.frame
    typed: dict[str, pd.Series] = {}
    for col in spec.columns:
        if col.name not in frame.columns:
            if col.required:
                out.add(Severity.ERROR, "missing-column", raw.source, 1, col.name,
                        f"the required column '{col.name}' is missing",
                        f"add a column headed '{col.name}' ({col.description})")
            continue
        typed[col.name] = _parse_column(raw, col, out)
    covariates = [c for c in frame.columns if spec.column(c) is None]
    for c in covariates:
        typed[c] = _infer_covariate(frame[c])
    df = pd.DataFrame(typed, index=frame.index)
    return TypedTable(raw.name, raw.source, df, tuple(covariates))


def _parse_column(raw: RawTable, col: Column, out: _Collector) -> pd.Series:
    text = raw.frame[col.name]
    blank = text == _EMPTY
    if not col.blank_ok:
        out.rows(blank, Severity.ERROR, "blank-cell", raw.source, col.name,
                 f"'{col.name}' is blank", f"fill in {col.name} ({col.description})")
    if col.kind in (Kind.ID, Kind.TEXT):
        return text.astype(object).where(~blank, None)
    parser = {Kind.DATE: parse_dates, Kind.NUMBER: parse_numbers, Kind.BOOLEAN: parse_booleans}[col.kind]
    values, bad = parser(text)
    code = {Kind.DATE: "bad-date", Kind.NUMBER: "bad-number", Kind.BOOLEAN: "bad-boolean"}[col.kind]
    hint = _KIND_HINT[col.kind]
    if col.kind is Kind.NUMBER:
        comma = bad & text.str.match(_DECIMAL_COMMA_RE, na=False)
        out.rows(comma, Severity.ERROR, code, raw.source, col.name,
                 lambda r: f"{_quote(text[r])} uses a decimal comma", "write a decimal point (e.g. 4.5)")
        bad = bad & ~comma
    out.rows(bad, Severity.ERROR, code, raw.source, col.name,
             lambda r: f"{_quote(text[r])} is not a {col.kind.value}", hint)
    if col.kind is Kind.NUMBER and col.positive:
        out.rows(values <= 0, Severity.ERROR, "non-positive", raw.source, col.name,
                 lambda r: f"{col.name} = {text[r]} is not greater than 0",
                 f"{col.name} must be > 0; leave it blank if unknown" if col.blank_ok
                 else f"{col.name} must be > 0; check the value")
    if col.kind is Kind.NUMBER and col.warn_above is not None:
        out.rows(values > col.warn_above, Severity.WARNING, "implausible", raw.source, col.name,
                 lambda r: f"{col.name} = {text[r]} is implausibly large (> {col.warn_above:g})",
                 "check the value and its unit")
    return values


def _duplicates(df: pd.DataFrame, keys: list[str], source: str, out: _Collector, what: str) -> None:
    if not set(keys) <= set(df.columns):
        return
    k = df[keys]
    valid = k.notna().all(axis=1)
    dup = k.duplicated(keep="first") & valid
    if not dup.any():
        return
    first = k[valid].reset_index().drop_duplicates(subset=keys, keep="first").set_index(keys)["row"]
    for row in dup.index[dup.to_numpy()]:
        key = tuple(k.loc[row])
        first_row = int(first.loc[key if len(key) > 1 else key[0]])
        out.add(Severity.ERROR, "duplicate-id", source, int(row), keys[-1],
                f"{what} {' / '.join(map(str, key))!s} repeats row {first_row}",
                f"give each {what} its own {keys[-1]}, or remove the repeated row")


def check_patients(t: TypedTable, out: _Collector) -> None:
    df, src = t.frame, t.source
    _duplicates(df, ["patient_id"], src, out, "patient")
    if "index_date" not in df:
        return
    index = df["index_date"]
    for col in ("last_followup_date", "progression_date", "death_date"):
        if col in df:
            out.rows(df[col] < index, Severity.ERROR, "before-index", src, col,
                     f"{col} is before index_date", "check both dates (the index date is the CAR T infusion)")
    if {"progression_date", "death_date"} <= set(df.columns):
        out.rows(df["progression_date"] > df["death_date"], Severity.ERROR, "progression-after-death", src,
                 "progression_date", "progression_date is after death_date",
                 "check both dates; progression cannot follow death")
    if {"progression_date", "last_followup_date"} <= set(df.columns):
        out.rows(df["progression_date"] > df["last_followup_date"], Severity.ERROR, "progression-after-followup",
                 src, "progression_date", "progression_date is after last_followup_date",
                 "last_followup_date must be on or after every event date")
    if {"death_date", "last_followup_date"} <= set(df.columns):
        out.rows(df["death_date"] > df["last_followup_date"], Severity.WARNING, "death-after-followup", src,
                 "death_date", "death_date is after last_followup_date",
                 "pofa ends follow-up at the death date; set last_followup_date to the death date to be explicit")
    if "last_followup_date" in df:
        years = (df["last_followup_date"] - index).dt.days / 365.25
        out.rows(years > MAX_FOLLOWUP_YEARS, Severity.WARNING, "implausible", src, "last_followup_date",
                 lambda r: f"follow-up of {years[r]:.1f} years is implausibly long "
                           f"(> {MAX_FOLLOWUP_YEARS:g})", "check index_date and last_followup_date")


def _patient_lookup(patients: TypedTable | None, child: pd.DataFrame) -> pd.DataFrame:
    """The patient columns for each row of a child table (NaN where the patient is unknown)."""
    cols = ["patient_id", "index_date", "last_followup_date", "progression_date"]
    if patients is None or not set(cols) <= set(patients.frame.columns):
        return pd.DataFrame(index=child.index)
    p = patients.frame[cols].dropna(subset=["patient_id"]).drop_duplicates("patient_id").set_index("patient_id")
    p["known"] = True
    joined = p.reindex(child["patient_id"].to_numpy())
    joined.index = child.index
    joined["known"] = joined["known"].fillna(False).astype(bool)
    return joined


def _unknown_patients(t: TypedTable, lookup: pd.DataFrame, out: _Collector) -> pd.Series:
    if "known" not in lookup:
        return pd.Series(False, index=t.frame.index)
    unknown = ~lookup["known"] & t.frame["patient_id"].notna()
    out.rows(unknown, Severity.ERROR, "unknown-patient", t.source, "patient_id",
             lambda r: f"patient {t.frame.at[r, 'patient_id']!r} is not in the patients table",
             "add the patient to the patients table, or correct the patient_id")
    return unknown


def check_lesions(t: TypedTable, patients: TypedTable | None, out: _Collector) -> None:
    df, src = t.frame, t.source
    if "patient_id" not in df:
        return
    _duplicates(df, ["patient_id", "lesion_id"], src, out, "lesion")
    lookup = _patient_lookup(patients, df)
    _unknown_patients(t, lookup, out)
    present = [c for c in COORDINATES if c in df]
    if present:
        has = df[present].notna()
        partial = has.any(axis=1) & ~has.all(axis=1) if len(present) == 3 else has.any(axis=1)
        out.rows(partial, Severity.ERROR, "partial-coordinates", src, present[0],
                 "a lesion centre needs all of x_mm, y_mm and z_mm", "fill in all three or leave all blank")
    if patients is not None and "patient_id" in patients.frame:
        with_lesions = set(df["patient_id"].dropna())
        pf = patients.frame
        none = pf["patient_id"].notna() & ~pf["patient_id"].isin(with_lesions)
        out.rows(none, Severity.WARNING, "no-lesions", patients.source, "patient_id",
                 lambda r: f"patient {pf.at[r, 'patient_id']!r} has no lesions",
                 "add the patient's pretreatment lesions; without them the patient counts only in survival")


def check_failures(t: TypedTable, patients: TypedTable | None, lesions: TypedTable | None,
                   out: _Collector) -> None:
    df, src = t.frame, t.source
    if "patient_id" not in df:
        return
    _duplicates(df, ["patient_id", "failure_id"], src, out, "failure lesion")
    lookup = _patient_lookup(patients, df)
    unknown = _unknown_patients(t, lookup, out)
    known = ~unknown & df["patient_id"].notna()
    if "baseline_lesion_id" in df:
        named = df["baseline_lesion_id"].notna() & known
        if lesions is not None and {"patient_id", "lesion_id"} <= set(lesions.frame.columns):
            pairs = pd.MultiIndex.from_frame(lesions.frame[["patient_id", "lesion_id"]].dropna())
            mine = pd.MultiIndex.from_arrays([df["patient_id"], df["baseline_lesion_id"]])
            missing = named & ~pd.Series(mine.isin(pairs), index=df.index)
            out.rows(missing, Severity.ERROR, "unknown-lesion", src, "baseline_lesion_id",
                     lambda r: f"lesion {df.at[r, 'baseline_lesion_id']!r} is not a lesion of patient "
                               f"{df.at[r, 'patient_id']!r}",
                     "correct baseline_lesion_id, or leave it blank for a new lesion")
        new = df["baseline_lesion_id"].isna()
        for col in ("site", "extranodal"):
            if col in df:
                out.rows(new & df[col].isna(), Severity.ERROR, "blank-cell", src, col,
                         f"'{col}' is blank for a new lesion (no baseline_lesion_id)",
                         f"fill in {col} for new lesions")
            elif new.any():
                out.add(Severity.ERROR, "missing-column", src, 1, col,
                        f"the column '{col}' is missing but the table has new lesions",
                        f"add a column headed '{col}' and fill it in for new lesions")
    if "progression_date" in lookup and "scan_date" in df:
        prog = lookup["progression_date"]
        no_prog = known & prog.isna()
        out.rows(no_prog, Severity.ERROR, "failure-without-progression", src, "patient_id",
                 lambda r: f"patient {df.at[r, 'patient_id']!r} has a failure lesion but no progression_date",
                 "fill in the patient's progression_date, or remove the failure row")
        out.rows(known & (df["scan_date"] < prog), Severity.ERROR, "failure-before-progression", src, "scan_date",
                 "scan_date is before the patient's progression_date",
                 "check scan_date; the first failure scan defines progression_date")
        out.rows(known & (df["scan_date"] > lookup["last_followup_date"]), Severity.WARNING,
                 "after-followup", src, "scan_date", "scan_date is after the patient's last_followup_date",
                 "last_followup_date must be on or after every scan")


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
    return typed, out.items


def empty_table(name: TableName, source: str) -> TypedTable:
    """An empty typed table with the required columns (used for an absent optional table)."""
    spec = TABLES[name]
    dtypes = {Kind.ID: object, Kind.TEXT: object, Kind.DATE: "datetime64[ns]", Kind.NUMBER: "float64",
              Kind.BOOLEAN: "boolean"}
    cols: Iterable[Column] = (c for c in spec.columns if c.required or c.name in ("site", "extranodal"))
    df = pd.DataFrame({c.name: pd.Series(dtype=dtypes[c.kind]) for c in cols})
    df.index.name = "row"
    return TypedTable(name, source, df, ())
