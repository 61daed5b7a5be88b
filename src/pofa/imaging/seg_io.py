"""Lesion masks in and out: NIfTI label maps, DICOM SEG (highdicom) and DICOM RTSTRUCT (pydicom).

Reading (:func:`read_mask`) always returns a label :class:`~pofa.imaging.volume.Volume` on the PET grid:

- NIfTI: the label map as stored (resampled with nearest neighbour when its grid differs from the PET's).
- DICOM SEG: ``highdicom.seg.Segmentation.get_volume(combine_segments=True)``; label = segment number.
- RTSTRUCT: each ROI's closed planar contours are rasterised onto the PET slices (matplotlib.path; a voxel is
  in when its centre is inside, even-odd rule so inner contours are holes). A PET slice takes the contours of
  the nearest contour plane (nearest-neighbour between planes; none beyond half a PET slice from the first and
  last plane). ROIs whose RTROIInterpretedType is EXTERNAL, ORGAN, AVOIDANCE, BOLUS, SUPPORT, FIXATION,
  CONTROL, REGISTRATION or ISOCENTER are skipped unless named in ``roi_names``. Label = ROI order (1..n).

Writing: :func:`write_label_map` (NIfTI, atomic) and :func:`write_seg` (DICOM SEG, one segment per lesion,
referencing the PET instances). The SEG takes its patient and study modules from de-identified copies of the
PET headers: name and ID become the pofa patient id; birth date, sex, age, study date/time, accession number,
study ID, referring physician, institution and other identifying attributes are emptied or removed. UIDs are
kept so that viewers can overlay the SEG on the PET.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pofa.errors import ImagingError
from pofa.imaging.volume import Volume, atomic_path, resample_to

if TYPE_CHECKING:  # pragma: no cover
    from pofa.imaging.dicom import DicomSeries

__all__ = ["read_mask", "read_rtstruct", "read_seg", "write_label_map", "write_seg", "deidentified_copy"]

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
_SKIP_ROI_TYPES = {
    "EXTERNAL",
    "ORGAN",
    "AVOIDANCE",
    "BOLUS",
    "SUPPORT",
    "FIXATION",
    "CONTROL",
    "REGISTRATION",
    "ISOCENTER",
}


def read_mask(
    path: str | os.PathLike[str], reference: Volume, roi_names: Sequence[str] | None = None
) -> tuple[Volume, str]:
    """Read a lesion mask (NIfTI, DICOM SEG or RTSTRUCT) onto ``reference``.

    A folder holding one SEG or RTSTRUCT is read as that file.

    Parameters
    ----------
    path : str or PathLike
        The mask file or folder.
    reference : Volume
        The grid read onto (the PET).
    roi_names : sequence of str or None, optional
        RTSTRUCT ROIs to keep (default: all).

    Returns
    -------
    tuple of (Volume, str)
        The label Volume on the reference grid and the kind of source ("NIfTI mask", "DICOM SEG", "RTSTRUCT";
        no file name, since descriptions go into output manifests).

    Raises
    ------
    ImagingError
        When the mask is missing, holds no NIfTI, DICOM SEG or RTSTRUCT mask, or a folder holds several.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    p = Path(path)
    if not p.exists():
        raise ImagingError(f"Mask not found: {p}.")
    if p.name.endswith((".nii", ".nii.gz")):
        vol = Volume.from_nifti(p)
        desc = "NIfTI mask"
        return _on_grid(vol, reference, desc), desc
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    found: list[tuple[Path, str]] = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, force=True)
        except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
            continue
        sop = str(ds.get("SOPClassUID", ""))
        if sop in (SEG_SOP_CLASS, RTSTRUCT_SOP_CLASS) or str(ds.get("Modality", "")) in ("SEG", "RTSTRUCT"):
            found.append((f, "SEG" if sop == SEG_SOP_CLASS or ds.get("Modality") == "SEG" else "RTSTRUCT"))
    if not found:
        raise ImagingError(f"{p} holds no NIfTI, DICOM SEG or RTSTRUCT mask.")
    if len(found) > 1:
        names = ", ".join(f.name for f, _ in found)
        raise ImagingError(f"{p} holds several masks ({names}); give the file.")
    f, kind = found[0]
    if kind == "SEG":
        vol = read_seg(f)
        desc = "DICOM SEG"
        return _on_grid(vol, reference, desc), desc
    return read_rtstruct(f, reference, roi_names), "RTSTRUCT"


def _on_grid(vol: Volume, reference: Volume, desc: str) -> Volume:
    if vol.same_grid(reference):
        return vol
    # a mask must at least overlap the PET: compare bounding boxes in LPS
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)
    a = vol.index_to_lps(corners * (np.asarray(vol.shape) - 1))
    b = reference.index_to_lps(corners * (np.asarray(reference.shape) - 1))
    if np.any(a.max(0) < b.min(0) - 1) or np.any(b.max(0) < a.min(0) - 1):
        raise ImagingError(f"The {desc} does not overlap the PET volume in patient space; wrong mask or PET?")
    return resample_to(vol, reference, "nearest")


def read_seg(path: str | os.PathLike[str]) -> Volume:
    """Read a DICOM SEG as a label Volume (label = segment number) with highdicom.

    Parameters
    ----------
    path : str or PathLike
        The DICOM SEG file.

    Returns
    -------
    Volume
        The label map.

    Raises
    ------
    ImagingError
        When the file is not a readable BINARY or LABELMAP SEG giving one 3-D label map.
    """
    import highdicom as hd

    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:  # highdicom raises several types for an invalid SEG
        raise ImagingError(f"Cannot read {Path(path).name} as DICOM SEG: {exc}") from exc
    if seg.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL:
        raise ImagingError(f"{Path(path).name} is a FRACTIONAL SEG; pofa needs a BINARY or LABELMAP SEG.")
    try:
        hv = seg.get_volume(combine_segments=True)
    except Exception as exc:  # overlapping segments, missing positions
        raise ImagingError(f"Cannot turn the SEG {Path(path).name} into one label map: {exc}") from exc
    arr = np.asarray(hv.array)
    if arr.ndim != 3:
        raise ImagingError(f"The SEG {Path(path).name} does not give a 3-D volume (shape {arr.shape}).")
    return Volume(arr, np.asarray(hv.affine), units="label")


def read_rtstruct(
    path: str | os.PathLike[str], reference: Volume, roi_names: Sequence[str] | None = None
) -> Volume:
    """Rasterise an RTSTRUCT's ROIs onto ``reference``'s grid (see the module docstring).

    Parameters
    ----------
    path : str or PathLike
        The RTSTRUCT file.
    reference : Volume
        The grid rasterised onto.
    roi_names : sequence of str or None, optional
        ROIs to keep (default: all).

    Returns
    -------
    Volume
        The label map (one label per ROI).

    Raises
    ------
    ImagingError
        When the file is not a readable RTSTRUCT, an ROI is missing or not parallel to the PET slices, or no
        lesion ROI has closed planar contours.
    """
    import pydicom
    from matplotlib.path import Path as MplPath

    p = Path(path)
    try:
        ds = pydicom.dcmread(p, force=True)
    except Exception as exc:  # any read failure is a bad file
        raise ImagingError(f"Cannot read {p.name} as RTSTRUCT: {exc}") from exc
    rois = {int(r.ROINumber): str(r.get("ROIName", "")) for r in ds.get("StructureSetROISequence", [])}
    types = {
        int(o.ReferencedROINumber): str(o.get("RTROIInterpretedType", "")).upper()
        for o in ds.get("RTROIObservationsSequence", [])
        if "ReferencedROINumber" in o
    }
    contours = ds.get("ROIContourSequence", [])
    if not contours:
        raise ImagingError(f"{p.name} has no ROIContourSequence (3006,0039).")
    wanted = None if roi_names is None else {n.lower() for n in roi_names}
    if wanted is not None:
        missing = wanted - {n.lower() for n in rois.values()}
        if missing:
            raise ImagingError(f"{p.name} has no ROI named {sorted(missing)}; ROIs: {sorted(rois.values())}.")
    out = np.zeros(reference.shape, dtype=np.uint16)
    nz, ny, nx = reference.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    label = 0
    for rc in contours:
        num = int(rc.get("ReferencedROINumber", -1))
        name = rois.get(num, str(num))
        if wanted is not None:
            if name.lower() not in wanted:
                continue
        elif types.get(num, "") in _SKIP_ROI_TYPES:
            continue
        planes: dict[float, list[np.ndarray]] = {}
        for c in rc.get("ContourSequence", []):
            if str(c.get("ContourGeometricType", "CLOSED_PLANAR")).upper() not in ("CLOSED_PLANAR", ""):
                continue
            data = np.asarray([float(v) for v in c.ContourData], dtype=np.float64).reshape(-1, 3)
            if data.shape[0] < 3:
                continue
            idx = reference.lps_to_index(data)
            a0 = idx[:, 0]
            if np.ptp(a0) > 0.5:
                raise ImagingError(
                    f"ROI {name!r} in {p.name} has a contour that is not parallel to the PET slices."
                )
            planes.setdefault(round(float(a0.mean()), 3), []).append(idx[:, 1:3])
        if not planes:
            continue
        label += 1
        levels = np.asarray(sorted(planes))
        roi_mask = np.zeros(reference.shape, dtype=bool)
        for k in range(nz):
            if k < levels[0] - 0.5 or k > levels[-1] + 0.5:
                continue
            lvl = float(levels[int(np.argmin(np.abs(levels - k)))])
            inside = np.zeros((ny, nx), dtype=bool)
            for poly in planes[lvl]:
                lo = np.maximum(np.floor(poly.min(axis=0)).astype(int), 0)
                hi = np.minimum(np.ceil(poly.max(axis=0)).astype(int) + 1, (ny, nx))
                if np.any(hi <= lo):
                    continue
                sub_y = yy[lo[0] : hi[0], lo[1] : hi[1]].ravel()
                sub_x = xx[lo[0] : hi[0], lo[1] : hi[1]].ravel()
                hit = MplPath(poly).contains_points(np.column_stack((sub_y, sub_x)))
                inside[lo[0] : hi[0], lo[1] : hi[1]] ^= hit.reshape(hi[0] - lo[0], hi[1] - lo[1])
            roi_mask[k] = inside
        free = roi_mask & (out == 0)  # overlapping ROIs: the earlier ROI keeps the voxel
        out[free] = label
    if label == 0:
        raise ImagingError(f"{p.name} has no lesion ROI with closed planar contours.")
    return reference._with_owned_voxels(out, units="label")


def write_label_map(labels: Volume, path: str | os.PathLike[str]) -> Path:
    """Write a label map as NIfTI (atomic).

    Parameters
    ----------
    labels : Volume
        The label map.
    path : str or PathLike
        The NIfTI file written.

    Returns
    -------
    pathlib.Path
        ``path`` as written.

    Raises
    ------
    ImagingError
        When the name does not end in .nii or .nii.gz.
    """
    p = Path(path)
    if not p.name.endswith((".nii", ".nii.gz")):
        raise ImagingError(f"A NIfTI label map needs a .nii or .nii.gz name; got {p.name}.")
    return labels.to_nifti(p)


_EMPTY_ATTRS = (
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
)
_DELETE_ATTRS = (
    "OtherPatientIDs",
    "OtherPatientNames",
    "OtherPatientIDsSequence",
    "PatientBirthTime",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientMotherBirthName",
    "MilitaryRank",
    "EthnicGroup",
    "PatientComments",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "OperatorsName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "RequestingPhysician",
    "StudyDescription",
    "IssuerOfPatientID",
    "PatientWeight",
    "PatientSize",
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "AcquisitionDateTime",
    "ContentDate",
    "ContentTime",
    "InstanceCreationDate",
    "InstanceCreationTime",
    "DeviceSerialNumber",
    "RequestAttributesSequence",
    "ReferencedPatientSequence",
    "ReferencedStudySequence",
    "RadiopharmaceuticalInformationSequence",
)


def deidentified_copy(ds: Any, patient_id: str) -> Any:
    """Copy a header with identifying attributes replaced (name, ID) or emptied/removed.

    Parameters
    ----------
    ds : object
        A pydicom dataset.
    patient_id : str
        Pseudonym written as PatientName and PatientID.

    Returns
    -------
    pydicom.Dataset
        The copy.
    """
    out = copy.deepcopy(ds)
    out.remove_private_tags()
    out.PatientName = patient_id if "^" in patient_id else patient_id + "^"  # one-component person name
    out.PatientID = patient_id
    for kw in _EMPTY_ATTRS:
        setattr(out, kw, "")
    for kw in _DELETE_ATTRS:
        if kw in out:
            delattr(out, kw)
    if "PixelData" in out:
        del out.PixelData
    return out


def write_seg(
    labels: Volume,
    series: DicomSeries,
    path: str | os.PathLike[str],
    lesion_ids: Sequence[str],
    patient_id: str,
    description: str = "pofa lesions",
) -> Path:
    """Write a DICOM SEG (BINARY, one segment per lesion) referencing the PET instances; atomic.

    ``labels`` must be on the PET series' grid (its slice order); lesion k is segment k.

    Parameters
    ----------
    labels : Volume
        Lesion label map on the PET series' grid.
    series : DicomSeries
        The PET series referenced.
    path : str or PathLike
        The DICOM SEG file written.
    lesion_ids : sequence of str
        Lesion id of each label (segment labels).
    patient_id : str
        Pseudonym written as PatientName and PatientID.
    description : str, optional
        Series description.

    Returns
    -------
    pathlib.Path
        ``path`` as written.

    Raises
    ------
    ImagingError
        When the label map is not on the PET grid, has no lesions or a different number of ids, or the SEG
        cannot be built.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    import pofa

    if not labels.same_grid(series.volume):
        raise ImagingError("The label map is not on the PET grid; a DICOM SEG must reference the PET slices.")
    arr = np.asarray(labels.voxels)
    n = int(arr.max()) if arr.size else 0
    if n == 0:
        raise ImagingError("There are no lesions to write to a DICOM SEG.")
    if len(lesion_ids) != n:
        raise ImagingError(f"{len(lesion_ids)} lesion ids for {n} labels.")
    sources = [deidentified_copy(h, patient_id) for h in series.headers]
    for s in sources:
        # highdicom reads geometry and pixel description only; give it an empty frame of the right size
        s.PixelData = np.zeros((int(s.Rows), int(s.Columns)), dtype=np.uint16).tobytes()
        s.BitsAllocated = 16
        s.BitsStored = 16
        s.HighBit = 15
        s.PixelRepresentation = 0
    algo = hd.AlgorithmIdentificationSequence(
        name="pofa", family=codes.cid7162.NeighborhoodAnalysis, version=pofa.__version__
    )
    descs = [
        hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=f"lesion {lesion_ids[k - 1]}"[:64],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            algorithm_identification=algo,
        )
        for k in range(1, n + 1)
    ]
    try:
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=arr.astype(np.uint16 if n < 65536 else np.uint32),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descs,
            series_instance_uid=generate_uid(),
            series_number=9001,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer="pofa",
            manufacturer_model_name="pofa",
            software_versions=pofa.__version__,
            device_serial_number="0",
            series_description=description[:64],
        )
    except Exception as exc:  # highdicom validates many attributes
        raise ImagingError(f"Cannot build the DICOM SEG: {exc}") from exc
    out = Path(path)
    with atomic_path(out) as tmp:
        seg.save_as(tmp)
    return out
