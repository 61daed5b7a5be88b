"""Failure rows (the study folder's failures format) from a match, and their CSV file."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pofa.errors import ImagingError
from pofa.imaging.matching.results import MatchClass, MatchResult

__all__ = ["FAILURE_COLUMNS", "match_to_failures_rows", "write_failures_csv"]


#: Columns written by :func:`match_to_failures_rows`: the study folder's failures format, then the overlap
#: figures of the match.
FAILURE_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "failure_id",
    "scan_date",
    "baseline_lesion_id",
    "site",
    "extranodal",
    "x_mm",
    "y_mm",
    "z_mm",
    "diameter_cm",
    "match_class",
    "overlap_ml",
    "dice",
    "distance_mm",
    "followup_label",
    "group_id",
)


def _num(x: float | None, digits: int) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def match_to_failures_rows(
    result: MatchResult,
    *,
    patient_id: str,
    scan_date: str = "",
    followup_features: Any = None,
    lesion_ids: Mapping[int, str] | Callable[[int], str] | None = None,
    one_row_per_covered_lesion: bool = True,
) -> list[dict[str, Any]]:
    """Build the rows of the study folder's failures table from a match (one per follow-up lesion, see below).

    Parameters
    ----------
    result : MatchResult
        From :func:`match_patient`.
    patient_id : str
        The study's patient identifier.
    scan_date : str
        Date of the failure scan, ``YYYY-MM-DD`` (blank when unknown: ``pofa validate`` will ask for it).
    followup_features : sequence of LesionFeatures, optional
        Features of the follow-up lesions (:func:`pofa.imaging.features.lesion_features` on the failure scan);
        give ``site``, ``extranodal`` and ``diameter_cm`` (longest axial diameter). Without them those cells
        are blank (``pofa validate`` asks for ``site`` and ``extranodal`` of new lesions).
    lesion_ids : mapping or callable, optional
        Baseline label -> ``lesion_id`` of the lesions table. Default ``str(label)``, the id
        :func:`pofa.imaging.extract.extract` gives lesion ``label`` when no seed ids were given.
    one_row_per_covered_lesion : bool
        A follow-up lesion local to several baseline lesions (a merge) gives one row per baseline lesion it
        covers, so that each counts as a local failure; the extra rows have failure ids ``F<label>-2``,
        ``F<label>-3``, ... and the overlap figures of that pair. False: one row, the attributed lesion only.

    Returns
    -------
    list of dict
        Keys :data:`FAILURE_COLUMNS`; blank cells are None. ``failure_id`` is ``F<follow-up label>``;
        ``baseline_lesion_id`` is filled for local failures only; coordinates are the lesion's centre of
        mass in **baseline** LPS mm (after registration), comparable with the baseline lesion coordinates.

    Raises
    ------
    ImagingError
        When ``patient_id`` is blank.
    """
    if not str(patient_id).strip():
        raise ImagingError("patient_id must not be blank; give the study's patient identifier.")
    ids: Callable[[int], str]
    if lesion_ids is None:
        ids = str
    elif callable(lesion_ids):
        ids = lesion_ids
    else:
        mapping = dict(lesion_ids)

        def ids(label: int) -> str:
            if label not in mapping:
                raise ImagingError(f"No lesion id given for baseline label {label}.")
            return str(mapping[label])

    feats = {int(f.label): f for f in (followup_features or ())}
    b_vol = {b.baseline_label: b.volume_ml for b in result.baseline}
    rows: list[dict[str, Any]] = []
    for r in result.followup:
        f = feats.get(r.followup_label)
        extr = None if f is None or f.extranodal is None else ("yes" if f.extranodal else "no")
        base = {
            "patient_id": str(patient_id),
            "scan_date": scan_date or None,
            "site": (f.site or None) if f is not None else None,
            "extranodal": extr,
            "x_mm": _num(r.centre_lps[0], 2),
            "y_mm": _num(r.centre_lps[1], 2),
            "z_mm": _num(r.centre_lps[2], 2),
            "diameter_cm": _num(f.diameter_axial_mm / 10.0, 3) if f is not None else None,
            "match_class": r.match_class.value,
            "distance_mm": _num(r.distance_mm, 2),
            "followup_label": r.followup_label,
            "group_id": r.group_id,
        }
        if r.match_class is not MatchClass.LOCAL or r.baseline_label is None:
            rows.append(
                {
                    **base,
                    "failure_id": f"F{r.followup_label}",
                    "baseline_lesion_id": None,
                    "overlap_ml": 0.0,
                    "dice": 0.0,
                }
            )
            continue
        covered = [r.baseline_label] + [b for b, _ in r.local_to if b != r.baseline_label]
        if not one_row_per_covered_lesion:
            covered = covered[:1]
        ov = dict(r.local_to)
        for k, b in enumerate(covered, start=1):
            ov_ml = ov.get(b, 0) * result.voxel_volume_ml
            dsc = 2.0 * ov_ml / (b_vol[b] + r.volume_ml) if (b_vol[b] + r.volume_ml) > 0 else 0.0
            rows.append(
                {
                    **base,
                    "failure_id": f"F{r.followup_label}" + (f"-{k}" if k > 1 else ""),
                    "baseline_lesion_id": ids(b),
                    "overlap_ml": _num(ov_ml, 4),
                    "dice": _num(dsc, 4),
                }
            )
    return [{c: row.get(c) for c in FAILURE_COLUMNS} for row in rows]


def write_failures_csv(rows: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write failures rows (:data:`FAILURE_COLUMNS`) as CSV, atomically (blank for None).

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`match_to_failures_rows`.
    path : path-like
        The CSV file (replaced atomically).

    Returns
    -------
    Path
        ``path``.
    """
    import csv
    import io

    from pofa.atomic import write_text
    from pofa.io.writers import neutralise

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(FAILURE_COLUMNS), lineterminator="\n")
    w.writeheader()
    for row in rows:  # text cells neutralised (a patient id given as =cmd ...); numbers as they are
        cells = {c: row.get(c) for c in FAILURE_COLUMNS}
        w.writerow({c: "" if v is None else (neutralise(v) if isinstance(v, str) else v)
                    for c, v in cells.items()})
    out = Path(path)
    write_text(out, buf.getvalue())
    return out
