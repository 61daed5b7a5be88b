"""Numeric patient terms end to end: a hazard ratio per declared unit step equal to R coxph, the PH check
"not estimable" where R's cox.zph refuses, and a report that renders them (no yes/no groups asked of them)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import pofa
from pofa.analysis import AnalysisOptions, run_analysis, write_outputs
from pofa.covariates import Covariate, CovariateType
from pofa.settings import Settings
from pofa.stats.cox import cox_ph
from pofa.stats.study_stats import _ph_check, lesion_level_results, patient_level_results

HERE = Path(__file__).parent / "reference"
STUDY = HERE / "pipeline" / "study"
REFERENCE = HERE / "cox_numeric" / "reference.json"

#: Cox estimates against coxph: Newton-Raphson to pofa's convergence (the pipeline test's RTOL_COX).
RTOL_COX = 1e-6


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


def _with_age(settings: Settings, step: float) -> Settings:
    age = Covariate("age", "patients", CovariateType.NUMBER, label="Age", unit="years", step=step)
    return replace(settings, risk_factors=replace(settings.risk_factors, patient=("age",)), covariates=(age,))


@pytest.fixture(scope="module")
def analysed() -> Any:
    study = pofa.load_study(STUDY)
    return run_analysis(study, AnalysisOptions(settings=_with_age(study.settings, 10.0)))


def test_hazard_ratio_per_declared_step_equals_coxph(analysed: Any, reference: dict[str, Any]) -> None:
    pm = analysed.statistics.patient_models
    assert [r.term for r in pm.rows] == ["age", "age"]
    for row, ref in zip(pm.rows, reference["per_10_years"], strict=True):
        assert row.endpoint == ref["endpoint"] and row.step == 10.0 and row.n == ref["n"]
        np.testing.assert_allclose(
            [row.hr, row.ci_low, row.ci_high, row.p],
            [ref["hr"], ref["ci_low"], ref["ci_high"], ref["p"]],
            rtol=RTOL_COX,
            atol=0,
        )
        assert row.label == "Age (per 10 years)" and not row.binary and row.groups == ()
        assert row.n_with is None and math.isnan(row.logrank_p) and "per 10 units" in row.reason
    # results.json keeps its documented keys and values
    doc = analysed.to_json()
    assert doc["patient_models"][0]["hr"] == pm.rows[0].hr and doc["patient_models"][0]["n_with"] is None


def test_step_one_is_per_unit(analysed: Any) -> None:
    per_unit = patient_level_results(analysed.patients, analysed.lesions, _with_age(analysed.settings, 1.0))
    per_ten = analysed.statistics.patient_models
    for a, b in zip(per_unit.rows, per_ten.rows, strict=True):
        # HR per 10 years = (HR per year)^10: exact reparametrisation of the same fit
        assert b.hr == pytest.approx(a.hr**10, rel=1e-9)
        assert b.p == pytest.approx(a.p, rel=1e-9) and a.label == "Age (per year)"


def test_report_renders_a_numeric_patient_term(analysed: Any, tmp_path: Path) -> None:
    out = write_outputs(analysed, tmp_path / "out")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Age (per 10 years)" in html
    table = pd.read_csv(out / "tables" / "patient_models.csv")
    assert list(table["step"]) == [10.0, 10.0]
    # no Kaplan-Meier-by-group figure for a number
    assert not any(p.name.startswith("km_by_age") for p in (out / "figures").iterdir())


def test_ph_check_not_estimable_where_r_refuses(reference: dict[str, Any]) -> None:
    z = reference["zph_singular"]
    assert "singular" in z["r_error"]  # R: cox.zph(fit) stops
    fit = cox_ph(np.array(z["t"], float), np.array(z["e"]), pd.DataFrame({"x": np.array(z["x"], float)}))
    assert fit.hazard_ratios[0].estimate == pytest.approx(z["hr"], rel=RTOL_COX)
    check = _ph_check(fit, "pfs", "x")
    assert math.isnan(check.chisq) and math.isnan(check.p) and check.df is None
    assert check.reason.startswith("not estimable")
    assert check.to_json()["chisq"] is None and check.to_json()["p"] is None


def test_small_sample_note_only_when_the_correction_is_off(analysed: Any) -> None:
    few = analysed.lesions[analysed.lesions["patient_id"].isin(analysed.patients["patient_id"].iloc[:30])]
    off = lesion_level_results(few, analysed.settings)
    on_settings = replace(
        analysed.settings, lesion_models=replace(analysed.settings.lesion_models, small_sample=True)
    )
    on = lesion_level_results(few, on_settings)
    assert any("consider [lesion_models] small_sample = true" in n for n in off.notes)
    assert not any("small_sample" in n for n in on.notes)
