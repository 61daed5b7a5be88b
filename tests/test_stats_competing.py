"""Cumulative incidence (Aalen-Johansen) and Gray's test against cmprsk::cuminc.

Reference values: tests/reference/competing/cuminc.R (R 4.2.2, cmprsk 2.2-11) -> cuminc.json, on
survival's mgus2 (progression vs death), a simulated cohort with heavy ties across causes (three groups,
two strata, rho = 0 and 1) and a tiny hand-made case whose last time is a failure.

Tolerances:
* CIF estimates, variances and CIs: rtol 1e-8 -- the same finite sums and products as cmprsk's Fortran
  (observed agreement ~1e-14, limited by the 15-digit JSON); a tie mishandled or a variance term dropped
  changes them by >= 1e-4.
* Gray's statistic and p: rtol 1e-9 -- closed-form sums and a small linear solve; R's p is
  1 - pchisq(), exact to ~1e-16 absolute, which is within 1e-9 relative for every p here (> 1e-4).
* Event times and last follow-up times: exact (they are data values).
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
from pofa.stats.competing import cumulative_incidence, gray_test
from pofa.stats.survival import kaplan_meier

REF = Path(__file__).parent / "reference"
CR = json.loads((REF / "competing" / "cuminc.json").read_text())
RTOL_CIF = 1e-8
RTOL_TEST = 1e-9


def _arr(x: object) -> np.ndarray:
    return np.array(
        [np.nan if v is None else v for v in np.atleast_1d(np.array(x, dtype=object))], dtype=float
    )


def _data(case: dict):
    spec = case["spec"]
    df = pd.read_csv(REF / "data" / spec["file"]) if "file" in spec else pd.DataFrame(spec["inline"])
    group = df[spec["group"]] if "group" in spec else None
    strata = df[spec["strata"]] if "strata" in spec else None
    return df[spec["time"]], df[spec["cause"]], group, strata


def _close(actual, desired, rtol):
    a = np.asarray(actual, dtype=float).reshape(-1)
    d = _arr(desired)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(d))
    np.testing.assert_allclose(a[~np.isnan(a)], d[~np.isnan(d)], rtol=rtol, atol=0)


@pytest.mark.parametrize("case", CR["cases"], ids=[c["name"] for c in CR["cases"]])
def test_curves_match_cuminc(case):
    time, cause, group, strata = _data(case)
    res = cumulative_incidence(time, cause, group=group, strata=strata, rho=case["rho"])
    for name, raw in zip(case["curve_names"], case["curves"].values(), strict=True):
        label, k = name.split(" ")
        cur = res.curve(int(k), None if group is None else label)
        # cuminc's step-function layout: (0, t1, t1, t2, t2, ..., last follow-up)
        x, est, var = _arr(raw["time"]), _arr(raw["est"]), _arr(raw["var"])
        np.testing.assert_array_equal(cur.times, x[2:-1:2])
        assert cur.last_time == x[-1]
        _close(cur.estimate, est[2:-1:2], RTOL_CIF)
        _close(cur.variance, var[2:-1:2], RTOL_CIF)
        assert "cmprsk::cuminc" in cur.method


@pytest.mark.parametrize("case", CR["cases"], ids=[c["name"] for c in CR["cases"]])
def test_timepoints_and_log_log_ci(case):
    time, cause, group, strata = _data(case)
    res = cumulative_incidence(time, cause, group=group)
    grid = _arr(case["tp_times"])
    for i, name in enumerate(case["curve_names"]):
        label, k = name.split(" ")
        cur = res.curve(int(k), None if group is None else label)
        ests = [cur.at(t) for t in grid]
        _close([e.estimate for e in ests], case["tp_est"][i], RTOL_CIF)
        _close([cur.variance_at(t) for t in grid], case["tp_var"][i], RTOL_CIF)
        # the log-log interval is undefined where F = 0 (R script gives NA there too)
        _close([e.ci_low if e.estimate > 0 else math.nan for e in ests], case["tp_lower"][i], RTOL_CIF)
        _close([e.ci_high if e.estimate > 0 else math.nan for e in ests], case["tp_upper"][i], RTOL_CIF)


@pytest.mark.parametrize("case", [c for c in CR["cases"] if "tests" in c], ids=lambda c: c["name"])
def test_gray_test_matches_cuminc(case):
    time, cause, group, strata = _data(case)
    res = cumulative_incidence(time, cause, group=group, strata=strata, rho=case["rho"])
    tests = case["tests"]
    for k, stat, p, df in zip(tests["causes"], tests["stat"], tests["p"], tests["df"], strict=True):
        g = res.test(int(k))
        np.testing.assert_allclose(g.statistic, stat, rtol=RTOL_TEST)
        np.testing.assert_allclose(g.p, p, rtol=RTOL_TEST)
        assert g.df == df
        direct = gray_test(time, cause, group, cause_of_interest=int(k), strata=strata, rho=case["rho"])
        assert direct.statistic == g.statistic


def test_single_cause_cif_is_one_minus_km():
    # with no competing cause, the Aalen-Johansen estimate is 1 - Kaplan-Meier
    time = np.array([1, 1, 2, 3, 3, 3, 5, 6, 6, 8], dtype=float)
    cause = np.array([1, 0, 1, 1, 1, 0, 0, 1, 0, 1])
    cur = cumulative_incidence(time, cause).curve(1)
    km = kaplan_meier(time, cause)
    s_at = np.array([km.at(t).estimate for t in cur.times])
    np.testing.assert_allclose(cur.estimate, 1 - s_at, rtol=1e-13)


def test_ties_are_counted_together_not_jittered():
    # two causes and a censoring at the same time: a deterministic, order-free result
    time = np.array([2.0, 2.0, 2.0, 4.0, 4.0, 5.0])
    cause = np.array([1, 2, 0, 1, 2, 1])
    a = cumulative_incidence(time, cause).curve(1)
    perm = [5, 2, 0, 4, 1, 3]
    b = cumulative_incidence(time[perm], cause[perm]).curve(1)
    np.testing.assert_array_equal(a.estimate, b.estimate)
    # at t = 2: 6 at risk, one cause-1 failure -> F = 1/6; overall S drops to 4/6
    assert a.estimate[0] == pytest.approx(1 / 6, rel=1e-15)
    # at t = 4: 3 at risk, S(4-) = 4/6, one cause-1 failure -> F = 1/6 + (4/6)(1/3)
    assert a.estimate[1] == pytest.approx(1 / 6 + 4 / 18, rel=1e-15)


def test_landmarks_beyond_follow_up_and_before_first_failure():
    cur = cumulative_incidence([1.0, 3.0, 4.0, 7.0], [0, 1, 2, 0]).curve(1)
    assert cur.at(2.0).estimate == 0.0 and "no failure" in cur.at(2.0).reason
    assert math.isnan(cur.at(7.5).estimate) and "beyond" in cur.at(7.5).reason
    assert set(cur.landmarks((1.0, 6.0))) == {1.0, 6.0}


def test_plain_interval_and_immutability():
    time, cause, group, _ = _data(CR["cases"][0])
    res = cumulative_incidence(time, cause, group=group, ci_method="plain")
    cur = res.curve(1, "F")
    se = np.sqrt(cur.variance)
    np.testing.assert_allclose(cur.ci_low, np.clip(cur.estimate - 1.959963984540054 * se, 0, 1), rtol=1e-12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cur.n = 0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        cur.estimate[0] = 0.0


def test_inputs_untouched():
    time = np.array([3.0, 1.0, 2.0, 2.0])
    cause = np.array([1, 2, 0, 1])
    group = np.array(["a", "b", "a", "b"])
    copies = (time.copy(), cause.copy(), group.copy())
    cumulative_incidence(time, cause, group=group)
    for before, after in zip(copies, (time, cause, group), strict=True):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time": [1.0, 2.0], "cause": [0, 0]}, "no failures"),
        ({"time": [1.0, 2.0], "cause": [1, -1]}, "integer codes"),
        ({"time": [1.0, 2.0], "cause": [1.5, 1]}, "integer codes"),
        ({"time": [1.0, 2.0], "cause": [1, 2], "ci_method": "logit"}, "ci_method"),
    ],
)
def test_bad_input_raises_pofa_error(kwargs, message):
    with pytest.raises(PofaError, match=message):
        cumulative_incidence(**kwargs)


def test_gray_test_needs_two_groups_and_the_cause():
    with pytest.raises(EstimationError, match="at least 2 groups"):
        gray_test([1.0, 2.0], [1, 2], ["a", "a"])
    with pytest.raises(EstimationError, match="no failure from cause 3"):
        gray_test([1.0, 2.0], [1, 2], ["a", "b"], cause_of_interest=3)
