"""Nearest-neighbour resampling of the follow-up label map onto the baseline grid, near the lesions only.

For a linear transform only the voxels near the follow-up lesions are computed, with the result SimpleITK's
whole-grid ``Resample`` gives voxel for voxel (near ties go to SimpleITK); other transforms are resampled
whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pofa.imaging.matching.labels import _Foreground, _foreground, _to_lps, as_label_map
from pofa.imaging.registration import resample_volume
from pofa.imaging.volume import Volume

if TYPE_CHECKING:  # pragma: no cover - typing only
    import SimpleITK as sitk

__all__ = ["resample_label_map"]


#: A mapped voxel centre closer than this (in follow-up voxels) to a rounding boundary (a half-integer
#: index) is a near tie, which numpy's arithmetic and ITK's might round differently; then the whole grid is
#: resampled by SimpleITK instead. The two arithmetics place a voxel within 1e-12 voxel of each other
#: (6e-13 measured on a 512 x 512 x 600 grid 1.6 m from the scanner origin, rotated;
#: tests/imaging_match/test_resample_fast.py checks 1e-11), so every voxel outside the window rounds the
#: same way in both. Registration output meets the window with a chance of about 3 x 2e-9 per candidate
#: voxel (once in about 300 matches of the benchmark's 20 M-voxel maps, 0.5 M candidates); a transform that
#: maps voxel centres exactly onto half-voxel positions (a translation by half a voxel, a grid offset by half
#: a voxel) always does, and is resampled whole.
_TIE_VOXELS = 1e-9
#: Below this |d index / d x| an axis is taken as independent of x along a scanline (its change over a whole
#: scanline is then below 1e-9 voxel, far inside the half-voxel padding of the lesion boxes).
_FLAT = 1e-12


@dataclass(frozen=True, slots=True)
class _Resampled:
    """A follow-up label map on the baseline grid, the labels present in it and how it was made."""

    voxels: NDArray[Any]
    present: NDArray[np.int64]
    lesion_boxes: bool  # True: only the voxels near the follow-up lesions were computed


def _linear_index_map(
    moving: Volume, reference: Volume, transform: sitk.Transform | None
) -> NDArray[np.float64] | None:
    """4 x 4 map from reference array index to moving continuous array index, or None (not linear)."""
    if transform is None:
        t_aff = np.eye(4)
    else:
        if not transform.IsLinear():
            return None
        centre = reference.index_to_lps((np.asarray(reference.shape, dtype=np.float64) - 1.0) / 2.0)
        p0 = np.asarray(transform.TransformPoint([float(v) for v in centre]), dtype=np.float64)
        t_aff = np.eye(4)
        for k in range(3):
            q = centre.copy()
            q[k] += 100.0
            t_aff[:3, k] = (np.asarray(transform.TransformPoint([float(v) for v in q])) - p0) / 100.0
        t_aff[:3, 3] = p0 - t_aff[:3, :3] @ centre
        if not np.all(np.isfinite(t_aff)) or abs(np.linalg.det(t_aff[:3, :3])) < 1e-12:
            return None
    return np.linalg.inv(moving.affine) @ t_aff @ reference.affine


def _label_boxes(fg: _Foreground) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per label of ``fg``: lowest and highest array index along each axis, (n, 3) each."""
    n = fg.labels.size
    lo = np.full((n, 3), np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.full((n, 3), -1, dtype=np.int64)
    for a in range(3):
        np.minimum.at(lo[:, a], fg.code, fg.coords[a])
        np.maximum.at(hi[:, a], fg.code, fg.coords[a])
    return lo, hi


def _resample_labels(
    moving: Volume, reference: Volume, transform: sitk.Transform | None, fg: _Foreground | None = None
) -> _Resampled:
    """``moving`` (a label map) on ``reference``'s grid by nearest neighbour through ``transform``: equal
    voxel for voxel to ``resample_volume(moving, reference, transform, "nearest")``, computed near the
    lesions only when the transform is linear (see :func:`resample_label_map`)."""
    fg = fg if fg is not None else _foreground(np.asarray(moving.voxels))
    dtype = moving.voxels.dtype
    out = np.zeros(reference.shape, dtype=dtype)
    if fg.labels.size == 0:
        return _Resampled(out, np.zeros(0, dtype=np.int64), True)
    m = _linear_index_map(moving, reference, transform)
    fast = None if m is None else _resample_boxes(moving, reference, fg, m, out)
    if fast is None:
        arr = np.array(resample_volume(moving, reference, transform, "nearest").voxels)
        present = _foreground(arr).labels
        return _Resampled(arr, present, False)
    return _Resampled(out, fast, True)


def _resample_boxes(
    moving: Volume,
    reference: Volume,
    fg: _Foreground,
    m: NDArray[np.float64],
    out: NDArray[Any],
) -> NDArray[np.int64] | None:
    """Fill ``out`` (zeros, reference grid) near the lesions; returns the labels present, or None when the
    whole grid should be resampled instead (too many candidate voxels, or a near tie)."""
    rshape = np.asarray(reference.shape, dtype=np.int64)
    mshape = np.asarray(moving.shape, dtype=np.int64)
    # each lesion's box in moving index space, padded by one voxel: the voxels that can round into the lesion
    # map inside [lo - 0.5, hi + 0.5]; the extra half voxel absorbs every floating-point error below
    lo, hi = _label_boxes(fg)
    flo, fhi = (lo - 1).astype(np.float64), (hi + 1).astype(np.float64)
    minv = np.asarray(np.linalg.inv(m), dtype=np.float64)
    corners = np.stack(
        [np.stack([(fhi if c[a] else flo)[:, a] for a in range(3)], axis=1) for c in np.ndindex(2, 2, 2)]
    )  # (8, n, 3) moving index
    ref_corners = _to_lps(corners.reshape(-1, 3), minv).reshape(8, -1, 3)  # reference continuous index
    r_lo = np.maximum(np.floor(ref_corners.min(axis=0)).astype(np.int64), 0)
    r_hi = np.minimum(np.ceil(ref_corners.max(axis=0)).astype(np.int64), rshape - 1)
    keep = np.all(r_hi >= r_lo, axis=1)
    if not keep.any():
        return np.zeros(0, dtype=np.int64)
    r_lo, r_hi, flo, fhi = r_lo[keep], r_hi[keep], flo[keep], fhi[keep]
    # the scanlines (a0, a1) of every box
    n0 = r_hi[:, 0] - r_lo[:, 0] + 1
    n1 = r_hi[:, 1] - r_lo[:, 1] + 1
    per_box = n0 * n1
    box = np.repeat(np.arange(per_box.size), per_box)
    local = np.arange(int(per_box.sum())) - np.repeat(np.cumsum(per_box) - per_box, per_box)
    d0, d1 = np.divmod(local, n1[box])
    a0 = (r_lo[box, 0] + d0).astype(np.float64)
    a1 = (r_lo[box, 1] + d1).astype(np.float64)
    # along a scanline the moving index is g + m[:, 2] * x: the x range that stays inside the padded box
    x_lo = np.zeros(box.size)
    x_hi = np.full(box.size, float(rshape[2] - 1))
    for j in range(3):
        g = m[j, 3] + m[j, 0] * a0 + m[j, 1] * a1
        slope = m[j, 2]
        if abs(slope) <= _FLAT:
            bad = (g < flo[box, j]) | (g > fhi[box, j])
            x_hi[bad] = -1.0
            continue
        u = (flo[box, j] - g) / slope
        v = (fhi[box, j] - g) / slope
        np.maximum(x_lo, np.minimum(u, v), out=x_lo)
        np.minimum(x_hi, np.maximum(u, v), out=x_hi)
    xs = np.ceil(x_lo).astype(np.int64)
    xe = np.floor(x_hi).astype(np.int64)
    length = np.maximum(xe - xs + 1, 0)
    n_cand = int(length.sum())
    if n_cand >= reference.voxels.size // 2:
        return None  # the lesions cover much of the grid: SimpleITK's full pass is as fast
    line = np.flatnonzero(length)
    length, xs, a0, a1 = length[line], xs[line], a0[line], a1[line]
    x = np.arange(n_cand) - np.repeat(np.cumsum(length) - length - xs, length)
    xf = x.astype(np.float64)
    flat_f = np.zeros(n_cand)
    inside = np.ones(n_cand, dtype=bool)
    near = np.zeros(n_cand, dtype=bool)
    strides = (float(mshape[1] * mshape[2]), float(mshape[2]), 1.0)
    for j in range(3):
        h = np.repeat(m[j, 3] + 0.5 + m[j, 0] * a0 + m[j, 1] * a1, length)
        h += m[j, 2] * xf  # moving continuous index + 0.5: its floor is the nearest voxel
        k = np.floor(h)
        frac = h - k
        near |= (frac < _TIE_VOXELS) | (frac > 1.0 - _TIE_VOXELS)
        inside &= (k >= 0.0) & (k <= float(mshape[j] - 1))
        k *= strides[j]
        flat_f += k
    if near.any():
        return None  # a near tie: only SimpleITK's own arithmetic surely rounds it as SimpleITK does
    ref_flat = np.repeat((a0 * rshape[1] + a1).astype(np.int64) * rshape[2], length) + x
    src = flat_f.astype(np.int64)
    sel = np.flatnonzero(inside)
    vals = moving.voxels.ravel()[src[sel]]
    nz = vals != 0
    out.ravel()[ref_flat[sel[nz]]] = vals[nz]
    hit = vals[nz].astype(np.int64)
    if not hit.size:
        return np.zeros(0, dtype=np.int64)
    if int(hit.max()) <= 4 * hit.size + 65536:
        return np.flatnonzero(np.bincount(hit)).astype(np.int64)
    return np.unique(hit)


def resample_label_map(
    moving: Volume, reference: Volume, transform: sitk.Transform | None = None
) -> Volume:
    """A label map resampled onto ``reference``'s grid by nearest neighbour through ``transform``.

    The result equals ``pofa.imaging.registration.resample_volume(moving, reference, transform, "nearest")``
    (SimpleITK's ``Resample`` with ``sitkNearestNeighbor``, default 0) voxel for voxel, but for a linear
    transform (translation, Euler, similarity, versor, affine, or a composite of these; None = identity)
    only the reference voxels that can fall into a lesion are computed:

    1. the box of each lesion (non-zero label) in ``moving``'s index space, padded by one voxel, is mapped
       into reference index space through the inverse of the linear map (its 8 corners); along each
       reference scanline crossing that box, the run of voxels that map into the padded box is taken;
    2. those voxels are mapped with numpy (one 4 x 4 map from reference index to moving index) and rounded to
       the nearest moving voxel, half up as ITK rounds (``itk::Math::RoundHalfIntegerUp``); a voxel is
       inside when ``-0.5 <= index < size - 0.5`` on every axis (``IsInsideBuffer``);
    3. every other reference voxel is background (0): it cannot round into a lesion.

    numpy and ITK compute the mapped positions in different orders, so they can differ in the last bits
    (by at most about 1e-12 voxel, measured). Only a position within 1e-9 voxel of a rounding boundary could
    round differently; when any candidate voxel is that close (a near tie: a transform that maps voxel
    centres onto half-voxel positions, such as a translation by half a voxel), the whole grid is resampled
    by SimpleITK instead. So are transforms without a closed-form inverse (B-spline, displacement field, or
    a composite holding one) and lesions whose boxes cover half the grid.

    Parameters
    ----------
    moving : Volume
        The label map (0 = background) to resample, e.g. the follow-up lesions.
    reference : Volume
        The grid of the result (its voxels are not used).
    transform : SimpleITK transform, optional
        Reference LPS -> moving LPS (ITK's fixed -> moving convention); None = identity.

    Returns
    -------
    Volume
        ``moving``'s labels on ``reference``'s grid, ``moving``'s dtype and units.
    """
    label = as_label_map(moving, "moving")
    if transform is None and label.same_grid(reference, atol_mm=1e-6):
        return Volume(label.voxels, reference.affine, label.units)
    res = _resample_labels(label, reference, transform)
    return reference._with_owned_voxels(res.voxels, label.units)
