"""The extract pipeline and the ``pofa extract`` command end to end on a synthetic PET/CT study.

Also: no identifying DICOM attribute reaches any output file, and broken input gives a PofaError (which the
CLI prints without a traceback), never another exception type.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from pet_synthetic import (
    SECRET_BIRTH,
    SECRET_ID,
    SECRET_INSTITUTION,
    SECRET_NAME,
    PetSpec,
    ellipsoid_mask,
    expected_bw_factor,
    read_all_bytes,
    sphere_mask,
    write_ct_series,
    write_pet_series,
)
from typer.testing import CliRunner

from pofa.cli.extract import extract_command
from pofa.errors import ImagingError, SettingsError
from pofa.imaging.extract import LESION_COLUMNS, extract
from pofa.imaging.volume import Volume

SHAPE = (30, 40, 40)
SP = (2.0, 2.0, 2.0)
ORIGIN = (-40.0, -40.0, -30.0)  # x, y centres -40..38 mm; z -30..28 mm
SPEC = PetSpec(slope=1.0)
FACTOR = expected_bw_factor(SPEC, 3695.25)  # SUV per Bq/ml for the default header times
LIVER_C, LIVER_AXES = (5.0, 5.0, 0.0), (30.0, 25.0, 25.0)  # deepest point = centre, 25 mm from the edge


def build_study(tmp_path: Path) -> dict[str, Path]:
    suv = np.full(SHAPE, 0.5)
    liver = ellipsoid_mask(SHAPE, SP, ORIGIN, LIVER_C, LIVER_AXES)
    suv[liver] = 2.0
    les_a = sphere_mask(SHAPE, SP, ORIGIN, (29.0, 5.0, 0.0), 5.0)  # in the liver, clear of the PERCIST sphere
    les_b = sphere_mask(SHAPE, SP, ORIGIN, (-25.0, -20.0, 10.0), 6.0)  # a node
    suv[les_a] = 10.0
    suv[les_b] = 8.0
    stored = np.rint(suv / FACTOR).astype(np.int64)  # Bq/ml with slope 1
    assert stored.max() < 65535
    write_pet_series(tmp_path / "pet", stored, SPEC, spacing=SP, origin=ORIGIN)
    hu = np.full(SHAPE, -100)
    hu[les_a] = 55
    write_ct_series(tmp_path / "ct", hu, spacing=SP, origin=ORIGIN, frame_uid=SPEC.frame_uid)
    # organ map on a finer grid (1 mm), TotalSegmentator v2 ids: 5 = liver, 1 = spleen
    fshape = (60, 80, 80)
    fo = (-40.5, -40.5, -30.5)
    organs = np.zeros(fshape, np.uint8)
    organs[ellipsoid_mask(fshape, (1, 1, 1), fo, LIVER_C, LIVER_AXES)] = 5
    organs[ellipsoid_mask(fshape, (1, 1, 1), fo, (-25.0, 25.0, 0.0), (8.0, 8.0, 8.0))] = 1
    Volume.from_spacing(organs, (1, 1, 1), fo).to_nifti(tmp_path / "organs.nii.gz")
    pd.DataFrame(
        {"x_mm": [-25.0, 30.0], "y_mm": [-20.0, -35.0], "z_mm": [10.0, 20.0], "lesion_id": ["B7", "X"]}
    ).to_csv(tmp_path / "seeds.csv", index=False)
    return {
        "pet": tmp_path / "pet",
        "ct": tmp_path / "ct",
        "organs": tmp_path / "organs.nii.gz",
        "seeds": tmp_path / "seeds.csv",
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return build_study(tmp_path_factory.mktemp("study"))


def cli(args: list[str]):
    app = typer.Typer()
    app.command()(extract_command)
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_end_to_end_and_no_identifiers_in_outputs(study, tmp_path):
    out = tmp_path / "out"
    r = cli(
        [
            study["pet"],
            "--ct",
            study["ct"],
            "--threshold",
            "suv4",
            "--organs",
            study["organs"],
            "--patient-id",
            "P042",
            "--out",
            out / "lesions.csv",
            "--label-map",
            out / "labels.nii.gz",
            "--seg",
            out / "seg.dcm",
        ]
    )
    assert r.exit_code == 0, r.output + repr(r.exception)
    df = pd.read_csv(out / "lesions.csv", dtype={"patient_id": str, "lesion_id": str})
    assert tuple(df.columns) == LESION_COLUMNS
    assert len(df) == 2
    a, b = df.iloc[0], df.iloc[1]  # ordered by SUVmax: the liver lesion (10) then the node (8)
    assert (a.site, a.extranodal, b.site, b.extranodal) == ("liver", "yes", "lymph node", "no")
    assert a.suvmax == pytest.approx(10.0, rel=1e-4)  # stored values are rounded to whole Bq/ml
    assert (a.x_mm, a.y_mm, a.z_mm) == pytest.approx((29.0, 5.0, 0.0), abs=1e-4)
    assert a.ct_hu_mean == pytest.approx(55.0)
    assert a.diameter_cm == pytest.approx(a.diameter_axial_mm / 10, rel=1e-5)
    assert set(df.patient_id) == {"P042"}
    labels = Volume.from_nifti(out / "labels.nii.gz")
    assert labels.voxels.max() == 2 and int((labels.voxels == 1).sum()) == int(a.n_voxels)
    man = json.loads((out / "lesions.manifest.json").read_text())
    assert man["suv"]["units"] == "SUVbw" and man["patient"]["n_lesions"] == 2
    assert man["outputs"] == ["lesions.csv", "labels.nii.gz", "seg.dcm"]
    blob = read_all_bytes(out)
    for secret in (
        SECRET_NAME,
        SECRET_ID,
        SECRET_BIRTH,
        SECRET_INSTITUTION,
        "ACC99887766",
        "Secretive",
        "20210304",
        "STUDY42",
    ):
        assert secret.encode() not in blob, secret
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary files left


def test_extract_api_percist_from_organ_map_and_seeds(study):
    res = extract(study["pet"], threshold="percist", organs=study["organs"], seeds=study["seeds"])
    assert res.patient_id == "pet"  # default: the PET folder name
    assert res.segmentation.liver is not None
    assert res.segmentation.liver.mean == pytest.approx(2.0, rel=1e-4)
    assert [les.lesion_id for les in res.lesions] == ["B7"]
    assert res.segmentation.unmatched_seeds == ("X",)
    assert any("matched no lesion" in w for w in res.warnings)
    assert res.lesions[0].extranodal is False


def test_mask_input_and_nifti_pet(study, tmp_path):
    res = extract(study["pet"], threshold="suv4")
    res.write_label_map(tmp_path / "lab.nii.gz")
    again = extract(study["pet"], mask=tmp_path / "lab.nii.gz", patient_id="P1")
    np.testing.assert_array_equal(again.labels.voxels, res.labels.voxels)
    assert [round(x.mtv_ml, 9) for x in again.lesions] == [round(x.mtv_ml, 9) for x in res.lesions]
    # the SUV as NIfTI (no sidecar) gives the same features
    res.suv.volume.to_nifti(tmp_path / "suv.nii.gz")
    nif = extract(tmp_path / "suv.nii.gz", threshold="suv4")
    assert nif.patient_id == "suv"
    np.testing.assert_allclose([x.suvpeak for x in nif.lesions], [x.suvpeak for x in res.lesions], rtol=1e-6)
    with pytest.raises(ImagingError, match="needs a DICOM PET"):
        nif.write_seg(tmp_path / "seg.dcm")


def test_settings_errors(study):
    with pytest.raises(SettingsError, match="exactly one"):
        extract(study["pet"])
    with pytest.raises(SettingsError, match="exactly one"):
        extract(study["pet"], mask=study["organs"], threshold="suv4")
    with pytest.raises(SettingsError, match="normalisation"):
        extract(study["pet"], threshold="suv4", suv="bsa")
    with pytest.raises(ImagingError, match="Unknown threshold"):
        extract(study["pet"], threshold="otsu")


@pytest.mark.parametrize(
    ("spec", "skip", "message"),
    [
        (PetSpec(weight_kg=None), (), "PatientWeight"),
        (PetSpec(dose_bq=None), (), "RadionuclideTotalDose"),
        (PetSpec(), (2,), "missing"),
        (PetSpec(modality="CT"), (), "No PT series"),
    ],
)
def test_broken_input_via_cli_is_a_pofa_error(tmp_path, spec, skip, message):
    write_pet_series(tmp_path / "pet", np.ones((5, 4, 4), np.int64), spec, skip_slices=skip)
    r = cli([tmp_path / "pet", "--threshold", "suv4", "--out", tmp_path / "l.csv"])
    assert r.exit_code == 2
    assert "Traceback" not in r.output and "error:" in r.stderr and message in r.stderr
    assert not (tmp_path / "l.csv").exists()
    # the API raises the PofaError subclass the CLI printed
    with pytest.raises(ImagingError, match=message):
        extract(tmp_path / "pet", threshold="suv4")


def test_importing_the_command_is_light():
    import subprocess
    import sys

    code = (
        "import sys, pofa.cli.extract; "
        "print(sorted(m for m in ('SimpleITK', 'highdicom', 'pydicom', 'nibabel', 'cc3d', 'scipy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
