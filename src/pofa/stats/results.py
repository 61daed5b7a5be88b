"""The one result shape shared by every estimate pofa reports.

The report and results.json read only these fields, so every estimator (odds ratio, hazard ratio, median,
survival at a landmark, cumulative incidence) is rendered the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with its confidence interval and p-value.

    Attributes
    ----------
    estimate : float
        The point estimate on the reported scale (an odds ratio, a hazard ratio, a probability, months).
        ``nan`` when not estimable; ``reason`` then says why.
    ci_low, ci_high : float
        Lower and upper confidence limits (``nan`` when not estimable or unbounded above: see ``reason``).
    p : float
        Two-sided p-value, ``nan`` when no test applies.
    n : int
        Number of observations behind the estimate.
    method : str
        The method, in words a reader of a paper understands, including the CI type.
    reason : str
        Why a quantity is missing (empty when everything is estimable).
    """

    estimate: float
    ci_low: float
    ci_high: float
    p: float
    n: int
    method: str
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        """Return the estimate as a JSON-ready dict.

        Returns
        -------
        dict of str to object
            Every field by name; non-finite numbers become ``None``.
        """
        return {k: json_number(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


def json_number(x: float | int | None) -> float | int | None:
    """Return ``x`` as a JSON number, or ``None`` when it is missing or not finite.

    Parameters
    ----------
    x : float or int or None
        The number to write (a bool is written as 0 or 1).

    Returns
    -------
    float or int or None
        ``x`` unchanged when it is an int, ``float(x)`` when finite, otherwise ``None``.
    """
    if x is None:
        return None
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x
    xf = float(x)
    return xf if math.isfinite(xf) else None


# -----------------------------------------------------------------------------------------------------------
# Typed results of a study analysis (pofa.stats.study_stats). results.json is written from them
# (``json_entries``), and the report renders them: the report imports this module only.


def _n(x: float | int | None) -> float | int | None:
    return json_number(x)


def _frozen_array(values: object) -> np.ndarray:
    out = np.array(values, dtype=float, copy=True).reshape(-1)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True)
class Landmark:
    """An estimate at a landmark time (survival or cumulative incidence) with its pointwise CI.

    Attributes
    ----------
    months : float
        The landmark time.
    estimate, ci_low, ci_high : float
        Estimate and confidence limits (``nan`` when not estimable).
    reason : str
        Why the estimate is missing (empty when estimable).
    """

    months: float
    estimate: float
    ci_low: float
    ci_high: float
    reason: str = ""

    def to_json(self, value_key: str) -> dict[str, Any]:
        """Return the landmark as written in results.json.

        Parameters
        ----------
        value_key : str
            The key of the estimate (``"survival"`` or ``"incidence"``).

        Returns
        -------
        dict of str to Any
            ``{"months", value_key, "ci_low", "ci_high"[, "reason"]}``; non-finite numbers become ``None``.
        """
        out: dict[str, Any] = {"months": self.months, value_key: _n(self.estimate), "ci_low": _n(self.ci_low),
                               "ci_high": _n(self.ci_high)}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True, eq=False)
class StepCurve:
    """A right-continuous step function with its pointwise band: the curve a figure draws.

    Attributes
    ----------
    times : numpy.ndarray
        Times (months) at which the estimate may change, increasing (read-only).
    estimate, ci_low, ci_high : numpy.ndarray
        The estimate just after each time and its pointwise confidence limits (read-only).
    n_risk : numpy.ndarray
        Number at risk just before each time (Kaplan-Meier curves; empty for cumulative incidence).
    n_censor : numpy.ndarray
        Number censored at each time (Kaplan-Meier curves; empty for cumulative incidence).
    start : float
        The value before the first time (1 for survival, 0 for cumulative incidence).
    last_time : float
        Last follow-up time: the curve is drawn flat to it, not beyond.
    ci_method : str
        The pointwise interval's transform (``"log-log"``, ...).
    """

    times: np.ndarray
    estimate: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_risk: np.ndarray
    n_censor: np.ndarray
    start: float
    last_time: float
    ci_method: str

    def __post_init__(self) -> None:
        for name in ("times", "estimate", "ci_low", "ci_high", "n_risk", "n_censor"):
            object.__setattr__(self, name, _frozen_array(getattr(self, name)))
        if not (self.times.shape == self.estimate.shape == self.ci_low.shape == self.ci_high.shape):
            raise ValueError("a step curve's times, estimate and limits must have the same length")

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """Return x and y of the step function from time 0 to :attr:`last_time` (``drawstyle="steps-post"``).

        Returns
        -------
        tuple of numpy.ndarray
            Times starting at 0 and values starting at :attr:`start`.
        """
        x = np.concatenate(([0.0], self.times))
        y = np.concatenate(([self.start], self.estimate))
        if self.last_time > x[-1]:
            x = np.append(x, self.last_time)
            y = np.append(y, y[-1])
        return x, y

    def band(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the pointwise confidence band as steps (``nan`` limits dropped).

        Returns
        -------
        tuple of numpy.ndarray
            Times, lower limits and upper limits, of equal length, for ``fill_between(..., step="post")``.
        """
        ok = np.isfinite(self.ci_low) & np.isfinite(self.ci_high)
        return self.times[ok], self.ci_low[ok], self.ci_high[ok]

    def censored(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the censoring times and the curve's value there (a Kaplan-Meier plot's censoring marks).

        Returns
        -------
        tuple of numpy.ndarray
            Times with at least one censored observation and the curve's value at each.
        """
        if self.n_censor.size == 0:
            return np.array([]), np.array([])
        sel = self.n_censor > 0
        return self.times[sel], self.estimate[sel]

    def value_at(self, t: float) -> float:
        """Return the curve's value at time ``t`` (the step it is on; no estimation).

        Parameters
        ----------
        t : float
            Time in months.

        Returns
        -------
        float
            The value of the step containing ``t`` (:attr:`start` before the first time).
        """
        i = int(np.searchsorted(self.times, t, side="right"))
        return self.start if i == 0 else float(self.estimate[i - 1])

    def at_risk(self, ticks: Sequence[float]) -> tuple[int, ...]:
        """Return the number at risk #{T >= t} at each tick (as R and SAS count), from the curve's risk sets.

        Parameters
        ----------
        ticks : sequence of float
            Times (months).

        Returns
        -------
        tuple of int
            The number at risk at each tick, in the order of ``ticks``.

        Raises
        ------
        ValueError
            When the curve carries no numbers at risk (a cumulative incidence).
        """
        if self.n_risk.size == 0:
            raise ValueError("this curve carries no numbers at risk")
        out = []
        for t in ticks:
            i = int(np.searchsorted(self.times, t, side="left"))
            out.append(int(self.n_risk[i]) if i < self.times.size else 0)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class LesionModelRow:
    """One odds ratio of a lesion-level model (a row of results.json ``lesion_models``).

    Attributes
    ----------
    model : str
        ``"univariable"`` or ``"multivariable"``.
    method : str
        ``"logistic"``, ``"gee"`` or ``"firth"``.
    term : str
        The risk factor as written in ``[risk_factors] lesion``.
    label : str
        The term as a reader reads it (``"Diameter ≥ 5 cm"``).
    odds_ratio, ci_low, ci_high, p : float
        OR with its 95% CI and p (``nan`` when not estimable).
    n_lesions, n_patients : int
        Lesions and patients in the model.
    n_events : int
        Lesions with the outcome (local failure) in the model.
    """

    model: str
    method: str
    term: str
    label: str
    odds_ratio: float
    ci_low: float
    ci_high: float
    p: float
    n_lesions: int
    n_patients: int
    n_events: int

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``lesion_models`` row (non-finite numbers as ``None``)."""
        return {"model": self.model, "method": self.method, "term": self.term, "or": _n(self.odds_ratio),
                "ci_low": _n(self.ci_low), "ci_high": _n(self.ci_high), "p": _n(self.p),
                "n_lesions": self.n_lesions, "n_patients": self.n_patients}


@dataclass(frozen=True, slots=True)
class LesionModels:
    """Lesion-level odds ratios of local failure (results.json ``lesion_models`` and ``lesion_models_info``).

    Attributes
    ----------
    rows : tuple of LesionModelRow
        Univariable then multivariable rows, each method.
    outcome : str
        The outcome in words.
    n_lesions, n_lesions_unknown_outcome, n_patients : int
        Lesions with a known outcome, lesions left out (pattern unknown), patients.
    n_events : int
        Lesions with local failure among the lesions with a known outcome.
    methods : tuple of (str, str)
        Each method and its description.
    notes : tuple of str
        Notes of the fits.
    thresholds : tuple of (str, float)
        The column and threshold of each thresholded factor (``("diameter_cm", 5.0)``), in order.
    """

    rows: tuple[LesionModelRow, ...]
    outcome: str
    n_lesions: int
    n_lesions_unknown_outcome: int
    n_patients: int
    n_events: int
    methods: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    thresholds: tuple[tuple[str, float], ...] = ()

    def json_entries(self) -> dict[str, Any]:
        """Return the results.json entries of the lesion-level models.

        Returns
        -------
        dict of str to Any
            ``{"lesion_models": [...], "lesion_models_info": {...}}`` as in results.json.
        """
        return {"lesion_models": [r.to_json() for r in self.rows],
                "lesion_models_info": {"outcome": self.outcome, "n_lesions": self.n_lesions,
                                       "n_lesions_unknown_outcome": self.n_lesions_unknown_outcome,
                                       "n_patients": self.n_patients, "methods": dict(self.methods),
                                       "notes": list(self.notes)}}


@dataclass(frozen=True, slots=True)
class KaplanMeierSummary:
    """One survival endpoint: Kaplan-Meier median (with CI), landmarks and the curve itself.

    Attributes
    ----------
    endpoint : str
        ``"pfs"`` or ``"os"``.
    n, events : int
        Patients and events.
    median, ci_low, ci_high : float
        Median (months) and its CI (``nan`` when not reached).
    ci_method : str
        Pointwise CI transform.
    reason : str
        Why the median is missing (empty when estimable).
    landmarks : tuple of Landmark
        Survival at the landmark times.
    method : str
        The estimator in words (R survival::survfit).
    curve : StepCurve
        The fitted curve with its step points and numbers at risk.
    """

    endpoint: str
    n: int
    events: int
    median: float
    ci_low: float
    ci_high: float
    ci_method: str
    reason: str
    landmarks: tuple[Landmark, ...]
    method: str
    curve: StepCurve

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``survival.<endpoint>`` object (non-finite numbers as ``None``)."""
        out: dict[str, Any] = {"n": self.n, "events": self.events, "median_months": _n(self.median),
                               "ci_low": _n(self.ci_low), "ci_high": _n(self.ci_high),
                               "ci_method": self.ci_method}
        if self.reason:
            out["reason"] = self.reason
        out["landmarks"] = [lm.to_json("survival") for lm in self.landmarks]
        out["method"] = self.method
        return out


@dataclass(frozen=True, slots=True)
class FollowUp:
    """Median follow-up (reverse Kaplan-Meier), months.

    Attributes
    ----------
    median, ci_low, ci_high : float
        Median and CI (``nan`` when not estimable).
    method : str
        The method in words.
    reason : str
        Why it is missing (empty when estimable).
    """

    median: float
    ci_low: float
    ci_high: float
    method: str
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``followup`` object (non-finite numbers as ``None``)."""
        out: dict[str, Any] = {"median_months": _n(self.median), "ci_low": _n(self.ci_low),
                               "ci_high": _n(self.ci_high), "method": self.method}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class SurvivalResults:
    """PFS, OS and median follow-up (results.json ``survival`` and ``followup``).

    Attributes
    ----------
    pfs, os : KaplanMeierSummary
        The two endpoints.
    followup : FollowUp
        Median follow-up.
    """

    pfs: KaplanMeierSummary
    os: KaplanMeierSummary
    followup: FollowUp

    def endpoint(self, name: str) -> KaplanMeierSummary:
        """Return the summary of one endpoint.

        Parameters
        ----------
        name : str
            ``"pfs"`` or ``"os"``.

        Returns
        -------
        KaplanMeierSummary
            The Kaplan-Meier summary of that endpoint.

        Raises
        ------
        KeyError
            For another name.
        """
        if name == "pfs":
            return self.pfs
        if name == "os":
            return self.os
        raise KeyError(name)

    def json_entries(self) -> dict[str, Any]:
        """Return the results.json entries of the survival step.

        Returns
        -------
        dict of str to Any
            ``{"survival": {"pfs", "os"}, "followup": {...}}``.
        """
        return {"survival": {"pfs": self.pfs.to_json(), "os": self.os.to_json()},
                "followup": self.followup.to_json()}


@dataclass(frozen=True, slots=True)
class GroupCurve:
    """The Kaplan-Meier curve of one group of a yes/no patient term.

    Attributes
    ----------
    value : bool
        The group (the term present or absent).
    label : str
        The group as a legend shows it.
    n, events : int
        Patients and events in the group.
    curve : StepCurve
        The curve.
    """

    value: bool
    label: str
    n: int
    events: int
    curve: StepCurve


@dataclass(frozen=True, slots=True)
class CoxRow:
    """The hazard ratio of one patient term for one endpoint (a row of results.json ``patient_models``).

    Attributes
    ----------
    endpoint, term : str
        ``"pfs"``/``"os"`` and the term as written in ``[risk_factors] patient``.
    label : str
        The term as a reader reads it (with its unit step for a number: ``"Age (per 10 years)"``).
    hr, ci_low, ci_high, p : float
        Hazard ratio (per ``step`` units for a number), Wald 95% CI and p (``nan`` when not estimable).
    logrank_p : float
        Log-rank p (yes/no terms; ``nan`` otherwise).
    n_with : int or None
        Patients with the term (yes/no terms only).
    n : int
        Patients in the model.
    binary : bool
        Whether the term is yes/no.
    step : float
        Units per hazard ratio for a numeric term (1 for yes/no).
    reason : str
        Why something is missing.
    groups : tuple of GroupCurve
        Kaplan-Meier curves of the two groups (yes/no terms with both groups present; else empty).
    """

    endpoint: str
    term: str
    label: str
    hr: float
    ci_low: float
    ci_high: float
    p: float
    logrank_p: float
    n_with: int | None
    n: int
    binary: bool
    step: float
    reason: str
    groups: tuple[GroupCurve, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``patient_models`` row (non-finite numbers as ``None``)."""
        out: dict[str, Any] = {"endpoint": self.endpoint, "term": self.term, "hr": _n(self.hr),
                               "ci_low": _n(self.ci_low), "ci_high": _n(self.ci_high), "p": _n(self.p),
                               "logrank_p": _n(self.logrank_p), "n_with": self.n_with}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class PHCheck:
    """The global proportional-hazards test (R ``survival::cox.zph``) of one Cox model.

    Attributes
    ----------
    endpoint, term : str
        The model.
    chisq, p : float
        Statistic and p (``nan`` when not estimable).
    df : int or None
        Degrees of freedom.
    method : str
        The test in words.
    reason : str
        Why it is not estimable (R refuses the test on a singular fit).
    """

    endpoint: str
    term: str
    chisq: float
    df: int | None
    p: float
    method: str
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``ph_checks`` entry (non-finite numbers as ``None``)."""
        out: dict[str, Any] = {"endpoint": self.endpoint, "term": self.term, "chisq": _n(self.chisq),
                               "df": self.df, "p": _n(self.p), "method": self.method}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class MultiCoxRow:
    """A hazard ratio of the multivariable Cox model, or the reason it is not estimable.

    Attributes
    ----------
    endpoint : str
        ``"pfs"`` or ``"os"``.
    term : str or None
        The coefficient (``None`` with a reason when the model failed).
    hr, ci_low, ci_high, p : float
        Hazard ratio, CI and p.
    n : int or None
        Patients in the model.
    reason : str
        Why the model is not estimable.
    """

    endpoint: str
    term: str | None
    hr: float
    ci_low: float
    ci_high: float
    p: float
    n: int | None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``patient_models_info.multivariable`` entry (or its reason)."""
        if self.reason:
            return {"endpoint": self.endpoint, "reason": self.reason}
        return {"endpoint": self.endpoint, "term": self.term, "hr": _n(self.hr), "ci_low": _n(self.ci_low),
                "ci_high": _n(self.ci_high), "p": _n(self.p), "n": self.n}


@dataclass(frozen=True, slots=True)
class PatientModels:
    """Patient-level hazard ratios (results.json ``patient_models`` and ``patient_models_info``).

    Attributes
    ----------
    rows : tuple of CoxRow
        One row per endpoint and term.
    method, logrank : str
        The Cox model and the log-rank test in words.
    ph_checks : tuple of PHCheck
        Proportional-hazards tests.
    multivariable : tuple of MultiCoxRow
        The multivariable model (with two or more terms).
    """

    rows: tuple[CoxRow, ...]
    method: str
    logrank: str
    ph_checks: tuple[PHCheck, ...]
    multivariable: tuple[MultiCoxRow, ...]

    def ph_check(self, endpoint: str, term: str) -> PHCheck | None:
        """Return the proportional-hazards test of one model, if any.

        Parameters
        ----------
        endpoint : str
            ``"pfs"`` or ``"os"``.
        term : str
            The model's term.

        Returns
        -------
        PHCheck or None
            The test of that model, ``None`` when none was run.
        """
        return next((c for c in self.ph_checks if c.endpoint == endpoint and c.term == term), None)

    def json_entries(self) -> dict[str, Any]:
        """Return the results.json entries of the patient-level models.

        Returns
        -------
        dict of str to Any
            ``{"patient_models": [...], "patient_models_info": {...}}``.
        """
        return {"patient_models": [r.to_json() for r in self.rows],
                "patient_models_info": {"method": self.method, "logrank": self.logrank,
                                        "n": [{"endpoint": r.endpoint, "term": r.term, "n": r.n}
                                              for r in self.rows],
                                        "ph_checks": [c.to_json() for c in self.ph_checks],
                                        "multivariable": [m.to_json() for m in self.multivariable]}}


@dataclass(frozen=True, slots=True)
class GrayResult:
    """Gray's test between groups for one cause (R ``cmprsk::cuminc``).

    Attributes
    ----------
    statistic, p : float
        Statistic and p.
    df : int
        Degrees of freedom.
    by : str or None
        The grouping term.
    reason : str
        Why it is not estimable.
    """

    statistic: float
    df: int
    p: float
    by: str | None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``gray`` object (non-finite numbers as ``None``)."""
        out: dict[str, Any] = {"statistic": _n(self.statistic), "df": self.df, "p": _n(self.p), "by": self.by}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class IncidenceCurve:
    """The cumulative incidence of one cause in one group, with landmarks and the curve's step points.

    Attributes
    ----------
    group : str or None
        The group (``None``: everybody).
    n, events : int
        Subjects and events of the cause.
    ci_method : str
        Pointwise CI transform.
    landmarks : tuple of Landmark
        Incidence at the landmark times.
    curve : StepCurve
        The step function and its band.
    """

    group: str | None
    n: int
    events: int
    ci_method: str
    landmarks: tuple[Landmark, ...]
    curve: StepCurve

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``curves`` entry (group, counts, CI method and landmarks)."""
        return {"group": self.group, "n": self.n, "events": self.events, "ci_method": self.ci_method,
                "landmarks": [lm.to_json("incidence") for lm in self.landmarks]}


@dataclass(frozen=True, slots=True)
class IncidenceCause:
    """One cause of a competing-risks fit: its curves (overall or per group) and Gray's test.

    Attributes
    ----------
    cause : str
        The cause in words.
    code : int
        Its status code.
    curves : tuple of IncidenceCurve
        Per group (one curve overall).
    gray : GrayResult or None
        Gray's test between the groups.
    """

    cause: str
    code: int
    curves: tuple[IncidenceCurve, ...]
    gray: GrayResult | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``causes`` entry (cause, code, curves and Gray's test when run)."""
        out: dict[str, Any] = {"cause": self.cause, "code": self.code,
                               "curves": [c.to_json() for c in self.curves]}
        if self.gray is not None:
            out["gray"] = self.gray.to_json()
        return out


@dataclass(frozen=True, slots=True)
class IncidenceBlock:
    """One cumulative-incidence fit (R ``cmprsk::cuminc``), or the reason it is not estimable.

    Attributes
    ----------
    n : int
        Subjects.
    method : str
        The estimator in words.
    causes : tuple of IncidenceCause
        The causes (empty when not estimable).
    reason : str
        Why it is not estimable.
    term : str or None
        The grouping term (lesion factors' blocks).
    """

    n: int
    method: str
    causes: tuple[IncidenceCause, ...]
    reason: str = ""
    term: str | None = None

    def cause(self, code: int) -> IncidenceCause | None:
        """Return the cause with status ``code``, if estimated.

        Parameters
        ----------
        code : int
            The status code of the cause (as coded in the fit).

        Returns
        -------
        IncidenceCause or None
            The cause, ``None`` when it was not estimated.
        """
        return next((c for c in self.causes if c.code == code), None)

    def to_json(self) -> dict[str, Any]:
        """Return the results.json block of this fit.

        Returns
        -------
        dict of str to Any
            Term (for a by-factor fit), n, method and causes (and the reason when not estimable).
        """
        out: dict[str, Any] = {} if self.term is None else {"term": self.term}
        out.update({"n": self.n, "method": self.method, "causes": [c.to_json() for c in self.causes]})
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class CompetingRisksResults:
    """Cumulative incidence of first failure by type (patients) and of local failure (lesions).

    Attributes
    ----------
    patients_overall : IncidenceBlock
        Patients, everybody.
    patients_by_group : IncidenceBlock or None
        Patients by the first yes/no patient term.
    lesions_overall : IncidenceBlock
        Lesions, everybody.
    lesions_note : str
        The caveat of the lesion-level analysis.
    lesions_by_factor : tuple of IncidenceBlock
        Lesions by each yes/no or thresholded lesion factor.
    lesions_later_local_failures : int
        Lesions whose local failure came only after first progression (a local-failure event here, but not
        a local failure at first progression in the patterns and the lesion models).
    """

    patients_overall: IncidenceBlock
    patients_by_group: IncidenceBlock | None
    lesions_overall: IncidenceBlock
    lesions_note: str
    lesions_by_factor: tuple[IncidenceBlock, ...]
    lesions_later_local_failures: int = 0

    def json_entries(self) -> dict[str, Any]:
        """Return the results.json entries of the competing-risks step.

        Returns
        -------
        dict of str to Any
            ``{"competing_risks": {"patients": {...}, "lesions": {...}}}``.
        """
        patients: dict[str, Any] = {"overall": self.patients_overall.to_json()}
        if self.patients_by_group is not None:
            patients["by_group"] = self.patients_by_group.to_json()
        return {"competing_risks": {
            "patients": patients,
            "lesions": {"overall": self.lesions_overall.to_json(), "note": self.lesions_note,
                        "by_factor": [b.to_json() for b in self.lesions_by_factor]}}}


@dataclass(frozen=True, slots=True)
class Cutpoint:
    """An exploratory cut-point (R ``maxstat::maxstat.test``) with corrected p-values.

    Attributes
    ----------
    feature, endpoint : str
        The patient feature and the endpoint.
    note : str
        The exploratory caveat.
    cutpoint, statistic, p_lau92, p_lau94 : float
        Estimates (``nan`` when not estimable).
    n : int
        Patients.
    n_low, n_high : int or None
        Patients at or below / above the cut-point.
    method : str
        The method (empty when not estimable).
    reason : str
        Why it is not estimable.
    """

    feature: str
    endpoint: str
    note: str
    cutpoint: float
    statistic: float
    p_lau92: float
    p_lau94: float
    n: int
    n_low: int | None
    n_high: int | None
    method: str = ""
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``cutpoints`` entry (non-finite numbers as ``None``)."""
        out: dict[str, Any] = {"feature": self.feature, "endpoint": self.endpoint, "note": self.note,
                               "cutpoint": _n(self.cutpoint), "statistic": _n(self.statistic),
                               "p_lau92": _n(self.p_lau92), "p_lau94": _n(self.p_lau94), "n": self.n,
                               "n_low": self.n_low, "n_high": self.n_high}
        if self.method:
            out["method"] = self.method
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class Cutpoints:
    """The exploratory cut-points (results.json ``cutpoints``).

    Attributes
    ----------
    rows : tuple of Cutpoint
    """

    rows: tuple[Cutpoint, ...]

    def json_entries(self) -> dict[str, Any]:
        """Return the results.json entries of the cut-point step.

        Returns
        -------
        dict of str to Any
            ``{"cutpoints": [...]}``.
        """
        return {"cutpoints": [r.to_json() for r in self.rows]}


StepResult = LesionModels | SurvivalResults | PatientModels | CompetingRisksResults | Cutpoints


@dataclass(frozen=True, slots=True)
class StudyResults:
    """Every statistic of a study analysis, typed (``None``: the step was not run).

    Attributes
    ----------
    lesion_models : LesionModels or None
    survival : SurvivalResults or None
    patient_models : PatientModels or None
    competing_risks : CompetingRisksResults or None
    cutpoints : Cutpoints or None
    """

    lesion_models: LesionModels | None = None
    survival: SurvivalResults | None = None
    patient_models: PatientModels | None = None
    competing_risks: CompetingRisksResults | None = None
    cutpoints: Cutpoints | None = None

    def with_part(self, part: StepResult) -> StudyResults:
        """Return a copy holding ``part`` in its field.

        Parameters
        ----------
        part : StepResult
            The result of one step (lesion models, survival, patient models, competing risks or cut-points).

        Returns
        -------
        StudyResults
            A new instance with that field replaced; the other fields are kept.

        Raises
        ------
        TypeError
            For an object that is not a step result.
        """
        if isinstance(part, LesionModels):
            return replace(self, lesion_models=part)
        if isinstance(part, SurvivalResults):
            return replace(self, survival=part)
        if isinstance(part, PatientModels):
            return replace(self, patient_models=part)
        if isinstance(part, CompetingRisksResults):
            return replace(self, competing_risks=part)
        if isinstance(part, Cutpoints):
            return replace(self, cutpoints=part)
        raise TypeError(f"not a step result: {type(part).__name__}")

    def json_entries(self) -> dict[str, Any]:
        """Return every results.json entry of the parts present.

        Returns
        -------
        dict of str to Any
            The merged ``json_entries()`` of each part that is not ``None``.
        """
        out: dict[str, Any] = {}
        for part in (self.lesion_models, self.survival, self.patient_models, self.competing_risks,
                     self.cutpoints):
            if part is not None:
                out.update(part.json_entries())
        return out
