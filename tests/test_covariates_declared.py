"""Declared covariates and [columns] in study.toml: parsing with located problems, typed columns, renamed
headers, and the undeclared columns that are mostly one type."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pandas as pd
import pytest

import pofa
from pofa.covariates import Covariate, CovariateType, Summary, parse_declarations
from pofa.data import bundled_study
from pofa.settings import parse_settings

EXAMPLE = bundled_study("example")


def problems(text: str) -> list[tuple[str, int | None]]:
    data = tomllib.loads(text)
    _, _, found = parse_declarations(data.get("covariates"), data.get("columns"), text)
    return [(p.key, p.line) for p in found]


def test_a_full_declaration() -> None:
    text = ('[covariates.age]\ntype = "number"\nlabel = "Age"\nunit = "years"\nstep = 10\nsummary = "mean"\n'
            '[covariates."ECOG PS"]\ntype = "category"\nlevels = ["0", "1", "2-4"]\ntable = "patients"\n'
            '[covariates.bulky]\ntype = "yes/no"\ntable = "lesions"\n'
            '[columns]\n"SUV max" = "suvmax"\n"Age at infusion" = "age"\n')
    settings, findings = parse_settings(tomllib.loads(text), text)
    assert findings == []
    assert settings.covariates == (
        Covariate("age", "patients", CovariateType.NUMBER, "Age", "years", (), 10.0, Summary.MEAN_SD),
        Covariate("ecog_ps", "patients", CovariateType.CATEGORY, "", "", ("0", "1", "2-4")),
        Covariate("bulky", "lesions", CovariateType.YES_NO),
    )
    assert settings.columns == (("suv_max", "suvmax"), ("age_at_infusion", "age"))
    assert settings.covariates[0].display_label() == "Age (years)"


@pytest.mark.parametrize(("text", "want"), [
    ('[covariates.age]\ntype = "nmber"\n', [("covariates.age.type", 2)]),
    ('[covariates.age]\nlabel = "Age"\n', [("covariates.age.type", 1)]),
    ('[covariates.age]\ntype = "number"\nunits = "y"\n', [("covariates.age.units", 3)]),
    ('[covariates.ecog]\ntype = "category"\n', [("covariates.ecog.levels", 1)]),
    ('[covariates.ecog]\ntype = "category"\nlevels = ["0", "0"]\n', [("covariates.ecog.levels", 3)]),
    ('[covariates.ecog]\ntype = "category"\nlevels = ["0"]\nstep = 2\n', [("covariates.ecog.step", 4)]),
    ('[covariates.age]\ntype = "number"\nstep = -1\n', [("covariates.age.step", 3)]),
    ('[covariates.age]\ntype = "number"\nlevels = ["a"]\n', [("covariates.age.levels", 3)]),
    ('[covariates.age]\ntype = "number"\ntable = "failures"\n', [("covariates.age.table", 3)]),
    ('[covariates.age]\ntype = "number"\nsummary = "mode"\n', [("covariates.age.summary", 3)]),
    ('[covariates.suvmax]\ntype = "number"\n', [("covariates.suvmax", 1)]),
    ('[covariates]\nage = 3\n', [("covariates.age", None)]),
    ('[covariates.""]\ntype = "number"\n', [("covariates.", 1)]),
    ('[columns]\n"SUV max" = 3\n', [("columns", 2)]),
    ('[columns]\n"SUV max" = "suvmax"\n"SUVmax" = "suvmax"\n', [("columns", 3)]),
])
def test_bad_declarations_are_located(text: str, want: list[tuple[str, int | None]]) -> None:
    assert problems(text) == want


def test_bad_declaration_is_a_bad_setting_at_its_line() -> None:
    text = '[study]\nname = "x"\n\n[covariates.age]\ntype = "nmber"\n'
    _, findings = parse_settings(tomllib.loads(text), text)
    (f,) = findings
    assert (f.code, f.file, f.row, f.column) == ("bad-setting", "study.toml", 5, "covariates.age.type")
    assert 'did you mean "number"?' in f.hint


def study(tmp_path: Path, toml: str = "", patients: dict[str, list[str]] | None = None) -> Path:
    folder = tmp_path / "s"
    shutil.copytree(EXAMPLE, folder)
    (folder / "study.toml").write_text(toml, encoding="utf-8")
    if patients:
        df = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
        for k, v in patients.items():
            df[k] = v
        df.to_csv(folder / "patients.csv", index=False)
    return folder


def test_declared_types_give_typed_columns(tmp_path: Path) -> None:
    toml = ('[covariates.age]\ntype = "whole number"\n[covariates.weight]\ntype = "number"\n'
            '[covariates.bulky]\ntype = "yes/no"\n[covariates.diagnosed]\ntype = "date"\n'
            '[covariates.ecog]\ntype = "category"\nlevels = ["0", "1", "2"]\n'
            '[covariates.sex]\ntype = "category"\nlevels = ["F", "M"]\n')
    folder = study(tmp_path, toml, {"weight": ["70.5", "", "82", "64.25", "90"],
                                    "bulky": ["Yes", "n", "TRUE", "0", ""],
                                    "diagnosed": ["2017-01-02", "", "2017-05-06", "2017-07-08", "2018-01-01"],
                                    "ecog": ["0", "1", "2", "1", ""]})
    s = pofa.load_study(folder)
    assert s.validate().findings == ()
    p = s.patients
    assert str(p["age"].dtype) == "Int64" and p["age"].tolist() == [61, 72, 55, 48, 66]
    assert p["weight"].dtype == "float64" and p["weight"].iloc[3] == 64.25 and pd.isna(p["weight"].iloc[1])
    assert p["bulky"].tolist()[:4] == [True, False, True, False] and pd.isna(p["bulky"].iloc[4])
    assert str(p["diagnosed"].dtype).startswith("datetime64")
    assert list(p["ecog"].cat.categories) == ["0", "1", "2"]
    assert p["ecog"].tolist()[:4] == ["0", "1", "2", "1"]
    assert p["sex"].tolist() == ["F", "M", "M", "F", "M"]


def test_declared_cells_that_do_not_conform_are_errors(tmp_path: Path) -> None:
    toml = ('[covariates.age]\ntype = "whole number"\n[covariates.bulky]\ntype = "yes/no"\n'
            '[covariates.diagnosed]\ntype = "date"\n[covariates.ecog]\ntype = "category"\n'
            'levels = ["0", "1"]\n[covariates.gone]\ntype = "number"\n')
    folder = study(tmp_path, toml, {"age": ["61", "72.5", "unknown", "48", "66"],
                                    "bulky": ["yes", "maybe", "", "", ""],
                                    "diagnosed": ["2017-01-02", "01/02/2017", "", "", ""],
                                    "ecog": ["0", "1", "ECOG 1", "", ""]})
    got = {(f.code, f.row, f.column) for f in pofa.load_study(folder).validate().findings}
    assert got == {("bad-number", 3, "age"), ("bad-number", 4, "age"), ("bad-boolean", 3, "bulky"),
                   ("bad-date", 3, "diagnosed"), ("bad-category", 4, "ecog"), ("missing-column", 1, "gone"),
                   ("unknown-column", 1, None)}


def test_columns_mapping_reads_the_same_study(tmp_path: Path) -> None:
    folder = study(tmp_path, '[columns]\n"SUV max" = "suvmax"\n"Diameter (cm)" = "diameter_cm"\n'
                             '"Lesion ID" = "lesion_id"\n"Age at infusion" = "age"\n')
    for table, names in (("lesions", {"suvmax": "SUV max", "diameter_cm": "Diameter (cm)",
                                      "lesion_id": "Lesion ID"}), ("patients", {"age": "Age at infusion"})):
        df = pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False).rename(columns=names)
        df.to_csv(folder / f"{table}.csv", index=False)
    before = (folder / "lesions.csv").read_bytes()
    mapped = pofa.load_study(folder)
    assert mapped.validate().findings == ()
    ref = pofa.load_study(EXAMPLE)
    pd.testing.assert_frame_equal(mapped.lesions, ref.lesions)
    pd.testing.assert_frame_equal(mapped.patients, ref.patients)
    assert (folder / "lesions.csv").read_bytes() == before


def test_mapping_onto_a_present_column_is_a_duplicate(tmp_path: Path) -> None:
    folder = study(tmp_path, '[columns]\n"site" = "suvmax"\n')
    got = {(f.code, f.file, f.row, f.column) for f in pofa.load_study(folder).validate().findings}
    assert ("duplicate-column", "lesions.csv", 1, "suvmax") in got


def test_decimal_comma_setting_reads_numbers(tmp_path: Path) -> None:
    folder = study(tmp_path, '[study]\ndecimal = ","\n[covariates.weight]\ntype = "number"\n',
                   {"weight": ["70,5", "82", "", "64.25", "90,0"]})
    text = (folder / "lesions.csv").read_text(encoding="utf-8")
    (folder / "lesions.csv").write_text(text.replace(",", ";").replace(".", ","), encoding="utf-8")
    s = pofa.load_study(folder)
    # Only the listing of the undeclared columns (age, sex), as once any covariate is declared.
    assert [f.code for f in s.validate().findings] == ["unknown-column"]
    assert s.patients["weight"].tolist()[:2] == [70.5, 82.0]
    pd.testing.assert_series_equal(s.lesions["suvmax"], pofa.load_study(EXAMPLE).lesions["suvmax"])
    bad = study(tmp_path / "b", '[study]\ndecimal = ";"\n')
    (f,) = pofa.load_study(bad).validate().findings
    assert (f.code, f.column) == ("bad-setting", "decimal")


def test_undeclared_columns_mostly_of_one_type(tmp_path: Path) -> None:
    folder = study(tmp_path, "", {"dob": ["1950-01-01", "1960-02-02", "unknown", "1970-03-03", "1980-04-04"],
                                  "prior_asct": ["yes", "no", "no", "yes", "maybe"],
                                  "sex": ["F", "F", "F", "F", "M"],
                                  "stage": ["I", "II", "III", "IV", "II"]})
    s = pofa.load_study(folder)
    got = {(f.code, f.severity.value, f.row, f.column) for f in s.validate().findings}
    # a birth-date column is also withheld from the outputs (identifying-column, pofa.privacy)
    assert got == {("odd-cell", "warning", 4, "dob"), ("odd-cell", "warning", 6, "prior_asct"),
                   ("identifying-column", "warning", None, "dob")}
    p = s.patients
    assert str(p["dob"].dtype).startswith("datetime64") and pd.isna(p["dob"].iloc[2])
    assert p["prior_asct"].dtype == "boolean" and pd.isna(p["prior_asct"].iloc[4])
    assert p["sex"].tolist() == ["F", "F", "F", "F", "M"]  # F/M are not yes/no


def test_decimal_commas_in_covariates_join_the_one_finding_of_the_file(tmp_path: Path) -> None:
    folder = study(tmp_path, "", {"weight": ["70,5", "82", "", "64,25", "90"],
                                  "height": ["1,70", "1,82", "1,64", "1,75", "1,80"]})
    findings = pofa.load_study(folder).validate().findings
    assert [(f.code, f.file, f.row, f.column) for f in findings] == [
        ("decimal-comma", "patients.csv", 2, "height")]
    assert "'1,70' (and 6 more cell(s) in 2 column(s))" in findings[0].message
