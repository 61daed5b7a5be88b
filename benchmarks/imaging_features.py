"""Benchmark: threshold segmentation plus all lesion features on a whole-body-sized SUV volume.

A 500 x 200 x 200 (z, y, x) float32 SUV volume (2 x 3.5 x 3.5 mm voxels, 20 M voxels) with 50 spherical
lesions (radius 6-30 mm, Gaussian-shaped uptake, SUVmax 5-20) on a noisy background. Times
``segment_threshold(suv, "suv4")`` + ``lesion_features(...)`` + ``patient_features(...)`` and, as the baseline
measured in the same run, one numpy pass over the volume (``suv.max()``). Prints both and their ratio; also
the 41%-of-SUVmax rule. Run: ``python3 benchmarks/imaging_features.py``.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from pofa.imaging.features import lesion_features, patient_features
from pofa.imaging.segment import segment_threshold
from pofa.imaging.volume import Volume

SHAPE = (500, 200, 200)
SPACING = (2.0, 3.5, 3.5)
N_LESIONS = 50
REPEATS = 7


def build() -> Volume:
    rng = np.random.default_rng(2021)
    arr = rng.normal(1.0, 0.15, size=SHAPE).astype(np.float32)
    sp = np.asarray(SPACING)
    placed: list[tuple[np.ndarray, float]] = []
    while len(placed) < N_LESIONS:
        r = float(rng.uniform(6.0, 30.0))
        c = rng.uniform(r + 10, np.asarray(SHAPE) * sp - r - 10)
        if any(np.linalg.norm(c - c2) < r + r2 + 10 for c2, r2 in placed):
            continue
        placed.append((c, r))
        peak = float(rng.uniform(5.0, 20.0))
        lo = np.maximum(((c - r) / sp).astype(int), 0)
        hi = np.minimum(((c + r) / sp).astype(int) + 2, SHAPE)
        zz, yy, xx = np.meshgrid(*(np.arange(lo[a], hi[a]) * sp[a] for a in range(3)), indexing="ij")
        d2 = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2
        blob = np.where(d2 <= r * r, peak * np.exp(-d2 / (2 * (0.6 * r) ** 2)), 0.0)
        box = arr[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        np.maximum(box, blob.astype(np.float32), out=box)
    return Volume.from_spacing(arr, SPACING)


def timed(fn, repeats: int = REPEATS) -> tuple[float, float, object]:
    """Median wall time, median CPU time of this process, and the last result."""
    wall, cpu = [], []
    out = None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), out


def pipeline(suv: Volume, method: str):
    seg = segment_threshold(suv, method)
    feats = lesion_features(suv, seg)
    return seg, feats, patient_features(feats)


def main() -> None:
    suv = build()
    arr = suv.voxels
    t_base, c_base, _ = timed(lambda: arr.max())
    t4, c4, (seg4, f4, p4) = timed(lambda: pipeline(suv, "suv4"))  # type: ignore[misc]
    t41, c41, (seg41, f41, p41) = timed(lambda: pipeline(suv, "41pct"), repeats=3)  # type: ignore[misc]
    print(f"volume {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} = {arr.size / 1e6:.0f} M voxels, {N_LESIONS} lesions")
    print(f"baseline numpy suv.max(): {t_base * 1e3:.1f} ms (CPU {c_base * 1e3:.1f} ms)")
    print(
        f"SUV >= 4.0 + all features ({seg4.n_lesions} lesions, total MTV {p4.total_mtv_ml:.0f} ml): "
        f"{t4 * 1e3:.1f} ms (CPU {c4 * 1e3:.1f} ms) = {t4 / t_base:.1f} x baseline"
    )
    print(
        f"41% SUVmax + all features ({seg41.n_lesions} lesions, total MTV {p41.total_mtv_ml:.0f} ml): "
        f"{t41 * 1e3:.1f} ms (CPU {c41 * 1e3:.1f} ms) = {t41 / t_base:.1f} x baseline"
    )
    print(f"medians of {REPEATS} (41%: 3) runs; target: SUV >= 4.0 pipeline under 1 s")


if __name__ == "__main__":
    main()
