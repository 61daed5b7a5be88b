"""Kaplan-Meier, medians, landmarks, reverse-KM follow-up, numbers at risk and log-rank against R.

Reference values: tests/reference/survival/km_logrank.R (R 4.2.2, survival 3.5-3) -> km_logrank.json, on
R's lung, veteran and ovarian data, a heavily tied simulated cohort and small edge cases.

Tolerances (the JSON stores 15 significant digits, so agreement of ~1e-14 is what we observe):
* KM survival, SE and CI: rtol 1e-8 -- the same closed-form arithmetic as R (products, sums, exp/log);
  1e-8 leaves room only for libm rounding, and any convention slip (Greenwood vs Tsiatis, log vs
  log-log, #{T >= t} vs #{T > t}) moves these numbers by >= 1e-4.
* Medians and their CIs: rtol 1e-12 -- they are observed times or midpoints of two times; the only
  error is the 15-digit JSON and the days -> months division.
* Log-rank chi-square and p: rtol 1e-9 -- closed form (a small linear solve); p from the chi-square
  survival function, accurate to ~1e-14 relative in scipy and R.
* Numbers at risk, events, censorings: exact integers.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pofa.errors import EstimationError, PofaError
from pofa.stats.survival import (
    DAYS_PER_MONTH,
    KaplanMeier,
    days_to_months,
    kaplan_meier,
    log_rank_test,
    log_rank_test_two_groups,
    median_follow_up,
    reverse_kaplan_meier,
)

REF = Path(__file__).parent / "reference"
KM_JSON = json.loads((REF / "survival" / "km_logrank.json").read_text())
CASES = {c["name"]: c for c in KM_JSON["cases"]}

RTOL_KM = 1e-8
RTOL_MEDIAN = 1e-12
RTOL_TEST = 1e-9


def _arr(x: object) -> np.ndarray:
    """JSON list (null = NA) -> float array; jsonlite writes length-1 vectors as scalars."""
    return np.array(
        [np.nan if v is None else v for v in np.atleast_1d(np.array(x, dtype=object))], dtype=float
    )


def _load(spec: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    if "inline_time" in spec:
        return np.array(spec["inline_time"], float), np.array(spec["inline_event"], int), None, None
    df = pd.read_csv(REF / "data" / spec["file"])
    if "dropna" in spec:
        df = df.dropna(subset=[spec["dropna"]])
    t = df[spec["time"]].to_numpy(float)
    if spec["time_scale"] == "days":
        t = days_to_months(t)
    e = (df[spec["event"]] == spec["event_value"]).astype(int).to_numpy()
    g = df[spec["group"]].to_numpy() if "group" in spec else None
    s = df[spec["strata"]].to_numpy() if "strata" in spec else None
    return t, e, g, s


def _blocks():
    """(case name, block label, time, event, R block) for the overall curve and every group's curve."""
    out = []
    for name, case in CASES.items():
        t, e, g, _ = _load(case["spec"])
        out.append((name, "overall", t, e, case["overall"]))
        for gb in case.get("groups", []):
            sel = g == gb["label"]
            out.append((name, f"group={gb['label']}", t[sel], e[sel], gb))
    return out


BLOCKS = _blocks()
IDS = [f"{b[0]}-{b[1]}" for b in BLOCKS]


def _close(actual, desired, rtol):
    a = np.asarray(actual, dtype=float).reshape(-1)
    d = _arr(desired)
    assert a.shape == d.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(d))
    np.testing.assert_allclose(a[~np.isnan(a)], d[~np.isnan(d)], rtol=rtol, atol=0)


@pytest.mark.parametrize(("name", "label", "t", "e", "blk"), BLOCKS, ids=IDS)
def test_km_curve_matches_survfit(name, label, t, e, blk):
    for kb in blk["km"]:
        km = kaplan_meier(t, e, ci_method=kb["conf_type"])
        np.testing.assert_allclose(km.times, _arr(kb["time"]), rtol=1e-12, atol=0)
        np.testing.assert_array_equal(km.n_risk, _arr(kb["n_risk"]))
        np.testing.assert_array_equal(km.n_event, _arr(kb["n_event"]))
        np.testing.assert_array_equal(km.n_censor, _arr(kb["n_censor"]))
        _close(km.survival, kb["surv"], RTOL_KM)
        _close(km.std_err, kb["std_err"], RTOL_KM)
        _close(km.ci_low, kb["lower"], RTOL_KM)
        _close(km.ci_high, kb["upper"], RTOL_KM)
        assert km.ci_method == kb["conf_type"]


@pytest.mark.parametrize(("name", "label", "t", "e", "blk"), BLOCKS, ids=IDS)
def test_median_and_ci_match_quantile_survfit(name, label, t, e, blk):
    for kb in blk["km"]:
        m = kaplan_meier(t, e, ci_method=kb["conf_type"]).median()
        _close(
            [m.estimate, m.ci_low, m.ci_high],
            [kb["median"], kb["median_lower"], kb["median_upper"]],
            RTOL_MEDIAN,
        )
        assert ("not reached" in m.reason) == any(
            v is None for v in (kb["median"], kb["median_lower"], kb["median_upper"])
        )
        assert "quantile.survfit" in m.method and kb["conf_type"] in m.method


@pytest.mark.parametrize(("name", "label", "t", "e", "blk"), BLOCKS, ids=IDS)
def test_landmarks_match_summary_survfit(name, label, t, e, blk):
    for kb in blk["km"]:
        km = kaplan_meier(t, e, ci_method=kb["conf_type"])
        lms = km.landmarks()
        for i, lt in enumerate(_arr(kb["landmark_times"])):
            est = lms[float(lt)]
            if lt > km.times[-1]:
                # R's summary(extend = TRUE) carries the last value forward; pofa refuses to extrapolate.
                assert math.isnan(est.estimate) and "beyond the last follow-up" in est.reason
                continue
            want = [_arr(kb[k])[i] for k in ("landmark_surv", "landmark_lower", "landmark_upper")]
            _close([est.estimate, est.ci_low, est.ci_high], want, RTOL_KM)


@pytest.mark.parametrize(("name", "label", "t", "e", "blk"), BLOCKS, ids=IDS)
def test_reverse_km_follow_up_and_numbers_at_risk(name, label, t, e, blk):
    fu = median_follow_up(t, e)
    _close([fu.estimate, fu.ci_low, fu.ci_high], blk["followup_loglog"], RTOL_MEDIAN)
    fu_log = median_follow_up(t, e, ci_method="log")
    _close([fu_log.estimate, fu_log.ci_low, fu_log.ci_high], blk["followup_log"], RTOL_MEDIAN)
    assert "reverse Kaplan-Meier" in fu.method
    at = kaplan_meier(t, e).n_at_risk(_arr(blk["at_risk_times"]))
    np.testing.assert_array_equal(at, _arr(blk["at_risk"]))
    # the #{T >= t} convention, directly
    for tick in (0.0, 3.0, 6.0, 12.0):
        assert kaplan_meier(t, e).n_at_risk(tick)[0] == int((t >= tick).sum())


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if "logrank" in c])
def test_log_rank_matches_survdiff(name):
    case = CASES[name]
    t, e, g, s = _load(case["spec"])
    lr = case["logrank"]
    res = log_rank_test(t, e, g, strata=s)
    levels = np.atleast_1d(lr["levels"]).tolist()
    assert len(res.groups) == len(levels) and all(a == b for a, b in zip(res.groups, levels, strict=True))
    np.testing.assert_allclose(res.chisq, lr["chisq"], rtol=RTOL_TEST)
    np.testing.assert_allclose(res.p, lr["p"], rtol=RTOL_TEST)
    assert res.df == lr["df"]
    np.testing.assert_allclose(res.observed, _arr(lr["observed"]), rtol=1e-12)
    np.testing.assert_allclose(res.expected, _arr(lr["expected"]), rtol=RTOL_TEST)
    np.testing.assert_allclose(res.variance.ravel(), _arr(np.ravel(lr["var"])), rtol=RTOL_TEST, atol=1e-12)
    assert "survdiff" in res.method


def test_two_group_wrapper_is_the_k_group_test():
    t, e, g, _ = _load(CASES["lung_sex"]["spec"])
    two = log_rank_test_two_groups(t, e, g)
    k = log_rank_test(t, e, g)
    assert (two.chisq, two.df, two.p, two.groups) == (k.chisq, k.df, k.p, k.groups)
    t3, e3, g3, _ = _load(CASES["veteran_celltype"]["spec"])
    with pytest.raises(EstimationError, match="exactly 2 groups"):
        log_rank_test_two_groups(t3, e3, g3)


# ----------------------------------------------------------------------------------------------
# conventions pinned on tiny data
# ----------------------------------------------------------------------------------------------


def test_median_midpoint_on_exact_half_plateau():
    # S = 0.75, 0.5, 0.25, 0 at t = 1..4: S = 0.5 on [2, 3) so the median is 2.5 (R, SAS; lifelines: 2)
    km = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    assert km.median().estimate == 2.5


def test_median_when_curve_ends_on_half_plateau_follows_quantile_survfit():
    # S = 0.5 from t = 2 to the last follow-up (t = 4): quantile.survfit gives (2 + 4) / 2 = 3
    assert kaplan_meier([1, 2, 3, 4], [1, 1, 0, 0]).median().estimate == 3.0


def test_median_not_reached_is_nan_with_reason():
    m = kaplan_meier([2, 3, 5, 8, 9, 10], [1, 0, 0, 0, 0, 0]).median()
    assert math.isnan(m.estimate) and "not reached" in m.reason


def test_survival_equals_empirical_without_censoring():
    rng = np.random.default_rng(1)
    t = rng.integers(1, 30, size=80).astype(float)
    km = kaplan_meier(t, np.ones_like(t))
    emp = np.array([(t > u).mean() for u in km.times])
    np.testing.assert_allclose(km.survival, emp, rtol=1e-12, atol=1e-15)


def test_landmark_before_first_time_and_between_times():
    km = kaplan_meier([2.0, 4.0, 6.0, 8.0], [1, 0, 1, 0])
    before = km.at(1.0)
    assert (before.estimate, before.ci_low, before.ci_high) == (1.0, 1.0, 1.0)
    assert km.at(5.0).estimate == km.at(4.0).estimate == pytest.approx(0.75, rel=1e-15)
    assert math.isnan(km.at(8.5).estimate)


def test_days_to_months():
    assert days_to_months(DAYS_PER_MONTH) == 1.0
    days = np.array([0.0, 365.25, 730.5])
    out = days_to_months(days)
    np.testing.assert_allclose(out, [0.0, 12.0, 24.0], rtol=1e-15)
    assert out is not days


def test_results_are_immutable_and_inputs_untouched():
    t = np.array([5.0, 1.0, 3.0, 3.0, 2.0])
    e = np.array([1, 0, 1, 1, 0])
    t0, e0 = t.copy(), e.copy()
    km = kaplan_meier(t, e)
    log_rank_test(t, e, np.array(["a", "b", "a", "b", "a"]))
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_array_equal(e, e0)
    assert isinstance(km, KaplanMeier)
    with pytest.raises(dataclasses.FrozenInstanceError):
        km.n = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        km.survival[0] = 0.0


def test_row_order_does_not_matter():
    t, e, g, _ = _load(CASES["ties_group"]["spec"])
    perm = np.random.default_rng(7).permutation(t.size)
    a, b = kaplan_meier(t, e), kaplan_meier(t[perm], e[perm])
    np.testing.assert_array_equal(a.survival, b.survival)
    assert log_rank_test(t, e, g).chisq == pytest.approx(
        log_rank_test(t[perm], e[perm], g[perm]).chisq, rel=1e-12
    )


def test_reverse_km_swaps_events_and_censorings():
    t = [1.0, 2.0, 3.0, 4.0]
    rk = reverse_kaplan_meier(t, [1, 0, 1, 0])
    np.testing.assert_array_equal(rk.n_event, [0, 1, 0, 1])


@pytest.mark.parametrize(
    ("time", "event", "message"),
    [
        ([1.0, -2.0], [1, 0], "negative"),
        ([1.0, np.nan], [1, 0], "missing"),
        ([1.0, 2.0], [1, 2], "0 \\(censored\\) or 1"),
        ([1.0, 2.0], [1], "has 1 values"),
        ([], [], "empty"),
    ],
)
def test_bad_input_raises_pofa_error(time, event, message):
    with pytest.raises(PofaError, match=message):
        kaplan_meier(time, event)


def test_bad_options_raise_pofa_error():
    with pytest.raises(EstimationError, match="ci_method"):
        kaplan_meier([1, 2], [1, 1], ci_method="logit")
    with pytest.raises(EstimationError, match="conf_level"):
        kaplan_meier([1, 2], [1, 1], conf_level=95)
    with pytest.raises(EstimationError, match="at least 2 groups"):
        log_rank_test([1, 2], [1, 1], ["a", "a"])
    with pytest.raises(EstimationError, match="no events"):
        log_rank_test([1, 2], [0, 0], ["a", "b"])
