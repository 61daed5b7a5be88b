"""The command functions `pofa model fit` and `pofa predict` (pofa.cli.model) on a simulated study.

The lead registers the functions in pofa.cli; here they are registered on a local typer app the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from pofa import load_study
from pofa.cli.model import model_fit_command, output_paths, predict_command
from pofa.riskmodel import load_model
from pofa.simulate import preset, simulate, write_study

ENV = {"COLUMNS": "300", "NO_COLOR": "1"}


def _app() -> typer.Typer:
    app = typer.Typer()
    model = typer.Typer()
    model.command("fit")(model_fit_command)
    app.add_typer(model, name="model")
    app.command("predict")(predict_command)
    return app


APP = _app()


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(APP, [str(a) for a in args], env=ENV)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sim = simulate(preset("figura2021"), seed=77)
    return write_study(sim, tmp_path_factory.mktemp("sim") / "study")


@pytest.fixture(scope="module")
def model_file(study: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "model.json"
    code, text = run("model", "fit", study, "--out", out, "--folds", "4", "--seed", "3")
    assert code == 0, text
    return out


NEW = (
    "patient_id,lesion_id,site,extranodal,diameter_cm,suvmax\n"
    "NEW-7,L1,mediastinum,no,7.2,14.1\nNEW-7,L2,liver,yes,2.1,8.0\nNEW-7,L3,axilla,no,3.0,11.5\n"
)


def test_model_fit_writes_model_plot_and_cv(study: Path, model_file: Path) -> None:
    paths = output_paths(model_file)
    assert paths["calibration_plot"].name == "model.calibration.png"
    assert paths["calibration_plot"].read_bytes().startswith(b"\x89PNG")
    m = load_model(model_file)
    assert m.terms == ("diameter_cm>=5", "suvmax>=10", "extranodal")  # the study's [risk_factors] default
    assert m.validation is not None and (m.validation.folds, m.validation.seed) == (4, 3)
    assert m.training.data == load_study(study).name == "simulated-custom-seed77"
    assert set(dict(m.training.input_sha256)) >= {"lesions.csv", "patients.csv"}
    cv = pd.read_csv(paths["cross_validation"], dtype={"lesion_id": str})
    # study sequence numbers, not ids (docs/security.md): the numbers of pofa analyze's outputs
    assert list(cv.columns) == ["patient_seq", "lesion_id", "fold", "outcome", "oof_probability"]
    n_patients = len(load_study(study).patients)
    assert cv["patient_seq"].between(1, n_patients).all()
    assert (cv.groupby("patient_seq")["fold"].nunique() == 1).all()
    assert len(cv) == m.training.n_lesions and cv["oof_probability"].notna().all()
    # bridging-radiotherapy lesions were left out and the note says so
    lesions = pd.read_csv(study / "lesions.csv")
    n_rt = int(lesions["bridging_rt"].astype(str).str.lower().isin(["true", "yes"]).sum())
    if n_rt:
        assert any("bridging radiotherapy" in n for n in m.training.notes)


def test_model_fit_options_and_refusals(study: Path, model_file: Path, tmp_path: Path) -> None:
    code, text = run("model", "fit", study, "--out", model_file)
    assert code == 2 and "already exist" in text and "--force" in text
    code, text = run("model", "fit", study, "--out", tmp_path / "m.json", "--method", "glm")
    assert code == 2 and "'glm' is not known" in text
    code, text = run(
        "model",
        "fit",
        study,
        "--out",
        tmp_path / "m.json",
        "--method",
        "firth",
        "-f",
        "diameter_cm>=5",
        "-f",
        "suvmax/sd",
        "--folds",
        "3",
    )
    assert code == 0, text
    m = load_model(tmp_path / "m.json")
    assert m.kind.value == "firth" and m.terms == ("diameter_cm>=5", "suvmax (per SD)")
    assert m.features[1].sd is not None
    code, text = run("model", "fit", study, "--out", tmp_path / "n.json", "-f", "necrosis")
    assert code == 2 and "no column 'necrosis'" in text and "Traceback" not in text
    assert not (tmp_path / "n.json").exists()


def test_model_fit_refuses_invalid_study(study: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in study.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    text = (bad / "lesions.csv").read_text().splitlines()
    cells = text[1].split(",")
    cells[text[0].split(",").index("suvmax")] = "high"
    (bad / "lesions.csv").write_text("\n".join([text[0], ",".join(cells), *text[2:]]) + "\n")
    code, out = run("model", "fit", bad, "--out", tmp_path / "m.json")
    assert code == 2 and "'high' is not a number" in out and not (tmp_path / "m.json").exists()


def test_predict_with_fitted_model(model_file: Path, tmp_path: Path) -> None:
    (tmp_path / "new.csv").write_text(NEW)
    out = tmp_path / "scores.csv"
    code, text = run("predict", model_file, tmp_path / "new.csv", "--out", out)
    assert code == 0, text
    assert "ranked within each patient" in text and "limitation:" in text
    s = pd.read_csv(out, dtype={"patient_id": str, "lesion_id": str})
    assert list(s["rank_in_patient"]) == [1, 2, 3] and s["lesion_id"].iloc[0] == "L1"  # bulky and SUV-avid
    assert s["probability"].between(0, 1).all() and (s["ci_low"] < s["ci_high"]).all()
    assert {"risk_factors", "diameter_cm", "term: suvmax>=10", "site"} <= set(s.columns)
    manifest = json.loads((tmp_path / "scores.manifest.json").read_text())
    assert manifest["model"]["source"] == "file" and len(manifest["model"]["sha256"]) == 64
    assert manifest["counts"] == {"lesions": 3, "scored": 3, "patients": 1}
    assert manifest["model"]["limitations"]
    code, text = run("predict", model_file, tmp_path / "new.csv", "--out", out)
    assert code == 2 and "--force" in text
    code, text = run(
        "predict", model_file, tmp_path / "new.csv", "--out", tmp_path / "x.csv", "--baseline-risk", "0.2"
    )
    assert code == 2 and "published model only" in text


def test_predict_published(tmp_path: Path) -> None:
    (tmp_path / "new.csv").write_text(NEW)
    code, text = run("predict", "published", tmp_path / "new.csv", "--out", tmp_path / "a.csv")
    assert code == 0, text
    assert "PUBLISHED model" in text and "univariable" in text and "no intercept" in text
    a = pd.read_csv(tmp_path / "a.csv")
    assert a["probability"].isna().all() and list(a["rank_in_patient"]) == [1, 2, 3]
    assert a["odds_ratio_vs_reference"].iloc[0] == pytest.approx(2.34 * 2.08)
    code, text = run(
        "predict",
        "published",
        tmp_path / "new.csv",
        "--out",
        tmp_path / "b.csv",
        "--baseline-risk",
        "0.2",
        "--baseline-risk-range",
        "0.1,0.3",
    )
    assert code == 0, text
    b = pd.read_csv(tmp_path / "b.csv")
    assert b["probability"].notna().all() and (b["ci_low"] < b["probability"]).all()
    manifest = json.loads((tmp_path / "b.manifest.json").read_text())
    assert (
        manifest["model"]["source"] == "built-in published model"
        and manifest["model"]["baseline_risk"] == 0.2
    )
    code, text = run(
        "predict", "published", tmp_path / "new.csv", "--out", tmp_path / "c.csv", "--baseline-risk", "20"
    )
    assert code == 2 and "strictly between 0 and 1" in text


def test_predict_reports_bad_lesions_and_writes_nothing(model_file: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("patient_id,lesion_id,extranodal,diameter_cm\nX,L1,maybe,7.2\n")
    code, text = run("predict", model_file, tmp_path / "bad.csv", "--out", tmp_path / "s.csv")
    assert code == 2
    assert "the model needs the column 'suvmax' for its feature 'suvmax>=10'" in text
    assert "'maybe' is not a yes/no" in text and "Nothing was written" in text
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "s.manifest.json").exists()


def test_predict_bad_model_and_study_folder(model_file: Path, study: Path, tmp_path: Path) -> None:
    (tmp_path / "new.csv").write_text(NEW)
    code, text = run("predict", tmp_path / "absent.json", tmp_path / "new.csv", "--out", tmp_path / "s.csv")
    assert code == 2 and "cannot read the model file" in text
    code, text = run("predict", tmp_path / "new.csv", tmp_path / "new.csv", "--out", tmp_path / "s.csv")
    assert code == 2 and "not a model file" in text
    doc = json.loads(model_file.read_text())
    doc["format_version"] = 99
    (tmp_path / "future.json").write_text(json.dumps(doc))
    code, text = run("predict", tmp_path / "future.json", tmp_path / "new.csv", "--out", tmp_path / "s.csv")
    assert code == 2 and "newer" in text
    code, text = run("predict", model_file, study, "--out", tmp_path / "all.csv")
    assert code == 0, text
    s = pd.read_csv(tmp_path / "all.csv")
    assert len(s) == len(pd.read_csv(study / "lesions.csv"))
    assert "patient_id" not in s.columns and s["patient_seq"].min() == 1
    assert (s.groupby("patient_seq")["rank_in_patient"].min() == 1).all()
    code, text = run("predict", model_file, study, "--out", tmp_path / "ids.csv", "--show-ids")
    assert code == 0, text
    ids = pd.read_csv(tmp_path / "ids.csv", dtype={"patient_id": str})
    assert set(ids["patient_id"]) == set(pd.read_csv(study / "lesions.csv", dtype=str)["patient_id"])
