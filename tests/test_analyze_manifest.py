"""`pofa analyze MANIFEST.csv`: from PET/CT images to the report in one command (issue 8, study level)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batch_data import make_study
from pofa.cli import app


@pytest.mark.slow
def test_analyze_an_imaging_manifest(tmp_path: Path) -> None:
    files = make_study(tmp_path / "images", 3)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["analyze", str(files.manifest), "--out", str(out)])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    truth = files.truth
    assert results["patterns"]["patients"] == len(truth)
    assert results["patterns"]["lesions"] == sum(len(t.baseline) for t in truth)
    assert results["patterns"]["recurred"] == sum(t.has_failure for t in truth)
    assert results["patterns"]["local_failure_lesions"] == sum(len(t.persisting) for t in truth)
    # the study built from the images (patient ids, dates) is not in the results: built in a temporary
    # folder, removed afterwards
    assert not (out / "study").exists() and not [f for f in results["files"] if f.startswith("study/")]
    assert (out / "report.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "out"]
    # --keep-study keeps it in a folder of its own (never inside the results)
    kept = tmp_path / "built"
    res = CliRunner().invoke(app, ["analyze", str(files.manifest), "--out", str(tmp_path / "out2"),
                                   "--keep-study", str(kept)])
    assert res.exit_code == 0, res.output
    assert (kept / "lesions.csv").is_file() and (kept / "imaging.json").is_file()
    assert json.loads((tmp_path / "out2" / "results.json").read_text())["patterns"] == results["patterns"]
    res = CliRunner().invoke(app, ["analyze", str(files.manifest), "--out", str(tmp_path / "out3"),
                                   "--keep-study", str(tmp_path / "out3" / "study")])
    assert res.exit_code == 2 and "overlap" in res.output and not (tmp_path / "out3").exists()


def test_bad_manifest_writes_nothing(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("patient_id,role,scan_date,pet\nP1,baseline,2020-13-01,missing.nii.gz\n")
    (tmp_path / "patients.csv").write_text(
        "patient_id,index_date,last_followup_date,progression_date,death_date\nP1,2020-01-01,2020-06-01,,\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["analyze", str(manifest), "--out", str(out)])
    assert res.exit_code == 2
    assert "scan_date" in res.output
    assert not out.exists()
