"""Classes (local, marginal, de novo) and the result rows of every follow-up and baseline lesion."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from pofa.imaging.matching.distance import EPS_MM, LesionDistances
from pofa.imaging.matching.groups import Groups
from pofa.imaging.matching.labels import _Foreground, _to_lps
from pofa.imaging.matching.results import BaselineLesionStatus, FollowupLesionMatch, MatchClass

__all__ = ["baseline_rows", "followup_rows", "local_mask"]


def local_mask(
    overlap: dict[tuple[int, int], int], distances: LesionDistances, nf: int, tolerance_mm: float
) -> NDArray[np.bool_]:
    """Which follow-up lesion codes are local: they overlap a baseline lesion grown by ``tolerance_mm``.

    Parameters
    ----------
    overlap : dict
        Voxel counts of the overlapping (baseline code, follow-up code) pairs.
    distances : LesionDistances
        Surface gaps to the nearest baseline lesion.
    nf : int
        Number of follow-up lesions.
    tolerance_mm : float
        0: a shared voxel is needed (touching lesions, 0 mm apart, are not local); otherwise a gap up to it.

    Returns
    -------
    ndarray of bool, shape (nf,)
        True for each follow-up lesion code that is local.
    """
    local = np.zeros(nf, dtype=bool)
    for _, j in overlap:
        local[j] = True
    if tolerance_mm > 0:
        local |= distances.distance_mm <= tolerance_mm + EPS_MM
    return local


def followup_rows(
    bfg: _Foreground,
    ffg: _Foreground,
    affine: NDArray[np.float64],
    overlap: dict[tuple[int, int], int],
    edges: list[tuple[int, int]],
    local: NDArray[np.bool_],
    distances: LesionDistances,
    groups: Groups,
    assigned: set[tuple[int, int]],
    margin_mm: float,
) -> tuple[FollowupLesionMatch, ...]:
    """One row per follow-up lesion: class, attribution, overlap, distance, group.

    Parameters
    ----------
    bfg, ffg : _Foreground
        Baseline and follow-up lesions.
    affine : ndarray, shape (4, 4)
        Array index -> LPS mm.
    overlap : dict
        Voxel counts of the overlapping (baseline code, follow-up code) pairs.
    edges : list of (int, int)
        (baseline code, follow-up code) pairs local to each other (overlap or within the tolerance).
    local : ndarray of bool
        :func:`local_mask`.
    distances : LesionDistances
        Surface gaps to the nearest baseline lesion.
    groups : Groups
        Split/merge groups.
    assigned : set of (int, int)
        One-to-one identities.
    margin_mm : float
        A non-local lesion within this gap is marginal, beyond it de novo.

    Returns
    -------
    tuple of FollowupLesionMatch
        One row per follow-up lesion, in label order.
    """
    vox_ml = float(abs(np.linalg.det(affine[:3, :3])) / 1000.0)
    nf = ffg.labels.size
    f_assigned = {j: i for i, j in assigned}
    local_to_map: dict[int, list[tuple[int, int]]] = {j: [] for j in range(nf)}
    for i, j in edges:
        local_to_map[j].append((i, overlap.get((i, j), 0)))
    f_centres = _to_lps(ffg.centre_index, affine)
    dist, nearest = distances.distance_mm, distances.nearest
    rows: list[FollowupLesionMatch] = []
    for j in range(nf):
        lt = sorted(local_to_map[j], key=lambda t: (-t[1], int(bfg.labels[t[0]])))
        if local[j] and lt:
            cls = MatchClass.LOCAL
            i = f_assigned.get(j, lt[0][0])
            ov = overlap.get((i, j), 0)
            dsc = 2.0 * ov / (bfg.counts[i] + ffg.counts[j])
            bl: int | None = int(bfg.labels[i])
        else:
            cls = MatchClass.MARGINAL if dist[j] <= margin_mm + EPS_MM else MatchClass.DE_NOVO
            ov, dsc, bl = 0, 0.0, None
        rows.append(
            FollowupLesionMatch(
                followup_label=int(ffg.labels[j]),
                match_class=cls,
                baseline_label=bl,
                assigned=j in f_assigned and cls is MatchClass.LOCAL,
                overlap_voxels=int(ov),
                overlap_ml=ov * vox_ml,
                dice=float(dsc),
                distance_mm=float(dist[j]),
                nearest_baseline_label=int(bfg.labels[nearest[j]]) if nearest[j] >= 0 else None,
                group_id=int(groups.followup_group[j]),
                local_to=tuple((int(bfg.labels[i]), c) for i, c in lt),
                volume_ml=float(ffg.counts[j]) * vox_ml,
                centre_lps=(float(f_centres[j, 0]), float(f_centres[j, 1]), float(f_centres[j, 2])),
                voxels_in_baseline=int(ffg.counts[j]),
            )
        )
    return tuple(rows)


def baseline_rows(
    bfg: _Foreground,
    ffg: _Foreground,
    affine: NDArray[np.float64],
    edges: list[tuple[int, int]],
    local: NDArray[np.bool_],
    groups: Groups,
    assigned: set[tuple[int, int]],
    baseline_in_followup: Callable[[NDArray[np.float64]], NDArray[np.bool_]] | None,
) -> tuple[BaselineLesionStatus, ...]:
    """One status per baseline lesion: failed (a follow-up lesion is local to it), identity, group.

    Parameters
    ----------
    bfg, ffg : _Foreground
        Baseline and follow-up lesions.
    affine : ndarray, shape (4, 4)
        Array index -> LPS mm.
    edges : list of (int, int)
        (baseline code, follow-up code) pairs local to each other.
    local : ndarray of bool
        :func:`local_mask`.
    groups : Groups
        Split/merge groups.
    assigned : set of (int, int)
        One-to-one identities.
    baseline_in_followup : callable or None
        Maps baseline lesion centres (n, 3) LPS to True where they lie inside the follow-up scan.

    Returns
    -------
    tuple of BaselineLesionStatus
        One status per baseline lesion, in label order.
    """
    vox_ml = float(abs(np.linalg.det(affine[:3, :3])) / 1000.0)
    nb = bfg.labels.size
    b_centres = _to_lps(bfg.centre_index, affine)
    in_fu = (
        np.asarray(baseline_in_followup(b_centres), dtype=bool)
        if (baseline_in_followup and nb)
        else np.ones(nb, dtype=bool)
    )
    b_assigned = dict(assigned)
    followers: dict[int, list[int]] = {i: [] for i in range(nb)}
    for i, j in edges:
        if local[j]:
            followers[i].append(j)
    return tuple(
        BaselineLesionStatus(
            baseline_label=int(bfg.labels[i]),
            volume_ml=float(bfg.counts[i]) * vox_ml,
            centre_lps=(float(b_centres[i, 0]), float(b_centres[i, 1]), float(b_centres[i, 2])),
            failed=bool(followers[i]),
            assigned_followup_label=int(ffg.labels[b_assigned[i]]) if i in b_assigned else None,
            followup_labels=tuple(sorted(int(ffg.labels[j]) for j in followers[i])),
            group_id=int(groups.baseline_group[i]),
            in_followup_scan=bool(in_fu[i]),
        )
        for i in range(nb)
    )
