"""Boundary cases of the response rules, each on the threshold its source states, scan by scan.

Every threshold is tested on both sides, with diameters in tenths of a millimetre as reading software writes
them (binary floating point cannot hold 17.2 mm exactly: a rule that compared raw differences would miss an
increase of exactly 0.5 cm). The wording quoted for Lugano and LYRIC IR1-IR3 is the source's, as reproduced
verbatim by the sources docs/response.md lists under "Sources"; RECIL's percentages are as RECIL is commonly
summarised (not checked against the paper).

- Lugano 2014: Cheson BD et al., J Clin Oncol 2014;32:3059-3068, Table 3 ("Revised criteria for response
  assessment").
- LYRIC: Cheson BD et al., Blood 2016;128:2489-2496, the LYRIC table (IR1-IR3).
- RECIL 2017: Younes A et al., Ann Oncol 2017;28:1436-1447, response criteria table.
"""

from __future__ import annotations

import pytest

from pofa.response import LesionMeasurement as L
from pofa.response import LuganoCT, LuganoPET, LyricResponse, RecilResponse, Scan, assess_patient
from pofa.response.lugano import LesionSizes, PETFindings, lesion_progression, pet_response
from pofa.response.lyric import LyricFindings, lyric_response
from pofa.response.measures import at_least, percent_change
from pofa.response.series import lesion_progresses

# --- Lugano 2014, Table 3, progressive disease: "An individual node/lesion must be abnormal with: LDi >
# 1.5 cm and increase by >= 50% from PPD nadir and an increase in LDi or SDi from nadir 0.5 cm for lesions
# <= 2 cm, 1.0 cm for lesions > 2 cm"


@pytest.mark.parametrize(("sizes", "expected", "why"), [
    (LesionSizes(15.0, 14.0, 6.0, 5.0), False, "LDi exactly 1.5 cm is not > 1.5 cm"),
    (LesionSizes(15.1, 14.0, 6.0, 5.0), True, "LDi 1.51 cm, PPD 30 -> 211, LDi +0.91 cm"),
    (LesionSizes(20.4, 12.0, 15.4, 10.3), True, "nadir LDi 1.54 cm (<= 2 cm): LDi up exactly 0.5 cm"),
    (LesionSizes(20.3, 12.0, 15.4, 10.3), False, "... up 0.49 cm (PPD +54% met, the size step not)"),
    (LesionSizes(20.0, 15.0, 20.0, 10.0), True, "nadir LDi exactly 2.0 cm is '<= 2 cm': SDi up 0.5 cm"),
    (LesionSizes(20.0, 14.9, 20.0, 10.0), False, "... SDi up 0.49 cm (and PPD +49%)"),
    (LesionSizes(32.3, 12.5, 22.3, 11.9), True, "nadir LDi 2.23 cm (> 2 cm): LDi up exactly 1.0 cm"),
    (LesionSizes(32.2, 12.5, 22.3, 11.9), False, "... up 0.99 cm"),
    (LesionSizes(27.3, 14.0, 22.3, 11.9), False, "> 2 cm: an increase of 0.5 cm is not enough"),
])
def test_lugano_single_lesion_thresholds(sizes: LesionSizes, expected: bool, why: str) -> None:
    assert lesion_progression(sizes) is expected, why


def test_lugano_ppd_exactly_50_percent_from_nadir() -> None:
    """'increase by >= 50% from PPD nadir': PPD 24.4 x 12.1 = 295.24 at nadir; 36.6 x 12.1 = 442.86 is
    +50%."""
    nadir = (24.4, 12.1)
    assert lesion_progresses((36.6, 12.1), [(40.0, 30.0), nadir])
    assert not lesion_progresses((36.5, 12.1), [(40.0, 30.0), nadir])  # +49.6%
    # the PPD-only rule ("ppd50") on the same boundary
    assert lesion_progresses((36.6, 12.1), [nadir], rule="ppd50")
    assert not lesion_progresses((36.5, 12.1), [nadir], rule="ppd50")


# --- Lugano 2014, Table 3: CT-based PR ">= 50% decrease from baseline in SPD of up to 6 target measurable
# nodes and extranodal sites"; SD "< 50% decrease from baseline in SPD"


def test_lugano_ct_pr_at_exactly_half_the_baseline_spd() -> None:
    base = Scan(-3, (L("a", 44.4, 22.2), L("b", 33.3, 11.1)))  # SPD 985.68 + 369.63 = 1355.31
    r = assess_patient([base, Scan(30, (L("a", 31.4, 15.7), L("b", 33.3, 5.55)))])[0]
    # 31.4 x 15.7 = 492.98 and 33.3 x 5.55 = 184.815: SPD 677.795 is -49.99%: not yet PR
    assert r.lugano_ct is LuganoCT.SD
    r = assess_patient([base, Scan(30, (L("a", 22.2, 22.2), L("b", 33.3, 5.55)))])[0]
    # 492.84 + 184.815 = 677.655, exactly half of 1355.31
    assert r.spd_change_baseline == -50.0
    assert r.lugano_ct is LuganoCT.PR


def test_lugano_ct_cr_at_exactly_1_5_cm() -> None:
    """CR: 'Target nodes/nodal masses must regress to <= 1.5 cm in LDi'."""
    base = Scan(-3, (L("a", 40.0, 30.0), L("b", 30.0, 20.0)))
    at = assess_patient([base, Scan(30, (L("a", 15.0, 9.0), L("b", 12.0, 8.0)))])[0]
    above = assess_patient([base, Scan(30, (L("a", 15.1, 9.0), L("b", 12.0, 8.0)))])[0]
    assert at.lugano_ct is LuganoCT.CR and above.lugano_ct is LuganoCT.PR


# --- Lugano 2014, Table 3, PET-CT-based response: CMR "Score 1, 2, or 3 with or without a residual mass on
# 5PS"; PMR/NMR/PMD "Score 4 or 5" with reduced / unchanged / increased uptake compared with baseline


@pytest.mark.parametrize(("score", "uptake", "expected"), [
    (3, +40.0, LuganoPET.CMR),  # score 3 is CMR whatever the uptake
    (4, +40.0, LuganoPET.PMD),  # score 4 with increased uptake
    (3, -40.0, LuganoPET.CMR),
    (4, -40.0, LuganoPET.PMR),  # score 4 with reduced uptake
    (3, 0.0, LuganoPET.CMR),
    (4, 0.0, LuganoPET.NMR),  # score 4 with no significant change
])
def test_lugano_pet_deauville_3_against_4(score: int, uptake: float, expected: LuganoPET) -> None:
    assert pet_response(PETFindings(score, uptake, False)) is expected


# --- LYRIC: "IR1: >= 50% increase in SPD in first 12 wk"; otherwise Lugano's PD


def test_lyric_ir1_at_exactly_50_percent_and_12_weeks() -> None:
    base = Scan(-3, (L("a", 20.0, 10.0), L("b", 10.0, 10.0)))  # SPD 300
    flare = (L("a", 25.0, 14.0), L("b", 10.0, 10.0))  # SPD 350 + 100 = 450: exactly +50%
    at84 = assess_patient([base, Scan(84, flare)])[0]
    assert at84.spd_change_nadir == 50.0
    assert at84.lyric is LyricResponse.IR1  # day 84 is within 12 weeks
    assert assess_patient([base, Scan(85, flare)])[0].lyric is LyricResponse.PD
    below = (L("a", 25.0, 13.9), L("b", 10.0, 10.0))  # SPD 447.5: +49.2%; lesion a 200 -> 347.5 (+74%)
    r = assess_patient([base, Scan(84, below)])[0]
    # "< 50% increase in SPD with ... >= 50% increase in PPD of a lesion"
    assert r.lugano_ct is LuganoCT.PD and r.lyric is LyricResponse.IR2


def test_lyric_worked_example_figure_3_ir1() -> None:
    """LYRIC (Blood 2016), Figure 3: "IR(1): Restaging CT 1 at 3 weeks demonstrates overall progression of
    tumor burden (SPD +124% from baseline)". The case's diameters are not given; two targets reproduce the
    +124%."""
    base = Scan(-7, (L("lung", 40.0, 25.0), L("pleura", 20.0, 10.0)))  # SPD 1000 + 200 = 1200
    week3 = Scan(21, (L("lung", 56.0, 42.0), L("pleura", 24.0, 14.0)))  # 2352 + 336 = 2688 = 1200 x 2.24
    r = assess_patient([base, week3])[0]
    assert r.spd_change_baseline == pytest.approx(124.0)
    assert r.lugano_ct is LuganoCT.PD  # Lugano: progression (the lung mass: PPD x 2.35, LDi +1.6 cm)
    assert r.lyric is LyricResponse.IR1  # LYRIC: indeterminate, within 12 weeks


def test_lyric_ir_only_where_lugano_calls_pd() -> None:
    """LYRIC: "Definition of progression: per Lugano with following exceptions" (IR1-IR3); "CR or PR: per
    Lugano". A small lesion whose PPD rose >= 50% (5.5 x 5 -> 8 x 6 mm, LDi <= 1.5 cm: not Lugano's lesion
    progression) while the SPD fell 75% is no IR2."""
    base = Scan(-3, (L("a", 40.0, 30.0), L("b", 12.0, 10.0)))
    low = Scan(30, (L("a", 20.0, 15.0), L("b", 5.5, 5.0)))
    regrow = Scan(90, (L("a", 20.0, 15.0), L("b", 8.0, 6.0)))
    r = assess_patient([base, low, regrow])[1]
    assert r.lugano_ct is LuganoCT.PR and r.lyric is LyricResponse.PR
    assert lyric_response(LyricFindings(56, "SD", 60.0, True, True, True, False)) is LyricResponse.SD
    assert lyric_response(LyricFindings(56, "PD", 60.0, True, True, True, False)) is LyricResponse.IR1


def test_lyric_rules_on_their_thresholds() -> None:
    def ly(change: float) -> LyricResponse:
        return lyric_response(LyricFindings(56, "PD", change, True, False, False, False))

    assert ly(percent_change(442.86, 295.24)) is LyricResponse.IR1  # 50.0% exactly
    assert ly(percent_change(442.85, 295.24)) is LyricResponse.IR2


# --- RECIL 2017: PR ">= 30% decrease" in the sum of longest diameters; MR ">= 10% decrease but < 30%";
# SD "< 10% decrease or <= 20% increase"; PD "> 20% increase"


@pytest.mark.parametrize(("follow", "expected"), [
    (42.0, RecilResponse.PR),  # SLD 60.0 -> 42.0: exactly -30%
    (42.1, RecilResponse.MR),
    (54.0, RecilResponse.MR),  # exactly -10%
    (54.1, RecilResponse.SD),
    (72.0, RecilResponse.SD),  # exactly +20% is not "> 20%"
    (72.1, RecilResponse.PD),
])
def test_recil_thresholds_from_diameters(follow: float, expected: RecilResponse) -> None:
    base = Scan(-3, (L("a", 33.3, 20.0), L("b", 16.7, 10.0), L("c", 10.0, 8.0), L("d", 9.0, 5.0)))
    # RECIL sums the three longest targets: 33.3 + 16.7 + 10.0 = 60.0 mm (lesion d is left out)
    scan = Scan(30, (L("a", follow - 26.7, 10.0), L("b", 16.7, 10.0), L("c", 10.0, 8.0), L("d", 30.0, 5.0)))
    r = assess_patient([base, scan])[0]
    assert r.sld_mm == pytest.approx(follow)
    assert r.recil is expected


def test_recil_pd_is_measured_from_the_nadir() -> None:
    base = Scan(-3, (L("a", 50.0, 20.0),))
    low = Scan(30, (L("a", 25.0, 10.0),))  # nadir: SLD 25.0 (-50%)
    assert [r.recil for r in assess_patient([base, low, Scan(90, (L("a", 30.0, 10.0),))])] == [
        RecilResponse.PR, RecilResponse.PR]  # +20% from nadir: not PD; -40% from baseline: PR
    assert assess_patient([base, low, Scan(90, (L("a", 30.1, 10.0),))])[1].recil is RecilResponse.PD


def test_at_least_compares_rounded_values() -> None:
    assert 20.4 - 15.4 < 5.0  # what the rules must not be fooled by
    assert at_least(20.4 - 15.4, 5.0)
    assert not at_least(20.3 - 15.4, 5.0)
    assert not at_least(float("nan"), 0.0)
