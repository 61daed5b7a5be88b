"""DICOM RT objects read with pydicom and numpy: RTDOSE grids, RTPLAN prescriptions, RTSTRUCT structures.

RTDOSE (DICOM PS3.3 C.8.8.3, RT Dose module):

- dose = stored pixel value x DoseGridScaling (3004,000E); a grid without DoseGridScaling is refused.
- Frame ``k`` lies at ImagePositionPatient + GridFrameOffsetVector[k] x normal, the normal being the cross
  product of the row and column directions of ImageOrientationPatient. The offsets are *relative* (the first
  is 0) or, for axial grids only, *absolute* (the first equals the z of ImagePositionPatient); they need not
  be evenly spaced, and may decrease (the frames are then reversed so that they increase).
- Pixel ``(r, c)`` of a frame lies at ImagePositionPatient + c x PixelSpacing[1] x row direction + r x
  PixelSpacing[0] x column direction (PixelSpacing is row spacing, column spacing).
- DoseUnits GY is taken as is; RELATIVE (some vendors write it) is read with a warning, its values taken as
  fractions of the prescription. DoseSummationType FRACTION is one fraction's dose and is multiplied by the
  number of fractions; BEAM, CONTROL_POINT and BRACHY grids hold only part of a plan's dose (a warning).

No identifying attribute (names, ids, dates) is copied out of any file: the objects below hold geometry,
dose values, UIDs of the frame of reference and plan, and the file's name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pofa.errors import ImagingError

__all__ = ["DoseGrid", "PlanInfo", "Structure", "read_rtdose", "read_rtplan", "read_structures",
           "check_plan_matches"]

#: Summation types whose grid is only part of the plan's dose.
_PARTIAL_SUMMATIONS = ("BEAM", "CONTROL_POINT", "BRACHY")
#: Index tolerance (in voxels) for a point on the edge of the grid.
_EDGE = 1e-3


def _floats(value: Any, n: int | None, name: str, file: str) -> NDArray[np.float64]:
    """A DICOM number or list of numbers as a finite float array of ``n`` values (any ``n`` when None)."""
    many = hasattr(value, "__iter__") and not isinstance(value, (str, bytes))
    try:
        arr = np.asarray([float(v) for v in (value if many else [value])], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ImagingError(f"{file}: {name} is not a list of numbers ({exc}).") from exc
    if n is not None and arr.size != n:
        raise ImagingError(f"{file}: {name} must hold {n} numbers; it holds {arr.size}.")
    if not np.all(np.isfinite(arr)):
        raise ImagingError(f"{file}: {name} holds a non-finite number.")
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class DoseGrid:
    """A 3-D dose grid in Gy with its geometry in patient LPS millimetres.

    Attributes
    ----------
    dose_gy : numpy.ndarray
        Dose in Gy, axes (frame, row, column); frames ordered by increasing offset along ``normal``.
    origin : numpy.ndarray
        ImagePositionPatient: the centre of pixel (0, 0) of the frame at offset 0 (mm).
    row_dir, col_dir : numpy.ndarray
        Unit vectors of increasing column index and increasing row index (ImageOrientationPatient).
    pixel_spacing : tuple of float
        (row spacing, column spacing) in mm: the step along ``col_dir`` and along ``row_dir``.
    offsets_mm : numpy.ndarray
        Increasing positions of the frames along ``normal`` from ``origin`` (mm), possibly uneven.
    frame_of_reference_uid : str
        FrameOfReferenceUID of the grid ("" when absent).
    units : str
        DoseUnits as read (``"GY"`` or ``"RELATIVE"``); the values are in Gy either way.
    summation_type : str
        DoseSummationType.
    referenced_plan_uid : str
        The SOP Instance UID of the RTPLAN the grid names ("" when none).
    source : str
        The file's name (for messages).
    warnings : tuple of str
        What the reader noticed and accepted (relative units, a partial summation).
    """

    dose_gy: NDArray[np.float64]
    origin: NDArray[np.float64]
    row_dir: NDArray[np.float64]
    col_dir: NDArray[np.float64]
    pixel_spacing: tuple[float, float]
    offsets_mm: NDArray[np.float64]
    frame_of_reference_uid: str
    units: str
    summation_type: str
    referenced_plan_uid: str
    source: str
    warnings: tuple[str, ...] = ()

    @property
    def normal(self) -> NDArray[np.float64]:
        """Unit normal of the frames (row direction x column direction).

        Returns
        -------
        numpy.ndarray
            Unit normal of the frames (row direction x column direction).
        """
        return np.asarray(np.cross(self.row_dir, self.col_dir), dtype=np.float64)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(frames, rows, columns).

        Returns
        -------
        tuple of (int, int, int)
            (frames, rows, columns).
        """
        s = self.dose_gy.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    def index_to_lps(self, index: ArrayLike) -> NDArray[np.float64]:
        """Map points (n, 3) of fractional (frame, row, column) indices to LPS mm.

        Parameters
        ----------
        index : array_like, shape (n, 3)
            Fractional indices; the frame index is interpolated linearly between the frames' offsets.

        Returns
        -------
        numpy.ndarray, shape (n, 3)
            LPS coordinates in mm.
        """
        idx = np.atleast_2d(np.asarray(index, dtype=np.float64))
        k = np.arange(self.shape[0], dtype=np.float64)
        w = np.interp(idx[:, 0], k, self.offsets_mm) if self.shape[0] > 1 else np.full(
            idx.shape[0], self.offsets_mm[0])
        return np.asarray(self.origin[None, :] + np.outer(idx[:, 2] * self.pixel_spacing[1], self.row_dir)
                          + np.outer(idx[:, 1] * self.pixel_spacing[0], self.col_dir)
                          + np.outer(w, self.normal), dtype=np.float64)

    def lps_to_index(self, xyz: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """LPS points (n, 3) -> fractional (frame, row, column) indices and whether each is in the grid.

        Parameters
        ----------
        xyz : array_like, shape (n, 3)
            Points in LPS mm.

        Returns
        -------
        index : numpy.ndarray, shape (n, 3)
            Fractional indices, the frame index linear in the offset between the two enclosing frames.
        inside : numpy.ndarray of bool, shape (n,)
            The point lies within the grid's sample points (edges included).
        """
        p = np.atleast_2d(np.asarray(xyz, dtype=np.float64)) - self.origin[None, :]
        col = p @ self.row_dir / self.pixel_spacing[1]
        row = p @ self.col_dir / self.pixel_spacing[0]
        w = p @ self.normal
        nk, nr, nc = self.shape
        off = self.offsets_mm
        if nk > 1:
            k = np.interp(w, off, np.arange(nk, dtype=np.float64))
            tol = _EDGE * float(np.min(np.diff(off)))
            in_k = (w >= off[0] - tol) & (w <= off[-1] + tol)
        else:
            k = np.zeros_like(w)
            in_k = np.abs(w - off[0]) <= 1e-3
        inside = in_k & (row >= -_EDGE) & (row <= nr - 1 + _EDGE) & (col >= -_EDGE) & (col <= nc - 1 + _EDGE)
        return np.column_stack((k, row, col)), np.asarray(inside, dtype=bool)

    def sample(self, xyz: ArrayLike) -> NDArray[np.float64]:
        """Dose (Gy) at LPS points by trilinear interpolation between the grid's sample points.

        Parameters
        ----------
        xyz : array_like, shape (n, 3)
            Points in LPS mm, all within the grid.

        Returns
        -------
        numpy.ndarray, shape (n,)
            Dose in Gy.

        Raises
        ------
        pofa.errors.ImagingError
            When a point lies outside the grid.
        """
        from scipy import ndimage

        idx, inside = self.lps_to_index(xyz)
        if not np.all(inside):
            raise ImagingError(f"{self.source}: {int((~inside).sum())} point(s) lie outside the dose grid.")
        hi = np.asarray(self.shape, dtype=np.float64) - 1.0
        idx = np.clip(idx, 0.0, hi[None, :])
        return np.asarray(ndimage.map_coordinates(self.dose_gy, idx.T, order=1, mode="nearest"),
                          dtype=np.float64)

    def isodose_surface(self, level_gy: float) -> NDArray[np.float64]:
        """Find the points (n, 3) in LPS mm where the trilinear dose crosses ``level_gy`` along grid edges.

        Along each edge between two neighbouring sample points on either side of the level, the crossing
        is placed by linear interpolation (the same model as :meth:`sample`): the vertices marching cubes
        would give.

        Parameters
        ----------
        level_gy : float
            The isodose level in Gy.

        Returns
        -------
        numpy.ndarray, shape (n, 3)
            Surface points (empty when the level is nowhere crossed inside the grid).
        """
        d = self.dose_gy
        above = d >= level_gy
        pts: list[NDArray[np.float64]] = []
        for axis in range(3):
            if d.shape[axis] < 2:
                continue
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis] = slice(0, -1)
            hi[axis] = slice(1, None)
            a, b = d[tuple(lo)], d[tuple(hi)]
            cross = above[tuple(lo)] != above[tuple(hi)]
            where = np.argwhere(cross).astype(np.float64)
            if where.size == 0:
                continue
            da, db = a[cross], b[cross]
            t = (level_gy - da) / (db - da)
            where[:, axis] += t
            pts.append(where)
        if not pts:
            return np.zeros((0, 3), dtype=np.float64)
        return self.index_to_lps(np.concatenate(pts))


def read_rtdose(path: str | os.PathLike[str], prescription_gy: float | None = None,
                fractions: int | None = None) -> DoseGrid:
    """Read an RTDOSE file into a :class:`DoseGrid` in Gy.

    Parameters
    ----------
    path : path-like
        The RTDOSE file.
    prescription_gy : float, optional
        The prescription; needed for a grid in RELATIVE units (values are fractions of it).
    fractions : int, optional
        Number of fractions; needed for a grid whose DoseSummationType is FRACTION.

    Returns
    -------
    DoseGrid
        The grid, frames ordered by increasing offset.

    Raises
    ------
    pofa.errors.ImagingError
        When the file is not a readable RTDOSE, lacks DoseGridScaling or a geometry attribute, its frame
        offsets are neither relative nor absolute or not monotonic, or relative units come without a
        prescription.
    """
    import pydicom

    p = Path(path)
    name = p.name
    try:
        ds = pydicom.dcmread(p, force=True)
    except Exception as exc:  # any failure to parse is a bad file
        raise ImagingError(f"Cannot read {name} as DICOM: {exc}.") from exc
    if str(ds.get("Modality", "")).upper() != "RTDOSE":
        raise ImagingError(f"{name} is not an RTDOSE (Modality {str(ds.get('Modality', '')) or 'absent'}).")
    problems = [f"{name} has no {tag}" for tag in ("DoseGridScaling", "ImagePositionPatient",
                                                   "ImageOrientationPatient", "PixelSpacing", "PixelData")
                if tag not in ds]
    if problems:
        raise ImagingError("; ".join(problems) + ": the dose grid cannot be used.")
    scaling = float(_floats(ds.DoseGridScaling, 1, "DoseGridScaling", name)[0])
    if scaling <= 0:
        raise ImagingError(f"{name}: DoseGridScaling {scaling:g} is not positive.")
    ipp = _floats(ds.ImagePositionPatient, 3, "ImagePositionPatient", name)
    iop = _floats(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", name)
    spacing = _floats(ds.PixelSpacing, 2, "PixelSpacing", name)
    if np.any(spacing <= 0):
        raise ImagingError(f"{name}: PixelSpacing {spacing.tolist()} is not positive.")
    row_dir, col_dir = iop[:3], iop[3:]
    nr, nc = np.linalg.norm(row_dir), np.linalg.norm(col_dir)
    if abs(nr - 1) > 1e-3 or abs(nc - 1) > 1e-3 or abs(float(row_dir @ col_dir)) > 1e-3:
        raise ImagingError(
            f"{name}: ImageOrientationPatient {iop.tolist()} is not two orthogonal unit vectors.")
    row_dir, col_dir = row_dir / nr, col_dir / nc
    try:
        arr = np.asarray(ds.pixel_array, dtype=np.float64)
    except Exception as exc:  # decoding errors of any kind
        raise ImagingError(f"Cannot decode the pixel data of {name}: {exc}.") from exc
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ImagingError(f"{name}: the dose pixel data has shape {arr.shape}, not (frames, rows, columns).")
    nk = arr.shape[0]
    if "GridFrameOffsetVector" in ds and ds.GridFrameOffsetVector is not None:
        off = _floats(ds.GridFrameOffsetVector, None, "GridFrameOffsetVector", name)
    elif nk == 1:
        off = np.zeros(1)
    else:
        raise ImagingError(f"{name} has {nk} frames but no GridFrameOffsetVector.")
    if off.size != nk:
        raise ImagingError(f"{name}: GridFrameOffsetVector has {off.size} values for {nk} frames.")
    warnings: list[str] = []
    if off[0] != 0.0:
        axial = np.allclose(iop, [1, 0, 0, 0, 1, 0], atol=1e-4)
        if axial and abs(off[0] - ipp[2]) <= 1e-3:
            off = off - ipp[2]  # absolute z positions (permitted for axial grids only)
        else:
            raise ImagingError(
                f"{name}: GridFrameOffsetVector starts at {off[0]:g}, neither 0 (relative offsets) nor the z "
                f"of ImagePositionPatient {ipp[2]:g} on an axial grid (absolute positions).")
    steps = np.diff(off)
    if nk > 1 and np.all(steps < 0):
        off, arr = off[::-1].copy(), arr[::-1].copy()
        steps = np.diff(off)
    if nk > 1 and not np.all(steps > 0):
        raise ImagingError(f"{name}: GridFrameOffsetVector is not strictly increasing or decreasing.")
    dose = arr * scaling
    units = str(ds.get("DoseUnits", "GY")).upper() or "GY"
    if units == "RELATIVE":
        if prescription_gy is None:
            raise ImagingError(f"{name} holds RELATIVE dose: give the prescription to turn it into Gy.")
        dose = dose * float(prescription_gy)
        warnings.append(f"{name}: DoseUnits RELATIVE; values taken as fractions of the prescription "
                        f"({float(prescription_gy):g} Gy).")
    elif units != "GY":
        raise ImagingError(f"{name}: DoseUnits {units!r} is neither GY nor RELATIVE.")
    summation = str(ds.get("DoseSummationType", "")).upper()
    if summation == "FRACTION":
        if fractions is None:
            raise ImagingError(f"{name} holds one fraction's dose (DoseSummationType FRACTION): give the "
                               "number of fractions.")
        dose = dose * int(fractions)
        warnings.append(f"{name}: DoseSummationType FRACTION; multiplied by {int(fractions)} fractions.")
    elif summation in _PARTIAL_SUMMATIONS:
        warnings.append(
            f"{name}: DoseSummationType {summation}: the grid holds only part of the plan's dose.")
    for a in (dose, ipp, row_dir, col_dir, off):
        a.flags.writeable = False  # the grid is immutable
    plan_uid = ""
    ref = ds.get("ReferencedRTPlanSequence")
    if ref:
        plan_uid = str(ref[0].get("ReferencedSOPInstanceUID", ""))
    return DoseGrid(dose_gy=dose, origin=ipp, row_dir=row_dir, col_dir=col_dir,
                    pixel_spacing=(float(spacing[0]), float(spacing[1])), offsets_mm=off,
                    frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")), units=units,
                    summation_type=summation, referenced_plan_uid=plan_uid, source=name,
                    warnings=tuple(warnings))


@dataclass(frozen=True, slots=True)
class PlanInfo:
    """What pofa takes from an RTPLAN.

    Attributes
    ----------
    prescription_gy : float or None
        The highest TargetPrescriptionDose of the plan's TARGET dose references.
    fractions : int or None
        NumberOfFractionsPlanned of the first fraction group.
    frame_of_reference_uid : str
        FrameOfReferenceUID ("" when the plan has none).
    sop_instance_uid : str
        The plan's SOP Instance UID.
    source : str
        The file's name.
    """

    prescription_gy: float | None
    fractions: int | None
    frame_of_reference_uid: str
    sop_instance_uid: str
    source: str


def read_rtplan(path: str | os.PathLike[str]) -> PlanInfo:
    """Read the prescription, fractions and frame of reference of an RTPLAN.

    Parameters
    ----------
    path : path-like
        The RTPLAN file.

    Returns
    -------
    PlanInfo
        Prescription and fractions (None when the plan does not state them).

    Raises
    ------
    pofa.errors.ImagingError
        When the file is not a readable RTPLAN.
    """
    import pydicom

    p = Path(path)
    try:
        ds = pydicom.dcmread(p, force=True, stop_before_pixels=True)
    except Exception as exc:  # any failure to parse is a bad file
        raise ImagingError(f"Cannot read {p.name} as DICOM: {exc}.") from exc
    if str(ds.get("Modality", "")).upper() != "RTPLAN":
        raise ImagingError(f"{p.name} is not an RTPLAN (Modality {str(ds.get('Modality', '')) or 'absent'}).")
    doses = []
    for item in ds.get("DoseReferenceSequence", []) or []:
        if str(item.get("DoseReferenceType", "")).upper() == "TARGET" and "TargetPrescriptionDose" in item:
            try:
                doses.append(float(item.TargetPrescriptionDose))
            except (TypeError, ValueError):
                continue
    fractions: int | None = None
    groups = ds.get("FractionGroupSequence", []) or []
    if groups and "NumberOfFractionsPlanned" in groups[0]:
        try:
            fractions = int(groups[0].NumberOfFractionsPlanned)
        except (TypeError, ValueError):
            fractions = None
    return PlanInfo(prescription_gy=max(doses) if doses else None, fractions=fractions,
                    frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "") or ""),
                    sop_instance_uid=str(ds.get("SOPInstanceUID", "")), source=p.name)


def check_plan_matches(dose: DoseGrid, plan: PlanInfo) -> list[str]:
    """Refuse a dose grid in another frame of reference than its plan; note a grid of another plan.

    Parameters
    ----------
    dose : DoseGrid
        The grid.
    plan : PlanInfo
        The plan.

    Returns
    -------
    list of str
        Warnings (the grid names another plan's SOP Instance UID).

    Raises
    ------
    pofa.errors.ImagingError
        When both carry a FrameOfReferenceUID and the two differ.
    """
    if (dose.frame_of_reference_uid and plan.frame_of_reference_uid
            and dose.frame_of_reference_uid != plan.frame_of_reference_uid):
        raise ImagingError(
            f"{dose.source} is in frame of reference {dose.frame_of_reference_uid}, but its plan "
            f"{plan.source} is in {plan.frame_of_reference_uid}: the dose grid does not belong to that plan.")
    out = []
    ref, uid = dose.referenced_plan_uid, plan.sop_instance_uid
    if ref and uid and ref != uid:
        out.append(
            f"{dose.source} names another RTPLAN than {plan.source} (ReferencedSOPInstanceUID differs).")
    return out


@dataclass(frozen=True, slots=True)
class Structure:
    """One ROI of an RTSTRUCT.

    Attributes
    ----------
    number : int
        ROINumber.
    name : str
        ROIName.
    interpreted_type : str
        RTROIInterpretedType (PTV, CTV, GTV, ORGAN, ...; "" when absent).
    frame_of_reference_uid : str
        ReferencedFrameOfReferenceUID of the ROI.
    contours : tuple of numpy.ndarray
        The closed planar contours, each (n, 3) in LPS mm.
    """

    number: int
    name: str
    interpreted_type: str
    frame_of_reference_uid: str
    contours: tuple[NDArray[np.float64], ...]


def read_structures(path: str | os.PathLike[str]) -> list[Structure]:
    """The ROIs of an RTSTRUCT: names, types (targets such as PTV, CTV, GTV), frame of reference, contours.

    Parameters
    ----------
    path : path-like
        The RTSTRUCT file.

    Returns
    -------
    list of Structure
        In StructureSetROISequence order; ROIs without closed planar contours have no contours.

    Raises
    ------
    pofa.errors.ImagingError
        When the file is not a readable RTSTRUCT.
    """
    import pydicom

    p = Path(path)
    try:
        ds = pydicom.dcmread(p, force=True)
    except Exception as exc:  # any failure to parse is a bad file
        raise ImagingError(f"Cannot read {p.name} as DICOM: {exc}.") from exc
    if str(ds.get("Modality", "")).upper() != "RTSTRUCT":
        raise ImagingError(f"{p.name} is not an RTSTRUCT.")
    types = {int(o.ReferencedROINumber): str(o.get("RTROIInterpretedType", "")).upper()
             for o in ds.get("RTROIObservationsSequence", []) or [] if "ReferencedROINumber" in o}
    contours: dict[int, list[NDArray[np.float64]]] = {}
    for rc in ds.get("ROIContourSequence", []) or []:
        num = int(rc.get("ReferencedROINumber", -1))
        for c in rc.get("ContourSequence", []) or []:
            if str(c.get("ContourGeometricType", "")).upper() != "CLOSED_PLANAR":
                continue
            data = _floats(list(c.ContourData), None, "ContourData", p.name)
            if data.size % 3 or data.size < 9:
                continue
            contours.setdefault(num, []).append(data.reshape(-1, 3))
    out = []
    for roi in ds.get("StructureSetROISequence", []) or []:
        num = int(roi.ROINumber)
        out.append(Structure(number=num, name=str(roi.get("ROIName", "")),
                             interpreted_type=types.get(num, ""),
                             frame_of_reference_uid=str(roi.get("ReferencedFrameOfReferenceUID", "")),
                             contours=tuple(contours.get(num, []))))
    return out
