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
    # the study built from the images is kept beside the report, and listed in results.json
    assert (out / "study" / "lesions.csv").is_file()
    assert "study/lesions.csv" in results["files"]
    assert (out / "report.html").is_file()


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
