"""The one result shape shared by every estimate pofa reports.

The report and results.json read only these fields, so every estimator (odds ratio, hazard ratio, median,
survival at a landmark, cumulative incidence) is rendered the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# The shared pieces and the competing-risks and cut-point results live in two modules of their own (to keep
# each module small); everything is imported from here.
from pofa.stats.results_base import Estimate, Landmark, StepCurve, _n, json_number
from pofa.stats.results_competing import (
    CompetingRisksResults,
    Cutpoint,
    Cutpoints,
    GrayResult,
    IncidenceBlock,
    IncidenceCause,
    IncidenceCurve,
)
from pofa.stats.results_radiotherapy import (
    DoseCurve,
    DoseLevel,
    OddsRatio,
    PfsByRt,
    Proportion,
    RadiotherapyResults,
)
from pofa.stats.results_response import LesionCoxRow, LesionFailureSummary, ResponseOverTime, ScanResponseRow

__all__ = [
    "CompetingRisksResults", "CoxRow", "Cutpoint", "Cutpoints", "DoseCurve", "DoseLevel", "Estimate",
    "FollowUp", "GrayResult", "GroupCurve", "IncidenceBlock", "IncidenceCause", "IncidenceCurve",
    "KaplanMeierSummary", "Landmark", "LesionCoxRow", "LesionFailureSummary", "LesionModelRow",
    "LesionModels", "MultiCoxRow", "OddsRatio", "PHCheck", "PatientModels", "PfsByRt", "Proportion",
    "RadiotherapyResults", "ResponseOverTime", "ScanResponseRow", "StepCurve", "StepResult", "StudyResults",
    "SurvivalResults", "json_number",
]


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
        """Return the results.json ``lesion_models`` row (non-finite numbers as ``None``).

        Returns
        -------
        dict of {str: object}
            The ``lesion_models`` entry as results.json holds it.
        """
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
        """Return the results.json ``survival.<endpoint>`` object (non-finite numbers as ``None``).

        Returns
        -------
        dict of {str: object}
            The ``survival.<endpoint>`` entry as results.json holds it.
        """
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
        """Return the results.json ``followup`` object (non-finite numbers as ``None``).

        Returns
        -------
        dict of {str: object}
            The ``followup`` entry as results.json holds it.
        """
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
        """Return the results.json ``patient_models`` row (non-finite numbers as ``None``).

        Returns
        -------
        dict of {str: object}
            The ``patient_models`` entry as results.json holds it.
        """
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
        """Return the results.json ``ph_checks`` entry (non-finite numbers as ``None``).

        Returns
        -------
        dict of {str: object}
            The ``ph_checks`` entry as results.json holds it.
        """
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
        """Return the results.json ``patient_models_info.multivariable`` entry (or its reason).

        Returns
        -------
        dict of {str: object}
            The ``patient_models_info.multivariable`` entry as results.json holds it.
        """
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


StepResult = (LesionModels | SurvivalResults | PatientModels | CompetingRisksResults | Cutpoints
              | RadiotherapyResults | ResponseOverTime)


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
    radiotherapy : RadiotherapyResults or None
        Bridging radiotherapy (docs/radiotherapy.md; ``None`` when no lesion has ``bridging_rt``).
    response : ResponseOverTime or None
        Response over time (docs/response.md; ``None`` without a measurements table).
    """

    lesion_models: LesionModels | None = None
    survival: SurvivalResults | None = None
    patient_models: PatientModels | None = None
    competing_risks: CompetingRisksResults | None = None
    cutpoints: Cutpoints | None = None
    radiotherapy: RadiotherapyResults | None = None
    response: ResponseOverTime | None = None

    def with_part(self, part: StepResult) -> StudyResults:
        """Return a copy holding ``part`` in its field.

        Parameters
        ----------
        part : StepResult
            The result of one step (lesion models, survival, patient models, competing risks, cut-points,
            radiotherapy or response over time).

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
        if isinstance(part, RadiotherapyResults):
            return replace(self, radiotherapy=part)
        if isinstance(part, ResponseOverTime):
            return replace(self, response=part)
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
                     self.cutpoints, self.radiotherapy, self.response):
            if part is not None:
                out.update(part.json_entries())
        return out
