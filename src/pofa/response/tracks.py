"""Lesion tracks from images: each baseline lesion followed across several scans, measured as Lugano does.

Label maps on one grid (each follow-up already resampled onto the baseline grid, e.g. by
:func:`pofa.imaging.matching.resample_label_map`) are matched with the existing matcher
(:func:`pofa.imaging.matching.match_label_arrays`) and measured and linked by the rules of the imaging
pipeline (:mod:`pofa.response.linking`, which works on each scan's own grid from an imaging manifest): the
longest axial diameter and the longest perpendicular to it (:mod:`pofa.response.diameters`), split lesions
added, merged lesions measured once, vanished lesions 0 x 0 mm.
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
        ``baseline``, ``continues``, ``split``, ``merge``, ``split-merge`` or ``disappeared``.
    """

    lesion_id: str
    scan_date: dt.date
    ldi_mm: float
    sdi_mm: float
    event: str


def axial_diameters(mask: NDArray[np.bool_], spacing: Sequence[float]) -> tuple[float, float]:
    """Longest axial diameter and the longest diameter perpendicular to it, in mm, on a grid of ``spacing``.

    The grid's array axes run along the patient axes in order (axis 2 along the head-foot axis, so axis 2
    is the axial slice axis); the measurement is :func:`pofa.response.diameters.axial_diameters`'s (voxel
    outlines, corner to corner; the SDi in the slice of the LDi).

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
        A mask that is not 3-D, or not three voxel sizes.
    """
    from pofa.response.diameters import axial_diameters as measure

    if len(spacing) != 3:
        raise ImagingError(f"three voxel sizes are needed, got {len(spacing)}")
    d = measure(np.asarray(mask, dtype=bool), np.diag([*(float(v) for v in spacing), 1.0]))
    return d.ldi_mm, d.sdi_mm


def track_lesions(baseline: NDArray[Any], followups: Sequence[tuple[dt.date, NDArray[Any]]],
                  affine: NDArray[np.float64], lesion_ids: Mapping[int, str], baseline_date: dt.date,
                  *, tolerance_mm: float = 0.0) -> tuple[TrackPoint, ...]:
    """Follow every baseline lesion across the follow-up scans and measure it on each.

    The rules are those of the imaging pipeline (:mod:`pofa.response.linking`): a split lesion's parts are
    added (LDi summed, PPDs summed), a merged lesion is measured once, for the baseline lesion it is
    assigned to (the others are 0 x 0 with the event ``merge``), a vanished lesion is 0 x 0.

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
        The rows of a measurements table (baseline first, then each scan in date order); ``event`` is
        ``baseline``, ``continues``, ``split``, ``merge``, ``split-merge`` or ``disappeared``.
    """
    from pofa.imaging.matching import match_label_arrays
    from pofa.imaging.volume import Volume
    from pofa.response.linking import lesion_sizes, scan_track_rows

    aff = np.asarray(affine, dtype=np.float64)
    b = np.asarray(baseline)
    base = lesion_sizes(Volume(b, aff), {})
    out = [TrackPoint(lid, baseline_date, base[lab].ldi_mm, base[lab].sdi_mm, "baseline")
           for lab, lid in sorted(lesion_ids.items()) if lab in base]
    for date, labels in sorted(followups, key=lambda x: x[0]):
        f = np.asarray(labels)
        res = match_label_arrays(b, f, aff, tolerance_mm=tolerance_mm)
        sizes = lesion_sizes(Volume(f, aff), {})
        meas, tracks, _new = scan_track_rows("", date.isoformat(), res, lesion_ids, {}, sizes, set())
        event = {t["lesion_id"]: t["event"] for t in tracks if t["lesion_id"] is not None}
        out.extend(TrackPoint(m["lesion_id"], date, float(m["ldi_mm"]), float(m["sdi_mm"]),
                              event[m["lesion_id"]]) for m in meas)
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
