"""Score lesions with a risk model: probability of local failure with a 95% CI, ranked within the patient.

For a lesion with term vector ``x`` (intercept first) the model gives the log odds ``eta = x'b`` with variance
``x' V x`` (``V`` the coefficient covariance). The 95% CI is computed on the logit scale and transformed:
``expit(eta -+ 1.96 sqrt(x' V x))`` (delta method; the same interval as R
``plogis(predict(fit, newdata, se.fit = TRUE)$fit -+ qnorm(0.975) * se.fit)`` on the link scale), so it
always lies in (0, 1).

Every lesion also gets its odds ratio against a *reference lesion* (every term 0: e.g. < 5 cm, SUVmax < 10,
nodal), ``exp(x'b - b0)``, with its CI from the covariance without the intercept. Ranks within the patient
(1 = highest risk) are by the log odds, so they do not depend on the intercept: the published model ranks
lesions even when no baseline risk is stated.

:func:`load_lesions` reads the lesions to score (a CSV, XLSX or Parquet lesions table, or a study folder),
checks it with the study-format rules and reports, as findings with file, row and column, what stops the
scoring (a column the model needs is missing, a needed cell is blank or not a number ...). Problems in
columns the model does not use are listed apart and do not stop it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from pofa.errors import SettingsError, StudyError
from pofa.findings import Finding, ValidationReport, finding
from pofa.findings import FindingCode as C
from pofa.io.readers import (
    EXCEL_SUFFIXES,
    UNSUPPORTED_SUFFIXES,
    RawTable,
    read_csv_table,
    read_parquet_table,
    read_study_tables,
    read_workbook,
)
from pofa.riskmodel.model import Feature, RiskModel
from pofa.riskmodel.terms import TermValues, term_values
from pofa.schema import TABLES, TableName
from pofa.stats.factors import FactorKind, is_boolean
from pofa.validation import validate_tables

#: Two-sided 95% normal quantile, ``scipy.stats.norm.ppf(0.975)``.
Z95 = 1.959963984540054

PREDICTION_METHOD = (
    "probability = expit(x'b); 95% CI = expit(x'b -+ 1.96 sqrt(x'Vx)) (delta method on the logit scale, "
    "as R plogis(predict(fit, se.fit = TRUE)) on the link scale); rank 1 = highest risk within the patient"
)

ID_COLUMNS = ("patient_id", "lesion_id")
#: Columns copied to the scores (when present) to help find the lesion; nothing else of the input is kept.
CONTEXT_COLUMNS = ("site",)

#: The score columns, in order (feature columns and term columns follow ``risk_factors``).
SCORE_COLUMNS = (
    "patient_id",
    "lesion_id",
    "site",
    "rank_in_patient",
    "probability",
    "ci_low",
    "ci_high",
    "odds_ratio_vs_reference",
    "or_ci_low",
    "or_ci_high",
    "logit",
    "se_logit",
    "risk_factors",
)


@dataclass(frozen=True, slots=True)
class LinearPredictor:
    """Log odds of each lesion and their standard errors.

    Attributes
    ----------
    eta, se : ndarray
        ``x'b`` and ``sqrt(x'Vx)`` (``nan`` for lesions with a missing value, and for every lesion when the
        model's intercept is not known).
    eta_rel, se_rel : ndarray
        The same without the intercept: the log odds ratio against the reference lesion.
    terms : TermValues
        The term values behind them.
    """

    eta: np.ndarray
    se: np.ndarray
    eta_rel: np.ndarray
    se_rel: np.ndarray
    terms: TermValues


def linear_predictor(model: RiskModel, lesions: pd.DataFrame) -> LinearPredictor:
    """Log odds and standard errors (delta method) of ``lesions`` under ``model``.

    Parameters
    ----------
    model : RiskModel
        The risk model.
    lesions : pandas.DataFrame
        One row per lesion with the columns the model reads; not modified.

    Returns
    -------
    LinearPredictor
        Log odds, their standard errors and which lesions could be scored.

    Raises
    ------
    SettingsError
        A column the model needs is absent or holds text.
    """
    tv = term_values(lesions, model.features)
    X = np.where(tv.complete[:, None], tv.X, 0.0)
    b, V = model.coef, model.cov
    eta = X @ b
    var = np.einsum("ij,jk,ik->i", X, V, X)
    Xr = X[:, 1:]
    eta_rel = Xr @ b[1:]
    var_rel = np.einsum("ij,jk,ik->i", Xr, V[1:, 1:], Xr)
    # x'Vx >= 0 for a PSD V; rounding can leave -1e-17 for a reference lesion of the published model.
    se = np.sqrt(np.clip(var, 0.0, None))
    se_rel = np.sqrt(np.clip(var_rel, 0.0, None))
    bad = ~tv.complete
    if not model.intercept_known:
        eta = np.full_like(eta, np.nan)
        se = np.full_like(se, np.nan)
    for a in (eta, se, eta_rel, se_rel):
        a[bad] = np.nan
        a.setflags(write=False)
    return LinearPredictor(eta, se, eta_rel, se_rel, tv)


@dataclass(frozen=True, slots=True)
class LesionScores:
    """Scores of a set of lesions under one model.

    Attributes
    ----------
    model_label : str
        The model's label (e.g. the published model's caveat).
    method : str
        How probabilities and CIs are computed.
    limitations : tuple of str
        The model's limitations (printed with the scores).
    notes : tuple of str
        Notes about this scoring (lesions not scored, probabilities not available ...).
    n_lesions, n_scored, n_patients : int
        Lesions given, lesions with a score, patients.
    """

    model_label: str
    method: str
    limitations: tuple[str, ...]
    notes: tuple[str, ...]
    n_lesions: int
    n_scored: int
    n_patients: int
    _table: pd.DataFrame = field(repr=False)

    @property
    def table(self) -> pd.DataFrame:
        """One row per lesion: ids, rank, probability and CI, odds ratio, features and term values, note.

        Returns
        -------
        pandas.DataFrame
            One row per lesion: ids, rank, probability and CI, odds ratio, features and term values, note.
        """
        return self._table.copy()

    def to_csv_text(self) -> str:
        """The table as CSV text, with no cell a spreadsheet would run as a formula (:mod:`pofa.io.writers`).

        Returns
        -------
        str
            UTF-8 CSV text, header first, blank = missing, floats with full precision.
        """
        from pofa.io.writers import csv_text

        return csv_text(self._table)


def _binary(feature: Feature, lesions: pd.DataFrame, raw: pd.DataFrame) -> bool:
    """Whether a term is a yes/no factor (shown as present/absent): a threshold, or a column used as it is
    that is yes/no or holds only 0 and 1."""
    if feature.kind is FactorKind.THRESHOLD:
        return True
    if feature.kind is not FactorKind.AS_IS:
        return False
    values = raw[feature.column].dropna().to_numpy()
    return is_boolean(lesions[feature.column]) or bool(np.isin(values, (0.0, 1.0)).all())


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def predict_lesions(model: RiskModel, lesions: pd.DataFrame) -> LesionScores:
    """Probability of local failure of each lesion, its 95% CI, the features behind it and its rank.

    Parameters
    ----------
    model : RiskModel
        The risk model (fitted, or the published one).
    lesions : DataFrame
        One row per lesion with ``patient_id``, ``lesion_id`` and the columns the model reads; not modified.
        Patient ids are compared as text.

    Returns
    -------
    LesionScores
        Rows ordered by patient (first appearance), then rank. Lesions with a missing value are kept,
        unscored, with a note.

    Raises
    ------
    SettingsError
        An id column or a column the model needs is absent, or holds text where numbers are needed.
    """
    if not isinstance(lesions, pd.DataFrame):
        raise SettingsError("The lesions must be a pandas DataFrame with one row per lesion.")
    absent = [c for c in ID_COLUMNS if c not in lesions.columns]
    if absent:
        raise SettingsError(f"The lesions table has no column {', '.join(map(repr, absent))}.")
    if pd.api.types.is_float_dtype(lesions["patient_id"].dtype):
        raise SettingsError(
            "The patient_id column was read as decimal numbers, which merges ids such as '1.1' and '1.10'. "
            "Read id columns as text (e.g. pandas.read_csv(..., dtype={'patient_id': str}))."
        )
    lp = linear_predictor(model, lesions)
    tv = lp.terms
    n = len(lesions)
    b = model.coef
    out = pd.DataFrame(index=pd.RangeIndex(n))
    ids = lesions[list(ID_COLUMNS)].astype("string").reset_index(drop=True)
    out["patient_id"] = ids["patient_id"].to_numpy(dtype=object)
    out["lesion_id"] = ids["lesion_id"].to_numpy(dtype=object)
    for c in CONTEXT_COLUMNS:
        if c in lesions.columns:
            out[c] = lesions[c].reset_index(drop=True).to_numpy(dtype=object)
    with np.errstate(over="ignore"):
        out["probability"] = expit(lp.eta)
        out["ci_low"] = expit(lp.eta - Z95 * lp.se)
        out["ci_high"] = expit(lp.eta + Z95 * lp.se)
        out["odds_ratio_vs_reference"] = np.exp(lp.eta_rel)
        out["or_ci_low"] = np.exp(lp.eta_rel - Z95 * lp.se_rel)
        out["or_ci_high"] = np.exp(lp.eta_rel + Z95 * lp.se_rel)
    out["logit"] = lp.eta
    out["se_logit"] = lp.se
    scored = tv.complete
    ranks = (
        pd.Series(np.where(scored, lp.eta_rel, np.nan))
        .groupby(out["patient_id"], sort=False)
        .rank(method="min", ascending=False)
    )
    out.insert(list(out.columns).index("probability"), "rank_in_patient", ranks.astype("Int64"))

    binary = [_binary(f, lesions, tv.raw) for f in model.features]
    summaries = {t.term: t for t in model.training.terms}
    factors_text: list[str] = []
    notes_col: list[str] = []
    for i in range(n):
        if not scored[i]:
            factors_text.append("")
            notes_col.append(f"not scored: missing {tv.missing[i]}")
            continue
        parts: list[str] = []
        row_notes: list[str] = []
        for j, f in enumerate(model.features, start=1):
            v = float(tv.X[i, j])
            if binary[j - 1]:
                if v == 1.0:
                    parts.append(f"{f.term} (OR {_fmt(math.exp(b[j]))})")
                continue
            raw = float(tv.raw.iloc[i][f.column])
            parts.append(f"{f.term} = {_fmt(v)} (OR {_fmt(math.exp(b[j] * v))})")
            s = summaries.get(f.term)
            if (
                s is not None
                and s.column_min is not None
                and s.column_max is not None
                and not (s.column_min <= raw <= s.column_max)
            ):
                row_notes.append(
                    f"{f.column} = {_fmt(raw)} is outside the training range "
                    f"{_fmt(s.column_min)}-{_fmt(s.column_max)} (extrapolation)"
                )
        factors_text.append("; ".join(parts) if parts else "none")
        notes_col.append("; ".join(row_notes))
    out["risk_factors"] = factors_text
    for c in model.columns:
        if c in out.columns:
            continue
        col = lesions[c].reset_index(drop=True)
        out[c] = col.astype("boolean") if is_boolean(col) else tv.raw[c].reset_index(drop=True)
    for j, f in enumerate(model.features, start=1):
        out[f"term: {f.term}"] = np.where(scored, tv.X[:, j], np.nan)
    out["note"] = notes_col

    first_seen = {p: k for k, p in enumerate(dict.fromkeys(out["patient_id"]))}
    order = np.lexsort(
        (
            np.arange(n),
            out["rank_in_patient"].fillna(n + 1).to_numpy(dtype=float),
            out["patient_id"].map(first_seen).to_numpy(dtype=float),
        )
    )
    out = out.iloc[order].reset_index(drop=True)

    notes: list[str] = []
    n_scored = int(scored.sum())
    if n_scored < n:
        notes.append(f"{n - n_scored} of {n} lesions not scored (a value the model needs is missing)")
    if not model.intercept_known:
        notes.append(
            "the model has no intercept (no baseline risk stated), so probabilities are not "
            "available: lesions are ranked by their odds ratio against the reference lesion; state a "
            "baseline risk to get probabilities"
        )
    if any(out["note"].str.contains("extrapolation", regex=False)):
        notes.append("some lesions lie outside the training range of a continuous feature (see note)")
    return LesionScores(
        model_label=model.label,
        method=PREDICTION_METHOD,
        limitations=model.limitations,
        notes=tuple(notes),
        n_lesions=n,
        n_scored=n_scored,
        n_patients=len(first_seen),
        _table=out,
    )


# ---------------------------------------------------------------------------------------------------------
# Reading the lesions to score


@dataclass(frozen=True, slots=True)
class LoadedLesions:
    """A lesions table read for scoring, with what stops the scoring and what was ignored.

    Attributes
    ----------
    source : str
        The file (or ``workbook[sheet]``) read.
    report : ValidationReport
        Findings that matter for scoring: errors stop it (see :meth:`require_ok`).
    ignored : tuple of Finding
        Problems in columns the model does not read (listed, not blocking).
    """

    source: str
    report: ValidationReport
    ignored: tuple[Finding, ...]
    _frame: pd.DataFrame | None = field(repr=False)

    @property
    def frame(self) -> pd.DataFrame:
        """The typed lesions table (index = spreadsheet row).

        Returns
        -------
        pandas.DataFrame
            The typed lesions table.

        Raises
        ------
        StudyError
            When the table could not be read or has errors (:meth:`require_ok`).
        """
        self.require_ok()
        assert self._frame is not None
        return self._frame.copy()

    def require_ok(self) -> None:
        """Raise :class:`StudyError` listing the errors, if any.

        Raises
        ------
        StudyError
            When the lesions have errors (each listed).
        """
        if self.report.ok and self._frame is not None:
            return
        errs = self.report.errors
        lines = [f"{f.location()}: {f.message} ({f.hint})" for f in errs[:20]]
        more = f"\n... and {len(errs) - 20} more" if len(errs) > 20 else ""
        raise StudyError(
            f"the lesions to score ({self.report.study}) cannot be used:\n  " + "\n  ".join(lines) + more
        )


def _read_raw(path: Path) -> tuple[RawTable | None, list[Finding], str]:
    """The raw lesions table of ``path`` (file or study folder), the reading findings and a label."""
    findings: list[Finding] = []
    label = path.name or str(path)
    try:
        is_file, is_dir = path.is_file(), path.is_dir()
    except OSError:
        is_file = is_dir = False
    if is_dir:
        read = read_study_tables(path)
        raw = read.tables.get(TableName.LESIONS)
        if raw is not None:
            return raw, [f for f in read.findings if f.file == raw.source], raw.source
        keep = [f for f in read.findings if f.code != C.MISSING_TABLE or "'lesions'" in f.message]
        return None, keep, label
    if not is_file:
        findings.append(
            finding(
                C.NOT_A_STUDY,
                label,
                None,
                None,
                f"no such file or folder: {path}",
                "give a lesions table (.csv, .xlsx, .parquet) or a study folder",
            )
        )
        return None, findings, label
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv_table(path, TableName.LESIONS, findings), findings, label
    if suffix == ".parquet":
        return read_parquet_table(path, TableName.LESIONS, findings), findings, label
    if suffix in EXCEL_SUFFIXES:
        tables, titles = read_workbook(path, findings, set())
        raw = tables.get(TableName.LESIONS)
        if raw is None and not any(f.severity.value == "error" for f in findings):
            findings.append(
                finding(
                    C.MISSING_TABLE,
                    label,
                    None,
                    None,
                    "the workbook has no sheet named 'lesions'",
                    f"name the sheet with the lesions 'lesions' (sheets: {', '.join(titles) or 'none'})",
                )
            )
        return raw, findings, (raw.source if raw is not None else label)
    if suffix in UNSUPPORTED_SUFFIXES:
        findings.append(
            finding(
                C.UNSUPPORTED_FORMAT,
                label,
                None,
                None,
                f"pofa cannot read {suffix} files",
                "save the lesions as .xlsx or CSV",
            )
        )
        return None, findings, label
    findings.append(
        finding(
            C.UNSUPPORTED_FORMAT,
            label,
            None,
            None,
            f"{suffix or 'a file without extension'} is not a lesions table pofa reads",
            "give a .csv, .xlsx or .parquet lesions table, or a study folder",
        )
    )
    return None, findings, label


#: Finding codes about one column's cells or presence: they only matter when the model reads that column.
_COLUMN_CODES = frozenset(
    {
        C.MISSING_COLUMN,
        C.BLANK_CELL,
        C.BAD_NUMBER,
        C.BAD_BOOLEAN,
        C.BAD_DATE,
        C.NON_POSITIVE,
        C.IMPLAUSIBLE,
        C.PARTIAL_COORDINATES,
    }
)


def load_lesions(path: str | Path, model: RiskModel) -> LoadedLesions:
    """Read and check the lesions to score with ``model``.

    Parameters
    ----------
    path : str or Path
        A lesions table (``.csv``, ``.parquet``, or an ``.xlsx`` workbook with a ``lesions`` sheet) in the
        study format, or a study folder (its lesions table is used).
    model : RiskModel
        Decides which columns are needed: ``patient_id``, ``lesion_id`` and the model's feature columns.

    Returns
    -------
    LoadedLesions
        Never raises on bad data: problems are findings (errors block scoring, see
        :meth:`LoadedLesions.require_ok`).
    """
    p = Path(path)
    raw, read_findings, source = _read_raw(p)
    label = str(p)
    if raw is None:
        if not read_findings:
            read_findings.append(
                finding(
                    C.MISSING_TABLE,
                    source,
                    None,
                    None,
                    "no lesions table was found",
                    "give a lesions table or a study folder holding lesions.csv",
                )
            )
        return LoadedLesions(source, ValidationReport.of(label, read_findings), (), None)
    typed, val_findings = validate_tables({TableName.LESIONS: raw})
    frame = typed[TableName.LESIONS].frame
    needed = {*ID_COLUMNS, *model.columns}
    spec = TABLES[TableName.LESIONS]
    keep: list[Finding] = []
    ignored: list[Finding] = []
    for f in (*read_findings, *val_findings):
        if f.code in _COLUMN_CODES and f.column is not None and f.column not in needed:
            ignored.append(f)
        elif f.code == C.MISSING_COLUMN and f.column in model.columns:
            continue  # replaced below by a finding that names the feature
        else:
            keep.append(f)
    for feat in model.features:
        col = feat.column
        if col not in frame.columns:
            desc = spec.column(col)
            what = f" ({desc.description.rstrip('.')})" if desc is not None else ""
            keep.append(
                finding(
                    C.MISSING_COLUMN,
                    source,
                    1,
                    col,
                    f"the model needs the column '{col}' for its feature '{feat.term}', but the lesions "
                    "table has no such column",
                    f"add a column headed '{col}'{what} with the values the model was fitted on",
                )
            )
        elif spec.column(col) is None:
            try:
                term_values(frame[[col]], (feat,))
            except SettingsError as exc:
                keep.append(
                    finding(
                        C.BAD_NUMBER,
                        source,
                        None,
                        col,
                        str(exc),
                        f"give '{col}' as numbers (or yes/no for a yes/no feature)",
                    )
                )
    keep = list(dict.fromkeys(keep))
    report = ValidationReport.of(label, keep)
    return LoadedLesions(source, report, tuple(ignored), frame if report.ok else None)


__all__ = [
    "LesionScores",
    "LinearPredictor",
    "LoadedLesions",
    "PREDICTION_METHOD",
    "load_lesions",
    "linear_predictor",
    "predict_lesions",
]
