"""The statistics layer of ``pofa analyze`` (:mod:`pofa.stats.study_stats`): invariants and the results.json
contract of issue 4 (keys, nulls with reasons, plain JSON numbers).

The numbers themselves are compared with R in tests/test_pipeline_vs_r.py; here the data are the same
committed simulated study (tests/reference/pipeline/study, 80 patients, 572 lesions, 4 patients whose
pattern is unknown), analysed once, then edited table by table.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import pofa
from pofa.analysis import run_analysis, write_outputs
from pofa.errors import SettingsError
from pofa.settings import Settings
from pofa.stats import study_stats as ss
from pofa.stats.cox import cox_ph
from pofa.stats.lesion_level import ROW_KEYS

STUDY = Path(__file__).parent / "reference" / "pipeline" / "study"

#: results.json keys written by the statistics steps.
STAT_KEYS = (
    "lesion_models",
    "lesion_models_info",
    "survival",
    "followup",
    "patient_models",
    "patient_models_info",
    "competing_risks",
    "cutpoints",
)
#: issue 4: the keys of a patient_models row ("reason" is added beside a null).
PATIENT_ROW_KEYS = {"endpoint", "term", "hr", "ci_low", "ci_high", "p", "logrank_p", "n_with"}
#: The same computation on the same numbers in another row order: only the summation order of floating-point
#: sums differs (GEE cluster sums, risk-set sums), a few units in the last place.
RTOL_ROW_ORDER = 1e-10


@pytest.fixture(scope="module")
def base() -> Any:
    """The committed study, classified (no statistics steps)."""
    return run_analysis(pofa.load_study(STUDY), steps=())


def _settings(
    lesion: tuple[str, ...] | None = None, patient: tuple[str, ...] | None = None, **lesion_models: bool
) -> Settings:
    s = Settings()
    rf = s.risk_factors
    rf = replace(
        rf,
        **({"lesion": lesion} if lesion is not None else {}),
        **({"patient": patient} if patient is not None else {}),
    )
    return replace(s, risk_factors=rf, lesion_models=replace(s.lesion_models, **lesion_models))


def _stats(patients: pd.DataFrame, lesions: pd.DataFrame, settings: Settings | None = None) -> dict[str, Any]:
    return ss.study_statistics(patients, lesions, settings if settings is not None else Settings())


def _subset(base: Any, n_patients: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first ``n_patients`` patients with a known pattern, and their lesions."""
    pat, les = base.patients, base.lesions
    known_ids = les.loc[les["local_failure"].notna(), "patient_id"].unique()[:n_patients]
    assert len(known_ids) == n_patients
    return (
        pat[pat["patient_id"].isin(known_ids)].reset_index(drop=True),
        les[les["patient_id"].isin(known_ids)].reset_index(drop=True),
    )


# ---------------------------------------------------------------------------------------------------------
# plain JSON


def _walk(obj: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in _walk(v, f"{path}.{k}")]
    if isinstance(obj, list):
        return [x for i, v in enumerate(obj) for x in _walk(v, f"{path}[{i}]")]
    return [(path, obj)]


def _assert_plain(stats: dict[str, Any]) -> None:
    """Every leaf is None, bool, str, int or a finite float of Python's own types (no numpy, NaN, inf)."""
    for path, v in _walk(stats):
        assert v is None or type(v) in (bool, str, int, float), (path, type(v))
        if type(v) is float:
            assert math.isfinite(v), path


def _reject(token: str) -> Any:
    raise AssertionError(f"results.json holds {token}")


def test_results_json_numbers_are_plain(base: Any, tmp_path: Path) -> None:
    result = run_analysis(pofa.load_study(STUDY))
    text = (write_outputs(result, tmp_path / "out", writers=()) / "results.json").read_text(encoding="utf-8")
    data = json.loads(text, parse_constant=_reject)  # NaN, Infinity and -Infinity are refused
    assert set(STAT_KEYS) <= set(data)
    _assert_plain({k: data[k] for k in STAT_KEYS})
    # the statistics layer itself returns plain JSON: json_ready does not have to hide a NaN
    _assert_plain({k: result.stats[k] for k in STAT_KEYS})


# ---------------------------------------------------------------------------------------------------------
# invariants


def _shuffled_copy(src: Path, dest: Path, seed: int) -> Path:
    shutil.copytree(src, dest)
    rng = np.random.default_rng(seed)
    for name in ("patients.csv", "lesions.csv", "failures.csv"):
        path = dest / name
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        body = lines[1:]
        order = rng.permutation(len(body))
        path.write_text(lines[0] + "".join(body[i] for i in order), encoding="utf-8")
    return dest


def _assert_same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}[{i}]")
    elif type(a) is float:
        assert type(b) is float and math.isclose(a, b, rel_tol=RTOL_ROW_ORDER, abs_tol=0), (path, a, b)
    else:
        assert a == b and type(a) is type(b), (path, a, b)


def test_row_order_changes_nothing(base: Any, tmp_path: Path) -> None:
    study = _shuffled_copy(STUDY, tmp_path / "shuffled", seed=7)
    before = run_analysis(pofa.load_study(STUDY))
    after = run_analysis(pofa.load_study(study))
    assert list(after.patients["patient_id"]) != list(before.patients["patient_id"])  # really shuffled
    for key in STAT_KEYS:
        _assert_same(before.stats[key], after.stats[key], key)


def test_unknown_pattern_lesions_are_left_out_and_counted(base: Any) -> None:
    les = base.lesions
    unknown = les["lesion_outcome"].eq("unknown")
    assert unknown.sum() == 30 and les.loc[unknown, "local_failure"].isna().all()
    out = ss.lesion_level(les, Settings())
    info = out["lesion_models_info"]
    assert info["n_lesions_unknown_outcome"] == 30
    assert info["n_lesions"] == len(les) - 30
    assert info["n_patients"] == les.loc[~unknown, "patient_id"].nunique() == 76
    assert {(r["n_lesions"], r["n_patients"]) for r in out["lesion_models"]} == {(542, 76)}
    # the same numbers as without those lesions: left out, not counted as "no failure"
    without = ss.lesion_level(les[~unknown].reset_index(drop=True), Settings())
    assert without["lesion_models"] == out["lesion_models"]
    assert without["lesion_models_info"]["n_lesions_unknown_outcome"] == 0
    as_zero = les.copy()
    as_zero["local_failure"] = as_zero["local_failure"].fillna(0)
    assert ss.lesion_level(as_zero, Settings())["lesion_models"] != out["lesion_models"]


@pytest.mark.parametrize(("n_patients", "noted"), [(20, True), (49, True), (50, False), (76, False)])
def test_few_patients_note(base: Any, n_patients: int, noted: bool) -> None:
    _, les = _subset(base, n_patients)
    notes = ss.lesion_level(les, Settings())["lesion_models_info"]["notes"]
    few = [n for n in notes if "(< 50)" in n]
    if noted:
        assert few == [
            f"only {n_patients} patients (< 50): robust GEE standard errors may be too small; "
            "consider [lesion_models] small_sample = true (Mancl-DeRouen bias-reduced sandwich)"
        ]
    else:
        assert few == []


def test_few_patients_counts_patients_with_a_known_outcome(base: Any) -> None:
    """50 patients, one of them of unknown pattern: 49 patients in the models, so the note appears."""
    pat, les = _subset(base, 49)
    unknown_id = base.lesions.loc[base.lesions["local_failure"].isna(), "patient_id"].iloc[0]
    les = pd.concat([les, base.lesions[base.lesions["patient_id"] == unknown_id]], ignore_index=True)
    assert les["patient_id"].nunique() == 50
    info = ss.lesion_level(les, Settings())["lesion_models_info"]
    assert info["n_patients"] == 49 and any("only 49 patients" in n for n in info["notes"])


# ---------------------------------------------------------------------------------------------------------
# the results.json contract (issue 4)


def _separated(base: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every lesion >= 5 cm of a patient with a known pattern failed: quasi-complete separation."""
    les = base.lesions
    les.loc[les["local_failure"].notna() & (les["diameter_cm"] >= 5), "local_failure"] = 1
    return base.patients, les


def _no_events(base: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nobody progressed or died: nothing is estimable."""
    pat, les = base.patients, base.lesions
    for c in ("pfs_event", "os_event", "fp_status"):
        pat[c] = 0
    les["local_failure"] = les["local_failure"].fillna(0) * 0
    les["lf_status"] = 0
    return pat, les


def _all_unknown(base: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    les = base.lesions
    les["local_failure"] = pd.array([pd.NA] * len(les), dtype="Int64")
    return base.patients, les


SCENARIOS = {
    "study": lambda b: (b.patients, b.lesions),
    "separation": _separated,
    "no events": _no_events,
    "all outcomes unknown": _all_unknown,
    "three patients": lambda b: _subset(b, 3),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_lesion_model_rows_always_present_with_the_issue_keys(base: Any, scenario: str) -> None:
    pat, les = SCENARIOS[scenario](base)
    rows = _stats(pat, les)["lesion_models"]
    for r in rows:
        assert (
            tuple(r)
            == ROW_KEYS
            == ("model", "method", "term", "or", "ci_low", "ci_high", "p", "n_lesions", "n_patients")
        )
    terms = ("diameter_cm>=5", "suvmax>=10", "extranodal")
    for model in ("univariable", "multivariable"):
        for method in ("logistic", "gee"):
            assert tuple(r["term"] for r in rows if (r["model"], r["method"]) == (model, method)) == terms, (
                model,
                method,
            )


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_patient_model_rows_have_the_documented_keys(base: Any, scenario: str) -> None:
    pat, les = SCENARIOS[scenario](base)
    rows = _stats(pat, les)["patient_models"]
    assert [(r["endpoint"], r["term"]) for r in rows] == [
        ("pfs", "any diameter_cm>=5"),
        ("os", "any diameter_cm>=5"),
    ]
    for r in rows:
        has_null = any(r[k] is None for k in PATIENT_ROW_KEYS)
        assert set(r) == (PATIENT_ROW_KEYS | {"reason"} if has_null else PATIENT_ROW_KEYS), r


NUMBER_KEYS = {
    "or",
    "hr",
    "median_months",
    "survival",
    "incidence",
    "ci_low",
    "ci_high",
    "p",
    "logrank_p",
    "n_with",
    "cutpoint",
    "statistic",
    "p_lau92",
    "p_lau94",
    "n_low",
    "n_high",
    "chisq",
}


def _nulls_without_reason(obj: Any, path: str = "") -> list[str]:
    """Paths of dicts with a null estimate and no ``reason`` (lesion_models rows: the reason is in
    lesion_models_info.notes, checked separately)."""
    out: list[str] = []
    if isinstance(obj, dict):
        if any(obj.get(k, 0) is None for k in NUMBER_KEYS) and not obj.get("reason"):
            out.append(path)
        for k, v in obj.items():
            out += _nulls_without_reason(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _nulls_without_reason(v, f"{path}[{i}]")
    return out


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_null_where_not_estimable_with_a_reason(base: Any, scenario: str) -> None:
    pat, les = SCENARIOS[scenario](base)
    stats = _stats(pat, les)
    _assert_plain(stats)
    assert _nulls_without_reason({k: v for k, v in stats.items() if k != "lesion_models"}) == []
    notes = stats["lesion_models_info"]["notes"]
    for r in stats["lesion_models"]:
        if r["or"] is None:
            assert any(n.startswith(f"{r['model']} {r['method']}: ") for n in notes), (r, notes)


def test_no_events_gives_nulls_not_errors(base: Any) -> None:
    stats = _stats(*_no_events(base))
    assert all(r["or"] is None for r in stats["lesion_models"])
    assert (
        stats["survival"]["pfs"]["median_months"] is None
        and "not reached" in stats["survival"]["pfs"]["reason"]
    )
    assert all(r["hr"] is None and "no events" in r["reason"] for r in stats["patient_models"])
    cr = stats["competing_risks"]
    assert cr["patients"]["overall"]["causes"] == [] and "no failures" in cr["patients"]["overall"]["reason"]
    assert cr["lesions"]["overall"]["causes"] == [] and "no failures" in cr["lesions"]["overall"]["reason"]
    for c in stats["cutpoints"]:
        assert {c[k] for k in ("cutpoint", "statistic", "p_lau92", "p_lau94")} == {None} and c["reason"]


def test_separation_falls_back_to_firth_with_nulls_and_a_note(base: Any) -> None:
    stats = _stats(*_separated(base))
    rows = stats["lesion_models"]
    for model in ("univariable", "multivariable"):
        for method in ("logistic", "gee"):
            r = next(
                r for r in rows if (r["model"], r["method"], r["term"]) == (model, method, "diameter_cm>=5")
            )
            assert {r[k] for k in ("or", "ci_low", "ci_high", "p")} == {None}
        firth = [
            r
            for r in rows
            if r["model"] == model and r["method"] == "firth" and r["term"] == "diameter_cm>=5"
        ]
        assert len(firth) == 1 and firth[0]["or"] > 1 and firth[0]["ci_low"] > 1
    # designs without the diameter term are not separated: still estimated by maximum likelihood
    uni_suv = [r for r in rows if r["model"] == "univariable" and r["term"] == "suvmax>=10"]
    assert {r["method"] for r in uni_suv} == {"logistic", "gee"} and all(r["or"] is not None for r in uni_suv)
    info = stats["lesion_models_info"]
    assert "firth" in info["methods"] and "logistf" in info["methods"]["firth"]
    assert any(n.startswith("univariable logistic: ") and "separation" in n for n in info["notes"])
    assert any(n.startswith("univariable firth: ") and "automatic fallback" in n for n in info["notes"])


def test_firth_setting_adds_firth_rows(base: Any) -> None:
    rows = _stats(base.patients, base.lesions, _settings(firth=True))["lesion_models"]
    assert [r["term"] for r in rows if r["method"] == "firth"] == [
        "diameter_cm>=5",
        "suvmax>=10",
        "extranodal",
    ] * 2


def test_covariate_patient_term(base: Any) -> None:
    pat, les = base.patients, base.lesions
    stats = _stats(pat, les, _settings(patient=("age",)))
    rows = stats["patient_models"]
    assert [(r["endpoint"], r["term"]) for r in rows] == [("pfs", "age"), ("os", "age")]
    for r in rows:
        fit = cox_ph(pat[f"{r['endpoint']}_months"], pat[f"{r['endpoint']}_event"], pat[["age"]])
        hr = fit.hazard_ratios[0]
        assert (r["hr"], r["ci_low"], r["ci_high"], r["p"]) == (hr.estimate, hr.ci_low, hr.ci_high, hr.p)
        assert r["logrank_p"] is None and r["n_with"] is None and "not a yes/no term" in r["reason"]
    # a continuous first term has no groups: no patient by_group competing-risk block
    assert "by_group" not in stats["competing_risks"]["patients"]
    assert stats["patient_models_info"]["multivariable"] == []


def test_yes_no_patient_covariate(base: Any) -> None:
    pat = base.patients
    rows = _stats(pat, base.lesions, _settings(patient=("ldh_elevated",)))["patient_models"]
    assert [r["n_with"] for r in rows] == [int(pat["ldh_elevated"].sum())] * 2
    assert all(set(r) == PATIENT_ROW_KEYS and r["logrank_p"] is not None for r in rows)


def test_text_patient_covariate_is_a_clear_error(base: Any) -> None:
    with pytest.raises(SettingsError, match=r"'sex' holds text .*yes/no or numbers"):
        _stats(base.patients, base.lesions, _settings(patient=("sex",)))
    with pytest.raises(SettingsError, match="not a column of the patients table"):
        _stats(base.patients, base.lesions, _settings(patient=("weight",)))


def test_settings_risk_factors_change_the_terms(base: Any) -> None:
    settings = _settings(
        lesion=("diameter_cm>=7.5", "suvmax/sd", "bridging_rt"), patient=("any suvmax>=10", "age")
    )
    stats = _stats(base.patients, base.lesions, settings)
    terms = ("diameter_cm>=7.5", "suvmax (per SD)", "bridging_rt")
    for model in ("univariable", "multivariable"):
        for method in ("logistic", "gee"):
            got = tuple(
                r["term"] for r in stats["lesion_models"] if (r["model"], r["method"]) == (model, method)
            )
            assert got == terms
    assert [r["term"] for r in stats["patient_models"]] == ["any suvmax>=10", "age"] * 2
    assert [m["term"] for m in stats["patient_models_info"]["multivariable"]] == ["any suvmax>=10", "age"] * 2
    # the patient competing risks are by the first patient term; lesions by each grouped (not per-SD) factor
    grays = {c["gray"]["by"] for c in stats["competing_risks"]["patients"]["by_group"]["causes"]}
    assert grays == {"any suvmax>=10"}
    assert [b["term"] for b in stats["competing_risks"]["lesions"]["by_factor"]] == [
        "diameter_cm>=7.5",
        "bridging_rt",
    ]
    bulky = base.patients["max_suvmax"] >= 10
    assert [r["n_with"] for r in stats["patient_models"] if r["term"] == "any suvmax>=10"] == [
        bulky.sum()
    ] * 2


def test_single_lesion_factor_still_has_multivariable_rows(base: Any) -> None:
    out = ss.lesion_level(base.lesions, _settings(lesion=("diameter_cm>=5",)))
    rows = out["lesion_models"]
    uni = [r for r in rows if r["model"] == "univariable"]
    multi = [r for r in rows if r["model"] == "multivariable"]
    assert [r["method"] for r in uni] == [r["method"] for r in multi] == ["logistic", "gee"]
    assert [{**r, "model": "multivariable"} for r in uni] == multi
    assert (
        "one risk factor: the multivariable model is the univariable model"
        in out["lesion_models_info"]["notes"]
    )


def test_lesion_competing_risks_leave_out_blank_values(base: Any) -> None:
    les = base.lesions
    known = les["lf_status"].notna() & les["lf_months"].notna()
    les.loc[les.index[:50], "diameter_cm"] = np.nan
    by = ss.competing_risks(base.patients, les, Settings())["competing_risks"]["lesions"]["by_factor"]
    bulky = next(b for b in by if b["term"] == "diameter_cm>=5")
    assert bulky["n"] == known.sum() - 50
    curves = bulky["causes"][0]["curves"]
    assert sum(c["n"] for c in curves) == known.sum() - 50
    blank = les["diameter_cm"].isna() & known
    assert [c["n"] for c in curves] == [
        int(((les["diameter_cm"] < 5) & known).sum()),
        int(((les["diameter_cm"] >= 5) & known).sum()),
    ]
    assert blank.sum() == 50


def test_inputs_are_not_modified(base: Any) -> None:
    pat, les = base.patients, base.lesions
    pat0, les0 = pat.copy(), les.copy()
    _stats(pat, les, _settings(patient=("any diameter_cm>=5", "age")))
    pd.testing.assert_frame_equal(pat, pat0)
    pd.testing.assert_frame_equal(les, les0)
