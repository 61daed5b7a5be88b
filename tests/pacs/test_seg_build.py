"""pofa.pacs.seg: a lesion label map as a DICOM SEG on a synthetic PET series, read back voxel for voxel."""

from __future__ import annotations

import io
import time
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pet_synthetic import SECRET_BIRTH, SECRET_ID, SECRET_INSTITUTION, SECRET_NAME, PetSpec, write_pet_series
from seg_readback import label_map_from_seg, source_positions

import pofa
from pofa.errors import ImagingError
from pofa.imaging.dicom import DicomSeries, read_series
from pofa.imaging.volume import Volume
from pofa.pacs.seg import COPIED_IDENTITY, LesionSegment, SegmentKind, build_seg, minimal_source, tracking_uid

# Anisotropic voxels and a non-square matrix: a swapped axis or a transposed slice cannot read back equal.
SHAPE = (12, 18, 22)
SPACING = (3.0, 2.0, 2.5)
ORIGIN = (-30.0, -40.0, -100.0)


def _series(tmp_path: Path, shape: tuple[int, int, int] = SHAPE, name: str = "pet") -> DicomSeries:
    stored = np.random.default_rng(1).integers(0, 1000, shape).astype(np.uint16)
    spec = PetSpec(extra={"StationName": "SCANNER-ROOM-7", "OperatorsName": "Operator^Secret",
                          "PatientComments": "secret comment", "StudyDescription": "PET secret study",
                          "PatientAge": "087Y", "IssuerOfPatientID": "HOSPITAL-ISSUER"})
    write_pet_series(tmp_path / name, stored, spec, spacing=SPACING, origin=ORIGIN)  # shuffled files
    return read_series(tmp_path / name)


def _labels(shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    lab = np.zeros(shape, np.uint16)
    lab[0:3, 2:6, 3:9] = 1  # touches the first slice
    lab[5, 10, 4] = 2  # one voxel
    lab[9:12, 12:17, 15:21] = 3  # touches the last slice
    lab[4:7, 2:4, 18:22] = 5  # label 4 is absent: its segment has no frame
    lab[5, 11:13, 4:6] = 6  # shares slice 5 with lesion 2
    return lab


def _segments(labels: tuple[int, ...] = (1, 2, 3, 4, 5, 6)) -> list[LesionSegment]:
    kinds = [SegmentKind.LOCAL, SegmentKind.MARGINAL, SegmentKind.DE_NOVO, SegmentKind.OUTSIDE,
             SegmentKind.LOCAL, SegmentKind.DE_NOVO]
    out = []
    for lab, kind in zip(labels, kinds, strict=False):
        base = ("2",) if kind is SegmentKind.LOCAL else ()
        tid = "lesion 2" if base else f"failure S1-F{lab}"
        out.append(LesionSegment(label=lab, kind=kind, lesion_id=f"S1-F{lab}", tracking_id=tid,
                                 tracking_uid=tracking_uid("series", tid), baseline_ids=base))
    return out


def _roundtrip(seg: hd.seg.Segmentation) -> pydicom.Dataset:
    buf = io.BytesIO()
    seg.save_as(buf)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


def test_segments_equal_the_label_map_voxel_for_voxel(tmp_path: Path) -> None:
    s = _series(tmp_path)
    lab = _labels()
    seg = build_seg(s.volume.with_voxels(lab), list(reversed(s.headers)), _segments(),
                    series_description="pofa lesions, failure scan")
    ds = _roundtrip(seg)
    # frames placed by their own ImagePositionPatient, segment by SegmentIdentificationSequence
    got, facts = label_map_from_seg(ds, s.headers)
    np.testing.assert_array_equal(got, lab)
    assert facts["derivation_ok"]
    # one frame per (segment, slice holding it); the absent label 4 has a segment but no frame
    expected = {k: int(np.any(lab == k, axis=(1, 2)).sum()) for k in (1, 2, 3, 5, 6)}
    assert facts["frames_per_segment"] == expected
    assert facts["n_frames"] == sum(expected.values())
    assert len(ds.SegmentSequence) == 6
    # highdicom's own reading, by source instance in slice order, agrees
    read = hd.seg.Segmentation.from_dataset(ds)
    _pos, uids = source_positions(s.headers)
    px = read.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1, 2, 3, 4, 5, 6],
                                            combine_segments=True, skip_overlap_checks=False)
    np.testing.assert_array_equal(px, lab)
    # the SEG's frame of reference and referenced series are the PET's
    assert ds.FrameOfReferenceUID == s.headers[0].FrameOfReferenceUID
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == s.info.series_uid
    assert ds.StudyInstanceUID == s.headers[0].StudyInstanceUID
    assert ds.SeriesInstanceUID != s.info.series_uid


def test_segment_metadata(tmp_path: Path) -> None:
    s = _series(tmp_path)
    segs = _segments()
    ds = _roundtrip(build_seg(s.volume.with_voxels(_labels()), s.headers, segs,
                              series_description="pofa lesions", segmentation_method="threshold SUV >= 4.0"))
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    labels = [str(item.SegmentLabel) for item in ds.SegmentSequence]
    assert labels == ["lesion 1: local failure", "lesion 2: marginal failure", "lesion 3: de novo",
                      "lesion 4: outside baseline scan", "lesion 5: local failure", "lesion 6: de novo"]
    for k, item in enumerate(ds.SegmentSequence, start=1):
        assert int(item.SegmentNumber) == k
        cat = item.SegmentedPropertyCategoryCodeSequence[0]
        typ = item.SegmentedPropertyTypeCodeSequence[0]
        assert (cat.CodeValue, cat.CodingSchemeDesignator) == ("49755003", "SCT")
        assert (typ.CodeValue, typ.CodingSchemeDesignator) == ("52988006", "SCT")
        assert item.SegmentAlgorithmType == "AUTOMATIC"
        algo = item.SegmentationAlgorithmIdentificationSequence[0]
        assert algo.AlgorithmName == "pofa" and algo.AlgorithmVersion == pofa.__version__
        assert algo.AlgorithmParameters == "segmentation=threshold SUV >= 4.0"
        assert item.TrackingID == segs[k - 1].tracking_id
        assert item.TrackingUID == segs[k - 1].tracking_uid
        assert len(item.RecommendedDisplayCIELabValue) == 3
    # a local failure of baseline lesion 2 keeps that lesion's tracking UID
    assert ds.SegmentSequence[0].TrackingUID == ds.SegmentSequence[4].TrackingUID
    assert ds.SegmentSequence[0].TrackingUID == tracking_uid("series", "lesion 2")
    assert "baseline lesion(s) 2" in str(ds.SegmentSequence[0].SegmentDescription)
    assert ds.SeriesDescription == "pofa lesions"
    assert ds.SoftwareVersions == pofa.__version__ and ds.Manufacturer == "pofa"


def test_baseline_segment_label() -> None:
    seg = LesionSegment(label=3, kind=SegmentKind.BASELINE, lesion_id="3", tracking_id="lesion 3",
                        tracking_uid=tracking_uid("s", "3"))
    assert seg.segment_label() == "lesion 3: baseline"
    assert tracking_uid("a", "b") == tracking_uid("a", "b") != tracking_uid("a", "c")
    assert tracking_uid("a", "b").startswith("2.25.")


def test_only_the_patient_and_study_identity_is_copied(tmp_path: Path) -> None:
    s = _series(tmp_path)
    seg = build_seg(s.volume.with_voxels(_labels()), s.headers, _segments(),
                    series_description="pofa lesions")
    buf = io.BytesIO()
    seg.save_as(buf)
    raw = buf.getvalue()
    ds = pydicom.dcmread(io.BytesIO(raw))
    src = s.headers[0]
    # the identity a PACS files the SEG under is the source's
    for kw in COPIED_IDENTITY:
        assert str(ds.get(kw, "")) == str(src.get(kw, "")), kw
    assert str(ds.PatientName) == SECRET_NAME and ds.PatientID == SECRET_ID
    assert ds.PatientBirthDate == SECRET_BIRTH and ds.IssuerOfPatientID == "HOSPITAL-ISSUER"
    # nothing else identifying: institution, staff, descriptions, device, acquisition, private tags
    for secret in (SECRET_INSTITUTION, "Doctor^Secretive", "SCANNER-ROOM-7", "Operator^Secret",
                   "secret comment", "PET secret study", "087Y", "pofa-synthetic", "PET AC synthetic",
                   "Fluorodeoxyglucose"):
        assert secret.encode() not in raw, secret
    assert ds.ReferringPhysicianName == ""
    for kw in ("InstitutionName", "StationName", "OperatorsName", "PatientWeight", "PatientSize",
               "PatientAge", "PatientComments", "StudyDescription", "SeriesDate", "AcquisitionDate",
               "AcquisitionTime", "RadiopharmaceuticalInformationSequence"):
        assert kw not in ds, kw
    assert not any(e.tag.is_private for e in ds.iterall())
    # acquisition equipment of the source is not listed as contributing equipment
    for item in ds.get("ContributingEquipmentSequence", []):
        assert "InstitutionName" not in item and "StationName" not in item
    # the whitelist copy itself
    m = minimal_source(src)
    assert {e.keyword for e in m} <= set(COPIED_IDENTITY) | {
        "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "Modality",
        "FrameOfReferenceUID", "PositionReferenceIndicator", "ImageOrientationPatient",
        "ImagePositionPatient", "PixelSpacing", "SliceThickness", "SpacingBetweenSlices", "Rows", "Columns",
        "ReferringPhysicianName"}


def test_label_map_read_from_nifti_is_on_the_grid(tmp_path: Path) -> None:
    """pofa's batch keeps label maps as NIfTI (float32 geometry): they still match the DICOM grid."""
    s = _series(tmp_path)
    path = s.volume.with_voxels(_labels()).to_nifti(tmp_path / "labels.nii.gz")
    vol = Volume.from_nifti(path)
    got, _ = label_map_from_seg(_roundtrip(build_seg(vol, s.headers, _segments(), series_description="x")),
                                s.headers)
    np.testing.assert_array_equal(got, _labels())


def test_many_lesions(tmp_path: Path) -> None:
    """300 lesions (more than a byte holds), several per slice; time of the build printed."""
    shape = (30, 64, 64)
    s = _series(tmp_path, shape)
    lab = np.zeros(shape, np.uint16)
    n = 0
    for z in range(0, 30, 3):
        for y in range(0, 60, 12):
            for x in range(0, 60, 10):
                n += 1
                lab[z:z + 2, y:y + 3 + (n % 4), x:x + 2 + (n % 3)] = n
    assert n == 300
    segs = [LesionSegment(label=k, kind=SegmentKind.BASELINE, lesion_id=str(k), tracking_id=f"lesion {k}",
                          tracking_uid=tracking_uid("s", str(k))) for k in range(1, n + 1)]
    t0 = time.perf_counter()
    seg = build_seg(s.volume.with_voxels(lab), s.headers, segs, series_description="pofa lesions, baseline")
    print(f"SEG of {n} lesions on {shape}: {time.perf_counter() - t0:.2f} s")
    got, facts = label_map_from_seg(_roundtrip(seg), s.headers)
    np.testing.assert_array_equal(got, lab)
    assert facts["n_frames"] == 2 * n and facts["derivation_ok"]


def test_refusals(tmp_path: Path) -> None:
    s = _series(tmp_path)
    lab = _labels()
    with pytest.raises(ImagingError, match="no lesions"):
        build_seg(s.volume.with_voxels(lab), s.headers, [], series_description="x")
    with pytest.raises(ImagingError, match=r"Label\(s\) \[6\]"):
        build_seg(s.volume.with_voxels(lab), s.headers, _segments((1, 2, 3, 4, 5)), series_description="x")
    dup = _segments()
    dup[1] = dup[0]
    with pytest.raises(ImagingError, match="not a new label"):
        build_seg(s.volume.with_voxels(lab), s.headers, dup, series_description="x")
    moved = s.volume.affine
    moved[:3, 3] += (0.0, 0.0, 1.5)
    with pytest.raises(ImagingError, match="not on the PET grid"):
        build_seg(Volume(lab, moved), s.headers, _segments(), series_description="x")
    with pytest.raises(ImagingError, match="shape"):
        build_seg(lab[:-1], s.headers, _segments(), series_description="x")
    with pytest.raises(ImagingError, match="shape"):
        build_seg(lab.transpose(0, 2, 1), s.headers, _segments(), series_description="x")
    with pytest.raises(ImagingError, match="integers"):
        build_seg(lab.astype(float), s.headers, _segments(), series_description="x")
    other = _series(tmp_path, name="other")
    with pytest.raises(ImagingError, match="one series"):
        build_seg(lab, [*s.headers[:6], *other.headers[6:]], _segments(), series_description="x")
    with pytest.raises(ImagingError, match="same slice position"):
        build_seg(lab, [*s.headers[:-1], s.headers[0]], _segments(), series_description="x")


def test_no_warning_quotes_the_source_identity(tmp_path: Path) -> None:
    """highdicom warns about a one-component PatientName by quoting it: pofa keeps that out of any log."""
    import warnings

    stored = np.zeros(SHAPE, np.uint16)
    write_pet_series(tmp_path / "pet", stored, PetSpec(patient_name="Quokkafrond"), spacing=SPACING,
                     origin=ORIGIN)
    s = read_series(tmp_path / "pet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seg = build_seg(s.volume.with_voxels(_labels()), s.headers, _segments(), series_description="x")
    assert str(seg.PatientName) == "Quokkafrond"
    assert not [w for w in caught if "Quokkafrond" in str(w.message)]
