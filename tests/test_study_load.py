"""Reading a study: typed columns, ids as text, row numbers, formats, settings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import pofa
from pofa.io.readers import StudyFormat
from pofa.schema import TableName


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def test_example_is_valid(example_study: Path) -> None:
    study = pofa.load_study(example_study)
    report = study.validate()
    assert report.findings == ()
    assert report.exit_code() == 0
    assert study.format is StudyFormat.CSV
    assert study.name == "example"


def test_types_and_row_index(example_study: Path) -> None:
    study = pofa.load_study(example_study)
    p = study.patients
    assert str(p["index_date"].dtype).startswith("datetime64")
    assert p.index[0] == 2  # header is row 1
    assert "007" in set(p["patient_id"])  # leading zeros kept
    assert p["age"].dtype == "Int64"  # covariates keep their type
    les = study.lesions
    assert les["extranodal"].dtype == "boolean"
    assert les["diameter_cm"].dtype == "float64"
    assert study.covariates(TableName.PATIENTS) == ("age", "sex")


def test_accessors_return_copies(example_study: Path) -> None:
    study = pofa.load_study(example_study)
    p = study.patients
    p.loc[:, "patient_id"] = "changed"
    assert "changed" not in set(study.patients["patient_id"])


def test_ids_that_look_like_numbers_stay_apart(tmp_path: Path) -> None:
    write(tmp_path, "patients.csv",
          "patient_id,index_date,last_followup_date,progression_date,death_date\n"
          "1.1,2020-01-01,2020-06-01,,\n1.10,2020-01-01,2020-06-01,,\n")
    write(tmp_path, "lesions.csv",
          "patient_id,lesion_id,site,extranodal,diameter_cm,suvmax\n"
          "1.1,1,liver,Yes,2,5\n1.10,01,node,N,3,6\n")
    study = pofa.load_study(tmp_path)
    assert study.validate().findings == ()
    assert list(study.patients["patient_id"]) == ["1.1", "1.10"]
    assert list(study.lesions["lesion_id"]) == ["1", "01"]
    assert list(study.lesions["extranodal"]) == [True, False]


def test_missing_study_folder(tmp_path: Path) -> None:
    report = pofa.load_study(tmp_path / "nope").validate()
    assert [f.code for f in report.errors] == ["not-a-study"]
    assert report.exit_code() == 2


def test_no_failures_table_means_empty(example_study: Path) -> None:
    (example_study / "failures.csv").unlink()
    study = pofa.load_study(example_study)
    assert study.validate().ok
    assert not study.has_failures_table
    assert study.failures.empty
    assert "baseline_lesion_id" in study.failures.columns


@pytest.mark.parametrize("fmt", ["excel", "parquet"])
def test_other_formats_read_the_same(example_study: Path, tmp_path: Path, fmt: str) -> None:
    csv = pofa.load_study(example_study)
    out = tmp_path / fmt
    out.mkdir()
    tables = {t: pd.read_csv(example_study / f"{t}.csv", dtype=str, keep_default_na=False)
              for t in ("patients", "lesions", "failures")}
    if fmt == "excel":
        with pd.ExcelWriter(out / "study.xlsx") as xw:
            for t, df in tables.items():
                df.to_excel(xw, sheet_name=t, index=False)
    else:
        for t, df in tables.items():
            df.to_parquet(out / f"{t}.parquet", index=False)
    other = pofa.load_study(out)
    assert other.validate().findings == ()
    for attr in ("patients", "lesions", "failures"):
        pd.testing.assert_frame_equal(getattr(other, attr), getattr(csv, attr), check_dtype=True)


def test_settings_defaults_and_unknown_key(example_study: Path) -> None:
    study = pofa.load_study(example_study)
    assert study.settings.classification.window_days == 30
    (example_study / "study.toml").write_text("[classification]\nwindow_dayz = 10\n")
    report = pofa.load_study(example_study).validate()
    (f,) = report.errors
    assert f.code == "bad-setting" and f.file == "study.toml" and "window_days" in f.hint


def test_settings_bad_type(example_study: Path) -> None:
    (example_study / "study.toml").write_text("[survival]\nci_method = 'logit'\n[classification]\n"
                                              "window_days = 'thirty'\n")
    codes = sorted(f.column for f in pofa.load_study(example_study).validate().errors)
    assert codes == ["ci_method", "window_days"]
