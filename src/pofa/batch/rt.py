"""Dose to a manifest patient's failure lesions: the baseline row's RTDOSE, RTPLAN, RTSTRUCT and planning CT.

A baseline manifest row may name the bridging-RT plan's dose grid (``rtdose``) with its plan (``rtplan``), its
structure set (``rtstruct``) and its planning CT (``rtct``). The dose lies in the planning frame of reference:

- when the RTDOSE's FrameOfReferenceUID equals the baseline scan's (its CT's, else its PET's: a DICOM series'
  FrameOfReferenceUID, or for a NIfTI CT the ``FrameOfReferenceUID`` of its JSON sidecar ``<name>.json``),
  the planning frame is the baseline frame: each failure scan's lesions reach the dose through the
  registration the pipeline already does (baseline -> failure), then the identity;
- otherwise the planning CT (``rtct``) is registered to the baseline CT (:func:`pofa.imaging.registration.
  register`, CT-based, rigid by default) and the two transforms are composed: planning -> baseline -> failure.

Each failure lesion's dose and field classes come from :func:`pofa.rt.lesion.lesion_doses` (nothing is sampled
here). A lesion partly outside the dose grid gets no dose and no class (a warning says so); a lesion wholly
outside it is out-of-field by volume (none of it is inside the grid, so none inside the isodose) and by
centroid when its centroid lies farther than the margin from the isodose surface.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pofa.errors import ImagingError
from pofa.settings import RadiotherapySettings

if TYPE_CHECKING:  # pragma: no cover - typing only
    import SimpleITK as sitk

    from pofa.batch.manifest import ScanSpec
    from pofa.imaging.volume import Volume
    from pofa.rt.dicom import DoseGrid

__all__ = [
    "RT_FAILURE_COLUMNS",
    "RT_LESION_COLUMNS",
    "RtPlanning",
    "add_failure_doses",
    "add_lesion_doses",
    "compose",
    "dicom_header",
    "doses_by_label",
    "image_frame_uid",
    "prepare_rt",
]

#: Columns added to the failure rows of a patient with an RTDOSE (docs/batch.md, docs/radiotherapy.md).
RT_FAILURE_COLUMNS: tuple[str, ...] = (
    "dose_volume_ml", "dmin_gy", "dmean_gy", "dmax_gy", "d95_gy", "v95_pct", "centroid_dose_gy",
    "class_volume", "class_centroid", "classes_agree", "rt_field")


def dicom_header(path: str | os.PathLike[str]) -> Any:
    """The header (no pixel data) of a DICOM file, or of the first readable DICOM file of a folder.

    Parameters
    ----------
    path : path-like
        A DICOM file or a folder of DICOM files.

    Returns
    -------
    pydicom.Dataset or None
        None when no DICOM file can be read there.
    """
    import pydicom

    p = Path(path)
    files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else []
    for f in files[:200]:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, force=True)
        except Exception:  # noqa: BLE001 - any unreadable file is skipped (untrusted input)
            continue
        if "SOPClassUID" in ds or "Modality" in ds:
            return ds
    return None


def _sidecar(path: Path) -> Path:
    name = path.name
    stem = name[:-7] if name.endswith(".nii.gz") else (name[:-4] if name.endswith(".nii") else path.stem)
    return path.with_name(stem + ".json")


def image_frame_uid(path: str | os.PathLike[str]) -> str:
    """The FrameOfReferenceUID of an image: a DICOM series' or, for NIfTI, its JSON sidecar's.

    Parameters
    ----------
    path : path-like
        A DICOM folder or file, or a NIfTI file (whose ``<name>.json`` may hold ``FrameOfReferenceUID``).

    Returns
    -------
    str
        The UID, or "" when the image does not say.
    """
    p = Path(path)
    if p.name.endswith((".nii", ".nii.gz")):
        side = _sidecar(p)
        if not side.is_file():
            return ""
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ""
        uid = meta.get("FrameOfReferenceUID", "") if isinstance(meta, dict) else ""
        return str(uid).strip() if isinstance(uid, str) else ""
    ds = dicom_header(p)
    return "" if ds is None else str(ds.get("FrameOfReferenceUID", "") or "").strip()


def _linear(t: sitk.Transform) -> tuple[np.ndarray, np.ndarray] | None:
    """(matrix, offset) when ``t`` is affine (checked at spread points), else None."""
    probe = np.array([[0.0, 0.0, 0.0], [100.0, 0, 0], [0, 100.0, 0], [0, 0, 100.0], [-70.0, 40.0, 90.0],
                      [55.0, -80.0, -35.0]])
    img = np.array([t.TransformPoint(p.tolist()) for p in probe])
    b = img[0]
    a = (img[1:4] - b).T / 100.0
    pred = probe[4:] @ a.T + b
    if np.max(np.abs(pred - img[4:])) > 1e-6:
        return None
    return a, b


def compose(first: sitk.Transform | None, then: sitk.Transform | None) -> sitk.Transform | None:
    """The transform applying ``first`` and then ``then`` (None stands for the identity).

    Two affine transforms (rigid, affine, translation, composites of them) give one
    ``AffineTransform``; anything else a ``CompositeTransform``.

    Parameters
    ----------
    first, then : SimpleITK.Transform or None
        Applied in this order.

    Returns
    -------
    SimpleITK.Transform or None
        ``then(first(p))``.
    """
    import SimpleITK as sitk

    if first is None:
        return then
    if then is None:
        return first
    la, lb = _linear(first), _linear(then)
    if la is not None and lb is not None:
        a = lb[0] @ la[0]
        b = lb[0] @ la[1] + lb[1]
        out = sitk.AffineTransform(3)
        out.SetMatrix(a.ravel().tolist())
        out.SetTranslation(b.tolist())
        return out
    return sitk.CompositeTransform([then, first])  # last added is applied first


@dataclass(frozen=True, slots=True, eq=False)
class RtPlanning:
    """A patient's plan, read once: the dose grid and how planning points reach the baseline scan.

    Attributes
    ----------
    dose : DoseGrid
        The dose grid in Gy.
    prescription_gy : float
    fractions : int or None
    to_baseline : SimpleITK.Transform or None
        Maps planning (dose-frame) LPS points to baseline LPS points; None when the frames are the same.
    summary : dict
        Plain JSON for the provenance: prescription, fractions, isodose, how the frames were related, the
        planning registration, RTSTRUCT targets, warnings.
    """

    dose: DoseGrid
    prescription_gy: float
    fractions: int | None
    to_baseline: sitk.Transform | None
    summary: dict[str, Any] = field(default_factory=dict)


def prepare_rt(base: ScanSpec, base_ct: Volume | None, settings: RadiotherapySettings,
               iterations: int = 200) -> RtPlanning:
    """Read the baseline row's plan and relate its frame to the baseline scan's.

    Parameters
    ----------
    base : ScanSpec
        The baseline scan, with ``rtdose`` (and optional ``rtplan``, ``rtstruct``, ``rtct``,
        ``rt_prescription_gy``, ``rt_fractions``).
    base_ct : Volume or None
        The baseline CT (needed when the planning CT is registered).
    settings : RadiotherapySettings
        The isodose level for the summary.
    iterations : int
        Iterations per level of the rigid registration of the planning CT.

    Returns
    -------
    RtPlanning
        The dose grid, the prescription, the transform to the baseline scan, a summary and warnings.

    Raises
    ------
    pofa.errors.ImagingError
        A bad plan, or a dose in another frame than the baseline scan with no planning CT to register.
    """
    from pofa.rt.lesion import read_plan_dose

    if base.rtdose is None:
        raise ImagingError("The baseline scan has no RTDOSE.")
    dose, presc, fractions, warnings = read_plan_dose(base.rtdose, base.rt_prescription_gy, base.rt_fractions,
                                                      base.rtplan)
    summary: dict[str, Any] = {"prescription_gy": presc, "fractions": fractions,
                               "isodose_gy": settings.isodose_pct / 100.0 * presc}
    base_uid = image_frame_uid(base.ct if base.ct is not None else base.pet)
    to_baseline = None
    if dose.frame_of_reference_uid and dose.frame_of_reference_uid == base_uid:
        summary["frame"] = "the dose is in the baseline scan's frame of reference (identity)"
        if base.rtct is not None:
            warnings.append("The RTDOSE shares the baseline scan's frame of reference: rtct was not "
                            "needed and was not registered.")
    elif base.rtct is not None:
        if base_ct is None:
            raise ImagingError("The planning CT (rtct) is registered to the baseline CT, but the baseline "
                               "row has no ct.")
        from pofa.imaging.extract import read_image
        from pofa.imaging.registration import Modality, RegistrationSettings, register

        plan_ct = read_image(base.rtct, "CT")
        reg = register(plan_ct, base_ct, Modality.CT,
                       RegistrationSettings(affine=False, iterations=iterations))
        to_baseline = reg.transform
        summary["frame"] = "the planning CT (rtct) registered to the baseline CT"
        summary["registration"] = {"stages": list(reg.stages), "metric_values": list(reg.metric_values),
                                   "body_dice_before": _num(reg.body_dice_before),
                                   "body_dice_after": _num(reg.body_dice_after), "method": reg.method}
    else:
        raise ImagingError(
            f"The RTDOSE {dose.source} is in frame of reference {dose.frame_of_reference_uid or '(none)'}, "
            f"the baseline scan in {base_uid or '(unknown)'}: give the planning CT (rtct) to register it.")
    if base.rtstruct is not None:
        from pofa.rt.dicom import read_structures

        structs = read_structures(base.rtstruct)
        summary["targets"] = [s.name for s in structs if s.interpreted_type in ("PTV", "CTV", "GTV")]
    summary["warnings"] = list(warnings)
    return RtPlanning(dose, presc, fractions, to_baseline, summary)


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def doses_by_label(rt: RtPlanning, labels: Volume, transform: sitk.Transform | None,
                   settings: RadiotherapySettings) -> tuple[dict[int, dict[str, Any]], list[int], list[int]]:
    """Dose columns (:data:`RT_FAILURE_COLUMNS`) of every lesion of a label map, by label.

    Parameters
    ----------
    rt : RtPlanning
        The patient's plan.
    labels : Volume
        A lesion label map.
    transform : SimpleITK.Transform or None
        Maps dose-frame (planning) LPS points to the label map's LPS points.
    settings : RadiotherapySettings
        Thresholds of the two rules.

    Returns
    -------
    records : dict
        Label -> column values; lesions partly outside the grid are absent.
    partly, wholly : list of int
        Labels partly, and wholly, outside the dose grid.
    """
    from pofa.rt.lesion import _to_dose_frame, grid_coverage, lesion_doses

    cover = grid_coverage(labels, rt.dose, transform)
    full = sorted(lab for lab, f in cover.items() if f >= 1.0)
    results: dict[int, dict[str, Any]] = {}
    if full:
        keep = np.where(np.isin(labels.voxels, full), labels.voxels, 0)
        for d in lesion_doses(labels.with_voxels(keep), rt.dose, rt.prescription_gy, settings, transform,
                              "the lesion labels"):
            results[d.label] = {
                "dose_volume_ml": d.volume_ml, "dmin_gy": d.dmin_gy, "dmean_gy": d.dmean_gy,
                "dmax_gy": d.dmax_gy, "d95_gy": d.d95_gy, "v95_pct": d.v95_pct,
                "centroid_dose_gy": d.centroid_dose_gy, "class_volume": d.class_volume,
                "class_centroid": d.class_centroid, "classes_agree": "yes" if d.classes_agree else "no",
                "rt_field": d.class_volume}
    partly = sorted(lab for lab, f in cover.items() if 0.0 < f < 1.0)
    wholly = sorted(lab for lab, f in cover.items() if f == 0.0)
    if wholly:
        from scipy.spatial import cKDTree

        isodose = settings.isodose_pct / 100.0 * rt.prescription_gy
        surface = rt.dose.isodose_surface(isodose)
        tree = cKDTree(surface) if surface.shape[0] else None
        vox = labels.voxels
        for lab in wholly:
            idx = np.argwhere(vox == lab).astype(np.float64).mean(axis=0)
            c = _to_dose_frame(np.atleast_2d(labels.index_to_lps(idx[None, :])), transform)
            dist = math.inf if tree is None else float(tree.query(c[0])[0])
            by_centroid = "out-of-field" if dist > settings.centroid_margin_mm else None
            results[lab] = {"class_volume": "out-of-field", "class_centroid": by_centroid,
                            "classes_agree": None if by_centroid is None else "yes",
                            "rt_field": "out-of-field"}
    return results, partly, wholly


def add_failure_doses(rt: RtPlanning, labels: Volume, baseline_to_failure: sitk.Transform | None,
                      rows: list[dict[str, Any]], settings: RadiotherapySettings) -> list[str]:
    """Add the dose columns (:data:`RT_FAILURE_COLUMNS`) to one failure scan's rows, in place.

    Parameters
    ----------
    rt : RtPlanning
        The patient's plan.
    labels : Volume
        The failure scan's lesion label map (``followup_label`` of the rows).
    baseline_to_failure : SimpleITK.Transform or None
        The registration of the failure scan (baseline -> failure LPS points).
    rows : list of dict
        The scan's failure rows (with ``followup_label``); each gets the dose columns.
    settings : RadiotherapySettings
        Thresholds of the two rules.

    Returns
    -------
    list of str
        Warnings (lesions partly or wholly outside the dose grid).
    """
    warnings: list[str] = []
    if not rows:
        return warnings
    results, partly, wholly = doses_by_label(rt, labels, compose(rt.to_baseline, baseline_to_failure),
                                             settings)
    if partly:
        warnings.append(f"failure lesion(s) {', '.join(map(str, partly))} lie partly outside the dose grid "
                        f"of {rt.dose.source}: no dose and no field class")
    if wholly:
        warnings.append(f"failure lesion(s) {', '.join(map(str, wholly))} lie wholly outside the dose grid "
                        f"of {rt.dose.source}: out-of-field, no dose")
    for r in rows:
        got = results.get(int(r["followup_label"]), {})
        for col in RT_FAILURE_COLUMNS:
            r[col] = got.get(col)
    return warnings


#: Columns added to the baseline lesion rows of a patient with an RTDOSE.
RT_LESION_COLUMNS: tuple[str, ...] = ("bridging_rt", "rt_dose_gy", "rt_fractions", "rt_v95_pct",
                                      "rt_dmean_gy")


def add_lesion_doses(rt: RtPlanning, labels: Volume, lesion_labels: dict[str, int],
                     rows: list[dict[str, Any]], settings: RadiotherapySettings) -> list[str]:
    """Mark the baseline lesions the plan irradiated (:data:`RT_LESION_COLUMNS`), in place.

    A baseline lesion is irradiated (``bridging_rt`` yes) when it is not out-of-field by volume: at least
    ``marginal_volume_pct`` (20%) of it lies inside the isodose. Irradiated lesions get the course's
    ``rt_dose_gy`` (the prescription) and ``rt_fractions`` when the number of fractions is known; every lesion
    inside the grid gets its V95 and mean dose (``rt_v95_pct``, ``rt_dmean_gy``). A lesion wholly outside the
    grid is not irradiated; one partly outside is left blank (a warning).

    Parameters
    ----------
    rt : RtPlanning
        The patient's plan.
    labels : Volume
        The baseline lesion label map.
    lesion_labels : dict
        Label of each lesion id (``lesion_id -> label``).
    rows : list of dict
        The baseline lesion rows (with ``lesion_id``).
    settings : RadiotherapySettings
        Thresholds.

    Returns
    -------
    list of str
        Warnings.
    """
    warnings: list[str] = []
    if not rows:
        return warnings
    results, partly, _ = doses_by_label(rt, labels, rt.to_baseline, settings)
    if partly:
        ids = [i for i, lab in lesion_labels.items() if lab in partly]
        warnings.append(f"baseline lesion(s) {', '.join(ids)} lie partly outside the dose grid of "
                        f"{rt.dose.source}: bridging_rt left blank")
    for r in rows:
        got = results.get(lesion_labels.get(str(r["lesion_id"]), -1))
        if got is None:
            r.update({c: None for c in RT_LESION_COLUMNS})
            continue
        irradiated = got["class_volume"] != "out-of-field"
        course = irradiated and rt.fractions is not None
        r.update({"bridging_rt": "yes" if irradiated else "no",
                  "rt_dose_gy": rt.prescription_gy if course else None,
                  "rt_fractions": rt.fractions if course else None,
                  "rt_v95_pct": got.get("v95_pct"), "rt_dmean_gy": got.get("dmean_gy")})
    return warnings
