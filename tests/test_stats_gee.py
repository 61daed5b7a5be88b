"""GEE (patients as clusters) against R geepack::geeglm and the Mancl-DeRouen formula computed in R.

Reference values: tests/reference/lesion/reference.json, written by make_reference.R (R 4.2.2, geepack 1.3.9)
from cohort_a.csv / cohort_b.csv.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from pofa.errors import EstimationError
from pofa.stats.factors import DEFAULT_FACTORS, RiskFactor, build_design
from pofa.stats.gee import fit_gee, gee_exchangeable_logit
from pofa.stats.logistic import fit_logistic

REF = Path(__file__).parent / "reference" / "lesion"
R = json.loads((REF / "reference.json").read_text())

FACTORS_A = DEFAULT_FACTORS
FACTORS_B = (
    RiskFactor("suvmax", scale="sd"),
    RiskFactor("extranodal"),
    RiskFactor("diameter_cm", threshold=5),
)

# geeglm was run with epsilon 1e-12 and ours stops at steps < 1e-10; both sit at the same root, measured
# agreement is ~1e-13 relative, so 1e-8 leaves room for BLAS differences but would catch any convention change
# (statsmodels' default df-corrected alpha moves coefficients by up to 5e-3).
RTOL_TIGHT = 1e-8
# geeglm with its default control (epsilon 1e-4) stops ~1e-7 from the root: the brief's 1e-4 bound.
RTOL_DEFAULT_CONTROL = 1e-4


def _cohort(name: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{name}.csv", dtype={"patient_id": str, "lesion_id": str})


def _cases():
    for name, factors in (("cohort_a", FACTORS_A), ("cohort_b", FACTORS_B)):
        specs = [(f,) for f in factors] + [tuple(factors)]
        for i, fs in enumerate(specs):
            yield pytest.param(name, fs, i, id=f"{name}-{'+'.join(f.name for f in fs)}")


@pytest.mark.parametrize(("cohort", "factors", "i"), list(_cases()))
def test_fast_gee_matches_geeglm(cohort: str, factors: tuple[RiskFactor, ...], i: int) -> None:
    ref = R[cohort][i]
    design = build_design(_cohort(cohort), factors, outcome="local_failure", cluster="patient_id")
    assert list(design.columns) == ref["terms"]
    assert design.n_lesions == ref["n_lesions"]
    assert design.n_patients == ref["n_patients"]
    assert design.n_dropped == ref["n_dropped"]
    fit = gee_exchangeable_logit(design.y, design.X, design.groups, bias_reduced=True)
    assert fit.converged, fit.message
    np.testing.assert_allclose(fit.params, ref["gee"]["coef"], rtol=RTOL_TIGHT)
    np.testing.assert_allclose(fit.bse, ref["gee"]["se"], rtol=RTOL_TIGHT)
    np.testing.assert_allclose(fit.alpha, ref["gee"]["alpha"], rtol=RTOL_TIGHT)
    np.testing.assert_allclose(fit.scale, ref["gee"]["scale"], rtol=RTOL_TIGHT)
    np.testing.assert_allclose(fit.bse_md, ref["gee"]["se_md"], rtol=RTOL_TIGHT)
    np.testing.assert_allclose(fit.params, ref["gee_default"]["coef"], rtol=RTOL_DEFAULT_CONTROL)
    np.testing.assert_allclose(fit.bse, ref["gee_default"]["se"], rtol=RTOL_DEFAULT_CONTROL)


@pytest.mark.parametrize("small_sample", [False, True])
def test_statsmodels_engine_matches_geeglm(small_sample: bool) -> None:
    ref = R["cohort_a"][3]
    design = build_design(_cohort("cohort_a"), FACTORS_A, outcome="local_failure", cluster="patient_id")
    for engine in ("numpy", "statsmodels"):
        t = fit_gee(design, small_sample=small_sample, engine=engine)
        assert t.converged
        np.testing.assert_allclose(t.coef, ref["gee"]["coef"], rtol=RTOL_TIGHT)
        np.testing.assert_allclose(t.se, ref["gee"]["se_md" if small_sample else "se"], rtol=RTOL_TIGHT)


def test_statsmodels_bias_reduced_is_mancl_derouen() -> None:
    """statsmodels' cov_type="bias_reduced" equals the MD formula computed by hand in R (and ours)."""
    ref = R["cohort_b"][3]
    design = build_design(_cohort("cohort_b"), FACTORS_B, outcome="local_failure", cluster="patient_id")
    model = sm.GEE(
        np.asarray(design.y),
        np.asarray(design.X),
        groups=np.asarray(design.groups),
        family=sm.families.Binomial(),
        cov_struct=sm.cov_struct.Exchangeable(),
    )
    res = model.fit(maxiter=100, ctol=1e-10, ddof_scale=0, cov_type="bias_reduced")
    np.testing.assert_allclose(res.bse, ref["gee"]["se_md"], rtol=RTOL_TIGHT)
    # the MD SEs are larger than the plain sandwich SEs (30 clusters)
    assert np.all(np.asarray(ref["gee"]["se_md"]) > np.asarray(ref["gee"]["se"]))


def test_wald_ci_and_p_from_se() -> None:
    ref = R["cohort_a"][0]
    design = build_design(_cohort("cohort_a"), FACTORS_A[:1], outcome="local_failure", cluster="patient_id")
    t = fit_gee(design)
    b, se = ref["gee"]["coef"][1], ref["gee"]["se"][1]
    np.testing.assert_allclose(
        [t.ci_low[1], t.ci_high[1]], [b - 1.959963984540054 * se, b + 1.959963984540054 * se], rtol=1e-8
    )
    from scipy.stats import chi2

    # geeglm's Wald chi-square (b/se)^2 on 1 df
    np.testing.assert_allclose(t.p[1], chi2.sf((b / se) ** 2, 1), rtol=1e-7)


def test_one_lesion_per_patient_equals_logistic() -> None:
    """Clusters of size 1: GEE = logistic MLE, SEs = the HC0 sandwich of logistic regression, alpha = 0."""
    d = _cohort("cohort_a").drop_duplicates("patient_id").copy()
    d["patient_id"] = [f"X{k}" for k in range(len(d))]
    d = pd.concat([d, _cohort("cohort_b").assign(patient_id=lambda x: "B" + x.index.astype(str))])
    design = build_design(d, FACTORS_A, outcome="local_failure", cluster="patient_id")
    assert design.n_patients == design.n_lesions
    fit = gee_exchangeable_logit(design.y, design.X, design.groups)
    glm = sm.GLM(np.asarray(design.y), np.asarray(design.X), family=sm.families.Binomial()).fit(
        tol=1e-14, cov_type="HC0"
    )
    # same estimating equations: agreement to solver precision
    np.testing.assert_allclose(fit.params, glm.params, rtol=1e-9)
    np.testing.assert_allclose(fit.bse, glm.bse, rtol=1e-8)
    assert fit.alpha == 0.0
    np.testing.assert_allclose(fit.params, fit_logistic(design).coef, rtol=1e-9)
    t = fit_gee(design)
    assert any("one lesion" in n for n in t.notes)


def test_row_order_does_not_matter() -> None:
    design = build_design(_cohort("cohort_a"), FACTORS_A, outcome="local_failure", cluster="patient_id")
    rng = np.random.default_rng(7)
    perm = rng.permutation(design.n_lesions)
    a = gee_exchangeable_logit(design.y, design.X, design.groups, bias_reduced=True)
    b = gee_exchangeable_logit(design.y[perm], design.X[perm], design.groups[perm], bias_reduced=True)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-11)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-10)
    np.testing.assert_allclose(a.cov_md, b.cov_md, rtol=1e-10)


def test_ids_colliding_as_numbers_stay_separate() -> None:
    d = _cohort("cohort_a")
    assert {"1.1", "1.10"} <= set(d["patient_id"])
    design = build_design(d, FACTORS_A, outcome="local_failure", cluster="patient_id")
    assert design.n_patients == 60
    fit = gee_exchangeable_logit(design.y, design.X, design.groups)
    np.testing.assert_allclose(fit.params, R["cohort_a"][3]["gee"]["coef"], rtol=RTOL_TIGHT)
    # merged ids (as float parsing does) give another model: the bug this guards against
    merged = gee_exchangeable_logit(design.y, design.X, design.groups.astype(float))
    assert merged.n_clusters < 60
    assert np.max(np.abs(merged.params - fit.params)) > 1e-3


def test_convergence_failure_is_reported_not_silent() -> None:
    # complete separation: x perfectly predicts y
    x = np.r_[np.zeros(20), np.ones(20)]
    X = np.column_stack([np.ones(40), x])
    y = x.copy()
    groups = np.repeat([f"P{k}" for k in range(10)], 4)
    fit = gee_exchangeable_logit(y, X, groups)
    assert not fit.converged
    assert fit.message
    assert np.all(np.isnan(fit.params))
    # too few iterations
    d = build_design(_cohort("cohort_a"), FACTORS_A, outcome="local_failure", cluster="patient_id")
    fit = gee_exchangeable_logit(d.y, d.X, d.groups, maxiter=2)
    assert not fit.converged and "did not converge in 2 iterations" in fit.message


def test_working_correlation_not_positive_definite_is_reported() -> None:
    # every 2-lesion patient has exactly one event: Pearson residuals +1/-1, alpha = -1
    y = np.tile([0.0, 1.0], 20)
    X = np.ones((40, 1))
    groups = np.repeat([f"P{k}" for k in range(20)], 2)
    fit = gee_exchangeable_logit(y, X, groups)
    assert not fit.converged
    assert "not positive definite" in fit.message


def test_bad_input_raises_clear_error() -> None:
    with pytest.raises(EstimationError, match="same length"):
        gee_exchangeable_logit(np.zeros(3), np.ones((4, 1)), np.array(["a", "b", "c", "d"]))
    with pytest.raises(EstimationError, match="missing"):
        gee_exchangeable_logit(np.array([0.0, np.nan]), np.ones((2, 1)), np.array(["a", "b"]))


def test_few_clusters_note() -> None:
    design = build_design(_cohort("cohort_b"), FACTORS_B, outcome="local_failure", cluster="patient_id")
    plain = fit_gee(design)
    md = fit_gee(design, small_sample=True)
    assert any("fewer than 50" in n and "biased downward" in n for n in plain.notes)
    assert any("Mancl-DeRouen" in n for n in md.notes)
    assert "Mancl-DeRouen" in md.method
    big = fit_gee(build_design(_cohort("cohort_a"), FACTORS_A, outcome="local_failure", cluster="patient_id"))
    assert not any("fewer than" in n for n in big.notes)


def test_result_is_immutable() -> None:
    d = build_design(_cohort("cohort_b"), FACTORS_B, outcome="local_failure", cluster="patient_id")
    fit = gee_exchangeable_logit(d.y, d.X, d.groups)
    with pytest.raises(ValueError):
        fit.params[0] = 1.0
    with pytest.raises(AttributeError):
        fit.alpha = 0.5  # type: ignore[misc]
