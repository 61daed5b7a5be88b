"""Response tables in a study: validation with located findings, results.json entries, lesion-level times."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import pofa
from pofa.analysis import run_analysis
from pofa.response import LesionMeasurement as L
from pofa.response import Scan
from pofa.response.study import lesion_failure_times
from pofa.response.validate import parse_deauville
from pofa.stats.cox_cluster import cox_ph_clustered
from pofa.stats.survival import days_to_months
from response_data import write_response_study


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_response_study(tmp_path_factory.mktemp("resp") / "study")


def _codes(folder: Path) -> list[tuple[str, str, int | None, str | None]]:
    rep = pofa.load_study(folder).validate()
    return [(f.code, Path(f.file).name, f.row, f.column) for f in rep.findings if f.code != "implausible"]


def test_synthetic_study_is_valid_and_has_the_tables(study_dir: Path) -> None:
    study = pofa.load_study(study_dir)
    assert study.validate().errors == ()
    m = study.measurements
    assert m is not None and len(m) > 50
    assert study.scans is not None


def test_results_json_entries(study_dir: Path) -> None:
    study = pofa.load_study(study_dir)
    res = run_analysis(study).to_json()
    m = study.measurements
    assert m is not None
    n_follow_up = int(m.groupby("patient_id")["scan_date"].nunique().sum()) - m["patient_id"].nunique()
    assert len(res["responses"]) == n_follow_up
    first = res["responses"][0]
    assert set(first) >= {"patient", "day", "lugano_ct", "lugano_pet", "lyric", "recil"}
    assert isinstance(first["patient"], int) and first["day"] > 0
    assert {e["lugano_ct"] for e in res["responses"]} <= {"CR", "PR", "SD", "PD", "NE"}
    assert {e["recil"] for e in res["responses"]} <= {"CR", "PR", "MR", "SD", "PD", "NE"}
    assert [c["term"] for c in res["lesion_cox"]] == ["diameter_cm", "suvmax", "extranodal"]
    for c in res["lesion_cox"]:
        assert c["ci_low"] < c["hr"] < c["ci_high"] and 0 <= c["p"] <= 1
    text = json.dumps(res)
    assert "R001" not in text  # patients appear as sequence numbers


def test_lesion_cox_is_the_clustered_fit_of_the_lesion_times(study_dir: Path) -> None:
    study = pofa.load_study(study_dir)
    res = run_analysis(study).to_json()
    from pofa.response.study import patient_scans

    by = patient_scans(study.measurements, study.scans, study.patients, study.lesions)  # type: ignore[arg-type]
    t = lesion_failure_times(by, study.patients)
    les = study.lesions.astype({"patient_id": str, "lesion_id": str})
    d = t.merge(les, on=["patient_id", "lesion_id"])
    months = days_to_months(d["days"].to_numpy(float))
    fit = cox_ph_clustered(months, (d["cause"] == 1).astype(int).to_numpy(),  # type: ignore[arg-type]
                           d[["diameter_cm", "suvmax", "extranodal"]].astype(float), d["patient_id"])
    assert [c["hr"] for c in res["lesion_cox"]] == pytest.approx([h.estimate for h in fit.hazard_ratios],
                                                                  rel=1e-12)
    assert res["lesion_failure"]["n_local_failures"] == int((t["cause"] == 1).sum())


def test_lesion_rule_setting(study_dir: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "s"
    shutil.copytree(study_dir, folder)
    (folder / "study.toml").write_text('[response]\nlesion_rule = "ppd50"\n', encoding="utf-8")
    res = run_analysis(pofa.load_study(folder)).to_json()
    assert res["lesion_failure"]["rule"] == "ppd50"
    (folder / "study.toml").write_text('[response]\nlesion_rule = "recist"\n', encoding="utf-8")
    assert any(f.code == "bad-setting" for f in pofa.load_study(folder).validate().findings)


def test_no_measurements_table_no_entries(tmp_path: Path, study_dir: Path) -> None:
    import shutil

    folder = tmp_path / "s"
    shutil.copytree(study_dir, folder)
    (folder / "measurements.csv").unlink()
    (folder / "scans.csv").unlink()
    res = run_analysis(pofa.load_study(folder)).to_json()
    assert "responses" not in res and "lesion_cox" not in res


def test_lesion_failure_times_event_censoring_and_death() -> None:
    """First scan meeting Lugano's single-lesion rule is the event; else censored at the last scan; a death
    without local failure is the competing event."""
    scans = {
        "A": [Scan(-2, (L("1", 30, 20), L("2", 20, 15))),
              Scan(30, (L("1", 15, 10), L("2", 18, 12))),
              Scan(90, (L("1", 25, 16), L("2", 16, 10))),  # lesion 1: 150 -> 400 (+167%), LDi +10 mm
              Scan(180, (L("1", 40, 30), L("2", 15, 10)))],
        "B": [Scan(0, (L("1", 30, 20),)), Scan(30, (L("1", 20, 10),))],
    }
    patients = pd.DataFrame({"patient_id": ["A", "B"],
                             "index_date": pd.to_datetime(["2022-01-01", "2022-01-01"]),
                             "death_date": pd.to_datetime([None, "2022-03-02"])})
    t = lesion_failure_times(scans, patients).set_index(["patient_id", "lesion_id"])
    assert t.loc[("A", "1")].tolist() == [90.0, 1]
    assert t.loc[("A", "2")].tolist() == [180.0, 0]
    assert t.loc[("B", "1")].tolist() == [60.0, 2]


def test_parse_deauville() -> None:
    assert parse_deauville("X") is None and parse_deauville(None) is None
    assert parse_deauville(math.nan) is None
    assert parse_deauville(" 4 ") == 4 and parse_deauville(5.0) == 5
    with pytest.raises(ValueError):
        parse_deauville("6")


# --- validation --------------------------------------------------------------------------------------------

def _edit(folder: Path, name: str, fn: object) -> None:
    p = folder / f"{name}.csv"
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df = fn(df)  # type: ignore[operator]
    df.to_csv(p, index=False)


@pytest.fixture()
def copy(study_dir: Path, tmp_path: Path) -> Path:
    import shutil

    folder = tmp_path / "s"
    shutil.copytree(study_dir, folder)
    return folder


def test_bad_cells_are_located(copy: Path) -> None:
    def f(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[0, "deauville"] = "7"
        df.loc[1, "sdi_mm"] = str(float(df.loc[1, "ldi_mm"]) + 1)
        df.loc[2, "lesion_id"] = "L99"
        return df
    _edit(copy, "measurements", f)
    codes = _codes(copy)
    assert ("bad-deauville", "measurements.csv", 2, "deauville") in codes
    assert ("bad-diameters", "measurements.csv", 3, "sdi_mm") in codes
    assert ("unknown-lesion", "measurements.csv", 4, "lesion_id") in codes


def test_baseline_rules(copy: Path) -> None:
    m = pd.read_csv(copy / "measurements.csv", dtype=str)
    p = pd.read_csv(copy / "patients.csv", dtype=str)
    first = p.loc[0, "patient_id"]

    def later_index(df: pd.DataFrame) -> pd.DataFrame:  # the baseline scan now falls after the index date
        df.loc[0, "index_date"] = "2021-01-01"
        return df
    _edit(copy, "patients", later_index)
    rows = m.index[m["patient_id"] == first]
    codes = _codes(copy)
    assert ("no-baseline-scan", "measurements.csv", int(rows[0]) + 2, "scan_date") in codes


def test_targets_and_followup_lesions(copy: Path) -> None:
    m = pd.read_csv(copy / "measurements.csv", dtype=str, keep_default_na=False)
    pid = m.loc[0, "patient_id"]
    base = m.loc[0, "scan_date"]
    extra = []
    for k in range(7):
        extra.append({**m.loc[0].to_dict(), "lesion_id": f"X{k}", "target": "yes"})
    les = pd.read_csv(copy / "lesions.csv", dtype=str, keep_default_na=False)
    more = [{**les.loc[0].to_dict(), "lesion_id": f"X{k}"} for k in range(7)]
    pd.concat([les, pd.DataFrame(more)]).to_csv(copy / "lesions.csv", index=False)
    later = m[(m["patient_id"] == pid) & (m["scan_date"] != base)].iloc[0].to_dict()
    extra.append({**later, "lesion_id": "X9"})
    more.append({**les.loc[0].to_dict(), "lesion_id": "X9"})
    pd.concat([les, pd.DataFrame(more)]).to_csv(copy / "lesions.csv", index=False)
    pd.concat([m, pd.DataFrame(extra)]).to_csv(copy / "measurements.csv", index=False)
    codes = {c[0] for c in _codes(copy)}
    assert {"target-lesions", "not-at-baseline"} <= codes


def test_scans_rows_must_match_measured_scans(copy: Path) -> None:
    def f(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[0, "scan_date"] = "2030-01-01"
        return df
    _edit(copy, "scans", f)
    assert ("unknown-scan", "scans.csv", 2, "scan_date") in _codes(copy)
