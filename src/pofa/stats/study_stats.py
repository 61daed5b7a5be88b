"""The statistics of one study analysis.

These are the ``lesion_models``, ``survival``, ``followup``, ``patient_models``, ``competing_risks`` and
``cutpoints`` entries of results.json.

Each function takes the analysed tables (:class:`pofa.analysis.AnalysisResult`'s ``patients`` and
``lesions``, with the outcome and feature columns of :mod:`pofa.classify` and :mod:`pofa.features`) and
returns a typed, immutable result (:mod:`pofa.stats.results`: estimates, ``nan`` where not estimable with the
reason beside it, and the fitted curves); ``*_results`` functions return those objects and the functions named
after the results.json keys return their plain JSON (``json_entries``).
The numbers come from the estimators of this package, each tested against R (docs/statistics-lesion.md,
docs/statistics-survival.md); tests/test_pipeline_vs_r.py compares a whole results.json with R
(docs/statistics.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from pofa.covariates import Covariate
from pofa.errors import EstimationError, PofaError, SettingsError
from pofa.settings import Settings
from pofa.stats.competing import cumulative_incidence
from pofa.stats.cox import COX_METHOD, cox_ph, proportional_hazards_test
from pofa.stats.cutpoint import EXPLORATORY_NOTE, maxstat_cutpoint
from pofa.stats.lesion_level import lesion_models
from pofa.stats.results import (
    CompetingRisksResults,
    CoxRow,
    Cutpoint,
    Cutpoints,
    Estimate,
    FollowUp,
    GrayResult,
    GroupCurve,
    IncidenceBlock,
    IncidenceCause,
    IncidenceCurve,
    KaplanMeierSummary,
    Landmark,
    LesionModelRow,
    LesionModels,
    MultiCoxRow,
    PatientModels,
    PHCheck,
    StepCurve,
    StudyResults,
    SurvivalResults,
    json_number,
)
from pofa.stats.survival import kaplan_meier, log_rank_test, median_follow_up

#: Fewer patients than this: a note that the robust (sandwich) GEE SEs may be too small.
FEW_CLUSTERS = 50

_PATIENT_TERM = re.compile(r"^\s*any\s+([A-Za-z_][A-Za-z0-9_]*)\s*>=\s*([-+0-9.eE]+)\s*$")

#: Causes of the patient-level competing-risk analysis (``fp_status`` of :mod:`pofa.classify`).
PATIENT_CAUSES = {1: "local component", 2: "strictly de novo", 3: "death without progression",
                  4: "progression, pattern unknown"}
#: Causes of the lesion-level competing-risk analysis (``lf_status``).
LESION_CAUSES = {1: "local failure", 2: "death without local failure"}


@dataclass(frozen=True, slots=True)
class PatientTerm:
    """A patient-level term: ``any COLUMN>=X`` over the patient's lesions, or a patient covariate column.

    Attributes
    ----------
    text : str
        The term as normalised (``"any diameter_cm>=5"`` or the column name).
    lesion_column : str or None
        The lesion column of an ``any COLUMN>=X`` term (``None`` for a patient column).
    threshold : float or None
        The threshold ``X`` of an ``any COLUMN>=X`` term (``None`` for a patient column).
    """

    text: str
    lesion_column: str | None
    threshold: float | None

    @classmethod
    def parse(cls, text: str) -> PatientTerm:
        """Parse a ``[risk_factors] patient`` entry.

        Parameters
        ----------
        text : str
            ``"any COLUMN>=X"`` or a patient column name.

        Returns
        -------
        PatientTerm
            The parsed term.

        Raises
        ------
        SettingsError
            When ``X`` is not a number or ``text`` is neither form.
        """
        m = _PATIENT_TERM.match(text)
        if m:
            try:
                threshold = float(m.group(2))
            except ValueError as exc:
                raise SettingsError(f"patient risk factor {text!r}: {m.group(2)!r} is not a number") from exc
            return cls(f"any {m.group(1)}>={threshold:g}", m.group(1), threshold)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text.strip()):
            raise SettingsError(f"patient risk factor {text!r} is neither 'any COLUMN>=X' nor a patient "
                                "column name; e.g. 'any diameter_cm>=5' or 'age'")
        return cls(text.strip(), None, None)

    def values(self, patients: pd.DataFrame, lesions: pd.DataFrame) -> pd.Series:
        """Return the term per patient (aligned on ``patients``); NA where unknown.

        Parameters
        ----------
        patients : pandas.DataFrame
            Analysed patients (``patient_id`` and, for a patient column, that column).
        lesions : pandas.DataFrame
            Analysed lesions (``patient_id`` and, for an ``any COLUMN>=X`` term, that column).

        Returns
        -------
        pandas.Series
            The covariate column, or 1/0 whether any of the patient's lesions reaches the threshold.

        Raises
        ------
        SettingsError
            When the column is missing or holds text (a Cox term needs yes/no or numbers).
        """
        if self.lesion_column is None:
            if self.text not in patients.columns:
                raise SettingsError(f"patient risk factor {self.text!r} is not a column of the patients "
                                    "table")
            _require_numeric(patients[self.text], f"patient risk factor {self.text!r}", "patients")
            return patients[self.text]
        if self.lesion_column not in lesions.columns:
            raise SettingsError(f"patient risk factor {self.text!r}: the lesions table has no column "
                                f"{self.lesion_column!r}")
        from pofa.features import any_at_least, threshold_column

        threshold = float(self.threshold or 0)
        feature = threshold_column(self.lesion_column, threshold)
        if feature in patients.columns:
            # the analysed patients table already has it ([features] thresholds, computed by the same
            # any_at_least): a groupby over every lesion saved (a third of this step's time at 35,000 lesions)
            return patients[feature]
        _require_numeric(lesions[self.lesion_column], f"patient risk factor {self.text!r}", "lesions")
        return any_at_least(lesions, self.lesion_column, threshold, patients["patient_id"])


def _require_numeric(values: pd.Series, what: str, table: str) -> None:
    """Refuse a text column as a model term (a traceback from float conversion would say nothing useful)."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return
    levels = sorted(map(str, pd.unique(values.dropna())))[:4]
    raise SettingsError(f"{what}: the {table} column {values.name!r} holds text (e.g. "
                        f"{', '.join(map(repr, levels))}); a model term needs yes/no or numbers: add a "
                        f"yes/no or numeric column to {table}.csv (e.g. male = yes/no) and name it in "
                        "[risk_factors]")


def _num(x: float | int | None) -> float | int | None:
    return json_number(x)


def _f(x: float | int | None) -> float:
    """A float for a typed result: ``nan`` for a missing value."""
    return math.nan if x is None else float(x)


def _landmark(months: float, e: Estimate) -> Landmark:
    return Landmark(float(months), _f(e.estimate), _f(e.ci_low), _f(e.ci_high), e.reason)


_COLUMN_WORDS = {
    "diameter_cm": ("diameter", "cm"),
    "suvmax": ("SUVmax", ""),
    "mtv_ml": ("MTV", "ml"),
    "tlg": ("TLG", ""),
    "extranodal": ("extranodal", ""),
    "bridging_rt": ("bridging RT", ""),
}


def _covariate(settings: Settings, column: str, table: str) -> Covariate | None:
    return next((c for c in settings.covariates if c.column == column and c.table == table), None)


def _words(column: str, settings: Settings, table: str) -> tuple[str, str]:
    """A column's words and unit: the declared covariate's label, else pofa's names for the format's own."""
    cov = _covariate(settings, column, table)
    if cov is not None:
        return (cov.label or cov.column.replace("_", " ").strip()), cov.unit
    return _COLUMN_WORDS.get(column, (column, ""))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _threshold_text(x: float) -> str:
    return f"{x:g}"


def lesion_term_label(text: str, settings: Settings) -> str:
    """Return a lesion risk factor as a reader reads it: ``"diameter_cm>=5"`` -> ``"Diameter ≥ 5 cm"``.

    Parameters
    ----------
    text : str
        The factor as written in ``[risk_factors] lesion``.
    settings : Settings
        For the declared covariates' labels and units.

    Returns
    -------
    str
        The label (``text`` unchanged when it does not parse as a factor).
    """
    from pofa.stats.factors import parse_factor

    try:
        f = parse_factor(text)
    except PofaError:
        return text
    word, unit = _words(f.column, settings, "lesions")
    if f.threshold is not None:
        return _cap(f"{word} \u2265 {_threshold_text(f.threshold)}" + (f" {unit}" if unit else ""))
    if f.scale is not None:
        per = "SD" if str(f.scale) in ("sd", "Scale.SD") or getattr(f.scale, "value", "") == "sd" else (
            unit or "unit")
        return _cap(f"{word} (per {per})")
    return _cap(f"{word} ({unit})" if unit else word)


def patient_term_label(term: PatientTerm, settings: Settings, step: float = 1.0) -> str:
    """Return a patient term as a reader reads it: ``"Any lesion diameter ≥ 5 cm"``, ``"Age (per 10 years)"``.

    Parameters
    ----------
    term : PatientTerm
        The parsed term.
    settings : Settings
        For the declared covariates' labels and units.
    step : float
        Units per hazard ratio of a numeric term.

    Returns
    -------
    str
        The label, capitalised.
    """
    if term.lesion_column is not None:
        word, unit = _words(term.lesion_column, settings, "lesions")
        return f"Any lesion {word} \u2265 {_threshold_text(float(term.threshold or 0))}" + (
            f" {unit}" if unit else "")
    cov = _covariate(settings, term.text, "patients")
    word, unit = _words(term.text, settings, "patients")
    if cov is not None and cov.type.value in ("number", "whole number"):
        if step == 1:
            per = (unit[:-1] if unit.endswith("s") else f"1 {unit}") if unit else "unit"
        else:
            per = f"{step:g} {unit}".strip()
        return _cap(f"{word} (per {per})")
    return _cap(word)


def _step_of(term: PatientTerm, settings: Settings) -> float:
    if term.lesion_column is not None:
        return 1.0
    cov = _covariate(settings, term.text, "patients")
    return float(cov.step) if cov is not None and cov.step > 0 else 1.0


# -----------------------------------------------------------------------------------------------------------
# lesion level


def lesion_level_results(lesions: pd.DataFrame, settings: Settings) -> LesionModels:
    """Estimate odds ratios of local failure at first progression (logistic, GEE; univariable, multivariable).

    Lesions of patients whose pattern is unknown (progression without failure rows) have no outcome and are
    left out (counted in ``n_lesions_unknown_outcome``); every other lesion counts (no failure = 0). Rows of
    both models and both methods are always present (``nan`` where not estimable, the reason in ``notes``);
    with a single risk factor the multivariable rows repeat the univariable ones (one model). The estimators
    equal R ``glm(..., family = binomial)``, ``geepack::geeglm(..., corstr = "exchangeable")`` and
    ``logistf::logistf(pl = TRUE)`` (docs/statistics-lesion.md).

    Parameters
    ----------
    lesions : DataFrame
        Analysed lesions (``local_failure``, ``patient_id`` and the factors' columns).
    settings : Settings
        ``[risk_factors] lesion`` and ``[lesion_models]``.

    Returns
    -------
    LesionModels
        One row per model, method and term, with the counts, methods and notes of results.json.
    """
    known = lesions[lesions["local_failure"].notna()].copy()
    known["local_failure"] = known["local_failure"].astype("int64")
    methods = ["logistic", "gee"]
    if settings.lesion_models.firth:
        methods.append("firth")
    models = lesion_models(known, outcome="local_failure", cluster="patient_id",
                           factors=list(settings.risk_factors.lesion), methods=tuple(methods),
                           small_sample=settings.lesion_models.small_sample,
                           firth=settings.lesion_models.firth)
    from pofa.stats.factors import parse_factor

    def events(model: str, term: str) -> int:
        cols = ([parse_factor(t).column for t in settings.risk_factors.lesion] if model == "multivariable"
                else [parse_factor(term).column])
        ok = known[[c for c in cols if c in known.columns]].notna().all(axis=1)
        return int(known.loc[ok, "local_failure"].sum())

    rows: list[LesionModelRow] = []
    notes: list[str] = []
    descriptions: dict[str, str] = {}
    for m in models:
        for t in m.terms:
            rows.append(LesionModelRow(m.model, m.method, t.term, lesion_term_label(t.term, settings),
                                       _f(t.odds_ratio), _f(t.ci_low), _f(t.ci_high), _f(t.p),
                                       int(m.n_lesions), int(m.n_patients), events(m.model, t.term)))
        descriptions[m.method] = m.method_description
        for n in m.notes:
            note = f"{m.model} {m.method}: {n}"
            if note not in notes:
                notes.append(note)
    if len(settings.risk_factors.lesion) == 1:
        # results.json always has univariable and multivariable rows; with one factor they are one model
        rows.extend(replace(r, model="multivariable") for r in list(rows))
        notes.append("one risk factor: the multivariable model is the univariable model")
    n_patients = int(known["patient_id"].nunique())
    if n_patients < FEW_CLUSTERS and not settings.lesion_models.small_sample:
        notes.append(f"only {n_patients} patients (< {FEW_CLUSTERS}): robust GEE standard errors may be too "
                     "small; consider [lesion_models] small_sample = true (Mancl-DeRouen bias-reduced "
                     "sandwich)")
    return LesionModels(tuple(rows), "local failure at first progression", len(known),
                        int(len(lesions) - len(known)), n_patients, int(known["local_failure"].sum()),
                        tuple(descriptions.items()), tuple(notes),
                        _thresholds(settings))


def _thresholds(settings: Settings) -> tuple[tuple[str, float], ...]:
    from pofa.stats.factors import parse_factor

    factors = [parse_factor(t) for t in settings.risk_factors.lesion]
    return tuple((f.column, float(f.threshold)) for f in factors if f.threshold is not None)


def lesion_level(lesions: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Return the ``lesion_models`` and ``lesion_models_info`` entries of results.json.

    See :func:`lesion_level_results`.

    Parameters
    ----------
    lesions : DataFrame
        Analysed lesions.
    settings : Settings
        ``[risk_factors] lesion`` and ``[lesion_models]``.

    Returns
    -------
    dict of str to Any
        The two results.json entries.
    """
    return lesion_level_results(lesions, settings).json_entries()


# -----------------------------------------------------------------------------------------------------------
# patient level


def km_step_curve(km: Any) -> StepCurve:
    """Return a Kaplan-Meier fit (:func:`pofa.stats.survival.kaplan_meier`) as a typed step curve.

    Parameters
    ----------
    km : KaplanMeier
        The fit.

    Returns
    -------
    StepCurve
        Times, survival, pointwise band, numbers at risk and censored, starting at 1.
    """
    last = float(km.times[-1]) if len(km.times) else 0.0
    return StepCurve(km.times, km.survival, km.ci_low, km.ci_high, km.n_risk, km.n_censor, 1.0, last,
                     str(km.ci_method))


def _km_summary(endpoint: str, time: np.ndarray, event: np.ndarray, settings: Settings) -> KaplanMeierSummary:
    km = kaplan_meier(time, event, ci_method=settings.survival.ci_method)
    med = km.median()
    return KaplanMeierSummary(endpoint, int(km.n), int(np.sum(event)), _f(med.estimate), _f(med.ci_low),
                              _f(med.ci_high), str(settings.survival.ci_method), med.reason,
                              tuple(_landmark(t, e) for t, e in
                                    km.landmarks(settings.survival.landmarks_months).items()),
                              km.method, km_step_curve(km))


def survival_results(patients: pd.DataFrame, settings: Settings) -> SurvivalResults:
    """Estimate PFS and OS (Kaplan-Meier medians with CI, landmark survival, the curves) and median follow-up.

    Kaplan-Meier equals R ``survival::survfit`` (median as ``quantile.survfit``); follow-up by reverse
    Kaplan-Meier (R ``quantile(survfit(Surv(time, 1 - event) ~ 1), 0.5)``).

    Parameters
    ----------
    patients : DataFrame
        Analysed patients (``pfs_months``, ``pfs_event``, ``os_months``, ``os_event``).
    settings : Settings
        ``[survival]``.

    Returns
    -------
    SurvivalResults
        The PFS and OS summaries and the median follow-up.
    """
    eps = {ep: _km_summary(ep, patients[f"{ep}_months"].to_numpy(float),
                           patients[f"{ep}_event"].to_numpy(int), settings) for ep in ("pfs", "os")}
    fu = median_follow_up(patients["os_months"].to_numpy(float), patients["os_event"].to_numpy(int),
                          ci_method=settings.survival.ci_method)
    return SurvivalResults(eps["pfs"], eps["os"],
                           FollowUp(_f(fu.estimate), _f(fu.ci_low), _f(fu.ci_high), fu.method, fu.reason))


def survival(patients: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Return the ``survival`` and ``followup`` entries of results.json (see :func:`survival_results`).

    Parameters
    ----------
    patients : DataFrame
        Analysed patients.
    settings : Settings
        ``[survival]``.

    Returns
    -------
    dict of str to Any
        The two results.json entries.
    """
    return survival_results(patients, settings).json_entries()


def _as_covariate(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values) or str(values.dtype) == "boolean":
        return values.astype("float64")
    return values


def _ph_check(fit: Any, endpoint: str, term: str) -> PHCheck:
    """cox.zph's global test, or "not estimable" where R refuses it (a singular or non-finite fit)."""
    singular = (not np.all(np.isfinite(fit.coef)) or not np.all(np.isfinite(fit.std_err))
                or not np.all(np.isfinite(fit.covariance))
                or np.linalg.matrix_rank(np.atleast_2d(fit.covariance)) < len(fit.coef))
    reason = ""
    if not singular:
        try:
            ph = proportional_hazards_test(fit)
        except (EstimationError, np.linalg.LinAlgError) as exc:
            reason = f"not estimable: {exc}"
        else:
            stat = ph.global_test.statistic
            if np.isfinite(stat) and not (stat <= 1e-12 and ph.global_test.p >= 1 - 1e-12):
                return PHCheck(endpoint, term, float(stat), int(ph.global_test.df), float(ph.global_test.p),
                               ph.method)
            reason = ("not estimable: the fit is singular (the score test is degenerate; "
                      "R cox.zph refuses it)")
    else:
        reason = "not estimable: the Cox fit is singular (an infinite or undefined coefficient)"
    return PHCheck(endpoint, term, math.nan, None, math.nan,
                   "Proportional-hazards score test, g(t) = km (survival::cox.zph, survival 3.x)", reason)


def _group_curves(time: np.ndarray, event: np.ndarray, x: np.ndarray, label: str,
                  settings: Settings) -> tuple[GroupCurve, ...]:
    out = []
    for value in (True, False):
        sel = (x == 1.0) if value else (x == 0.0)
        if not sel.any():
            return ()
        km = kaplan_meier(time[sel], event[sel], ci_method=settings.survival.ci_method)
        if label.startswith("Any lesion "):
            text = label if value else "No lesion " + label[len("Any lesion "):]
        else:
            text = f"{label}: {'yes' if value else 'no'}"
        out.append(GroupCurve(value, text, int(sel.sum()), int(event[sel].sum()), km_step_curve(km)))
    return tuple(out)


def patient_level_results(patients: pd.DataFrame, lesions: pd.DataFrame, settings: Settings) -> PatientModels:
    """Estimate hazard ratios, log-rank p and PH tests of each patient term for PFS and OS.

    Hazard ratios by Cox regression with Efron ties and Wald CI (equals R
    ``survival::coxph(..., ties = "efron")``), log-rank p (R ``survival::survdiff``), the PH test
    (R ``survival::cox.zph``) and the Kaplan-Meier curves of yes/no terms.

    A numeric term (a patient column such as ``age``) gives a hazard ratio per declared unit step
    (``[covariates.age] step``, default 1), as R ``coxph(Surv(t, e) ~ I(age / step))``.

    Parameters
    ----------
    patients, lesions : DataFrame
        Analysed tables.
    settings : Settings
        ``[risk_factors] patient``, ``[survival]`` and the declared covariates.

    Returns
    -------
    PatientModels
        One row per endpoint and term, the log-rank method, PH checks and the multivariable model.

    Raises
    ------
    SettingsError
        When a term names a missing or text column.
    """
    terms = [PatientTerm.parse(t) for t in settings.risk_factors.patient]
    rows: list[CoxRow] = []
    checks: list[PHCheck] = []
    multi: list[MultiCoxRow] = []
    steps = {t.text: _step_of(t, settings) for t in terms}
    values = {t.text: _as_covariate(t.values(patients, lesions)) for t in terms}
    for ep in ("pfs", "os"):
        time_all = patients[f"{ep}_months"]
        event_all = patients[f"{ep}_event"]
        for t in terms:
            x = values[t.text]
            ok = x.notna() & time_all.notna()
            xs = x[ok].astype("float64")
            binary = set(pd.unique(xs)) <= {0.0, 1.0}
            step = 1.0 if binary else steps[t.text]
            label = patient_term_label(t, settings, step)
            hr = ci_low = ci_high = p = logrank_p = math.nan
            reasons: list[str] = []
            tt, ee = time_all[ok].to_numpy(float), event_all[ok].to_numpy(int)
            try:
                fit = cox_ph(tt, ee, pd.DataFrame({t.text: xs / step}))
                est = fit.hazard_ratios[0]
                hr, ci_low, ci_high, p = _f(est.estimate), _f(est.ci_low), _f(est.ci_high), _f(est.p)
                checks.append(_ph_check(fit, ep, t.text))
            except (EstimationError, PofaError, np.linalg.LinAlgError, ValueError) as exc:
                reasons.append(f"Cox model not estimable: {exc}")
            groups: tuple[GroupCurve, ...] = ()
            if binary:
                groups = _group_curves(tt, ee, xs.to_numpy(), label, settings)
                try:
                    logrank_p = _f(log_rank_test(tt, ee, xs.to_numpy()).p)
                except (EstimationError, PofaError, ValueError) as exc:
                    reasons.append(f"log-rank test not possible: {exc}")
            else:
                per = f"per {step:g} units" if step != 1 else "per unit"
                reasons.append(f"{t.text!r} is not a yes/no term: the hazard ratio is {per}; logrank_p "
                               "and n_with apply to yes/no terms only")
            rows.append(CoxRow(ep, t.text, label, hr, ci_low, ci_high, p, logrank_p,
                               int((xs == 1).sum()) if binary else None, int(ok.sum()), binary, step,
                               "; ".join(r.rstrip(".") for r in reasons), groups))
        if len(terms) > 1:
            frame = pd.DataFrame(values)
            ok = frame.notna().all(axis=1)
            design = frame[ok].astype("float64")
            for t in terms:
                if not (set(pd.unique(design[t.text])) <= {0.0, 1.0}):
                    design[t.text] = design[t.text] / steps[t.text]
            try:
                fit = cox_ph(time_all[ok].to_numpy(float), event_all[ok].to_numpy(int), design)
                for name, est in zip(fit.coef_names, fit.hazard_ratios, strict=True):
                    multi.append(MultiCoxRow(ep, name, _f(est.estimate), _f(est.ci_low), _f(est.ci_high),
                                             _f(est.p), int(ok.sum())))
            except (EstimationError, PofaError, np.linalg.LinAlgError, ValueError) as exc:
                multi.append(MultiCoxRow(ep, None, math.nan, math.nan, math.nan, math.nan, None,
                                         f"multivariable Cox model not estimable: {exc}"))
    return PatientModels(tuple(rows), COX_METHOD, "log-rank test (survival::survdiff, rho = 0)",
                         tuple(checks), tuple(multi))


def patient_level(patients: pd.DataFrame, lesions: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Return the ``patient_models`` and ``patient_models_info`` entries of results.json.

    See :func:`patient_level_results`.

    Parameters
    ----------
    patients : DataFrame
        Analysed patients.
    lesions : DataFrame
        Analysed lesions.
    settings : Settings
        ``[risk_factors] patient``, ``[survival]`` and the declared covariates.

    Returns
    -------
    dict of str to Any
        The two results.json entries.
    """
    return patient_level_results(patients, lesions, settings).json_entries()


# -----------------------------------------------------------------------------------------------------------
# competing risks

_CIF_METHOD = "Cumulative incidence (Aalen-Johansen) with Gray's test (cmprsk::cuminc)"


def _cif_block(time: np.ndarray, cause: np.ndarray, causes: Mapping[int, str], landmarks: Sequence[float],
               group: np.ndarray | None = None, group_name: str | None = None,
               term: str | None = None) -> IncidenceBlock:
    """One cmprsk::cuminc fit; when it cannot be estimated (e.g. no failure of any cause), no causes and the
    reason."""
    try:
        cr = cumulative_incidence(time, cause, group=group)
    except (EstimationError, PofaError, ValueError) as exc:
        return IncidenceBlock(len(time), _CIF_METHOD, (), f"not estimable: {exc}", term)
    entries: list[IncidenceCause] = []
    for code, label in causes.items():
        if code not in cr.causes:
            continue
        curves = tuple(
            IncidenceCurve(None if c.group is None else str(c.group), int(c.n), int(c.n_events),
                           c.ci_method,
                           tuple(_landmark(t, e) for t, e in c.landmarks(landmarks).items()),
                           StepCurve(c.times, c.estimate, c.ci_low, c.ci_high, np.empty(0), np.empty(0), 0.0,
                                     float(c.last_time), c.ci_method))
            for c in cr.curves if c.cause == code)
        gray = None
        if group is not None and len(cr.groups) > 1:
            g = cr.test(code)
            gray = GrayResult(_f(g.statistic), g.df, _f(g.p), group_name, g.reason)
        entries.append(IncidenceCause(label, code, curves, gray))
    return IncidenceBlock(int(cr.n), cr.method, tuple(entries), "", term)


def competing_risks_results(patients: pd.DataFrame, lesions: pd.DataFrame,
                            settings: Settings) -> CompetingRisksResults:
    """Estimate cumulative incidence of local vs de novo failure (patients) and of local failure (lesions).

    Patients: cause of first progression (local component, strictly de novo) with death without progression
    and progression of unknown pattern as competing causes, overall and by the first patient term, with Gray's
    test (by group only when that term is yes/no). Lesions: local failure with death competing, by each
    thresholded or yes/no lesion factor (continuous factors have no groups; lesions with a blank value are in
    neither group); these intervals and tests treat lesions as independent (the lesions of one patient are
    not), so read them as descriptive. Equals R ``cmprsk::cuminc``.

    Parameters
    ----------
    patients, lesions : DataFrame
        Analysed tables (``fp_months``/``fp_status``, ``lf_months``/``lf_status``).
    settings : Settings
        Risk factors and landmarks.

    Returns
    -------
    CompetingRisksResults
        The patient fits (overall and by group) and the lesion fits (overall and by factor).
    """
    landmarks = settings.survival.landmarks_months
    t = patients["fp_months"].to_numpy(float)
    c = patients["fp_status"].to_numpy(int)
    overall = _cif_block(t, c, PATIENT_CAUSES, landmarks)
    by_group = None
    terms = [PatientTerm.parse(x) for x in settings.risk_factors.patient]
    if terms:
        g = _as_covariate(terms[0].values(patients, lesions))
        ok = g.notna().to_numpy()
        if set(pd.unique(g[ok].astype("float64"))) <= {0.0, 1.0} and ok.sum() > 0:
            by_group = _cif_block(t[ok], c[ok], PATIENT_CAUSES, landmarks,
                                  g[ok].astype("float64").astype(int).to_numpy(), terms[0].text)
    known = lesions["lf_status"].notna() & lesions["lf_months"].notna()
    lt = lesions.loc[known, "lf_months"].to_numpy(float)
    lc = lesions.loc[known, "lf_status"].astype("int64").to_numpy()
    by: list[IncidenceBlock] = []
    from pofa.stats.factors import parse_factor

    for text in settings.risk_factors.lesion:
        f = parse_factor(text)
        if f.scale is not None or f.column not in lesions.columns:
            continue
        try:
            col = lesions.loc[known, f.column].astype("float64")
        except (TypeError, ValueError):
            continue  # a text column has no yes/no groups: no by-factor block (the models say why)
        if f.threshold is not None:
            # a lesion with a blank value is in neither group (NaN >= x would put it in the "no" group)
            flag = (col >= f.threshold).astype("float64").where(col.notna())
        elif set(pd.unique(col.dropna())) <= {0.0, 1.0}:
            flag = col  # a yes/no column (extranodal, bridging_rt ...)
        else:
            continue  # a continuous term has no groups
        ok = flag.notna().to_numpy()
        by.append(_cif_block(lt[ok], lc[ok], LESION_CAUSES, landmarks, flag[ok].astype(int).to_numpy(),
                             f.name, term=f.name))
    later = 0
    if "local_failure" in lesions.columns:
        at_first = lesions["local_failure"].astype("Float64").fillna(0).eq(1)
        later = int((lesions["lf_status"].astype("Float64").fillna(0).eq(1) & ~at_first).sum())
    return CompetingRisksResults(overall, by_group, _cif_block(lt, lc, LESION_CAUSES, landmarks),
                                 "lesions treated as independent: intervals and Gray's test are descriptive "
                                 "(lesions of one patient are correlated)", tuple(by), later)


def competing_risks(patients: pd.DataFrame, lesions: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Return the ``competing_risks`` entry of results.json (see :func:`competing_risks_results`).

    Parameters
    ----------
    patients : DataFrame
        Analysed patients.
    lesions : DataFrame
        Analysed lesions.
    settings : Settings
        Risk factors and landmarks.

    Returns
    -------
    dict of str to Any
        The results.json entry.
    """
    return competing_risks_results(patients, lesions, settings).json_entries()


# -----------------------------------------------------------------------------------------------------------
# cut-points


def cutpoints_results(patients: pd.DataFrame, settings: Settings) -> Cutpoints:
    """Find exploratory cut-points of largest diameter and highest SUVmax for PFS.

    Maximally selected log-rank statistics with the Lausen-Schumacher corrected p; equals R
    ``maxstat::maxstat.test(..., smethod = "LogRank", pmethod = "Lau92")`` and ``pmethod = "Lau94"``.

    Parameters
    ----------
    patients : DataFrame
        Analysed patients (``max_diameter_cm``, ``max_suvmax``, PFS).
    settings : Settings
        Unused today (kept for a uniform step signature).

    Returns
    -------
    Cutpoints
        One row per feature present (with the reason when not estimable).
    """
    rows: list[Cutpoint] = []
    for col in ("max_diameter_cm", "max_suvmax"):
        if col not in patients.columns:
            continue
        ok = patients[col].notna()
        try:
            r = maxstat_cutpoint(patients.loc[ok, "pfs_months"].to_numpy(float),
                                 patients.loc[ok, "pfs_event"].to_numpy(int),
                                 patients.loc[ok, col].to_numpy(float))
        except (EstimationError, PofaError, ValueError) as exc:
            rows.append(Cutpoint(col, "pfs", EXPLORATORY_NOTE, math.nan, math.nan, math.nan, math.nan,
                                 int(ok.sum()), None, None, "", f"not estimable: {exc}"))
            continue
        rows.append(Cutpoint(col, "pfs", EXPLORATORY_NOTE, _f(r.cutpoint), _f(r.statistic), _f(r.p_lau92),
                             _f(r.p_lau94), r.n, r.n_low, r.n_high, r.method))
    return Cutpoints(tuple(rows))


def cutpoints(patients: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Return the ``cutpoints`` entry of results.json (see :func:`cutpoints_results`).

    Parameters
    ----------
    patients : DataFrame
        Analysed patients.
    settings : Settings
        Unused today (kept for a uniform step signature).

    Returns
    -------
    dict of str to Any
        The results.json entry.
    """
    return cutpoints_results(patients, settings).json_entries()


def study_results(patients: pd.DataFrame, lesions: pd.DataFrame, settings: Settings) -> StudyResults:
    """Compute every statistic of the analysis, typed.

    Parameters
    ----------
    patients, lesions : DataFrame
        Analysed tables.
    settings : Settings
        The study's settings (risk factors, lesion models, survival).

    Returns
    -------
    StudyResults
        Lesion models, survival, patient models, competing risks and cut-points.
    """
    return StudyResults(lesion_level_results(lesions, settings), survival_results(patients, settings),
                        patient_level_results(patients, lesions, settings),
                        competing_risks_results(patients, lesions, settings),
                        cutpoints_results(patients, settings))


def study_statistics(patients: pd.DataFrame, lesions: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Compute every statistic of the analysis, keyed as in results.json.

    Parameters
    ----------
    patients, lesions : DataFrame
        Analysed tables.
    settings : Settings
        The study's settings.

    Returns
    -------
    dict of str to Any
        Every results.json entry of :func:`study_results`.
    """
    return study_results(patients, lesions, settings).json_entries()
