"""Benchmark: registration of one baseline/failure PET/CT pair of 110 x 90 x 120 voxels, time and error.

Run ``python3 benchmarks/registration.py [--patients 3] [--deformable]``.

The pair is the analytic phantom of the tests (tests/imaging_match/match_phantoms.py: body, organs, texture,
lesions that grow, shrink, split, merge, vanish and appear) rendered on a 110 x 90 x 120 grid of 4 mm voxels
(x, y, z; a whole-body PET field of view around a 21 x 15 x 25 cm body), the failure scan through a known
map, so the true baseline -> failure transform is known. For each image (PET, CT) and each setting it prints:

- the CPU time of ``pofa.imaging.registration.register`` (``time.process_time``: all threads of this process;
  ITK runs one thread by default) and the wall time;
- the target registration error (TRE): the distance between where the estimated transform sends each of 16
  landmarks (7 lesion centres, 9 organ centres) and where the known map sends it, mean and max in mm;
- the body-mask Dice after registration.

Settings compared in the same run: the previous default (``body_margin_mm=None``: the metric samples 20% of
the whole field of view, uncropped) and the current one (images cropped to the body, the metric sampling the
baseline body grown by 10 mm). Then a serial batch of ``--patients`` patients (each its own known rigid map)
through registration (CT-driven, as ``pofa batch``/``pofa analyze`` do when both scans have a CT) and lesion
matching, in patients per minute of CPU, for both settings.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "imaging_match"))

from match_phantoms import (  # noqa: E402
    ANATOMY,
    BASELINE_LESIONS,
    FOLLOWUP_LESIONS,
    RIGID_DEMO,
    KnownMap,
    _centred_origin,
    grid_points,
    render,
)

from pofa.imaging.matching import match_patient  # noqa: E402
from pofa.imaging.registration import (  # noqa: E402
    RegistrationSettings,
    register,
    transform_points,
)
from pofa.imaging.volume import Volume  # noqa: E402

SHAPE = (120, 90, 110)  # (z, y, x): 110 x 90 x 120 voxels (x, y, z)
SPACING = (4.0, 4.0, 4.0)
SMOOTH = KnownMap(rot_deg=(2.0, 1.0, -3.0), shift_mm=(-5.0, 4.0, 9.0), amplitude_mm=5.0)
LANDMARKS = np.vstack(
    [np.array([s.centre for s in BASELINE_LESIONS]), np.array([e.centre for e in ANATOMY[1:]])]
)
SETTINGS = {
    "before (whole field of view)": RegistrationSettings(body_margin_mm=None),
    "now (body crop + body sampling mask)": RegistrationSettings(),
}

Pair = tuple[Volume, Volume, Volume, Volume, Volume, Volume]
print = functools.partial(print, flush=True)  # noqa: A001 - progress shows when the output is a file


def make_pair(g: KnownMap) -> Pair:
    """Baseline CT, PET, labels; failure CT, PET, labels (failure grid offset by a few mm)."""
    bgrid, bpts = grid_points(SHAPE, SPACING, _centred_origin(SHAPE, SPACING))
    fgrid, fpts = grid_points(SHAPE, SPACING, _centred_origin(SHAPE, SPACING, (3.0, -2.0, 5.0)))
    return (*render(bgrid, bpts, BASELINE_LESIONS), *render(fgrid, fpts, FOLLOWUP_LESIONS, g))


def tre(transform: object, g: KnownMap) -> np.ndarray:
    """Landmark error (mm): estimated vs true position of each baseline landmark in the failure scan."""
    return np.linalg.norm(transform_points(transform, LANDMARKS) - g.inverse(LANDMARKS), axis=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=3, help="patients in the serial batch (0: skip it)")
    ap.add_argument("--deformable", action="store_true", help="also the B-spline stage on the smooth map")
    args = ap.parse_args()

    print(f"load average at the start (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    t = time.perf_counter()
    rigid = make_pair(RIGID_DEMO)
    smooth = make_pair(SMOOTH)
    print(
        f"phantom pairs of {SHAPE[2]} x {SHAPE[1]} x {SHAPE[0]} voxels (x, y, z) of {SPACING[0]:g} mm "
        f"rendered in {time.perf_counter() - t:.1f} s; TRE at {len(LANDMARKS)} landmarks"
    )
    cases: list[tuple[str, Pair, KnownMap, str, dict[str, object]]] = [
        ("rigid map", rigid, RIGID_DEMO, "PET", {}),
        ("rigid map", rigid, RIGID_DEMO, "CT", {}),
        ("smooth map", smooth, SMOOTH, "PET", {}),
    ]
    if args.deformable:
        cases.append(("smooth map, + B-spline", smooth, SMOOTH, "PET", {"deformable": True}))
    head = f"{'case':<34s}{'image':<6s}{'settings':<38s}{'CPU s':>7s}{'wall s':>8s}{'TRE mean/max mm':>18s}"
    print(head + f"{'Dice':>7s}")
    cpu: dict[tuple[int, str], float] = {}
    for n, (name, p, g, mod, extra) in enumerate(cases):
        b, f = (p[1], p[4]) if mod == "PET" else (p[0], p[3])
        for label, st in SETTINGS.items():
            st2 = RegistrationSettings(**{**{k: getattr(st, k) for k in st.__slots__}, **extra})
            kw = {}
            if extra.get("deformable"):
                kw = {"baseline_lesions": p[2], "followup_lesions": p[5]}
            c0, w0 = time.process_time(), time.perf_counter()
            reg = register(b, f, mod, st2, **kw)
            c, w = time.process_time() - c0, time.perf_counter() - w0
            e = tre(reg.transform, g)
            cpu[(n, label)] = c
            print(
                f"{name:<34s}{mod:<6s}{label:<38s}{c:7.2f}{w:8.2f}{e.mean():9.3f} /{e.max():6.3f}"
                f"{reg.body_dice_after:7.3f}"
            )
    labels = list(SETTINGS)
    for n, (name, _, _, mod, _) in enumerate(cases):
        print(f"CPU ratio before / now, {name}, {mod}: {cpu[(n, labels[0])] / cpu[(n, labels[1])]:.1f}x")

    if args.patients > 0:
        rng = np.random.default_rng(20210601)
        maps = [
            KnownMap(rot_deg=tuple(rng.uniform(-4, 4, 3)), shift_mm=tuple(rng.uniform(-12, 12, 3)))
            for _ in range(args.patients)
        ]
        pairs = [make_pair(g) for g in maps]
        print(
            f"serial batch of {args.patients} patients (CT-driven rigid + affine registration, then lesion "
            "matching through it):"
        )
        for label, st in SETTINGS.items():
            c0, w0 = time.process_time(), time.perf_counter()
            worst = 0.0
            for g, p in zip(maps, pairs, strict=True):
                reg = register(p[0], p[3], "CT", st)
                match_patient(p[2], p[5], reg)
                worst = max(worst, float(tre(reg.transform, g).max()))
            c, w = time.process_time() - c0, time.perf_counter() - w0
            print(
                f"  {label:<38s} {60.0 * args.patients / c:6.1f} patients per CPU minute "
                f"({c / args.patients:.2f} s CPU, {w / args.patients:.2f} s wall per patient); "
                f"max TRE {worst:.3f} mm"
            )
    print(f"load average at the end (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
