"""A lesion's axial diameters as a reader measures them: the longest diameter and the longest perpendicular.

Definition (docs/response.md, "Measurements from the scans"). In each axial slice the lesion is the union of
its voxels' in-plane outlines (each voxel a rectangle of the pixel spacing, or a parallelogram for a sheared
grid), as a viewer draws a segmentation on the scan's own grid:

- **LDi**: the longest segment between two points of the lesion in one slice (corner to corner of the
  outline), over all axial slices; the slice with the longest one is the *measurement slice* (ties: the slice
  with more voxels, then the lower one).
- **SDi**: in the measurement slice, the longest segment perpendicular to the LDi between the lesion's
  outermost points on that line (outer edge to outer edge across the lesion).

Both are computed exactly on the outline: the LDi as the diameter of the outline's corners (convex hull, then
all pairs of hull vertices); the SDi as the largest extent of the lesion on a line perpendicular to the LDi,
which is a piecewise linear function of the line's position whose maximum lies where the line passes through
a voxel corner, so evaluating it at every corner is exact. Only border voxels (a 4-neighbour in the slice
missing) can bound the outline, so only they are used.

Accuracy against the true shape: the outline of the voxels whose centres lie inside a shape is within half a
voxel diagonal of the shape (Hausdorff distance), so the LDi is within one in-plane voxel diagonal of the
shape's longest diameter in that slice.

The axial (slice) axis is the array axis whose step is most nearly along the patient's head-foot axis (axis 0
for an axial scan, :mod:`pofa.imaging.volume`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pofa.errors import ImagingError

__all__ = ["AxialDiameters", "axial_diameters", "slice_axis"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class AxialDiameters:
    """The two diameters of one lesion and where they were measured.

    Attributes
    ----------
    ldi_mm : float
        Longest axial diameter (mm); 0 for an empty mask.
    sdi_mm : float
        Longest diameter perpendicular to it in the same slice (mm, at most ``ldi_mm``).
    slice_index : int
        Index along the slice axis of the measurement slice (-1 for an empty mask).
    """

    ldi_mm: float
    sdi_mm: float
    slice_index: int


def slice_axis(affine: NDArray[np.float64]) -> int:
    """The array axis whose voxel step is most nearly along the patient's head-foot (z) axis.

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
        Array index -> LPS mm.

    Returns
    -------
    int
        0, 1 or 2.
    """
    cols = np.asarray(affine, dtype=np.float64)[:3, :3]
    cos_z = np.abs(cols[2]) / np.linalg.norm(cols, axis=0)
    return int(np.argmax(cos_z))


def _border(sl: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Pixels of a 2-D mask with at least one of their four neighbours outside it."""
    p = np.pad(sl, 1)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return sl & ~inner


def _diameter(points: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """Largest distance between 2-D points and the unit vector of that pair."""
    from scipy.spatial import ConvexHull, QhullError

    pts = points
    if len(pts) > 8:
        try:
            pts = pts[ConvexHull(pts).vertices]
        except (QhullError, ValueError):  # collinear corners cannot happen, but all pairs are exact anyway
            pts = points
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
    k = int(np.argmax(d2))
    i, j = divmod(k, len(pts))
    v = pts[j] - pts[i]
    d = float(np.sqrt(d2[i, j]))
    return d, v / d


def _perpendicular_extent(centres: NDArray[np.float64], r: NDArray[np.float64], u: NDArray[np.float64],
                          corners: NDArray[np.float64]) -> float:
    """Largest extent of the union of pixels on a line perpendicular to ``u`` (exact, at corner positions)."""
    p = np.array([-u[1], u[0]])
    r_inv = np.linalg.inv(r)
    big_u, big_p = r_inv @ u, r_inv @ p  # the line's directions in pixel-local coordinates
    cu, cp = centres @ u, centres @ p
    candidates = np.unique(np.round(corners @ u, 9))
    best = 0.0
    chunk = max(1, 2_000_000 // max(1, len(centres)))
    for lo_i in range(0, len(candidates), chunk):
        s0 = candidates[lo_i:lo_i + chunk]
        d = s0[:, None] - cu[None, :]  # offset along u from each pixel centre
        lo = np.full(d.shape, -np.inf)
        hi = np.full(d.shape, np.inf)
        ok = np.ones(d.shape, dtype=bool)
        for k in range(2):
            a = d * big_u[k]
            if abs(big_p[k]) > _EPS:
                t1 = (-0.5 - a) / big_p[k]
                t2 = (0.5 - a) / big_p[k]
                lo = np.maximum(lo, np.minimum(t1, t2))
                hi = np.minimum(hi, np.maximum(t1, t2))
            else:
                ok &= np.abs(a) <= 0.5 + _EPS
        ok &= lo <= hi + _EPS
        if not ok.any():
            continue
        top = np.where(ok, cp[None, :] + hi, -np.inf).max(axis=1)
        bottom = np.where(ok, cp[None, :] + lo, np.inf).min(axis=1)
        valid = np.isfinite(top) & np.isfinite(bottom)
        if valid.any():
            best = max(best, float((top - bottom)[valid].max()))
    return best


def axial_diameters(mask: NDArray[np.bool_], affine: NDArray[np.float64]) -> AxialDiameters:
    """Longest axial diameter (LDi) and the longest diameter perpendicular to it (SDi), in mm.

    See the module's docstring for the definition; the lesion is measured on its own scan's grid.

    Parameters
    ----------
    mask : ndarray of bool, shape (a0, a1, a2)
        The lesion, in :class:`~pofa.imaging.volume.Volume` array order (any crop of the grid: only the
        voxel steps of ``affine`` are used).
    affine : ndarray, shape (4, 4)
        Array index -> LPS mm of the grid (:attr:`Volume.affine`).

    Returns
    -------
    AxialDiameters
        ``ldi_mm``, ``sdi_mm`` and the measurement slice; ``(0, 0, -1)`` for an empty mask.

    Raises
    ------
    ImagingError
        A mask that is not 3-D or an affine that is not 4 x 4 and invertible.
    """
    m = np.asarray(mask, dtype=bool)
    aff = np.asarray(affine, dtype=np.float64)
    if m.ndim != 3:
        raise ImagingError(f"a lesion mask must be 3-D, got shape {m.shape}")
    if aff.shape != (4, 4) or abs(np.linalg.det(aff[:3, :3])) < 1e-12:
        raise ImagingError("the affine must be an invertible 4 x 4 matrix")
    if not m.any():
        return AxialDiameters(0.0, 0.0, -1)
    ax = slice_axis(aff)
    plane_axes = [a for a in range(3) if a != ax]
    m = np.moveaxis(m, ax, 0)
    # in-plane coordinates: orthonormalise the two in-plane steps (exact for a sheared grid too)
    _q, r = np.linalg.qr(aff[:3, plane_axes])
    half = np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, 0.5], [-0.5, -0.5]])
    best: tuple[float, int, int] = (-1.0, 0, 0)
    per_slice: dict[int, tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]] = {}
    for kk in np.flatnonzero(m.any(axis=(1, 2))):
        k = int(kk)
        sl = m[k]
        ij = np.argwhere(_border(sl)).astype(np.float64)
        centres = ij @ r.T
        corners = ((ij[:, None, :] + half[None, :, :]).reshape(-1, 2)) @ r.T
        ldi, u = _diameter(corners)
        per_slice[k] = (centres, corners, u)
        key = (ldi, int(sl.sum()), -k)
        if key > (best[0], best[1], -best[2]):
            best = (ldi, int(sl.sum()), k)
    ldi, _n, at = best
    centres, corners, u = per_slice[at]
    sdi = _perpendicular_extent(centres, r, u, corners)
    return AxialDiameters(float(ldi), float(min(sdi, ldi)), at)
