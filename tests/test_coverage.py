"""Coverage study of the lesion-level statistics (``pofa.power.coverage``): the closed-form logistic fits
against statsmodels, and a small simulation study where GEE 95% CIs cover the true marginal OR and plain
logistic regression under-covers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import statsmodels.api as sm

from pofa.power.coverage import METHODS, coverage, logistic_2x2, run_coverage_chunk
from pofa.power.design import EffectScale, LesionOutcome
from pofa.power.marginal import lesion_truth
from pofa.power.power import chunk_plan
from pofa.power.simulate import draw_lesion_replicates
from pofa.stats.gee import gee_exchangeable_logit

#: figura2021-like clustering (docs/power.md): 1 + NB(6.44, 2) lesions, random-intercept SD 1.66, the
#: simulator's conditional log OR of diameter >= 5 cm (1.405); a factor strongly clustered within patients.
CLUSTERED = LesionOutcome(odds_ratio=math.exp(1.4050), effect_scale=EffectScale.CONDITIONAL, factor_icc=0.6)


def test_logistic_2x2_matches_statsmodels_glm_and_gee_independence() -> None:
    reps = draw_lesion_replicates(CLUSTERED, lesion_truth(CLUSTERED), 40, 5, np.random.SeedSequence(3))
    log_or, se_model, se_robust = logistic_2x2(reps)
    for r in range(5):
        y, X, g = reps.replicate(r)
        glm = sm.GLM(y, X, family=sm.families.Binomial()).fit(tol=1e-12)
        # ML estimate and inverse-information SE of R glm; the closed form is exact, so 1e-8 relative covers
        # the iterative fit's convergence.
        assert log_or[r] == pytest.approx(glm.params[1], rel=1e-8)
        assert se_model[r] == pytest.approx(glm.bse[1], rel=1e-8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gee = sm.GEE(y, X, groups=g, family=sm.families.Binomial(),
                         cov_struct=sm.cov_struct.Independence()).fit(ctol=1e-12, ddof_scale=0)
        # cluster sandwich without small-sample factor = geeglm(corstr = "independence")
        assert log_or[r] == pytest.approx(gee.params[1], rel=1e-8)
        assert se_robust[r] == pytest.approx(gee.bse[1], rel=1e-8)


def test_empty_cell_is_not_estimable() -> None:
    # 40 patients with one lesion, 20% exposed, risk 0.15 / 0.26: about 1 replicate in 10 has an empty cell.
    o = LesionOutcome(odds_ratio=2.0, baseline_risk=0.15, prevalence=0.2, lesions_mean=1,
                      lesions_distribution="fixed")
    truth = lesion_truth(o)
    (_, ss), = chunk_plan(60, 1, 60)
    reps = draw_lesion_replicates(o, truth, 40, 60, ss)
    log_or, se_model, se_robust = logistic_2x2(reps)
    assert 0 < np.isnan(log_or).sum() < 30
    assert np.array_equal(np.isnan(log_or), np.isnan(se_robust))
    assert np.array_equal(np.isnan(log_or), np.isnan(se_model))
    est, se = run_coverage_chunk(o, truth, 40, 60, ss)
    np.testing.assert_array_equal(est[:, 2], log_or)
    assert np.isnan(est[np.isnan(log_or), :2]).all()  # GEE is not fitted there (separation)
    res = coverage(o, 40, replicates=60, seed=1, chunk_size=60)
    assert res.methods[2].n_estimable == 60 - int(np.isnan(log_or).sum())  # left out of the coverage


def test_gee_columns_are_gee_exchangeable_logit() -> None:
    truth = lesion_truth(CLUSTERED)
    (n, ss), = chunk_plan(4, 7, 4)
    est, se = run_coverage_chunk(CLUSTERED, truth, 30, n, ss)
    reps = draw_lesion_replicates(CLUSTERED, truth, 30, n, ss)
    for r in range(n):
        fit = gee_exchangeable_logit(*reps.replicate(r), bias_reduced=True)
        assert est[r, 0] == est[r, 1] == fit.params[1]
        assert se[r, 0] == fit.bse[1] and se[r, 1] == fit.bse_md[1]  # type: ignore[index]


def test_gee_covers_and_logistic_under_covers() -> None:
    # 100 patients, factor ICC 0.6. A 3000-replicate run measured coverage 0.940 (GEE robust), 0.948
    # (Mancl-DeRouen), 0.825 (logistic, model SE), 0.942 (logistic, cluster-robust SE).
    # With R = 400 the MC SD of a coverage near 0.95 is 0.011: GEE must be within 3 SDs (0.033) of 0.95;
    # logistic must be below 0.95 by more than that, and 0.05 below GEE (expected gap 0.115; SD of the paired
    # difference <= 0.022, so the margin is about 3 SDs).
    R = 400
    res = coverage(CLUSTERED, 100, replicates=R, seed=20)
    assert [m.method for m in res.methods] == list(METHODS)
    assert res.truth.log_or_marginal < res.truth.log_or_conditional  # the target is the marginal OR
    tol = 3 * math.sqrt(0.95 * 0.05 / R)
    gee, md, logit, robust = res.methods
    assert gee.n_estimable == md.n_estimable == logit.n_estimable == R
    assert abs(gee.coverage - 0.95) <= tol and abs(md.coverage - 0.95) <= tol
    assert logit.coverage < 0.95 - tol
    assert gee.coverage - logit.coverage >= 0.05
    assert robust.coverage - logit.coverage >= 0.05  # the logistic estimate is fine, its model SE is not
    # the model-based SE is too small against the spread of the estimates; the GEE SE is not
    assert logit.mean_se < 0.8 * logit.empirical_sd
    assert 0.85 * gee.empirical_sd < gee.mean_se < 1.15 * gee.empirical_sd
    assert gee.ci_low <= gee.coverage <= gee.ci_high


def test_coverage_is_deterministic() -> None:
    a = coverage(CLUSTERED, 20, replicates=30, seed=2, chunk_size=10)
    b = coverage(CLUSTERED, 20, replicates=30, seed=2, chunk_size=10)
    assert a.methods == b.methods
    assert a.method("logistic, model-based SE") == a.methods[2]
    with pytest.raises(KeyError):
        a.method("nope")
