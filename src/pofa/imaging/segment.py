"""Lesion label maps from a given mask or by thresholding SUV.

Thresholds (:class:`ThresholdMethod`), all on SUV voxels, lesions = 26-connected components (cc3d):

- ``suv4``: SUV >= 4.0; ``suv2.5``: SUV >= 2.5; a number ``x``: SUV >= x.
- ``41pct``: 41% of each lesion's own SUVmax. Lesions are detected first (components of SUV >= ``detect_suv``,
  2.5 by default, or those containing a seed); each is then re-thresholded at 0.41 x its SUVmax inside its
  bounding box grown by ``margin_mm`` (10 mm), keeping the component that holds its maximum. Lesions are
  processed from the highest SUVmax down; a voxel already taken stays with the first lesion.
- ``percist``: 1.5 x liver mean + 2 x liver SD (PERCIST 1.0, Wahl 2009): mean and SD (n - 1) of the SUV in a 3
  cm diameter sphere placed in the liver mask where it is deepest (the voxel farthest from the liver
  boundary).

Afterwards: components smaller than ``min_volume_ml`` are dropped; with seed points (patient LPS mm) only the
lesions containing a seed (or with a voxel within ``seed_tolerance_mm`` of it) are kept. Lesions are numbered
1..n by decreasing SUVmax (ties: by position); the label map uses those numbers and ``lesion_id ==
str(number)`` unless the seeds carry ids.

Per-label statistics are computed on the foreground voxels only (``np.flatnonzero`` then sort by label), never
with per-label passes over the whole volume (see docs/imaging.md for the timing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pofa.errors import ImagingError
from pofa.imaging.volume import Volume

__all__ = [
    "LiverReference",
    "Seeds",
    "Segmentation",
    "ThresholdMethod",
    "percist_liver_reference",
    "segment_mask",
    "segment_threshold",
]

PERCIST_SPHERE_DIAMETER_MM = 30.0
_PERCIST_METHOD = (
    "PERCIST 1.0: 1.5 x mean + 2 x SD (n-1) of a 3 cm diameter sphere at the deepest point of the liver mask"
)


class ThresholdMethod(StrEnum):
    """Threshold rules in use for lymphoma MTV; values are the option users type."""

    SUV4 = "suv4"
    SUV2_5 = "suv2.5"
    PCT41 = "41pct"
    PERCIST = "percist"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class LiverReference:
    """PERCIST liver reference: statistics of a 3 cm sphere in the liver."""

    mean: float
    sd: float
    n_voxels: int
    centre_lps: tuple[float, float, float]
    threshold: float
    method: str = _PERCIST_METHOD


@dataclass(frozen=True, slots=True)
class Seeds:
    """Reader-confirmed lesion points in patient LPS mm, with optional ids."""

    points_lps: tuple[tuple[float, float, float], ...]
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.ids and len(self.ids) != len(self.points_lps):
            raise ImagingError("Seeds: as many ids as points are needed.")

    @classmethod
    def from_array(cls, points: ArrayLike, ids: Sequence[str] = ()) -> Seeds:
        """Make seeds from an array of LPS points.

        Parameters
        ----------
        points : array_like
            Points in LPS mm, shape (n, 3).
        ids : sequence of str, optional
            Lesion id of each point (optional).

        Returns
        -------
        Seeds
            The seeds.

        Raises
        ------
        pofa.errors.ImagingError
            When a coordinate is not finite.
        """
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if not np.all(np.isfinite(p)):
            raise ImagingError("Seed coordinates must be finite numbers (x_mm, y_mm, z_mm).")
        return cls(tuple((float(r[0]), float(r[1]), float(r[2])) for r in p), tuple(str(i) for i in ids))

    @classmethod
    def from_csv(cls, path: str) -> Seeds:
        """Read ``x_mm,y_mm,z_mm`` (LPS) and optional ``lesion_id`` columns.

        Parameters
        ----------
        path : str
            CSV file.

        Returns
        -------
        Seeds
            The seeds.

        Raises
        ------
        ImagingError
            When the CSV cannot be read, lacks x_mm, y_mm or z_mm, or has non-numeric coordinates.
        """
        import pandas as pd

        try:
            df = pd.read_csv(path, dtype={"lesion_id": str})
        except (OSError, ValueError) as exc:
            raise ImagingError(f"Cannot read the seeds CSV {path}: {exc}") from exc
        missing = [c for c in ("x_mm", "y_mm", "z_mm") if c not in df.columns]
        if missing:
            raise ImagingError(
                f"The seeds CSV {path} lacks columns {missing}; it needs x_mm, y_mm, z_mm in patient LPS mm."
            )
        try:
            pts = df[["x_mm", "y_mm", "z_mm"]].to_numpy(dtype=np.float64)
        except ValueError as exc:
            raise ImagingError(f"The seeds CSV {path} has non-numeric coordinates: {exc}") from exc
        ids = tuple(df["lesion_id"].astype(str)) if "lesion_id" in df.columns else ()
        return cls.from_array(pts, ids)


@dataclass(frozen=True, slots=True)
class _Groups:
    """Foreground voxels sorted by label (raster order inside each label)."""

    flat: NDArray[np.intp]  # flat indices
    labels: NDArray[np.int64]  # label of each voxel, sorted
    ids: NDArray[np.int64]  # distinct labels
    starts: NDArray[np.intp]
    counts: NDArray[np.intp]


@dataclass(frozen=True, slots=True, eq=False)
class Segmentation:
    """A lesion label map and how it was made.

    Attributes
    ----------
    labels : Volume
        Integer label map on the PET grid; 0 = background, k = lesion number k (1..n by decreasing SUVmax).
    lesion_ids : tuple of str
        Id of lesion k at position k - 1 (``str(k)``, or the seed's id).
    method : str
        The rule in words (threshold, connectivity, minimum volume, seeds).
    threshold : str
        ``ThresholdMethod`` value, or ``"mask"`` for a given mask.
    threshold_suv : tuple of float
        Per lesion, the SUV threshold that delineated it (``nan`` for a given mask).
    source_labels : tuple of int
        Per lesion, the label value in the given mask (for thresholds: the connected-component number).
    liver : LiverReference or None
        For ``percist``.
    unmatched_seeds : tuple of str
        Seeds that hit no lesion (id, or the coordinates).
    n_removed_small : int
        Components dropped by the minimum volume.
    """

    labels: Volume
    lesion_ids: tuple[str, ...]
    method: str
    threshold: str
    threshold_suv: tuple[float, ...]
    source_labels: tuple[int, ...]
    liver: LiverReference | None = None
    unmatched_seeds: tuple[str, ...] = ()
    n_removed_small: int = 0
    # internal: the label map's foreground voxels grouped by label (saves a pass over the volume in features)
    _foreground: _Groups | None = field(default=None, repr=False, compare=False)

    @property
    def n_lesions(self) -> int:
        """Number of lesions.

        Returns
        -------
        int
            Labels 1 .. n.
        """
        return len(self.lesion_ids)


# --------------------------------------------------------------------------------------------- core helpers
def group_foreground(label_arr: NDArray[np.integer], mask: NDArray[np.bool_] | None = None) -> _Groups:
    """Foreground voxels of a label array grouped by label, without any per-label pass over the volume.

    ``mask`` (optional) is the boolean foreground when the caller already has it (saves one pass).

    Parameters
    ----------
    label_arr : numpy.ndarray
        Integer label array.
    mask : numpy.ndarray or None, optional
        Foreground (``label_arr > 0``) when the caller already has it (saves one pass).

    Returns
    -------
    _Groups
        Voxel indices of each label.
    """
    # nonzero on a boolean array is ~40x faster than on an integer one (numpy's bool fast path)
    flat = np.flatnonzero(label_arr != 0 if mask is None else mask)
    return _groups_from(flat, label_arr.ravel()[flat].astype(np.int64))


def _groups_from(flat: NDArray[np.intp], lab: NDArray[np.int64]) -> _Groups:
    """Group voxels (flat indices in raster order, with their labels) by label, stably."""
    if lab.size and np.any(lab < 0):
        raise ImagingError("Label maps must not hold negative values.")
    order = np.argsort(lab, kind="stable")
    flat = flat[order]
    lab = lab[order]
    if lab.size == 0:
        e = np.zeros(0, dtype=np.intp)
        return _Groups(flat, lab, np.zeros(0, dtype=np.int64), e, e)
    brk = np.flatnonzero(np.diff(lab)) + 1
    starts = np.concatenate(([0], brk)).astype(np.intp)
    counts = np.diff(np.concatenate((starts, [lab.size]))).astype(np.intp)
    return _Groups(flat, lab, lab[starts], starts, counts)


def _connected(mask: NDArray[np.bool_]) -> NDArray[np.integer]:
    import cc3d

    return cc3d.connected_components(mask, connectivity=26)


def _seed_hits(
    seeds: Seeds, suv: Volume, label_arr: NDArray[np.integer], tolerance_mm: float
) -> tuple[dict[int, list[str]], list[str]]:
    """Map each seed to the label it hits (or the nearest labelled voxel within ``tolerance_mm``)."""
    hits: dict[int, list[str]] = {}
    unmatched: list[str] = []
    if not seeds.points_lps:
        return hits, unmatched
    pts = np.asarray(seeds.points_lps)
    idx = suv.lps_to_index(pts)
    inside = suv.contains_index(idx)
    sp = np.asarray(suv.spacing)
    reach = np.ceil(tolerance_mm / sp).astype(int)
    shape = np.asarray(suv.shape)
    for i, (p, ok) in enumerate(zip(idx, inside, strict=True)):
        name = seeds.ids[i] if seeds.ids else f"({pts[i, 0]:.1f}, {pts[i, 1]:.1f}, {pts[i, 2]:.1f})"
        if not ok:
            raise ImagingError(
                f"Seed {name} lies outside the PET volume; seeds are patient LPS coordinates in mm (x_mm, "
                "y_mm, z_mm)."
            )
        v = np.rint(p).astype(int)
        lab = int(label_arr[tuple(v)])
        if lab == 0 and tolerance_mm > 0:
            lo = np.maximum(v - reach, 0)
            hi = np.minimum(v + reach + 1, shape)
            crop = label_arr[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
            nz = np.argwhere(crop > 0)
            if nz.size:
                world = suv.index_to_lps(nz + lo)
                d = np.linalg.norm(world - pts[i], axis=1)
                j = int(np.argmin(d))
                if d[j] <= tolerance_mm:
                    lab = int(crop[tuple(nz[j])])
        if lab == 0:
            unmatched.append(name)
        else:
            hits.setdefault(lab, []).append(name)
    return hits, unmatched


def _finalise(
    suv: Volume,
    label_arr: NDArray[np.integer],
    groups: _Groups,
    *,
    thresholds: dict[int, float],
    min_volume_ml: float,
    seeds: Seeds | None,
    seed_tolerance_mm: float,
    method: str,
    threshold: str,
    liver: LiverReference | None,
    seed_hits: tuple[dict[int, list[str]], list[str]] | None = None,
) -> Segmentation:
    """Filter (volume, seeds), order by SUVmax and renumber 1..n; build the Segmentation.

    ``seed_hits`` (label -> seed names, unmatched names) overrides matching the seeds on ``label_arr``.
    """
    vals = suv.voxels.ravel()[groups.flat]
    if groups.ids.size:
        maxs = np.maximum.reduceat(vals, groups.starts)
    else:
        maxs = np.zeros(0, dtype=vals.dtype)
    keep = np.ones(groups.ids.size, dtype=bool)
    n_small = 0
    if min_volume_ml > 0:
        small = groups.counts * suv.voxel_volume_ml < min_volume_ml - 1e-12
        n_small = int(small.sum())
        keep &= ~small
    seed_names: dict[int, list[str]] = {}
    unmatched: list[str] = []
    if seeds is not None:
        if seed_hits is None:
            seed_names, unmatched = _seed_hits(seeds, suv, label_arr, seed_tolerance_mm)
        else:
            seed_names = {k: list(v) for k, v in seed_hits[0].items()}
            unmatched = list(seed_hits[1])
        has_seed = np.isin(groups.ids, np.fromiter(seed_names.keys(), dtype=np.int64, count=len(seed_names)))
        # a seeded lesion below the minimum volume is still dropped; its seed is reported as unmatched
        for lab in groups.ids[has_seed & ~keep]:
            unmatched.extend(seed_names.pop(int(lab)))
        keep &= has_seed
    kept = np.flatnonzero(keep)
    # order: decreasing SUVmax, ties by first voxel (raster order)
    first_flat = groups.flat[groups.starts[kept]] if kept.size else np.zeros(0, dtype=np.intp)
    order = kept[np.lexsort((first_flat, -maxs[kept].astype(np.float64)))]
    n = order.size
    dtype = np.uint16 if n < 65535 else np.uint32
    remap = np.zeros(int(groups.ids.max()) + 1 if groups.ids.size else 1, dtype=dtype)
    remap[groups.ids[order]] = np.arange(1, n + 1, dtype=dtype)
    out = np.zeros(suv.shape, dtype=dtype)
    new_lab = remap[groups.labels].astype(np.int64)
    if groups.flat.size:
        out.ravel()[groups.flat] = new_lab
    kept_vox = new_lab > 0
    final_groups = _groups_from(groups.flat[kept_vox], new_lab[kept_vox])
    ids = []
    for old in groups.ids[order]:
        names = seed_names.get(int(old))
        ids.append("+".join(names) if (names and seeds is not None and seeds.ids) else "")
    lesion_ids = tuple(name if name else str(k + 1) for k, name in enumerate(ids))
    if len(set(lesion_ids)) != len(lesion_ids):
        raise ImagingError("Seed lesion ids are not unique after matching; give each seed its own lesion_id.")
    return Segmentation(
        labels=suv._with_owned_voxels(out, units="label"),
        lesion_ids=lesion_ids,
        method=method,
        threshold=threshold,
        threshold_suv=tuple(float(thresholds.get(int(o), math.nan)) for o in groups.ids[order]),
        source_labels=tuple(int(o) for o in groups.ids[order]),
        liver=liver,
        unmatched_seeds=tuple(unmatched),
        n_removed_small=n_small,
        _foreground=final_groups,
    )


def _describe(base: str, min_volume_ml: float, seeds: Seeds | None, tol: float) -> str:
    parts = [base]
    if min_volume_ml > 0:
        parts.append(f"components < {min_volume_ml:g} ml removed")
    if seeds is not None:
        parts.append(
            f"only lesions containing one of {len(seeds.points_lps)} seed points (tolerance {tol:g} mm)"
        )
    return "; ".join(parts)


def _check_suv(suv: Volume) -> NDArray[np.floating]:
    arr = suv.voxels
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    return arr


# --------------------------------------------------------------------------------------------- PERCIST liver
def percist_liver_reference(suv: Volume, liver_mask: NDArray[np.bool_] | Volume) -> LiverReference:
    """Mean and SD of a 3 cm sphere at the deepest point of the liver mask; threshold 1.5 x mean + 2 x SD.

    Parameters
    ----------
    suv : Volume
        SUV image.
    liver_mask : numpy.ndarray or Volume
        Liver mask on the SUV grid.

    Returns
    -------
    LiverReference
        Mean, SD and the threshold 1.5 x mean + 2 x SD.

    Raises
    ------
    ImagingError
        When the liver mask has another shape than the PET, is empty, or cannot hold the 3 cm sphere.
    """
    from scipy import ndimage

    mask = liver_mask.voxels if isinstance(liver_mask, Volume) else np.asarray(liver_mask)
    mask = mask.astype(bool)
    if mask.shape != suv.shape:
        raise ImagingError(f"The liver mask has shape {mask.shape}; the PET has {suv.shape}.")
    if not mask.any():
        raise ImagingError("The liver mask is empty; PERCIST needs the liver.")
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - 1, 0)
    hi = np.minimum(idx.max(axis=0) + 2, suv.shape)
    crop = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    dist = ndimage.distance_transform_edt(np.pad(crop, 1), sampling=suv.spacing)[1:-1, 1:-1, 1:-1]
    radius = PERCIST_SPHERE_DIAMETER_MM / 2.0
    centre = np.unravel_index(int(np.argmax(dist)), crop.shape)
    if dist[centre] < radius:
        raise ImagingError(
            f"The liver mask cannot hold the PERCIST 3 cm sphere (deepest point {dist[centre]:.1f} mm "
            "from its "
            "edge); check the liver mask."
        )
    c = np.asarray(centre) + lo
    sp = np.asarray(suv.spacing)
    r_vox = np.ceil(radius / sp).astype(int)
    blo = np.maximum(c - r_vox, 0)
    bhi = np.minimum(c + r_vox + 1, suv.shape)
    grid = np.stack(
        np.meshgrid(*(np.arange(blo[a], bhi[a]) for a in range(3)), indexing="ij"), axis=-1
    ).reshape(-1, 3)
    d = np.linalg.norm(suv.index_to_lps(grid) - suv.index_to_lps(c), axis=1)
    sel = grid[d <= radius]
    values = suv.voxels[sel[:, 0], sel[:, 1], sel[:, 2]].astype(np.float64)
    mean = float(values.mean())
    sd = float(values.std(ddof=1))
    cl = suv.index_to_lps(c)
    return LiverReference(
        mean, sd, int(values.size), (float(cl[0]), float(cl[1]), float(cl[2])), 1.5 * mean + 2 * sd
    )


# --------------------------------------------------------------------------------------------- thresholding
def parse_threshold(threshold: ThresholdMethod | str | float) -> tuple[ThresholdMethod, float]:
    """Parse ``"suv4"``, ``"suv2.5"``, ``"41pct"``, ``"percist"`` or a number.

    Parameters
    ----------
    threshold : ThresholdMethod or str or float
        The rule.

    Returns
    -------
    tuple of (ThresholdMethod, float)
        The method and its fixed SUV (``nan`` for adaptive rules).

    Raises
    ------
    pofa.errors.ImagingError
        When the rule is unknown.
    """
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        x = float(threshold)
        if not math.isfinite(x) or x <= 0:
            raise ImagingError(f"A fixed SUV threshold must be positive; got {threshold}.")
        return ThresholdMethod.FIXED, x
    s = str(threshold).strip().lower()
    aliases = {"41%": "41pct", "41": "41pct", "suv4.0": "suv4", "suv25": "suv2.5", "liver": "percist"}
    s = aliases.get(s, s)
    try:
        m = ThresholdMethod(s)
    except ValueError:
        try:
            return parse_threshold(float(s.removeprefix("suv")))
        except (ValueError, ImagingError):
            raise ImagingError(
                f"Unknown threshold {threshold!r}: use suv4, suv2.5, 41pct, percist or a number (SUV >= "
                "number)."
            ) from None
    if m is ThresholdMethod.FIXED:
        raise ImagingError("Give a fixed threshold as a number, e.g. 3.0.")
    return m, {ThresholdMethod.SUV4: 4.0, ThresholdMethod.SUV2_5: 2.5}.get(m, math.nan)


def segment_threshold(
    suv: Volume,
    threshold: ThresholdMethod | str | float,
    *,
    liver_mask: NDArray[np.bool_] | Volume | None = None,
    min_volume_ml: float = 0.0,
    seeds: Seeds | None = None,
    seed_tolerance_mm: float = 5.0,
    detect_suv: float = 2.5,
    margin_mm: float = 10.0,
) -> Segmentation:
    """Threshold SUV into lesions (see the module docstring for each rule).

    Parameters
    ----------
    suv : Volume
        SUV image.
    threshold : ThresholdMethod, str or float
        ``"suv4"``, ``"suv2.5"``, ``"41pct"``, ``"percist"`` or a number (SUV >= number).
    liver_mask : bool array or Volume, optional
        Needed by ``"percist"`` (same grid as ``suv``).
    min_volume_ml : float
        Drop components smaller than this.
    seeds : Seeds, optional
        Keep only lesions containing a seed (within ``seed_tolerance_mm``).
    seed_tolerance_mm : float, optional
        Distance within which a seed counts as inside a lesion.
    detect_suv, margin_mm : float
        ``41pct`` only: detection threshold and the growth of each lesion's box before re-thresholding.

    Returns
    -------
    Segmentation
        Lesion labels, with ids, thresholds and source labels.

    Raises
    ------
    ImagingError
        When the PERCIST threshold is asked without a liver mask.
    """
    method, fixed = parse_threshold(threshold)
    arr = _check_suv(suv)
    liver = None
    if method is ThresholdMethod.PERCIST:
        if liver_mask is None:
            raise ImagingError(
                "The PERCIST threshold needs a liver mask",
                advice="give an organ map with 'liver', or {liver_mask}",
            )
        liver = percist_liver_reference(suv, liver_mask)
        fixed = liver.threshold
    if method is not ThresholdMethod.PCT41:
        fg = arr >= fixed
        labels = _connected(fg)
        groups = group_foreground(labels, fg)
        base = {
            ThresholdMethod.PERCIST: f"PERCIST liver threshold SUV >= {fixed:.4g} (1.5 x liver mean "
            f"{liver.mean:.4g} + 2 x SD {liver.sd:.4g})"
            if liver
            else "",
        }.get(method) or f"SUV >= {fixed:g}"
        desc = _describe(f"{base}; 26-connected components (cc3d)", min_volume_ml, seeds, seed_tolerance_mm)
        return _finalise(
            suv,
            labels,
            groups,
            thresholds={int(i): fixed for i in groups.ids},
            min_volume_ml=min_volume_ml,
            seeds=seeds,
            seed_tolerance_mm=seed_tolerance_mm,
            method=desc,
            threshold=method.value,
            liver=liver,
        )
    return _segment_41(arr, suv, min_volume_ml, seeds, seed_tolerance_mm, detect_suv, margin_mm)


def _segment_41(
    arr: NDArray[np.floating],
    suv: Volume,
    min_volume_ml: float,
    seeds: Seeds | None,
    seed_tolerance_mm: float,
    detect_suv: float,
    margin_mm: float,
) -> Segmentation:
    det_mask = arr >= detect_suv
    det = _connected(det_mask)
    g = group_foreground(det, det_mask)
    keep_ids = g.ids
    hits: dict[int, list[str]] = {}
    unmatched: list[str] = []
    if seeds is not None:
        hits, unmatched = _seed_hits(seeds, suv, det, seed_tolerance_mm)
        keep_ids = np.asarray(sorted(hits), dtype=np.int64)
    pos = {int(i): k for k, i in enumerate(g.ids)}
    vals = arr.ravel()[g.flat]
    maxs = np.maximum.reduceat(vals, g.starts) if g.ids.size else np.zeros(0)
    order = sorted(keep_ids.tolist(), key=lambda i: -float(maxs[pos[i]]))
    out = np.zeros(arr.shape, dtype=np.uint32)  # calloc: only the pages of the lesion boxes get touched
    thresholds: dict[int, float] = {}
    region_flat: list[NDArray[np.intp]] = []
    region_lab: list[int] = []
    margin = np.ceil(margin_mm / np.asarray(suv.spacing)).astype(int)
    shape = np.asarray(arr.shape)
    for lab in order:
        k = pos[lab]
        s, c = g.starts[k], g.counts[k]
        flat = g.flat[s : s + c]
        local = vals[s : s + c]
        j = int(np.argmax(local))
        vmax = float(local[j])
        zyx = np.asarray(np.unravel_index(flat, arr.shape))
        lo = np.maximum(zyx.min(axis=1) - margin, 0)
        hi = np.minimum(zyx.max(axis=1) + margin + 1, shape)
        box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
        thr = 0.41 * vmax
        region = _connected(arr[box] >= thr)
        peak = tuple(int(v) for v in np.asarray(np.unravel_index(flat[j], arr.shape)) - lo)
        comp = region[peak]
        free = out[box] == 0
        sel = (region == comp) & free
        if not sel[peak]:
            # its maximum was taken by a hotter lesion's 41% region: merged into it (seeds go to that lesion)
            owner = int(out[box][peak])
            if lab in hits:
                hits.setdefault(owner, []).extend(hits.pop(lab))
            continue
        out[box][sel] = lab
        thresholds[lab] = thr
        local_idx = np.unravel_index(np.flatnonzero(sel), sel.shape)
        region_flat.append(
            np.ravel_multi_index(tuple(li + o for li, o in zip(local_idx, lo, strict=True)), arr.shape)
        )
        region_lab.append(lab)
    # group the regions without a pass over the volume (each region's indices are already in raster order)
    by_label = np.argsort(np.asarray(region_lab, dtype=np.int64), kind="stable")
    flats = [region_flat[i] for i in by_label]
    groups = _groups_from(
        np.concatenate(flats) if flats else np.zeros(0, dtype=np.intp),
        np.repeat(np.asarray(region_lab, dtype=np.int64)[by_label], [f.size for f in flats]).astype(np.int64),
    )
    desc = _describe(
        f"41% of each lesion's SUVmax (lesions detected as 26-connected components of SUV >= {detect_suv:g}"
        f"{' containing a seed' if seeds is not None else ''}; re-thresholded within their box + "
        f"{margin_mm:g} mm)",
        min_volume_ml,
        seeds,
        seed_tolerance_mm,
    )
    return _finalise(
        suv,
        out,
        groups,
        thresholds=thresholds,
        min_volume_ml=min_volume_ml,
        seeds=seeds,
        seed_tolerance_mm=seed_tolerance_mm,
        method=desc,
        threshold=ThresholdMethod.PCT41.value,
        liver=None,
        seed_hits=(hits, unmatched) if seeds is not None else None,
    )


# --------------------------------------------------------------------------------------------- given mask
def segment_mask(
    suv: Volume,
    mask: Volume,
    *,
    min_volume_ml: float = 0.0,
    seeds: Seeds | None = None,
    seed_tolerance_mm: float = 5.0,
    split: bool | None = None,
    description: str = "given mask",
) -> Segmentation:
    """Make lesions from a given mask on (or resampled to) the PET grid.

    Parameters
    ----------
    suv : Volume
        SUV image.
    mask : Volume
        Lesion mask or label map (resampled by nearest neighbour when on another grid).
    min_volume_ml : float
        Drop lesions smaller than this.
    seeds : Seeds, optional
        Keep only lesions containing a seed (within ``seed_tolerance_mm``).
    seed_tolerance_mm : float
        Distance within which a seed counts as inside a lesion.
    split : bool, optional
        Split labels into 26-connected components. Default: split a binary mask (one component = one lesion),
        keep the labels of a multi-label map (one label = one lesion).
    description : str, optional
        How the mask was made, for the method text.

    Returns
    -------
    Segmentation
        Lesion labels, with ids and source labels.

    Raises
    ------
    pofa.errors.ImagingError
        When the mask holds non-integer values.
    """
    from pofa.imaging.volume import resample_to

    if not mask.same_grid(suv):
        mask = resample_to(mask, suv, "nearest")
    arr = mask.voxels
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != np.bool_:
        if not np.all(np.mod(arr, 1) == 0):
            raise ImagingError("The lesion mask holds non-integer values; give a binary mask or a label map.")
        arr = arr.astype(np.int64)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if np.any(arr < 0):
        raise ImagingError("The lesion mask holds negative values.")
    values = np.unique(arr)
    is_binary = values.size <= 2 and set(values.tolist()) <= {0, 1}
    do_split = is_binary if split is None else split
    labels = _connected(arr > 0) if (do_split and is_binary) else arr
    if do_split and not is_binary:
        import cc3d

        labels = cc3d.connected_components(arr, connectivity=26)
    groups = group_foreground(labels)
    how = "26-connected components (cc3d)" if do_split else "one label = one lesion"
    desc = _describe(f"{description}; {how}", min_volume_ml, seeds, seed_tolerance_mm)
    return _finalise(
        suv,
        labels,
        groups,
        thresholds={},
        min_volume_ml=min_volume_ml,
        seeds=seeds,
        seed_tolerance_mm=seed_tolerance_mm,
        method=desc,
        threshold="mask",
        liver=None,
    )
