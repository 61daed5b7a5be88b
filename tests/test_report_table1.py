"""Table 1 equals tableone's on the same data (tests/reference/table1: the script, tableone's output), with
labels and units from the declared covariates, missing counts, the test named per row and SMDs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pofa
from pofa.analysis import AnalysisOptions, run_analysis
from pofa.covariates import Covariate, CovariateType, Summary
from pofa.report.model import ReportInput, as_report_input
from pofa.report.tables.cohort import cohort_table

HERE = Path(__file__).parent / "reference"
STUDY = HERE / "pipeline" / "study"
REF = HERE / "table1"
BLANK_AGE = ("P003", "P010", "P040")
GROUPS = {
    "No progression": "none",
    "Strictly local": "strictly local",
    "Mixed": "mixed",
    "Strictly de novo": "strictly de novo",
    "Pattern unknown": "unknown",
    "F": "F",
    "M": "M",
}

COVARIATES = (
    Covariate("age", "patients", CovariateType.NUMBER, label="Age", unit="years", summary=Summary.MEAN_SD),
    Covariate("sex", "patients", CovariateType.CATEGORY, label="Sex", levels=("F", "M")),
    Covariate("ldh_elevated", "patients", CovariateType.YES_NO, label="LDH elevated"),
    Covariate("ecog", "patients", CovariateType.WHOLE_NUMBER, label="ECOG performance status"),
)


@pytest.fixture(scope="module")
def inp() -> ReportInput:
    study = pofa.load_study(STUDY)
    result = run_analysis(study, AnalysisOptions(settings=replace(study.settings, covariates=COVARIATES)))
    base = as_report_input(result)
    patients = base.patients
    patients.loc[patients["patient_id"].isin(BLANK_AGE), "age"] = np.nan
    return replace(base, patients=patients, patient_covariates=("age", "sex", "ldh_elevated", "ecog"))


def _compare(ours: pd.DataFrame, ref: pd.DataFrame) -> int:
    ref = ref.fillna("")
    ours = ours.fillna("")
    assert len(ours) == len(ref)
    groups = [c for c in ours.columns if c in GROUPS]
    smd_cols = [c for c in ref.columns if c.startswith("SMD")]
    checked = 0
    for (_, a), (_, b) in zip(ours.iterrows(), ref.iterrows(), strict=True):
        assert a["characteristic"] == b["level_0"] and str(a["level"]) == str(b["level_1"])
        assert a["Overall"] == str(b["Overall"]) and str(a["Missing"]) == str(b["Missing"])
        for g in groups:
            assert a[g] == str(b[GROUPS[g]]), (a["characteristic"], g)
        assert a["p"] == str(b["P-Value"]) and a["Test"] == str(b["Test"])
        smd = pd.to_numeric(b[smd_cols], errors="coerce").abs()
        assert a[[c for c in ours.columns if c.startswith("SMD")][0]] == (
            f"{smd.mean():.3f}" if smd.notna().any() else ""
        )
        checked += 1
    return checked


def test_table1_by_pattern_equals_tableone(inp: ReportInput) -> None:
    t = cohort_table(inp)
    ref = pd.read_csv(REF / "reference_patients.csv", keep_default_na=False, dtype=str)
    assert _compare(t.data.astype(str), ref) == 13
    assert t.header[:3] == ("Characteristic", "Overall", "No progression")
    chars = set(t.data["characteristic"])
    assert {"Age (years), mean (SD)", "Sex, n (%)", "LDH elevated, n (%)"} <= chars
    age = t.data.loc[t.data["characteristic"] == "Age (years), mean (SD)"].iloc[0]
    assert age["Missing"] == "3"  # the blanked ages are counted, not dropped silently
    assert age["Test"] == "One-way ANOVA"


def test_table1_by_a_chosen_column_equals_tableone(inp: ReportInput) -> None:
    t = cohort_table(inp, by="sex")
    ref = pd.read_csv(REF / "reference_patients_by_sex.csv", keep_default_na=False, dtype=str)
    # our table keeps sex among the rows only when it is not the grouping (as the reference)
    ours = t.data[t.data["characteristic"] != "Sex, n (%)"].reset_index(drop=True)
    assert _compare(ours.astype(str), ref) == len(ref)
    age = t.data.loc[t.data["characteristic"] == "Age (years), mean (SD)"].iloc[0]
    assert age["Test"] == "Welch\u2019s T-test"


def test_fisher_exact_for_a_small_two_by_two_table() -> None:
    """Two groups, a yes/no covariate, an expected count under 5: Fisher's exact test, with scipy's p."""
    from pofa.report.tables.cohort import Variable, summary_table

    frame = pd.DataFrame(
        {"x": ["yes"] * 1 + ["no"] * 11 + ["yes"] * 6 + ["no"] * 6, "_group": ["a"] * 12 + ["b"] * 12}
    )
    t = summary_table(frame, [Variable("x", "X", "category", ("no", "yes"))], "_group", ["a", "b"])
    row = t.tableone.droplevel(0, axis=1).loc[("X, n (%)", "no")]
    assert row["Test"] == "Fisher's exact"
    p = stats.fisher_exact([[11, 6], [1, 6]])[1]  # expected count of yes: 3.5
    assert row["P-Value"] == f"{p:.3f}"


def test_identifiers_and_dates_are_not_summarised(inp: ReportInput) -> None:
    p = inp.patients.assign(
        full_name=[f"Name {i}" for i in range(len(inp.patients))], birth=pd.Timestamp("1960-01-01")
    )
    t = cohort_table(
        replace(inp, patients=p, patient_covariates=(*inp.patient_covariates, "full_name", "birth"))
    )
    assert "full_name (80 distinct values" in t.note and "birth (a date)" in t.note
    assert not any("Name 1" in str(v) for v in t.data.to_numpy().ravel())


@pytest.mark.slow
def test_bundled_demo_sets_the_paper_beside_its_own_and_reconciles_counts() -> None:
    from pofa.data import bundled_study
    from pofa.report.tables import build_tables

    result = run_analysis(pofa.load_study(bundled_study("demo")))
    inp = as_report_input(result)
    assert inp.simulated and inp.paper_demo
    tables = {t.name: t for t in build_tables(inp)}
    paper = tables["paper_comparison"].data
    assert list(paper["paper"][:3]) == ["36/63 (57%)", "31/36 (86%)", "13/36 (36%)"]
    assert list(paper["demo"][:3]) == [
        result.patterns.recurred,
        result.patterns.local_component,
        result.patterns.strictly_local,
    ]
    assert [float(x) for x in paper["paper"][4:]] == [2.34, 2.08, 1.49, 2.41, 3.36]
    # 123 lesions failed locally at first progression; the competing-risk table counts 127 local-failure
    # events (any time): its note says how many came later, and the numbers add up
    doc = result.to_json()
    events = doc["competing_risks"]["lesions"]["overall"]["causes"][0]["curves"][0]["events"]
    at_first = doc["patterns"]["local_failure_lesions"]
    later = result.statistics.competing_risks.lesions_later_local_failures
    assert events == at_first + later and later > 0
    assert f"{later} lesion(s) failed locally only after first progression" in tables["competing_risks"].note
    assert result.statistics.lesion_models.n_events == at_first
    # the exploratory caveat of the cut-points is written once
    cut = tables["cutpoints"]
    assert cut.note.count("EXPLORATORY") == 1 and "exploratory" not in " ".join(
        str(c) for c in cut.data.get("reason", [])
    )
