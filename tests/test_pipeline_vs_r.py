"""End to end: every statistic that ``pofa analyze`` writes into results.json agrees with R.

The committed study ``tests/reference/pipeline/study/`` (simulated, 80 patients, 572 lesions; made once by
``make_study.py``) is analysed here by :func:`pofa.analysis.run_analysis` and written by
:func:`pofa.analysis.write_outputs` (results.json only). ``make_reference.R`` recomputed each statistic in R
from the analysed tables ``analysed/patients.csv`` and ``analysed/lesions.csv`` (what ``pofa analyze
--show-dates`` writes for that study) and stored them in ``reference.json``. The first test checks that the
pipeline still produces those tables, so that R and pofa saw the same data.

Tolerances (relative unless said otherwise; reference.json holds R's numbers to 15 significant digits, so
nothing is compared tighter than ~1e-14):

* counts (patients, lesions, events, n_with, n_low ...): exact.
* logistic and GEE against R fitted to the exact root (glm epsilon 1e-14, geese epsilon 1e-12): 1e-8 for
  OR, CI and p (both sides solve the same estimating equations to machine precision; measured <= 2e-12).
* logistic against ``glm`` with its default control (epsilon 1e-8 on the deviance): OR and CI 1e-6, p 1e-5
  (R stops early: CI limits measured 2e-7 off, Wald p 3e-6 because d log p ~ z dz).
* GEE against ``geeglm`` with its default control (epsilon 1e-4 on the step): 1e-4 for OR, CI and p
  (measured 1.4e-5).
* Kaplan-Meier survival and CIs, cumulative incidence and its log(-log) CI: 1e-8 (closed-form products
  and sums, no iteration; measured 4e-15).
* medians and their CIs, median follow-up, cut-points: times or values of the data, so exact up to R's 15
  printed digits: 1e-13 (measured 4e-15).
* Cox HR, CI, Wald p, cox.zph: 1e-6 (R's Newton iterations stop at a 1e-9 change of the log partial
  likelihood; measured 1e-9).
* log-rank p, Gray's statistic and p, maxstat statistic and Lau92/Lau94 p: 1e-9 (closed form given the
  data; measured 3e-11 for Gray's p, ~1e-14 for the others).
"""

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
from pofa.analysis import AnalysisOptions, output_tables, run_analysis, write_outputs
from pofa.stats.study_stats import patient_level

HERE = Path(__file__).parent / "reference" / "pipeline"
STUDY = HERE / "study"

RTOL_EXACT_ROOT = 1e-8
RTOL_GLM_DEFAULT = 1e-6
RTOL_GLM_DEFAULT_P = 1e-5
RTOL_GEE_DEFAULT = 1e-4
RTOL_KM = 1e-8
RTOL_CIF = 1e-8
RTOL_TIME = 1e-13
RTOL_COX = 1e-6
RTOL_CLOSED_FORM = 1e-9

#: Columns of the analysed tables that make_reference.R reads.
PATIENT_COLUMNS = [
    "patient_id",
    "pfs_months",
    "pfs_event",
    "os_months",
    "os_event",
    "fp_months",
    "fp_status",
    "any_diameter_cm_ge_5",
    "max_diameter_cm",
    "max_suvmax",
]
LESION_COLUMNS = [
    "patient_id",
    "lesion_id",
    "local_failure",
    "diameter_cm",
    "suvmax",
    "extranodal",
    "lf_months",
    "lf_status",
]


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return json.loads((HERE / "reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def analysed() -> Any:
    # the tables R read were written with dates and the study's own patient ids (--show-dates --show-ids)
    return run_analysis(pofa.load_study(STUDY), AnalysisOptions(show_dates=True, show_ids=True))


@pytest.fixture(scope="module")
def results(analysed: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """results.json as written (``write_outputs`` without the report: the same JSON text)."""
    out = write_outputs(analysed, tmp_path_factory.mktemp("pipeline") / "out", writers=())
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def _values(x: Any) -> np.ndarray:
    """Numbers with None as NaN, for assert_allclose (which treats NaN == NaN as equal)."""
    return np.array([np.nan if v is None else v for v in np.atleast_1d(x)], dtype=float)


def _nulls_match(actual: Any, expected: Any) -> None:
    a, e = np.atleast_1d(actual), np.atleast_1d(expected)
    assert [v is None for v in a] == [v is None for v in e], (actual, expected)


# ---------------------------------------------------------------------------------------------------------
# the data R saw


def test_r_read_the_tables_this_pipeline_writes(analysed: Any, reference: dict[str, Any]) -> None:
    tables = output_tables(analysed)
    for stem, columns in (("patients", PATIENT_COLUMNS), ("lesions", LESION_COLUMNS)):
        committed = pd.read_csv(
            HERE / "analysed" / f"{stem}.csv", dtype={"patient_id": str, "lesion_id": str}
        )
        current = tables[stem]
        assert list(committed.columns) == list(current.columns), stem
        assert len(committed) == len(current), stem
        for c in columns:
            a = current[c].astype("float64" if c not in ("patient_id", "lesion_id") else object)
            e = committed[c].astype(a.dtype)
            # the CSV holds the shortest round-trip text of each float: equal to the bit
            pd.testing.assert_series_equal(
                a.reset_index(drop=True),
                e.reset_index(drop=True),
                check_names=False,
                rtol=0,
                atol=0,
                obj=f"{stem}.{c}",
            )
    d = reference["data"]
    assert (d["n_patients"], d["n_lesions"]) == (80, 572)


def test_study_exercises_every_branch(reference: dict[str, Any]) -> None:
    """The committed study is not trivial: unknown outcomes, every competing cause, enough events."""
    d = reference["data"]
    assert d["n_lesions_unknown_outcome"] > 0 and d["n_patients_known"] < d["n_patients"]
    causes = {c["cause"] for c in reference["competing_risks"]["patients_overall"]["curves"]}
    assert causes == {1, 2, 3, 4}
    assert all(r["nevent"] >= 40 for r in reference["patient_models"])


# ---------------------------------------------------------------------------------------------------------
# lesion_models


def _r_lesion_row(reference: dict[str, Any], row: dict[str, Any], control: str) -> dict[str, Any]:
    hits = [
        r
        for r in reference["lesion_models"]
        if r["control"] == control
        and (r["model"], r["method"], r["term"]) == (row["model"], row["method"], row["term"])
    ]
    assert len(hits) == 1, row
    return hits[0]


def test_lesion_models_rows_match_r(results: dict[str, Any], reference: dict[str, Any]) -> None:
    rows = results["lesion_models"]
    keys = {(r["model"], r["method"], r["term"]) for r in rows}
    r_keys = {(r["model"], r["method"], r["term"]) for r in reference["lesion_models"]}
    assert keys == r_keys and len(rows) == len(keys) == 12
    d = reference["data"]
    for row in rows:
        assert (row["n_lesions"], row["n_patients"]) == (d["n_lesions_known"], d["n_patients_known"])


@pytest.mark.parametrize("method", ["logistic", "gee"])
def test_lesion_odds_ratios_match_r_exact_root(
    results: dict[str, Any], reference: dict[str, Any], method: str
) -> None:
    rows = [r for r in results["lesion_models"] if r["method"] == method]
    r_rows = [_r_lesion_row(reference, r, "tight") for r in rows]
    for k in ("or", "ci_low", "ci_high", "p"):
        np.testing.assert_allclose(
            _values([r[k] for r in rows]),
            _values([r[k] for r in r_rows]),
            rtol=RTOL_EXACT_ROOT,
            atol=0,
            err_msg=f"{method} {k}",
        )


def test_logistic_matches_glm_default_control(results: dict[str, Any], reference: dict[str, Any]) -> None:
    rows = [r for r in results["lesion_models"] if r["method"] == "logistic"]
    r_rows = [_r_lesion_row(reference, r, "default") for r in rows]
    for k in ("or", "ci_low", "ci_high"):
        np.testing.assert_allclose(
            _values([r[k] for r in rows]),
            _values([r[k] for r in r_rows]),
            rtol=RTOL_GLM_DEFAULT,
            atol=0,
            err_msg=k,
        )
    np.testing.assert_allclose(
        _values([r["p"] for r in rows]), _values([r["p"] for r in r_rows]), rtol=RTOL_GLM_DEFAULT_P, atol=0
    )


def test_gee_matches_geeglm_default_control(results: dict[str, Any], reference: dict[str, Any]) -> None:
    rows = [r for r in results["lesion_models"] if r["method"] == "gee"]
    r_rows = [_r_lesion_row(reference, r, "default") for r in rows]
    for k in ("or", "ci_low", "ci_high", "p"):
        np.testing.assert_allclose(
            _values([r[k] for r in rows]),
            _values([r[k] for r in r_rows]),
            rtol=RTOL_GEE_DEFAULT,
            atol=0,
            err_msg=k,
        )


def test_lesion_models_info_counts(results: dict[str, Any], reference: dict[str, Any]) -> None:
    info, d = results["lesion_models_info"], reference["data"]
    assert info["n_lesions"] == d["n_lesions_known"]
    assert info["n_lesions_unknown_outcome"] == d["n_lesions_unknown_outcome"]
    assert info["n_patients"] == d["n_patients_known"]
    assert info["n_lesions"] + info["n_lesions_unknown_outcome"] == d["n_lesions"]


# ---------------------------------------------------------------------------------------------------------
# survival, followup


@pytest.mark.parametrize("endpoint", ["pfs", "os"])
def test_kaplan_meier_matches_survfit(
    results: dict[str, Any], reference: dict[str, Any], endpoint: str
) -> None:
    got, ref = results["survival"][endpoint], reference["survival"][endpoint]
    assert (got["n"], got["events"]) == (ref["n"], ref["events"])
    assert got["ci_method"] == "log-log"
    med = [got["median_months"], got["ci_low"], got["ci_high"]]
    r_med = [ref["median_months"], ref["ci_low"], ref["ci_high"]]
    _nulls_match(med, r_med)
    np.testing.assert_allclose(_values(med), _values(r_med), rtol=RTOL_TIME, atol=0)
    assert [lm["months"] for lm in got["landmarks"]] == [lm["months"] for lm in ref["landmarks"]]
    for k in ("survival", "ci_low", "ci_high"):
        a = [lm[k] for lm in got["landmarks"]]
        e = [lm[k] for lm in ref["landmarks"]]
        _nulls_match(a, e)
        np.testing.assert_allclose(_values(a), _values(e), rtol=RTOL_KM, atol=0, err_msg=k)


def test_median_followup_matches_reverse_km(results: dict[str, Any], reference: dict[str, Any]) -> None:
    got, ref = results["followup"], reference["followup"]
    keys = ("median_months", "ci_low", "ci_high")
    _nulls_match([got[k] for k in keys], [ref[k] for k in keys])
    np.testing.assert_allclose(
        _values([got[k] for k in keys]), _values([ref[k] for k in keys]), rtol=RTOL_TIME, atol=0
    )


# ---------------------------------------------------------------------------------------------------------
# patient_models


def test_cox_and_logrank_match_r(results: dict[str, Any], reference: dict[str, Any]) -> None:
    rows = results["patient_models"]
    assert [(r["endpoint"], r["term"]) for r in rows] == [
        (r["endpoint"], r["term"]) for r in reference["patient_models"]
    ]
    for got, ref in zip(rows, reference["patient_models"], strict=True):
        assert got["n_with"] == ref["n_with"]
        for k in ("hr", "ci_low", "ci_high", "p"):
            np.testing.assert_allclose(
                got[k], ref[k], rtol=RTOL_COX, atol=0, err_msg=f"{got['endpoint']} {k}"
            )
        np.testing.assert_allclose(got["logrank_p"], ref["logrank_p"], rtol=RTOL_CLOSED_FORM, atol=0)
    info = results["patient_models_info"]
    assert [x["n"] for x in info["n"]] == [r["n"] for r in reference["patient_models"]]
    for got, ref in zip(info["ph_checks"], reference["patient_models"], strict=True):
        assert got["endpoint"] == ref["endpoint"] and got["df"] == ref["zph_df"]
        np.testing.assert_allclose(
            [got["chisq"], got["p"]], [ref["zph_chisq"], ref["zph_p"]], rtol=RTOL_COX, atol=0
        )


def test_covariate_term_and_multivariable_cox_match_r(analysed: Any, reference: dict[str, Any]) -> None:
    """[risk_factors] patient = ["any diameter_cm>=5", "age"]: HR per year of age, and the multivariable Cox
    model of both terms (patient_models_info.multivariable), against coxph."""
    settings = replace(
        analysed.settings,
        risk_factors=replace(analysed.settings.risk_factors, patient=("any diameter_cm>=5", "age")),
    )
    out = patient_level(analysed.patients, analysed.lesions, settings)
    ref = reference["patient_models_with_age"]
    age = [r for r in out["patient_models"] if r["term"] == "age"]
    assert [r["endpoint"] for r in age] == [r["endpoint"] for r in ref["univariable"]]
    for got, r in zip(age, ref["univariable"], strict=True):
        for k in ("hr", "ci_low", "ci_high", "p"):
            np.testing.assert_allclose(
                got[k], r[k], rtol=RTOL_COX, atol=0, err_msg=f"{got['endpoint']} age {k}"
            )
        assert got["logrank_p"] is None and got["n_with"] is None and "yes/no" in got["reason"]
    checks = [c for c in out["patient_models_info"]["ph_checks"] if c["term"] == "age"]
    np.testing.assert_allclose(
        [[c["chisq"], c["p"]] for c in checks],
        [[r["zph_chisq"], r["zph_p"]] for r in ref["univariable"]],
        rtol=RTOL_COX,
        atol=0,
    )
    multi = out["patient_models_info"]["multivariable"]
    assert [(m["endpoint"], m["term"], m["n"]) for m in multi] == [
        (r["endpoint"], r["term"], r["n"]) for r in ref["multivariable"]
    ]
    for k in ("hr", "ci_low", "ci_high", "p"):
        np.testing.assert_allclose(
            [m[k] for m in multi], [r[k] for r in ref["multivariable"]], rtol=RTOL_COX, atol=0, err_msg=k
        )


# ---------------------------------------------------------------------------------------------------------
# competing_risks


def _check_cif(got: dict[str, Any], ref: dict[str, Any], grouped: bool) -> None:
    """One results.json competing-risk block (overall or by group) against one R cuminc fit."""
    assert got["n"] == ref["n"]
    curves = {(c["code"], cv["group"]): cv for c in got["causes"] for cv in c["curves"]}
    r_curves = {(rc["cause"], rc["group"] if grouped else None): rc for rc in ref["curves"]}
    assert set(curves) == set(r_curves)
    for key, rc in r_curves.items():
        cv = curves[key]
        assert (cv["n"], cv["events"]) == (rc["n"], rc["events"]), key
        assert [lm["months"] for lm in cv["landmarks"]] == rc["months"]
        inc = [lm["incidence"] for lm in cv["landmarks"]]
        _nulls_match(inc, rc["est"])
        np.testing.assert_allclose(_values(inc), _values(rc["est"]), rtol=RTOL_CIF, atol=0, err_msg=str(key))
        for k in ("ci_low", "ci_high"):
            a = [lm[k] for lm in cv["landmarks"]]
            _nulls_match(a, rc[k])
            np.testing.assert_allclose(
                _values(a), _values(rc[k]), rtol=RTOL_CIF, atol=0, err_msg=f"{key} {k}"
            )
        for lm, est in zip(cv["landmarks"], rc["est"], strict=True):
            # null, or 0 with no interval, always says why
            if lm["incidence"] is None or lm["ci_low"] is None:
                assert lm.get("reason"), (key, lm)
            if est == 0:
                assert lm["incidence"] == 0.0
    tests = {c["code"]: c.get("gray") for c in got["causes"]}
    if not grouped:
        assert all(g is None for g in tests.values())
        return
    assert {t["cause"] for t in ref["tests"]} == set(tests)
    for t in ref["tests"]:
        g = tests[t["cause"]]
        assert g["df"] == t["df"]
        np.testing.assert_allclose(
            [g["statistic"], g["p"]],
            [t["statistic"], t["p"]],
            rtol=RTOL_CLOSED_FORM,
            atol=0,
            err_msg=f"Gray cause {t['cause']}",
        )


def test_patient_cumulative_incidence_matches_cuminc(
    results: dict[str, Any], reference: dict[str, Any]
) -> None:
    got, ref = results["competing_risks"]["patients"], reference["competing_risks"]
    _check_cif(got["overall"], ref["patients_overall"], grouped=False)
    _check_cif(got["by_group"], ref["patients_by_group"], grouped=True)
    assert {g["gray"]["by"] for g in (c for c in got["by_group"]["causes"])} == {"any diameter_cm>=5"}
    labels = {c["code"]: c["cause"] for c in got["overall"]["causes"]}
    assert labels == {
        1: "local component",
        2: "strictly de novo",
        3: "death without progression",
        4: "progression, pattern unknown",
    }


def test_lesion_cumulative_incidence_matches_cuminc(
    results: dict[str, Any], reference: dict[str, Any]
) -> None:
    got, ref = results["competing_risks"]["lesions"], reference["competing_risks"]
    _check_cif(got["overall"], ref["lesions_overall"], grouped=False)
    assert [b["term"] for b in got["by_factor"]] == [b["term"] for b in ref["lesions_by_factor"]]
    for b, rb in zip(got["by_factor"], ref["lesions_by_factor"], strict=True):
        _check_cif(b, rb["fit"], grouped=True)
    assert "independent" in got["note"]


# ---------------------------------------------------------------------------------------------------------
# cutpoints


def test_cutpoints_match_maxstat(results: dict[str, Any], reference: dict[str, Any]) -> None:
    rows = results["cutpoints"]
    assert [r["feature"] for r in rows] == [r["feature"] for r in reference["cutpoints"]]
    for got, ref in zip(rows, reference["cutpoints"], strict=True):
        assert (got["n"], got["n_low"], got["n_high"]) == (ref["n"], ref["n_low"], ref["n_high"])
        np.testing.assert_allclose(got["cutpoint"], ref["cutpoint"], rtol=RTOL_TIME, atol=0)
        np.testing.assert_allclose(
            [got["statistic"], got["p_lau92"], got["p_lau94"]],
            [ref["statistic"], ref["p_lau92"], ref["p_lau94"]],
            rtol=RTOL_CLOSED_FORM,
            atol=0,
            err_msg=got["feature"],
        )
        assert got["note"].startswith("exploratory")


# ---------------------------------------------------------------------------------------------------------
# every number compared


def _numbers(obj: Any, path: str = "") -> list[str]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _numbers(v, f"{path}.{k}")]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _numbers(v, f"{path}[{i}]")]
    if isinstance(obj, float) and not math.isnan(obj):
        return [path]
    return []


def test_results_json_statistics_are_what_this_file_checks(results: dict[str, Any]) -> None:
    """Guard against a new number in results.json that no test above compares with R: the float-valued
    paths of the statistics keys are listed here by pattern. A new statistic needs a reference first."""
    import re

    compared = re.compile(
        r"^\.lesion_models\[\d+\]\.(or|ci_low|ci_high|p)$"
        r"|^\.survival\.(pfs|os)\.(median_months|ci_low|ci_high)$"
        r"|^\.survival\.(pfs|os)\.landmarks\[\d\]\.(months|survival|ci_low|ci_high)$"
        r"|^\.followup\.(median_months|ci_low|ci_high)$"
        r"|^\.patient_models\[\d\]\.(hr|ci_low|ci_high|p|logrank_p)$"
        r"|^\.patient_models_info\.ph_checks\[\d\]\.(chisq|p)$"
        r"|^\.competing_risks\..*\.landmarks\[\d\]\.(months|incidence|ci_low|ci_high)$"
        r"|^\.competing_risks\..*\.gray\.(statistic|p)$"
        r"|^\.cutpoints\[\d\]\.(cutpoint|statistic|p_lau92|p_lau94)$"
    )
    keys = (
        "lesion_models",
        "lesion_models_info",
        "survival",
        "followup",
        "patient_models",
        "patient_models_info",
        "competing_risks",
        "cutpoints",
    )
    floats = [p for k in keys for p in _numbers(results[k], f".{k}")]
    assert floats
    unchecked = [p for p in floats if not compared.match(p)]
    assert not unchecked, unchecked
