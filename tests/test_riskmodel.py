"""Risk-model files (pofa.riskmodel.model / fileio) and the published model (pofa.riskmodel.published).

Round trip: a model written and read back is equal, bit for bit. Refusal: every kind of damaged, foreign,
newer or tampered file raises ModelFileError with a message that names the problem. The published model is
checked against closed-form values computed here from the published odds ratios.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pofa.errors import ModelFileError, PofaError, SettingsError
from pofa.riskmodel import (
    FORMAT_VERSION,
    Feature,
    ModelKind,
    RiskModel,
    TermSummary,
    TrainingSummary,
    dumps_model,
    fit_validated_model,
    load_model,
    loads_model,
    model_to_dict,
    predict_lesions,
    published_model,
    save_model,
)
from pofa.stats.factors import RiskFactor

REF = Path(__file__).parent / "reference" / "riskmodel"
Z = 1.959963984540054


def _cohort() -> pd.DataFrame:
    return pd.read_csv(REF / "cohort.csv", dtype={"patient_id": str, "lesion_id": str})


@pytest.fixture(scope="module")
def fitted() -> RiskModel:
    """A cross-validated GEE model with a per-SD term (so the file holds an SD and validation metrics)."""
    return fit_validated_model(
        _cohort(),
        ["diameter_cm>=5", "suvmax/sd", "extranodal", "mtv_ml/unit"],
        folds=5,
        seed=7,
        data_label="reference cohort",
        input_sha256=(("cohort.csv", "ab" * 32),),
    ).model


def _doc(model: RiskModel) -> dict[str, Any]:
    return copy.deepcopy(model_to_dict(model))


def _refused(doc: Any, match: str) -> ModelFileError:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(ModelFileError, match=match) as info:
        loads_model(text, "model.json")
    assert str(info.value).startswith("model.json: ")
    return info.value


# ---- round trip
def test_round_trip_exact(fitted: RiskModel, tmp_path: Path) -> None:
    text = dumps_model(fitted)
    back = loads_model(text)
    assert back == fitted
    assert dumps_model(back) == text
    # every float bit for bit (repr precision), not merely close
    assert [c.hex() for c in back.coefficients] == [c.hex() for c in fitted.coefficients]
    assert [x.hex() for r in back.covariance for x in r] == [x.hex() for r in fitted.covariance for x in r]
    path = save_model(fitted, tmp_path / "model.json")
    assert load_model(path) == fitted
    assert fitted.validation is not None and back.validation == fitted.validation
    assert back.features[1].sd == fitted.features[1].sd and fitted.features[1].sd is not None


def test_file_is_plain_json_without_patient_ids(fitted: RiskModel, tmp_path: Path) -> None:
    path = save_model(fitted, tmp_path / "m.json")
    raw = path.read_bytes()
    assert not raw.startswith(b"\x80")  # not a pickle
    doc = json.loads(raw)
    assert doc["format"] == "pofa-risk-model" and doc["format_version"] == FORMAT_VERSION
    assert doc["pofa_version"] and doc["coefficients"]["names"][0] == "(Intercept)"
    text = raw.decode()
    ids = set(_cohort()["patient_id"])
    assert not [i for i in ids if f'"{i}"' in text]  # no patient id is stored
    assert "NaN" not in text and "Infinity" not in text


def test_save_refuses_to_overwrite(fitted: RiskModel, tmp_path: Path) -> None:
    path = save_model(fitted, tmp_path / "m.json")
    with pytest.raises(PofaError, match="exists; choose another out, or add force"):
        save_model(fitted, path)
    save_model(fitted, path, force=True)
    with pytest.raises(PofaError, match="is a folder"):
        save_model(fitted, tmp_path)


@settings(max_examples=60, deadline=None)
@given(
    # any float within the range a model file may hold (fileio.MAX_COEFFICIENT, MAX_COVARIANCE); beyond it a
    # file is refused (tests/test_redteam.py, model-coef-1e308)
    coefs=st.lists(st.floats(min_value=-700.0, max_value=700.0, allow_nan=False, width=64), min_size=3,
                   max_size=3),
    variances=st.lists(st.floats(min_value=0.0, max_value=1e6, allow_nan=False), min_size=3, max_size=3),
    sd=st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False),
)
def test_round_trip_any_float(coefs: list[float], variances: list[float], sd: float) -> None:
    feats = (
        Feature(RiskFactor("diameter_cm", threshold=5.25)),
        Feature(RiskFactor("suvmax", scale="sd"), sd),
    )
    cov = tuple(tuple(variances[i] if i == j else 0.0 for j in range(3)) for i in range(3))
    m = RiskModel(
        kind=ModelKind.GEE,
        label="x",
        method="m",
        covariance_type="c",
        outcome="local_failure",
        features=feats,
        coefficients=tuple(coefs),
        covariance=cov,
        intercept_known=True,
        intercept_basis="b",
        training=TrainingSummary(
            "d", 1, 1, 0, 0, "o", None, tuple(TermSummary(f.term, None, None, None) for f in feats)
        ),
        validation=None,
        limitations=(),
        pofa_version="0.1.0",
    )
    back = loads_model(dumps_model(m))
    assert back == m
    assert [c.hex() for c in back.coefficients] == [float(c).hex() for c in coefs]


# ---- refusal: foreign files, versions, syntax
def test_refuses_newer_format_version(fitted: RiskModel) -> None:
    doc = _doc(fitted)
    doc["format_version"] = FORMAT_VERSION + 1
    err = _refused(doc, "newer")
    assert "upgrade pofa" in str(err)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(format_version="1"), "format_version must be a whole number"),
        (lambda d: d.update(format_version=0), "does not exist"),
        (lambda d: d.update(format="something-else"), "not a pofa risk-model file"),
        (lambda d: d.pop("format"), "not a pofa risk-model file"),
        (lambda d: d.pop("covariance"), "lacks the key covariance"),
        (lambda d: d["training"].pop("n_events"), "training lacks the key n_events"),
        (lambda d: d.update(extra=1), "unknown key extra"),
        (lambda d: d["features"][0].update(color="red"), r"features\[0\] has unknown key color"),
        (lambda d: d.update(kind="random-forest"), "unknown model kind 'random-forest'"),
        (lambda d: d.update(label=3), "label must be text"),
        (
            lambda d: d["coefficients"]["values"].__setitem__(1, "0.5"),
            r"coefficients.values\[1\] must be a number",
        ),
        (
            lambda d: d["coefficients"]["values"].__setitem__(1, True),
            r"coefficients.values\[1\] must be a number",
        ),
        (lambda d: d["training"].update(n_lesions=True), "training.n_lesions must be a whole number"),
        (lambda d: d["training"].update(n_lesions=-3), "training.n_lesions must be at least 0"),
        (lambda d: d["validation"].update(auc="high"), "validation.auc must be a number"),
        (lambda d: d["intercept"].update(known="yes"), "intercept.known must be true or false"),
        (lambda d: d.update(features={}), "features must be a JSON array"),
        (lambda d: d.update(features=[]), "no features"),
        (lambda d: d["covariance"].__setitem__(0, "row"), r"covariance\[0\] must be a JSON array"),
        (lambda d: d["training"].update(input_sha256=[]), "input_sha256 must be a JSON object"),
    ],
)
def test_refuses_tampered_structure(fitted: RiskModel, mutate: Any, match: str) -> None:
    doc = _doc(fitted)
    mutate(doc)
    _refused(doc, match)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["features"][0].update(kind="spline"), "unknown kind 'spline'"),
        (lambda d: d["features"][0].update(term="diameter_cm>=6"), "unknown feature 'diameter_cm>=6'"),
        (lambda d: d["features"][0].update(threshold=None), "threshold is null"),
        (lambda d: d["features"][1].update(scale="log"), "scale is 'log'"),
        (lambda d: d["features"][1].update(sd=None), "per SD but has no training SD"),
        (lambda d: d["features"][1].update(sd=-1.0), "training SD must be a positive number"),
        (lambda d: d["features"][2].update(sd=2.0), "must not carry an SD"),
        (lambda d: d["features"][2].update(column=""), "not a valid feature"),
        (lambda d: d["features"].append(dict(d["features"][0])), "do not match the features"),
        (lambda d: d["coefficients"]["names"].__setitem__(2, "suvmax>=10"), "do not match the features"),
    ],
)
def test_refuses_unknown_or_inconsistent_features(fitted: RiskModel, mutate: Any, match: str) -> None:
    doc = _doc(fitted)
    mutate(doc)
    _refused(doc, match)


def test_refuses_bad_covariance(fitted: RiskModel) -> None:
    doc = _doc(fitted)
    doc["covariance"][0][1] += 1e-3  # one triangle edited
    _refused(doc, r"not symmetric \(entry \[0\]\[1\]")
    doc = _doc(fitted)
    big = 10 * max(doc["covariance"][0][0], doc["covariance"][1][1])
    doc["covariance"][0][1] = doc["covariance"][1][0] = big  # |cov| > sqrt(var1 var2)
    _refused(doc, "not positive semi-definite")
    doc = _doc(fitted)
    doc["covariance"][2][2] = -doc["covariance"][2][2]
    _refused(doc, "negative variance")
    doc = _doc(fitted)
    doc["covariance"].pop()
    _refused(doc, "covariance must be 5 x 5")
    doc = _doc(fitted)
    doc["covariance"][3].append(0.0)
    _refused(doc, "covariance must be 5 x 5")
    doc = _doc(fitted)
    doc["coefficients"]["values"].pop()
    _refused(doc, "5 coefficient names but 4 values")


def test_refuses_other_inconsistencies(fitted: RiskModel) -> None:
    doc = _doc(fitted)
    doc["training"]["terms"].pop()
    _refused(doc, "training summary lists terms")
    doc = _doc(fitted)
    doc["intercept"]["known"] = False
    _refused(doc, "without a known intercept must have intercept 0")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "not valid JSON"),
        ("patient_id,lesion_id\nP1,L1\n", "not valid JSON"),
        ("[1, 2]", "holds one JSON object, got an array"),
        ('{"format": "pofa-risk-model", "format": "x"}', "appears twice"),
    ],
)
def test_refuses_non_model_text(text: str, match: str) -> None:
    _refused(text, match)


def test_refuses_nan_and_pickle(fitted: RiskModel, tmp_path: Path) -> None:
    text = dumps_model(fitted).replace(repr(fitted.coefficients[1]), "NaN", 1)
    _refused(text, "NaN is not a number JSON allows")
    p = tmp_path / "model.pkl"
    p.write_bytes(pickle.dumps({"coef": [1.0]}))
    with pytest.raises(ModelFileError, match="never reads pickled models"):
        load_model(p)
    with pytest.raises(ModelFileError, match="cannot read the model file"):
        load_model(tmp_path / "absent.json")


def test_constructor_checks_structure(fitted: RiskModel) -> None:
    with pytest.raises(ModelFileError, match="coefficients expected"):
        replace(fitted, coefficients=fitted.coefficients[:-1])
    bad = tuple(
        tuple(x * (1.0 if i <= j else 2.0) for j, x in enumerate(r)) for i, r in enumerate(fitted.covariance)
    )
    with pytest.raises(ModelFileError, match="not symmetric"):
        replace(fitted, covariance=bad)
    with pytest.raises(ModelFileError, match="finite float"):
        replace(fitted, coefficients=(math.nan, *fitted.coefficients[1:]))


# ---- the published model
def test_published_coefficients_closed_form() -> None:
    m = published_model(0.2)
    assert m.kind is ModelKind.PUBLISHED and m.validation is None and m.intercept_known
    assert m.terms == ("diameter_cm>=5", "suvmax>=10", "extranodal")
    published = [(2.34, 1.55, 3.55), (2.08, 1.38, 3.12), (1.49, 1.10, 2.04)]
    # exact formulas: ln(OR) and (ln hi - ln lo) / (2 * 1.959964); intercept logit(0.2) = ln(0.25)
    np.testing.assert_allclose(m.coef, [math.log(0.25)] + [math.log(o) for o, _, _ in published], rtol=1e-15)
    se = [(math.log(hi) - math.log(lo)) / (2 * Z) for _, lo, hi in published]
    np.testing.assert_allclose(m.cov, np.diag([0.0] + [s * s for s in se]), rtol=1e-15, atol=0)
    assert "PUBLISHED" in m.label and "not fitted to your data" in m.label
    text = " ".join(m.limitations)
    for phrase in ("univariable", "independent", "back-computed", "diagonal", "baseline risk 0.2"):
        assert phrase in text
    assert "stated by the user" in m.intercept_basis


def test_published_predictions_closed_form() -> None:
    lesions = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B"],
            "lesion_id": ["ref", "all3", "bulky", "x"],
            "diameter_cm": [2.0, 6.0, 5.0, 4.99],
            "suvmax": [5.0, 12.0, 9.99, 10.0],
            "extranodal": [False, True, False, False],
        }
    )
    t = predict_lesions(published_model(0.2), lesions).table.set_index("lesion_id")
    # reference lesion: probability = the stated baseline risk, CI of width 0 (intercept variance 0)
    assert t.loc["ref", "probability"] == pytest.approx(0.2, rel=1e-15)
    assert t.loc["ref", "ci_low"] == pytest.approx(0.2, rel=1e-15)
    assert t.loc["ref", "ci_high"] == pytest.approx(0.2, rel=1e-15)
    odds = 0.25 * 2.34 * 2.08 * 1.49
    var = sum(
        ((math.log(hi) - math.log(lo)) / (2 * Z)) ** 2
        for lo, hi in ((1.55, 3.55), (1.38, 3.12), (1.10, 2.04))
    )
    eta = math.log(odds)
    # closed form; rtol 1e-14 covers the different order of floating-point operations
    assert t.loc["all3", "probability"] == pytest.approx(odds / (1 + odds), rel=1e-14)
    assert t.loc["all3", "ci_low"] == pytest.approx(
        1 / (1 + math.exp(-(eta - Z * math.sqrt(var)))), rel=1e-14
    )
    assert t.loc["all3", "ci_high"] == pytest.approx(
        1 / (1 + math.exp(-(eta + Z * math.sqrt(var)))), rel=1e-14
    )
    assert t.loc["all3", "odds_ratio_vs_reference"] == pytest.approx(2.34 * 2.08 * 1.49, rel=1e-14)
    assert t.loc["bulky", "odds_ratio_vs_reference"] == pytest.approx(2.34, rel=1e-15)  # 5.0 cm counts
    assert t.loc["x", "odds_ratio_vs_reference"] == pytest.approx(2.08, rel=1e-15)  # SUVmax 10.0 counts
    assert list(t.loc[["all3", "bulky", "ref"], "rank_in_patient"]) == [1, 2, 3]
    assert (
        t.loc["all3", "risk_factors"]
        == "diameter_cm>=5 (OR 2.34); suvmax>=10 (OR 2.08); extranodal (OR 1.49)"
    )
    assert t.loc["ref", "risk_factors"] == "none"


def test_published_with_baseline_range_and_without_baseline() -> None:
    m = published_model(0.2, (0.1, 0.3))
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    assert m.cov[0, 0] == pytest.approx(((logit(0.3) - logit(0.1)) / (2 * Z)) ** 2, rel=1e-15)
    lesions = pd.DataFrame(
        {
            "patient_id": ["A", "A"],
            "lesion_id": ["1", "2"],
            "diameter_cm": [2.0, 6.0],
            "suvmax": [3.0, 3.0],
            "extranodal": [False, False],
        }
    )
    t = predict_lesions(m, lesions).table.set_index("lesion_id")
    assert t.loc["1", "ci_low"] == pytest.approx(
        1 / (1 + math.exp(-(logit(0.2) - Z * math.sqrt(m.cov[0, 0]))))
    )
    none = published_model()
    assert not none.intercept_known and none.coef[0] == 0.0
    scores = predict_lesions(none, lesions)
    t = scores.table.set_index("lesion_id")
    assert t["probability"].isna().all() and t["ci_low"].isna().all() and t["logit"].isna().all()
    assert t.loc["2", "odds_ratio_vs_reference"] == pytest.approx(2.34)
    assert list(t["rank_in_patient"]) == [1, 2] and list(t.index) == ["2", "1"]
    assert any("baseline risk" in n for n in scores.notes)
    assert loads_model(dumps_model(none)) == none


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.0,), "strictly between 0 and 1"),
        ((1.2,), "strictly between 0 and 1"),
        ((True,), "between 0 and 1"),
        ((0.2, (0.3, 0.4)), "must contain the baseline risk"),
        ((None, (0.1, 0.3)), "needs the baseline risk"),
        ((0.2, (0.1,)), "two probabilities"),
    ],
)
def test_published_bad_baseline(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        published_model(*args)
