"""Lesion tracks across a patient's scans, and the measurements and scans tables written from them.

Each follow-up or failure scan has been registered to the baseline and its lesions matched to the baseline
lesions by :func:`pofa.imaging.matching.match_patient` (surface distance rule, split/merge groups, one-to-one
identity). From each scan's match this module makes:

- **track rows** (``tracks.csv``): per baseline lesion and scan its event, ``continues`` (one-to-one),
  ``split`` (one baseline lesion, several follow-up lesions), ``merge`` (several baseline lesions, one
  follow-up lesion), ``split-merge`` (both in one group), ``disappeared`` (nothing local to it) or
  ``outside-scan`` (its centre is outside the follow-up scan: not measured); and per follow-up lesion local to
  no baseline lesion a ``new`` row;
- **measurement rows** (``measurements.csv``, docs/response.md): each baseline lesion measured on each scan on
  that scan's own grid (:func:`pofa.response.diameters.axial_diameters`). A follow-up lesion counts for the
  baseline lesion it is attributed to (its one-to-one identity, else the baseline lesion it overlaps most);
  several follow-up lesions of one baseline lesion (a split) are added as RECIST 1.1 adds fragments:
  ``ldi_mm`` the sum of their LDi, ``sdi_mm`` = (sum of their PPDs) / ``ldi_mm``, so that the PPD is the sum
  of theirs; a baseline lesion with no follow-up lesion attributed (it disappeared, or it merged into a
  lesion attributed to another) is 0 x 0;
- **scan rows** (``scans.csv``): whether the scan shows new lesions.

Targets (Lugano 2014: "up to six of the largest dominant nodes, nodal masses, and extranodal lesions",
measurable in two diameters): baseline lesions with LDi > 15 mm (nodes; a lesion without an organ map is taken
as a node) or > 10 mm (extranodal), the six with the largest baseline PPD. A patient without a measurable
lesion gets its largest lesion as the target (a warning says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pofa.imaging.matching.results import GroupKind, MatchClass, MatchResult
from pofa.imaging.volume import Volume
from pofa.response.diameters import axial_diameters

__all__ = [
    "MEASUREMENT_COLUMNS",
    "SCAN_COLUMNS",
    "TRACK_COLUMNS",
    "LesionSize",
    "baseline_track_rows",
    "combine_parts",
    "lesion_sizes",
    "scan_track_rows",
    "select_targets",
]

#: Columns of the measurements table written from the images (docs/response.md).
MEASUREMENT_COLUMNS = ("patient_id", "lesion_id", "scan_date", "ldi_mm", "sdi_mm", "suvmax", "deauville",
                       "target")
#: Columns of the scans table written from the images.
SCAN_COLUMNS = ("patient_id", "scan_date", "new_lesions")
#: Columns of the tracks table.
TRACK_COLUMNS = ("patient_id", "scan_date", "lesion_id", "component", "event", "ldi_mm", "sdi_mm")

#: Lugano 2014 measurable disease: LDi > 15 mm for nodes, > 10 mm for extranodal lesions.
MEASURABLE_NODE_MM = 15.0
MEASURABLE_EXTRANODAL_MM = 10.0
MAX_TARGETS = 6

_EVENTS = {GroupKind.ONE_TO_ONE: "continues", GroupKind.SPLIT: "split", GroupKind.MERGE: "merge",
           GroupKind.SPLIT_MERGE: "split-merge", GroupKind.VANISHED: "disappeared"}


@dataclass(frozen=True, slots=True)
class LesionSize:
    """A lesion's axial diameters (mm) and SUVmax on one scan."""

    ldi_mm: float
    sdi_mm: float
    suvmax: float | None


def lesion_sizes(labels: Volume, suvmax: Mapping[int, float]) -> dict[int, LesionSize]:
    """Measure every lesion of a label map on its own grid.

    Parameters
    ----------
    labels : Volume
        The scan's lesion label map (0 = background).
    suvmax : mapping of int to float
        Label -> the lesion's SUVmax (from the extraction).

    Returns
    -------
    dict of int to LesionSize
        Per label.
    """
    from scipy.ndimage import find_objects

    arr = np.asarray(labels.voxels)
    aff = labels.affine
    out: dict[int, LesionSize] = {}
    for k, box in enumerate(find_objects(arr.astype(np.int64, copy=False)), start=1):
        if box is None:
            continue
        d = axial_diameters(arr[box] == k, aff)
        out[k] = LesionSize(d.ldi_mm, d.sdi_mm, suvmax.get(k))
    return out


def combine_parts(parts: Sequence[LesionSize]) -> LesionSize:
    """One measurement for a lesion seen as several parts (RECIST 1.1's fragmented lesion).

    ``ldi_mm`` is the sum of the parts' LDi; ``sdi_mm`` the sum of their PPDs divided by it, so that
    LDi x SDi is the sum of the parts' PPDs (and SDi <= LDi); SUVmax the highest of the parts.

    Parameters
    ----------
    parts : sequence of LesionSize
        The parts (one part is returned unchanged; none gives 0 x 0).

    Returns
    -------
    LesionSize
        The combined measurement.
    """
    if not parts:
        return LesionSize(0.0, 0.0, None)
    if len(parts) == 1:
        return parts[0]
    ldi = sum(p.ldi_mm for p in parts)
    ppd = sum(p.ldi_mm * p.sdi_mm for p in parts)
    suv = [p.suvmax for p in parts if p.suvmax is not None]
    return LesionSize(ldi, ppd / ldi if ldi > 0 else 0.0, max(suv) if suv else None)


def select_targets(sizes: Mapping[str, LesionSize], extranodal: Mapping[str, bool | None]
                   ) -> tuple[set[str], str | None]:
    """Lugano 2014 target lesions: up to six measurable lesions with the largest baseline PPD.

    Parameters
    ----------
    sizes : mapping of str to LesionSize
        Baseline lesion id -> its baseline measurement (in lesion order: ties keep it).
    extranodal : mapping of str to bool or None
        Lesion id -> extranodal (None: unknown, taken as a node).

    Returns
    -------
    tuple of (set of str, str or None)
        The target ids, and a warning when no lesion was measurable.
    """
    def measurable(lid: str) -> bool:
        limit = MEASURABLE_EXTRANODAL_MM if extranodal.get(lid) else MEASURABLE_NODE_MM
        return sizes[lid].ldi_mm > limit

    order = sorted(sizes, key=lambda lid: -sizes[lid].ldi_mm * sizes[lid].sdi_mm)
    chosen = [lid for lid in order if measurable(lid)][:MAX_TARGETS]
    if chosen or not order:
        return set(chosen), None
    return {order[0]}, (f"no baseline lesion is measurable by Lugano 2014 (LDi > {MEASURABLE_NODE_MM:g} mm "
                        f"nodal, > {MEASURABLE_EXTRANODAL_MM:g} mm extranodal): the largest, lesion "
                        f"{order[0]}, is the target")


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 2)


def baseline_track_rows(patient_id: str, scan_date: str, sizes: Mapping[str, LesionSize],
                        targets: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Measurement and track rows of the baseline scan.

    Parameters
    ----------
    patient_id, scan_date : str
        The patient and the baseline scan's date.
    sizes : mapping of str to LesionSize
        Baseline lesion id -> measurement.
    targets : set of str
        The target lesion ids.

    Returns
    -------
    tuple of (list of dict, list of dict)
        Measurement rows and track rows (event ``baseline``).
    """
    meas = [{"patient_id": patient_id, "lesion_id": lid, "scan_date": scan_date, "ldi_mm": _num(s.ldi_mm),
             "sdi_mm": _num(s.sdi_mm), "suvmax": _num(s.suvmax), "deauville": None, "target": lid in targets}
            for lid, s in sizes.items()]
    tracks = [{"patient_id": patient_id, "scan_date": scan_date, "lesion_id": lid, "component": lid,
               "event": "baseline", "ldi_mm": _num(s.ldi_mm), "sdi_mm": _num(s.sdi_mm)}
              for lid, s in sizes.items()]
    return meas, tracks


def scan_track_rows(patient_id: str, scan_date: str, match: MatchResult, baseline_ids: Mapping[int, str],
                    followup_ids: Mapping[int, str], sizes: Mapping[int, LesionSize], targets: set[str]
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """Measurement rows, track rows and the new-lesion flag of one follow-up or failure scan.

    Parameters
    ----------
    patient_id, scan_date : str
        The patient and the scan's date.
    match : MatchResult
        The scan's lesions matched to the baseline lesions.
    baseline_ids : mapping of int to str
        Baseline label -> lesion id.
    followup_ids : mapping of int to str
        Follow-up label -> the follow-up lesion's id on its scan (the track's ``component``).
    sizes : mapping of int to LesionSize
        Follow-up label -> its measurement on the follow-up grid.
    targets : set of str
        The target lesion ids (repeated on every row, as the table expects).

    Returns
    -------
    tuple of (list of dict, list of dict, bool)
        Measurement rows (baseline lesions inside the scan), track rows, and whether the scan shows a new
        lesion (a follow-up lesion local to no baseline lesion).
    """
    kinds = {g.group_id: g.kind for g in match.groups}
    attributed: dict[int, list[int]] = {}
    for f in match.followup:
        if f.match_class is MatchClass.LOCAL and f.baseline_label is not None:
            attributed.setdefault(f.baseline_label, []).append(f.followup_label)
    meas: list[dict[str, Any]] = []
    tracks: list[dict[str, Any]] = []
    for b in match.baseline:
        lid = baseline_ids.get(b.baseline_label)
        if lid is None:
            continue
        if not b.in_followup_scan and not b.followup_labels:
            tracks.append({"patient_id": patient_id, "scan_date": scan_date, "lesion_id": lid,
                           "component": None, "event": "outside-scan", "ldi_mm": None, "sdi_mm": None})
            continue
        event = _EVENTS.get(kinds.get(b.group_id, GroupKind.VANISHED), "disappeared")
        own = sorted(attributed.get(b.baseline_label, []))
        size = combine_parts([sizes[k] for k in own])
        meas.append({"patient_id": patient_id, "lesion_id": lid, "scan_date": scan_date,
                     "ldi_mm": _num(size.ldi_mm), "sdi_mm": _num(size.sdi_mm), "suvmax": _num(size.suvmax),
                     "deauville": None, "target": lid in targets})
        comps = sorted(b.followup_labels) or [None]
        for c in comps:
            tracks.append({"patient_id": patient_id, "scan_date": scan_date, "lesion_id": lid,
                           "component": None if c is None else followup_ids.get(c, str(c)), "event": event,
                           "ldi_mm": _num(size.ldi_mm), "sdi_mm": _num(size.sdi_mm)})
    new = False
    for f in match.followup:
        if f.match_class is MatchClass.LOCAL:
            continue
        new = True
        s = sizes.get(f.followup_label)
        tracks.append({"patient_id": patient_id, "scan_date": scan_date, "lesion_id": None,
                       "component": followup_ids.get(f.followup_label, str(f.followup_label)),
                       "event": "new", "ldi_mm": None if s is None else _num(s.ldi_mm),
                       "sdi_mm": None if s is None else _num(s.sdi_mm)})
    return meas, tracks, new
