"""Realised figures of a simulated study, computed from its tables as the paper reports them.

Used to calibrate the presets (benchmarks/calibration.py), to choose the bundled demo's seed and by the tests.
The figures are computed from the three tables with the rules of the study format (a baseline lesion fails
locally when a failure row names it with ``scan_date`` in [progression_date, progression_date + 30 days]),
not from the simulation's truth, so they also check that the tables carry the truth.

The lesion-level odds ratios come from univariable models over all lesions (statsmodels ``Logit``, which
matches R ``glm(family=binomial)``; and ``GEE`` with exchangeable working correlation and the robust
sandwich, which matches ``geepack::geeglm(corstr="exchangeable")``); hazard ratios from ``PHReg`` with Efron
ties (R ``coxph`` default); median follow-up by reverse Kaplan-Meier with R's median convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pofa.simulate.generator import NO_PROGRESSION
from pofa.units import DAYS_PER_MONTH
from pofa.vocabulary import PatientPattern as P

__all__ = ["FACTORS", "StudyFigures", "km_median", "km_survival", "lesion_outcomes", "realised_figures"]


#: Lesion-level risk factors of the paper: name -> (column, threshold or None for a yes/no column).
FACTORS: dict[str, tuple[str, float | None]] = {
    "diameter>=5cm": ("diameter_cm", 5.0),
    "suvmax>=10": ("suvmax", 10.0),
    "extranodal": ("extranodal", None),
}


@dataclass(frozen=True, slots=True)
class StudyFigures:
    """The paper's figures, realised in one study.

    Proportions are fractions (0-1); ``nan`` when the denominator is 0 or a model cannot be fitted.
    ``or_*`` / ``hr_*`` are ratios; ``se_*`` are standard errors of their logarithms.
    """

    n_patients: int
    n_lesions: int
    lesions_per_patient: float
    any_bulky: float
    recurrence: float
    n_recurrences: int
    local_component: float
    strictly_local: float
    mixed: float
    strictly_de_novo: float
    unknown: float
    maintained_control: float
    lesion_failure_rate: float
    median_total_mtv_ml: float
    median_followup_months: float = math.nan
    pfs_12_months: float = math.nan
    hr_pfs: float = math.nan
    se_hr_pfs: float = math.nan
    hr_os: float = math.nan
    se_hr_os: float = math.nan
    or_logistic: dict[str, float] = field(default_factory=dict)
    se_logistic: dict[str, float] = field(default_factory=dict)
    or_gee: dict[str, float] = field(default_factory=dict)
    se_gee: dict[str, float] = field(default_factory=dict)
    method: str = ("lesion ORs: univariable Logit (R glm) and GEE exchangeable, robust SE (geepack::geeglm); "
                   "HRs: Cox PHReg, Efron ties (R coxph); follow-up: reverse Kaplan-Meier median (R survfit)")


def km_survival(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate (R ``survival::survfit``).

    Parameters
    ----------
    time : numpy.ndarray
        Follow-up time of each patient.
    event : numpy.ndarray
        1 for an event, 0 for censoring.

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray)
        The distinct event times and S just after each.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    t = np.unique(time[event])
    if t.size == 0:
        return t, t.copy()
    ordered = np.sort(time)
    at_risk = ordered.size - np.searchsorted(ordered, t, side="left")  # #{time >= t}
    d = np.bincount(np.searchsorted(t, time[event]), minlength=t.size)
    return t, np.cumprod(1.0 - d / at_risk)


def km_median(time: np.ndarray, event: np.ndarray) -> float:
    """Kaplan-Meier median with R's convention (midpoint where S(t) is exactly 0.5 on a flat stretch).

    Written by hand because statsmodels' ``SurvfuncRight.quantile`` and lifelines report the start of such a
    stretch (docs/statistics.md).

    Parameters
    ----------
    time : numpy.ndarray
        Follow-up time of each patient.
    event : numpy.ndarray
        1 for an event, 0 for censoring.

    Returns
    -------
    float
        The median, ``nan`` when S(t) never falls to 0.5.
    """
    t, s = km_survival(time, event)
    below = np.flatnonzero(s <= 0.5 + 1e-12)
    if below.size == 0:
        return math.nan
    j = int(below[0])
    if abs(s[j] - 0.5) < 1e-12 and j + 1 < t.size:
        return float((t[j] + t[j + 1]) / 2.0)
    return float(t[j])


def lesion_outcomes(patients: pd.DataFrame, lesions: pd.DataFrame, failures: pd.DataFrame,
                    window_days: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lesion outcome at first progression and patient pattern, from the tables.

    Parameters
    ----------
    patients : pandas.DataFrame
        Patients table (dates as datetime64).
    lesions : pandas.DataFrame
        Lesions table.
    failures : pandas.DataFrame
        Failures table.
    window_days : int, optional
        Failure rows within this many days of the progression count as the first progression.

    Returns
    -------
    lesions : pandas.DataFrame
        The lesions with a boolean ``local_failure``.
    patients : pandas.DataFrame
        The patients with ``progressed``, ``n_local``, ``n_de_novo`` and ``pattern`` (none / strictly local /
        strictly de novo / mixed / unknown).
    """
    pts = patients[["patient_id", "progression_date"]].copy()
    fl = failures.merge(pts, on="patient_id", how="left")
    delta = (fl["scan_date"] - fl["progression_date"]).dt.days
    in_window = fl[(delta >= 0) & (delta <= window_days)]
    named = in_window[in_window["baseline_lesion_id"].notna()]
    failed = set(zip(named["patient_id"], named["baseline_lesion_id"], strict=True))
    les = lesions.copy()
    les["local_failure"] = [(p, lid) in failed for p, lid in zip(les["patient_id"], les["lesion_id"],
                                                                  strict=True)]
    n_local = les.groupby("patient_id", sort=False)["local_failure"].sum()
    n_dn = in_window[in_window["baseline_lesion_id"].isna()].groupby("patient_id").size()
    out = patients[["patient_id"]].copy()
    out["progressed"] = patients["progression_date"].notna().to_numpy()
    out["n_local"] = out["patient_id"].map(n_local).fillna(0).astype(int)
    out["n_de_novo"] = out["patient_id"].map(n_dn).fillna(0).astype(int)
    out["n_lesions"] = out["patient_id"].map(les.groupby("patient_id").size()).fillna(0).astype(int)
    loc, dn = out["n_local"] > 0, out["n_de_novo"] > 0
    pattern = np.select([~out["progressed"], loc & dn, loc, dn],
                        [NO_PROGRESSION, P.MIXED.value, P.STRICTLY_LOCAL.value, P.STRICTLY_DE_NOVO.value],
                        P.UNKNOWN.value)
    out["pattern"] = pattern
    return les, out


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else math.nan


def realised_figures(patients: pd.DataFrame, lesions: pd.DataFrame, failures: pd.DataFrame,
                     models: bool = True, gee: bool = True) -> StudyFigures:
    """The paper's figures for one study given as the three tables (dates as datetime64).

    The models equal R's ``glm(family = binomial)`` (odds ratios), ``geepack::geeglm(corstr =
    "exchangeable")`` (GEE odds ratios) and ``survival::coxph`` with Efron ties (hazard ratios); the median
    follow-up is the reverse Kaplan-Meier median of ``survival::survfit``.

    Parameters
    ----------
    patients : pandas.DataFrame
        Patients table (dates as datetime64).
    lesions : pandas.DataFrame
        Lesions table.
    failures : pandas.DataFrame
        Failures table.
    models : bool
        Also fit the odds-ratio, hazard-ratio and Kaplan-Meier quantities (needs statsmodels; slower).
    gee : bool
        With ``models``, also fit the exchangeable GEE (the slowest part).

    Returns
    -------
    StudyFigures
        The figures realised in the study (``nan`` where a model is not fitted).
    """
    les, pts = lesion_outcomes(patients, lesions, failures)
    n = len(pts)
    rec = pts[pts["progressed"]]
    n_rec = len(rec)
    local_comp = rec["pattern"].isin([P.STRICTLY_LOCAL.value, P.MIXED.value])
    lc = rec[local_comp]
    bulky_lesion = les["diameter_cm"] >= 5.0
    any_bulky = pts["patient_id"].map(bulky_lesion.groupby(les["patient_id"]).any()).fillna(False)
    mtv = les.groupby("patient_id")["mtv_ml"].sum() if "mtv_ml" in les else pd.Series(dtype=float)
    fig: dict[str, Any] = dict(
        n_patients=n,
        n_lesions=len(les),
        lesions_per_patient=_ratio(len(les), n),
        any_bulky=float(any_bulky.mean()),
        recurrence=_ratio(n_rec, n),
        n_recurrences=n_rec,
        local_component=_ratio(local_comp.sum(), n_rec),
        strictly_local=_ratio((rec["pattern"] == P.STRICTLY_LOCAL.value).sum(), n_rec),
        mixed=_ratio((rec["pattern"] == P.MIXED.value).sum(), n_rec),
        strictly_de_novo=_ratio((rec["pattern"] == P.STRICTLY_DE_NOVO.value).sum(), n_rec),
        unknown=_ratio((rec["pattern"] == P.UNKNOWN.value).sum(), n_rec),
        maintained_control=_ratio((lc["n_local"] < lc["n_lesions"]).sum(), len(lc)),
        lesion_failure_rate=float(les["local_failure"].mean()),
        median_total_mtv_ml=float(mtv.median()) if len(mtv) else math.nan,
    )
    if not models:
        return StudyFigures(**fig)

    import statsmodels.api as sm
    from statsmodels.duration.hazard_regression import PHReg

    idx = patients["index_date"]
    fu_m = (patients["last_followup_date"] - idx).dt.days.to_numpy() / DAYS_PER_MONTH
    died = patients["death_date"].notna().to_numpy()
    prog = patients["progression_date"].notna().to_numpy()
    pfs_end = patients["progression_date"].where(prog, patients["last_followup_date"])
    pfs_m = (pfs_end - idx).dt.days.to_numpy() / DAYS_PER_MONTH
    pfs_event = prog | died
    fig["median_followup_months"] = km_median(fu_m, ~died)
    t, s = km_survival(pfs_m, pfs_event)
    fig["pfs_12_months"] = float(s[t <= 12.0][-1]) if np.any(t <= 12.0) else 1.0

    x = any_bulky.to_numpy(dtype=float)[:, None]
    for name, (time, event) in {"pfs": (pfs_m, pfs_event), "os": (fu_m, died)}.items():
        if 0 < x.sum() < n and event.any():
            res = PHReg(time, x, status=event.astype(float), ties="efron").fit()
            fig[f"hr_{name}"] = float(np.exp(res.params[0]))
            fig[f"se_hr_{name}"] = float(res.bse[0])

    y = les["local_failure"].to_numpy(dtype=float)
    groups = pd.factorize(les["patient_id"])[0]
    or_l, se_l, or_g, se_g = {}, {}, {}, {}
    for name, (col, cut) in FACTORS.items():
        v = les[col].to_numpy(dtype=float)
        xf = (v >= cut).astype(float) if cut is not None else v
        if not (0 < xf.sum() < len(xf)) or not (0 < y.sum() < len(y)):
            continue
        X = sm.add_constant(xf[:, None], has_constant="add")
        res = sm.Logit(y, X).fit(disp=0)
        or_l[name], se_l[name] = float(np.exp(res.params[1])), float(res.bse[1])
        if gee:
            g = sm.GEE(y, X, groups=groups, family=sm.families.Binomial(),
                       cov_struct=sm.cov_struct.Exchangeable()).fit()
            or_g[name], se_g[name] = float(np.exp(g.params[1])), float(g.bse[1])
    fig.update(or_logistic=or_l, se_logistic=se_l, or_gee=or_g, se_gee=se_g)
    return StudyFigures(**fig)
