"""Cox PH (Efron and Breslow ties), hazard ratios, global tests and cox.zph against R and closed forms.

Reference values: tests/reference/cox/cox.R (R 4.2.2, survival 3.5-3) -> cox.json, on R's lung, veteran
and ovarian data, the heavily tied simulated cohort and Therneau & Grambsch's data set 1 (book1).

Tolerances:
* coefficients, SEs, hazard ratios and their CIs: rtol 1e-6. R's coxph stops Newton-Raphson when the
  log-likelihood changes by < 1e-9 (relative), which leaves its coefficients up to ~4e-9 (relative) from
  the exact maximiser pofa polishes to; 1e-6 is well above that and far below any convention change
  (Breslow vs Efron moves them by 1e-3..1e-2).
* Wald p-values, LR/score/Wald statistics, cox.zph chi-squares and p: rtol 1e-6, for the same reason
  (they are smooth functions of the coefficients).
* log-likelihoods: rtol 1e-9 (the likelihood is flat at the maximum, so coefficient error enters squared).
* closed-form book1 cases: rtol 1e-10 (a maximiser solved to machine precision against exact formulas).
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
from pofa.stats.cox import COX_METHOD, cox_ph, cox_univariable, proportional_hazards_test

REF = Path(__file__).parent / "reference"
COX = json.loads((REF / "cox" / "cox.json").read_text())
RTOL_COEF = 1e-6
RTOL_LOGLIK = 1e-9
RTOL_EXACT = 1e-10


def _arr(x: object) -> np.ndarray:
    return np.atleast_1d(np.array(x, dtype=float))


def _data(case: dict) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    spec = case["spec"]
    if "file" in spec:
        df = pd.read_csv(REF / "data" / spec["file"])
        if "dropna" in spec:
            df = df.dropna(subset=spec["dropna"])
        event = (df[spec["event"]] == spec["event_value"]).astype(int)
        time = df[spec["time"]]
    else:
        df = pd.DataFrame(spec["inline"])
        time, event = df["time"], df["status"]
    covs = np.ravel(spec["covariates"]).tolist()
    return time, event, df[covs]


CASE_IDS = [f"{c['name']}-{c['ties']}" for c in COX["cases"]]


@pytest.mark.parametrize("engine", ["numpy", "statsmodels"])
@pytest.mark.parametrize("case", COX["cases"], ids=CASE_IDS)
def test_cox_matches_coxph(case, engine):
    time, event, x = _data(case)
    fit = cox_ph(time, event, x, ties=case["ties"], engine=engine)
    assert fit.n == case["n"] and fit.n_events == case["nevent"]
    assert len(fit.coef_names) == len(_arr(case["coef"]))
    np.testing.assert_allclose(fit.coef, _arr(case["coef"]), rtol=RTOL_COEF)
    np.testing.assert_allclose(fit.std_err, _arr(case["se"]), rtol=RTOL_COEF)
    np.testing.assert_allclose([h.estimate for h in fit.hazard_ratios], _arr(case["hr"]), rtol=RTOL_COEF)
    np.testing.assert_allclose([h.ci_low for h in fit.hazard_ratios], _arr(case["hr_lower"]), rtol=RTOL_COEF)
    np.testing.assert_allclose([h.ci_high for h in fit.hazard_ratios], _arr(case["hr_upper"]), rtol=RTOL_COEF)
    np.testing.assert_allclose([h.p for h in fit.hazard_ratios], _arr(case["wald_p"]), rtol=RTOL_COEF)
    np.testing.assert_allclose(fit.covariance.ravel(), _arr(np.ravel(case["var"])), rtol=RTOL_COEF)
    np.testing.assert_allclose(fit.loglik, case["loglik"], rtol=RTOL_LOGLIK)
    np.testing.assert_allclose(fit.loglik_null, case["loglik_null"], rtol=RTOL_LOGLIK)
    for mine, theirs in (
        (fit.lr_test, case["lr"]),
        (fit.wald_test, case["wald"]),
        (fit.score_test, case["score"]),
    ):
        np.testing.assert_allclose(mine.statistic, theirs[0], rtol=RTOL_COEF)
        assert mine.df == theirs[1]
        np.testing.assert_allclose(mine.p, theirs[2], rtol=RTOL_COEF)
    if case["ties"] == "efron":
        assert fit.method == COX_METHOD == "Cox PH, Efron ties, Wald CI (survival::coxph)"
        assert all(h.method == COX_METHOD for h in fit.hazard_ratios)


@pytest.mark.parametrize("case", COX["cases"], ids=CASE_IDS)
def test_ph_check_matches_cox_zph(case):
    time, event, x = _data(case)
    zph = proportional_hazards_test(cox_ph(time, event, x, ties=case["ties"]))
    table = zph.summary()
    assert list(table.index) == np.atleast_1d(case["zph_terms"]).tolist()
    np.testing.assert_allclose(table["chisq"], _arr(case["zph_chisq"]), rtol=RTOL_COEF)
    np.testing.assert_array_equal(table["df"], _arr(case["zph_df"]))
    np.testing.assert_allclose(table["p"], _arr(case["zph_p"]), rtol=RTOL_COEF)
    assert "cox.zph" in zph.method and zph.transform == "km"


def test_categorical_terms_are_treatment_coded_like_r():
    case = next(c for c in COX["cases"] if c["name"] == "veteran_multi")
    fit = cox_ph(*_data(case))
    assert fit.coef_names == (
        "trt",
        "karno",
        "age",
        "celltype=large",
        "celltype=smallcell",
        "celltype=squamous",
    )
    assert fit.term_columns == ((0,), (1,), (2,), (3, 4, 5))
    assert fit.hazard_ratio("celltype=large") is fit.hazard_ratios[3]
    zph = proportional_hazards_test(fit)
    assert zph.test("celltype").df == 3


def test_univariable_equals_single_fits():
    case = next(c for c in COX["cases"] if c["name"] == "lung_multi")
    time, event, x = _data(case)
    uni = cox_univariable(time, event, x)
    assert list(uni) == ["age", "sex", "ph.ecog"]
    for name, ref in (("age", "lung_uni_age"), ("sex", "lung_uni_sex"), ("ph.ecog", "lung_uni_ph.ecog")):
        want = next(c for c in COX["cases"] if c["name"] == ref)
        np.testing.assert_allclose(uni[name].coef, _arr(want["coef"]), rtol=RTOL_COEF)


# ----------------------------------------------------------------------------------------------
# Therneau & Grambsch data set 1 (survival's tests/book1.R): closed forms
# ----------------------------------------------------------------------------------------------

BOOK1 = pd.DataFrame({"time": [9, 1, 1, 6, 6, 8], "status": [1, 1, 0, 1, 1, 0], "x": [0, 1, 1, 1, 0, 0]})


def test_book1_breslow_closed_form():
    # score 2 - r/(r+1) - 2r/(r+3) = 0  <=>  r^2 - 3r - 6 = 0
    r = (3 + math.sqrt(33)) / 2
    beta = math.log(r)
    loglik = 2 * beta - math.log(3 * r + 3) - 2 * math.log(r + 3)
    info = r / (r + 1) ** 2 + 6 * r / (r + 3) ** 2
    fit = cox_ph(BOOK1.time, BOOK1.status, BOOK1[["x"]], ties="breslow")
    np.testing.assert_allclose(fit.coef[0], beta, rtol=RTOL_EXACT)
    np.testing.assert_allclose(fit.loglik, loglik, rtol=RTOL_EXACT)
    np.testing.assert_allclose(fit.std_err[0], 1 / math.sqrt(info), rtol=RTOL_EXACT)
    np.testing.assert_allclose(fit.loglik_null, -math.log(6) - 2 * math.log(4), rtol=RTOL_EXACT)
    # score test at 0: U = 1, I = 1/4 + 6/16
    np.testing.assert_allclose(fit.score_test.statistic, 1 / (1 / 4 + 6 / 16), rtol=RTOL_EXACT)


def test_book1_efron_closed_form():
    # Efron: the two deaths at t = 6 see denominators r + 3 and (r + 5) / 2; score 2 - r/(r+1) - r/(r+3)
    # - r/(r+5) = 0  <=>  r^3 - 23 r - 30 = 0, whose positive root is (trigonometric form of the cubic)
    r = 2 * math.sqrt(23 / 3) * math.cos(math.acos((3 * -30) / (2 * -23) * math.sqrt(3 / 23)) / 3)
    assert abs(r**3 - 23 * r - 30) < 1e-9
    beta = math.log(r)
    loglik = 2 * beta - math.log(3 * r + 3) - math.log(r + 3) - math.log((r + 5) / 2)
    info = r / (r + 1) ** 2 + 3 * r / (r + 3) ** 2 + 5 * r / (r + 5) ** 2
    fit = cox_ph(BOOK1.time, BOOK1.status, BOOK1[["x"]])
    np.testing.assert_allclose(fit.coef[0], beta, rtol=RTOL_EXACT)
    np.testing.assert_allclose(fit.loglik, loglik, rtol=RTOL_EXACT)
    np.testing.assert_allclose(fit.std_err[0], 1 / math.sqrt(info), rtol=RTOL_EXACT)
    u0 = 2 - 1 / 2 - 1 / 4 - 1 / 6
    i0 = 1 / 4 + 3 / 16 + 5 / 36
    np.testing.assert_allclose(fit.score_test.statistic, u0 * u0 / i0, rtol=RTOL_EXACT)


# ----------------------------------------------------------------------------------------------
# invariants and errors
# ----------------------------------------------------------------------------------------------


def test_row_order_and_time_scale_do_not_matter():
    case = next(c for c in COX["cases"] if c["name"] == "ties_multi" and c["ties"] == "efron")
    time, event, x = _data(case)
    fit = cox_ph(time, event, x)
    perm = np.random.default_rng(3).permutation(len(time))
    shuffled = cox_ph(time.iloc[perm], event.iloc[perm], x.iloc[perm])
    np.testing.assert_allclose(shuffled.coef, fit.coef, rtol=1e-10)
    scaled = cox_ph(time * 30.4375, event, x)
    np.testing.assert_allclose(scaled.coef, fit.coef, rtol=1e-10)
    z1 = proportional_hazards_test(fit).summary()["chisq"].to_numpy()
    z2 = proportional_hazards_test(shuffled).summary()["chisq"].to_numpy()
    np.testing.assert_allclose(z1, z2, rtol=1e-9)


def test_result_is_frozen_and_input_untouched():
    x = BOOK1[["x"]].copy()
    before = x.copy()
    fit = cox_ph(BOOK1.time, BOOK1.status, x)
    pd.testing.assert_frame_equal(x, before)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.n = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        fit.coef[0] = 0.0


@pytest.mark.parametrize("engine", ["numpy", "statsmodels"])
def test_monotone_likelihood_is_reported(engine):
    # every event in group x = 1: the maximum-likelihood hazard ratio is infinite
    time = np.arange(1.0, 21.0)
    x = pd.DataFrame({"x": [1] * 10 + [0] * 10})
    event = np.array([1] * 10 + [0] * 10)
    with pytest.raises(EstimationError, match="infinity"):
        cox_ph(time, event, x, engine=engine)


@pytest.mark.parametrize(
    ("covariates", "message"),
    [
        (pd.DataFrame({"x": [1.0, np.nan, 0, 1, 0, 1]}), "missing values"),
        (pd.DataFrame({"x": [1.0] * 6}), "constant"),
        (pd.DataFrame({"a": [1.0, 0, 1, 0, 1, 0], "b": [2.0, 0, 2, 0, 2, 0]}), "collinear"),
        (pd.DataFrame({"x": [1.0, 0, 1]}), "rows"),
    ],
)
def test_bad_covariates_raise_pofa_error(covariates, message):
    with pytest.raises(PofaError, match=message):
        cox_ph(BOOK1.time, BOOK1.status, covariates)


def test_no_events_and_bad_options():
    with pytest.raises(EstimationError, match="no events"):
        cox_ph(BOOK1.time, [0] * 6, BOOK1[["x"]])
    with pytest.raises(EstimationError, match="engine"):
        cox_ph(BOOK1.time, BOOK1.status, BOOK1[["x"]], engine="lifelines")  # type: ignore[arg-type]
    with pytest.raises(EstimationError, match="ties"):
        cox_ph(BOOK1.time, BOOK1.status, BOOK1[["x"]], ties="exact")  # type: ignore[arg-type]
    fit = cox_ph(BOOK1.time, BOOK1.status, BOOK1[["x"]])
    with pytest.raises(EstimationError, match="transform"):
        proportional_hazards_test(fit, transform="spline")
    with pytest.raises(EstimationError, match="no coefficient"):
        fit.hazard_ratio("age")
