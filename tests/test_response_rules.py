"""Response rules on the wording and boundary cases of their sources.

Sources cited per test (docs/response.md, "Sources", says what each quotation was checked against):
- Lugano 2014: Cheson et al., J Clin Oncol 2014;32:3059, Table 3 and its footnotes (wording checked against
  verbatim reproductions of the table).
- LYRIC: Cheson et al., Blood 2016;128:2489, its LYRIC table (IR1-IR3 checked against a verbatim reproduction;
  the confirmation at the next scan is pofa's reading, not checked against the paper).
- RECIL 2017: Younes et al., Ann Oncol 2017;28:1436 (three targets and the minor response checked; the
  percentages are as RECIL is commonly summarised, not checked against the paper).
"""

from __future__ import annotations

import math

import pytest

from pofa.errors import EstimationError
from pofa.response import LesionMeasurement as L
from pofa.response import LuganoCT, LuganoPET, LyricResponse, RecilResponse, Scan, assess_patient
from pofa.response.lugano import (
    CTFindings,
    LesionSizes,
    PETFindings,
    ct_response,
    lesion_progression,
    pet_response,
)
from pofa.response.lyric import FollowUpOfIR, IRStatus, LyricFindings, lyric_response, resolve_ir
from pofa.response.measures import nadir, percent_change, ppd, spd
from pofa.response.recil import RecilFindings, recil_response
from pofa.response.series import ResponseSettings, lesion_progresses

# --- PPD and SPD (Lugano 2014, Table 3 footnotes) -----------------------------------------------------------

def test_ppd_small_and_vanished_lesions() -> None:
    """'Too small to measure: 5 mm x 5 mm as the default value; no longer visible: 0 x 0 mm; a node > 5 x 5 mm
    but smaller than normal: actual measurement' (Lugano 2014, Table 3 footnote)."""
    assert ppd(0, 0) == 0
    assert ppd(3, 2) == 25
    assert ppd(12, 4) == 60
    assert ppd(12, 8) == 96
    assert ppd(3, 2, too_small_mm=4) == 16


def test_ppd_refuses_impossible_diameters() -> None:
    with pytest.raises(EstimationError):
        ppd(10, 12)
    with pytest.raises(EstimationError):
        ppd(-1, 0)


def test_spd_counts_target_lesions_only() -> None:
    assert spd([L("a", 30, 20), L("b", 20, 10), L("c", 50, 40, target=False)]) == 800
    assert nadir([800, 300, 500]) == 300
    assert percent_change(400, 800) == -50
    assert math.isnan(percent_change(0, 0))


# --- Lugano single-lesion progression (Lugano 2014, Table 3, progressive disease) -------------------------

@pytest.mark.parametrize(("sizes", "expected"), [
    # LDi exactly 1.5 cm is not "> 1.5 cm"
    (LesionSizes(15, 15, 10, 5), False),
    # LDi 2.0 cm, PPD 200 -> 300 is exactly +50%; nadir LDi 2.0 cm (<= 2 cm) needs +0.5 cm: LDi +1.0 cm
    (LesionSizes(30, 10, 20, 10), True),
    # nadir LDi exactly 2 cm: +0.5 cm suffices (PPD 200 -> 300, LDi 20 -> 25 and SDi 10 -> 12)
    (LesionSizes(25, 12, 20, 10), True),
    # PPD +49.5% (200 -> 299): not progression
    (LesionSizes(23, 13, 20, 10), False),
    # nadir LDi 2.1 cm (> 2 cm) needs +1.0 cm: LDi +0.5 and SDi +0.3 cm with PPD +61% is not enough
    (LesionSizes(26, 13, 21, 10), False),
    # ... LDi +1.0 cm is (PPD 210 -> 341)
    (LesionSizes(31, 11, 21, 10), True),
    # the SDi may carry the increase instead of the LDi (nadir 18 x 8; SDi +0.5 cm)
    (LesionSizes(19, 13, 18, 8), True),
    # regrowth of a vanished lesion (nadir 0 x 0) to > 1.5 cm
    (LesionSizes(16, 10, 0, 0), True),
])
def test_single_lesion_progression_boundaries(sizes: LesionSizes, expected: bool) -> None:
    assert lesion_progression(sizes) is expected


def test_lesion_progression_uses_the_ppd_nadir() -> None:
    """'increase by >= 50% from PPD nadir' (Lugano 2014): the nadir, not the baseline."""
    history = [(40.0, 30.0), (14.0, 10.0), (20.0, 15.0)]
    assert lesion_progresses((21.0, 14.0), history)  # nadir 14 x 10 = 140; 294 >= 210, LDi +7 mm
    assert not lesion_progresses((21.0, 14.0), history[:1])  # against the baseline 1200 it is a response
    assert not lesion_progresses((14.0, 11.0), history, rule="ppd50")  # 154 < 210
    with pytest.raises(EstimationError):
        lesion_progresses((1, 1), [], rule="lugano")


def test_ppd50_rule_is_exactly_fifty_percent() -> None:
    assert lesion_progresses((30.0, 10.0), [(20.0, 10.0)], rule="ppd50")
    assert not lesion_progresses((29.0, 10.0), [(20.0, 10.0)], rule="ppd50")


# --- Lugano CT-based response (Lugano 2014, Table 3) ----------------------------------------------------

def _ct(change: float, ldi: tuple[float, ...], extra: tuple[bool, ...] = (), prog: bool = False,
        new: bool = False) -> LuganoCT:
    return ct_response(CTFindings(change, ldi, extra or (False,) * len(ldi), prog, new))


def test_ct_complete_response_nodes_to_1_5_cm() -> None:
    """CR: 'Target nodes/nodal masses must regress to <= 1.5 cm in LDi; no extralymphatic sites of
    disease'."""
    assert _ct(-60, (15.0, 10.0)) is LuganoCT.CR
    assert _ct(-60, (15.1, 10.0)) is LuganoCT.PR
    assert _ct(-60, (10.0, 5.0), (False, True)) is LuganoCT.PR  # an extranodal lesion still seen
    assert _ct(-60, (10.0, 0.0), (False, True)) is LuganoCT.CR


def test_ct_partial_response_is_a_50_percent_decrease() -> None:
    """PR: '>= 50% decrease from baseline in SPD'; SD: '< 50% decrease from baseline in SPD'."""
    assert _ct(-50.0, (30.0,)) is LuganoCT.PR
    assert _ct(-49.9, (30.0,)) is LuganoCT.SD
    assert _ct(+30.0, (30.0,)) is LuganoCT.SD


def test_ct_progression_by_lesion_new_lesion_or_marrow() -> None:
    assert _ct(-60, (30.0,), prog=True) is LuganoCT.PD
    assert _ct(-60, (10.0,), new=True) is LuganoCT.PD
    assert ct_response(CTFindings(-60, (10.0,), (False,), False, False, new_bone_marrow=True)) is LuganoCT.PD


# --- Lugano PET-based response (Lugano 2014, Table 3, PET-CT-based response) ------------------------------

@pytest.mark.parametrize(("f", "expected"), [
    (PETFindings(3, 40.0, False), LuganoPET.CMR),  # "Score 1, 2, or 3 with or without a residual mass"
    (PETFindings(1, math.nan, False), LuganoPET.CMR),
    (PETFindings(4, -50.0, False), LuganoPET.PMR),  # "Score 4 or 5 with reduced uptake [...] baseline"
    (PETFindings(5, -10.0, False), LuganoPET.PMR),  # exactly the margin
    (PETFindings(4, -9.9, False), LuganoPET.NMR),  # "no significant change in FDG uptake from baseline"
    (PETFindings(4, math.nan, False), LuganoPET.NMR),
    (PETFindings(5, 10.0, False), LuganoPET.PMD),  # "an increase in intensity of uptake from baseline"
    (PETFindings(3, -80.0, True), LuganoPET.PMD),  # "and/or new FDG-avid foci consistent with lymphoma"
    (PETFindings(2, -80.0, False, bone_marrow=True, bone_marrow_new=True), LuganoPET.PMD),  # new marrow foci
    (PETFindings(2, -80.0, False, bone_marrow=True), LuganoPET.PMR),  # marrow uptake reduced from baseline
    (PETFindings(None, -80.0, False), LuganoPET.NE),
])
def test_pet_response(f: PETFindings, expected: LuganoPET) -> None:
    assert pet_response(f) is expected


# --- LYRIC (Cheson et al., Blood 2016, Table 2) --------------------------------------------------------

def _ly(day: int = 60, lugano: str = "PD", change: float = 0.0, growth: bool = False, new: bool = False,
        uptake: bool = False, worse: bool = False) -> LyricResponse:
    return lyric_response(LyricFindings(day, lugano, change, growth, new, uptake, worse))


def test_ir1_window_is_12_weeks_without_clinical_deterioration() -> None:
    """IR1: '>= 50% increase in SPD in the first 12 weeks', 'without clinical deterioration'."""
    assert _ly(day=84, change=50.0) is LyricResponse.IR1
    assert _ly(day=85, change=50.0) is LyricResponse.PD
    assert _ly(day=84, change=50.0, worse=True) is LyricResponse.PD
    assert _ly(day=30, change=49.9, growth=False) is LyricResponse.PD  # PD by Lugano without IR criteria met


def test_ir2_new_lesions_or_lesion_growth_with_spd_below_50() -> None:
    """IR2: '< 50% increase in SPD with (a) new lesion(s), or (b) >= 50% increase in PPD of a lesion or set of
    lesions at any time during treatment'."""
    assert _ly(day=200, change=49.9, new=True) is LyricResponse.IR2
    assert _ly(day=200, change=10.0, growth=True) is LyricResponse.IR2


def test_ir3_uptake_without_growth() -> None:
    """IR3: 'increase in FDG uptake of 1 or more lesion(s) without a concomitant increase in lesion size or
    number meeting PD criteria'."""
    assert _ly(day=200, change=0.0, uptake=True) is LyricResponse.IR3


def test_lyric_keeps_lugano_without_progression() -> None:
    assert _ly(lugano="PR", change=-60) is LyricResponse.PR
    assert _ly(lugano="CR", change=-100) is LyricResponse.CR


def test_ir_confirmation_at_the_next_scan() -> None:
    """An IR is kept 'until confirmed as flare/pseudo-progression or true PD by either biopsy or subsequent
    imaging' (LYRIC, Blood 2016, abstract); pofa confirms IR1/IR2 by a further SPD increase >= 10% from the IR
    scan (its reading, not checked against the paper's text)."""
    up10 = FollowUpOfIR(LyricResponse.IR1, 10.0, False, False, LyricResponse.PD)
    assert resolve_ir(up10) == (LyricResponse.PD, IRStatus.CONFIRMED)
    below = FollowUpOfIR(LyricResponse.IR1, 9.9, False, False, LyricResponse.SD)
    assert resolve_ir(below) == (LyricResponse.SD, IRStatus.RESOLVED)
    new = FollowUpOfIR(LyricResponse.IR2, -20.0, True, False, LyricResponse.IR2)
    assert resolve_ir(new) == (LyricResponse.PD, IRStatus.CONFIRMED)
    ir3 = FollowUpOfIR(LyricResponse.IR3, 0.0, False, True, LyricResponse.PD)
    assert resolve_ir(ir3) == (LyricResponse.PD, IRStatus.CONFIRMED)
    ir3_gone = FollowUpOfIR(LyricResponse.IR3, 30.0, False, False, LyricResponse.PR)
    assert resolve_ir(ir3_gone) == (LyricResponse.PR, IRStatus.RESOLVED)
    plain = FollowUpOfIR(LyricResponse.PR, 30.0, False, False, LyricResponse.SD)
    assert resolve_ir(plain) == (LyricResponse.SD, None)


# --- RECIL 2017 (Younes et al., Ann Oncol 2017, Table 3) ------------------------------------------------

def _re(base: float, nad: float, ldi: tuple[float, ...] = (30.0,), deauville: int | None = None,
        new: bool = False) -> RecilResponse:
    return recil_response(RecilFindings(base, nad, ldi, (False,) * len(ldi), deauville, new))


@pytest.mark.parametrize(("base", "nad", "expected"), [
    (-30.0, -30.0, RecilResponse.PR),  # ">= 30% decrease in the sum of longest diameters"
    (-29.9, -29.9, RecilResponse.MR),  # minor response ">= 10% decrease but < 30%"
    (-10.0, -10.0, RecilResponse.MR),
    (-9.9, -9.9, RecilResponse.SD),  # SD "< 10% decrease or <= 20% increase"
    (20.0, 20.0, RecilResponse.SD),
    (20.1, 20.1, RecilResponse.PD),  # PD "> 20% increase"
    (-40.0, 21.0, RecilResponse.PD),  # the increase is measured from the nadir
])
def test_recil_thresholds(base: float, nad: float, expected: RecilResponse) -> None:
    assert _re(base, nad) is expected


def test_recil_complete_response_and_new_lesion() -> None:
    """CR: 'complete disappearance of all target lesions and all nodes with long axis < 10 mm', or >= 30%
    decrease with a negative PET (Deauville 1-3); PD: 'appearance of a new lesion'."""
    assert _re(-80, -80, ldi=(9.9, 0.0)) is RecilResponse.CR
    assert _re(-80, -80, ldi=(10.0, 0.0)) is RecilResponse.PR
    assert _re(-30, -30, deauville=3) is RecilResponse.CR
    assert _re(-30, -30, deauville=4) is RecilResponse.PR
    assert _re(-80, -80, new=True) is RecilResponse.PD


# --- a patient's series ---------------------------------------------------------------------------------

def test_series_pseudoprogression_then_confirmation() -> None:
    """A flare at day 60 (SPD +338% from nadir within 12 weeks) is IR1, then confirmed at day 120 by a further
    SPD increase of 62% (LYRIC, Blood 2016); Lugano calls both scans PD; RECIL measures the three longest."""
    base = Scan(-5, (L("a", 30, 20, suvmax=12, deauville=5), L("b", 25, 15, suvmax=8, deauville=4)))
    d30 = Scan(30, (L("a", 20, 10, suvmax=5, deauville=4), L("b", 12, 8, suvmax=3, deauville=3)))
    d60 = Scan(60, (L("a", 40, 30, suvmax=14, deauville=5), L("b", 12, 8, suvmax=3, deauville=3)))
    d120 = Scan(120, (L("a", 50, 40, suvmax=14, deauville=5), L("b", 12, 8, suvmax=3, deauville=3)))
    r = assess_patient([d120, base, d60, d30])
    assert [x.day for x in r] == [30, 60, 120]
    assert [x.lugano_ct.value for x in r] == ["PR", "PD", "PD"]
    assert [x.lugano_pet.value for x in r] == ["PMR", "PMD", "PMD"]
    assert [x.lyric.value for x in r] == ["PR", "IR1", "PD"]
    assert r[2].lyric_ir_status is IRStatus.CONFIRMED
    assert [x.recil.value for x in r] == ["PR", "PD", "PD"]
    assert r[0].spd_mm2 == 296.0
    assert r[0].spd_change_baseline == pytest.approx(100 * (296 - 975) / 975)
    assert r[1].progressed_lesions == ("a",)


def test_series_flare_that_resolves() -> None:
    base = Scan(-5, (L("a", 30, 20), L("b", 25, 15)))
    d30 = Scan(30, (L("a", 20, 10), L("b", 12, 8)))
    d60 = Scan(60, (L("a", 32, 20), L("b", 12, 8)))
    d120 = Scan(120, (L("a", 14, 8), L("b", 10, 8)))
    r = assess_patient([base, d30, d60, d120])
    assert [x.lyric.value for x in r] == ["PR", "IR1", "CR"]
    assert r[2].lyric_ir_status is IRStatus.RESOLVED
    assert r[2].lugano_pet is LuganoPET.NE


def test_series_missing_target_is_not_evaluable() -> None:
    base = Scan(-5, (L("a", 30, 20), L("b", 25, 15)))
    r = assess_patient([base, Scan(30, (L("a", 20, 10),))])
    assert r[0].lugano_ct is LuganoCT.NE and r[0].recil is RecilResponse.NE and math.isnan(r[0].spd_mm2)


def test_series_settings_and_errors() -> None:
    base = Scan(-5, (L("a", 30, 20, target=False),))
    with pytest.raises(EstimationError, match="no target"):
        assess_patient([base])
    with pytest.raises(EstimationError):
        assess_patient([])
    b = Scan(0, (L("a", 30, 20),))
    r = assess_patient([b, Scan(30, (L("a", 3, 2),))], ResponseSettings(too_small_mm=4))
    assert r[0].spd_mm2 == 16
