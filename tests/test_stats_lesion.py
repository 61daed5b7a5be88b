"""Lesion-level models: risk factors, design, logistic regression, separation, Firth, lesion_models().

Reference values: tests/reference/lesion/reference.json, written by make_reference.R (R 4.2.2, geepack 1.3.9,
brglm2 0.9) from the CSVs beside it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pofa.errors import SettingsError
from pofa.stats.factors import (
    DEFAULT_FACTORS,
    FactorKind,
    RiskFactor,
    Scale,
    build_design,
    parse_factor,
)
from pofa.stats.firth import fit_firth
from pofa.stats.lesion_level import ROW_KEYS, LesionModel, lesion_models
from pofa.stats.logistic import fit_logistic
from pofa.stats.separation import _konis_lp, check_separation, overlap_rules_out_separation

REF = Path(__file__).parent / "reference" / "lesion"
R = json.loads((REF / "reference.json").read_text())
FACTORS_B = (
    RiskFactor("suvmax", scale="sd"),
    RiskFactor("extranodal"),
    RiskFactor("diameter_cm", threshold=5),
)

# glm was run with epsilon 1e-14 and statsmodels IRLS with tol 1e-12: the same MLE; measured agreement is
# <= 3e-8 relative (the SE uses the weights of the last IRLS step), so the brief's 1e-6 holds with margin.
RTOL_GLM = 1e-6
# Firth: firthmodels stops at max|score| < 1e-9 (1e-6 when step halving stalls); measured <= 4e-8 relative.
RTOL_FIRTH_COEF = 1e-7
# Profile limits are roots found to 1e-9 and stationary in the nuisance coefficients: measured 2e-13.
RTOL_FIRTH_PROFILE = 1e-8


def _cohort(name: str) -> pd.DataFrame:
    return pd.read_csv(REF / f"{name}.csv", dtype={"patient_id": str, "lesion_id": str})


# ---- RiskFactor
@pytest.mark.parametrize(
    ("text", "factor", "name"),
    [
        ("diameter_cm>=5", RiskFactor("diameter_cm", threshold=5), "diameter_cm>=5"),
        (" suvmax >= 10 ", RiskFactor("suvmax", threshold=10.0), "suvmax>=10"),
        ("mtv_ml>=2.5", RiskFactor("mtv_ml", threshold=2.5), "mtv_ml>=2.5"),
        ("extranodal", RiskFactor("extranodal"), "extranodal"),
        ("suvmax", RiskFactor("suvmax"), "suvmax"),
        ("suvmax/sd", RiskFactor("suvmax", scale=Scale.SD), "suvmax (per SD)"),
        ("suvmax/unit", RiskFactor("suvmax", scale="unit"), "suvmax (per unit)"),
        ("suvmax (per SD)", RiskFactor("suvmax", scale="sd"), "suvmax (per SD)"),
    ],
)
def test_parse_factor(text: str, factor: RiskFactor, name: str) -> None:
    parsed = parse_factor(text)
    assert parsed == factor
    assert parsed.name == name
    assert RiskFactor.parse(parsed.name) == parsed  # names read back


def test_default_factors() -> None:
    assert [f.name for f in DEFAULT_FACTORS] == ["diameter_cm>=5", "suvmax>=10", "extranodal"]
    assert [f.kind for f in DEFAULT_FACTORS] == [FactorKind.THRESHOLD, FactorKind.THRESHOLD, FactorKind.AS_IS]


@pytest.mark.parametrize("text", ["diameter_cm>5", "suvmax/log", "a b", "", "x>=abc", "x<=3"])
def test_parse_factor_rejects_bad_text(text: str) -> None:
    with pytest.raises(SettingsError):
        parse_factor(text)


def test_risk_factor_validation() -> None:
    with pytest.raises(SettingsError, match="not both"):
        RiskFactor("suvmax", threshold=10, scale="sd")
    with pytest.raises(SettingsError, match="finite"):
        RiskFactor("suvmax", threshold=float("inf"))
    with pytest.raises(AttributeError):
        DEFAULT_FACTORS[0].threshold = 7.5  # type: ignore[misc]


# ---- design
def test_design_drops_and_counts_missing_rows() -> None:
    d = _cohort("cohort_a")
    before = d.copy()
    uni = build_design(
        d, [RiskFactor("diameter_cm", threshold=5)], outcome="local_failure", cluster="patient_id"
    )
    multi = build_design(d, DEFAULT_FACTORS, outcome="local_failure", cluster="patient_id")
    assert (uni.n_dropped, uni.n_lesions) == (0, 442)
    assert (multi.n_dropped, multi.n_lesions) == (3, 439)
    assert multi.dropped_columns == ("suvmax",)
    assert multi.dropped_note == "3 lesions with a missing value (suvmax) left out"
    pd.testing.assert_frame_equal(d, before)  # input not modified
    # threshold terms are 0/1 with >= (a lesion of exactly 5.0 cm is bulky)
    x = multi.X[:, 1]
    assert set(np.unique(x)) == {0.0, 1.0}
    kept = d.dropna(subset=["suvmax"])
    np.testing.assert_array_equal(x, (kept["diameter_cm"] >= 5).to_numpy(float))


def test_per_sd_uses_sample_sd_of_model_rows() -> None:
    d = _cohort("cohort_a")
    des = build_design(d, [RiskFactor("suvmax", scale="sd")], outcome="local_failure", cluster="patient_id")
    sd = d["suvmax"].dropna().std(ddof=1)
    assert des.sd == (pytest.approx(sd, rel=1e-14),)
    np.testing.assert_allclose(des.X[:, 1], d["suvmax"].dropna().to_numpy() / sd, rtol=1e-14)
    # OR per SD = (OR per unit) ** SD
    unit = build_design(
        d, [RiskFactor("suvmax", scale="unit")], outcome="local_failure", cluster="patient_id"
    )
    b_sd, b_unit = fit_logistic(des).coef[1], fit_logistic(unit).coef[1]
    assert b_sd == pytest.approx(b_unit * sd, rel=1e-9)


def test_design_errors_are_clear() -> None:
    d = _cohort("cohort_a")
    with pytest.raises(SettingsError, match="no column 'mtv_ml'"):
        build_design(d, [RiskFactor("mtv_ml")], outcome="local_failure", cluster="patient_id")
    with pytest.raises(SettingsError, match="text"):
        build_design(d, [RiskFactor("lesion_id")], outcome="local_failure", cluster="patient_id")
    with pytest.raises(SettingsError, match="yes/no"):
        build_design(
            d, [RiskFactor("extranodal", threshold=1)], outcome="local_failure", cluster="patient_id"
        )
    bad = d.assign(local_failure=d["local_failure"] * 2)
    with pytest.raises(SettingsError, match="0/1"):
        build_design(bad, DEFAULT_FACTORS, outcome="local_failure", cluster="patient_id")
    as_float = pd.read_csv(REF / "cohort_a.csv")  # ids parsed as numbers: "1.1" == "1.10"
    with pytest.raises(SettingsError, match="read as decimal numbers"):
        build_design(as_float, DEFAULT_FACTORS, outcome="local_failure", cluster="patient_id")
    with pytest.raises(SettingsError, match="repeat"):
        build_design(
            d, [DEFAULT_FACTORS[0], DEFAULT_FACTORS[0]], outcome="local_failure", cluster="patient_id"
        )


# ---- logistic regression against R glm
def _cases():
    for name, factors in (("cohort_a", DEFAULT_FACTORS), ("cohort_b", FACTORS_B)):
        specs = [(f,) for f in factors] + [tuple(factors)]
        for i, fs in enumerate(specs):
            yield pytest.param(name, fs, i, id=f"{name}-{'+'.join(f.name for f in fs)}")


@pytest.mark.parametrize(("cohort", "factors", "i"), list(_cases()))
def test_logistic_matches_glm(cohort: str, factors: tuple[RiskFactor, ...], i: int) -> None:
    ref = R[cohort][i]
    design = build_design(_cohort(cohort), factors, outcome="local_failure", cluster="patient_id")
    assert list(design.columns) == ref["terms"]
    t = fit_logistic(design)
    assert t.converged
    np.testing.assert_allclose(t.coef, ref["glm"]["coef"], rtol=RTOL_GLM)
    np.testing.assert_allclose(t.se, ref["glm"]["se"], rtol=RTOL_GLM)


# ---- lesion_models
def test_lesion_models_numbers_and_shape() -> None:
    d = _cohort("cohort_a")
    models = lesion_models(d, outcome="local_failure", cluster="patient_id", factors=DEFAULT_FACTORS)
    assert [(m.model, m.method) for m in models] == (
        [("univariable", "logistic")] * 3
        + [("multivariable", "logistic")]
        + [("univariable", "gee")] * 3
        + [("multivariable", "gee")]
    )
    multi_gee = models[-1]
    ref = R["cohort_a"][3]
    assert isinstance(multi_gee, LesionModel)
    assert (multi_gee.n_lesions, multi_gee.n_patients) == (439, 60)
    assert [t.term for t in multi_gee.terms] == ref["terms"][1:]
    for j, t in enumerate(multi_gee.terms, start=1):
        b, se = ref["gee"]["coef"][j], ref["gee"]["se"][j]
        assert t.coef == pytest.approx(b, rel=1e-8)
        assert t.se == pytest.approx(se, rel=1e-8)
        assert t.odds_ratio == pytest.approx(math.exp(b), rel=1e-8)
        assert t.ci_low == pytest.approx(math.exp(b - 1.959963984540054 * se), rel=1e-8)
        assert t.ci_high == pytest.approx(math.exp(b + 1.959963984540054 * se), rel=1e-8)
    assert "geepack::geeglm" in multi_gee.method_description
    assert "3 lesions with a missing value (suvmax) left out" in multi_gee.notes
    assert models[0].notes == ()  # diameter: nothing dropped, 60 patients
    rows = [r for m in models for r in m.to_rows()]
    assert len(rows) == 12
    for r in rows:
        assert tuple(r) == ROW_KEYS
        assert all(isinstance(r[k], float) for k in ("or", "ci_low", "ci_high", "p"))
    est = multi_gee.estimates()
    assert est[0].estimate == multi_gee.terms[0].odds_ratio and est[0].n == 439


def test_lesion_models_small_sample_uses_mancl_derouen() -> None:
    d = _cohort("cohort_b")
    models = lesion_models(
        d,
        outcome="local_failure",
        cluster="patient_id",
        factors=FACTORS_B,
        methods=("gee",),
        small_sample=True,
    )
    ref = R["cohort_b"][3]
    multi = models[-1]
    np.testing.assert_allclose([t.se for t in multi.terms], ref["gee"]["se_md"][1:], rtol=1e-8)
    assert "Mancl-DeRouen" in multi.method_description
    assert any("30 patients" in n for n in multi.notes)
    plain = lesion_models(
        d, outcome="local_failure", cluster="patient_id", factors=FACTORS_B, methods=("gee",)
    )
    assert any("biased downward" in n for n in plain[-1].notes)


def test_shuffling_rows_changes_nothing() -> None:
    d = _cohort("cohort_a")
    shuffled = d.sample(frac=1.0, random_state=3).reset_index(drop=True)
    kw = dict(outcome="local_failure", cluster="patient_id", factors=DEFAULT_FACTORS, firth=True)
    a = [r for m in lesion_models(d, **kw) for r in m.to_rows()]
    b = [r for m in lesion_models(shuffled, **kw) for r in m.to_rows()]
    assert len(a) == len(b) == 18
    for ra, rb in zip(a, b, strict=True):
        assert {k: ra[k] for k in ("model", "method", "term", "n_lesions", "n_patients")} == {
            k: rb[k] for k in ("model", "method", "term", "n_lesions", "n_patients")
        }
        for k in ("or", "ci_low", "ci_high", "p"):
            assert ra[k] == pytest.approx(rb[k], rel=1e-7)


def test_no_events_is_reported_not_raised() -> None:
    d = _cohort("cohort_a").assign(local_failure=0)
    models = lesion_models(
        d, outcome="local_failure", cluster="patient_id", factors=DEFAULT_FACTORS, firth=True
    )
    assert len(models) == 12
    for m in models:
        assert not m.estimable
        assert any("0 events in" in n for n in m.notes)
        assert all(r["or"] is None and r["p"] is None for r in m.to_rows())


def test_constant_term_is_reported() -> None:
    d = _cohort("cohort_a")
    models = lesion_models(
        d,
        outcome="local_failure",
        cluster="patient_id",
        factors=[RiskFactor("diameter_cm", threshold=100)],
        methods=("logistic", "gee"),
    )
    assert len(models) == 2  # one factor: no separate multivariable model
    for m in models:
        assert not m.estimable
        assert any("same value in all 442 lesions" in n for n in m.notes)


def test_bad_method_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="Unknown method"):
        lesion_models(
            _cohort("cohort_a"),
            outcome="local_failure",
            cluster="patient_id",
            factors=DEFAULT_FACTORS,
            methods=("cox",),
        )


# ---- separation and Firth
def test_separation_detected_on_endometrial() -> None:
    """detectseparation's vignette (Heinze & Schemper 2002 data): NV has an infinite MLE (quasi-complete)."""
    e = pd.read_csv(REF / "endometrial.csv")
    X = np.column_stack([np.ones(len(e)), e[["NV", "PI", "EH"]].to_numpy(float)])
    chk = check_separation(X, e["HG"].to_numpy(), ["(Intercept)", "NV", "PI", "EH"])
    assert chk.separated and not chk.complete
    assert chk.infinite_terms == ("NV (+Inf)",)
    assert chk.kind == "quasi-complete"
    assert "quasi-complete separation" in chk.note()


def test_separation_kinds() -> None:
    X = np.column_stack([np.ones(6), [1.0, 2, 3, 4, 5, 6]])
    assert check_separation(X, np.array([0, 0, 0, 1, 1, 1]), ["i", "x"]).kind == "complete"
    X = np.column_stack([np.ones(6), [1.0, 2, 3, 3, 5, 6]])
    assert check_separation(X, np.array([0, 0, 0, 1, 1, 1]), ["i", "x"]).kind == "quasi-complete"
    X = np.column_stack([np.ones(6), [1.0, 1, 2, 2, 3, 3]])
    chk = check_separation(X, np.array([0, 1, 0, 1, 0, 1]), ["i", "x"])
    assert chk.kind == "none" and chk.note() == ""
    d = _cohort("cohort_a").dropna()
    des = build_design(d, DEFAULT_FACTORS, outcome="local_failure", cluster="patient_id")
    assert not check_separation(des.X, des.y, des.columns).separated


@pytest.mark.parametrize("i", [0, 1])
def test_firth_matches_profile_penalized_likelihood_in_r(i: int) -> None:
    ref = R["firth"][i]
    factors = DEFAULT_FACTORS[:1] if i == 0 else DEFAULT_FACTORS
    design = build_design(_cohort("firth"), factors, outcome="local_failure", cluster="patient_id")
    assert list(design.columns) == ref["terms"]
    t = fit_firth(design)
    assert t.converged and t.notes == ()
    np.testing.assert_allclose(t.coef, ref["coef"], rtol=RTOL_FIRTH_COEF)
    np.testing.assert_allclose(t.se, ref["se"], rtol=RTOL_FIRTH_COEF)
    np.testing.assert_allclose(t.ci_low, ref["ci_low"], rtol=RTOL_FIRTH_PROFILE)
    np.testing.assert_allclose(t.ci_high, ref["ci_high"], rtol=RTOL_FIRTH_PROFILE)
    np.testing.assert_allclose(t.p, ref["p"], rtol=RTOL_FIRTH_PROFILE)


def test_firth_endometrial_matches_r_and_published_values() -> None:
    e = pd.read_csv(REF / "endometrial.csv").assign(pid=lambda x: x.index.astype(str))
    design = build_design(
        e, [RiskFactor("NV"), RiskFactor("PI"), RiskFactor("EH")], outcome="HG", cluster="pid"
    )
    t = fit_firth(design)
    ref = R["endometrial_firth"]
    np.testing.assert_allclose(t.coef, ref["coef"], rtol=RTOL_FIRTH_COEF)
    np.testing.assert_allclose(t.ci_low, ref["ci_low"], rtol=RTOL_FIRTH_PROFILE)
    np.testing.assert_allclose(t.ci_high, ref["ci_high"], rtol=RTOL_FIRTH_PROFILE)
    np.testing.assert_allclose(t.p, ref["p"], rtol=RTOL_FIRTH_PROFILE)
    # Heinze & Schemper (2002), Table: NV 2.93 (profile 95% CI 0.61 to 7.85), printed to 2 decimals
    assert round(t.coef[1], 2) == 2.93
    assert (round(t.ci_low[1], 2), round(t.ci_high[1], 2)) == (0.61, 7.85)


def _lp_directions(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Konis' LP on the full design, with no overlap shortcut (what detect_separation solves)."""
    Xb = X * (2.0 * y - 1.0)[:, None]
    return _konis_lp(-np.sum(Xb, axis=0), Xb)


def test_overlap_shortcut_agrees_with_the_lp() -> None:
    """Whenever the overlap check says "no separation", Konis' LP finds no infinite estimate either; the
    designs mix 0/1 factors (where the shortcut settles most cases) with rare patterns, small n and a
    continuous column (where it must leave the question to the LP)."""
    rng = np.random.default_rng(2026)
    settled = unsettled = 0
    for trial in range(300):
        n = int(rng.integers(8, 120))
        k = int(rng.integers(1, 4))
        cols = [np.ones(n)]
        for _ in range(k):
            cols.append((rng.random(n) < rng.uniform(0.05, 0.6)).astype(float))
        if trial % 5 == 0:
            cols.append(rng.normal(size=n).round(int(rng.integers(0, 2))))
        X = np.column_stack(cols)
        if np.linalg.matrix_rank(X) < X.shape[1]:
            continue
        y = (rng.random(n) < rng.uniform(0.05, 0.5)).astype(float)
        if y.min() == y.max():
            continue
        if overlap_rules_out_separation(X, y):
            settled += 1
            assert not np.any(_lp_directions(X, y)), trial
            assert check_separation(X, y, [f"x{j}" for j in range(X.shape[1])]).kind == "none"
        else:
            unsettled += 1
    assert settled > 50 and unsettled > 50  # both paths exercised


def test_overlap_shortcut_needs_full_rank_overlap() -> None:
    X = np.column_stack([np.ones(8), [0.0, 0, 1, 1, 0, 0, 1, 1]])
    # both outcomes at x = 0 and at x = 1: the overlap rows (1, 0) and (1, 1) span R^2
    assert overlap_rules_out_separation(X, np.array([0.0, 1, 0, 1, 0, 1, 0, 1]))
    # x = 1 only with events: quasi-complete separation, and the overlap (1, 0) alone spans one dimension
    y = np.array([0.0, 1, 1, 1, 0, 0, 1, 1])
    assert not overlap_rules_out_separation(X, y)
    chk = check_separation(X, y, ["i", "x"])
    assert chk.kind == "quasi-complete" and chk.infinite_terms == ("x (+Inf)",)


def test_a_settled_check_loads_no_solver() -> None:
    """The LP solver (scipy.optimize) is imported only for designs the overlap check leaves open."""
    code = (
        "import sys, numpy as np\n"
        "from pofa.stats.separation import _konis_lp, check_separation, overlap_rules_out_separation\n"
        "X = np.column_stack([np.ones(8), [0.0, 0, 1, 1, 0, 0, 1, 1]])\n"
        "assert check_separation(X, np.array([0.0, 1, 0, 1, 0, 1, 0, 1]), ['i', 'x']).kind == 'none'\n"
        "print('scipy.optimize' in sys.modules)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"


def test_separation_falls_back_to_firth() -> None:
    d = _cohort("firth")
    models = lesion_models(d, outcome="local_failure", cluster="patient_id", factors=DEFAULT_FACTORS)
    by = {(m.model, m.method, m.terms[0].term): m for m in models}
    uni_log = by[("univariable", "logistic", "diameter_cm>=5")]
    assert not uni_log.estimable
    assert any("quasi-complete separation" in n and "diameter_cm>=5 (+Inf)" in n for n in uni_log.notes)
    uni_firth = by[("univariable", "firth", "diameter_cm>=5")]
    assert any("automatic fallback" in n for n in uni_firth.notes)
    ref = R["firth"][0]
    assert uni_firth.terms[0].coef == pytest.approx(ref["coef"][1], rel=RTOL_FIRTH_COEF)
    assert uni_firth.terms[0].ci_high == pytest.approx(math.exp(ref["ci_high"][1]), rel=RTOL_FIRTH_PROFILE)
    assert not by[("univariable", "gee", "diameter_cm>=5")].estimable
    # non-separated terms keep their ML fits, and each separated design gets exactly one Firth model
    assert by[("univariable", "logistic", "suvmax>=10")].estimable
    firth_models = [m for m in models if m.method == "firth"]
    assert [(m.model, m.terms[0].term) for m in firth_models] == [
        ("univariable", "diameter_cm>=5"),
        ("multivariable", "diameter_cm>=5"),
    ]
    # firth=True adds Firth for every model but does not duplicate the fallbacks
    all_firth = lesion_models(
        d,
        outcome="local_failure",
        cluster="patient_id",
        factors=DEFAULT_FACTORS,
        methods=("firth", "logistic"),
        firth=True,
    )
    assert sum(m.method == "firth" for m in all_firth) == 4


def test_factors_given_as_text() -> None:
    d = _cohort("cohort_b")
    kw = dict(outcome="local_failure", cluster="patient_id", methods=("logistic",))
    a = lesion_models(d, factors=["suvmax/sd", "extranodal", "diameter_cm>=5"], **kw)
    b = lesion_models(d, factors=FACTORS_B, **kw)
    assert [r for m in a for r in m.to_rows()] == [r for m in b for r in m.to_rows()]
    assert a[-1].terms[0].term == "suvmax (per SD)"
    np.testing.assert_allclose(
        [t.coef for t in a[-1].terms], R["cohort_b"][3]["glm"]["coef"][1:], rtol=RTOL_GLM
    )
