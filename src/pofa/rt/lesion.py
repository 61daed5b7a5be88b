"""Dose to failure lesions and their class relative to the radiation field.

For each label of a failure label map, the dose is sampled at the centres of the lesion's voxels, in patient
space: each voxel centre is mapped (through the registration transform when the labels are not in the dose's
frame) to the dose grid and the dose there is interpolated trilinearly between the eight surrounding grid
points. Trilinear interpolation is the model treatment-planning systems and DVH tools use between dose grid
points (dose is smooth at the scale of a 2-5 mm grid; nearest-neighbour sampling would shift the 95% isodose
by up to half a grid step, a 1-2.5 mm error at the field edge); it is exact for a dose that is linear across a
grid cell. Every voxel has the label map's voxel volume, so volume and dose-volume figures are voxel counts.

Definitions (docs/radiotherapy.md has the literature):

- ``V95``: % of the lesion's voxels whose dose is at least ``isodose_pct`` (95%) of the prescription.
- ``D95``: the highest dose that at least 95% of the lesion's voxels receive (the ``ceil(0.95 n)``-th
  largest).
- By volume: in-field when V95 >= ``in_field_volume_pct`` (95), marginal from ``marginal_volume_pct`` (20),
  otherwise out-of-field (Dawson et al. 2000).
- By centroid: in-field when the dose at the lesion's centroid reaches the isodose; marginal when the centroid
  lies within ``centroid_margin_mm`` (10 mm) of the isodose surface; otherwise out-of-field.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pofa.errors import ImagingError
from pofa.imaging.volume import Volume
from pofa.rt.dicom import DoseGrid
from pofa.settings import RadiotherapySettings

if TYPE_CHECKING:  # pragma: no cover - typing only
    import SimpleITK as sitk

__all__ = ["FIELD_CLASSES", "LesionDose", "class_by_centroid", "class_by_volume", "d95", "grid_coverage",
           "lesion_doses", "read_failure_labels", "read_plan_dose"]

FIELD_CLASSES = ("in-field", "marginal", "out-of-field")


@dataclass(frozen=True, slots=True)
class LesionDose:
    """Dose to one failure lesion and its field classes.

    Attributes
    ----------
    label : int
        The lesion's label value.
    n_voxels : int
        Voxels of the lesion.
    volume_ml : float
        Volume (voxels x voxel volume) in ml.
    dmin_gy, dmean_gy, dmax_gy, d95_gy : float
        Minimum, mean, maximum dose and D95 over the lesion's voxels (Gy).
    v95_pct : float
        % of the voxels at or above the isodose.
    centroid_dose_gy : float
        Dose at the lesion's centroid (Gy).
    centroid_distance_mm : float
        Distance of the centroid from the isodose surface (0 when the centroid is inside; inf when the
        isodose is nowhere reached).
    class_volume, class_centroid : str
        ``in-field``, ``marginal`` or ``out-of-field`` by each rule.
    """

    label: int
    n_voxels: int
    volume_ml: float
    dmin_gy: float
    dmean_gy: float
    dmax_gy: float
    d95_gy: float
    v95_pct: float
    centroid_dose_gy: float
    centroid_distance_mm: float
    class_volume: str
    class_centroid: str

    @property
    def classes_agree(self) -> bool:
        """Whether the two rules give the same class.

        Returns
        -------
        bool
            Whether the two rules give the same class.
        """
        return self.class_volume == self.class_centroid


def d95(doses: NDArray[np.float64], coverage: float = 0.95) -> float:
    """The highest dose that at least ``coverage`` of the voxels receive.

    Parameters
    ----------
    doses : numpy.ndarray
        Dose of each voxel (equal volumes).
    coverage : float
        Fraction of the volume (0.95 for D95).

    Returns
    -------
    float
        The ``ceil(coverage n)``-th largest dose.

    Raises
    ------
    ValueError
        When ``doses`` is empty.
    """
    d = np.sort(np.asarray(doses, dtype=np.float64))[::-1]
    if d.size == 0:
        raise ValueError("no voxels")
    m = max(1, math.ceil(coverage * d.size - 1e-9))
    return float(d[m - 1])


def class_by_volume(v95_pct: float, settings: RadiotherapySettings) -> str:
    """In-field, marginal or out-of-field from the % of the volume inside the isodose.

    Parameters
    ----------
    v95_pct : float
        % of the failure volume inside the isodose.
    settings : RadiotherapySettings
        ``in_field_volume_pct`` and ``marginal_volume_pct``.

    Returns
    -------
    str
        The class.
    """
    if v95_pct >= settings.in_field_volume_pct:
        return "in-field"
    if v95_pct >= settings.marginal_volume_pct:
        return "marginal"
    return "out-of-field"


def class_by_centroid(centroid_dose_gy: float, distance_mm: float, isodose_gy: float,
                      settings: RadiotherapySettings) -> str:
    """In-field, marginal or out-of-field from the dose at the centroid and its distance from the isodose.

    Parameters
    ----------
    centroid_dose_gy : float
        Dose at the centroid.
    distance_mm : float
        Distance of the centroid from the isodose surface.
    isodose_gy : float
        The isodose level in Gy.
    settings : RadiotherapySettings
        ``centroid_margin_mm``.

    Returns
    -------
    str
        The class.
    """
    if centroid_dose_gy >= isodose_gy:
        return "in-field"
    if distance_mm <= settings.centroid_margin_mm:
        return "marginal"
    return "out-of-field"


def _to_dose_frame(points: NDArray[np.float64], transform: sitk.Transform | None) -> NDArray[np.float64]:
    """Label-frame LPS points -> dose-frame LPS points through the inverse of ``transform``.

    ``transform`` maps dose-frame (planning) points to label-frame (failure scan) points, ITK's fixed ->
    moving convention with the planning scan fixed.
    """
    if transform is None:
        return points
    try:
        inv = transform.GetInverse()
    except RuntimeError:
        inv = None
    if inv is not None and hasattr(inv, "GetMatrix") and inv.GetName() in (
            "AffineTransform", "Euler3DTransform", "VersorRigid3DTransform", "Similarity3DTransform",
            "TranslationTransform", "ScaleTransform", "ScaleVersor3DTransform", "ScaleSkewVersor3DTransform",
            "ComposeScaleSkewVersor3DTransform"):
        a = np.asarray(inv.GetMatrix(), dtype=np.float64).reshape(3, 3)
        c = np.asarray(inv.GetCenter(), dtype=np.float64)
        t = np.asarray(inv.GetTranslation(), dtype=np.float64)
        return np.asarray((points - c) @ a.T + c + t, dtype=np.float64)
    from pofa.imaging.registration import invert_points

    out = invert_points(transform, points)
    if np.any(~np.isfinite(out)):
        raise ImagingError(
            "The transform cannot be inverted at some lesion voxels (Newton did not converge).")
    return out


def lesion_doses(labels: Volume, dose: DoseGrid, prescription_gy: float,
                 settings: RadiotherapySettings | None = None,
                 transform: sitk.Transform | None = None,
                 label_source: str = "the labels") -> list[LesionDose]:
    """Dose statistics and field classes of every lesion (non-zero label) of a label map.

    Parameters
    ----------
    labels : Volume
        Failure lesions, one integer label each (0 = background).
    dose : DoseGrid
        The dose grid (Gy).
    prescription_gy : float
        The prescription (> 0); the isodose is ``isodose_pct`` of it.
    settings : RadiotherapySettings, optional
        Thresholds (defaults when None).
    transform : SimpleITK.Transform, optional
        Maps dose-frame LPS points to label-frame LPS points (registration with the planning scan fixed);
        None when the labels are in the dose's frame.
    label_source : str
        Name of the label file, for messages.

    Returns
    -------
    list of LesionDose
        One per label, in increasing label order.

    Raises
    ------
    pofa.errors.ImagingError
        When the label map holds no lesion or non-integer labels, the prescription is not positive, or a
        lesion lies (partly) outside the dose grid.
    """
    from scipy.spatial import cKDTree

    s = settings or RadiotherapySettings()
    if not (math.isfinite(prescription_gy) and prescription_gy > 0):
        raise ImagingError(f"The prescription must be a positive dose in Gy; got {prescription_gy!r}.")
    vox = labels.voxels
    if vox.dtype.kind == "f":
        if not np.all(np.isfinite(vox)) or np.any(vox != np.round(vox)):
            raise ImagingError(f"{label_source} holds non-integer labels; a label map is needed.")
    nz = np.nonzero(vox > 0)
    if nz[0].size == 0:
        raise ImagingError(f"{label_source} holds no lesion (no voxel with a label above 0).")
    values = np.asarray(vox[nz]).astype(np.int64)
    order = np.argsort(values, kind="stable")
    values = values[order]
    index = np.column_stack(nz)[order].astype(np.float64)
    pts = _to_dose_frame(labels.index_to_lps(index), transform)
    _, inside = dose.lps_to_index(pts)
    isodose = s.isodose_pct / 100.0 * prescription_gy
    uniq, starts = np.unique(values, return_index=True)
    bounds = list(starts) + [values.size]
    outside = [int(lab) for lab, a, b in zip(uniq, bounds[:-1], bounds[1:], strict=True)
               if not inside[a:b].all()]
    means = np.array([index[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    centroids = np.atleast_2d(labels.index_to_lps(means))
    cpts = _to_dose_frame(centroids, transform)
    _, c_inside = dose.lps_to_index(cpts)
    outside += [int(lab) for lab, ok in zip(uniq, c_inside, strict=True)
                if not ok and int(lab) not in outside]
    if outside:
        raise ImagingError(
            f"Lesion(s) {', '.join(str(v) for v in sorted(outside))} of {label_source} lie (partly) outside "
            f"the dose grid of {dose.source}; a dose grid covering every failure lesion is needed (or the "
            "wrong transform or frame of reference).")
    doses = dose.sample(pts)
    c_doses = dose.sample(cpts)
    surface = dose.isodose_surface(isodose)
    tree = cKDTree(surface) if surface.shape[0] else None
    vml = labels.voxel_volume_ml
    out = []
    for i, (lab, a, b) in enumerate(zip(uniq, bounds[:-1], bounds[1:], strict=True)):
        d = doses[a:b]
        cd = float(c_doses[i])
        if cd >= isodose:
            dist = 0.0
        elif tree is None:
            dist = math.inf
        else:
            dist = float(tree.query(cpts[i])[0])
        v95 = 100.0 * float(np.count_nonzero(d >= isodose)) / d.size
        out.append(LesionDose(
            label=int(lab), n_voxels=int(d.size), volume_ml=float(d.size * vml), dmin_gy=float(d.min()),
            dmean_gy=float(d.mean()), dmax_gy=float(d.max()), d95_gy=d95(d), v95_pct=v95,
            centroid_dose_gy=cd, centroid_distance_mm=dist, class_volume=class_by_volume(v95, s),
            class_centroid=class_by_centroid(cd, dist, isodose, s)))
    return out


def _frame_of_reference(ds: Any) -> str:
    uid = str(ds.get("FrameOfReferenceUID", "") or "")
    if not uid:
        for item in ds.get("ReferencedFrameOfReferenceSequence", []) or []:
            uid = str(item.get("FrameOfReferenceUID", "") or "")
            if uid:
                break
    return uid


def _rtstruct_grid(path: Path, spacing_mm: float) -> Volume:
    """An axial LPS grid covering an RTSTRUCT's closed contours: ``spacing_mm`` in-plane, slices on the
    contour planes."""
    from pofa.rt.dicom import read_structures

    contours = [c for s in read_structures(path) for c in s.contours]
    if not contours:
        raise ImagingError(f"{path.name} has no closed planar contour.")
    allpts = np.concatenate(contours)
    if any(np.ptp(c[:, 2]) > 1e-3 for c in contours):
        raise ImagingError(f"{path.name}: pofa rasterises axial contours only (a contour is not at one z).")
    zs = np.unique(np.round(allpts[:, 2], 3))
    steps = np.diff(zs)
    dz = float(steps.min()) if steps.size else spacing_mm
    # voxel centres half a step off the contours' lowest x and y, so that none lies on a straight edge there
    lo = allpts.min(axis=0) - 2.5 * spacing_mm
    hi = allpts.max(axis=0) + 2 * spacing_mm
    nx = int(math.ceil((hi[0] - lo[0]) / spacing_mm)) + 1
    ny = int(math.ceil((hi[1] - lo[1]) / spacing_mm)) + 1
    nzs = int(round((zs[-1] - zs[0]) / dz)) + 1
    return Volume.from_spacing(np.zeros((nzs, ny, nx), dtype=np.uint8), spacing=(dz, spacing_mm, spacing_mm),
                               origin=(float(lo[0]), float(lo[1]), float(zs[0])))


def read_failure_labels(path: str | os.PathLike[str], dose: DoseGrid | None = None,
                        transformed: bool = False, rtstruct_spacing_mm: float = 1.0) -> Volume:
    """Read failure lesions as a label map: NIfTI, DICOM SEG or RTSTRUCT.

    Parameters
    ----------
    path : path-like
        ``.nii``/``.nii.gz`` label map, or a DICOM SEG or RTSTRUCT file (each ROI with closed planar contours
        becomes a label, in order; rasterised on an axial grid of ``rtstruct_spacing_mm`` in-plane with one
        slice per contour plane).
    dose : DoseGrid, optional
        The dose grid, to compare frames of reference.
    transformed : bool
        A transform brings the labels to the dose's frame (the frames of reference then differ by design).
    rtstruct_spacing_mm : float
        In-plane spacing of the grid RTSTRUCT contours are rasterised onto.

    Returns
    -------
    Volume
        The label map.

    Raises
    ------
    pofa.errors.ImagingError
        When the file cannot be read, or a DICOM label object is in another frame of reference than the dose
        grid and no transform is given.
    """
    import pydicom

    from pofa.imaging.seg_io import RTSTRUCT_SOP_CLASS, SEG_SOP_CLASS, read_rtstruct, read_seg

    p = Path(path)
    if not p.is_file():
        raise ImagingError(f"Failure label map not found: {p}.")
    if p.name.endswith((".nii", ".nii.gz")):
        return Volume.from_nifti(p, units="label")
    try:
        ds = pydicom.dcmread(p, force=True, stop_before_pixels=True)
    except Exception as exc:  # any failure to parse is a bad file
        raise ImagingError(f"Cannot read {p.name} as NIfTI or DICOM: {exc}.") from exc
    sop = str(ds.get("SOPClassUID", ""))
    modality = str(ds.get("Modality", "")).upper()
    if sop != SEG_SOP_CLASS and sop != RTSTRUCT_SOP_CLASS and modality not in ("SEG", "RTSTRUCT"):
        raise ImagingError(f"{p.name} is neither a NIfTI label map nor a DICOM SEG or RTSTRUCT.")
    uid = _frame_of_reference(ds)
    if dose is not None and not transformed and uid and dose.frame_of_reference_uid \
            and uid != dose.frame_of_reference_uid:
        raise ImagingError(
            f"{p.name} is in frame of reference {uid}, the dose grid {dose.source} in "
            f"{dose.frame_of_reference_uid}: register the failure scan to the planning scan and give the "
            "transform.")
    if sop == SEG_SOP_CLASS or modality == "SEG":
        return read_seg(p)
    return read_rtstruct(p, _rtstruct_grid(p, rtstruct_spacing_mm))


#: The columns of ``pofa dose``'s table, in order.
DOSE_COLUMNS = ("label", "volume_ml", "dmin_gy", "dmean_gy", "dmax_gy", "d95_gy", "v95_pct",
                "centroid_dose_gy", "class_volume", "class_centroid", "classes_agree")


@dataclass(frozen=True, slots=True)
class DoseRun:
    """The result of :func:`dose_for_failures`.

    Attributes
    ----------
    lesions : tuple of LesionDose
        One per failure lesion.
    prescription_gy : float
        The prescription used.
    fractions : int or None
        Number of fractions (from the caller or the plan).
    isodose_gy : float
        The isodose level (``isodose_pct`` of the prescription).
    warnings : tuple of str
        What was noticed and accepted (relative dose units, a partial summation, another plan's UID).
    """

    lesions: tuple[LesionDose, ...]
    prescription_gy: float
    fractions: int | None
    isodose_gy: float
    warnings: tuple[str, ...]


def read_plan_dose(rtdose_path: str | os.PathLike[str], prescription_gy: float | None = None,
                   fractions: int | None = None, rtplan_path: str | os.PathLike[str] | None = None,
                   ) -> tuple[DoseGrid, float, int | None, list[str]]:
    """Read a dose grid with its prescription and fractions (given, or from the RTPLAN).

    Parameters
    ----------
    rtdose_path : path-like
        The RTDOSE file.
    prescription_gy : float, optional
        The prescription; when None it is taken from the RTPLAN.
    fractions : int, optional
        Number of fractions; when None it is taken from the RTPLAN.
    rtplan_path : path-like, optional
        The RTPLAN (prescription, fractions, frame of reference checked against the dose grid).

    Returns
    -------
    dose : DoseGrid
        The grid in Gy.
    prescription_gy : float
        The prescription used.
    fractions : int or None
        The number of fractions (None when neither given nor in the plan).
    warnings : list of str
        What was noticed and accepted.

    Raises
    ------
    pofa.errors.ImagingError
        A bad RTDOSE or RTPLAN, a plan in another frame of reference, or no prescription at all.
    """
    from pofa.rt.dicom import check_plan_matches, read_rtdose, read_rtplan

    warnings: list[str] = []
    plan = read_rtplan(rtplan_path) if rtplan_path is not None else None
    if plan is not None:
        if prescription_gy is None:
            prescription_gy = plan.prescription_gy
        elif plan.prescription_gy is not None and abs(plan.prescription_gy - prescription_gy) > 1e-6 * max(
                1.0, prescription_gy):
            warnings.append(f"The prescription given ({prescription_gy:g} Gy) differs from {plan.source}'s "
                            f"({plan.prescription_gy:g} Gy); the one given is used.")
        if fractions is None:
            fractions = plan.fractions
    if prescription_gy is None:
        raise ImagingError("No prescription: give it, or an RTPLAN that states a TargetPrescriptionDose.")
    dose = read_rtdose(rtdose_path, prescription_gy, fractions)
    warnings.extend(dose.warnings)
    if plan is not None:
        warnings.extend(check_plan_matches(dose, plan))
    return dose, float(prescription_gy), fractions, warnings


def grid_coverage(labels: Volume, dose: DoseGrid, transform: sitk.Transform | None = None
                  ) -> dict[int, float]:
    """Fraction of each lesion's voxel centres (and whether its centroid) lying inside the dose grid.

    Parameters
    ----------
    labels : Volume
        Failure lesions, one integer label each (0 = background).
    dose : DoseGrid
        The dose grid.
    transform : SimpleITK.Transform, optional
        Maps dose-frame LPS points to label-frame LPS points, as in :func:`lesion_doses`.

    Returns
    -------
    dict
        Label -> fraction of its voxels inside the grid (0 to 1); a label whose centroid lies outside the
        grid gets at most 0.999999 so that only labels :func:`lesion_doses` accepts have 1.0.
    """
    vox = np.asarray(labels.voxels)
    nz = np.nonzero(vox > 0)
    if nz[0].size == 0:
        return {}
    values = np.asarray(vox[nz]).astype(np.int64)
    index = np.column_stack(nz).astype(np.float64)
    _, inside = dose.lps_to_index(_to_dose_frame(labels.index_to_lps(index), transform))
    out: dict[int, float] = {}
    for lab in np.unique(values):
        sel = values == lab
        frac = float(np.count_nonzero(inside[sel])) / float(np.count_nonzero(sel))
        centroid = labels.index_to_lps(index[sel].mean(axis=0)[None, :])
        _, c_in = dose.lps_to_index(_to_dose_frame(np.atleast_2d(centroid), transform))
        out[int(lab)] = frac if bool(c_in[0]) else min(frac, 0.999999)
    return out


def dose_for_failures(labels_path: str | os.PathLike[str], rtdose_path: str | os.PathLike[str],
                      prescription_gy: float | None = None, fractions: int | None = None,
                      rtplan_path: str | os.PathLike[str] | None = None,
                      transform_path: str | os.PathLike[str] | None = None,
                      settings: RadiotherapySettings | None = None) -> DoseRun:
    """Read a plan's dose and the failure lesions, and compute every lesion's dose and field classes.

    Parameters
    ----------
    labels_path : path-like
        Failure lesions (NIfTI label map, DICOM SEG or RTSTRUCT).
    rtdose_path : path-like
        The RTDOSE file.
    prescription_gy : float, optional
        The prescription; when None it is taken from the RTPLAN.
    fractions : int, optional
        Number of fractions; when None it is taken from the RTPLAN.
    rtplan_path : path-like, optional
        The RTPLAN (prescription, fractions, frame of reference checked against the dose grid).
    transform_path : path-like, optional
        An ITK transform file mapping dose-frame (planning) LPS points to label-frame LPS points.
    settings : RadiotherapySettings, optional
        Thresholds.

    Returns
    -------
    DoseRun
        Lesion doses and classes, the prescription and warnings.

    Raises
    ------
    pofa.errors.ImagingError
        Any bad input (see :func:`pofa.rt.dicom.read_rtdose`, :func:`pofa.rt.dicom.check_plan_matches`,
        :func:`lesion_doses`), or no prescription from either the caller or the plan.
    """
    s = settings or RadiotherapySettings()
    dose, prescription, fractions, warnings = read_plan_dose(rtdose_path, prescription_gy, fractions,
                                                             rtplan_path)
    transform = None
    if transform_path is not None:
        from pofa.imaging.registration import load_transform

        transform = load_transform(transform_path)
    labels = read_failure_labels(labels_path, dose, transformed=transform is not None)
    rows = lesion_doses(labels, dose, prescription, s, transform, Path(labels_path).name)
    return DoseRun(lesions=tuple(rows), prescription_gy=prescription, fractions=fractions,
                   isodose_gy=s.isodose_pct / 100.0 * prescription, warnings=tuple(warnings))


def dose_csv(lesions: tuple[LesionDose, ...] | list[LesionDose]) -> str:
    """The lesions as CSV text with the columns :data:`DOSE_COLUMNS` (doses to 4 decimals).

    Parameters
    ----------
    lesions : sequence of LesionDose
        The rows.

    Returns
    -------
    str
        CSV text with a header line.
    """
    lines = [",".join(DOSE_COLUMNS)]
    for r in lesions:
        lines.append(",".join([
            str(r.label), f"{r.volume_ml:.4f}", f"{r.dmin_gy:.4f}", f"{r.dmean_gy:.4f}", f"{r.dmax_gy:.4f}",
            f"{r.d95_gy:.4f}", f"{r.v95_pct:.4f}", f"{r.centroid_dose_gy:.4f}", r.class_volume,
            r.class_centroid, "yes" if r.classes_agree else "no"]))
    return "\n".join(lines) + "\n"
