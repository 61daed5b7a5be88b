"""Benchmark: matching two 200 x 200 x 500 lesion label maps (about 200 lesions each), given the transform.

Run ``python3 benchmarks/matching.py``. Prints, best of N runs (and the median), each also as a multiple of
one numpy pass over one volume (``base != 0``: reads every voxel, writes a boolean mask), measured in the same
run:

- resampling the follow-up label map onto the baseline grid through a rigid transform (nearest neighbour),
  two ways: ``resample_label_map`` (only the voxels near the follow-up lesions; what ``match_patient`` uses)
  and SimpleITK's ``Resample`` over the whole grid (``resample_volume``); the two results are checked equal;
- ``match_label_arrays``: the matching itself on two label maps already on the same grid (overlap pairs,
  distances, classes, groups, assignment, result objects);
- ``match_patient`` with the identity and the same grid (adds the label-map checks; no resampling);
- ``match_patient`` with the rigid transform: with the lesion-box resampling (the default) and with the whole
  grid resampled by SimpleITK (the path taken for B-spline transforms); the two results are checked equal.

Target (issue 8): matching two 200 x 200 x 500 label maps, given the transform, in under 200 ms here.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import SimpleITK as sitk

import pofa.imaging.matching.patient as matching_patient
import pofa.imaging.matching.resample as matching
from pofa.imaging.matching import match_label_arrays, match_patient, resample_label_map
from pofa.imaging.registration import resample_volume
from pofa.imaging.volume import Volume

SHAPE = (500, 200, 200)  # (z, y, x)
SPACING = (2.0, 3.0, 3.0)  # mm
N_LESIONS = 200
SEED = 20210601


def _ball(arr: np.ndarray, centre: np.ndarray, radius: float, label: int) -> None:
    lo = np.maximum(np.floor(centre - radius).astype(int), 0)
    hi = np.minimum(np.ceil(centre + radius).astype(int) + 1, np.asarray(arr.shape))
    sub = arr[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    z, y, x = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    m = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2
    sub[m] = label


def make_maps() -> tuple[np.ndarray, np.ndarray]:
    """Baseline: 200 balls (radius 2-9 voxels). Follow-up: 60% persist (grown/shrunk/shifted), 10% split,
    the rest vanish; 60 new balls."""
    rng = np.random.default_rng(SEED)
    base = np.zeros(SHAPE, dtype=np.uint16)
    fu = np.zeros(SHAPE, dtype=np.uint16)
    centres = rng.uniform([10, 10, 10], np.asarray(SHAPE) - 10, size=(N_LESIONS, 3))
    radii = rng.uniform(2.0, 9.0, size=N_LESIONS)
    nxt = 1
    for i in range(N_LESIONS):
        _ball(base, centres[i], radii[i], i + 1)
        u = rng.random()
        if u < 0.6:
            _ball(fu, centres[i] + rng.normal(0, 1.0, 3), radii[i] * rng.uniform(0.6, 1.5), nxt)
            nxt += 1
        elif u < 0.7:
            off = np.array([0.0, 0.0, radii[i] * 0.6])
            _ball(fu, centres[i] - off, radii[i] * 0.35, nxt)
            _ball(fu, centres[i] + off, radii[i] * 0.35, nxt + 1)
            nxt += 2
    for _ in range(60):
        _ball(fu, rng.uniform([10, 10, 10], np.asarray(SHAPE) - 10), rng.uniform(2.0, 6.0), nxt)
        nxt += 1
    return base, fu


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def _whole_grid(moving: Volume, reference: Volume, transform: object, fg: object = None) -> object:
    """What ``match_patient`` resampled before the lesion boxes: SimpleITK over the whole grid."""
    arr = np.array(resample_volume(moving, reference, transform, "nearest").voxels)  # type: ignore[arg-type]
    return matching._Resampled(arr, matching._foreground(arr).labels, False)


def main(repeat: int = 7) -> int:
    base, fu = make_maps()
    vb = Volume.from_spacing(base, spacing=SPACING, units="label")
    vf = Volume.from_spacing(fu, spacing=SPACING, units="label")
    aff = vb.affine
    rigid = sitk.Euler3DTransform()
    rigid.SetRotation(0.01, -0.02, 0.015)
    rigid.SetTranslation((1.5, -2.0, 3.0))
    rigid.SetCenter([float(c) for c in vb.index_to_lps((np.asarray(SHAPE) - 1) / 2.0)])

    # warm-up (imports, caches) and the equality checks
    res = match_label_arrays(base, fu, aff)
    match_patient(vb, vf)
    fast_map = resample_label_map(vf, vb, rigid).voxels
    full_map = resample_volume(vf, vb, rigid, "nearest").voxels
    if not np.array_equal(fast_map, full_map):
        print("ERROR: the lesion-box resampling differs from SimpleITK's full resampling")
        return 1
    fast_match = match_patient(vb, vf, rigid)
    original = matching_patient._resample_labels
    matching_patient._resample_labels = _whole_grid  # type: ignore[assignment]
    try:
        full_match = match_patient(vb, vf, rigid)
    finally:
        matching_patient._resample_labels = original
    if "near the follow-up lesions only" not in fast_match.method:
        print("ERROR: match_patient did not take the lesion-box path")
        return 1
    if (fast_match.followup, fast_match.baseline, fast_match.groups) != (
        full_match.followup,
        full_match.baseline,
        full_match.groups,
    ):
        print("ERROR: match_patient differs between the two resampling paths")
        return 1

    numpy_pass = timed(lambda: base != 0, repeat)
    resample_fast = timed(lambda: resample_label_map(vf, vb, rigid), repeat)
    resample_full = timed(lambda: resample_volume(vf, vb, rigid, "nearest"), max(3, repeat // 2))
    core = timed(lambda: match_label_arrays(base, fu, aff), repeat)
    patient = timed(lambda: match_patient(vb, vf), repeat)
    rigid_fast = timed(lambda: match_patient(vb, vf, rigid), repeat)
    matching_patient._resample_labels = _whole_grid  # type: ignore[assignment]
    try:
        rigid_full = timed(lambda: match_patient(vb, vf, rigid), max(3, repeat // 2))
    finally:
        matching_patient._resample_labels = original

    c = res.counts()
    print(
        f"label maps {SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} (z, y, x) = {base.size / 1e6:.0f} M voxels, "
        "uint16; "
        f"{len(res.baseline)} baseline and {len(res.followup)} follow-up lesions; foreground "
        f"{np.count_nonzero(base) / base.size:.2%} / {np.count_nonzero(fu) / fu.size:.2%}"
    )
    print(f"classes: {', '.join(f'{k.value} {v}' for k, v in c.items())}; {len(res.groups)} groups")
    print("checked: lesion-box resampling == SimpleITK full resampling (every voxel); match results equal")
    print(
        f"{'one numpy pass (base != 0)':<58s} best {numpy_pass[0] * 1e3:7.1f} ms  median "
        f"{numpy_pass[1] * 1e3:7.1f} ms"
    )
    rows = [
        ("resample, rigid: lesion boxes (resample_label_map)", resample_fast),
        ("resample, rigid: whole grid (SimpleITK Resample)", resample_full),
        ("match_label_arrays (same grid, no resampling)", core),
        ("match_patient (identity, same grid)", patient),
        ("match_patient (rigid transform, lesion-box resampling)", rigid_fast),
        ("match_patient (rigid transform, whole-grid resampling)", rigid_full),
    ]
    for name, (best, med) in rows:
        print(
            f"{name:<58s} best {best * 1e3:7.1f} ms  median {med * 1e3:7.1f} ms  = "
            f"{best / numpy_pass[0]:6.1f} numpy passes"
        )
    ok = rigid_fast[0] < 0.200 and patient[0] < 0.200
    print(
        f"target < 200 ms for matching given the transform: {'met' if ok else 'NOT met'} "
        f"(rigid {rigid_fast[0] * 1e3:.0f} ms, identity {patient[0] * 1e3:.0f} ms; whole-grid resampling "
        f"{rigid_full[0] * 1e3:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
