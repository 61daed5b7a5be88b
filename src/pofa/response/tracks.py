"""Lesion tracks from images: each baseline lesion followed across several scans, measured as Lugano does.

Each follow-up label map (already resampled onto the baseline grid, e.g. by
:func:`pofa.imaging.matching.resample_label_map`) is matched to the baseline one with the existing matcher
(:func:`pofa.imaging.matching.match_label_arrays`). A baseline lesion's follow-up lesion is its assigned
match; when it split, the union of the follow-up lesions local to it; when lesions merged, the merged lesion
(measured for each of them); when nothing is local to it, it has vanished (0 x 0 mm). The kind of the
matching group (one-to-one, split, merge, split and merge, vanished) is kept as the track event.

Diameters follow Lugano's measurement on the axial slice of largest area: the longest diameter (LDi) and the
longest diameter perpendicular to it (SDi), between voxel edges (distance between voxel centres plus one
in-plane voxel).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pofa.errors import ImagingError


@dataclass(frozen=True, slots=True)
class TrackPoint:
    """One baseline lesion on one scan.

    Attributes
    ----------
    lesion_id : str
        The baseline lesion.
    scan_date : datetime.date
        The scan.
    ldi_mm, sdi_mm : float
        Axial longest and perpendicular diameters (0 x 0 when vanished).
    event : str
        ``baseline``, or the matching group's kind (``one-to-one``, ``split``, ``merge``,
        ``split and merge``, ``vanished``).
    """

    lesion_id: str
    scan_date: dt.date
    ldi_mm: float
    sdi_mm: float
    event: str


def axial_diameters(mask: NDArray[np.bool_], spacing: Sequence[float]) -> tuple[float, float]:
    """Longest axial diameter and the longest diameter perpendicular to it, in mm.

    The axial slice is the one (last array axis) with the largest lesion area. Distances run between voxel
    edges: the distance between voxel centres plus the mean in-plane voxel size.

    Parameters
    ----------
    mask : ndarray of bool, shape (i, j, k)
        The lesion; axis 2 is the axial (slice) axis.
    spacing : sequence of float
        Voxel size in mm along the three axes.

    Returns
    -------
    tuple of float
        ``(ldi_mm, sdi_mm)``; ``(0, 0)`` for an empty mask.

    Raises
    ------
    ImagingError
        A mask that is not 3-D.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 3:
        raise ImagingError(f"a lesion mask must be 3-D, got shape {m.shape}")
    if not m.any():
        return 0.0, 0.0
    k = int(np.argmax(m.sum(axis=(0, 1))))
    ii, jj = np.nonzero(m[:, :, k])
    pts = np.column_stack([ii * float(spacing[0]), jj * float(spacing[1])])
    pad = (float(spacing[0]) + float(spacing[1])) / 2.0
    if len(pts) == 1:
        return pad, pad
    hull = pts
    if len(pts) > 3:
        from scipy.spatial import ConvexHull, QhullError

        try:
            hull = pts[ConvexHull(pts).vertices]
        except QhullError:  # collinear points: all of them
            hull = pts
    d = np.sqrt(((hull[:, None, :] - hull[None, :, :]) ** 2).sum(axis=2))
    a, b = np.unravel_index(int(np.argmax(d)), d.shape)
    ldi = float(d[a, b])
    axis = (hull[b] - hull[a]) / ldi
    perp = np.array([-axis[1], axis[0]])
    # the SDi is the longest chord perpendicular to the LDi: group points by their position along the LDi
    along = np.round((pts - hull[a]) @ axis / pad).astype(int)
    across = (pts - hull[a]) @ perp
    sdi = 0.0
    for v in np.unique(along):
        sel = across[along == v]
        sdi = max(sdi, float(sel.max() - sel.min()))
    return ldi + pad, min(sdi + pad, ldi + pad)


def track_lesions(baseline: NDArray[Any], followups: Sequence[tuple[dt.date, NDArray[Any]]],
                  affine: NDArray[np.float64], lesion_ids: Mapping[int, str], baseline_date: dt.date,
                  *, tolerance_mm: float = 0.0) -> tuple[TrackPoint, ...]:
    """Follow every baseline lesion across the follow-up scans and measure it on each.

    Parameters
    ----------
    baseline : ndarray of int
        Baseline label map (0 = background).
    followups : sequence of (date, ndarray)
        Each follow-up scan's date and label map on the baseline grid.
    affine : ndarray, shape (4, 4)
        Array index -> LPS mm of the grid.
    lesion_ids : mapping
        Baseline label -> ``lesion_id`` of the lesions table (labels not in it are ignored).
    baseline_date : datetime.date
        Date of the baseline scan.
    tolerance_mm : float
        Matching tolerance (see :func:`pofa.imaging.matching.match_label_arrays`).

    Returns
    -------
    tuple of TrackPoint
        The rows of a measurements table (baseline first, then each scan in date order).
    """
    from pofa.imaging.matching import match_label_arrays

    aff = np.asarray(affine, dtype=np.float64)
    spacing = np.sqrt((aff[:3, :3] ** 2).sum(axis=0))
    b = np.asarray(baseline)
    out = [TrackPoint(lid, baseline_date, *axial_diameters(b == lab, spacing), "baseline")
           for lab, lid in sorted(lesion_ids.items())]
    for date, labels in sorted(followups, key=lambda x: x[0]):
        f = np.asarray(labels)
        res = match_label_arrays(b, f, aff, tolerance_mm=tolerance_mm)
        kinds = {g.group_id: g.kind.value for g in res.groups}
        for st in res.baseline:
            lid = lesion_ids.get(st.baseline_label)
            if lid is None:
                continue
            labs = st.followup_labels or (
                (st.assigned_followup_label,) if st.assigned_followup_label is not None else ())
            if not labs:
                out.append(TrackPoint(lid, date, 0.0, 0.0, "vanished"))
                continue
            ldi, sdi = axial_diameters(np.isin(f, labs), spacing)
            out.append(TrackPoint(lid, date, ldi, sdi, kinds.get(st.group_id, "one-to-one")))
    return tuple(out)


def measurements_table(patient_id: str, points: Sequence[TrackPoint], *,
                       max_targets: int = 6) -> Any:
    """The measurements-table rows of one patient's tracks (docs/response.md), with a ``track_event`` column.

    The targets are the ``max_targets`` lesions with the largest baseline PPD (Lugano: up to six).

    Parameters
    ----------
    patient_id : str
        The patient.
    points : sequence of TrackPoint
        From :func:`track_lesions`.
    max_targets : int
        Number of target lesions.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id``, ``lesion_id``, ``scan_date``, ``ldi_mm``, ``sdi_mm``, ``target``,
        ``track_event`` (a covariate column for the reader).
    """
    import pandas as pd

    base = sorted((p for p in points if p.event == "baseline"), key=lambda p: -p.ldi_mm * p.sdi_mm)
    targets = {p.lesion_id for p in base[:max_targets]}
    return pd.DataFrame({
        "patient_id": [patient_id] * len(points),
        "lesion_id": [p.lesion_id for p in points],
        "scan_date": [p.scan_date.isoformat() for p in points],
        "ldi_mm": [round(p.ldi_mm, 1) for p in points],
        "sdi_mm": [round(p.sdi_mm, 1) for p in points],
        "target": ["yes" if p.lesion_id in targets else "no" for p in points],
        "track_event": [p.event for p in points],
    })
