"""What bridging radiotherapy did: local failure of irradiated lesions, in-field failures, dose-response, PFS.

Every estimate equals an R function (tests/reference/radiotherapy/reference.R):

- local failure of irradiated vs unirradiated lesions: odds ratio of ``bridging_rt`` by logistic regression
  (R ``glm(binomial)``) and GEE with patients as clusters (``geepack::geeglm(corstr = "exchangeable")``),
  unadjusted and adjusted for the lesion risk factors (``[risk_factors] lesion``);
- in-field failure rate among irradiated lesions with the exact Clopper-Pearson 95% CI (``binom.test``);
- dose-response: odds ratio of local failure per Gy of EQD2 among irradiated lesions (``glm`` and ``geeglm``);
- PFS by bridging RT (a patient with at least one irradiated lesion): Kaplan-Meier medians
  (``survfit``), log-rank test (``survdiff``) and Cox hazard ratio (``coxph``, Efron ties).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pofa.errors import PofaError
from pofa.rt.fractionation import eqd2
from pofa.schema import RT_FIELD_CLASSES
from pofa.settings import Settings
from pofa.stats import distributions as _dist
from pofa.stats.factors import build_design
from pofa.stats.gee import fit_gee
from pofa.stats.logistic import CoefficientTable, fit_logistic

# The result types live with pofa's other typed results (the report reads them from pofa.stats.results).
from pofa.stats.results_radiotherapy import (
    DoseCurve,
    DoseLevel,
    OddsRatio,
    PfsByRt,
    Proportion,
    RadiotherapyResults,
)

__all__ = ["DoseCurve", "DoseLevel", "OddsRatio", "PfsByRt", "Proportion", "RadiotherapyResults",
           "clopper_pearson", "dose_response", "dose_response_curve",
           "local_failure_by_rt", "pfs_by_rt", "radiotherapy_statistics"]


def clopper_pearson(events: int, n: int, definition: str = "", conf_level: float = 0.95) -> Proportion:
    """A proportion with the exact Clopper-Pearson interval, equal to R ``binom.test(events, n)$conf.int``.

    Parameters
    ----------
    events, n : int
        Count and denominator (0 <= events <= n).
    definition : str
        What was counted.
    conf_level : float
        Confidence level.

    Returns
    -------
    Proportion
        Estimate and limits (beta quantiles; 0 and 1 at the edges).

    Raises
    ------
    ValueError
        When the counts are inconsistent.
    """
    if not 0 <= events <= n:
        raise ValueError(f"need 0 <= events <= n; got {events}, {n}")
    if n == 0:
        return Proportion(0, 0, math.nan, math.nan, math.nan, definition)
    a = (1.0 - conf_level) / 2.0
    lo = 0.0 if events == 0 else float(_dist.beta_ppf(a, events, n - events + 1))
    hi = 1.0 if events == n else float(_dist.beta_ppf(1.0 - a, events + 1, n - events))
    return Proportion(int(events), int(n), events / n, lo, hi, definition)


def _exp(x: float) -> float:
    if math.isnan(x):
        return math.nan
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _odds_ratio(table: CoefficientTable, term: str, method: str, adjusted: tuple[str, ...], n: int,
                n_patients: int) -> OddsRatio:
    i = table.names.index(term)
    if not table.converged:
        return OddsRatio(term, method, adjusted, math.nan, math.nan, math.nan, math.nan, n, n_patients,
                         table.notes)
    return OddsRatio(term, method, adjusted, _exp(table.coef[i]), _exp(table.ci_low[i]),
                     _exp(table.ci_high[i]), table.p[i], n, n_patients, table.notes)


def _models(lesions: pd.DataFrame, term: str, adjust: tuple[str, ...], small_sample: bool) -> list[OddsRatio]:
    from pofa.stats.factors import estimability_problems
    from pofa.stats.separation import check_separation

    out: list[OddsRatio] = []
    for extra in ((), adjust) if adjust else ((),):
        design = build_design(lesions, [term, *extra], outcome="local_failure", cluster="patient_id")
        n, k = design.n_lesions, design.n_patients
        names = tuple(design.terms[1:])
        if not estimability_problems(design):
            sep = check_separation(design.X, design.y, design.columns)
            if sep.separated:
                for method in ("logistic", "gee"):
                    out.append(OddsRatio(design.terms[0], method, names, math.nan, math.nan, math.nan,
                                         math.nan, n, k, (sep.note(),)))
                continue
        out.append(_odds_ratio(fit_logistic(design), design.terms[0], "logistic", names, n, k))
        gee = fit_gee(design, small_sample=small_sample)
        out.append(_odds_ratio(gee, design.terms[0], "gee", names, n, k))
    return out


def local_failure_by_rt(lesions: pd.DataFrame, adjust: tuple[str, ...] = (),
                        small_sample: bool = False) -> tuple[OddsRatio, ...]:
    """Estimate odds ratios of local failure for irradiated vs unirradiated lesions.

    Parameters
    ----------
    lesions : pandas.DataFrame
        One row per lesion with ``patient_id``, ``local_failure`` (0/1), ``bridging_rt`` (yes/no) and the
        columns of ``adjust``.
    adjust : tuple of str
        Lesion risk factors to adjust for (the ``[risk_factors] lesion`` terms).
    small_sample : bool
        Mancl-DeRouen bias-reduced GEE sandwich.

    Returns
    -------
    tuple of OddsRatio
        Logistic (R glm) and GEE (R geeglm), unadjusted then adjusted.
    """
    return tuple(_models(lesions, "bridging_rt", adjust, small_sample))


def dose_response(lesions: pd.DataFrame, alpha_beta_gy: float = 10.0,
                  small_sample: bool = False) -> tuple[OddsRatio, ...]:
    """Estimate the odds ratio of local failure per Gy of EQD2 (irradiated lesions with a recorded course).

    Parameters
    ----------
    lesions : pandas.DataFrame
        With ``patient_id``, ``local_failure``, ``bridging_rt``, ``rt_dose_gy`` and ``rt_fractions``.
    alpha_beta_gy : float
        The alpha/beta ratio (Gy) of EQD2.
    small_sample : bool
        Mancl-DeRouen bias-reduced GEE sandwich.

    Returns
    -------
    tuple of OddsRatio
        Logistic (R glm) and GEE (R geeglm) of ``local_failure ~ eqd2_gy``.
    """
    irr = _with_eqd2(lesions, alpha_beta_gy)
    irr = irr[irr["eqd2_gy"].notna()]
    return tuple(_models(irr, "eqd2_gy", (), small_sample))


def dose_response_curve(lesions: pd.DataFrame, alpha_beta_gy: float = 10.0,
                        points: int = 100) -> tuple[tuple[DoseLevel, ...], DoseCurve | None]:
    """The dose-response figure's numbers: observed rates by EQD2 and the fitted logistic curve.

    Parameters
    ----------
    lesions : pandas.DataFrame
        With ``patient_id``, ``local_failure`` (known), ``bridging_rt``, ``rt_dose_gy`` and ``rt_fractions``.
    alpha_beta_gy : float
        The alpha/beta ratio (Gy) of EQD2.
    points : int
        Number of EQD2 values at which the curve is given.

    Returns
    -------
    tuple
        The rates at each distinct EQD2 (exact Clopper-Pearson CIs, R ``binom.test``) and the logistic
        curve of R ``glm(local_failure ~ eqd2_gy, binomial)`` (None when not estimable).
    """
    irr = _with_eqd2(lesions, alpha_beta_gy)
    irr = irr[irr["eqd2_gy"].notna() & irr["local_failure"].notna()]
    if irr.empty:
        return (), None
    dose = np.round(irr["eqd2_gy"].to_numpy(float), 6)
    failed = irr["local_failure"].astype(int).to_numpy()
    levels = np.unique(dose)
    rates = tuple(DoseLevel(float(lvl), clopper_pearson(int(failed[dose == lvl].sum()),
                                                        int((dose == lvl).sum())))
                  for lvl in levels)
    if levels.size < 2:
        return rates, None
    design = build_design(irr.assign(local_failure=failed), ["eqd2_gy"], outcome="local_failure",
                          cluster="patient_id")
    try:
        table = fit_logistic(design)
    except PofaError:
        return rates, None
    if not table.converged:
        return rates, None
    xs = np.linspace(float(levels.min()), float(levels.max()), points)
    prob = 1.0 / (1.0 + np.exp(-(table.coef[0] + table.coef[1] * xs)))
    return rates, DoseCurve(tuple(float(x) for x in xs), tuple(float(v) for v in prob))


def _with_eqd2(lesions: pd.DataFrame, alpha_beta_gy: float) -> pd.DataFrame:
    df = lesions[lesions["bridging_rt"].fillna(False).astype(bool)].copy()
    if {"rt_dose_gy", "rt_fractions"} <= set(df.columns):
        df["eqd2_gy"] = eqd2(df["rt_dose_gy"].to_numpy(float), df["rt_fractions"].to_numpy(float),
                             alpha_beta_gy)
    else:
        df["eqd2_gy"] = np.nan
    return df


def pfs_by_rt(time_months: np.ndarray, event: np.ndarray, rt: np.ndarray,
              ci_method: str = "log-log") -> PfsByRt:
    """PFS by bridging RT: Kaplan-Meier medians, log-rank test and Cox hazard ratio (RT vs no RT).

    Parameters
    ----------
    time_months, event : numpy.ndarray
        PFS time and event (progression or death) per patient.
    rt : numpy.ndarray of bool
        The patient had bridging RT.
    ci_method : str
        Confidence interval of the Kaplan-Meier curves (only the medians are kept).

    Returns
    -------
    PfsByRt
        Equal to R ``survfit``, ``survdiff`` and ``coxph`` (Efron).

    Raises
    ------
    pofa.errors.EstimationError
        When one of the groups is empty.
    """
    from pofa.stats.cox import cox_ph
    from pofa.stats.survival import kaplan_meier, log_rank_test_two_groups

    t = np.asarray(time_months, dtype=float)
    e = np.asarray(event, dtype=int)
    g = np.asarray(rt, dtype=bool)
    med = [kaplan_meier(t[m], e[m], ci_method=ci_method).median().estimate for m in (g, ~g)]
    lr = log_rank_test_two_groups(t, e, np.where(g, "rt", "no rt"))
    notes: list[str] = []
    try:
        fit = cox_ph(t, e, pd.DataFrame({"bridging_rt": g.astype(float)}))
        hr = fit.hazard_ratios[0]
        hr_vals = (hr.estimate, hr.ci_low, hr.ci_high, hr.p)
    except PofaError as exc:
        hr_vals = (math.nan,) * 4
        notes.append(f"Cox model not estimable: {exc}")
    return PfsByRt(int(g.sum()), int((~g).sum()), int(e[g].sum()), int(e[~g].sum()), float(med[0]),
                   float(med[1]), float(lr.chisq), float(lr.p), float(hr_vals[0]), float(hr_vals[1]),
                   float(hr_vals[2]), float(hr_vals[3]), tuple(notes))


def _in_field(lesions: pd.DataFrame, failures: pd.DataFrame | None) -> Proportion:
    irr = lesions[lesions["bridging_rt"].fillna(False).astype(bool)]
    if failures is not None and "rt_field" in failures.columns and "baseline_lesion_id" in failures.columns:
        f = failures[failures["rt_field"].astype("string").str.strip().str.lower() == "in-field"]
        hit = set(zip(f["patient_id"].astype(str), f["baseline_lesion_id"].astype(str), strict=True))
        pairs = zip(irr["patient_id"], irr["lesion_id"], strict=True)
        events = sum((str(p), str(l_)) in hit for p, l_ in pairs)
        definition = ("irradiated lesions with a failure recorded as in-field (failures.rt_field), "
                      "of all irradiated lesions")
    else:
        events = int(irr["local_failure"].fillna(0).astype(int).sum())
        definition = ("irradiated lesions with a local failure (no rt_field column: a local failure of an "
                      "irradiated lesion is counted in-field), of all irradiated lesions")
    return clopper_pearson(int(events), len(irr), definition)


def radiotherapy_statistics(lesions: pd.DataFrame, failures: pd.DataFrame | None, patients: pd.DataFrame,
                            settings: Settings) -> RadiotherapyResults | None:
    """The radiotherapy analysis of a classified study, or None when no lesion has ``bridging_rt``.

    Each estimate equals an R function (see the module docstring): odds ratios R ``glm(binomial)`` and
    ``geepack::geeglm(corstr = "exchangeable")``, rates R ``binom.test``, PFS R ``survival::survfit``,
    ``survdiff`` and ``coxph(ties = "efron")``.

    Parameters
    ----------
    lesions : pandas.DataFrame
        Classified lesions (``local_failure``; NaN = unknown outcome, left out).
    failures : pandas.DataFrame or None
        Classified failure rows (``rt_field`` used when present).
    patients : pandas.DataFrame
        Patients with ``pfs_months`` and ``pfs_event``.
    settings : Settings
        ``[radiotherapy]``, ``[risk_factors] lesion``, ``[lesion_models] small_sample``.

    Returns
    -------
    RadiotherapyResults or None
        None when the study has no ``bridging_rt`` column or no irradiated lesion.
    """
    if "bridging_rt" not in lesions.columns or not lesions["bridging_rt"].fillna(False).astype(bool).any():
        return None
    ab = settings.radiotherapy.alpha_beta_gy
    small = settings.lesion_models.small_sample
    known = lesions[lesions["local_failure"].notna() & lesions["bridging_rt"].notna()].copy()
    known["local_failure"] = known["local_failure"].astype("int64")
    rt = known["bridging_rt"].astype(bool)
    notes: list[str] = []
    adjust = tuple(settings.risk_factors.lesion)
    try:
        ors = local_failure_by_rt(known, adjust, small)
    except PofaError as exc:
        ors = ()
        notes.append(f"local failure by bridging RT not estimated: {exc}")
    withdose = _with_eqd2(known, ab)
    doses = withdose["eqd2_gy"].dropna().to_numpy(float)
    dr: tuple[OddsRatio, ...] = ()
    if doses.size >= 2 and np.ptp(doses) > 0:
        try:
            dr = dose_response(known, ab, small)
        except PofaError as exc:
            notes.append(f"dose-response not estimated: {exc}")
    else:
        notes.append("dose-response not estimated: fewer than two distinct EQD2 values among irradiated "
                     "lesions (columns rt_dose_gy and rt_fractions)")
    levels, curve = dose_response_curve(known, ab)
    field: tuple[tuple[str, int], ...] = ()
    if failures is not None and "rt_field" in failures.columns:
        vals = failures["rt_field"].astype("string").str.strip().str.lower()
        field = tuple((c, int((vals == c).sum())) for c in RT_FIELD_CLASSES)
    pfs = None
    pat_rt = lesions.assign(_rt=lesions["bridging_rt"].fillna(False).astype(bool)).groupby(
        "patient_id")["_rt"].any()
    prt = patients["patient_id"].map(pat_rt).fillna(False).astype(bool).to_numpy()
    if prt.any() and (~prt).any():
        try:
            pfs = pfs_by_rt(patients["pfs_months"].to_numpy(float), patients["pfs_event"].to_numpy(int), prt,
                            settings.survival.ci_method)
        except PofaError as exc:
            notes.append(f"PFS by bridging RT not estimated: {exc}")
    else:
        notes.append("PFS by bridging RT not estimated: every patient is in the same group")
    return RadiotherapyResults(
        alpha_beta_gy=ab, n_lesions=len(known), n_irradiated=int(rt.sum()),
        local_failures_rt=int(known.loc[rt, "local_failure"].sum()),
        local_failures_no_rt=int(known.loc[~rt, "local_failure"].sum()), n_no_rt=int((~rt).sum()),
        odds_ratios=ors, in_field=_in_field(known, failures), field_classes=field,
        eqd2_median_gy=float(np.median(doses)) if doses.size else math.nan,
        eqd2_min_gy=float(doses.min()) if doses.size else math.nan,
        eqd2_max_gy=float(doses.max()) if doses.size else math.nan,
        dose_response=dr, pfs=pfs, notes=tuple(notes), dose_levels=levels, dose_curve=curve)
