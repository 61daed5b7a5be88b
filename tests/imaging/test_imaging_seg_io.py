"""Masks in and out: NIfTI, DICOM SEG (highdicom) round trips, RTSTRUCT rasterisation (exact counts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pet_synthetic import SECRET_ID, SECRET_NAME, PetSpec, read_all_bytes, sphere_mask, write_pet_series
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pofa.errors import ImagingError
from pofa.imaging.dicom import read_series
from pofa.imaging.seg_io import RTSTRUCT_SOP_CLASS, read_mask, read_rtstruct, read_seg, write_seg
from pofa.imaging.segment import segment_threshold
from pofa.imaging.suv import suv_from_dicom
from pofa.imaging.volume import Volume

SHAPE = (20, 30, 30)
SP = (2.0, 2.0, 2.0)
ORIGIN = (-30.0, -40.0, -100.0)  # x centres -30..28, y -40..18, z -100..-62


def pet_with_two_spheres(tmp_path: Path):
    st = np.full(SHAPE, 100, np.int64)
    st[sphere_mask(SHAPE, SP, ORIGIN, (0, -10, -80), 8.0)] = 5000
    st[sphere_mask(SHAPE, SP, ORIGIN, (-15, 0, -70), 6.0)] = 3000
    spec = PetSpec(slope=10.0)
    write_pet_series(tmp_path / "pet", st, spec, spacing=SP, origin=ORIGIN)
    return spec


def test_seg_round_trip_without_identifiers(tmp_path):
    pet_with_two_spheres(tmp_path)
    series = read_series(tmp_path / "pet")
    suv = suv_from_dicom(series).volume
    seg = segment_threshold(suv, "suv2.5")
    assert seg.n_lesions == 2
    out = write_seg(seg.labels, series, tmp_path / "out" / "seg.dcm", seg.lesion_ids, "P001")
    back = read_seg(out)
    # highdicom keeps only the non-empty frames: compare in patient space via read_mask (resamples to the PET)
    on_pet, desc = read_mask(out, suv)
    np.testing.assert_array_equal(on_pet.voxels, seg.labels.voxels)
    assert "SEG" in desc and back.voxels.max() == 2
    ds = pydicom.dcmread(out)
    assert str(ds.PatientID) == "P001" and ds.Modality == "SEG"
    assert [str(s.SegmentLabel) for s in ds.SegmentSequence] == ["lesion 1", "lesion 2"]
    blob = read_all_bytes(tmp_path / "out")
    for secret in (SECRET_NAME, SECRET_ID, "19310417", "Qwertyuiop", "ACC99887766", "20210304"):
        assert secret.encode() not in blob, secret


def test_seg_needs_pet_grid(tmp_path):
    pet_with_two_spheres(tmp_path)
    series = read_series(tmp_path / "pet")
    other = Volume.from_spacing(np.ones((2, 2, 2), np.uint8), SP)
    with pytest.raises(ImagingError, match="not on the PET grid"):
        write_seg(other, series, tmp_path / "x.dcm", ["1"], "P1")


def test_pydicom_seg_sample_reads():
    v = read_seg(get_testdata_file("liver_1frame.dcm"))
    assert v.shape == (1, 512, 512)
    assert int((v.voxels == 1).sum()) == 36233  # the liver segment's pixel count in the sample


def test_nifti_mask_on_another_grid_is_resampled(tmp_path):
    ref = Volume.from_spacing(np.zeros((10, 10, 10), np.float32), (2, 2, 2))
    fine = np.zeros((20, 20, 20), np.uint8)
    fine[4:8, 4:8, 4:8] = 1  # 4 mm cube from 1.5 to 5.5 mm at 1 mm voxels (centres 4..7 shifted by -0.5)
    Volume.from_spacing(fine, (1, 1, 1), origin=(-0.5, -0.5, -0.5)).to_nifti(tmp_path / "m.nii.gz")
    vol, desc = read_mask(tmp_path / "m.nii.gz", ref)
    assert vol.same_grid(ref) and "NIfTI" in desc
    assert vol.voxels.sum() == 8  # 2 x 2 x 2 coarse voxels
    far = Volume.from_spacing(fine, (1, 1, 1), origin=(500, 500, 500))
    far.to_nifti(tmp_path / "far.nii.gz")
    with pytest.raises(ImagingError, match="does not overlap"):
        read_mask(tmp_path / "far.nii.gz", ref)


# ------------------------------------------------------------------------------------------ RTSTRUCT
def rect(x0, x1, y0, y1, z):
    return [x0, y0, z, x1, y0, z, x1, y1, z, x0, y1, z]


def write_rtstruct(path: Path, rois) -> Path:
    """rois: [(name, interpreted_type, [contour point lists])]."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTSTRUCT_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = RTSTRUCT_SOP_CLASS
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.PatientName = SECRET_NAME
    ssroi, roic, obs = [], [], []
    for n, (name, kind, contours) in enumerate(rois, start=1):
        r = Dataset()
        r.ROINumber = n
        r.ROIName = name
        ssroi.append(r)
        c = Dataset()
        c.ReferencedROINumber = n
        items = []
        for pts in contours:
            it = Dataset()
            it.ContourGeometricType = "CLOSED_PLANAR"
            it.NumberOfContourPoints = len(pts) // 3
            it.ContourData = [float(p) for p in pts]
            items.append(it)
        c.ContourSequence = DicomSequence(items)
        roic.append(c)
        o = Dataset()
        o.ObservationNumber = n
        o.ReferencedROINumber = n
        o.RTROIInterpretedType = kind
        obs.append(o)
    ds.StructureSetROISequence = DicomSequence(ssroi)
    ds.ROIContourSequence = DicomSequence(roic)
    ds.RTROIObservationsSequence = DicomSequence(obs)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_rtstruct_rasterisation_exact_counts(tmp_path):
    ref = Volume.from_spacing(np.zeros(SHAPE, np.float32), SP, ORIGIN)
    # edges on odd mm, voxel centres on even mm: no centre lies on an edge
    gtv = [rect(-11, 9, -21, -1, z) for z in (-90, -88, -86, -84, -82, -80)]  # 10 x 10 voxels on 6 slices
    gtv.append(rect(-5, 3, -15, -7, -86))  # a hole of 4 x 4 on slice z = -86 (even-odd rule)
    node = [rect(11, 17, 1, 7, z) for z in (-90, -87, -84)]  # 3 x 3 voxels; contour planes 3 mm apart
    body = [rect(-29, 27, -39, 17, z) for z in (-90, -80)]
    p = write_rtstruct(
        tmp_path / "rs.dcm", [("GTV", "GTV", gtv), ("BODY", "EXTERNAL", body), ("node", "", node)]
    )
    lab = read_rtstruct(p, ref)
    assert int((lab.voxels == 1).sum()) == 6 * 100 - 16
    # planes -90, -87, -84: PET slices -90, -88, -86, -84 take the nearest plane; -82 is beyond half a slice
    node_mask = lab.voxels == 2
    assert int(node_mask.sum()) == 4 * 9
    z_idx = sorted(set(np.argwhere(node_mask)[:, 0].tolist()))
    assert z_idx == [5, 6, 7, 8]  # z = -90, -88, -86, -84
    only = read_rtstruct(p, ref, roi_names=["node"])
    assert int((only.voxels == 1).sum()) == 36 and only.voxels.max() == 1
    with pytest.raises(ImagingError, match="no ROI named"):
        read_rtstruct(p, ref, roi_names=["liver"])
    vol, desc = read_mask(p, ref)
    assert "RTSTRUCT" in desc and vol.voxels.max() == 2


def test_pydicom_rtstruct_sample(tmp_path):
    path = get_testdata_file("rtstruct.dcm")
    # its only contoured ROI is the EXTERNAL body outline: skipped by default
    ref = Volume.from_spacing(np.zeros((3, 31, 51), np.float32), (10, 10, 10), origin=(-245, -155, -200))
    with pytest.raises(ImagingError, match="no lesion ROI"):
        read_rtstruct(path, ref)
    # rectangles x -200..200, y -150..150 on z = -200, -190, -180: 40 x 30 centres per slice
    lab = read_rtstruct(path, ref, roi_names=["patient"])
    assert int(lab.voxels.sum()) == 3 * 40 * 30
