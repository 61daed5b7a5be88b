"""One patient's match from two label maps on their own grids and a transform (:func:`match_patient`)."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pofa.errors import ImagingError
from pofa.imaging.matching.core import match_label_arrays
from pofa.imaging.matching.labels import _foreground, as_label_map
from pofa.imaging.matching.resample import _resample_labels
from pofa.imaging.matching.results import (
    AssignBy,
    FollowupLesionMatch,
    GroupKind,
    MatchClass,
    MatchGroup,
    MatchResult,
)
from pofa.imaging.registration import RegistrationResult, invert_points, transform_from_file
from pofa.imaging.volume import Volume

if TYPE_CHECKING:  # pragma: no cover - typing only
    import SimpleITK as sitk

__all__ = ["match_patient"]


def _resolve_transform(transform: Any) -> tuple[sitk.Transform | None, RegistrationResult | None]:
    if transform is None:
        return None, None
    if isinstance(transform, RegistrationResult):
        return transform.transform, transform
    if isinstance(transform, (str, os.PathLike)):
        reg = transform_from_file(transform)
        return reg.transform, reg
    import SimpleITK as sitk

    if isinstance(transform, sitk.Transform):
        nan = math.nan
        given = RegistrationResult(
            sitk.Transform(transform),
            ("given",),
            (),
            (),
            None,
            None,
            nan,
            nan,
            f"Transform given by the caller ({transform.GetName()}).",
        )
        return transform, given
    raise ImagingError(
        "transform must be None, a RegistrationResult, a SimpleITK transform or a transform file "
        f"path; got {type(transform).__name__}."
    )


def match_patient(
    baseline_labels: Volume,
    followup_labels: Volume,
    transform: RegistrationResult | sitk.Transform | str | os.PathLike[str] | None = None,
    *,
    tolerance_mm: float = 0.0,
    margin_mm: float = 10.0,
    assign_by: AssignBy | str = AssignBy.OVERLAP,
    components: bool = False,
) -> MatchResult:
    """Match one patient's follow-up (failure) lesions to the baseline lesions.

    Parameters
    ----------
    baseline_labels, followup_labels : Volume
        Lesion label maps (0 = background, each lesion its own positive integer), each on its own scan's grid.
    transform : RegistrationResult, SimpleITK transform, path or None
        Baseline LPS -> follow-up LPS (ITK's fixed -> moving convention, e.g.
        :func:`~pofa.imaging.registration.
        register_scans`). None: the two scans share scanner coordinates (identity).
    tolerance_mm : float
        Local tolerance (default 0: voxel overlap).
    margin_mm : float
        Marginal margin (default 10 mm).
    assign_by : {"overlap", "dice"}
        What the one-to-one assignment maximises.
    components : bool
        Treat every 26-connected component as a lesion (for binary masks); the labels are then the component
        numbers from ``cc3d.connected_components``, not the file's values.

    Returns
    -------
    MatchResult
        Per follow-up lesion rows, per baseline lesion status and the groups.

    Notes
    -----
    The follow-up label map is resampled onto the baseline grid by nearest neighbour
    (:func:`resample_label_map`: equal to SimpleITK's whole-grid resampling, computed near the follow-up
    lesions only when the transform is linear). A follow-up lesion that
    the resampling misses (smaller than a baseline voxel) is placed as one voxel at its centre mapped into
    baseline space (inverse transform); one whose centre maps outside the baseline scan is reported as
    ``outside baseline scan``.
    """
    base = as_label_map(baseline_labels, "baseline")
    fu = as_label_map(followup_labels, "follow-up")
    if components:
        import cc3d

        base = base.with_voxels(
            cc3d.connected_components(np.ascontiguousarray(base.voxels) > 0, connectivity=26).astype(np.int32)
        )
        fu = fu.with_voxels(
            cc3d.connected_components(np.ascontiguousarray(fu.voxels) > 0, connectivity=26).astype(np.int32)
        )
    t, reg = _resolve_transform(transform)
    same = t is None and fu.same_grid(base, atol_mm=1e-6)
    notes: list[str] = []
    outside: list[tuple[int, float]] = []
    if same:
        fu_b = np.asarray(fu.voxels)
    else:
        native = _foreground(np.asarray(fu.voxels))
        resampled = _resample_labels(fu, base, t, native)
        fu_b = resampled.voxels
        how = "identity transform" if t is None else t.GetName()
        scope = (
            "computed near the follow-up lesions only, equal to resampling the whole grid"
            if resampled.lesion_boxes
            else "whole grid, SimpleITK"
        )
        notes.append(
            f"The follow-up label map was resampled onto the baseline grid (nearest neighbour, {how}; "
            f"{scope})."
        )
        lost = np.setdiff1d(native.labels, resampled.present)
        if lost.size:
            where = np.isin(native.labels, lost)
            centres_f = fu.index_to_lps(native.centre_index[where])
            centres_b = invert_points(t, centres_f)
            for label, cnt, pt in zip(native.labels[where], native.counts[where], centres_b, strict=True):
                ok = np.all(np.isfinite(pt))
                idx = np.rint(base.lps_to_index(pt)) if ok else None
                if idx is None or not bool(base.contains_index(idx)):
                    outside.append((int(label), float(cnt) * fu.voxel_volume_ml))
                    continue
                _place(fu_b, (int(idx[0]), int(idx[1]), int(idx[2])), int(label))
            placed = lost.size - len(outside)
            if placed:
                notes.append(
                    f"{placed} follow-up lesion(s) smaller than a baseline voxel were placed as one "
                    "voxel at their mapped centre."
                )
            if outside:
                notes.append(f"{len(outside)} follow-up lesion(s) lie outside the baseline scan.")

    fu_grid = fu

    def in_followup(centres: NDArray[np.float64]) -> NDArray[np.bool_]:
        from pofa.imaging.registration import transform_points

        q = transform_points(t, centres)
        return fu_grid.contains_index(fu_grid.lps_to_index(q))

    result = match_label_arrays(
        np.asarray(base.voxels),
        fu_b,
        base.affine,
        tolerance_mm=tolerance_mm,
        margin_mm=margin_mm,
        assign_by=assign_by,
        baseline_in_followup=in_followup,
        registration=reg,
        method_note=" ".join(notes),
    )
    if not outside:
        return result
    nan3 = (math.nan, math.nan, math.nan)
    next_group = max((g.group_id for g in result.groups), default=0)
    extra_rows = []
    extra_groups = []
    for n, (label, vol) in enumerate(outside, start=1):
        extra_rows.append(
            FollowupLesionMatch(
                label,
                MatchClass.OUTSIDE,
                None,
                False,
                0,
                0.0,
                0.0,
                math.nan,
                None,
                next_group + n,
                (),
                vol,
                nan3,
                0,
            )
        )
        extra_groups.append(MatchGroup(next_group + n, GroupKind.NEW, (), (label,)))
    rows = tuple(sorted(result.followup + tuple(extra_rows), key=lambda r: r.followup_label))
    return MatchResult(
        rows,
        result.baseline,
        result.groups + tuple(extra_groups),
        result.tolerance_mm,
        result.margin_mm,
        result.assign_by,
        result.voxel_volume_ml,
        result.registration,
        result.method,
    )


def _place(arr: NDArray[Any], idx: tuple[int, int, int], label: int) -> None:
    """Write ``label`` at ``idx``, or at the nearest free voxel of its 3 x 3 x 3 neighbourhood.

    When all 27 are taken by other lesions, the voxel of the largest neighbouring lesion nearest to ``idx`` is
    used (that lesion keeps its other voxels).
    """
    offsets = sorted(
        ((dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)),
        key=lambda o: (o[0] ** 2 + o[1] ** 2 + o[2] ** 2, o),
    )
    cands = [tuple(i + o for i, o in zip(idx, off, strict=True)) for off in offsets]
    cands = [c for c in cands if all(0 <= c[a] < arr.shape[a] for a in range(3))]
    for c in cands:
        if arr[c] == 0:
            arr[c] = label
            return
    sizes = {int(v): int(np.count_nonzero(arr == v)) for v in {int(arr[c]) for c in cands}}
    best = max(cands, key=lambda c: sizes[int(arr[c])])
    arr[best] = label
