"""Fitting (pofa.riskmodel.fit) and scoring (pofa.riskmodel.predict) against R.

Reference values: tests/reference/riskmodel/reference.json, written by make_reference.R (R 4.2.2, geepack
1.3.9, brglm2 0.9) from cohort.csv (made by make_cohort.py: a simulated cohort, 409 lesions, 63 patients).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from pofa.errors import EstimationError, SettingsError, StudyError
from pofa.findings import FindingCode
from pofa.riskmodel import (
    ModelKind,
    dumps_model,
    fit_risk_model,
    load_lesions,
    loads_model,
    predict_lesions,
    prepare_training,
    published_model,
)
from pofa.riskmodel.terms import term_values
from pofa.stats.factors import build_design
from pofa.stats.firth import fit_firth
from pofa.stats.gee import gee_exchangeable_logit

REF = Path(__file__).parent / "reference" / "riskmodel"
R = json.loads((REF / "reference.json").read_text())
FEATURES_3 = ("diameter_cm>=5", "suvmax>=10", "extranodal")
FEATURES_SD = ("suvmax/sd", "mtv_ml/unit", "diameter_cm>=5")

# geeglm was run with epsilon 1e-12 and pofa iterates to steps < 1e-10: measured agreement of coefficients,
# covariance, probabilities and CI limits is <= 2e-11 relative, so 1e-8 (as tests/test_stats_gee.py) holds.
RTOL_GEE = 1e-8
# Firth: firthmodels stops at max|score| < 1e-9, brglm2 at epsilon 1e-12; measured <= 3e-11 relative on the
# coefficients and covariance; 1e-7 as tests/test_stats_lesion.py.
RTOL_FIRTH = 1e-7


def _cohort() -> pd.DataFrame:
    return pd.read_csv(REF / "cohort.csv", dtype={"patient_id": str, "lesion_id": str})


def _new() -> pd.DataFrame:
    return pd.DataFrame(R["new_lesions"]).astype({"patient_id": str, "lesion_id": str})


def _by_key(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    t = table.set_index(table["patient_id"].astype(str) + " " + table["lesion_id"].astype(str))
    return t.loc[keys]


@pytest.fixture(scope="module")
def gee3():
    return fit_risk_model(_cohort(), FEATURES_3, method="gee")


# ---- fitting
def test_gee_matches_geeglm(gee3) -> None:
    assert gee3.kind is ModelKind.GEE
    np.testing.assert_allclose(gee3.coef, R["gee3"]["coef"], rtol=RTOL_GEE)
    np.testing.assert_allclose(gee3.cov, R["gee3"]["vcov"], rtol=RTOL_GEE)
    assert gee3.training.working_correlation == pytest.approx(R["gee3"]["alpha"], rel=RTOL_GEE)
    tr = gee3.training
    c = _cohort()
    assert (tr.n_lesions, tr.n_patients, tr.n_events) == (
        len(c),
        c["patient_id"].nunique(),
        int(c["local_failure"].sum()),
    )
    assert c["patient_id"].nunique() == 63  # "1.1" and "1.10" are two patients
    assert [t.term for t in tr.terms] == list(FEATURES_3)
    assert tr.terms[0].mean == pytest.approx(float((c["diameter_cm"] >= 5).mean()), rel=1e-15)
    assert (tr.terms[1].column_min, tr.terms[1].column_max) == (c["suvmax"].min(), c["suvmax"].max())


def test_firth_matches_brglm2_and_fit_firth() -> None:
    m = fit_risk_model(_cohort(), FEATURES_3, method="firth")
    np.testing.assert_allclose(m.coef, R["firth3"]["coef"], rtol=RTOL_FIRTH)
    np.testing.assert_allclose(m.cov, R["firth3"]["vcov"], rtol=RTOL_FIRTH)
    # the same firthmodels fit as pofa.stats.firth.fit_firth (same tolerances): identical coefficients and SEs
    design = build_design(_cohort(), FEATURES_3, outcome="local_failure", cluster="patient_id")
    table = fit_firth(design)
    np.testing.assert_allclose(m.coef, table.coef, rtol=1e-12)
    np.testing.assert_allclose(m.se, table.se, rtol=1e-12)
    assert m.kind is ModelKind.FIRTH and "independent" in " ".join(m.limitations)


def test_per_sd_term_stores_training_sd() -> None:
    m = fit_risk_model(_cohort(), FEATURES_SD)
    assert m.features[0].sd == pytest.approx(R["gee_sd"]["sd_suvmax"], rel=1e-14)  # R sd(): n - 1
    np.testing.assert_allclose(m.coef, R["gee_sd"]["coef"], rtol=RTOL_GEE)
    np.testing.assert_allclose(m.cov, R["gee_sd"]["vcov"], rtol=RTOL_GEE)
    # new lesions are divided by the training SD, not their own
    t = _by_key(
        predict_lesions(m, _new()).table,
        [f"{p} {q}" for p, q in zip(_new()["patient_id"], _new()["lesion_id"], strict=True)],
    )
    np.testing.assert_allclose(t["probability"], R["gee_sd"]["new"]["p"], rtol=RTOL_GEE)
    np.testing.assert_allclose(t["ci_low"], R["gee_sd"]["new"]["lo"], rtol=RTOL_GEE)
    np.testing.assert_allclose(t["ci_high"], R["gee_sd"]["new"]["hi"], rtol=RTOL_GEE)


def test_term_values_equal_build_design() -> None:
    c = _cohort()
    for feats in (FEATURES_3, FEATURES_SD):
        m = fit_risk_model(c, feats)
        design = build_design(c, feats, outcome="local_failure", cluster="patient_id")
        np.testing.assert_array_equal(term_values(c, m.features).X, design.X)


def test_separation_refused_for_gee_not_firth() -> None:
    c = _cohort()
    c = c.assign(big=(c["local_failure"] == 1) & (c["diameter_cm"] >= 5))  # only failures are "big"
    with pytest.raises(EstimationError, match="method firth"):
        fit_risk_model(c, ["big", "suvmax>=10"], method="gee")
    m = fit_risk_model(c, ["big", "suvmax>=10"], method="firth")
    assert np.all(np.isfinite(m.coef))


@pytest.mark.parametrize(
    ("features", "kwargs", "error", "match"),
    [
        (["diameter_cm>=100"], {}, EstimationError, "same value in all"),
        (["diameter_cm>=5"], {"method": "glm"}, SettingsError, "Unknown model method"),
        (["necrosis"], {}, SettingsError, "no column 'necrosis'"),
        ([], {}, SettingsError, "at least one feature"),
        (["suvmax>=10", "suvmax>=10"], {}, SettingsError, "repeat a term"),
        (["diameter_cm>"], {}, SettingsError, "Cannot read the risk factor"),
    ],
)
def test_fit_errors(features, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        fit_risk_model(_cohort(), features, **kwargs)


def test_irradiated_and_unknown_outcome_left_out() -> None:
    c = _cohort().head(120).copy()
    c["bridging_rt"] = [i % 10 == 0 for i in range(len(c))]
    c["local_failure"] = c["local_failure"].astype("Int64")
    c.loc[c.index[[1, 2]], "local_failure"] = pd.NA
    before = c.copy()
    data = prepare_training(c, FEATURES_3)
    pd.testing.assert_frame_equal(c, before)  # input not modified
    assert data.n_left_out == 12 + 2 and data.design.n_lesions == 120 - 14
    assert any("bridging radiotherapy" in n for n in data.notes)
    assert any("outcome unknown" in n for n in data.notes)
    kept = prepare_training(c, FEATURES_3, exclude_irradiated=False)
    assert kept.design.n_lesions == 118
    m = fit_risk_model(c, FEATURES_3)
    assert m.training.n_left_out == 14 and any("bridging" in n for n in m.training.notes)


# ---- predictions
def test_predictions_on_training_reproduce_gee_fitted_values(gee3) -> None:
    c = _cohort()
    model = loads_model(dumps_model(gee3))  # through the file format
    t = _by_key(predict_lesions(model, c).table, R["gee3"]["key"])
    # against R: fitted(geeglm(...)) and the delta-method CI computed from vcov(geeglm(...))
    np.testing.assert_allclose(t["probability"], R["gee3"]["fitted"], rtol=RTOL_GEE)
    np.testing.assert_allclose(t["logit"], R["gee3"]["train"]["eta"], rtol=RTOL_GEE)
    np.testing.assert_allclose(t["se_logit"], R["gee3"]["train"]["se"], rtol=RTOL_GEE)
    np.testing.assert_allclose(t["ci_low"], R["gee3"]["train"]["lo"], rtol=RTOL_GEE)
    np.testing.assert_allclose(t["ci_high"], R["gee3"]["train"]["hi"], rtol=RTOL_GEE)
    # against pofa's own GEE estimator: the same numbers (one code path), to rounding
    design = build_design(c, FEATURES_3, outcome="local_failure", cluster="patient_id")
    fit = gee_exchangeable_logit(design.y, design.X, design.groups)
    mine = predict_lesions(model, c).table
    mine = mine.set_index(mine["patient_id"] + " " + mine["lesion_id"]).loc[
        c["patient_id"] + " " + c["lesion_id"]
    ]
    np.testing.assert_allclose(mine["probability"], expit(design.X @ fit.params), rtol=1e-14)


def test_predictions_new_lesions_match_r(gee3) -> None:
    new = _new()
    t = _by_key(
        predict_lesions(gee3, new).table,
        [f"{p} {q}" for p, q in zip(new["patient_id"], new["lesion_id"], strict=True)],
    )
    for ref, col in (("p", "probability"), ("lo", "ci_low"), ("hi", "ci_high"), ("se", "se_logit")):
        np.testing.assert_allclose(t[col], R["gee3"]["new"][ref], rtol=RTOL_GEE)
    f = fit_risk_model(_cohort(), FEATURES_3, method="firth")
    t = _by_key(predict_lesions(f, new).table, list(t.index))
    np.testing.assert_allclose(t["probability"], R["firth3"]["new"]["p"], rtol=RTOL_FIRTH)
    np.testing.assert_allclose(t["ci_low"], R["firth3"]["new"]["lo"], rtol=RTOL_FIRTH)


def test_scores_table_shape_ranks_and_features(gee3) -> None:
    new = _new()
    before = new.copy()
    s = predict_lesions(gee3, new)
    pd.testing.assert_frame_equal(new, before)
    t = s.table
    assert list(t.columns[:13]) == [
        "patient_id",
        "lesion_id",
        "rank_in_patient",
        "probability",
        "ci_low",
        "ci_high",
        "odds_ratio_vs_reference",
        "or_ci_low",
        "or_ci_high",
        "logit",
        "se_logit",
        "risk_factors",
        "diameter_cm",
    ]
    assert {
        "suvmax",
        "extranodal",
        "term: diameter_cm>=5",
        "term: suvmax>=10",
        "term: extranodal",
        "note",
    } <= set(t)
    assert (s.n_lesions, s.n_scored, s.n_patients) == (5, 5, 2)
    # ranked within the patient by probability, 1 = highest; ties share a rank
    for _, g in t.groupby("patient_id"):
        assert list(g["probability"]) == sorted(g["probability"], reverse=True)
        assert g["rank_in_patient"].iloc[0] == 1
    assert list(t["patient_id"]) == ["N1", "N1", "N1", "N1", "N2"]
    assert (t["ci_low"] < t["probability"]).all() and (t["probability"] < t["ci_high"]).all()
    row = t.set_index("lesion_id").loc["L4"]  # 5.0 cm, SUVmax 10.0, extranodal: every factor present
    assert row["risk_factors"].startswith("diameter_cm>=5 (OR ")
    assert row["risk_factors"].endswith(f"extranodal (OR {np.exp(gee3.coef[3]):.4g})")  # a 0/1 column
    assert row["odds_ratio_vs_reference"] == pytest.approx(float(np.exp(gee3.coef[1:].sum())), rel=1e-14)
    text = s.to_csv_text()
    back = pd.read_csv(__import__("io").StringIO(text))
    np.testing.assert_array_equal(
        back["probability"].to_numpy(), t["probability"].to_numpy()
    )  # full precision


def test_missing_values_and_extrapolation_flagged() -> None:
    m = fit_risk_model(_cohort(), FEATURES_SD)
    new = _new()
    new.loc[1, "mtv_ml"] = np.nan
    t = predict_lesions(m, new).table.set_index("lesion_id")
    n1 = t[t["patient_id"] == "N1"]
    assert pd.isna(n1.loc["L2", "probability"]) and pd.isna(n1.loc["L2", "rank_in_patient"])
    assert n1.loc["L2", "note"] == "not scored: missing mtv_ml"
    assert list(n1.index)[-1] == "L2"  # unscored lesions last within the patient
    assert sorted(n1["rank_in_patient"].dropna()) == [1, 2, 3]
    n2 = t[t["patient_id"] == "N2"]
    assert "suvmax = 60 is outside the training range" in n2["note"].iloc[0]


def test_ties_share_rank_and_ids_are_text(gee3) -> None:
    les = pd.DataFrame(
        {
            "patient_id": ["1.1", "1.10", "1.1", "1.1"],
            "lesion_id": ["a", "b", "c", "d"],
            "diameter_cm": [6.0, 6.0, 6.0, 1.0],
            "suvmax": [12, 12, 12, 2.0],
            "extranodal": [True, True, True, False],
        }
    )
    t = predict_lesions(gee3, les).table
    assert list(t["patient_id"]) == ["1.1", "1.1", "1.1", "1.10"]
    assert list(t["rank_in_patient"]) == [1, 1, 3, 1]


def test_predict_needs_columns(gee3) -> None:
    with pytest.raises(SettingsError, match="no column 'suvmax'"):
        predict_lesions(gee3, _new().drop(columns="suvmax"))
    with pytest.raises(SettingsError, match="no column 'lesion_id'"):
        predict_lesions(gee3, _new().drop(columns="lesion_id"))
    with pytest.raises(SettingsError, match="holds text"):
        predict_lesions(gee3, _new().assign(suvmax="high"))
    with pytest.raises(SettingsError, match="merges ids"):
        predict_lesions(gee3, _new().assign(patient_id=[1.1, 1.1, 1.1, 1.1, 1.10]))


# ---- reading the lesions to score
def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_lesions_csv_ignores_unused_columns(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "new.csv",
        "patient_id,lesion_id,extranodal,diameter_cm,suvmax,mtv_ml\nX,L1,yes,7.2,14.1,-3\nX,L2,no,2.0,4.0,\n",
    )
    loaded = load_lesions(p, published_model(0.2))
    assert loaded.report.ok
    codes = sorted(str(f.code) for f in loaded.ignored)
    assert codes == ["missing-column", "non-positive"]  # 'site' missing, mtv_ml -3: unused by the model
    t = predict_lesions(published_model(0.2), loaded.frame).table
    assert list(t["lesion_id"]) == ["L1", "L2"] and "site" not in t


def test_load_lesions_reports_missing_feature_columns(tmp_path: Path) -> None:
    p = _write(tmp_path / "new.csv", "patient_id,lesion_id,site,diameter_cm\nX,L1,liver,\n")
    loaded = load_lesions(p, published_model())
    assert not loaded.report.ok
    by_col = {(f.column, str(f.code)) for f in loaded.report.errors}
    assert ("suvmax", "missing-column") in by_col and ("extranodal", "missing-column") in by_col
    assert ("diameter_cm", "blank-cell") in by_col
    msg = next(f.message for f in loaded.report.errors if f.column == "suvmax")
    assert "feature 'suvmax>=10'" in msg
    with pytest.raises(StudyError, match="suvmax"):
        loaded.require_ok()
    with pytest.raises(StudyError):
        _ = loaded.frame


def test_load_lesions_covariate_feature(tmp_path: Path) -> None:
    c = _cohort().assign(necrosis=lambda d: (d["mtv_ml"] > 30).astype(int))
    m = fit_risk_model(c, ["diameter_cm>=5", "necrosis"])
    p = _write(
        tmp_path / "a.csv", "patient_id,lesion_id,site,extranodal,diameter_cm,suvmax\nX,L1,liver,no,3,4\n"
    )
    loaded = load_lesions(p, m)
    assert [(f.column, str(f.code)) for f in loaded.report.errors] == [("necrosis", "missing-column")]
    p = _write(
        tmp_path / "b.csv",
        "patient_id,lesion_id,site,extranodal,diameter_cm,suvmax,necrosis\nX,L1,liver,no,3,4,lots\n",
    )
    loaded = load_lesions(p, m)
    assert [(f.column, str(f.code)) for f in loaded.report.errors] == [("necrosis", "bad-number")]
    p = _write(
        tmp_path / "c.csv",
        "patient_id,lesion_id,site,extranodal,diameter_cm,suvmax,necrosis\n"
        "X,L1,liver,no,3,4,1\nX,L2,liver,no,6,4,\n",
    )
    t = predict_lesions(m, load_lesions(p, m).frame).table.set_index("lesion_id")
    assert t.loc["L1", "rank_in_patient"] == 1 and t.loc["L2", "note"] == "not scored: missing necrosis"


def test_load_lesions_formats(tmp_path: Path) -> None:
    m = published_model(0.2)
    frame = pd.DataFrame(
        {
            "patient_id": ["X", "X"],
            "lesion_id": ["L1", "L2"],
            "site": ["a", "b"],
            "extranodal": [True, False],
            "diameter_cm": [6.0, 2.0],
            "suvmax": [3.0, 12.0],
        }
    )
    frame.to_parquet(tmp_path / "l.parquet", index=False)
    with pd.ExcelWriter(tmp_path / "l.xlsx") as xw:
        frame.to_excel(xw, sheet_name="Lesions", index=False)
    with pd.ExcelWriter(tmp_path / "other.xlsx") as xw:
        frame.to_excel(xw, sheet_name="Sheet1", index=False)
    folder = tmp_path / "study"
    folder.mkdir()
    frame.to_csv(folder / "lesions.csv", index=False)
    expected = predict_lesions(m, frame).table["probability"].to_numpy()
    for p in (tmp_path / "l.parquet", tmp_path / "l.xlsx", folder):
        loaded = load_lesions(p, m)
        assert loaded.report.ok, loaded.report.findings
        np.testing.assert_array_equal(predict_lesions(m, loaded.frame).table["probability"], expected)
    bad = load_lesions(tmp_path / "other.xlsx", m)
    assert [str(f.code) for f in bad.report.errors] == ["missing-table"]
    assert "no sheet named 'lesions'" in bad.report.errors[0].message
    empty = tmp_path / "empty"
    empty.mkdir()
    for p, code in (
        (tmp_path / "nothing.csv", FindingCode.NOT_A_STUDY),
        (_write(tmp_path / "l.txt", "x"), FindingCode.UNSUPPORTED_FORMAT),
        (empty, FindingCode.MISSING_TABLE),
        (tmp_path, FindingCode.AMBIGUOUS_TABLE),
    ):
        loaded = load_lesions(p, m)
        assert [f.code for f in loaded.report.errors] == [code], loaded.report.findings
