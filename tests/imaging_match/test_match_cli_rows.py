"""Failures rows, the ``pofa match`` command and the MIP figure."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import SimpleITK as sitk
import typer
from match_phantoms import RIGID_DEMO, PhantomPair, make_pair
from typer.testing import CliRunner

import pofa
from pofa.cli.match import match_command
from pofa.errors import ImagingError, SettingsError
from pofa.imaging.features import LesionFeatures
from pofa.imaging.matching import (
    FAILURE_COLUMNS,
    MatchClass,
    match_patient,
    match_to_failures_rows,
    write_failures_csv,
)
from pofa.imaging.mip import BASELINE_COLOURS, CLASS_COLOURS, coronal_mip, plot_match_mip
from pofa.imaging.volume import Volume

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def pair() -> PhantomPair:
    return make_pair(RIGID_DEMO)


@pytest.fixture(scope="module")
def truth(pair: PhantomPair) -> sitk.Transform:
    return RIGID_DEMO.truth_transform(pair.baseline_labels)


def features(
    label: int, site: str = "lung", extranodal: bool | None = True, d_mm: float = 23.0
) -> LesionFeatures:
    return LesionFeatures(
        lesion_id=str(label),
        label=label,
        n_voxels=10,
        mtv_ml=1.0,
        suvmax=5.0,
        suvmean=3.0,
        suvpeak=4.0,
        suvpeak_local=4.0,
        tlg=3.0,
        diameter_axial_mm=d_mm,
        diameter_3d_mm=d_mm,
        centroid_lps=(0.0, 0.0, 0.0),
        max_lps=(0.0, 0.0, 0.0),
        site=site,
        extranodal=extranodal,
    )


# ---------------------------------------------------------------------------------------------- rows
def test_rows(pair: PhantomPair, truth: sitk.Transform) -> None:
    r = match_patient(pair.baseline_labels, pair.followup_labels, truth)
    rows = match_to_failures_rows(r, patient_id="P9", scan_date="2019-03-04")
    assert all(tuple(row) == FAILURE_COLUMNS for row in rows)
    by_id = {row["failure_id"]: row for row in rows}
    # 9 failure lesions; the merged lesion 5 covers baseline 4 and 5: one extra row
    assert sorted(by_id) == ["F1", "F2", "F3", "F4", "F5", "F5-2", "F6", "F7", "F8", "F9"]
    assert by_id["F5"]["baseline_lesion_id"] == "4" and by_id["F5-2"]["baseline_lesion_id"] == "5"
    assert by_id["F3"]["baseline_lesion_id"] == by_id["F4"]["baseline_lesion_id"] == "3"  # split
    assert by_id["F6"]["baseline_lesion_id"] == "7"
    for fid in ("F7", "F8", "F9"):
        assert by_id[fid]["baseline_lesion_id"] is None and by_id[fid]["overlap_ml"] == 0.0
    assert by_id["F9"]["match_class"] == "marginal" and by_id["F7"]["match_class"] == "de novo"
    f5 = r.followup_lesion(5)
    assert by_id["F5"]["overlap_ml"] == pytest.approx(f5.overlap_ml, abs=1e-4)
    assert by_id["F5"]["dice"] == pytest.approx(f5.dice, abs=1e-4)
    ov5 = dict(f5.local_to)[5] * r.voxel_volume_ml
    dice5 = 2 * ov5 / (r.baseline_lesion(5).volume_ml + f5.volume_ml)
    assert by_id["F5-2"]["overlap_ml"] == pytest.approx(ov5, abs=1e-4)
    assert by_id["F5-2"]["dice"] == pytest.approx(dice5, abs=1e-4)
    assert by_id["F1"]["x_mm"] == pytest.approx(r.followup_lesion(1).centre_lps[0], abs=0.005)
    assert all(row["patient_id"] == "P9" and row["scan_date"] == "2019-03-04" for row in rows)
    assert all(row["site"] is None and row["diameter_cm"] is None for row in rows)
    one = match_to_failures_rows(r, patient_id="P9", one_row_per_covered_lesion=False)
    assert len(one) == 9 and one[0]["scan_date"] is None


def test_rows_with_features_and_ids(pair: PhantomPair, truth: sitk.Transform) -> None:
    r = match_patient(pair.baseline_labels, pair.followup_labels, truth)
    feats = [features(j, "liver" if j % 2 else "lymph node", bool(j % 2), 10.0 + j) for j in range(1, 10)]
    rows = match_to_failures_rows(
        r, patient_id="P9", followup_features=feats, lesion_ids={i: f"L{i}" for i in range(1, 8)}
    )
    by_id = {row["failure_id"]: row for row in rows}
    assert by_id["F1"]["baseline_lesion_id"] == "L1"
    assert by_id["F7"]["site"] == "liver" and by_id["F7"]["extranodal"] == "yes"
    assert by_id["F8"]["site"] == "lymph node" and by_id["F8"]["extranodal"] == "no"
    assert by_id["F8"]["diameter_cm"] == pytest.approx(1.8)
    rows = match_to_failures_rows(r, patient_id="P9", lesion_ids=lambda i: f"B{i:02d}")
    assert {row["baseline_lesion_id"] for row in rows} >= {"B01", "B07"}
    with pytest.raises(ImagingError, match="No lesion id"):
        match_to_failures_rows(r, patient_id="P9", lesion_ids={1: "L1"})
    with pytest.raises(ImagingError, match="patient_id"):
        match_to_failures_rows(r, patient_id=" ")


def study_folder(tmp: Path, rows: list[dict], n_baseline: int = 7) -> Path:
    folder = tmp / "study"
    folder.mkdir()
    (folder / "patients.csv").write_text(
        "patient_id,index_date,last_followup_date,progression_date,death_date\n"
        "P9,2018-11-01,2019-09-01,2019-03-04,\n",
        encoding="utf-8",
    )
    lines = ["patient_id,lesion_id,site,extranodal,diameter_cm,suvmax"]
    lines += [f"P9,{i},lymph node,no,2.5,8.0" for i in range(1, n_baseline + 1)]
    (folder / "lesions.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_failures_csv(rows, folder / "failures.csv")
    return folder


def test_rows_are_a_valid_failures_table(pair: PhantomPair, truth: sitk.Transform, tmp_path: Path) -> None:
    r = match_patient(pair.baseline_labels, pair.followup_labels, truth)
    feats = [features(j) for j in range(1, 10)]
    rows = match_to_failures_rows(r, patient_id="P9", scan_date="2019-03-04", followup_features=feats)
    report = pofa.load_study(study_folder(tmp_path, rows)).validate()
    assert report.errors == (), report.errors
    # without site/extranodal, pofa validate asks for them for the new lesions (and only for those)
    bare = match_to_failures_rows(r, patient_id="P9", scan_date="2019-03-04")
    (tmp_path / "b").mkdir()
    report = pofa.load_study(study_folder(tmp_path / "b", bare)).validate()
    assert {(f.code, f.column) for f in report.errors} == {
        ("blank-cell", "site"),
        ("blank-cell", "extranodal"),
    }
    assert len(report.errors) == 2 * 3  # F7, F8 (de novo) and F9 (marginal)


def test_csv_round_trip(pair: PhantomPair, truth: sitk.Transform, tmp_path: Path) -> None:
    r = match_patient(pair.baseline_labels, pair.followup_labels, truth)
    rows = match_to_failures_rows(r, patient_id="007", scan_date="2019-03-04")
    path = write_failures_csv(rows, tmp_path / "f.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        back = list(csv.DictReader(fh))
    assert tuple(back[0]) == FAILURE_COLUMNS
    assert back[0]["patient_id"] == "007"  # ids stay text
    assert [b["failure_id"] for b in back] == [row["failure_id"] for row in rows]
    assert back[-1]["baseline_lesion_id"] == "" and back[0]["site"] == ""
    assert list(tmp_path.iterdir()) == [path]  # atomic: no temporary file left


# ---------------------------------------------------------------------------------------------- command
@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    a.command("match")(match_command)

    @a.command("noop")
    def _noop() -> None:  # a second command keeps "match" a subcommand
        """Nothing."""

    return a


def write_inputs(pair: PhantomPair, truth: sitk.Transform, folder: Path) -> dict[str, Path]:
    paths = {k: folder / f"{k}.nii.gz" for k in ("base", "fu", "bct", "fct", "fpet")}
    pair.baseline_labels.to_nifti(paths["base"])
    pair.followup_labels.to_nifti(paths["fu"])
    pair.baseline_ct.to_nifti(paths["bct"])
    pair.followup_ct.to_nifti(paths["fct"])
    pair.followup_pet.to_nifti(paths["fpet"])
    paths["tfm"] = folder / "truth.tfm"
    sitk.WriteTransform(truth, str(paths["tfm"]))
    return paths


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["failure_id"]: row for row in csv.DictReader(fh)}


def test_command_with_transform(
    app: typer.Typer, pair: PhantomPair, truth: sitk.Transform, tmp_path: Path
) -> None:
    p = write_inputs(pair, truth, tmp_path)
    organs = tmp_path / "organs.nii.gz"
    pair.followup_labels.with_voxels(np.ones(pair.followup_labels.shape, dtype=np.uint8)).to_nifti(organs)
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"1": "liver"}), encoding="utf-8")
    out = tmp_path / "failures.csv"
    res = CliRunner().invoke(
        app,
        [
            "match",
            str(p["base"]),
            str(p["fu"]),
            "--transform",
            str(p["tfm"]),
            "--out",
            str(out),
            "--patient-id",
            "P9",
            "--scan-date",
            "2019-03-04",
            "--followup-pet",
            str(p["fpet"]),
            "--organs",
            str(organs),
            "--organ-names",
            str(names),
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    rows = read_rows(out)
    assert rows["F5-2"]["baseline_lesion_id"] == "5" and rows["F9"]["match_class"] == "marginal"
    assert rows["F7"]["site"] == "liver" and rows["F7"]["extranodal"] == "yes"
    # diameter: the 8 mm radius lesion on a 4.2 mm in-plane grid: longest axial ~ 16 mm + one voxel
    assert 1.4 <= float(rows["F7"]["diameter_cm"]) <= 2.2
    assert "marginal" in res.output and "Wrote 10 row(s)" in res.output
    # an existing --out is refused without --force
    res2 = CliRunner().invoke(
        app, ["match", str(p["base"]), str(p["fu"]), "--transform", str(p["tfm"]), "--out", str(out)]
    )
    assert isinstance(res2.exception, SettingsError) and "--force" in str(res2.exception)
    res3 = CliRunner().invoke(
        app,
        [
            "match",
            str(p["base"]),
            str(p["fu"]),
            "--transform",
            str(p["tfm"]),
            "--out",
            str(out),
            "--force",
            "--tolerance-mm",
            "3",
            "--margin-mm",
            "5",
        ],
    )
    assert res3.exit_code == 0, res3.output
    assert read_rows(out)["F1"]["patient_id"] == "base"  # default: the baseline file name
    assert "scan_date" in res3.output  # reminded to fill it in


@pytest.mark.slow
def test_command_registers_when_given_images(
    app: typer.Typer, pair: PhantomPair, truth: sitk.Transform, tmp_path: Path
) -> None:
    p = write_inputs(pair, truth, tmp_path)
    out = tmp_path / "failures.csv"
    tfm = tmp_path / "found.tfm"
    res = CliRunner().invoke(
        app,
        [
            "match",
            str(p["base"]),
            str(p["fu"]),
            "--baseline-image",
            str(p["bct"]),
            "--followup-image",
            str(p["fct"]),
            "--modality",
            "CT",
            "--save-transform",
            str(tfm),
            "--out",
            str(out),
            "--scan-date",
            "2019-03-04",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert tfm.is_file() and "Body-mask Dice" in res.output
    rows = read_rows(out)
    assert rows["F5"]["baseline_lesion_id"] == "4" and rows["F7"]["match_class"] == "de novo"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scan-date", "04/03/2019"], "YYYY-MM-DD"),
        (["--baseline-image", "x.nii.gz"], "both --baseline-image"),
        (["--modality", "MR"], "CT or PET"),
        (["--deformable"], "need --baseline-image"),
    ],
)
def test_command_errors(
    app: typer.Typer, pair: PhantomPair, truth: sitk.Transform, tmp_path: Path, args: list[str], message: str
) -> None:
    p = write_inputs(pair, truth, tmp_path)
    res = CliRunner().invoke(
        app, ["match", str(p["base"]), str(p["fu"]), "--out", str(tmp_path / "o.csv"), *args]
    )
    assert isinstance(res.exception, pofa.errors.PofaError), res.output
    assert message in str(res.exception)
    assert not (tmp_path / "o.csv").exists()


def test_command_missing_file(app: typer.Typer, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["match", str(tmp_path / "a.nii.gz"), str(tmp_path / "b.nii.gz"), "--out", str(tmp_path / "o.csv")],
    )
    assert isinstance(res.exception, ImagingError) and "not found" in str(res.exception)


# ---------------------------------------------------------------------------------------------- figure
def test_coronal_mip_orientation() -> None:
    arr = np.zeros((5, 6, 7), dtype=np.float32)  # (z, y, x)
    arr[4, 2, 6] = 1.0  # highest z (head), largest x (patient left)
    v = Volume.from_spacing(arr, spacing=(2.0, 1.0, 1.0))
    img, extent = coronal_mip(v)
    assert img.shape == (5, 7) and img[0, -1] == 1.0  # top row, right column
    assert extent == (-0.5, 6.5, -1.0, 9.0)
    # the same anatomy stored with reversed axes (feet first, right to left) projects the same way
    flipped = Volume.from_spacing(
        arr[::-1, :, ::-1],
        spacing=(2.0, 1.0, 1.0),
        origin=(6.0, 0.0, 8.0),
        direction=[[0, 0, -1], [0, 1, 0], [-1, 0, 0]],
    )
    img2, extent2 = coronal_mip(flipped)
    assert np.array_equal(img, img2) and extent2 == extent


def test_match_figure(pair: PhantomPair, truth: sitk.Transform) -> None:
    import matplotlib.pyplot as plt

    r = match_patient(pair.baseline_labels, pair.followup_labels, truth)
    before = plt.get_fignums()
    fig = plot_match_mip(
        r, pair.baseline_pet, pair.followup_pet, pair.baseline_labels, pair.followup_labels, title="P9"
    )
    assert plt.get_fignums() == before  # no pyplot figure (nothing to show, nothing leaked)
    ax_b, ax_f = fig.axes[:2]
    colours_f = [tuple(np.asarray(c.get_edgecolor())[0]) for c in ax_f.collections]
    colours_b = [tuple(np.asarray(c.get_edgecolor())[0]) for c in ax_b.collections]
    to_rgba = matplotlib.colors.to_rgba
    assert len(colours_f) == 9 and len(colours_b) == 7  # one outline per lesion
    assert colours_f.count(to_rgba(CLASS_COLOURS[MatchClass.LOCAL])) == 6
    assert colours_f.count(to_rgba(CLASS_COLOURS[MatchClass.DE_NOVO])) == 2
    assert colours_f.count(to_rgba(CLASS_COLOURS[MatchClass.MARGINAL])) == 1
    assert colours_b.count(to_rgba(BASELINE_COLOURS["no failure"])) == 1
    assert ax_b.get_title() == "Baseline" and ax_f.get_title() == "Failure"
    assert fig.get_suptitle() == "P9"
    # into given axes
    fig2, axes = plt.subplots(1, 2)
    try:
        assert (
            plot_match_mip(
                r, pair.baseline_pet, pair.followup_pet, pair.baseline_labels, pair.followup_labels, axes=axes
            )
            is fig2
        )
    finally:
        plt.close(fig2)
    with pytest.raises(ImagingError, match="two axes"):
        plot_match_mip(
            r,
            pair.baseline_pet,
            pair.followup_pet,
            pair.baseline_labels,
            pair.followup_labels,
            axes=[axes[0]],
        )
    assert math.isfinite(float(np.max(coronal_mip(pair.baseline_pet)[0])))
