"""Typed results of response over time (results.json ``responses``, ``lesion_failure``, ``lesion_cox``).

Computed by :func:`pofa.response.study.response_statistics` (docs/response.md); re-exported by
:mod:`pofa.stats.results`, from which the report reads them. Patients appear as study sequence numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pofa.stats.results_base import Estimate, json_number

__all__ = ["LesionCoxRow", "LesionFailureSummary", "ResponseOverTime", "ScanResponseRow"]


@dataclass(frozen=True, slots=True)
class ScanResponseRow:
    """The response of one follow-up scan of one patient by every rule (an entry of ``responses``).

    Attributes
    ----------
    patient : int or None
        The patient's study sequence number.
    day : int
        Days from the index date.
    lugano_ct, lugano_pet, lyric, recil : str
        The category by Lugano 2014 CT-based (CR/PR/SD/PD), PET-based (CMR/PMR/NMR/PMD), LYRIC (with IR1-IR3)
        and RECIL 2017 (CR/PR/MR/SD/PD); ``NE`` when not evaluable.
    lyric_ir_status : str or None
        ``confirmed`` or ``resolved`` when the previous scan was an indeterminate response.
    spd_mm2, spd_change_baseline_pct, spd_change_nadir_pct, sld_mm : float
        Target SPD (mm2), its change from baseline and from the nadir (%), RECIL's sum of longest diameters
        (mm); NaN when a target lesion was not measured.
    progressed_lesions : int
        Lesions meeting Lugano's single-lesion progression at this scan.
    sld_change_baseline_pct : float
        Change of RECIL's sum of longest diameters from baseline (%), NaN when not evaluable.
    """

    patient: int | None
    day: int
    lugano_ct: str
    lugano_pet: str
    lyric: str
    lyric_ir_status: str | None
    recil: str
    spd_mm2: float
    spd_change_baseline_pct: float
    spd_change_nadir_pct: float
    sld_mm: float
    progressed_lesions: int
    sld_change_baseline_pct: float = float("nan")

    def to_json(self) -> dict[str, Any]:
        """Return the results.json entry.

        Returns
        -------
        dict of str to Any
            Every field by name; non-finite numbers become ``None``.
        """
        return {"patient": self.patient, "day": self.day, "lugano_ct": self.lugano_ct,
                "lugano_pet": self.lugano_pet, "lyric": self.lyric, "lyric_ir_status": self.lyric_ir_status,
                "recil": self.recil, "spd_mm2": json_number(self.spd_mm2),
                "spd_change_baseline_pct": json_number(self.spd_change_baseline_pct),
                "spd_change_nadir_pct": json_number(self.spd_change_nadir_pct),
                "sld_mm": json_number(self.sld_mm),
                "sld_change_baseline_pct": json_number(self.sld_change_baseline_pct),
                "progressed_lesions": self.progressed_lesions}


@dataclass(frozen=True, slots=True)
class LesionCoxRow:
    """One term of the lesion-level Cox model with patients as clusters (an entry of ``lesion_cox``).

    Equal to R ``coxph(Surv(t, e) ~ x + cluster(patient))`` (robust variance, Lin and Wei 1989).

    Attributes
    ----------
    term : str
        The lesion covariate.
    hr, ci_low, ci_high, p : float
        Hazard ratio, robust 95% CI and robust Wald p.
    robust_se : float
        Robust standard error of the coefficient.
    n_lesions, n_events, n_patients : int
        Lesions, local failures and patients (clusters) in the model.
    method : str
        The method in words.
    """

    term: str
    hr: float
    ci_low: float
    ci_high: float
    p: float
    robust_se: float
    n_lesions: int
    n_events: int
    n_patients: int
    method: str

    def to_json(self) -> dict[str, Any]:
        """Return the results.json entry.

        Returns
        -------
        dict of str to Any
            Every field by name; non-finite numbers become ``None``.
        """
        return {"term": self.term, "hr": json_number(self.hr), "ci_low": json_number(self.ci_low),
                "ci_high": json_number(self.ci_high), "p": json_number(self.p),
                "robust_se": json_number(self.robust_se), "n_lesions": self.n_lesions,
                "n_events": self.n_events, "n_patients": self.n_patients, "method": self.method}


@dataclass(frozen=True, slots=True)
class LesionFailureSummary:
    """Lesion-level time to local failure (results.json ``lesion_failure``).

    Attributes
    ----------
    rule : str
        The lesion progression rule (``lugano`` or ``ppd50``).
    n_lesions, n_patients, n_local_failures, n_deaths : int
        Counts of the lesion-level data.
    notes : tuple of str
        Why an estimate is missing.
    freedom_from_local_failure : tuple of (float, Estimate)
        Kaplan-Meier freedom from local failure at each landmark (months; R ``survfit``), or empty.
    cumulative_incidence : tuple of (float, Estimate)
        Cumulative incidence of local failure, death competing, at each landmark (R ``cmprsk::cuminc``).
    curve_months, curve_estimate : tuple of float
        The incidence curve's steps: each local failure time (months) and the estimate from it on.
    curve_last_months : float
        The last follow-up time of the curve (NaN without a curve).
    """

    rule: str
    n_lesions: int
    n_patients: int
    n_local_failures: int
    n_deaths: int
    notes: tuple[str, ...] = ()
    freedom_from_local_failure: tuple[tuple[float, Estimate], ...] = ()
    cumulative_incidence: tuple[tuple[float, Estimate], ...] = ()
    curve_months: tuple[float, ...] = ()
    curve_estimate: tuple[float, ...] = ()
    curve_last_months: float = float("nan")

    def to_json(self) -> dict[str, Any]:
        """Return the results.json ``lesion_failure`` object.

        Returns
        -------
        dict of str to Any
            Rule, counts, notes, the curves at the landmarks and the incidence curve's steps (the keys of the
            curves only when they were estimated).
        """
        out: dict[str, Any] = {"rule": self.rule, "n_lesions": self.n_lesions, "n_patients": self.n_patients,
                               "n_local_failures": self.n_local_failures, "n_deaths": self.n_deaths,
                               "notes": list(self.notes)}
        if self.freedom_from_local_failure:
            out["freedom_from_local_failure"] = [{"months": m, **e.to_json()}
                                                 for m, e in self.freedom_from_local_failure]
        if self.cumulative_incidence:
            out["cumulative_incidence"] = [{"months": m, **e.to_json()} for m, e in self.cumulative_incidence]
            out["cumulative_incidence_curve"] = {
                "months": [json_number(t) for t in self.curve_months],
                "estimate": [json_number(e) for e in self.curve_estimate],
                "last_months": json_number(self.curve_last_months),
            }
        return out


@dataclass(frozen=True, slots=True)
class ResponseOverTime:
    """Response over time of a study: every scan by every rule, lesion-level local failure, its Cox model.

    Attributes
    ----------
    responses : tuple of ScanResponseRow
        One per patient and follow-up scan, by patient then day.
    lesion_failure : LesionFailureSummary
        Lesion-level time to local failure.
    lesion_cox : tuple of LesionCoxRow
        The clustered Cox model's terms (empty when no covariate varies or the fit failed).
    uptake_margin_pct : float
        PET: the change of SUVmax (%) that counts as a change of uptake (the ``[response]`` setting).
    too_small_mm : float
        Lugano's default size of a lesion too small to measure (the ``[response]`` setting).
    """

    responses: tuple[ScanResponseRow, ...]
    lesion_failure: LesionFailureSummary
    lesion_cox: tuple[LesionCoxRow, ...] = ()
    uptake_margin_pct: float = 10.0
    too_small_mm: float = 5.0

    def json_entries(self) -> dict[str, Any]:
        """Return the results.json entries of this step.

        Returns
        -------
        dict of str to Any
            ``responses``, ``lesion_failure`` and ``lesion_cox`` (docs/response.md).
        """
        return {"responses": [r.to_json() for r in self.responses],
                "lesion_failure": self.lesion_failure.to_json(),
                "lesion_cox": [c.to_json() for c in self.lesion_cox]}
