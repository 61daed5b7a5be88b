"""Convergence as R defines it, for every iterative estimator, and a stated reason when a fit fails.

The iteration counts equal R's (glm, coxph) on the cohorts of tests/test_stats_scale_vs_r.py; here the rules
are checked on closed forms and on fits made to fail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pofa.stats import cox as cox_module
from pofa.stats.factors import build_design, parse_factor
from pofa.stats.firth import FIRTH_CONVERGENCE, fit_firth
from pofa.stats.gee import GEE_CONVERGENCE, gee_exchangeable_logit
from pofa.stats.logistic import GLM_CONVERGENCE, irls_logit


def _binary_design(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.random(n) < 0.3).astype(float)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(1.0 - 0.5 * x))).astype(float)
    return np.column_stack([np.ones(n), x]), y


def test_logistic_equals_the_closed_form_on_a_large_design() -> None:
    """One yes/no term: the MLE is the difference of the two groups' log-odds. 150,000 rows: a deviance of
    ~180,000, whose rounding unit (3e-11) exceeds the absolute tolerance the former fit used."""
    X, y = _binary_design(150_000, 1)
    fit = irls_logit(X, y)
    x = X[:, 1] == 1
    p1, p0 = y[x].mean(), y[~x].mean()
    b = np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0))
    se = np.sqrt(1 / (x.sum() * p1 * (1 - p1)) + 1 / ((~x).sum() * p0 * (1 - p0)))
    assert fit.converged and fit.n_iter <= 25
    np.testing.assert_allclose(fit.coef[1], b, rtol=1e-12)
    np.testing.assert_allclose(np.sqrt(fit.cov[1, 1]), se, rtol=1e-10)


def test_logistic_failure_says_why() -> None:
    X, y = _binary_design(500, 2)
    fit = irls_logit(X, y, maxit=1)
    assert not fit.converged and np.all(np.isnan(fit.coef))
    assert "did not converge in 1 iterations" in fit.reason and "1e-08" in fit.reason
    assert "glm.control" in GLM_CONVERGENCE


def test_gee_failure_says_why() -> None:
    rng = np.random.default_rng(3)
    groups = np.repeat([f"P{k}" for k in range(100)], 4)
    X = np.column_stack([np.ones(400), rng.random(400) < 0.4])
    y = (rng.random(400) < 0.35).astype(float)
    ok = gee_exchangeable_logit(y, X, groups)
    assert ok.converged and 0 < ok.r_iter <= 25 and ok.convergence == GEE_CONVERGENCE
    bad = gee_exchangeable_logit(y, X, groups, maxit=1)
    assert not bad.converged and "did not converge in 1 iterations" in bad.message
    assert "geepack" in bad.message


def test_cox_failure_says_why() -> None:
    rng = np.random.default_rng(4)
    t = rng.exponential(10.0, 300).round(1)
    e = (rng.random(300) < 0.7).astype(int)
    x = pd.DataFrame({"x": rng.random(300) < 0.5}).astype(float)
    fit = cox_module.cox_ph(t, e, x)
    assert 0 < fit.n_iter <= 20 and "coxph.control" in fit.convergence
    rs = cox_module._RiskSets(t, e, x.to_numpy(), True)
    beta, n_iter, converged = cox_module._newton(rs, iter_max=1)
    assert not converged and n_iter == 1
    beta, n_iter, converged = cox_module._newton(rs)
    assert converged and n_iter == fit.n_iter
    np.testing.assert_allclose(beta, fit.coef, rtol=0, atol=0)


def test_firth_states_its_rule() -> None:
    rng = np.random.default_rng(5)
    lesions = pd.DataFrame(
        {
            "patient_id": [f"P{k}" for k in range(80)],
            "local_failure": (rng.random(80) < 0.3).astype(int),
            "extranodal": rng.random(80) < 0.4,
        }
    )
    d = build_design(lesions, (parse_factor("extranodal"),), outcome="local_failure", cluster="patient_id")
    table = fit_firth(d)
    assert table.converged and table.convergence == FIRTH_CONVERGENCE and table.n_iter > 0


#: A 40-patient replicate of the power analysis: at the root the log partial likelihood drops by one rounding
#: unit; testing for a decrease before convergence would halve the step forever and call a finite HR
#: infinite.
ROUNDING_TIMES = [
    13.260812155511637, 19.556486371559775, 16.13418973210897, 5.72771765827681, 0.9905365289326056,
    1.8691182745227215, 0.1515570374475795, 7.044956926995397, 2.437159085190493, 5.444430515888357,
    4.864303392083076, 8.906598976456054, 4.529451216560298, 13.151096640259723, 2.1766342135313748,
    0.6025923569315466, 3.5215425990774816, 8.221762223132346, 6.170987610122557, 9.060622044058851,
    12.520772597065946, 11.3608394064755, 4.38830642301797, 4.103891846972676, 24.0, 15.744220514477451,
    15.881442078000495, 5.169007469560128, 17.5466909320215, 24.0, 3.7332959694806145, 24.0,
    2.2341706567565494, 5.040052272775154, 4.021182724771732, 3.4046571872970754, 10.836678023138413,
    4.611342983856873, 24.0, 11.839206673377863,
]
ROUNDING_EVENTS = "1111111111111111111111110111101011111101"
ROUNDING_X = "0001011110110110101110110011101011110000"


def test_cox_converges_when_the_likelihood_drops_by_a_rounding_unit() -> None:
    """As survival's coxfit6, the convergence test comes before the test for a decrease."""
    t = np.array(ROUNDING_TIMES)
    e = np.array([int(c) for c in ROUNDING_EVENTS])
    x = pd.DataFrame({"x": [float(c) for c in ROUNDING_X]})
    fit = cox_module.cox_ph(t, e, x)
    assert fit.n_iter <= 4
    # the root: the score is zero there
    _, u, _ = cox_module._RiskSets(t, e, x.to_numpy(), True).derivatives(np.asarray(fit.coef))
    assert abs(float(u[0])) < 1e-9
