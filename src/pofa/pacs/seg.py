"""A scan's lesion label map as a DICOM SEG that a PACS files beside the PET it was drawn on.

:func:`build_seg` turns pofa's label map of one PET scan (``0`` background, label ``k`` = lesion ``k``, on the
PET grid in (slice, row, column) order) and that PET series' headers into a BINARY
:class:`highdicom.seg.Segmentation` with one segment per lesion:

- **Frames**: the source headers are sorted along the normal of ImageOrientationPatient (as
  :func:`pofa.imaging.dicom.read_series` sorts slices, never by InstanceNumber), so label-map slice ``i`` is
  the ``i``-th source image; highdicom writes one frame per (segment, slice holding that segment) with the
  slice's ImagePositionPatient and its SOP instance in the frame's derivation sequence.
- **Segments**: numbered 1..n in the order given; each carries the coded concepts SegmentedPropertyCategory
  SCT 49755003 "Morphologically abnormal structure" and SegmentedPropertyType SCT 52988006 "Lesion", a
  label such as ``lesion 3: local failure`` (:meth:`LesionSegment.segment_label`), a tracking id and UID (the
  same finding keeps its tracking UID between the baseline SEG and a failure SEG), a display colour by class,
  and the algorithm (``pofa``, its version, the segmentation rule). A lesion label absent from the map (no
  voxel) still gets its segment, with no frame.
- **Identity**: a SEG must carry its source's patient and study identity, or a PACS files it under another
  patient and no viewer shows it beside the scan. So the SEG copies the Patient module's PatientName,
  PatientID, IssuerOfPatientID, PatientBirthDate and PatientSex, and the study's StudyInstanceUID, StudyDate,
  StudyTime, StudyID and AccessionNumber (the study-level values every instance of that study carries), and
  nothing else identifying: :func:`minimal_source` hands highdicom a whitelisted copy of each header, so no
  institution, station, device serial number, operator, physician (ReferringPhysicianName is left empty),
  study description, patient age, size, weight, comments, other IDs, acquisition dates or private tags reach
  the SEG. Such a SEG is meant for the PACS that holds the scan; pofa never writes it into its output folders.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pofa.errors import ImagingError
from pofa.pacs.errors import SegEncodingError

if TYPE_CHECKING:  # pragma: no cover
    import highdicom as hd
    from pydicom.dataset import Dataset

    from pofa.imaging.volume import Volume

__all__ = [
    "COPIED_IDENTITY",
    "LesionSegment",
    "SegmentKind",
    "build_seg",
    "minimal_source",
    "sort_sources",
    "tracking_uid",
]

#: Identifying attributes a SEG copies from its source PET (patient and study identity; see the module text).
COPIED_IDENTITY: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
)
#: Non-identifying attributes highdicom reads from a source image: character set, SOP and series identity
#: (the SEG references them), frame of reference and geometry.
_COPIED_TECHNICAL: tuple[str, ...] = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "FrameOfReferenceUID",
    "PositionReferenceIndicator",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "Rows",
    "Columns",
)
#: Type 2 identity attributes highdicom requires: present (empty) when the source lacks them.
_TYPE2: tuple[str, ...] = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                           "StudyTime", "StudyID", "AccessionNumber")
#: A label map's affine may differ from the DICOM geometry by float32 rounding (NIfTI stores float32): mm.
_GRID_ATOL_MM = 1e-2
#: The coded concepts of every segment (value, scheme, meaning).
_SEGMENT_CATEGORY = ("49755003", "SCT", "Morphologically abnormal structure")
_SEGMENT_TYPE = ("52988006", "SCT", "Lesion")


class SegmentKind(enum.StrEnum):
    """What a segment is: a baseline lesion, or a failure lesion of a class (pofa.vocabulary.MatchClass)."""

    BASELINE = "baseline"
    LOCAL = "local"
    MARGINAL = "marginal"
    DE_NOVO = "de novo"
    OUTSIDE = "outside baseline scan"


#: Words of each kind in a segment label.
_KIND_TEXT: dict[SegmentKind, str] = {
    SegmentKind.BASELINE: "baseline",
    SegmentKind.LOCAL: "local failure",
    SegmentKind.MARGINAL: "marginal failure",
    SegmentKind.DE_NOVO: "de novo",
    SegmentKind.OUTSIDE: "outside baseline scan",
}
#: Display colour of each kind (sRGB, 0-255): the report's Okabe-Ito palette (local vermillion, marginal
#: orange, de novo blue, baseline bluish green, outside the baseline scan grey).
_KIND_RGB: dict[SegmentKind, tuple[int, int, int]] = {
    SegmentKind.BASELINE: (0x00, 0x9E, 0x73),
    SegmentKind.LOCAL: (0xD5, 0x5E, 0x00),
    SegmentKind.MARGINAL: (0xE6, 0x9F, 0x00),
    SegmentKind.DE_NOVO: (0x00, 0x72, 0xB2),
    SegmentKind.OUTSIDE: (0x99, 0x99, 0x99),
}


@dataclass(frozen=True, slots=True)
class LesionSegment:
    """One lesion of a label map as a SEG segment.

    Attributes
    ----------
    label : int
        The lesion's value in the label map (>= 1).
    kind : SegmentKind
        Baseline lesion, or the failure lesion's class.
    lesion_id : str
        pofa's id of the lesion: the baseline ``lesion_id`` (lesions.csv) or the ``failure_id`` (failures.csv,
        ``S<k>-F<label>``).
    baseline_ids : tuple of str
        Local failures: the baseline lesions it covers (several for a merge); else empty.
    tracking_id : str
        The finding's tracking id (the same finding across scans keeps it): ``lesion <baseline id>`` for a
        baseline lesion and a local failure of one baseline lesion, else ``failure <failure id>``.
    tracking_uid : str
        The finding's tracking UID (see :func:`tracking_uid`).
    """

    label: int
    kind: SegmentKind
    lesion_id: str
    tracking_id: str
    tracking_uid: str
    baseline_ids: tuple[str, ...] = ()

    def segment_label(self) -> str:
        """The segment's label (SegmentLabel, at most 64 characters).

        Returns
        -------
        str
            ``lesion <n>: <class>``: the baseline lesion id, or the follow-up label for a failure lesion.
        """
        n = self.lesion_id if self.kind is SegmentKind.BASELINE else str(self.label)
        return f"lesion {n}: {_KIND_TEXT[self.kind]}"[:64]

    def description(self) -> str:
        """A sentence for the segment's SegmentDescription (0062,0006).

        Returns
        -------
        str
            Which pofa table row the lesion is, and the baseline lesions a local failure covers.
        """
        if self.kind is SegmentKind.BASELINE:
            return f"pofa baseline lesion {self.lesion_id} (lesions.csv lesion_id)"
        text = f"pofa failure lesion {self.lesion_id} (failures.csv failure_id), {_KIND_TEXT[self.kind]}"
        if self.baseline_ids:
            text += f" of baseline lesion(s) {', '.join(self.baseline_ids)}"
        return text


def tracking_uid(*parts: str) -> str:
    """A deterministic UID for a tracked finding: ``2.25.`` + a name-based UUID (version 5) of ``parts``.

    pofa derives it from the baseline PET's SeriesInstanceUID and the baseline lesion id, so the baseline SEG
    and every failure SEG give a locally failed lesion the same tracking UID.

    Parameters
    ----------
    *parts : str
        The entropy sources.

    Returns
    -------
    str
        The UID.
    """
    import uuid

    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, chr(0).join(('pofa tracked finding', *parts))).int}"


def minimal_source(ds: Dataset) -> Dataset:
    """A copy of a source image header with only what the SEG needs (see the module text).

    Parameters
    ----------
    ds : pydicom.Dataset
        A PET header.

    Returns
    -------
    pydicom.Dataset
        Its identity (:data:`COPIED_IDENTITY`; Type 2 attributes empty when missing), SOP/series identity,
        frame of reference and geometry; nothing else.
    """
    from pydicom.dataset import Dataset

    out = Dataset()
    for kw in (*_COPIED_TECHNICAL, *COPIED_IDENTITY):
        if kw in ds:
            out[kw] = ds[kw]  # the element (value and VR), not a re-typed value
    for kw in _TYPE2:
        if kw not in out:
            setattr(out, kw, "")
    out.ReferringPhysicianName = ""
    return out


def _normal(ds: Dataset, what: str) -> np.ndarray:
    try:
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient], dtype=np.float64)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ImagingError(f"{what}: ImageOrientationPatient (0020,0037) is missing or not numeric.") from exc
    if iop.shape != (6,):
        raise ImagingError(f"{what}: ImageOrientationPatient (0020,0037) must have 6 values.")
    return np.cross(iop[:3], iop[3:])


def _position(ds: Dataset, what: str) -> np.ndarray:
    try:
        pos = np.asarray([float(v) for v in ds.ImagePositionPatient], dtype=np.float64)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ImagingError(f"{what}: ImagePositionPatient (0020,0032) is missing or not numeric.") from exc
    if pos.shape != (3,):
        raise ImagingError(f"{what}: ImagePositionPatient (0020,0032) must have 3 values.")
    return pos


def sort_sources(sources: Sequence[Dataset]) -> list[Dataset]:
    """The headers of one single-frame series in slice order: by position along the slice normal.

    The same order as :func:`pofa.imaging.dicom.read_series` gives its volume, so label-map slice ``i`` is
    the ``i``-th header.

    Parameters
    ----------
    sources : sequence of pydicom.Dataset
        The series' headers, in any order.

    Returns
    -------
    list of pydicom.Dataset
        The same headers sorted.

    Raises
    ------
    ImagingError
        When there are none, they come from several series, lack geometry, or two share a position.
    """
    if not sources:
        raise ImagingError("A DICOM SEG needs the source PET images; none were given.")
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in sources}
    if len(series) != 1:
        raise ImagingError(f"The source images of a DICOM SEG must be one series; got {len(series)}.")
    normal = _normal(sources[0], "source image 1")
    dist = np.asarray([_position(ds, f"source image {i + 1}") @ normal for i, ds in enumerate(sources)])
    order = np.argsort(dist, kind="stable")
    if order.size > 1 and np.any(np.diff(dist[order]) < 1e-3):
        raise ImagingError("Two source images of the DICOM SEG lie at the same slice position.")
    return [sources[int(i)] for i in order]


def _source_affine(sorted_sources: Sequence[Dataset]) -> np.ndarray:
    """Index (slice, row, column) -> LPS mm affine of sorted single-frame headers (as read_series)."""
    ds0 = sorted_sources[0]
    iop = np.asarray([float(v) for v in ds0.ImageOrientationPatient], dtype=np.float64)
    row_dir, col_dir = iop[:3], iop[3:]
    ps = [float(v) for v in ds0.PixelSpacing]
    pos0 = _position(ds0, "source image 1")
    aff = np.eye(4)
    if len(sorted_sources) > 1:
        aff[:3, 0] = (_position(sorted_sources[-1], "last source image") - pos0) / (len(sorted_sources) - 1)
    else:
        aff[:3, 0] = np.cross(row_dir, col_dir) * float(ds0.get("SliceThickness", 1) or 1)
    aff[:3, 1] = col_dir * ps[0]
    aff[:3, 2] = row_dir * ps[1]
    aff[:3, 3] = pos0
    return aff


def _check_grid(labels: np.ndarray, affine: np.ndarray | None, sources: Sequence[Dataset]) -> None:
    rows, cols = int(sources[0].Rows), int(sources[0].Columns)
    if labels.ndim != 3 or labels.shape != (len(sources), rows, cols):
        raise ImagingError(f"The label map's shape {labels.shape} is not the PET's (slices, rows, columns) = "
                           f"{(len(sources), rows, cols)}; a DICOM SEG must be on the PET grid.")
    for i, ds in enumerate(sources):
        if int(ds.Rows) != rows or int(ds.Columns) != cols:
            raise ImagingError(f"Source image {i + 1} has another matrix size than the first.")
    if affine is not None:
        ref = _source_affine(sources)
        if not np.allclose(affine, ref, atol=_GRID_ATOL_MM):
            worst = float(np.max(np.abs(affine - ref)))
            raise ImagingError(f"The label map is not on the PET grid (geometry differs by up to {worst:.3g} "
                               "mm); a DICOM SEG must be on the grid of the PET it references.")


def _code(c: tuple[str, str, str]) -> Any:
    import highdicom as hd

    return hd.sr.CodedConcept(value=c[0], scheme_designator=c[1], meaning=c[2])


def build_seg(
    labels: Volume | np.ndarray,
    sources: Sequence[Dataset],
    segments: Sequence[LesionSegment],
    *,
    series_description: str,
    series_number: int = 9001,
    segmentation_method: str = "",
    automatic: bool = True,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> hd.seg.Segmentation:
    """Build a BINARY DICOM SEG of a lesion label map on the grid of the PET series it references.

    Parameters
    ----------
    labels : Volume or numpy.ndarray
        The label map, (slice, row, column) on the PET grid (slices sorted along the normal). A
        :class:`~pofa.imaging.volume.Volume`'s affine is checked against the headers' geometry (within 0.01
        mm); a bare array only by shape.
    sources : sequence of pydicom.Dataset
        Headers of the PET series, any order (sorted here by position; pixel data not needed).
    segments : sequence of LesionSegment
        One per lesion: segment ``k`` (1-based) is ``segments[k - 1]``. Every nonzero label of the map must
        have a segment; a segment whose label has no voxel gets no frame.
    series_description : str
        SeriesDescription of the SEG (at most 64 characters kept).
    series_number : int, optional
        SeriesNumber of the SEG.
    segmentation_method : str, optional
        How pofa delineated the lesions (recorded as an algorithm parameter).
    automatic : bool, optional
        AUTOMATIC (a threshold rule) or SEMIAUTOMATIC (a given mask, relabelled by pofa).
    series_uid, sop_uid : str or None, optional
        UIDs of the SEG (default: new ones).

    Returns
    -------
    highdicom.seg.Segmentation
        The SEG (a pydicom Dataset).

    Raises
    ------
    ImagingError
        No segment, a label without segment or two segments for one label, a label map not on the PET grid,
        or source images that are not one series.
    pofa.pacs.errors.SegEncodingError
        highdicom refuses the input (the message names the PET series and the error class only).
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    import pofa
    from pofa.imaging.volume import Volume

    if not segments:
        raise ImagingError("There are no lesions, so there is no DICOM SEG to build.")
    arr = np.asarray(labels.voxels if isinstance(labels, Volume) else labels)
    affine = np.asarray(labels.affine) if isinstance(labels, Volume) else None
    if not np.issubdtype(arr.dtype, np.integer):
        raise ImagingError(f"A label map must hold integers; got {arr.dtype}.")
    ordered = sort_sources(sources)
    _check_grid(arr, affine, ordered)
    by_label: dict[int, int] = {}
    for k, s in enumerate(segments, start=1):
        if s.label < 1 or s.label in by_label:
            raise ImagingError(f"Segment {k}: label {s.label} is not a new label >= 1.")
        by_label[s.label] = k
    present = np.unique(arr)
    present = present[present != 0]
    missing = [int(v) for v in present if int(v) not in by_label]
    if missing:
        raise ImagingError(f"Label(s) {missing[:10]} of the label map have no segment.")
    remap = np.zeros(max(int(present.max()) if present.size else 0, max(by_label)) + 1, dtype=np.uint32)
    for lab, k in by_label.items():
        remap[lab] = k
    n = len(segments)
    pixel = remap[arr].astype(np.uint16 if n < 65536 else np.uint32)
    params: dict[str, str] = {"segmentation": segmentation_method} if segmentation_method else {}
    algo = hd.AlgorithmIdentificationSequence(
        name="pofa", family=codes.cid7162.NeighborhoodAnalysis, version=pofa.__version__,
        parameters=params or None)
    descs = []
    for k, s in enumerate(segments, start=1):
        d = hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=s.segment_label(),
            segmented_property_category=_code(_SEGMENT_CATEGORY),
            segmented_property_type=_code(_SEGMENT_TYPE),
            algorithm_type=(hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if automatic
                            else hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC),
            algorithm_identification=algo,
            tracking_id=s.tracking_id[:64],
            tracking_uid=s.tracking_uid,
            display_color=hd.color.CIELabColor.from_rgb(*_KIND_RGB[s.kind]),
        )
        d.SegmentDescription = s.description()
        descs.append(d)
    try:
        with warnings.catch_warnings():
            # highdicom and pydicom warn about unusual values by quoting them (a one-component PatientName,
            # a malformed date): the source's identity must not reach a terminal or a log
            warnings.simplefilter("ignore")
            seg = hd.seg.Segmentation(
                source_images=[minimal_source(ds) for ds in ordered],
                pixel_array=pixel,
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=descs,
                series_instance_uid=series_uid or generate_uid(),
                series_number=series_number,
                sop_instance_uid=sop_uid or generate_uid(),
                instance_number=1,
                manufacturer="pofa",
                manufacturer_model_name="pofa",
                software_versions=pofa.__version__,
                device_serial_number="0",
                series_description=series_description[:64],
                content_label="LESIONS",
                content_description="pofa lesions",
            )
    except Exception as exc:  # highdicom validates many attributes and raises several types
        # its message may quote a header value (the patient's name or id): only the error's class is passed on
        uid = str(getattr(ordered[0], "SeriesInstanceUID", "")) if ordered else ""
        raise SegEncodingError(f"Cannot build the DICOM SEG of PET series {uid or '(no UID)'}: highdicom "
                               f"refused it ({type(exc).__name__})") from None
    return seg
