"""Matching two label maps on one grid (:func:`match_label_arrays`), as a sequence of named steps."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pofa.errors import ImagingError
from pofa.imaging.matching.classify import baseline_rows, followup_rows, local_mask
from pofa.imaging.matching.distance import lesion_distances
from pofa.imaging.matching.groups import assign_identities, find_groups
from pofa.imaging.matching.labels import _Foreground, _foreground
from pofa.imaging.matching.results import AssignBy, MatchResult
from pofa.imaging.registration import RegistrationResult

__all__ = ["MatchOptions", "match_label_arrays"]


@dataclass(frozen=True, slots=True)
class MatchOptions:
    """The rules of a match (checked on creation).

    Attributes
    ----------
    tolerance_mm : float
        A follow-up lesion overlapping a baseline lesion grown by this many mm is local (0 = a shared voxel).
    margin_mm : float
        A non-local follow-up lesion whose surface lies within this many mm of a baseline lesion's surface is
        marginal; beyond it, de novo. At least ``tolerance_mm``.
    assign_by : AssignBy
        What the one-to-one assignment maximises (overlap volume or Dice).

    Raises
    ------
    ImagingError
        A negative or non-finite tolerance, a margin below the tolerance, an unknown ``assign_by``.
    """

    tolerance_mm: float = 0.0
    margin_mm: float = 10.0
    assign_by: AssignBy = AssignBy.OVERLAP

    def __post_init__(self) -> None:
        tol = float(self.tolerance_mm)
        margin = float(self.margin_mm)
        if not (math.isfinite(tol) and tol >= 0):
            raise ImagingError(f"tolerance_mm must be >= 0; got {self.tolerance_mm}.")
        if not (math.isfinite(margin) and margin >= tol):
            raise ImagingError(f"margin_mm must be >= tolerance_mm ({tol:g}); got {self.margin_mm}.")
        how = _assign_by(self.assign_by)
        object.__setattr__(self, "tolerance_mm", tol)
        object.__setattr__(self, "margin_mm", margin)
        object.__setattr__(self, "assign_by", how)


def _assign_by(value: AssignBy | str) -> AssignBy:
    try:
        return AssignBy(value)
    except ValueError as exc:
        raise ImagingError(f"assign_by must be 'overlap' or 'dice'; got {value!r}.") from exc


def _check_arrays(baseline: NDArray[Any], followup: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    b_arr = np.asarray(baseline)
    f_arr = np.asarray(followup)
    if b_arr.shape != f_arr.shape or b_arr.ndim != 3:
        raise ImagingError(
            f"The two label maps must be 3-D and on the same grid; got {b_arr.shape} and {f_arr.shape}."
        )
    return b_arr, f_arr


def _overlap_counts(b_arr: NDArray[Any], bfg: _Foreground, ffg: _Foreground) -> dict[tuple[int, int], int]:
    """Voxel counts of every overlapping (baseline code, follow-up code) pair, in one pass over the follow-up
    foreground (pair key ``baseline_code * nf + followup_code`` through ``np.unique``)."""
    nf = ffg.labels.size
    bv = b_arr.ravel()[ffg.flat]
    both = bv != 0
    ov_b = bv[both].astype(np.int64)
    ov_f = ffg.code[both]
    if not ov_b.size:
        return {}
    bcode = np.searchsorted(bfg.labels, ov_b)  # labels are sorted: position = code (any label size)
    keys, counts = np.unique(bcode * nf + ov_f, return_counts=True)
    return {(int(k // nf), int(k % nf)): int(c) for k, c in zip(keys, counts, strict=True)}


def _method_text(options: MatchOptions, note: str) -> str:
    how = "overlap volume" if options.assign_by is AssignBy.OVERLAP else "Dice"
    return (
        "Follow-up lesions classified against baseline lesions on the baseline grid: local = overlap with a "
        f"baseline lesion grown by {options.tolerance_mm:g} mm, marginal = within {options.margin_mm:g} mm "
        "(distances between lesion surfaces, voxel faces: touching lesions are 0 mm apart), de novo = "
        "farther; split/merge groups = connected components of the overlap graph; one-to-one identity by "
        f"linear assignment (scipy.optimize.linear_sum_assignment) maximising {how}."
        + (f" {note}" if note else "")
    )


def match_label_arrays(
    baseline: NDArray[Any],
    followup: NDArray[Any],
    affine: NDArray[np.float64],
    *,
    tolerance_mm: float = 0.0,
    margin_mm: float = 10.0,
    assign_by: AssignBy | str = AssignBy.OVERLAP,
    baseline_in_followup: Callable[[NDArray[np.float64]], NDArray[np.bool_]] | None = None,
    registration: RegistrationResult | None = None,
    method_note: str = "",
    options: MatchOptions | None = None,
) -> MatchResult:
    """Match two label maps on the same grid (the follow-up already in baseline space).

    Steps: foreground voxels of both maps; overlap counts (one pass); surface gaps to the nearest baseline
    lesion and the pairs within the tolerance (:func:`~pofa.imaging.matching.distance.lesion_distances`);
    local lesions; split/merge groups; one-to-one identities; result rows.

    Parameters
    ----------
    baseline, followup : ndarray of int
        Label maps of the same shape (0 = background).
    affine : ndarray, shape (4, 4)
        Array index -> LPS mm of that grid (:attr:`Volume.affine`).
    tolerance_mm : float
        A follow-up lesion within this distance of a baseline lesion is local (0 = voxel overlap).
    margin_mm : float
        A non-local follow-up lesion within this distance is marginal; beyond it, de novo.
    assign_by : {"overlap", "dice"}
        What the one-to-one assignment maximises.
    baseline_in_followup : callable, optional
        Maps baseline lesion centres (n, 3) LPS to True where they lie inside the follow-up scan.
    registration : RegistrationResult, optional
        Recorded in the result.
    method_note : str
        Appended to the method text.
    options : MatchOptions, optional
        The rules as one object; when given, ``tolerance_mm``, ``margin_mm`` and ``assign_by`` are ignored.

    Returns
    -------
    MatchResult
        One row per follow-up lesion, one status per baseline lesion, the identities and the settings.

    Raises
    ------
    ImagingError
        Maps of different shapes or not 3-D; bad options (:class:`MatchOptions`).
    """
    opts = options if options is not None else MatchOptions(tolerance_mm, margin_mm, _assign_by(assign_by))
    b_arr, f_arr = _check_arrays(baseline, followup)
    aff = np.asarray(affine, dtype=np.float64)
    bfg = _foreground(b_arr)
    ffg = _foreground(f_arr)
    overlap = _overlap_counts(b_arr, bfg, ffg)
    distances = lesion_distances(bfg, b_arr, ffg, f_arr, aff, overlap, opts.tolerance_mm)
    local = local_mask(overlap, distances, ffg.labels.size, opts.tolerance_mm)
    edges = list(overlap) + sorted(distances.tolerance_pairs)
    groups = find_groups(bfg, ffg, edges)
    assigned = assign_identities(groups, bfg, ffg, overlap, distances.tolerance_pairs, opts.assign_by)
    f_rows = followup_rows(bfg, ffg, aff, overlap, edges, local, distances, groups, assigned, opts.margin_mm)
    b_rows = baseline_rows(bfg, ffg, aff, edges, local, groups, assigned, baseline_in_followup)
    return MatchResult(
        f_rows,
        b_rows,
        groups.groups,
        opts.tolerance_mm,
        opts.margin_mm,
        opts.assign_by,
        float(abs(np.linalg.det(aff[:3, :3])) / 1000.0),
        registration,
        _method_text(opts, method_note),
    )
