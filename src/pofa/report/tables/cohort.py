"""Table 1 as journals print it, and its lesion-level companion, with the conventions of ``tableone``.

Patients: labels and units (declared covariates, pofa's names for the format's own columns), median [Q1,Q3]
or mean (SD) as declared, n (%) for categories, missing counts, stratified by the failure pattern at first
progression (or another patient column), with a p-value per row and the test named (Kruskal-Wallis or
one-way ANOVA, Welch's t-test for two groups of a normal variable; chi-square, or Fisher's exact test for a
2 x 2 table with an expected count under 5; an r x c table with a small expected count keeps the chi-square
test and says so, as tableone does) and standardised mean differences. Lesions: the same by local failure at
first progression (p-values treat lesions as independent: descriptive).

The numbers and their printed form are those of tableone 0.9.6 (Pollard et al., MIT), computed by
:mod:`pofa.report.tables.summary` (vectorised, a small fraction of tableone's cost; the tests compare it
with tableone cell for cell).

Dates and text columns with many distinct values (names, record numbers) are never summarised, so no
identifier or calendar date reaches a table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pofa.covariates import Covariate, CovariateType, Summary
from pofa.report.model import NO_FAILURE, PATTERNS, ReportError, ReportInput
from pofa.report.tables.base import Cell, ReportTable, text
from pofa.report.tables.summary import SummaryTable, Variable, summarise

__all__ = [
    "MAX_LEVELS",
    "SummaryInput",
    "Variable",
    "cohort_input",
    "cohort_table",
    "lesion_input",
    "lesion_table",
    "summary_table",
]

#: Categorical covariates with more distinct values than this are not summarised (they may identify people).
MAX_LEVELS = 12
#: Sites shown one by one (the rest as "other sites").
MAX_SITES = 10

_DATE_TEXT = re.compile(r"^\s*\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|^\s*\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\s*$")

_GROUP_LABELS = {
    NO_FAILURE: "No progression",
    "strictly local": "Strictly local",
    "mixed": "Mixed",
    "strictly de novo": "Strictly de novo",
    "unknown": "Pattern unknown",
}


def _yes_no(s: pd.Series) -> pd.Series:
    """"yes" / "no" of a boolean column (missing values stay ``pd.NA``)."""
    b = s.astype("boolean")
    # one shared "no", "yes" and NA object each, picked by code (no string per row)
    code = b.fillna(False).to_numpy(dtype=np.int8)
    code[b.isna().to_numpy()] = 2
    return pd.Series(np.array(["no", "yes", pd.NA], dtype=object)[code], index=s.index, dtype=object)


def _any_per_patient(patient_of: np.ndarray, n_patients: int, flag: pd.Series) -> pd.Series:
    """Whether any lesion of each patient has ``flag`` (missing flags ignored; ``pd.NA`` without lesions)."""
    b = flag.astype("boolean")
    true = b.fillna(False).to_numpy(dtype=bool) & (patient_of >= 0)
    has = np.bincount(patient_of[patient_of >= 0], minlength=n_patients) > 0
    anyt = np.bincount(patient_of[true], minlength=n_patients) > 0
    return pd.Series(pd.array(anyt, dtype="boolean")).where(has, pd.NA)


def _text(s: pd.Series, fn: Callable[[Any], str]) -> pd.Series:
    """``fn`` of each value of ``s`` (missing values stay ``pd.NA``), called once per distinct value."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    mapped = np.array([*(fn(u) for u in uniques), pd.NA], dtype=object)
    return pd.Series(mapped[codes], index=s.index, dtype=object)


def _declared(inp: ReportInput, column: str, table: str) -> Covariate | None:
    return next((c for c in inp.settings.covariates if c.column == column and c.table == table), None)


def _covariate(
    frame: pd.DataFrame,
    data: dict[str, pd.Series],
    out: list[Variable],
    skipped: list[str],
    column: str,
    cov: Covariate | None,
) -> None:
    """Add one study covariate: as declared, else by what the column holds (dates, identifiers left out)."""
    s = frame[column]
    key = f"cov:{column}"
    if cov is not None:
        label = cov.display_label()
        if cov.type is CovariateType.DATE:
            skipped.append(f"{column} (a date)")
        elif cov.type in (CovariateType.NUMBER, CovariateType.WHOLE_NUMBER):
            data[key] = pd.to_numeric(s, errors="coerce")
            out.append(Variable(key, label, "mean" if cov.summary is Summary.MEAN_SD else "median"))
        elif cov.type is CovariateType.YES_NO:
            data[key] = _yes_no(s.astype("boolean"))
            out.append(Variable(key, label, "category", ("no", "yes")))
        else:
            data[key] = _text(s, str)
            out.append(Variable(key, label, "category", tuple(cov.levels)))
        return
    label = column.replace("_", " ").strip().capitalize()
    if pd.api.types.is_datetime64_any_dtype(s):
        skipped.append(f"{column} (a date)")
        return
    if str(s.dtype) == "boolean" or s.dtype == bool:
        data[key] = _yes_no(s.astype("boolean"))
        out.append(Variable(key, label, "category", ("no", "yes")))
        return
    if pd.api.types.is_numeric_dtype(s):
        vals = pd.to_numeric(s, errors="coerce")
        levels = sorted(pd.unique(vals.dropna()).tolist())
        if len(levels) <= 5 and all(float(v).is_integer() for v in levels):
            data[key] = _text(vals, lambda v: str(int(v)))
            out.append(Variable(key, label, "category", tuple(str(int(v)) for v in levels)))
        else:
            data[key] = vals
            out.append(Variable(key, label, "median"))
        return
    distinct = {str(v).strip() for v in pd.unique(s.dropna())}
    if any(_DATE_TEXT.match(v) for v in distinct):
        skipped.append(f"{column} (holds dates)")
        return
    n_levels, n_values = len(distinct), int(s.notna().sum())
    if n_levels > MAX_LEVELS or (n_values >= 10 and n_levels > 0.5 * n_values):
        skipped.append(f"{column} ({n_levels} distinct values: may identify patients)")
        return
    data[key] = _text(s, lambda v: str(v).strip())
    out.append(Variable(key, label, "category"))


def summary_table(
    frame: pd.DataFrame, variables: Sequence[Variable], group: str | None, group_order: Sequence[str]
) -> SummaryTable:
    """Summarise ``frame`` as tableone prints it (the numbers of Table 1).

    Parameters
    ----------
    frame : DataFrame
        One column per variable (and the group column).
    variables : sequence of Variable
        The rows to summarise (a variable without any value gives no row).
    group : str or None
        The grouping column (``None``: overall only).
    group_order : sequence of str
        The groups' order.

    Returns
    -------
    SummaryTable
        The summary: medians (IQR), means (SD) or counts (%), overall and per group, with SMDs, p-values
        and the tests' names when grouped (:func:`pofa.report.tables.summary.summarise`).

    Raises
    ------
    ReportError
        When a group is named like a column of the table ("Overall", "Missing", ...).
    """
    # pofa's own summaries, not tableone.TableOne: the same strings at a tenth of the CPU and without
    # importing scipy.stats (pofa.report.tables.summary says why and how; the tests compare both)
    try:
        return summarise(frame, variables, group, group_order)
    except ValueError as err:
        raise ReportError(f"Table 1 cannot be stratified by this column: {err}") from err


def _rows(
    t1: SummaryTable, variables: Sequence[Variable], groups: Sequence[str], group_labels: dict[str, str]
) -> tuple[tuple[str, ...], list[tuple[Cell, ...]], pd.DataFrame, set[int]]:
    """The HTML rows and the CSV data of a summary table (its printed strings, unchanged)."""
    tab = t1.table
    grouped = bool(groups)
    smd_cols = [c for c in tab.columns if str(c).startswith("SMD")]
    header = ["Characteristic", "Overall", *(group_labels.get(g, g) for g in groups), "Missing"]
    if grouped:
        header += ["SMD" if len(smd_cols) == 1 else "SMD (mean of pairwise)", "p", "Test"]
    rows: list[tuple[Cell, ...]] = []
    headings: set[int] = set()
    records = []
    current = None
    # the SMD cell: the mean of the absolute pairwise SMDs that are numbers ("<0.001" is not)
    smd_vals = (
        pd.to_numeric(pd.Series(tab[smd_cols].to_numpy().ravel()), errors="coerce")
        .to_numpy(dtype=float)
        .reshape(len(tab), len(smd_cols))
    )
    for i, ((var, level), rec) in enumerate(zip(tab.index, tab.to_dict("records"), strict=True)):
        var, level = str(var), str(level)
        smd = ""
        if grouped and smd_cols:
            vals = np.abs(smd_vals[i])
            smd = f"{np.nanmean(vals):.3f}" if not np.isnan(vals).all() else ""
        p_txt = str(rec.get("P-Value", "")).strip() if grouped else ""
        cells = [
            str(rec.get("Overall", "")),
            *(str(rec.get(g, "")) for g in groups),
            str(rec.get("Missing", "")),
        ]
        extra = [smd, p_txt, str(rec.get("Test", "")).strip()] if grouped else []
        records.append(
            {
                "characteristic": var,
                "level": level,
                **{h: v for h, v in zip(header[1:], [*cells, *extra], strict=False)},
            }
        )
        if level:
            if var != current:
                # the variable's own row: its name, missing count, SMD, p and test; its levels below it
                current = var
                head_row: list[Cell] = [text(var), *(text("") for _ in cells[:-1]), text(cells[-1])]
                head_row += [text(x) for x in extra]
                rows.append(tuple(head_row))
            rows.append(
                (text("\u2003" + level), *(text(c) for c in cells[:-1]), text(""), *(text("") for _ in extra))
            )
        else:
            current = var
            rows.append((text(var), *(text(c) for c in cells), *(text(x) for x in extra)))
    return tuple(header), rows, pd.DataFrame.from_records(records), headings


@dataclass(frozen=True, slots=True)
class SummaryInput:
    """What a summary table is made of: the frame of its variables and how it is grouped.

    Attributes
    ----------
    frame : pandas.DataFrame
        One column per variable and the group column ``_group``.
    variables : tuple of Variable
        The rows, in order.
    group : str or None
        The grouping column (``None``: overall only, when there are fewer than two groups).
    groups : tuple of str
        The groups in order (empty when not grouped).
    skipped : tuple of str
        Columns left out and why (dates, identifier-like text).
    """

    frame: pd.DataFrame
    variables: tuple[Variable, ...]
    group: str | None
    groups: tuple[str, ...]
    skipped: tuple[str, ...]


def cohort_input(inp: ReportInput, by: str = "pattern") -> SummaryInput:
    """The variables of Table 1, one row per patient, grouped by ``by``.

    Parameters
    ----------
    inp : ReportInput
        The report input (patients, lesions, thresholds and the study's patient covariates).
    by : str
        A patient column to stratify by (``"pattern"``: the failure pattern; ``""``: overall only).

    Returns
    -------
    SummaryInput
        The frame, its variables and grouping.

    Raises
    ------
    ReportError
        When ``by`` is not a column of the patients table.
    """
    p, les = inp.patients, inp.lesions
    data: dict[str, pd.Series] = {}
    variables: list[Variable] = []
    skipped: list[str] = []
    # each lesion's patient (row of the patients table; -1: a patient not in it), found once
    patient_of = pd.Index(p["patient_id"]).get_indexer(les["patient_id"])
    per = np.bincount(patient_of[patient_of >= 0], minlength=len(p))
    data["n_lesions"] = pd.Series(per, index=p.index, dtype=float)
    variables.append(Variable("n_lesions", "Baseline lesions per patient", "median"))
    for col, label in (("max_diameter_cm", "Largest lesion diameter (cm)"), ("max_suvmax", "Highest SUVmax")):
        if col in p.columns:
            data[col] = pd.to_numeric(p[col], errors="coerce")
            variables.append(Variable(col, label, "median"))
    ext = _any_per_patient(patient_of, len(p), les["extranodal"])
    data["any_extranodal"] = _yes_no(ext.set_axis(p.index))
    variables.append(Variable("any_extranodal", "Any extranodal lesion", "category", ("no", "yes")))
    if "bridging_rt" in les.columns:
        br = _any_per_patient(patient_of, len(p), les["bridging_rt"])
        data["any_bridging"] = _yes_no(br.set_axis(p.index))
        variables.append(
            Variable("any_bridging", "Bridging radiotherapy to any lesion", "category", ("no", "yes"))
        )
    for c in inp.patient_covariates:
        _covariate(p, data, variables, skipped, c, _declared(inp, c, "patients"))
    group = None
    groups: list[str] = []
    if by:
        if by not in p.columns:
            raise ReportError(
                f"Table 1 cannot be stratified by {by!r}: the patients table has no such column"
            )
        data["_group"] = _text(p[by], str)
        seen = set(pd.unique(data["_group"].dropna()))
        present = [x for x in (NO_FAILURE, *PATTERNS) if x in seen] if by == "pattern" else sorted(seen)
        if len(present) > 1:
            group, groups = "_group", present
    frame = pd.DataFrame(data)
    skipped += [f"{v.label} (no values)" for v in variables if not frame[v.column].notna().any()]
    return SummaryInput(frame, tuple(variables), group, tuple(groups), tuple(skipped))


def cohort_table(inp: ReportInput, by: str = "pattern") -> ReportTable:
    """Table 1: the patients, stratified by ``by`` (default: the failure pattern at first progression).

    Parameters
    ----------
    inp : ReportInput
        The report input (patients, lesions, thresholds and the study's patient covariates).
    by : str
        A patient column to stratify by (``"pattern"``: the failure pattern; ``""``: overall only).

    Returns
    -------
    ReportTable
        Table 1, overall and per stratum.

    Raises
    ------
    ReportError
        When ``by`` is not a column of the patients table, or a group is named like a column of the table.
    """
    si = cohort_input(inp, by)
    skipped = list(si.skipped)
    by_words = "the failure pattern at first progression" if by == "pattern" else by
    note = (
        "Median [Q1,Q3] or mean (SD) as declared; n (%) of patients with a known value; Missing: patients "
        f"without a value. Columns: {by_words}. p: the test named per row (Kruskal-Wallis for a median, "
        "one-way ANOVA or Welch's t-test for a mean, chi-square for categories; Fisher's exact test for a "
        '2 x 2 table with an expected count under 5; "warning: expected count < 5" marks a larger table '
        "whose chi-square test may be invalid). SMD: standardised mean difference (with more than two "
        "groups, the mean of the pairwise absolute SMDs). Computed as tableone computes it (Pollard et al., "
        "JAMIA Open 2018)."
    )
    if skipped:
        note += (
            " Not summarised (dates and identifier-like text never are): "
            + "; ".join(skipped)
            + "."
        )
    return _summary_report_table(si, _GROUP_LABELS if by == "pattern" else {}, "table1_cohort",
                                 "Table 1. Patient characteristics", note)


def _summary_report_table(si: SummaryInput, labels: dict[str, str], name: str, title: str,
                          note: str) -> ReportTable:
    """Summarise ``si`` and lay the summary out as a report table (rows, CSV data, headings)."""
    t1 = summary_table(si.frame, si.variables, si.group, si.groups)
    header, rows, df, headings = _rows(t1, si.variables, si.groups, labels)
    return ReportTable(name, title, header, tuple(rows), df, note, frozenset(headings))


def lesion_input(inp: ReportInput) -> SummaryInput:
    """The variables of the lesion table, one row per baseline lesion, grouped by local failure.

    Parameters
    ----------
    inp : ReportInput
        The report input (lesions, lesion thresholds and the study's lesion covariates).

    Returns
    -------
    SummaryInput
        The frame, its variables and grouping (``yes``, ``no``, ``unknown``: the groups present).
    """
    les = inp.lesions
    data: dict[str, pd.Series] = {}
    variables: list[Variable] = []
    skipped: list[str] = []
    data["diameter_cm"] = les["diameter_cm"]
    variables.append(Variable("diameter_cm", "Longest diameter (cm)", "median"))
    data["suvmax"] = les["suvmax"]
    variables.append(Variable("suvmax", "SUVmax", "median"))
    for col, x in inp.lesion_thresholds.items():
        v = les[col]
        data[f"{col}_ge"] = _yes_no((v >= x).astype("boolean").where(v.notna()))
        label = f"Longest diameter \u2265 {x:g} cm" if col == "diameter_cm" else f"SUVmax \u2265 {x:g}"
        variables.append(Variable(f"{col}_ge", label, "category", ("no", "yes")))
    data["extranodal"] = _yes_no(les["extranodal"].astype("boolean"))
    variables.append(Variable("extranodal", "Extranodal", "category", ("no", "yes")))
    if "bridging_rt" in les.columns:
        data["bridging_rt"] = _yes_no(les["bridging_rt"].astype("boolean"))
        variables.append(Variable("bridging_rt", "Bridging radiotherapy", "category", ("no", "yes")))
    site = _text(les["site"], lambda v: str(v).strip().lower())
    top = set(site.value_counts().sort_values(ascending=False, kind="mergesort").index[:MAX_SITES])
    data["site"] = site.where(site.isna() | site.isin(top), "other sites")
    variables.append(Variable("site", "Site", "category"))
    for c in inp.lesion_covariates:
        _covariate(les, data, variables, skipped, c, _declared(inp, c, "lesions"))
    lf = les["local_failure"].astype("boolean")
    code = lf.fillna(False).to_numpy(dtype=np.int8)  # 0 no, 1 yes, 2 unknown
    code[lf.isna().to_numpy()] = 2
    data["_group"] = pd.Series(np.array(["no", "yes", "unknown"], dtype=object)[code], index=les.index)
    seen = set(pd.unique(data["_group"]))
    groups = [g for g in ("yes", "no", "unknown") if g in seen]
    frame = pd.DataFrame(data)
    skipped += [f"{v.label} (no values)" for v in variables if not frame[v.column].notna().any()]
    grouped = len(groups) > 1
    return SummaryInput(
        frame,
        tuple(variables),
        "_group" if grouped else None,
        tuple(groups) if grouped else (),
        tuple(skipped),
    )


def lesion_table(inp: ReportInput) -> ReportTable:
    """Summarise the baseline lesions by local failure at first progression.

    Parameters
    ----------
    inp : ReportInput
        The report input (lesions, lesion thresholds and the study's lesion covariates).

    Returns
    -------
    ReportTable
        The lesion table, overall and by local failure.
    """
    si = lesion_input(inp)
    skipped = list(si.skipped)
    labels = {"yes": "Local failure", "no": "No local failure", "unknown": "Outcome unknown"}
    note = (
        "Baseline lesions by local failure at first progression (outcome unknown: lesions of patients whose "
        "pattern is unknown). Median [Q1,Q3]; n (%) of lesions with a known value. p-values treat lesions "
        "as independent (the lesions of one patient are not): descriptive only; the lesion-level odds "
        "ratios (GEE) account for the clustering. Computed as tableone computes it (Pollard et al., JAMIA "
        "Open 2018)."
    )
    if skipped:
        note += " Not summarised: " + "; ".join(skipped) + "."
    return _summary_report_table(si, labels, "table1_lesions", "Baseline lesions by local failure", note)
