"""Benchmark: matching two 200 x 200 x 500 lesion label maps (about 200 lesions each).

Run ``python3 benchmarks/matching.py``. Prints, best of N runs (and the median):

- ``match_label_arrays``: the matching itself on two label maps already on the same grid (the transform given
is
  the identity, so no resampling): overlap pairs, distances, classes, groups, assignment, result objects;
- ``match_patient`` with the identity and the same grid (adds the label-map checks; still no resampling);
- ``match_patient`` with a rigid transform (adds nearest-neighbour resampling of the follow-up map with
  SimpleITK and the check for lesions lost in resampling);
- the baseline: one numpy pass over one volume, ``base != 0`` (reads every voxel, writes a boolean mask),
  measured in the same run, and the ratio (``np.count_nonzero``, a read-only reduction, is printed too).

Target (issue 8): matching in under 200 ms here.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import SimpleITK as sitk

from pofa.imaging.matching import match_label_arrays, match_patient
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


def main(repeat: int = 7) -> int:
    base, fu = make_maps()
    vb = Volume.from_spacing(base, spacing=SPACING, units="label")
    vf = Volume.from_spacing(fu, spacing=SPACING, units="label")
    aff = vb.affine
    rigid = sitk.Euler3DTransform()
    rigid.SetRotation(0.01, -0.02, 0.015)
    rigid.SetTranslation((1.5, -2.0, 3.0))
    rigid.SetCenter([float(c) for c in vb.index_to_lps((np.asarray(SHAPE) - 1) / 2.0)])

    # warm-up (imports, caches)
    res = match_label_arrays(base, fu, aff)
    match_patient(vb, vf)
    match_patient(vb, vf, rigid)

    numpy_pass = timed(lambda: base != 0, repeat)
    count_pass = timed(lambda: np.count_nonzero(base), repeat)
    core = timed(lambda: match_label_arrays(base, fu, aff), repeat)
    patient = timed(lambda: match_patient(vb, vf), repeat)
    resampled = timed(lambda: match_patient(vb, vf, rigid), max(3, repeat // 2))

    c = res.counts()
    print(
        f"label maps {SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} (z, y, x) = {base.size / 1e6:.0f} M voxels, "
        "uint16; "
        f"{len(res.baseline)} baseline and {len(res.followup)} follow-up lesions; foreground "
        f"{np.count_nonzero(base) / base.size:.2%} / {np.count_nonzero(fu) / fu.size:.2%}"
    )
    print(f"classes: {', '.join(f'{k.value} {v}' for k, v in c.items())}; {len(res.groups)} groups")
    print(
        f"{'one numpy pass (base != 0)':<48s} best {numpy_pass[0] * 1e3:7.1f} ms  median "
        f"{numpy_pass[1] * 1e3:7.1f} ms"
    )
    print(
        f"{'np.count_nonzero(base) (for reference)':<48s} best {count_pass[0] * 1e3:7.1f} ms  median "
        f"{count_pass[1] * 1e3:7.1f} ms"
    )
    rows = [
        ("match_label_arrays (same grid, no resampling)", core),
        ("match_patient (identity, same grid)", patient),
        ("match_patient (rigid transform, NN resampling)", resampled),
    ]
    for name, (best, med) in rows:
        print(
            f"{name:<48s} best {best * 1e3:7.1f} ms  median {med * 1e3:7.1f} ms  = "
            f"{best / numpy_pass[0]:5.1f} numpy passes"
        )
    ok = patient[0] < 0.200
    print(
        f"target < 200 ms for matching given the transform (identity, same grid): "
        f"{'met' if ok else 'NOT met'} ({patient[0] * 1e3:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
