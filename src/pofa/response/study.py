"""Response over time for a study: every patient's scans by every rule, and lesion-level time to failure.

From the ``measurements`` and ``scans`` tables (docs/response.md): the response of each follow-up scan
(:func:`study_responses`); per baseline lesion the first scan at which it meets lesion progression (the event,
censored at its last scan, death a competing event: :func:`lesion_failure_times`); Kaplan-Meier and cumulative
incidence of local failure per lesion, and a Cox model of lesion risk factors with patients as clusters
(:func:`response_statistics`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pofa.errors import EstimationError
from pofa.response.measures import LesionMeasurement, Scan
from pofa.response.series import LesionRule, ResponseSettings, ScanResponse, assess_patient, lesion_progresses
from pofa.response.validate import parse_deauville
from pofa.stats.competing import CompetingRisks, cumulative_incidence
from pofa.stats.cox_cluster import ClusteredCoxResult, cox_ph_clustered
from pofa.stats.results import (
    Estimate,
    LesionCoxRow,
    LesionFailureSummary,
    ResponseOverTime,
    ScanResponseRow,
)
from pofa.stats.survival import KaplanMeier, days_to_months, kaplan_meier

if TYPE_CHECKING:
    from pofa.analysis import AnalysisResult

#: Lesion covariates of the lesion-level Cox model, when present and not constant.
COX_TERMS = ("diameter_cm", "suvmax", "extranodal")


def _flag(v: object) -> bool:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return False
    return bool(v)


def _days(later: Any, earlier: Any) -> float:
    """Days from ``earlier`` to ``later`` (dates or time stamps)."""
    delta: Any = pd.Timestamp(later) - pd.Timestamp(earlier)
    return float(delta / pd.Timedelta(days=1))


def _deauville(v: object) -> int | None:
    try:
        return parse_deauville(v)
    except ValueError:
        return None


def patient_scans(measurements: pd.DataFrame, scans: pd.DataFrame | None, patients: pd.DataFrame,
                  lesions: pd.DataFrame) -> dict[str, list[Scan]]:
    """The scans of each patient, built from the typed tables.

    Parameters
    ----------
    measurements : pandas.DataFrame
        The ``measurements`` table (typed, as :attr:`pofa.Study.measurements`).
    scans : pandas.DataFrame or None
        The ``scans`` table, if any.
    patients, lesions : pandas.DataFrame
        The patients (``index_date``) and lesions (``extranodal``) tables.

    Returns
    -------
    dict
        Patient id -> scans in date order (day from ``index_date``).
    """
    index = patients.drop_duplicates("patient_id").set_index("patient_id")["index_date"]
    extra = {(str(p), str(lid)): _flag(x) for p, lid, x in
             zip(lesions["patient_id"], lesions["lesion_id"], lesions["extranodal"], strict=True)}
    scan_rows: dict[tuple[str, Any], Any] = {}
    if scans is not None:
        for rec in scans.to_dict("records"):
            scan_rows.setdefault((str(rec["patient_id"]), pd.Timestamp(rec["scan_date"])), rec)
    out: dict[str, list[Scan]] = {}
    for pid, rows in measurements.groupby("patient_id", sort=False):
        p = str(pid)
        base_date = rows["scan_date"].min()
        targets = {str(r["lesion_id"]): _flag(r.get("target")) for r in
                   rows[rows["scan_date"] == base_date].to_dict("records")}
        series = []
        for date, at in rows.groupby("scan_date", sort=True):
            day = int(round(_days(date, index[pid])))
            ms = tuple(
                LesionMeasurement(
                    str(r["lesion_id"]), float(r["ldi_mm"]), float(r["sdi_mm"]),
                    target=targets.get(str(r["lesion_id"]), False),
                    extranodal=extra.get((p, str(r["lesion_id"])), False),
                    suvmax=None if pd.isna(r.get("suvmax", math.nan)) else float(r["suvmax"]),
                    deauville=_deauville(r.get("deauville")))
                for r in at.to_dict("records"))
            srec: Any = scan_rows.get((p, pd.Timestamp(date)), {})  # type: ignore[arg-type]
            series.append(Scan(day, ms, deauville=_deauville(srec.get("deauville")),
                               bone_marrow=_flag(srec.get("bone_marrow")),
                               new_lesions=_flag(srec.get("new_lesions")),
                               clinical_deterioration=_flag(srec.get("clinical_deterioration"))))
        out[p] = series
    return out


@dataclass(frozen=True, slots=True)
class PatientScanResponse:
    """The response of one follow-up scan of one patient."""

    patient_id: str
    response: ScanResponse


def study_responses(by_patient: Mapping[str, list[Scan]],
                    settings: ResponseSettings | None = None) -> tuple[PatientScanResponse, ...]:
    """Every follow-up scan of every patient by every rule (:func:`pofa.response.series.assess_patient`).

    Parameters
    ----------
    by_patient : mapping
        Patient id -> scans (see :func:`patient_scans`).
    settings : ResponseSettings, optional
        Rule settings.

    Returns
    -------
    tuple of PatientScanResponse
        In patient then day order.
    """
    return tuple(PatientScanResponse(pid, r) for pid, scans in by_patient.items()
                 for r in assess_patient(scans, settings))


def lesion_failure_times(by_patient: Mapping[str, list[Scan]], patients: pd.DataFrame, *,
                         rule: LesionRule = "lugano", too_small_mm: float = 5.0) -> pd.DataFrame:
    """Time to local failure of each baseline lesion.

    The event is the first follow-up scan at which the lesion meets lesion progression (``rule``: Lugano's
    single-lesion rule or PPD up >= 50% from nadir), timed from the index date. Without it the lesion is
    censored at its last measured scan, unless the patient died: death is then the competing event (cause 2,
    at the day of death). Lesions never measured after baseline are left out.

    Parameters
    ----------
    by_patient : mapping
        Patient id -> scans.
    patients : pandas.DataFrame
        The patients table (``index_date``, ``death_date``).
    rule : {"lugano", "ppd50"}
        Lesion progression rule.
    too_small_mm : float
        Lugano's default size of a lesion too small to measure.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id``, ``lesion_id``, ``days``, ``cause`` (0 censored, 1 local failure, 2 death).
    """
    p = patients.drop_duplicates("patient_id").set_index("patient_id")
    rows = []
    for pid, scans in by_patient.items():
        ordered = sorted(scans, key=lambda s: s.day)
        death: Any = p.at[pid, "death_date"] if "death_date" in p else pd.NaT
        death_day = math.nan if pd.isna(death) else _days(death, p.at[pid, "index_date"])
        for m in ordered[0].lesions:
            history = [(m.ldi_mm, m.sdi_mm)]
            event_day: float | None = None
            last = math.nan
            for scan in ordered[1:]:
                now = scan.lesion(m.lesion_id)
                if now is None:
                    continue
                last = float(scan.day)
                if lesion_progresses((now.ldi_mm, now.sdi_mm), history, rule=rule, too_small_mm=too_small_mm):
                    event_day = float(scan.day)
                    break
                history.append((now.ldi_mm, now.sdi_mm))
            if math.isnan(last):
                continue
            if event_day is not None:
                rows.append((pid, m.lesion_id, event_day, 1))
            elif not math.isnan(death_day):
                rows.append((pid, m.lesion_id, max(death_day, last), 2))
            else:
                rows.append((pid, m.lesion_id, last, 0))
    return pd.DataFrame(rows, columns=["patient_id", "lesion_id", "days", "cause"])


@dataclass(frozen=True, slots=True)
class ResponseResults:
    """Response over time for a study (results.json ``responses``, ``lesion_failure``, ``lesion_cox``).

    Attributes
    ----------
    responses : tuple of PatientScanResponse
        Every follow-up scan by every rule.
    sequence : dict
        Patient id -> study sequence number (results.json shows no ids).
    times : pandas.DataFrame
        Lesion-level times (see :func:`lesion_failure_times`).
    km : KaplanMeier or None
        Freedom from local failure per lesion (months; death censors).
    cif : CompetingRisks or None
        Cumulative incidence of local failure (cause 1) with death competing (cause 2), months.
    cox : ClusteredCoxResult or None
        Lesion risk factors, patients as clusters.
    rule : str
        The lesion progression rule.
    landmarks_months : tuple of float
        Times at which the curves are reported.
    notes : tuple of str
        Why an estimate is missing.
    """

    responses: tuple[PatientScanResponse, ...]
    sequence: Mapping[str, int]
    times: pd.DataFrame
    km: KaplanMeier | None
    cif: CompetingRisks | None
    cox: ClusteredCoxResult | None
    rule: str
    landmarks_months: tuple[float, ...]
    notes: tuple[str, ...] = ()

    def typed(self, settings: ResponseSettings | None = None) -> ResponseOverTime:
        """Return the typed result the report renders and results.json is written from.

        Parameters
        ----------
        settings : ResponseSettings, optional
            The rule settings used (recorded for the report's methods text; default: the sources' defaults).

        Returns
        -------
        pofa.stats.results.ResponseOverTime
            Every scan by every rule, lesion-level local failure and the clustered Cox model.
        """
        st = settings or ResponseSettings()
        rows = tuple(ScanResponseRow(
            self.sequence.get(e.patient_id), int(e.response.day), e.response.lugano_ct.value,
            e.response.lugano_pet.value, e.response.lyric.value,
            None if e.response.lyric_ir_status is None else e.response.lyric_ir_status.value,
            e.response.recil.value, float(e.response.spd_mm2), float(e.response.spd_change_baseline),
            float(e.response.spd_change_nadir), float(e.response.sld_mm), len(e.response.progressed_lesions),
            float(e.response.sld_change_baseline))
            for e in self.responses)
        cox: tuple[LesionCoxRow, ...] = ()
        if self.cox is not None:
            c = self.cox
            cox = tuple(LesionCoxRow(name, h.estimate, h.ci_low, h.ci_high, h.p, float(c.robust_se[j]),
                                     c.fit.n, c.fit.n_events, c.n_clusters, h.method)
                        for j, (name, h) in enumerate(zip(c.coef_names, c.hazard_ratios, strict=True)))
        return ResponseOverTime(rows, self._failure_summary(), cox, st.uptake_margin, st.too_small_mm)

    def _failure_summary(self) -> LesionFailureSummary:
        t = self.times
        km = tuple((m, self.km.at(m)) for m in self.landmarks_months) if self.km is not None else ()
        cif: tuple[tuple[float, Estimate], ...] = ()
        months: tuple[float, ...] = ()
        est: tuple[float, ...] = ()
        last = math.nan
        if self.cif is not None and 1 in self.cif.causes:
            curve = self.cif.curve(1)
            cif = tuple((m, curve.at(m)) for m in self.landmarks_months)
            months = tuple(float(x) for x in curve.times)
            est = tuple(float(x) for x in curve.estimate)
            last = float(curve.last_time)
        return LesionFailureSummary(
            self.rule, int(len(t)), int(t["patient_id"].nunique()), int((t["cause"] == 1).sum()),
            int((t["cause"] == 2).sum()), tuple(self.notes), km, cif, months, est, last)

    def responses_json(self) -> list[dict[str, Any]]:
        """Return the results.json ``responses``: one entry per patient and follow-up scan.

        Returns
        -------
        list of dict of str to Any
            Patient sequence number, day, the category of each rule, SPD and SLD with their changes, and the
            number of lesions that progressed (:meth:`typed`).
        """
        return list(self.typed().json_entries()["responses"])

    def lesion_cox_json(self) -> list[dict[str, Any]]:
        """Return the results.json ``lesion_cox``: per term, hazard ratio, robust 95% CI and robust Wald p.

        Returns
        -------
        list of dict of str to Any
            The terms of the clustered Cox model (empty when not fitted; :meth:`typed`).
        """
        return list(self.typed().json_entries()["lesion_cox"])

    def lesion_failure_json(self) -> dict[str, Any]:
        """Return the results.json ``lesion_failure``: counts, rule, and the curves at the landmarks.

        Returns
        -------
        dict of str to Any
            Rule, counts, notes, freedom from local failure and cumulative incidence at the landmarks, and the
            incidence curve's step points (:meth:`typed`).
        """
        return dict(self.typed().json_entries()["lesion_failure"])


def response_statistics(measurements: pd.DataFrame, scans: pd.DataFrame | None, patients: pd.DataFrame,
                        lesions: pd.DataFrame, settings: ResponseSettings,
                        landmarks_months: tuple[float, ...] = (6.0, 12.0, 24.0)) -> ResponseResults:
    """Compute responses scan by scan and lesion-level time to local failure for a study.

    Parameters
    ----------
    measurements, scans, patients, lesions : pandas.DataFrame
        The study's typed tables (``scans`` may be ``None``).
    settings : ResponseSettings
        Rule settings (``lesion_rule`` chooses the lesion progression rule).
    landmarks_months : tuple of float
        Times at which the curves are reported.

    Returns
    -------
    ResponseResults
        Responses by scan, lesion failure times, curves and the clustered Cox model, with notes.
    """
    from pofa.privacy import sequence_numbers

    by_patient = patient_scans(measurements, scans, patients, lesions)
    responses = study_responses(by_patient, settings)
    times = lesion_failure_times(by_patient, patients, rule=settings.lesion_rule,
                                 too_small_mm=settings.too_small_mm)
    notes: list[str] = []
    km = cif = None
    cox = None
    if len(times):
        months = np.asarray(days_to_months(times["days"].to_numpy(dtype=float)))
        km = kaplan_meier(months, (times["cause"] == 1).to_numpy(dtype=int))
        if (times["cause"] > 0).any():
            cif = cumulative_incidence(months, times["cause"].to_numpy(dtype=int))
        else:
            notes.append("no lesion failed locally and no patient died: no cumulative incidence to estimate")
        lk = lesions.drop_duplicates(["patient_id", "lesion_id"])
        lk = lk.astype({"patient_id": str, "lesion_id": str})
        merged = times.astype({"patient_id": str, "lesion_id": str}).merge(
            lk, on=["patient_id", "lesion_id"], how="left")
        terms = [c for c in COX_TERMS if c in merged and merged[c].notna().all() and merged[c].nunique() > 1]
        if not terms:
            notes.append("lesion_cox: no lesion covariate varies")
        else:
            x = merged[terms].astype(float)
            try:
                cox = cox_ph_clustered(months, (merged["cause"] == 1).to_numpy(dtype=int), x,
                                       merged["patient_id"].to_numpy())
            except EstimationError as exc:
                notes.append(f"lesion_cox: {exc}")
    else:
        notes.append("no lesion was measured after baseline")
    return ResponseResults(responses, sequence_numbers(patients["patient_id"]), times, km, cif, cox,
                           settings.lesion_rule, tuple(landmarks_months), tuple(notes))


def response_results(result: AnalysisResult) -> ResponseOverTime | None:
    """The typed response-over-time result of an analysis, or None when the study has no measurements table.

    Parameters
    ----------
    result : pofa.analysis.AnalysisResult
        The analysis so far (its ``response_tables`` and settings are used).

    Returns
    -------
    pofa.stats.results.ResponseOverTime or None
        What results.json's ``responses``, ``lesion_failure`` and ``lesion_cox`` are written from and what the
        report renders (docs/response.md).
    """
    measurements, scans = result.response_tables
    if measurements is None or measurements.empty:
        return None
    s = result.settings.response
    rule: LesionRule = "ppd50" if s.lesion_rule == "ppd50" else "lugano"
    settings = ResponseSettings(s.too_small_mm, s.uptake_margin, rule)
    res = response_statistics(measurements, scans, result.patients, result.lesions, settings,
                              tuple(result.settings.survival.landmarks_months))
    return res.typed(settings)


def results_entries(result: AnalysisResult) -> dict[str, Any]:
    """The results.json entries of response over time, or none when the study has no measurements table.

    Parameters
    ----------
    result : pofa.analysis.AnalysisResult
        The analysis so far (its ``response_tables`` and settings are used).

    Returns
    -------
    dict
        ``responses``, ``lesion_failure`` and ``lesion_cox`` (docs/response.md), or ``{}``; written from
        :func:`response_results`.
    """
    typed = response_results(result)
    return {} if typed is None else typed.json_entries()
