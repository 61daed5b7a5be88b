"""Every lesion-model and patient-survival figure of results.json against R, at 63, 1,000, 5,000 and 20,000
patients.

The cohorts are study folders made by ``tests/reference/scale/make_cohorts.py``, a numpy generator that shares
nothing with pofa's simulator (1-15 lesions per patient, clustered lesion outcomes, tied event times). The 63-
and 1,000-patient folders are committed (``tests/reference/scale/cohorts/``); the 5,000- and 20,000-patient
ones are regenerated from their seeds, and every cohort's files are checked against the SHA-256 recorded in
``cohorts.json`` before any statistic is compared, so R and pofa saw the same bytes. ``reference.R`` derived
the outcomes from the study tables by the documented rules (not from pofa's tables) and fitted every model;
its output is ``reference_n*.json`` (R's numbers to 15 significant digits).

Here pofa analyses the same folders (:func:`pofa.analysis.run_analysis`, then the ``lesion_models``,
``survival``, ``followup`` and ``patient_models`` entries of results.json from :mod:`pofa.stats.study_stats`).

Tolerances (relative; the largest difference measured over the four sizes is in brackets):

* counts (lesions, patients, events, n_with): exact.
* logistic OR and CI against ``glm`` run to the exact root (``epsilon = 1e-14``; SEs from the information at
  R's final coefficients, see reference.R): 1e-8 [4e-12]; p 1e-8 [4e-10]. Both solve the same score equations
  to machine precision; p is more sensitive (its relative error is ~z^2 times that of z).
* logistic OR and CI against ``glm`` with its **default** control (what a user's R script prints): 1e-6
  [4e-7] (R stops at a relative deviance change below 1e-8, and ``summary.glm`` takes the SEs at the
  previous iterate). p is compared as its normal quantile z = Phi^-1(1 - p/2), 3e-6 [9e-7]: the relative
  error of a p of 2e-27 itself is 9e-5. Every fit R calls converged must be estimable in pofa: the failure
  this guards against reported "did not converge" for a fit of the 5,000-patient cohort.
* GEE OR, CI, p against ``geeglm`` to the exact root (``epsilon = 1e-12``): 1e-8 [9e-10]. Against its default
  control (it stops when no estimate moved by more than 1e-4): OR and CI 1e-4 [7e-6], p as z 3e-4 [8e-5].
* Kaplan-Meier landmark survival and CIs: 1e-8 [2e-15] (closed-form products); medians, their CIs and the
  median follow-up are times of the data: 1e-13 [4e-15].
* Cox HR, CI, Wald p against ``coxph`` run to ``eps = 1e-11``: 1e-8 [1e-10]; the HR against ``coxph`` with
  its default control: 1e-6 [7e-10]; log-rank p: 1e-9 [6e-13] (closed form); cox.zph global chi-square and
  p: 1e-8 [4e-12] (a score test at the fitted coefficients).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm

import pofa
from pofa.analysis import AnalysisOptions, run_analysis
from pofa.stats import study_stats as ss
from pofa.stats.cox import cox_ph
from pofa.stats.factors import build_design, parse_factor
from pofa.stats.logistic import fit_logistic

HERE = Path(__file__).parent / "reference" / "scale"
MANIFEST = json.loads((HERE / "cohorts.json").read_text(encoding="utf-8"))

RTOL_EXACT = 1e-8
RTOL_GLM_DEFAULT = 1e-6
RTOL_GLM_DEFAULT_Z = 3e-6
RTOL_GEE_DEFAULT = 1e-4
RTOL_GEE_DEFAULT_Z = 3e-4
RTOL_KM = 1e-8
RTOL_TIME = 1e-13
RTOL_COX_DEFAULT = 1e-6
RTOL_CLOSED_FORM = 1e-9
RTOL_ZPH = 1e-8

SIZES = [
    63,
    1000,
    pytest.param(5000, marks=pytest.mark.slow),
    pytest.param(20000, marks=pytest.mark.slow),
]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("scale_make_cohorts", HERE / "make_cohorts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cohort_folder(n: int, tmp: Path) -> Path:
    name = f"n{n:05d}"
    folder = HERE / "cohorts" / name
    if not folder.is_dir():
        folder = tmp / name
        _generator().write_cohort(n, folder)
    for file, digest in MANIFEST[name]["sha256"].items():
        got = hashlib.sha256((folder / file).read_bytes()).hexdigest()
        assert got == digest, f"{name}/{file} differs from the cohort R saw (generator or numpy changed)"
    return folder


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"{n}-patients")
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    n = int(request.param)
    folder = _cohort_folder(n, tmp_path_factory.mktemp("scale"))
    ref = json.loads((HERE / f"reference_n{n:05d}.json").read_text(encoding="utf-8"))
    res = run_analysis(pofa.load_study(folder), AnalysisOptions(), steps=())
    out: dict[str, Any] = {}
    out.update(ss.lesion_level(res.lesions, res.settings))
    out.update(ss.survival(res.patients, res.settings))
    out.update(ss.patient_level(res.patients, res.lesions, res.settings))
    return {"n": n, "ref": ref, "pofa": out, "analysis": res}


def _close(actual: Any, expected: Any, rtol: float, what: str) -> None:
    a = np.array([np.nan if v is None else v for v in np.atleast_1d(actual)], dtype=float)
    e = np.array([np.nan if v is None else v for v in np.atleast_1d(expected)], dtype=float)
    np.testing.assert_allclose(a, e, rtol=rtol, atol=0, err_msg=what)


def _z(p: Any) -> np.ndarray:
    """A two-sided p as its normal quantile z = Phi^-1(1 - p / 2): an error dz moves p by a relative
    ~z dz, so a tiny p (1e-27 at 1,000 patients) is compared through z."""
    return np.asarray(norm.isf(np.asarray(np.atleast_1d(p), dtype=float) / 2.0))


def _rows(out: dict[str, Any], model: str, method: str) -> list[dict[str, Any]]:
    return [r for r in out["lesion_models"] if r["model"] == model and r["method"] == method]


def test_the_data_pofa_and_r_saw(case: dict[str, Any]) -> None:
    ref, out = case["ref"], case["pofa"]
    info = out["lesion_models_info"]
    assert ref["n_patients"] == case["n"]
    assert info["n_lesions"] == ref["n_lesions_known"]
    assert info["n_lesions"] + info["n_lesions_unknown_outcome"] == ref["n_lesions"]
    for r in out["lesion_models"]:
        assert r["n_lesions"] == ref["n_lesions_known"]
        assert r["n_patients"] == ref["lesion_models"][0]["n_patients"]
    assert out["survival"]["pfs"]["n"] == ref["survival"]["pfs"]["n"] == case["n"]
    for ep in ("pfs", "os"):
        assert out["survival"][ep]["events"] == ref["survival"][ep]["events"]


@pytest.mark.parametrize("method", ["logistic", "gee"])
def test_lesion_models_equal_r_at_the_root(case: dict[str, Any], method: str) -> None:
    """Every OR, CI and p of the univariable and multivariable models, against R fitted to the root."""
    for m in case["ref"]["lesion_models"]:
        rows = _rows(case["pofa"], m["model"], method)
        terms = list(np.atleast_1d(m["terms"]))
        if m["model"] == "univariable":
            rows = [r for r in rows if r["term"] == terms[0]]
        assert [r["term"] for r in rows] == terms
        for key in ("or", "ci_low", "ci_high", "p"):
            _close([r[key] for r in rows], m[method][key], RTOL_EXACT, f"{m['model']} {method} {terms} {key}")


def test_logistic_converges_wherever_r_glm_does(case: dict[str, Any]) -> None:
    """R's glm with its default control converges on every model, so pofa must estimate every one, and equal
    what glm prints within glm's own stopping error."""
    for m in case["ref"]["lesion_models"]:
        assert m["glm_default"]["converged"] and m["glm_default"]["iter"] <= 25
        rows = _rows(case["pofa"], m["model"], "logistic")
        terms = list(np.atleast_1d(m["terms"]))
        if m["model"] == "univariable":
            rows = [r for r in rows if r["term"] == terms[0]]
        assert all(r["or"] is not None for r in rows), (m["model"], terms, case["pofa"]["lesion_models_info"])
        d = m["logistic_default"]
        for key in ("or", "ci_low", "ci_high"):
            _close([r[key] for r in rows], d[key], RTOL_GLM_DEFAULT, f"glm default {terms} {key}")
        _close(_z([r["p"] for r in rows]), _z(d["p"]), RTOL_GLM_DEFAULT_Z, f"glm default {terms} p as z")
    assert not any("converge" in n for n in case["pofa"]["lesion_models_info"]["notes"])


def test_gee_equals_geeglm_default(case: dict[str, Any]) -> None:
    for m in case["ref"]["lesion_models"]:
        rows = _rows(case["pofa"], m["model"], "gee")
        terms = list(np.atleast_1d(m["terms"]))
        if m["model"] == "univariable":
            rows = [r for r in rows if r["term"] == terms[0]]
        d = m["gee_default"]
        for key in ("or", "ci_low", "ci_high"):
            _close([r[key] for r in rows], d[key], RTOL_GEE_DEFAULT, f"geeglm default {terms} {key}")
        _close(_z([r["p"] for r in rows]), _z(d["p"]), RTOL_GEE_DEFAULT_Z, f"geeglm default {terms} p as z")


def test_kaplan_meier_and_followup(case: dict[str, Any]) -> None:
    ref, out = case["ref"], case["pofa"]
    for ep in ("pfs", "os"):
        r, p = ref["survival"][ep], out["survival"][ep]
        _close([p["median_months"], p["ci_low"], p["ci_high"]], [r["median"], r["ci_low"], r["ci_high"]],
               RTOL_TIME, f"{ep} median and CI")
        assert [lm["months"] for lm in p["landmarks"]] == list(r["landmark_months"])
        for key, rkey in (("survival", "surv"), ("ci_low", "lower"), ("ci_high", "upper")):
            _close([lm[key] for lm in p["landmarks"]], r[rkey], RTOL_KM, f"{ep} landmark {key}")
    fu, rf = out["followup"], ref["followup"]
    _close([fu["median_months"], fu["ci_low"], fu["ci_high"]], [rf["median"], rf["ci_low"], rf["ci_high"]],
           RTOL_TIME, "median follow-up")


def test_cox_and_log_rank(case: dict[str, Any]) -> None:
    rows = {r["endpoint"]: r for r in case["pofa"]["patient_models"]}
    checks = {c["endpoint"]: c for c in case["pofa"]["patient_models_info"]["ph_checks"]}
    for r in case["ref"]["cox"]:
        p = rows[r["endpoint"]]
        assert p["term"] == "any diameter_cm>=5" and p["n_with"] == r["n_with"]
        _close([p["hr"], p["ci_low"], p["ci_high"], p["p"]], [r["or"], r["ci_low"], r["ci_high"], r["p"]],
               RTOL_EXACT, f"{r['endpoint']} Cox HR, CI, p")
        _close(p["hr"], r["hr_default"], RTOL_COX_DEFAULT, f"{r['endpoint']} HR vs coxph default")
        _close(p["logrank_p"], r["logrank_p"], RTOL_CLOSED_FORM, f"{r['endpoint']} log-rank p")
        c = checks[r["endpoint"]]
        _close([c["chisq"], c["p"]], [r["zph_chisq"], r["zph_p"]], RTOL_ZPH, f"{r['endpoint']} cox.zph")


def test_iterations_follow_r_rules(case: dict[str, Any]) -> None:
    """The convergence rules are R's: glm's and coxph's iteration counts with their default control."""
    res = case["analysis"]
    known = res.lesions[res.lesions["local_failure"].notna()].copy()
    known["local_failure"] = known["local_failure"].astype("int64")
    for m in case["ref"]["lesion_models"]:
        factors = tuple(parse_factor(t) for t in np.atleast_1d(m["terms"]))
        table = fit_logistic(build_design(known, factors, outcome="local_failure", cluster="patient_id"))
        assert table.converged and table.n_iter == m["glm_default"]["iter"], (m["terms"], table.n_iter)
        assert "glm.control" in table.convergence
    pat = res.patients
    bulky = pat["any_diameter_cm_ge_5"].astype("float64")
    for r in case["ref"]["cox"]:
        ep = r["endpoint"]
        fit = cox_ph(pat[f"{ep}_months"].to_numpy(float), pat[f"{ep}_event"].to_numpy(int),
                     bulky.to_frame("bulky"))
        assert fit.n_iter == r["iter_default"], (ep, fit.n_iter)
        assert "coxph.control" in fit.convergence
