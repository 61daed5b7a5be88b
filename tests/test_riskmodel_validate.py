"""Patient-grouped cross-validation and its metrics (pofa.riskmodel.validate).

Metrics are checked against closed-form cases and R (tests/reference/riskmodel/make_reference.R: AUC as the
wilcox.test statistic / (n1 n0), calibration slope and intercept from glm, Brier = mean((p - y)^2), Wilson
intervals from prop.test(correct = FALSE)); the whole cross-validation against R refitting geeglm / brglm2 on
the same folds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.special import expit, logit

import pofa.riskmodel.validate as validate_module
from pofa.errors import SettingsError
from pofa.riskmodel import (
    assign_folds,
    brier_score,
    calibration,
    cross_validate,
    fit_validated_model,
    plot_calibration,
    prepare_training,
    roc_auc,
)
from pofa.riskmodel.validate import calibration_bins, calibration_png

REF = Path(__file__).parent / "reference" / "riskmodel"
R = json.loads((REF / "reference.json").read_text())

# AUC and Brier are sums of ranks / squares: exact up to rounding (measured <= 2e-16).
ATOL_EXACT = 1e-12
# Calibration slope and intercept: statsmodels IRLS (tol 1e-12) vs glm (epsilon 1e-14): measured <= 1e-14
# absolute on the small cases; 1e-9 relative leaves room for a different IRLS path.
RTOL_GLM = 1e-9


def _cohort() -> pd.DataFrame:
    return pd.read_csv(REF / "cohort.csv", dtype={"patient_id": str, "lesion_id": str})


# ---- folds
def _check_grouped(groups: np.ndarray, fold: np.ndarray, k: int) -> None:
    for f in range(k):
        test = set(groups[fold == f])
        train = set(groups[fold != f])
        assert not test & train, f"fold {f}: patients in both training and test parts: {test & train}"
    per_patient = pd.Series(fold).groupby(groups).nunique()
    assert (per_patient == 1).all()


def test_folds_group_whole_patients() -> None:
    c = _cohort()
    fold = assign_folds(c["patient_id"], c["local_failure"], 5, 7)
    _check_grouped(c["patient_id"].to_numpy(), fold, 5)
    np.testing.assert_array_equal(fold + 1, c["fold"])  # the folds R used (deterministic across machines)
    # "1.1" and "1.10" are different patients, each in one fold
    assert {"1.1", "1.10"} <= set(c["patient_id"])
    # balanced: patients per fold, and patients with a local failure per fold, differ by at most one
    pat = c.groupby("patient_id").agg(fold=("fold", "first"), event=("local_failure", "max"))
    assert np.ptp(pat["fold"].value_counts().to_numpy()) <= 1
    assert np.ptp(pat.loc[pat["event"] == 1, "fold"].value_counts().reindex(range(1, 6), fill_value=0)) <= 1
    # independent of row order
    shuffled = c.sample(frac=1.0, random_state=3)
    np.testing.assert_array_equal(
        assign_folds(shuffled["patient_id"], shuffled["local_failure"], 5, 7), shuffled["fold"] - 1
    )
    assert not np.array_equal(assign_folds(c["patient_id"], c["local_failure"], 5, 8), fold)


@settings(max_examples=100, deadline=None)
@given(
    ids=st.lists(
        st.sampled_from([f"{a}.{b}" for a in range(1, 4) for b in range(1, 12)]), min_size=2, max_size=80
    ),
    k=st.integers(min_value=2, max_value=6),
    seed=st.integers(min_value=0, max_value=2**31),
    data=st.data(),
)
def test_folds_property(ids: list[str], k: int, seed: int, data: st.DataObject) -> None:
    groups = np.array(ids, dtype=object)
    y = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=len(ids), max_size=len(ids))))
    n_pat = len(set(ids))
    if k > n_pat:
        with pytest.raises(SettingsError, match="need at least"):
            assign_folds(groups, y, k, seed)
        return
    fold = assign_folds(groups, y, k, seed)
    _check_grouped(groups, fold, k)
    assert np.ptp(np.bincount(pd.Series(fold).groupby(groups).first().to_numpy(), minlength=k)) <= 1


def test_folds_bad_k() -> None:
    with pytest.raises(SettingsError, match="at least 2 folds"):
        assign_folds(["a", "b"], None, 1, 0)


def test_cross_validation_never_trains_on_test_patients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record the patients each fold's model is fitted to and check none is in that fold's test part."""
    seen: list[set[str]] = []
    real = validate_module.model_from_training

    def spy(data, **kwargs):
        seen.append(set(data.design.groups))
        return real(data, **kwargs)

    monkeypatch.setattr(validate_module, "model_from_training", spy)
    data = prepare_training(_cohort())
    cv = cross_validate(data, folds=5, seed=7)
    t = cv.table
    assert len(seen) == 5
    for k, trained_on in enumerate(seen, start=1):
        tested = set(t.loc[t["fold"] == k, "patient_id"])
        assert tested and not trained_on & tested
        assert trained_on | tested == set(t["patient_id"])


# ---- metrics: closed form and R
def test_auc_brier_closed_form() -> None:
    y = [0, 0, 1, 1]
    assert roc_auc(y, [0.1, 0.4, 0.35, 0.8]) == 0.75  # pairs: (.35>.1), (.8>.1), (.8>.4) of 4
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts one half
    assert roc_auc([1, 1], [0.2, 0.3]) is None
    assert roc_auc([0, 1, 1], [0.9, 0.1, 0.2]) == 0.0
    assert brier_score(y, [0.0, 0.0, 1.0, 1.0]) == 0.0
    assert brier_score([0, 1], [0.25, 0.5]) == pytest.approx((0.0625 + 0.25) / 2, abs=1e-16)
    with pytest.raises(SettingsError, match="0 or 1"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(SettingsError, match=r"\[0, 1\]"):
        brier_score([0, 1], [0.1, np.nan])


def test_calibration_closed_form() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=300)
    y = (rng.random(300) < expit(-0.4 + 1.1 * x)).astype(float)
    import statsmodels.api as sm

    fitted = sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial()).fit(tol=1e-13).fittedvalues
    # the score equations of the MLE make its own fitted values perfectly calibrated: slope 1, intercept 0
    cal = calibration(y, fitted)
    assert cal.slope == pytest.approx(1.0, abs=1e-8)
    assert cal.intercept == pytest.approx(0.0, abs=1e-8)
    assert cal.slope_model_intercept == pytest.approx(0.0, abs=1e-8)
    # doubling the logits makes the slope exactly 1/2
    assert calibration(y, expit(2 * logit(fitted))).slope == pytest.approx(0.5, rel=1e-8)
    assert calibration([1, 1, 1], [0.2, 0.3, 0.4]).slope is None
    assert calibration([0, 1, 1], [0.0, 0.3, 0.4]).intercept is None


@pytest.mark.parametrize("case", ["case1", "case2"])
def test_metrics_match_r(case: str) -> None:
    ref = R["metrics"][case]
    y, p = ref["y"], ref["p"]
    assert roc_auc(y, p) == pytest.approx(ref["auc"], abs=ATOL_EXACT)
    assert brier_score(y, p) == pytest.approx(ref["brier"], abs=ATOL_EXACT)
    cal = calibration(y, p)
    assert cal.slope == pytest.approx(ref["slope"], rel=RTOL_GLM)
    assert cal.slope_model_intercept == pytest.approx(ref["slope_model_intercept"], rel=RTOL_GLM)
    assert cal.intercept == pytest.approx(ref["intercept"], rel=RTOL_GLM)


def test_wilson_bins_match_prop_test() -> None:
    for w in R["metrics"]["wilson"]:
        k, n = int(w["k"]), int(w["n"])
        y = np.r_[np.ones(k), np.zeros(n - k)]
        tab = calibration_bins(y, np.full(n, 0.3), bins=10)  # one group (all predictions equal)
        assert len(tab) == 1 and tab["n"].iloc[0] == n and tab["events"].iloc[0] == k
        assert tab["ci_low"].iloc[0] == pytest.approx(w["lo"], abs=1e-12)  # closed form: same formula
        assert tab["ci_high"].iloc[0] == pytest.approx(w["hi"], abs=1e-12)
    y, p = R["metrics"]["case2"]["y"], R["metrics"]["case2"]["p"]
    tab = calibration_bins(y, p, bins=10)
    assert len(tab) == 10 and tab["n"].sum() == 200 and tab["events"].sum() == sum(y)
    assert (np.diff(tab["mean_predicted"]) > 0).all()


# ---- cross-validation against R
@pytest.mark.parametrize(("method", "ref", "rtol"), [("gee", "cv_gee3", 1e-8), ("firth", "cv_firth3", 1e-7)])
def test_cross_validation_matches_r(method: str, ref: str, rtol: float) -> None:
    # out-of-fold probabilities: geeglm / brglm2 refitted in R on the same folds; tolerances as the fits
    # (tests/test_riskmodel_predict.py); measured <= 1e-12 (GEE) and <= 4e-9 (Firth).
    data = prepare_training(_cohort())
    cv = cross_validate(data, method=method, folds=5, seed=7)
    t = cv.table
    t = t.set_index(t["patient_id"] + " " + t["lesion_id"]).loc[R[ref]["key"]]
    np.testing.assert_allclose(t["oof_probability"], R[ref]["oof"], rtol=rtol)
    s = cv.summary
    assert s.auc == pytest.approx(R[ref]["auc"], abs=1e-12)  # ranks of the same ordering: exact
    assert s.brier == pytest.approx(R[ref]["brier"], rel=rtol)
    assert s.calibration_slope == pytest.approx(R[ref]["slope"], rel=10 * rtol)  # propagated through glm
    assert s.calibration_intercept == pytest.approx(R[ref]["intercept"], rel=10 * rtol)
    assert (s.folds, s.seed, s.n_lesions, s.n_patients) == (5, 7, len(t), 63)
    assert "patient-grouped 5-fold" in s.method


def test_fit_validated_model_and_failed_fold() -> None:
    c = _cohort()
    fit = fit_validated_model(c, ["diameter_cm>=5", "suvmax>=10", "extranodal"], folds=5, seed=7)
    assert fit.model.validation == fit.cross_validation.summary
    assert fit.model.validation.apparent_auc is not None
    assert fit.model.validation.apparent_auc > fit.model.validation.auc  # optimism on this cohort
    # a rare factor: one fold's training part has it in no lesion -> that fold is reported, not hidden
    rare_patient = c["patient_id"].iloc[0]
    c2 = c.assign(rare=(c["patient_id"] == rare_patient) & (c.groupby("patient_id").cumcount() == 0))
    fit2 = fit_validated_model(c2, ["diameter_cm>=5", "rare"], method="firth", folds=5, seed=7)
    s = fit2.cross_validation.summary
    assert any("could not be fitted" in n for n in s.notes)
    assert s.n_lesions < len(c2) and s.auc is not None
    assert fit2.cross_validation.table["oof_probability"].isna().sum() == len(c2) - s.n_lesions


# ---- plot
def test_calibration_plot_draws_on_given_axes() -> None:
    data = prepare_training(_cohort())
    cv = cross_validate(data, folds=5, seed=7)
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    out = plot_calibration(ax, cv.y, cv.oof, summary=cv.summary, fit=cv.calibration, title="t")
    assert out is ax
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "perfect calibration" and labels[1] == "logistic recalibration"
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_title() == "t"
    assert any("AUC" in t.get_text() for t in ax.texts)
    png = calibration_png(cv)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
