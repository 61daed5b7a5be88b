"""Checks of the response tables (``measurements``, ``scans``) against each other and the study.

Called once from :func:`pofa.validation.validate_tables`; cell-level parsing (dates, numbers, yes/no) is done
there by the generic column rules of :mod:`pofa.schema`. Every finding names its file, row and column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from pofa.findings import Finding, finding
from pofa.findings import FindingCode as C
from pofa.schema import TableName

if TYPE_CHECKING:
    from pofa.validation import TypedTable

#: Lugano 2014: "up to six of the largest dominant nodes, nodal masses, and extranodal lesions".
MAX_TARGETS = 6
DEAUVILLE_TEXTS = frozenset({"1", "2", "3", "4", "5", "x"})


def parse_deauville(text: object) -> int | None:
    """A Deauville cell as an integer 1-5, or ``None`` for blank or ``X`` (not scored).

    Parameters
    ----------
    text : object
        The cell (text, or a number as Excel stores it).

    Returns
    -------
    int or None
        The score, ``None`` for a blank or ``X`` cell.

    Raises
    ------
    ValueError
        Anything else.
    """
    if text is None or (isinstance(text, float) and pd.isna(text)) or text is pd.NA:
        return None
    s = str(text).strip().lower()
    if s.endswith(".0"):
        s = s[:-2]
    if s in ("", "x"):
        return None
    if s not in DEAUVILLE_TEXTS:
        raise ValueError(s)
    return int(s)


def _bad_deauville(t: TypedTable) -> list[Finding]:
    out: list[Finding] = []
    if "deauville" not in t.frame:
        return out
    frame: Any = t.frame
    for row, v in frame["deauville"].items():
        try:
            parse_deauville(v)
        except ValueError:
            out.append(finding(C.BAD_DEAUVILLE, t.source, int(row), "deauville",
                               f"'{str(v)[:20]}' is not a Deauville score", "write 1, 2, 3, 4, 5 or X"))
    return out


def check_response_tables(tables: dict[TableName, TypedTable]) -> list[Finding]:
    """Every problem of the measurements and scans tables at once.

    Checks: Deauville cells; ``sdi_mm <= ldi_mm``; a measurement per lesion and scan; patients and lesions
    that exist; per patient, exactly one scan on or before ``index_date`` (the baseline) with every later
    lesion measured there, one to six target lesions (Lugano 2014) with the target cell filled in;
    scans after the last follow-up (warning); scans rows without measurements on that date (warning).

    Parameters
    ----------
    tables : dict
        The typed tables of the study.

    Returns
    -------
    list of Finding
        Every finding, one per problem.
    """
    out: list[Finding] = []
    m = tables.get(TableName.MEASUREMENTS)
    s = tables.get(TableName.SCANS)
    patients = tables.get(TableName.PATIENTS)
    lesions = tables.get(TableName.LESIONS)
    pinfo: Any = None
    if patients is not None and "patient_id" in patients.frame:
        pf = patients.frame.dropna(subset=["patient_id"])
        pinfo = pf.drop_duplicates("patient_id").set_index("patient_id")
    for t in (m, s):
        if t is None:
            continue
        out += _bad_deauville(t)
        if "patient_id" in t.frame and pinfo is not None:
            ids = t.frame["patient_id"]
            for row in ids.index[ids.notna() & ~ids.isin(pinfo.index)]:
                out.append(finding(C.UNKNOWN_PATIENT, t.source, int(row), "patient_id",
                                   f"patient '{ids[row]}' is not in the patients table",
                                   "add the patient to the patients table, or correct the patient_id"))
    if m is None or not {"patient_id", "lesion_id", "scan_date"} <= set(m.frame.columns):
        return out
    df: Any = m.frame
    if {"ldi_mm", "sdi_mm"} <= set(df.columns):
        bad = df["sdi_mm"] > df["ldi_mm"]
        for row in df.index[bad.fillna(False).to_numpy(dtype=bool)]:
            out.append(finding(C.BAD_DIAMETERS, m.source, int(row), "sdi_mm",
                               f"sdi_mm {df.at[row, 'sdi_mm']:g} is larger than ldi_mm "
                               f"{df.at[row, 'ldi_mm']:g}",
                               "sdi_mm is the short diameter perpendicular to the longest (ldi_mm)"))
    keys = df[["patient_id", "lesion_id", "scan_date"]]
    dup = keys.duplicated(keep="first") & keys.notna().all(axis=1)
    for row in df.index[dup.to_numpy()]:
        out.append(finding(C.DUPLICATE_ID, m.source, int(row), "lesion_id",
                           f"lesion '{df.at[row, 'lesion_id']}' is measured twice on the same scan_date",
                           "keep one row per lesion and scan"))
    if lesions is not None and {"patient_id", "lesion_id"} <= set(lesions.frame.columns):
        known = pd.MultiIndex.from_frame(lesions.frame[["patient_id", "lesion_id"]].dropna())
        mine = pd.MultiIndex.from_frame(df[["patient_id", "lesion_id"]].astype(object))
        unknown = ~mine.isin(known) & df["lesion_id"].notna().to_numpy()
        if pinfo is not None:
            unknown &= df["patient_id"].isin(pinfo.index).to_numpy()
        for row in df.index[unknown]:
            out.append(finding(C.UNKNOWN_LESION, m.source, int(row), "lesion_id",
                               f"lesion '{df.at[row, 'lesion_id']}' is not a lesion of patient "
                               f"'{df.at[row, 'patient_id']}'",
                               "measure the baseline lesions of the lesions table"))
    if pinfo is None or "index_date" not in pinfo:
        return out
    ok = keys.notna().all(axis=1) & df["patient_id"].isin(pinfo.index)
    rows: Any
    for pid, rows in df[ok].groupby("patient_id", sort=False):
        index_date: Any = pinfo.at[pid, "index_date"]
        if pd.isna(index_date):
            continue
        dates = sorted(rows["scan_date"].unique())
        first_row = int(rows.index[rows["scan_date"] == dates[0]][0])
        before = [d for d in dates if d <= index_date]
        if not before:
            out.append(finding(C.NO_BASELINE_SCAN, m.source, first_row, "scan_date",
                               f"patient '{pid}': the first measured scan "
                               f"{pd.Timestamp(dates[0]).date()} is after index_date "
                               f"{pd.Timestamp(index_date).date()}",
                               "add the measurements of the baseline scan (on or before index_date)"))
            continue
        if len(before) > 1:
            row = int(rows.index[rows["scan_date"] == before[1]][0])
            out.append(finding(C.SEVERAL_BASELINE_SCANS, m.source, row, "scan_date",
                               f"patient '{pid}' has {len(before)} scans on or before index_date",
                               "keep only the baseline scan (the last one before the infusion)"))
        base = rows[rows["scan_date"] == before[-1]]
        base_ids = set(base["lesion_id"])
        for row in rows.index[~rows["lesion_id"].isin(base_ids)]:
            out.append(finding(C.NOT_AT_BASELINE, m.source, int(row), "lesion_id",
                               f"lesion '{rows.at[row, 'lesion_id']}' of patient '{pid}' is not "
                               "measured at the baseline scan",
                               "add its baseline measurement, or correct the lesion_id"))
        if "target" in base:
            blank = base["target"].isna()
            for row in base.index[blank.to_numpy(dtype=bool)]:
                out.append(finding(C.TARGET_LESIONS, m.source, int(row), "target",
                                   "target is blank at the baseline scan", "write yes or no"))
            n = int(base["target"].fillna(False).astype(bool).sum())
            if n == 0 or n > MAX_TARGETS:
                out.append(finding(C.TARGET_LESIONS, m.source, int(base.index[0]), "target",
                                   f"patient '{pid}' has {n} target lesions at baseline",
                                   "choose one to six target lesions (Lugano 2014)"))
        last: Any = pinfo.at[pid, "last_followup_date"] if "last_followup_date" in pinfo else pd.NaT
        if not pd.isna(last):
            for d in dates:
                if d > last:
                    row = int(rows.index[rows["scan_date"] == d][0])
                    out.append(finding(C.SCAN_AFTER_FOLLOWUP, m.source, row, "scan_date",
                                       f"scan {pd.Timestamp(d).date()} is after last_followup_date "
                                       f"{pd.Timestamp(last).date()}",
                                       "last_followup_date is on or after every scan"))
    if s is not None and {"patient_id", "scan_date"} <= set(s.frame.columns):
        measured = pd.MultiIndex.from_frame(df.loc[ok, ["patient_id", "scan_date"]].astype(object))
        sk = pd.MultiIndex.from_frame(s.frame[["patient_id", "scan_date"]].astype(object))
        orphan = ~sk.isin(measured) & s.frame[["patient_id", "scan_date"]].notna().all(axis=1).to_numpy()
        for row in s.frame.index[orphan]:
            out.append(finding(C.UNKNOWN_SCAN, s.source, int(row), "scan_date",
                               "no lesion of this patient is measured on this scan_date",
                               "correct the scan_date, or add the scan's measurements"))
        sdup = s.frame[["patient_id", "scan_date"]].duplicated(keep="first")
        for row in s.frame.index[sdup.to_numpy()]:
            out.append(finding(C.DUPLICATE_ID, s.source, int(row), "scan_date",
                               "this scan repeats an earlier row", "keep one row per patient and scan"))
    return out
