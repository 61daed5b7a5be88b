"""Lesion tracks across a patient's scans, and the measurements and scans tables written from them.

Each follow-up or failure scan has been registered to the baseline and its lesions matched to the baseline
lesions by :func:`pofa.imaging.matching.match_patient` (surface distance rule, split/merge groups, one-to-one
identity). From each scan's match this module makes:

- **track rows** (``tracks.csv``): per baseline lesion and scan its event, ``continues`` (one-to-one),
  ``split`` (one baseline lesion, several follow-up lesions), ``merge`` (several baseline lesions, one
  follow-up lesion), ``split-merge`` (both in one group), ``disappeared`` (nothing local to it) or
  ``outside-scan`` (its centre is outside the follow-up scan: not measured); and per follow-up lesion local to
  no baseline lesion a row of its new-lesion track (:class:`NewLesionTracks`: a new lesion seen on several
  scans is one track, ``new-<k>``, linked by the same matcher);
- **measurement rows** (``measurements.csv``, docs/response.md): each baseline lesion measured on each scan on
  that scan's own grid (:func:`pofa.response.diameters.axial_diameters`). A follow-up lesion counts for the
  baseline lesion it is attributed to (its one-to-one identity, else the baseline lesion it overlaps most);
  several follow-up lesions of one baseline lesion (a split) are added as RECIST 1.1 adds fragments:
  ``ldi_mm`` the sum of their LDi, ``sdi_mm`` = (sum of their PPDs) / ``ldi_mm``, so that the PPD is the sum
  of theirs; a baseline lesion with no follow-up lesion attributed (it disappeared, or it merged into a
  lesion attributed to another) is 0 x 0;
- **scan rows** (``scans.csv``): whether the scan shows new lesions.

**Deauville score** (a quantitative reading of the five-point scale, Barrington et al., J Clin Oncol
2014;32:3048: 1 no uptake above background, 2 uptake <= mediastinum, 3 > mediastinum but <= liver, 4
moderately > liver, 5 markedly > liver), only when the scan's organ map holds both references, the liver and
the aorta (blood pool, for the mediastinum); otherwise blank. The references are the SUVmean of each organ's
voxels outside the lesions; a lesion's uptake is its SUVmax on that scan, or for a lesion measured 0 x 0 the
highest SUV at its baseline voxels brought into the scan by the registration (the residual uptake at its
site). Scores: 2 when the uptake is at most the blood pool's, 3 at most the liver's, 4 at most
:data:`MARKED_LIVER_RATIO` times the liver's, 5 above. Score 1 (no uptake above background) is not told apart
from 2 (both are a complete metabolic response).

Targets (Lugano 2014: "up to six of the largest dominant nodes, nodal masses, and extranodal lesions",
measurable in two diameters, "from different body regions"): baseline lesions with LDi > 15 mm (nodes; a
lesion without an organ map is taken as a node) or > 10 mm (extranodal); with an organ map the largest of
each body region first (:func:`lesion_regions`, :func:`select_targets`), then the rest by baseline PPD, up
to six; without one the six with the largest baseline PPD. A patient without a measurable lesion gets its
largest lesion as the target (a warning says so).
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
    "NewLesionTracks",
    "UptakeReference",
    "baseline_track_rows",
    "combine_parts",
    "deauville_score",
    "lesion_regions",
    "lesion_sizes",
    "scan_track_rows",
    "select_targets",
    "site_uptake",
    "uptake_reference",
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
#: Uptake above this multiple of the liver reference (SUVmean) is "markedly higher than liver" (Deauville 5),
#: which is commonly read as two to three times the liver's uptake.
MARKED_LIVER_RATIO = 2.0
#: Fewest voxels of an organ, outside the lesions, for it to serve as a reference.
MIN_REFERENCE_VOXELS = 10

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


def lesion_regions(centres: Mapping[str, Sequence[float]], sites: Mapping[str, str],
                   extranodal: Mapping[str, bool | None], organs: str | Volume | None
                   ) -> tuple[dict[str, str] | None, str]:
    """Body region of each baseline lesion, for spreading the targets (:func:`select_targets`).

    An extranodal lesion's region is its site (the organ: ``liver``, ``lung``, ``bone``, ...); a lesion in
    the spleen is ``spleen``. A nodal lesion's region is its level along the head-foot axis (LPS z of its
    centre) against three landmarks of the organ map: ``nodes: neck`` above the lung apices, ``nodes:
    chest`` (mediastinal, hilar, axillary) down to the top of the liver (the right dome of the diaphragm),
    ``nodes: abdomen`` (retroperitoneal, mesenteric) down to the top of the hip bones (the iliac crests),
    ``nodes: pelvis`` (pelvic, inguinal) below. Without the lungs, the liver or the hip bones in the map all
    nodal lesions are one region, ``nodes``.

    Parameters
    ----------
    centres : mapping of str to sequence of float
        Lesion id -> its centre, LPS mm.
    sites : mapping of str to str
        Lesion id -> its site from the organ map (``pofa.imaging.organs``; blank without one).
    extranodal : mapping of str to bool or None
        Lesion id -> extranodal (None: unknown).
    organs : path, Volume or None
        The baseline scan's organ label map (None: none).

    Returns
    -------
    tuple of (dict of str to str or None, str)
        Lesion id -> region, or None without an organ map (or with a lesion of unknown site); and a note
        saying how the regions were found (for imaging.json).
    """
    if organs is None or any(extranodal.get(lid) is None for lid in centres):
        return None, ("no organ map at baseline (no lesion sites): targets are the largest measurable "
                      "lesions by PPD alone, not spread over body regions as Lugano 2014 asks")
    from scipy.ndimage import find_objects

    from pofa.imaging.organs import load_organ_map, site_of

    omap = load_organ_map(organs)
    arr = np.asarray(omap.labels.voxels)
    if not np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.int32)
    boxes = find_objects(arr)

    def z_range(pred: Any) -> tuple[float, float] | None:
        zs: list[float] = []
        for value, name in omap.names.items():
            box = boxes[value - 1] if 0 < value <= len(boxes) else None
            if box is None or not pred(name.lower()):
                continue
            corners = np.array([[b.start - 0.5 if k else b.stop - 0.5 for k, b in zip(bits, box, strict=True)]
                                for bits in np.ndindex(2, 2, 2)], dtype=np.float64)
            zs += [float(z) for z in omap.labels.index_to_lps(corners)[:, 2]]
        return (min(zs), max(zs)) if zs else None

    lung = z_range(lambda n: site_of(n)[0] == "lung")
    liver = z_range(lambda n: n == "liver")
    hip = z_range(lambda n: n.startswith("hip_") or n == "hip")
    levels = None if lung is None or liver is None or hip is None else (lung[1], liver[1], hip[1])
    out: dict[str, str] = {}
    for lid, c in centres.items():
        if extranodal.get(lid):
            out[lid] = sites.get(lid) or "extranodal"
        elif sites.get(lid) == "spleen":
            out[lid] = "spleen"
        elif levels is None:
            out[lid] = "nodes"
        else:
            z = float(c[2])
            out[lid] = ("nodes: neck" if z > levels[0] else "nodes: chest" if z > levels[1]
                        else "nodes: abdomen" if z > levels[2] else "nodes: pelvis")
    how = ("nodal lesions by level (lung apices, top of the liver, top of the hip bones)" if levels else
           "nodal lesions as one region (the organ map lacks the lungs, the liver or the hip bones)")
    return out, (f"targets spread over body regions (Lugano 2014): the largest measurable lesion of each "
                 f"region first, then the rest by PPD; regions: extranodal lesions by organ, {how}")


#: Nodal regions taken first when there are more regions than targets (Lugano 2014: "include mediastinal
#: and retroperitoneal areas, if involved").
PRIORITY_REGIONS = ("nodes: chest", "nodes: abdomen")


def select_targets(sizes: Mapping[str, LesionSize], extranodal: Mapping[str, bool | None],
                   regions: Mapping[str, str] | None = None) -> tuple[set[str], str | None]:
    """Lugano 2014 target lesions: up to six measurable lesions, the largest, spread over body regions.

    Lugano 2014 (Cheson et al., J Clin Oncol 2014;32:3059): "up to six of the largest dominant nodes,
    nodal masses, and extranodal lesions ... from different body regions representative of the patient's
    overall disease burden and include mediastinal and retroperitoneal areas, if involved". Measurable: LDi
    > 15 mm (nodes) or > 10 mm (extranodal). With ``regions`` the rule is: the largest measurable lesion
    (baseline PPD) of each region first, the regions of :data:`PRIORITY_REGIONS` before the others and
    the others by their largest lesion's PPD; then the remaining measurable lesions by PPD, up to six.
    Without ``regions``: the six largest by PPD.

    Parameters
    ----------
    sizes : mapping of str to LesionSize
        Baseline lesion id -> its baseline measurement (in lesion order: ties keep it).
    extranodal : mapping of str to bool or None
        Lesion id -> extranodal (None: unknown, taken as a node).
    regions : mapping of str to str, optional
        Lesion id -> body region (:func:`lesion_regions`); None: targets by size alone.

    Returns
    -------
    tuple of (set of str, str or None)
        The target ids, and a warning when no lesion was measurable.
    """
    def measurable(lid: str) -> bool:
        limit = MEASURABLE_EXTRANODAL_MM if extranodal.get(lid) else MEASURABLE_NODE_MM
        return sizes[lid].ldi_mm > limit

    order = sorted(sizes, key=lambda lid: -sizes[lid].ldi_mm * sizes[lid].sdi_mm)
    candidates = [lid for lid in order if measurable(lid)]
    if regions is None:
        chosen = candidates[:MAX_TARGETS]
    else:
        first: dict[str, str] = {}
        for lid in candidates:  # largest first: the first of a region is its largest
            first.setdefault(regions.get(lid, ""), lid)
        leads = sorted(first, key=lambda r: PRIORITY_REGIONS.index(r) if r in PRIORITY_REGIONS
                       else len(PRIORITY_REGIONS))  # stable: the other regions stay by size
        chosen = [first[r] for r in leads][:MAX_TARGETS]
        chosen += [lid for lid in candidates if lid not in chosen][:MAX_TARGETS - len(chosen)]
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
                    followup_ids: Mapping[int, str], sizes: Mapping[int, LesionSize], targets: set[str],
                    *, new_rows: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
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
    new_rows : bool
        Add a ``new`` track row (no ``lesion_id``) per new lesion; False when :class:`NewLesionTracks`
        writes them, linked across the scans.

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
        comps: list[int | None] = [*sorted(b.followup_labels)] or [None]
        for c in comps:
            tracks.append({"patient_id": patient_id, "scan_date": scan_date, "lesion_id": lid,
                           "component": None if c is None else followup_ids.get(c, str(c)), "event": event,
                           "ldi_mm": _num(size.ldi_mm), "sdi_mm": _num(size.sdi_mm)})
    new = False
    for f in match.followup:
        if f.match_class is MatchClass.LOCAL:
            continue
        new = True
        if not new_rows:
            continue
        s = sizes.get(f.followup_label)
        tracks.append({"patient_id": patient_id, "scan_date": scan_date, "lesion_id": None,
                       "component": followup_ids.get(f.followup_label, str(f.followup_label)),
                       "event": "new", "ldi_mm": None if s is None else _num(s.ldi_mm),
                       "sdi_mm": None if s is None else _num(s.sdi_mm)})
    return meas, tracks, new


#: Prefix of the ids of new-lesion tracks (tracks.csv): ``new-1``, ``new-2``, ... per patient.
NEW_TRACK_PREFIX = "new-"


class NewLesionTracks:
    """One patient's new lesions linked from scan to scan, on the baseline grid (tracks.csv only).

    A new lesion is a scan lesion local to no baseline lesion (marginal, de novo or outside the baseline
    scan). Each scan's new lesions are matched, by the same rule as the baseline lesions
    (:func:`pofa.imaging.matching.match_patient`: the scan registered to the baseline, surfaces within
    ``tolerance_mm``, split/merge groups, one-to-one identity), to the new lesions of the earlier scans, each
    held on the baseline grid where it was last seen. A new lesion local to an earlier one continues its
    track (same id; events as for baseline lesions: ``continues``, ``split``, ``merge``, ``split-merge``);
    one local to none starts a track (event ``new``, id ``new-<k>``, never a baseline lesion's id). A track
    not seen on a later scan is ``disappeared`` (``outside-scan`` when its site is outside that scan) and
    keeps its last position, so a lesion coming back there continues it. A new lesion whose centre maps
    outside the baseline scan has no position on the baseline grid: it gets a track of its own each time.

    Parameters
    ----------
    baseline_labels : Volume
        The baseline lesion label map (its grid holds the tracks).
    baseline_ids : iterable of str
        The baseline lesion ids (new-track ids avoid them).
    tolerance_mm, margin_mm : float
        The matcher's local tolerance and marginal margin (as for the baseline lesions).
    """

    def __init__(self, baseline_labels: Volume, baseline_ids: Sequence[str] | set[str], *,
                 tolerance_mm: float = 0.0, margin_mm: float = 10.0) -> None:
        self._grid = baseline_labels
        self._map = np.zeros(baseline_labels.shape, np.int32)
        self._ids: dict[int, str] = {}
        self._taken = set(baseline_ids)
        self._next = 1
        self.tolerance_mm = float(tolerance_mm)
        self.margin_mm = float(margin_mm)

    @property
    def ids(self) -> tuple[str, ...]:
        """The new-lesion track ids so far, in order of first sighting.

        Returns
        -------
        tuple of str
            ``new-<k>`` ids.
        """
        return tuple(self._ids[k] for k in sorted(self._ids))

    def _new_track(self) -> int:
        label = len(self._ids) + 1
        while f"{NEW_TRACK_PREFIX}{self._next}" in self._taken:
            self._next += 1
        self._ids[label] = f"{NEW_TRACK_PREFIX}{self._next}"
        self._next += 1
        return label

    def add(self, patient_id: str, scan_date: str, match: MatchResult, followup_labels: Volume,
            transform: Any, followup_ids: Mapping[int, str], sizes: Mapping[int, LesionSize]
            ) -> list[dict[str, Any]]:
        """Link one scan's new lesions to the tracks so far; return the scan's new-lesion track rows.

        Parameters
        ----------
        patient_id, scan_date : str
            The patient and the scan's date.
        match : MatchResult
            The scan's lesions matched to the baseline lesions (which of them are new).
        followup_labels : Volume
            The scan's lesion label map, on its own grid.
        transform : RegistrationResult, SimpleITK transform or None
            Baseline LPS -> the scan's LPS (as given to the matcher).
        followup_ids : mapping of int to str
            Scan label -> the lesion's id on its scan (the track's ``component``).
        sizes : mapping of int to LesionSize
            Scan label -> its measurement on the scan's grid.

        Returns
        -------
        list of dict
            Track rows (:data:`TRACK_COLUMNS`): every earlier track's event on this scan, then a ``new`` row
            per lesion starting a track; ``ldi_mm`` / ``sdi_mm`` as for baseline lesions (parts added).
        """
        from pofa.imaging.matching import match_patient
        from pofa.imaging.matching.resample import resample_label_map
        from pofa.imaging.registration import RegistrationResult

        new_labels = [f.followup_label for f in match.followup if f.match_class is not MatchClass.LOCAL]
        fu = np.asarray(followup_labels.voxels)
        only = np.where(np.isin(fu, new_labels), fu, 0).astype(np.int32)
        fu_new = followup_labels.with_voxels(only)
        known = self._grid.with_voxels(self._map.copy())
        m = match_patient(known, fu_new, transform, tolerance_mm=self.tolerance_mm, margin_mm=self.margin_mm)
        _, rows, _ = scan_track_rows(patient_id, scan_date, m, self._ids, followup_ids, sizes, set(),
                                     new_rows=False)
        t = transform.transform if isinstance(transform, RegistrationResult) else transform
        on_grid = np.asarray(resample_label_map(fu_new, self._grid, t).voxels)
        seen = {f.baseline_label for f in m.followup
                if f.match_class is MatchClass.LOCAL and f.baseline_label is not None}
        self._map[np.isin(self._map, sorted(seen))] = 0  # re-drawn below where this scan shows them
        for f in m.followup:
            if f.match_class is MatchClass.LOCAL and f.baseline_label is not None:
                label = f.baseline_label
            else:
                label = self._new_track()
                s = sizes.get(f.followup_label)
                rows.append({"patient_id": patient_id, "scan_date": scan_date, "lesion_id": self._ids[label],
                             "component": followup_ids.get(f.followup_label, str(f.followup_label)),
                             "event": "new", "ldi_mm": None if s is None else _num(s.ldi_mm),
                             "sdi_mm": None if s is None else _num(s.sdi_mm)})
            here = on_grid == f.followup_label
            if here.any():
                self._map[here] = label
            elif all(math.isfinite(c) for c in f.centre_lps):  # smaller than a baseline voxel: its centre
                idx = np.rint(self._grid.lps_to_index(np.asarray(f.centre_lps))).astype(np.int64)
                if bool(self._grid.contains_index(idx)):
                    self._map[tuple(int(i) for i in idx)] = label
        return rows


@dataclass(frozen=True, slots=True)
class UptakeReference:
    """The Deauville references of one scan: SUVmean of the blood pool (mediastinum) and of the liver."""

    mediastinum: float
    liver: float


def uptake_reference(suv: Volume, organs: str | Volume | None, lesions: Volume) -> UptakeReference | None:
    """The scan's blood-pool and liver references, or None without both in its organ map.

    Parameters
    ----------
    suv : Volume
        The scan's SUV image.
    organs : path, Volume or None
        The scan's organ label map (TotalSegmentator names; :func:`pofa.imaging.organs.load_organ_map`).
    lesions : Volume
        The scan's lesion label map (its voxels are left out of the references).

    Returns
    -------
    UptakeReference or None
        SUVmean of the aorta's and of the liver's voxels outside the lesions; None when the organ map is
        missing or lacks either organ (fewer than :data:`MIN_REFERENCE_VOXELS` voxels).
    """
    if organs is None:
        return None
    from pofa.imaging.organs import load_organ_map

    omap = load_organ_map(organs).on_grid(suv)
    names = {n.lower() for n in omap.names.values()}
    if not {"aorta", "liver"} <= names:
        return None
    outside = np.asarray(lesions.voxels) == 0
    values = np.asarray(suv.voxels, dtype=np.float64)
    means = []
    for organ in ("aorta", "liver"):
        m = omap.mask_of(organ) & outside
        if int(m.sum()) < MIN_REFERENCE_VOXELS:
            return None
        means.append(float(values[m].mean()))
    return UptakeReference(means[0], means[1])


def deauville_score(uptake: float, ref: UptakeReference) -> int:
    """Deauville score 2-5 of an uptake against the scan's references (module docstring).

    Parameters
    ----------
    uptake : float
        The lesion's SUVmax (or residual uptake at its site).
    ref : UptakeReference
        The scan's references.

    Returns
    -------
    int
        2 (<= blood pool), 3 (<= liver), 4 (<= MARKED_LIVER_RATIO x liver) or 5.
    """
    if uptake <= ref.mediastinum:
        return 2
    if uptake <= ref.liver:
        return 3
    if uptake <= MARKED_LIVER_RATIO * ref.liver:
        return 4
    return 5


def site_uptake(baseline_labels: Volume, label: int, transform: Any, suv: Volume) -> float | None:
    """Highest SUV of a scan at a baseline lesion's voxels, brought into the scan by the registration.

    Parameters
    ----------
    baseline_labels : Volume
        The baseline lesion label map.
    label : int
        The baseline lesion's label.
    transform : SimpleITK transform or None
        Baseline LPS -> the scan's LPS (None: the identity).
    suv : Volume
        The scan's SUV image.

    Returns
    -------
    float or None
        The highest SUV at the nearest voxels of the mapped lesion voxel centres; None when none falls
        inside the scan.
    """
    from pofa.imaging.registration import transform_points

    idx = np.argwhere(np.asarray(baseline_labels.voxels) == label).astype(np.float64)
    if not len(idx):
        return None
    pts = transform_points(transform, baseline_labels.index_to_lps(idx))
    ijk = np.rint(suv.lps_to_index(pts)).astype(np.int64)
    inside = np.all((ijk >= 0) & (ijk < np.asarray(suv.shape)), axis=1)
    if not inside.any():
        return None
    ijk = ijk[inside]
    return float(np.asarray(suv.voxels)[ijk[:, 0], ijk[:, 1], ijk[:, 2]].max())
