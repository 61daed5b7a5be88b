"""The statistics of one study analysis: the ``lesion_models``, ``survival``, ``followup``,
``patient_models``, ``competing_risks`` and ``cutpoints`` entries of results.json.

Each function takes the analysed tables (:class:`pofa.analysis.AnalysisResult`'s ``patients`` and
``lesions``, with the outcome and feature columns of :mod:`pofa.classify` and :mod:`pofa.features`) and
returns plain JSON (numbers, text, lists, mappings; ``None`` where not estimable, with the reason beside it).
The numbers come from the estimators of this package, each tested against R (docs/statistics-lesion.md,
docs/statistics-survival.md); tests/test_pipeline_vs_r.py compares a whole results.json with R
(docs/statistics.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pofa.errors import EstimationError, PofaError, SettingsError
from pofa.settings import Settings
from pofa.stats.competing import cumulative_incidence
from pofa.stats.cox import COX_METHOD, cox_ph, proportional_hazards_test
from pofa.stats.cutpoint import EXPLORATORY_NOTE, maxstat_cutpoint
from pofa.stats.lesion_level import lesion_models
from pofa.stats.results import Estimate, json_number
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
    """A patient-level term: ``any COLUMN>=X`` over the patient's lesions, or a patient covariate column."""

    text: str
    lesion_column: str | None
    threshold: float | None

    @classmethod
    def parse(cls, text: str) -> PatientTerm:
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
        """The term per patient (aligned on ``patients``); NA where unknown.

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


def _estimate_json(e: Estimate, value_key: str = "estimate") -> dict[str, Any]:
    out: dict[str, Any] = {value_key: _num(e.estimate), "ci_low": _num(e.ci_low), "ci_high": _num(e.ci_high)}
    if e.reason:
        out["reason"] = e.reason
    return out


# -----------------------------------------------------------------------------------------------------------
# lesion level


def lesion_level(lesions: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Odds ratios of local failure at first progression: logistic and GEE, univariable and multivariable.

    Lesions of patients whose pattern is unknown (progression without failure rows) have no outcome and are
    left out (counted in ``n_lesions_unknown_outcome``); every other lesion counts (no failure = 0). Rows of
    both models and both methods are always present: ``None`` where not estimable, the reason in
    ``lesion_models_info.notes``; with a single risk factor the multivariable rows repeat the univariable
    ones (one model).
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
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    descriptions: dict[str, str] = {}
    for m in models:
        rows.extend(m.to_rows())
        descriptions[m.method] = m.method_description
        for n in m.notes:
            note = f"{m.model} {m.method}: {n}"
            if note not in notes:
                notes.append(note)
    if len(settings.risk_factors.lesion) == 1:
        # results.json always has univariable and multivariable rows; with one factor they are one model
        rows.extend({**r, "model": "multivariable"} for r in list(rows))
        notes.append("one risk factor: the multivariable model is the univariable model")
    n_patients = int(known["patient_id"].nunique())
    if n_patients < FEW_CLUSTERS:
        notes.append(f"only {n_patients} patients (< {FEW_CLUSTERS}): robust GEE standard errors may be too "
                     "small; consider [lesion_models] small_sample = true (Mancl-DeRouen bias-reduced "
                     "sandwich)")
    return {"lesion_models": rows,
            "lesion_models_info": {"outcome": "local failure at first progression",
                                   "n_lesions": len(known), "n_lesions_unknown_outcome": int(len(lesions) -
                                                                                           len(known)),
                                   "n_patients": n_patients, "methods": descriptions, "notes": notes}}


# -----------------------------------------------------------------------------------------------------------
# patient level


def _km_json(time: np.ndarray, event: np.ndarray, settings: Settings) -> dict[str, Any]:
    km = kaplan_meier(time, event, ci_method=settings.survival.ci_method)
    med = km.median()
    out: dict[str, Any] = {"n": int(km.n), "events": int(np.sum(event)), "median_months": _num(med.estimate),
                           "ci_low": _num(med.ci_low), "ci_high": _num(med.ci_high),
                           "ci_method": settings.survival.ci_method}
    if med.reason:
        out["reason"] = med.reason
    out["landmarks"] = [{"months": t, **_estimate_json(e, "survival")}
                        for t, e in km.landmarks(settings.survival.landmarks_months).items()]
    out["method"] = km.method
    return out


def survival(patients: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """PFS and OS (Kaplan-Meier medians with CI, landmark survival) and median follow-up (reverse KM)."""
    out: dict[str, Any] = {}
    for ep in ("pfs", "os"):
        out[ep] = _km_json(patients[f"{ep}_months"].to_numpy(float), patients[f"{ep}_event"].to_numpy(int),
                           settings)
    fu = median_follow_up(patients["os_months"].to_numpy(float), patients["os_event"].to_numpy(int),
                          ci_method=settings.survival.ci_method)
    followup = {"median_months": _num(fu.estimate), "ci_low": _num(fu.ci_low), "ci_high": _num(fu.ci_high),
                "method": fu.method}
    if fu.reason:
        followup["reason"] = fu.reason
    return {"survival": out, "followup": followup}


def _as_covariate(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values) or str(values.dtype) == "boolean":
        return values.astype("float64")
    return values


def patient_level(patients: pd.DataFrame, lesions: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Hazard ratios (Cox, Efron ties, Wald CI) and log-rank p of each patient term for PFS and OS."""
    terms = [PatientTerm.parse(t) for t in settings.risk_factors.patient]
    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    multi: list[dict[str, Any]] = []
    values = {t.text: _as_covariate(t.values(patients, lesions)) for t in terms}
    for ep in ("pfs", "os"):
        time_all = patients[f"{ep}_months"]
        event_all = patients[f"{ep}_event"]
        for t in terms:
            x = values[t.text]
            ok = x.notna() & time_all.notna()
            row: dict[str, Any] = {"endpoint": ep, "term": t.text, "hr": None, "ci_low": None,
                                   "ci_high": None, "p": None, "logrank_p": None, "n_with": None}
            binary = set(pd.unique(x[ok].astype("float64"))) <= {0.0, 1.0}
            if binary:
                row["n_with"] = int((x[ok].astype("float64") == 1).sum())
            try:
                fit = cox_ph(time_all[ok].to_numpy(float), event_all[ok].to_numpy(int),
                             pd.DataFrame({t.text: x[ok].astype("float64")}))
                hr = fit.hazard_ratios[0]
                row.update(hr=_num(hr.estimate), ci_low=_num(hr.ci_low), ci_high=_num(hr.ci_high),
                           p=_num(hr.p))
                ph = proportional_hazards_test(fit)
                checks.append({"endpoint": ep, "term": t.text, "chisq": _num(ph.global_test.statistic),
                               "df": ph.global_test.df, "p": _num(ph.global_test.p), "method": ph.method})
            except (EstimationError, PofaError, np.linalg.LinAlgError, ValueError) as exc:
                row["reason"] = f"Cox model not estimable: {exc}"
            reasons = [row.pop("reason")] if "reason" in row else []
            if binary:
                try:
                    lr = log_rank_test(time_all[ok].to_numpy(float), event_all[ok].to_numpy(int),
                                       x[ok].astype("float64").to_numpy())
                    row["logrank_p"] = _num(lr.p)
                except (EstimationError, PofaError, ValueError) as exc:
                    reasons.append(f"log-rank test not possible: {exc}")
            else:
                reasons.append(f"{t.text!r} is not a yes/no term: the hazard ratio is per unit; logrank_p "
                               "and n_with apply to yes/no terms only")
            if reasons:
                row["reason"] = "; ".join(r.rstrip(".") for r in reasons)
            row["n"] = int(ok.sum())
            rows.append(row)
        if len(terms) > 1:
            frame = pd.DataFrame(values)
            ok = frame.notna().all(axis=1)
            try:
                fit = cox_ph(time_all[ok].to_numpy(float), event_all[ok].to_numpy(int),
                             frame[ok].astype("float64"))
                for name, hr in zip(fit.coef_names, fit.hazard_ratios, strict=True):
                    multi.append({"endpoint": ep, "term": name, "hr": _num(hr.estimate),
                                  "ci_low": _num(hr.ci_low), "ci_high": _num(hr.ci_high), "p": _num(hr.p),
                                  "n": int(ok.sum())})
            except (EstimationError, PofaError, np.linalg.LinAlgError, ValueError) as exc:
                multi.append({"endpoint": ep, "reason": f"multivariable Cox model not estimable: {exc}"})
    # keep exactly the documented keys in patient_models; n goes to the info block
    info_n = [{"endpoint": r["endpoint"], "term": r["term"], "n": r.pop("n")} for r in rows]
    return {"patient_models": rows,
            "patient_models_info": {"method": COX_METHOD,
                                    "logrank": "log-rank test (survival::survdiff, rho = 0)",
                                    "n": info_n, "ph_checks": checks, "multivariable": multi}}


# -----------------------------------------------------------------------------------------------------------
# competing risks


def _cif_json(time: np.ndarray, cause: np.ndarray, causes: Mapping[int, str], landmarks: Sequence[float],
              group: np.ndarray | None = None, group_name: str | None = None) -> dict[str, Any]:
    """One cmprsk::cuminc fit as JSON; when it cannot be estimated (e.g. no failure of any cause), an empty
    ``causes`` list with the reason."""
    try:
        cr = cumulative_incidence(time, cause, group=group)
    except (EstimationError, PofaError, ValueError) as exc:
        return {"n": len(time), "method": "Cumulative incidence (Aalen-Johansen) with Gray's test "
                "(cmprsk::cuminc)", "causes": [], "reason": f"not estimable: {exc}"}
    out: dict[str, Any] = {"n": int(cr.n), "method": cr.method, "causes": []}
    for code, label in causes.items():
        if code not in cr.causes:
            continue
        entry: dict[str, Any] = {"cause": label, "code": code, "curves": []}
        for curve in cr.curves:
            if curve.cause != code:
                continue
            entry["curves"].append({
                "group": None if curve.group is None else str(curve.group),
                "n": int(curve.n), "events": int(curve.n_events), "ci_method": curve.ci_method,
                "landmarks": [{"months": t, **_estimate_json(e, "incidence")}
                              for t, e in curve.landmarks(landmarks).items()]})
        if group is not None and len(cr.groups) > 1:
            g = cr.test(code)
            entry["gray"] = {"statistic": _num(g.statistic), "df": g.df, "p": _num(g.p), "by": group_name}
            if g.reason:
                entry["gray"]["reason"] = g.reason
        out["causes"].append(entry)
    return out


def competing_risks(patients: pd.DataFrame, lesions: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Cumulative incidence of local vs de novo failure (patients) and of local failure (lesions).

    Patients: cause of first progression (local component, strictly de novo) with death without progression
    and progression of unknown pattern as competing causes, overall and by the first patient term, with Gray's
    test (by_group only when that term is yes/no). Lesions: local failure with death competing, by each
    thresholded or yes/no lesion factor (continuous factors have no groups; lesions with a blank value are in
    neither group); these intervals and tests treat lesions as independent (the lesions of one patient are
    not), so read them as descriptive. A block that cannot be estimated (no failure of any cause) has no
    ``causes`` and a ``reason``.
    """
    landmarks = settings.survival.landmarks_months
    t = patients["fp_months"].to_numpy(float)
    c = patients["fp_status"].to_numpy(int)
    out: dict[str, Any] = {"patients": {"overall": _cif_json(t, c, PATIENT_CAUSES, landmarks)}}
    terms = [PatientTerm.parse(x) for x in settings.risk_factors.patient]
    if terms:
        g = _as_covariate(terms[0].values(patients, lesions))
        ok = g.notna().to_numpy()
        if set(pd.unique(g[ok].astype("float64"))) <= {0.0, 1.0} and ok.sum() > 0:
            out["patients"]["by_group"] = _cif_json(t[ok], c[ok], PATIENT_CAUSES, landmarks,
                                                    g[ok].astype("float64").astype(int).to_numpy(),
                                                    terms[0].text)
    known = lesions["lf_status"].notna() & lesions["lf_months"].notna()
    lt = lesions.loc[known, "lf_months"].to_numpy(float)
    lc = lesions.loc[known, "lf_status"].astype("int64").to_numpy()
    lesion_out: dict[str, Any] = {"overall": _cif_json(lt, lc, LESION_CAUSES, landmarks),
                                  "note": "lesions treated as independent: intervals and Gray's test are "
                                          "descriptive (lesions of one patient are correlated)"}
    by: list[dict[str, Any]] = []
    from pofa.stats.factors import parse_factor

    for text in settings.risk_factors.lesion:
        f = parse_factor(text)
        if f.scale is not None or f.column not in lesions.columns:
            continue
        try:
            col = lesions.loc[known, f.column].astype("float64")
        except (TypeError, ValueError):
            continue
        if f.threshold is not None:
            # a lesion with a blank value is in neither group (NaN >= x would put it in the "no" group)
            flag = (col >= f.threshold).astype("float64").where(col.notna())
        elif set(pd.unique(col.dropna())) <= {0.0, 1.0}:
            flag = col  # a yes/no column (extranodal, bridging_rt ...)
        else:
            continue  # a continuous term has no groups
        ok = flag.notna().to_numpy()
        by.append({"term": f.name, **_cif_json(lt[ok], lc[ok], LESION_CAUSES, landmarks,
                                               flag[ok].astype(int).to_numpy(), f.name)})
    lesion_out["by_factor"] = by
    out["lesions"] = lesion_out
    return {"competing_risks": out}


# -----------------------------------------------------------------------------------------------------------
# cut-points


def cutpoints(patients: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Exploratory cut-points (maximally selected log-rank statistics) of largest diameter and highest SUVmax
    for PFS, with the Lausen-Schumacher corrected p (maxstat::maxstat.test, Lau92 and Lau94)."""
    rows: list[dict[str, Any]] = []
    for col in ("max_diameter_cm", "max_suvmax"):
        if col not in patients.columns:
            continue
        ok = patients[col].notna()
        entry: dict[str, Any] = {"feature": col, "endpoint": "pfs", "note": EXPLORATORY_NOTE,
                                 "cutpoint": None, "statistic": None, "p_lau92": None, "p_lau94": None,
                                 "n": int(ok.sum()), "n_low": None, "n_high": None}
        try:
            r = maxstat_cutpoint(patients.loc[ok, "pfs_months"].to_numpy(float),
                                 patients.loc[ok, "pfs_event"].to_numpy(int),
                                 patients.loc[ok, col].to_numpy(float))
            entry.update(cutpoint=_num(r.cutpoint), statistic=_num(r.statistic), p_lau92=_num(r.p_lau92),
                         p_lau94=_num(r.p_lau94), n=r.n, n_low=r.n_low, n_high=r.n_high, method=r.method)
        except (EstimationError, PofaError, ValueError) as exc:
            entry["reason"] = f"not estimable: {exc}"
        rows.append(entry)
    return {"cutpoints": rows}


def study_statistics(patients: pd.DataFrame, lesions: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Every statistic of the analysis, keyed as in results.json."""
    out: dict[str, Any] = {}
    out.update(lesion_level(lesions, settings))
    out.update(survival(patients, settings))
    out.update(patient_level(patients, lesions, settings))
    out.update(competing_risks(patients, lesions, settings))
    out.update(cutpoints(patients, settings))
    return out

