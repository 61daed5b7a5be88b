"""Dose from the plan: RTDOSE geometry, dose to failure lesions, field classes, bad plans, vendor files.

Closed forms:

- a dose grid whose nodes carry a radial field (100% of the prescription inside 20 mm, falling linearly to 0
  at 40 mm): lesions whose voxel centres are grid nodes are sampled exactly, so V95, D95, Dmin/Dmax and the
  volume equal the closed form at the voxel centres to the last bit (exact to less than a voxel's volume);
- a dose linear in LPS is reproduced exactly by trilinear interpolation in any frame, so rotated orientations,
  uneven, absolute and decreasing frame offsets must give ``a + b . x`` to rounding error.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from typer.testing import CliRunner

from pofa.cli import app
from pofa.errors import ImagingError
from pofa.imaging.volume import Volume
from pofa.rt.dicom import check_plan_matches, read_rtdose, read_rtplan, read_structures
from pofa.rt.fractionation import bed, eqd2
from pofa.rt.lesion import d95, dose_for_failures, lesion_doses
from pofa.settings import RadiotherapySettings

RTDOSE_SOP = "1.2.840.10008.5.1.4.1.1.481.2"
RTPLAN_SOP = "1.2.840.10008.5.1.4.1.1.481.5"
FOR_UID = "1.2.826.0.1.3680043.8.498.1"
P = 30.0  # prescription, Gy
R0, R1 = 20.0, 40.0  # radius of the 100% region and of zero dose (mm)
CENTRE = np.array([0.0, 0.0, 0.0])
R95 = R0 + 0.05 * (R1 - R0)  # 21 mm: the 95% isodose


def radial(points: np.ndarray) -> np.ndarray:
    r = np.linalg.norm(points - CENTRE, axis=-1)
    return P * np.clip(1.0 - (r - R0) / (R1 - R0), 0.0, 1.0)


def _save(ds: FileDataset, path: Path) -> None:
    """Write a DICOM file with its file meta (pydicom 3 ``enforce_file_format``; pydicom 2 spelling)."""
    try:
        ds.save_as(path, enforce_file_format=True)
    except TypeError:  # pragma: no cover - pydicom 2
        ds.save_as(path, write_like_original=False)


def write_rtdose(path: Path, dose_gy: np.ndarray, origin, iop, spacing, offsets, scaling: float | None = 1e-5,
                 units: str = "GY", summation: str = "PLAN", for_uid: str = FOR_UID,
                 plan_uid: str | None = None) -> Path:
    """A minimal RTDOSE (frames, rows, columns) with uint32 pixels = round(dose / scaling)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTDOSE_SOP
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = RTDOSE_SOP
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTDOSE"
    ds.FrameOfReferenceUID = for_uid
    nk, nr, nc = dose_gy.shape
    ds.Rows, ds.Columns, ds.NumberOfFrames = nr, nc, nk
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 32, 32, 31, 0
    ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    ds.ImagePositionPatient = [float(v) for v in origin]
    ds.ImageOrientationPatient = [float(v) for v in iop]
    ds.GridFrameOffsetVector = [float(v) for v in offsets]
    ds.FrameIncrementPointer = 0x3004000C
    ds.DoseUnits = units
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = summation
    s = scaling if scaling is not None else 1e-5
    if scaling is not None:
        ds.DoseGridScaling = f"{scaling:.10g}"
    if plan_uid is not None:
        item = pydicom.Dataset()
        item.ReferencedSOPClassUID = RTPLAN_SOP
        item.ReferencedSOPInstanceUID = plan_uid
        ds.ReferencedRTPlanSequence = [item]
    ds.PixelData = np.round(dose_gy / s).astype("<u4").tobytes()
    _save(ds, path)
    return path


def write_rtplan(path: Path, prescription: float, fractions: int, for_uid: str | None) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTPLAN_SOP
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = RTPLAN_SOP, meta.MediaStorageSOPInstanceUID, "RTPLAN"
    if for_uid is not None:
        ds.FrameOfReferenceUID = for_uid
    ref = pydicom.Dataset()
    ref.DoseReferenceNumber, ref.DoseReferenceType, ref.TargetPrescriptionDose = 1, "TARGET", prescription
    ds.DoseReferenceSequence = [ref]
    fg = pydicom.Dataset()
    fg.FractionGroupNumber, fg.NumberOfFractionsPlanned = 1, fractions
    ds.FractionGroupSequence = [fg]
    _save(ds, path)
    return path


# A 1 mm axial grid over [-45, 45]^3 mm carrying the radial field at its nodes.
N = 91
AXIS = np.arange(N) - 45.0


@pytest.fixture(scope="module")
def sphere_dose(tmp_path_factory: pytest.TempPathFactory) -> Path:
    zz, yy, xx = np.meshgrid(AXIS, AXIS, AXIS, indexing="ij")
    dose = radial(np.stack([xx, yy, zz], axis=-1))
    path = tmp_path_factory.mktemp("rt") / "sphere.dcm"
    # scaling 1e-6 Gy: every node's stored value is exact to 5e-7 Gy
    return write_rtdose(path, dose, (-45.0, -45.0, -45.0), (1, 0, 0, 0, 1, 0), (1.0, 1.0), AXIS + 45.0, 1e-6)


def ball_labels(centres_radii: list[tuple[tuple[float, float, float], float]]) -> Volume:
    """Label map on the dose grid's nodes: ball ``i`` (centre mm, radius mm) gets label i + 1."""
    zz, yy, xx = np.meshgrid(AXIS, AXIS, AXIS, indexing="ij")
    lab = np.zeros((N, N, N), dtype=np.uint8)
    for i, (c, r) in enumerate(centres_radii):
        lab[(xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (zz - c[2]) ** 2 <= r * r] = i + 1
    return Volume.from_spacing(lab, (1.0, 1.0, 1.0), origin=(-45.0, -45.0, -45.0), units="label")


LESIONS = [((0.0, 0.0, 0.0), 8.0),  # inside: in-field by both rules
           ((21.0, 0.0, 0.0), 6.0),  # across the isodose: marginal by volume
           ((0.0, -28.0, 0.0), 3.0),  # outside, centroid 7 mm from the isodose: out-of-field / marginal
           ((0.0, 0.0, 38.0), 4.0)]  # far outside: out-of-field by both


def closed_form(c: tuple[float, float, float], r: float) -> tuple[np.ndarray, float]:
    """The analytic dose at the voxel centres of a ball on the 1 mm node lattice, and its voxel count."""
    g = np.arange(-math.ceil(r), math.ceil(r) + 1)
    zz, yy, xx = np.meshgrid(g, g, g, indexing="ij")
    pts = np.stack([xx, yy, zz], axis=-1).reshape(-1, 3)
    pts = pts[(pts ** 2).sum(1) <= r * r] + np.asarray(c)
    return radial(pts), float(pts.shape[0])


def test_sphere_closed_form(sphere_dose: Path) -> None:
    dose = read_rtdose(sphere_dose)
    rows = lesion_doses(ball_labels(LESIONS), dose, P)
    for row, (c, r) in zip(rows, LESIONS, strict=True):
        exact, n = closed_form(c, r)
        assert row.n_voxels == n
        assert row.volume_ml == pytest.approx(n / 1000.0, abs=1e-12)
        v95 = 100.0 * np.count_nonzero(exact >= 0.95 * P) / n
        # V95 exact to less than a voxel's volume: the same voxels are counted
        assert abs(row.v95_pct - v95) * n / 100.0 < 1.0
        # doses at nodes: stored with a 1e-6 Gy grid scaling, so equal to 5e-7 Gy
        assert row.d95_gy == pytest.approx(d95(exact), abs=1e-6)
        assert row.dmin_gy == pytest.approx(exact.min(), abs=1e-6)
        assert row.dmax_gy == pytest.approx(exact.max(), abs=1e-6)
        assert row.dmean_gy == pytest.approx(exact.mean(), abs=1e-6)
        assert row.centroid_dose_gy == pytest.approx(radial(np.asarray([c]))[0], abs=1e-6)
    inside, across, near, far = rows
    assert (inside.v95_pct, inside.class_volume, inside.class_centroid) == (100.0, "in-field", "in-field")
    assert 20.0 <= across.v95_pct < 95.0 and across.class_volume == "marginal"
    assert (near.v95_pct, near.class_volume, near.class_centroid) == (0.0, "out-of-field", "marginal")
    assert not near.classes_agree
    # distance of the centroid from the isodose sphere: 28 - 21 = 7 mm; the surface is sampled at the grid's
    # edge crossings, so the nearest sample lies at most ~half a 1 mm grid step aside: sqrt(7^2 + 0.5^2) - 7
    # = 0.018 mm, the bound checked here
    bound = math.hypot(7.0, 0.5) - 7.0
    assert abs(near.centroid_distance_mm - (28.0 - R95)) <= bound
    assert far.class_volume == far.class_centroid == "out-of-field"
    assert abs(far.centroid_distance_mm - (38.0 - R95)) <= math.hypot(17.0, 0.5) - 17.0


def test_d95_is_the_order_statistic() -> None:
    # 20 voxels: at least 19 (95%) must receive D95 -> the 19th largest
    d = np.arange(1.0, 21.0)
    assert d95(d) == 2.0
    assert d95(np.arange(1.0, 101.0)) == 6.0  # 95 voxels of 100 receive >= 6
    assert d95(np.array([5.0])) == 5.0


def test_settings_move_the_classes(sphere_dose: Path) -> None:
    dose = read_rtdose(sphere_dose)
    strict = RadiotherapySettings(centroid_margin_mm=5.0, marginal_volume_pct=80.0)
    rows = lesion_doses(ball_labels(LESIONS), dose, P, strict)
    assert rows[2].class_centroid == "out-of-field"  # 7 mm > 5 mm
    assert rows[1].class_volume == "out-of-field"  # V95 < 80%


def linear_field(points: np.ndarray) -> np.ndarray:
    return 10.0 + points @ np.array([0.05, -0.03, 0.08])


def _rotation(ax: float, az: float) -> np.ndarray:
    ca, sa, cz, sz = math.cos(ax), math.sin(ax), math.cos(az), math.sin(az)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ rx


def _grid_points(origin, row_dir, col_dir, spacing, offsets, nr, nc) -> np.ndarray:
    normal = np.cross(row_dir, col_dir)
    k, r, c = np.meshgrid(np.arange(len(offsets)), np.arange(nr), np.arange(nc), indexing="ij")
    off = np.asarray(offsets)[k]
    return (np.asarray(origin) + c[..., None] * spacing[1] * row_dir + r[..., None] * spacing[0] * col_dir
            + off[..., None] * normal)


@pytest.mark.parametrize("case", ["rotated-uneven", "absolute-axial", "decreasing"])
def test_geometry_linear_field_exact(tmp_path: Path, case: str) -> None:
    if case == "rotated-uneven":
        rot = _rotation(0.4, 0.7)
        row_dir, col_dir = rot[:, 0], rot[:, 1]
        offsets = np.array([0.0, 2.0, 5.0, 6.0, 10.0, 13.5, 20.0])  # uneven, relative
        origin = np.array([-20.0, -15.0, -10.0])
        stored = offsets
    elif case == "absolute-axial":
        row_dir, col_dir = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
        origin = np.array([-20.0, -15.0, -12.0])
        offsets = np.array([0.0, 3.0, 4.5, 9.0, 12.0, 18.0, 21.0])
        stored = offsets + origin[2]  # absolute z positions
    else:
        row_dir, col_dir = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
        origin = np.array([-20.0, -15.0, -12.0])
        offsets = np.array([0.0, -2.5, -5.0, -10.0, -12.5, -20.0])
        stored = offsets
    nr, nc, spacing = 12, 14, (2.5, 3.0)
    pts = _grid_points(origin, row_dir, col_dir, spacing, offsets, nr, nc)
    path = write_rtdose(tmp_path / "d.dcm", linear_field(pts), origin, [*row_dir, *col_dir], spacing, stored,
                        1e-7)
    grid = read_rtdose(path)
    assert np.all(np.diff(grid.offsets_mm) > 0)
    # random points strictly inside the grid, given as fractional indices of the original frame order
    rng = np.random.default_rng(1)
    n = 500
    kf = rng.uniform(0, len(offsets) - 1, n)
    w = np.interp(kf, np.arange(len(offsets)), offsets)
    q = (origin + rng.uniform(0, nc - 1, n)[:, None] * spacing[1] * row_dir
         + rng.uniform(0, nr - 1, n)[:, None] * spacing[0] * col_dir
         + w[:, None] * np.cross(row_dir, col_dir))
    # stored values are rounded to 1e-7 Gy; trilinear interpolation keeps that error bound
    np.testing.assert_allclose(grid.sample(q), linear_field(q), atol=2e-7)
    idx, inside = grid.lps_to_index(q)
    assert inside.all()
    np.testing.assert_allclose(grid.index_to_lps(idx), q, atol=1e-9)


def test_transform_brings_labels_to_the_dose_frame(sphere_dose: Path, tmp_path: Path) -> None:
    import SimpleITK as sitk

    shift = np.array([12.5, -7.0, 30.0])
    t = sitk.TranslationTransform(3, shift.tolist())  # dose (planning) frame -> failure scan frame
    tfm = tmp_path / "t.tfm"
    sitk.WriteTransform(t, str(tfm))
    base = ball_labels(LESIONS[:3])
    moved = Volume(base.voxels, np.vstack([np.column_stack([base.affine[:3, :3], base.affine[:3, 3] + shift]),
                                           [0, 0, 0, 1]]), units="label")
    nii = tmp_path / "moved.nii.gz"
    moved.to_nifti(nii)
    plain = lesion_doses(base, read_rtdose(sphere_dose), P)
    run = dose_for_failures(nii, sphere_dose, P, transform_path=tfm)
    for a, b in zip(plain, run.lesions, strict=True):
        assert a.v95_pct == b.v95_pct and a.class_centroid == b.class_centroid
        assert b.dmean_gy == pytest.approx(a.dmean_gy, abs=1e-9)


def test_fractionation_closed_form() -> None:
    # 30 Gy in 10 fractions, a/b 10: BED = 30 (1 + 3/10) = 39; EQD2 = 30 (3 + 10) / 12 = 32.5
    assert bed(30.0, 10, 10.0) == pytest.approx(39.0)
    assert eqd2(30.0, 10, 10.0) == pytest.approx(32.5)
    assert eqd2(20.0, 10, 3.0) == pytest.approx(20.0)  # 2 Gy fractions: EQD2 = D for any a/b
    assert np.isnan(eqd2(np.nan, 5, 10.0))


# ---------------------------------------------------------------- the command and bad plans
runner = CliRunner()


def _invoke(args: list[str]):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _said(res) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(res.output.split())


def test_cli_writes_exactly_the_columns(sphere_dose: Path, tmp_path: Path) -> None:
    nii = tmp_path / "f.nii.gz"
    ball_labels(LESIONS).to_nifti(nii)
    out = tmp_path / "dose.csv"
    res = _invoke(["dose", nii, "--rtdose", sphere_dose, "--prescription-gy", P, "--out", out])
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert lines[0] == ("label,volume_ml,dmin_gy,dmean_gy,dmax_gy,d95_gy,v95_pct,centroid_dose_gy,"
                        "class_volume,class_centroid,classes_agree")
    assert len(lines) == 1 + len(LESIONS)
    assert lines[3].endswith("out-of-field,marginal,no")


def test_plan_in_another_frame_of_reference(sphere_dose: Path, tmp_path: Path) -> None:
    nii = tmp_path / "f.nii.gz"
    ball_labels(LESIONS[:1]).to_nifti(nii)
    plan = write_rtplan(tmp_path / "plan.dcm", P, 10, "1.2.3.999")
    out = tmp_path / "dose.csv"
    res = _invoke(["dose", nii, "--rtdose", sphere_dose, "--rtplan", plan, "--out", out])
    assert res.exit_code == 2
    assert "sphere.dcm" in _said(res) and "plan.dcm" in _said(res) and "frame of reference" in _said(res)
    assert not out.exists()
    good = write_rtplan(tmp_path / "good.dcm", 30.0, 10, FOR_UID)
    info = read_rtplan(good)
    assert (info.prescription_gy, info.fractions) == (30.0, 10)
    assert check_plan_matches(read_rtdose(sphere_dose), info) == []


def test_missing_grid_scaling_names_the_file(tmp_path: Path) -> None:
    path = write_rtdose(tmp_path / "noscale.dcm", np.ones((2, 3, 3)), (0, 0, 0), (1, 0, 0, 0, 1, 0), (1, 1),
                        [0, 1], scaling=None)
    nii = tmp_path / "f.nii.gz"
    Volume.from_spacing(np.ones((1, 1, 1), np.uint8), origin=(1, 1, 0)).to_nifti(nii)
    out = tmp_path / "dose.csv"
    res = _invoke(["dose", nii, "--rtdose", path, "--prescription-gy", 2, "--out", out])
    assert res.exit_code == 2 and "noscale.dcm has no DoseGridScaling" in _said(res)
    assert not out.exists()


def test_lesion_outside_the_grid(sphere_dose: Path, tmp_path: Path) -> None:
    lab = np.zeros((4, 4, 4), np.uint8)
    lab[1:3, 1:3, 1:3] = 3
    nii = tmp_path / "far.nii.gz"
    Volume.from_spacing(lab, origin=(40.0, 40.0, 40.0)).to_nifti(nii)  # reaches 44 < 45: inside
    Volume.from_spacing(lab, origin=(44.0, 40.0, 40.0)).to_nifti(tmp_path / "out.nii.gz")  # reaches 47
    out = tmp_path / "dose.csv"
    res = _invoke(["dose", tmp_path / "out.nii.gz", "--rtdose", sphere_dose, "--prescription-gy", P,
                   "--out", out])
    assert res.exit_code == 2
    assert "outside the dose grid of sphere.dcm" in _said(res) and "Lesion(s) 3 of out.nii.gz" in _said(res)
    assert not out.exists()
    ok = _invoke(["dose", nii, "--rtdose", sphere_dose, "--prescription-gy", P, "--out", out])
    assert ok.exit_code == 0


def test_relative_units_are_fractions_of_the_prescription(tmp_path: Path) -> None:
    rel = np.full((3, 4, 4), 0.5)
    path = write_rtdose(tmp_path / "rel.dcm", rel, (0, 0, 0), (1, 0, 0, 0, 1, 0), (2, 2), [0, 2, 4],
                        units="RELATIVE")
    with pytest.raises(ImagingError, match="RELATIVE"):
        read_rtdose(path)
    grid = read_rtdose(path, prescription_gy=40.0)
    assert grid.dose_gy.max() == pytest.approx(20.0, abs=1e-4)
    assert any("RELATIVE" in w for w in grid.warnings)
    frac = write_rtdose(tmp_path / "frac.dcm", np.full((2, 2, 2), 2.0), (0, 0, 0), (1, 0, 0, 0, 1, 0), (1, 1),
                        [0, 1], summation="FRACTION")
    assert read_rtdose(frac, fractions=15).dose_gy.max() == pytest.approx(30.0, abs=1e-3)
    with pytest.raises(ImagingError, match="number of fractions"):
        read_rtdose(frac)


def test_offsets_neither_relative_nor_absolute(tmp_path: Path) -> None:
    path = write_rtdose(tmp_path / "odd.dcm", np.ones((2, 2, 2)), (0, 0, -50), (1, 0, 0, 0, 1, 0), (1, 1),
                        [3, 4])
    with pytest.raises(ImagingError, match="odd.dcm: GridFrameOffsetVector starts at 3"):
        read_rtdose(path)


# ---------------------------------------------------------------- pydicom's vendor files (shipped offline)
def _testdata(name: str) -> str:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:  # pragma: no cover - the wheel ships these files
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not in this pydicom's test data (pydicom's wheel ships it)")
        pytest.skip(f"{name} is not in this pydicom's test data")
    return str(path)


def test_vendor_rtdose_plan_and_structures(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the vendor files carry invalid UIDs pydicom warns about
        raw = pydicom.dcmread(_testdata("rtdose.dcm"))
        grid = read_rtdose(_testdata("rtdose.dcm"), prescription_gy=30.826203)
        plan = read_rtplan(_testdata("rtplan.dcm"))
        structures = read_structures(_testdata("rtstruct.dcm"))
    assert grid.units == "RELATIVE" and grid.summation_type == "BEAM" and len(grid.warnings) == 2
    assert grid.shape == (15, 10, 10)
    np.testing.assert_allclose(grid.dose_gy, raw.pixel_array * 1e-6 * 30.826203)
    # a node of the grid: frame 7 (offset 35 mm), row 3, column 4
    node = np.array([189.43125 + 40.0, 199.43125 + 30.0, -761.87 + 35.0])
    assert grid.sample(node[None])[0] == pytest.approx(raw.pixel_array[7, 3, 4] * 1e-6 * 30.826203, rel=1e-12)
    assert plan.prescription_gy == pytest.approx(30.826203) and plan.fractions == 30
    assert plan.frame_of_reference_uid == ""  # this plan states none: nothing to compare
    assert [s.name for s in structures] == ["patient", "Isocenter 1", "Isocenter 2"]
    assert structures[0].interpreted_type == "EXTERNAL" and len(structures[0].contours) == 3
    # the dose grid names another plan than pydicom's rtplan.dcm: a warning, not an error
    assert len(check_plan_matches(grid, plan)) == 1
    lab = np.zeros((3, 3, 3), np.uint8)
    lab[1, 1, 1] = 1
    lab[0, :, :] = 2
    labels = Volume.from_spacing(lab, (5.0, 10.0, 10.0), origin=(209.43125, 219.43125, -741.87))
    rows = lesion_doses(labels, grid, 30.826203)
    assert rows[0].dmean_gy == pytest.approx(raw.pixel_array[5, 3, 3] * 1e-6 * 30.826203, rel=1e-12)
    assert rows[1].volume_ml == pytest.approx(9 * 0.5)


def write_rtstruct(path: Path, for_uid: str, half: float = 5.0, zs=(-2.0, -1.0, 0.0, 1.0, 2.0)) -> Path:
    """An RTSTRUCT with one GTV: a square of side 2 x ``half`` mm about the axis on each plane of ``zs``."""
    sop = "1.2.840.10008.5.1.4.1.1.481.3"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop, meta.MediaStorageSOPInstanceUID, "RTSTRUCT"
    ref = pydicom.Dataset()
    ref.FrameOfReferenceUID = for_uid
    ds.ReferencedFrameOfReferenceSequence = [ref]
    roi = pydicom.Dataset()
    roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = 1, "failure 1", for_uid
    ds.StructureSetROISequence = [roi]
    obs = pydicom.Dataset()
    obs.ObservationNumber, obs.ReferencedROINumber, obs.RTROIInterpretedType = 1, 1, "GTV"
    ds.RTROIObservationsSequence = [obs]
    contours = []
    for z in zs:
        c = pydicom.Dataset()
        c.ContourGeometricType = "CLOSED_PLANAR"
        pts = [(-half, -half), (half, -half), (half, half), (-half, half)]
        c.ContourData = [v for x, y in pts for v in (x, y, z)]
        c.NumberOfContourPoints = 4
        contours.append(c)
    rc = pydicom.Dataset()
    rc.ReferencedROINumber, rc.ContourSequence = 1, contours
    ds.ROIContourSequence = [rc]
    _save(ds, path)
    return path


def test_rtstruct_failure_labels(sphere_dose: Path, tmp_path: Path) -> None:
    rs = write_rtstruct(tmp_path / "rs.dcm", FOR_UID)
    run = dose_for_failures(rs, sphere_dose, P)
    (row,) = run.lesions
    # 10 x 10 voxel centres of 1 mm inside the 10 mm square on each of the 5 planes (1 mm apart)
    assert row.n_voxels == 500 and row.volume_ml == pytest.approx(0.5)
    assert row.class_volume == row.class_centroid == "in-field" and row.dmin_gy == pytest.approx(P, abs=1e-6)
    other = write_rtstruct(tmp_path / "other.dcm", "1.2.3.4.5")
    with pytest.raises(ImagingError, match="other.dcm is in frame of reference 1.2.3.4.5"):
        dose_for_failures(other, sphere_dose, P)
