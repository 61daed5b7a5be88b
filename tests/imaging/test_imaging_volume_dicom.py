"""Volume geometry and conversions; DICOM series reading (order, geometry, broken folders)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from pet_synthetic import PetSpec, write_ct_series, write_pet_series
from pydicom.uid import generate_uid

from pofa.cli.output import error_message
from pofa.errors import ImagingError
from pofa.imaging.dicom import list_series, read_series
from pofa.imaging.volume import Volume, resample_to


def oblique_volume() -> Volume:
    rng = np.random.default_rng(3)
    arr = rng.normal(size=(4, 5, 6)).astype(np.float32)
    # a rotation about z by 30 degrees plus anisotropic spacing
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    d = np.array([[0, -s, c], [0, c, s], [1, 0, 0]], dtype=float)  # columns: axis 0 -> +z, axes 1, 2 rotated
    return Volume.from_spacing(arr, (3.0, 2.0, 1.5), origin=(-12.5, 40.0, 7.25), direction=d)


def test_index_lps_round_trip_and_known_point():
    v = Volume.from_spacing(np.zeros((4, 5, 6)), (3.0, 2.0, 1.5), origin=(-10.0, 20.0, 5.0))
    # index (a0, a1, a2) = (slice 2, row 3, column 4): x = -10 + 4*1.5, y = 20 + 3*2, z = 5 + 2*3
    np.testing.assert_allclose(v.index_to_lps([2, 3, 4]), [-4.0, 26.0, 11.0])
    pts = np.array([[0, 0, 0], [1.5, 2.25, 3.0], [3, 4, 5]])
    np.testing.assert_allclose(v.lps_to_index(v.index_to_lps(pts)), pts, atol=1e-12)
    assert v.spacing == (3.0, 2.0, 1.5)
    assert v.voxel_volume_ml == pytest.approx(3 * 2 * 1.5 / 1000)


def test_sitk_round_trip_matches_itk_physical_points():
    v = oblique_volume()
    img = v.to_sitk()
    # ITK indexes (x, y, z) = (a2, a1, a0)
    for a in [(0, 0, 0), (1, 2, 3), (3, 4, 5)]:
        np.testing.assert_allclose(
            img.TransformIndexToPhysicalPoint((a[2], a[1], a[0])), v.index_to_lps(a), atol=1e-9
        )
    back = Volume.from_sitk(img)
    np.testing.assert_allclose(back.affine, v.affine, atol=1e-12)
    np.testing.assert_array_equal(back.voxels, v.voxels)


def test_nifti_round_trip_and_agreement_with_simpleitk(tmp_path):
    v = oblique_volume()
    p = tmp_path / "v.nii.gz"
    v.to_nifti(p)
    back = Volume.from_nifti(p)
    np.testing.assert_allclose(back.affine, v.affine, atol=1e-5)  # NIfTI stores the affine as float32
    np.testing.assert_array_equal(back.voxels, v.voxels)
    # SimpleITK reads the same file independently (its own RAS -> LPS conversion)
    via_itk = Volume.from_sitk(sitk.ReadImage(str(p)))
    np.testing.assert_allclose(via_itk.affine, back.affine, atol=1e-4)
    np.testing.assert_array_equal(via_itk.voxels, back.voxels)
    assert [f.name for f in tmp_path.iterdir()] == ["v.nii.gz"]  # no temporary file left


def test_volume_is_immutable_and_copies_input():
    arr = np.ones((2, 3, 4))
    v = Volume(arr, np.eye(4))
    arr[0, 0, 0] = 5  # the caller's array is not shared
    assert v.voxels[0, 0, 0] == 1
    with pytest.raises(ValueError):
        v.voxels[0, 0, 0] = 2
    aff = v.affine
    aff[0, 0] = 9  # a copy
    assert v.affine[0, 0] == 1
    with pytest.raises(AttributeError):
        v.units = "x"  # type: ignore[misc]
    c = v.voxels_copy()
    c[0, 0, 0] = 3
    assert v.voxels[0, 0, 0] == 1


@pytest.mark.parametrize(
    ("arr", "aff", "msg"),
    [
        (np.zeros((2, 3)), np.eye(4), "3-D"),
        (np.zeros((2, 2, 2)), np.eye(3), "4 x 4"),
        (np.zeros((2, 2, 2)), np.diag([1, 1, 0, 1]), "singular"),
    ],
)
def test_bad_volume(arr, aff, msg):
    with pytest.raises(ImagingError, match=msg):
        Volume(arr, aff)


def test_resample_labels_nearest():
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[2:5, 3:7, 4:8] = 3
    coarse = Volume.from_spacing(lab, (2, 2, 2))
    fine = Volume.from_spacing(np.zeros((20, 20, 20)), (1, 1, 1), origin=(-0.5, -0.5, -0.5))
    out = resample_to(coarse, fine, "nearest")
    assert out.voxels.dtype == np.uint8
    assert set(np.unique(out.voxels)) == {0, 3}
    # each coarse voxel becomes 2 x 2 x 2 fine voxels
    assert (out.voxels == 3).sum() == (lab == 3).sum() * 8


# ------------------------------------------------------------------------------------------ DICOM
STORED = np.arange(4 * 5 * 6, dtype=np.int64).reshape(4, 5, 6) + 10


def test_series_geometry_and_order(tmp_path):
    write_pet_series(
        tmp_path / "pet", STORED, PetSpec(slope=1.0), spacing=(3.0, 2.0, 2.5), origin=(-7, 9, -100)
    )
    s = read_series(tmp_path / "pet")
    np.testing.assert_array_equal(s.volume.voxels, STORED)  # shuffled files and InstanceNumber are ignored
    assert s.volume.spacing == (3.0, 2.0, 2.5)
    assert s.volume.origin == (-7.0, 9.0, -100.0)
    # column index -> x with PixelSpacing[1]; row index -> y with PixelSpacing[0]
    np.testing.assert_allclose(s.volume.index_to_lps([1, 2, 3]), [-7 + 3 * 2.5, 9 + 2 * 2.0, -100 + 3.0])


def test_two_series_in_one_folder_lists_them_and_one_can_be_chosen(tmp_path):
    a, b = PetSpec(series_description="PET AC"), PetSpec(series_description="PET NAC")
    write_pet_series(tmp_path / "mixed" / "a", STORED, a)
    write_pet_series(tmp_path / "mixed" / "b", STORED * 2, b)
    with pytest.raises(ImagingError) as info:
        read_series(tmp_path / "mixed")
    msg = str(info.value)
    assert a.series_uid in msg and b.series_uid in msg and "PET NAC" in msg and "series_uid" in msg
    assert "--pet-series" in error_message(info.value)  # the command line names its flag
    s = read_series(tmp_path / "mixed", series_uid=b.series_uid)
    np.testing.assert_allclose(s.volume.voxels, STORED * 2 * b.slope)
    assert len(list_series(tmp_path / "mixed")) == 2


def test_missing_slice(tmp_path):
    write_pet_series(tmp_path / "pet", np.ones((6, 4, 4), np.int64), PetSpec(), skip_slices=(3,))
    with pytest.raises(ImagingError, match="1 slice\\(s\\) missing"):
        read_series(tmp_path / "pet")


def test_same_series_uid_twice_is_refused(tmp_path):
    uid = generate_uid()
    write_pet_series(tmp_path / "pet" / "t1", STORED, PetSpec(series_uid=uid))
    write_pet_series(tmp_path / "pet" / "t2", STORED, PetSpec(series_uid=uid))
    with pytest.raises(ImagingError, match="same slice position"):
        read_series(tmp_path / "pet")


def test_not_dicom_and_missing_folder(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("hello")
    with pytest.raises(ImagingError, match="No DICOM"):
        read_series(tmp_path / "junk")
    with pytest.raises(ImagingError, match="not found"):
        read_series(tmp_path / "nope")


def test_ct_series(tmp_path):
    hu = np.arange(60).reshape(3, 4, 5) - 30
    write_ct_series(tmp_path / "ct", hu)
    s = read_series(tmp_path / "ct", "CT")
    np.testing.assert_array_equal(s.volume.voxels, hu)
    assert s.volume.units == "HU"


def test_geometry_agrees_with_simpleitk_dicom_reader(tmp_path):
    # an independent reader (GDCM via SimpleITK) must place the voxels at the same LPS points
    write_pet_series(
        tmp_path / "pet", STORED, PetSpec(slope=0.5), spacing=(3.0, 2.0, 2.5), origin=(-7, 9, -100)
    )
    ours = read_series(tmp_path / "pet").volume
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "pet")))
    theirs = Volume.from_sitk(reader.Execute())
    np.testing.assert_allclose(theirs.affine, ours.affine, atol=1e-6)
    np.testing.assert_allclose(theirs.voxels, ours.voxels, rtol=1e-6)


def test_pickle_round_trip_stays_read_only():
    import pickle

    v = oblique_volume()
    w = pickle.loads(pickle.dumps(v))
    np.testing.assert_array_equal(w.voxels, v.voxels)
    np.testing.assert_array_equal(w.affine, v.affine)
    with pytest.raises(ValueError):
        w.voxels[0, 0, 0] = 1


def test_truncated_nifti_is_a_clear_error(tmp_path):
    import nibabel as nib

    path = tmp_path / "cut.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(27000, dtype=np.float32).reshape(30, 30, 30), np.eye(4)), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImagingError, match="truncated or corrupt"):
        Volume.from_nifti(path)
