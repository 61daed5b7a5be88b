"""One patient's scans in date order: every rule applied scan by scan, and each lesion's progression.

The first scan is the baseline (day <= 0). Its target lesions (``target`` yes, at most six) define the SPD for
Lugano and LYRIC; RECIL takes the three target lesions with the longest baseline LDi. A follow-up scan that
lacks a measurement of a target lesion is not evaluable (NE) by the size rules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pofa.errors import EstimationError
from pofa.response.lugano import (
    CTFindings,
    LesionSizes,
    LuganoCT,
    LuganoPET,
    PETFindings,
    ct_response,
    lesion_progression,
    pet_response,
)
from pofa.response.lyric import (
    FollowUpOfIR,
    IRStatus,
    LyricFindings,
    LyricResponse,
    lyric_response,
    resolve_ir,
)
from pofa.response.measures import Scan, at_least, nadir, percent_change, ppd, sld, spd
from pofa.response.recil import RECIL_TARGETS, RecilFindings, RecilResponse, recil_response

LesionRule = Literal["lugano", "ppd50"]


@dataclass(frozen=True, slots=True)
class ResponseSettings:
    """Settings of the response rules (study.toml ``[response]``).

    Attributes
    ----------
    too_small_mm : float
        Lugano's default size of a lesion too small to measure (5 mm).
    uptake_margin : float
        Percent change of the highest SUVmax within which PET uptake is "not significantly changed" (10).
    lesion_rule : {"lugano", "ppd50"}
        Lesion progression for lesion-level time to failure: Lugano's single-lesion rule (default) or a PPD
        increase of >= 50% from the lesion's nadir alone.
    """

    too_small_mm: float = 5.0
    uptake_margin: float = 10.0
    lesion_rule: LesionRule = "lugano"


@dataclass(frozen=True, slots=True)
class ScanResponse:
    """The response of one follow-up scan by every rule.

    Attributes
    ----------
    day : int
        Days from the index date.
    spd_mm2 : float
        SPD of the target lesions (``nan`` when a target was not measured).
    spd_change_baseline, spd_change_nadir : float
        Percent change of the SPD from baseline and from the nadir of the earlier scans.
    sld_mm : float
        Sum of the longest diameters of RECIL's (up to three) target lesions.
    lugano_ct, lugano_pet, lyric, recil
        The category by each rule.
    lyric_ir_status : IRStatus or None
        Whether this scan confirmed or resolved the previous scan's indeterminate response.
    progressed_lesions : tuple of str
        Lesions meeting the lesion progression rule on this scan.
    sld_change_baseline : float
        Percent change of RECIL's sum of longest diameters from baseline (``nan`` when not evaluable).
    """

    day: int
    spd_mm2: float
    spd_change_baseline: float
    spd_change_nadir: float
    sld_mm: float
    lugano_ct: LuganoCT
    lugano_pet: LuganoPET
    lyric: LyricResponse
    recil: RecilResponse
    lyric_ir_status: IRStatus | None = None
    progressed_lesions: tuple[str, ...] = field(default=())
    sld_change_baseline: float = math.nan


def _overall_deauville(scan: Scan) -> int | None:
    if scan.deauville is not None:
        return scan.deauville
    scores = [m.deauville for m in scan.lesions if m.deauville is not None]
    return max(scores) if scores else None


def _max_suv(scan: Scan) -> float:
    suv = [m.suvmax for m in scan.lesions if m.suvmax is not None]
    return max(suv) if suv else math.nan


def lesion_progresses(current: tuple[float, float], history: Sequence[tuple[float, float]], *,
                      rule: LesionRule = "lugano", too_small_mm: float = 5.0) -> bool:
    """Whether a lesion meets progression now, against its earlier measurements (baseline first).

    Parameters
    ----------
    current : tuple of float
        ``(ldi_mm, sdi_mm)`` now.
    history : sequence of tuple of float
        The lesion's earlier ``(ldi_mm, sdi_mm)``, baseline first (the nadir is the smallest PPD; the earliest
        such scan on ties).
    rule : {"lugano", "ppd50"}
        Lugano's single-lesion rule (:func:`pofa.response.lugano.lesion_progression`) or PPD up >= 50% from
        nadir.
    too_small_mm : float
        Default size of a lesion too small to measure.

    Returns
    -------
    bool
        Whether the lesion meets progression now.

    Raises
    ------
    EstimationError
        An empty history or an unknown rule.
    """
    if not history:
        raise EstimationError("a lesion needs a baseline measurement before its progression can be judged")
    ppds = [ppd(a, b, too_small_mm=too_small_mm) for a, b in history]
    k = ppds.index(min(ppds))
    if rule == "lugano":
        return lesion_progression(LesionSizes(current[0], current[1], history[k][0], history[k][1]),
                                  too_small_mm=too_small_mm)
    if rule == "ppd50":
        now = ppd(current[0], current[1], too_small_mm=too_small_mm)
        return now > 0 and at_least(now, 1.5 * ppds[k])
    raise EstimationError(f"unknown lesion progression rule {rule!r}; use 'lugano' or 'ppd50'")


def assess_patient(scans: Sequence[Scan],
                   settings: ResponseSettings | None = None) -> tuple[ScanResponse, ...]:
    """Apply Lugano 2014 (CT and PET), LYRIC and RECIL 2017 to each follow-up scan of one patient.

    Parameters
    ----------
    scans : sequence of Scan
        The patient's scans; the earliest is the baseline.
    settings : ResponseSettings, optional
        Rule settings (defaults as the sources).

    Returns
    -------
    tuple of ScanResponse
        One per follow-up scan, in date order.

    Raises
    ------
    EstimationError
        No scan, or a baseline without target lesions.
    """
    st = settings or ResponseSettings()
    ordered = sorted(scans, key=lambda s: s.day)
    if not ordered:
        raise EstimationError("no scans")
    base = ordered[0]
    targets = [m for m in base.lesions if m.target]
    if not targets:
        raise EstimationError("the baseline scan has no target lesion")
    target_ids = [m.lesion_id for m in targets]
    extranodal = {m.lesion_id: m.extranodal for m in base.lesions}
    recil_ids = [m.lesion_id for m in sorted(targets, key=lambda m: -m.ldi_mm)[:RECIL_TARGETS]]
    base_spd = spd(targets, too_small_mm=st.too_small_mm)
    base_sld = sld([m for m in targets if m.lesion_id in recil_ids])
    base_suv = _max_suv(base)
    spd_hist, sld_hist = [base_spd], [base_sld]
    sizes: dict[str, list[tuple[float, float]]] = {m.lesion_id: [(m.ldi_mm, m.sdi_mm)] for m in base.lesions}
    out: list[ScanResponse] = []
    previous_marrow = base.bone_marrow
    ir_spd: float | None = None
    previous_lyric: LyricResponse | None = None
    for scan in ordered[1:]:
        now = {m.lesion_id: m for m in scan.lesions}
        complete = all(t in now for t in target_ids)
        progressed = tuple(
            lid for lid, m in now.items() if lid in sizes and lesion_progresses(
                (m.ldi_mm, m.sdi_mm), sizes[lid], rule="lugano", too_small_mm=st.too_small_mm))
        growth50 = any(lesion_progresses((m.ldi_mm, m.sdi_mm), sizes[lid], rule="ppd50",
                                         too_small_mm=st.too_small_mm)
                       for lid, m in now.items() if lid in sizes)
        marrow_new = scan.bone_marrow and not previous_marrow
        deauville = _overall_deauville(scan)
        uptake = percent_change(_max_suv(scan), base_suv) if not math.isnan(base_suv) else math.nan
        pet = pet_response(PETFindings(deauville, uptake, scan.new_lesions and deauville is not None,
                                       scan.bone_marrow, marrow_new), uptake_margin=st.uptake_margin)
        if complete:
            cur_spd = spd([now[t] for t in target_ids], too_small_mm=st.too_small_mm)
            cur_sld = sld([now[t] for t in recil_ids])
            ct = ct_response(CTFindings(
                percent_change(cur_spd, base_spd), tuple(now[t].ldi_mm for t in target_ids),
                tuple(extranodal[t] for t in target_ids), bool(progressed), scan.new_lesions, marrow_new))
            recil = recil_response(RecilFindings(
                percent_change(cur_sld, base_sld), percent_change(cur_sld, nadir(sld_hist)),
                tuple(now[t].ldi_mm for t in recil_ids), tuple(extranodal[t] for t in recil_ids),
                deauville, scan.new_lesions))
            d_base, d_nadir = percent_change(cur_spd, base_spd), percent_change(cur_spd, nadir(spd_hist))
        else:
            cur_spd = cur_sld = d_base = d_nadir = math.nan
            ct = LuganoCT.PD if (progressed or scan.new_lesions or marrow_new) else LuganoCT.NE
            recil = RecilResponse.PD if scan.new_lesions else RecilResponse.NE
        overall = _overall_lugano(ct, pet)
        size_pd = bool(progressed) or scan.new_lesions
        lyric = lyric_response(LyricFindings(
            scan.day, overall, d_nadir if complete else -math.inf, growth50, scan.new_lesions,
            uptake_increase_only=(pet is LuganoPET.PMD and not size_pd and not marrow_new),
            clinical_deterioration=scan.clinical_deterioration)) if overall != "NE" else LyricResponse.NE
        status: IRStatus | None = None
        if previous_lyric is not None and ir_spd is not None:
            lyric, status = resolve_ir(FollowUpOfIR(
                previous_lyric, percent_change(cur_spd, ir_spd) if complete else math.nan,
                scan.new_lesions, bool(progressed), lyric))
        ir_spd = cur_spd if lyric in (LyricResponse.IR1, LyricResponse.IR2, LyricResponse.IR3) else None
        previous_lyric = lyric
        out.append(ScanResponse(scan.day, cur_spd, d_base, d_nadir, cur_sld, ct, pet, lyric, recil, status,
                                progressed, percent_change(cur_sld, base_sld) if complete else math.nan))
        if complete:
            spd_hist.append(cur_spd)
            sld_hist.append(cur_sld)
        for lid, m in now.items():
            sizes.setdefault(lid, []).append((m.ldi_mm, m.sdi_mm))
        previous_marrow = scan.bone_marrow
    return tuple(out)


def _overall_lugano(ct: LuganoCT, pet: LuganoPET) -> str:
    """Lugano's overall category: PET-based where PET was read (FDG-avid histologies), else CT-based."""
    mapping = {LuganoPET.CMR: "CR", LuganoPET.PMR: "PR", LuganoPET.NMR: "SD", LuganoPET.PMD: "PD"}
    if ct is LuganoCT.PD:
        return "PD"
    if pet is not LuganoPET.NE:
        return mapping[pet]
    return ct.value
