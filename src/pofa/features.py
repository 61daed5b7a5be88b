"""Derived patient features: lesion burden summaries, Dmax, and the PFS / OS endpoints.

Every feature is computed from the lesion table as given; a patient without lesions (a validation warning)
has ``n_lesions = 0`` and missing (NA) lesion summaries. Months are days / 30.4375 (docs/statistics.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pofa.classify import end_of_followup, months
from pofa.errors import SettingsError
from pofa.schema import COORDINATES
from pofa.settings import FeatureSettings

#: Patients with more lesions than this get Dmax from scipy's pdist one patient at a time; the others are
#: done together, vectorised (see :func:`dmax`).
_PAIRWISE_JOIN_LIMIT = 64


def threshold_column(column: str, threshold: float) -> str:
    """Name of the "any lesion with ``column >= threshold``" feature, e.g. ``any_diameter_cm_ge_5``.

    A decimal point becomes ``_``: ``any_diameter_cm_ge_7_5`` for 7.5 cm.

    Parameters
    ----------
    column : str
        Lesion column.
    threshold : float
        Threshold.

    Returns
    -------
    str
        The column name of the feature.
    """
    return f"any_{column}_ge_{float(threshold):g}".replace(".", "_").replace("-", "m")


def _any(flags: pd.Series, known: pd.Series, groups: pd.Series, patient_ids: pd.Series) -> pd.Series:
    """Per patient: True when a lesion's flag is set, False when every lesion is known and unset, else NA."""
    hit = flags.fillna(False).astype(bool).groupby(groups).any()
    all_known = known.groupby(groups).all()
    out = pd.Series(pd.NA, index=patient_ids.index, dtype="boolean")
    out[patient_ids.map(all_known).eq(True).to_numpy()] = False
    out[patient_ids.map(hit).eq(True).to_numpy()] = True
    return out


def any_at_least(lesions: pd.DataFrame, column: str, threshold: float, patient_ids: pd.Series) -> pd.Series:
    """Tell per patient (aligned on ``patient_ids``) whether any lesion has ``column >= threshold``.

    True when some lesion reaches the threshold; False when every lesion is below it; NA when the patient has
    no lesions, or none reaches it and some are blank.

    Parameters
    ----------
    lesions : pandas.DataFrame
        The typed lesions table.
    column : str
        Lesion column.
    threshold : float
        Threshold.
    patient_ids : pandas.Series
        Patients, in output order.

    Returns
    -------
    pandas.Series
        True, False or NA per patient.
    """
    values = lesions[column].astype("float64")
    return _any(values >= threshold, values.notna(), lesions["patient_id"], patient_ids)


def _complete_sum(lesions: pd.DataFrame, column: str, patient_ids: pd.Series) -> pd.Series:
    """Sum of ``column`` over a patient's lesions; NA when any is blank (a partial sum would understate)."""
    grouped = lesions[column].groupby(lesions["patient_id"])
    total = grouped.sum(min_count=1).where(grouped.count() == grouped.size())
    return patient_ids.map(total).astype("float64")


def dmax(lesions: pd.DataFrame, patient_ids: pd.Series) -> pd.Series:
    """Largest distance (mm) between two lesion centres of each patient (aligned on ``patient_ids``).

    0 for a patient with one located lesion; NA when the patient has no lesions or any lesion lacks a centre
    (a Dmax over some lesions would understate the spread). Distances are Euclidean in the patient frame
    (LPS).

    Parameters
    ----------
    lesions : pandas.DataFrame
        The typed lesions table (centres in ``x_mm``, ``y_mm``, ``z_mm``).
    patient_ids : pandas.Series
        Patients, in output order.

    Returns
    -------
    pandas.Series
        Dmax in mm per patient.
    """
    if not set(COORDINATES) <= set(lesions.columns):
        return pd.Series(np.nan, index=patient_ids.index, dtype="float64")
    has = lesions[list(COORDINATES)].notna().all(axis=1)
    complete = has.groupby(lesions["patient_id"]).all()
    located = lesions.loc[has, ["patient_id", *COORDINATES]]
    codes, uniques = pd.factorize(located["patient_id"])
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    xyz = located[list(COORDINATES)].to_numpy(dtype="float64")[order]
    sizes = np.bincount(codes, minlength=len(uniques))
    small = sizes[codes] <= _PAIRWISE_JOIN_LIMIT
    # Each lesion's largest distance to a later lesion of its patient, comparing lesions k places apart in the
    # patient-sorted order (k < the largest patient's lesion count): the work grows as lesions x that count.
    far = np.zeros(len(codes))
    for k in range(1, int(sizes[sizes <= _PAIRWISE_JOIN_LIMIT].max(initial=1))):
        same = (codes[k:] == codes[:-k]) & small[k:]
        d = np.sqrt(((xyz[k:] - xyz[:-k]) ** 2).sum(axis=1))
        np.maximum(far[:-k], np.where(same, d, 0.0), out=far[:-k])
    per_patient = np.zeros(len(uniques))
    np.maximum.at(per_patient, codes, far)
    for code in np.flatnonzero(sizes > _PAIRWISE_JOIN_LIMIT):
        per_patient[code] = _pdist(xyz[codes == code]).max()
    result = pd.Series(per_patient, index=uniques)
    out = patient_ids.map(result).astype("float64")
    return out.where(patient_ids.map(complete).eq(True))


def patient_features(patients: pd.DataFrame, lesions: pd.DataFrame,
                     settings: FeatureSettings | None = None) -> pd.DataFrame:
    """Lesion-burden features of each patient.

    Parameters
    ----------
    patients, lesions : pandas.DataFrame
        As :class:`pofa.Study` gives them. Not modified.
    settings : FeatureSettings, optional
        Thresholds of the ``any_*_ge_*`` columns (default: diameter 5 cm, SUVmax 10).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``patients``: ``n_lesions``; one ``any_diameter_cm_ge_X`` / ``any_suvmax_ge_X`` (nullable
        boolean, ``>=``) per threshold; ``max_diameter_cm``; ``max_suvmax``; ``any_extranodal``;
        ``total_mtv_ml`` and ``total_tlg`` when the lesion table has those columns (NA when any lesion of the
        patient is blank); ``dmax_mm`` when it has the coordinate columns (see :func:`dmax`).

    Raises
    ------
    SettingsError
        When a feature threshold is not a positive number.
    """
    settings = settings if settings is not None else FeatureSettings()
    for t in (*settings.diameter_cm_thresholds, *settings.suvmax_thresholds):
        if not np.isfinite(t) or t <= 0:
            raise SettingsError(f"feature thresholds must be positive numbers, got {t!r}")
    pid = patients["patient_id"]
    out = pd.DataFrame(index=patients.index)
    by = lesions.groupby("patient_id")
    out["n_lesions"] = pid.map(by.size()).fillna(0).astype("int64")
    for column, thresholds in (("diameter_cm", settings.diameter_cm_thresholds),
                               ("suvmax", settings.suvmax_thresholds)):
        for t in thresholds:
            out[threshold_column(column, t)] = any_at_least(lesions, column, t, pid)
    out["max_diameter_cm"] = pid.map(by["diameter_cm"].max()).astype("float64")
    out["max_suvmax"] = pid.map(by["suvmax"].max()).astype("float64")
    extranodal = lesions["extranodal"].astype("boolean")
    out["any_extranodal"] = _any(extranodal, extranodal.notna(), lesions["patient_id"], pid)
    for column, name in (("mtv_ml", "total_mtv_ml"), ("tlg", "total_tlg")):
        if column in lesions.columns:
            out[name] = _complete_sum(lesions, column, pid)
    if set(COORDINATES) <= set(lesions.columns):
        out["dmax_mm"] = dmax(lesions, pid)
    return out


def survival_endpoints(patients: pd.DataFrame) -> pd.DataFrame:
    """PFS and OS from the index date, in months.

    PFS: event (1) at the progression date, else at the death date; censored (0) at the last follow-up.
    OS: event (1) at the death date; censored (0) at the last follow-up. A death dated after the last
    follow-up (a validation warning) ends follow-up at the death date. These are the ``Surv(time, event)``
    inputs of R's ``survival::survfit`` and ``coxph``.

    Parameters
    ----------
    patients : pandas.DataFrame
        The typed patients table.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``patients``: ``pfs_months``, ``pfs_event``, ``os_months``, ``os_event``.
    """
    index_date = patients["index_date"]
    prog, death = patients["progression_date"], patients["death_date"]
    end = end_of_followup(patients)
    out = pd.DataFrame(index=patients.index)
    out["pfs_months"] = months(index_date, prog.where(prog.notna(), end))
    out["pfs_event"] = (prog.notna() | death.notna()).astype("int64")
    out["os_months"] = months(index_date, end)
    out["os_event"] = death.notna().astype("int64")
    return out


def _pdist(points: np.ndarray) -> np.ndarray:
    """Pairwise distances (scipy's pdist, imported only for a patient with very many lesions)."""
    from scipy.spatial.distance import pdist

    return np.asarray(pdist(points))
