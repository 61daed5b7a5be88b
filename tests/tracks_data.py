"""A synthetic PET/CT series with known lesion sizes over four scans, for the lesion-track tests.

One patient, four scans: baseline (7 days before the index date), two follow-up scans (days 30 and 90) and a
failure scan (day 180). Each scan is a small NIfTI PET (SUV), CT and organ map on a grid of 2.5 mm in-plane
voxels and 4 mm slices, showing the anatomy of :mod:`batch_data` (body, lung, spine, liver) and ellipsoid
lesions (SUV 8, rotated in the axial plane; liver SUV 2.5, aorta blood pool SUV 1.6, both in the organ
map, so that Deauville scores can be read), moved by a known translation per scan (the follow-up image is
``anatomy(q - shift)``, so the baseline -> follow-up transform is ``p + shift``). Shifts along z are whole
slices and lesion centres lie on slice centres, so each ellipsoid's equator is a slice of every scan: its
longest axial diameter is ``2a`` and the perpendicular ``2b`` (closed form).

Lesions (baseline frame):

- ``shrink``: 40 x 24 mm, then 30 x 18, 20 x 12, 20 x 12 (continues);
- ``grow``: 24 x 16 mm, then 24 x 16, 30 x 20, 46 x 30 (progresses at the failure scan);
- ``split``: 52 x 18 mm, then the same, then two 16 x 12 mm parts inside it (day 90 and failure);
- ``merge_big`` (22 x 18 mm) and ``merge_small`` (14 x 14 mm), 10 mm apart: at day 90 and failure one mass of
  56 x 22 mm covering both, most of it over ``merge_big``;
- ``vanish``: 20 x 16 mm, gone from day 30 on;
- ``new``: a new lesion far from every baseline lesion, 12 x 12 mm at day 90 and 16 x 16 mm at the failure
  scan (one new-lesion track over two scans);
- ``new2``: another new lesion (14 x 14 mm), at the failure scan only.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pofa.imaging.volume import Volume

SHAPE = (40, 96, 96)
SPACING = (4.0, 2.5, 2.5)  # (z, y, x) mm
ORIGIN = (-118.75, -118.75, -78.0)  # LPS mm of voxel (0, 0, 0): slice centres at z = -78 + 4k
LIVER_LABEL = 5
AORTA_LABEL = 52  # TotalSegmentator v2
SUV = 8.0
LIVER_SUV = 2.5
BLOOD_SUV = 1.6
#: SUV of the shrinking lesion at the day-90 and failure scans: above the threshold (4) and the liver, at most
#: twice the liver (Deauville 4); every other lesion is at SUV 8 (Deauville 5).
FAINT_SUV = 4.5


@dataclass(frozen=True)
class Ellipsoid:
    """Centre (LPS mm, baseline frame), semi-axes a >= b in the axial plane and c along z (mm), angle."""

    centre: tuple[float, float, float]
    a: float
    b: float
    c: float
    angle: float

    @property
    def ldi(self) -> float:
        return 2 * self.a

    @property
    def sdi(self) -> float:
        return 2 * self.b


def _e(cx: float, cy: float, cz: float, a: float, b: float, deg: float, c: float = 9.0) -> Ellipsoid:
    return Ellipsoid((cx, cy, cz), a, b, c, math.radians(deg))


DATES = ("2021-03-01", "2021-04-07", "2021-06-06", "2021-09-04")  # baseline, day 30, day 90, failure (180)
INDEX_DATE = "2021-03-08"
ROLES = ("baseline", "followup", "followup", "failure")
#: Translation (mm) of each scan's anatomy against the baseline: in-plane off the grid, z in whole slices.
SHIFTS = ((0.0, 0.0, 0.0), (3.7, -6.2, 8.0), (-5.3, 2.9, -4.0), (6.6, 4.1, 4.0))

SHRINK = (_e(30, -40, -6, 20, 12, 30), _e(30, -40, -6, 15, 9, 30), _e(30, -40, -6, 10, 6, 30),
          _e(30, -40, -6, 10, 6, 30))
GROW = (_e(-55, -20, 14, 12, 8, -20), _e(-55, -20, 14, 12, 8, -20), _e(-55, -20, 14, 15, 10, -20),
        _e(-55, -20, 14, 23, 15, -20))
SPLIT_BASE = _e(5, 40, -26, 26, 9, 60, c=10.0)
SPLIT_PARTS = tuple(_e(5 + s * 16 * math.cos(math.radians(60)), 40 + s * 16 * math.sin(math.radians(60)), -26,
                       8, 6, 60, c=8.0) for s in (-1, 1))
MERGE_BIG = _e(-40, 45, 30, 11, 9, 0)
MERGE_SMALL = _e(-12, 45, 30, 7, 7, 0)
MERGED = _e(-30, 45, 30, 28, 11, 0)
VANISH = _e(50, 30, 34, 10, 8, 45)
NEW = _e(60, -5, -50, 8, 8, 0)
NEW_EARLY = _e(60, -5, -50, 6, 6, 0)  # the same new lesion at day 90, smaller
NEW2 = _e(10, 10, -54, 7, 7, 0)


def lesions_at(scan: int) -> dict[str, tuple[Ellipsoid, ...]]:
    """The lesions shown at scan ``scan`` (0..3), by name (a split lesion has two parts)."""
    out: dict[str, tuple[Ellipsoid, ...]] = {"shrink": (SHRINK[scan],), "grow": (GROW[scan],)}
    out["split"] = (SPLIT_BASE,) if scan < 2 else SPLIT_PARTS
    if scan < 2:
        out["merge_big"], out["merge_small"] = (MERGE_BIG,), (MERGE_SMALL,)
    else:
        out["merge_big"] = (MERGED,)
    if scan == 0:
        out["vanish"] = (VANISH,)
    if scan == 2:
        out["new"] = (NEW_EARLY,)
    if scan == 3:
        out["new"], out["new2"] = (NEW,), (NEW2,)
    return out


def _coordinates() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z, y, x = np.meshgrid(*(np.arange(n) * s for n, s in zip(SHAPE, SPACING, strict=True)), indexing="ij")
    return x + ORIGIN[0], y + ORIGIN[1], z + ORIGIN[2]


def render(scan: int) -> tuple[Volume, Volume, Volume]:
    """SUV, CT and organ volumes of scan ``scan``."""
    shift = SHIFTS[scan]
    x, y, z = _coordinates()
    x, y, z = x - shift[0], y - shift[1], z - shift[2]
    suv = np.zeros(SHAPE, np.float32)
    ct = np.full(SHAPE, -1000.0, np.float32)
    organs = np.zeros(SHAPE, np.uint8)
    body = (x / 100) ** 2 + (y / 85) ** 2 + (z / 75) ** 2 <= 1
    suv[body], ct[body] = 1.0, 20.0
    lung = ((x - 45) / 30) ** 2 + ((y + 5) / 30) ** 2 + ((z - 40) / 25) ** 2 <= 1
    suv[lung], ct[lung] = 0.4, -800.0
    ct[body & ((x / 12) ** 2 + ((y - 65) / 12) ** 2 <= 1)] = 600.0
    liver = ((x + 50) / 30) ** 2 + ((y - 5) / 25) ** 2 + ((z + 45) / 22) ** 2 <= 1
    suv[liver], ct[liver], organs[liver] = LIVER_SUV, 60.0, LIVER_LABEL
    aorta = body & (((x + 5) / 10) ** 2 + ((y + 60) / 10) ** 2 <= 1) & (np.abs(z) <= 60)
    suv[aorta], organs[aorta] = BLOOD_SUV, AORTA_LABEL
    for name, parts in lesions_at(scan).items():
        for e in parts:
            dx, dy, dz = x - e.centre[0], y - e.centre[1], z - e.centre[2]
            u = dx * math.cos(e.angle) + dy * math.sin(e.angle)
            v = -dx * math.sin(e.angle) + dy * math.cos(e.angle)
            m = (u / e.a) ** 2 + (v / e.b) ** 2 + (dz / e.c) ** 2 <= 1
            suv[m], ct[m] = (FAINT_SUV if name == "shrink" and scan >= 2 else SUV), 45.0

    return _volume(suv, "SUVbw"), _volume(ct, "HU"), _volume(organs, "label")


def _volume(a: np.ndarray, units: str) -> Volume:
    aff = np.eye(4)
    aff[:3, :3] = 0.0
    aff[2, 0], aff[1, 1], aff[0, 2] = SPACING  # axis 0 -> z, axis 1 -> y, axis 2 -> x
    aff[:3, 3] = ORIGIN
    return Volume(a, aff, units=units)


def write_series(root: Path, *, transforms: bool = True) -> Path:
    """Write the four scans, manifest.csv and patients.csv under ``root``; return the manifest's path."""
    import SimpleITK as sitk

    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (date, role) in enumerate(zip(DATES, ROLES, strict=True)):
        suv, ct, org = render(k)
        suv.to_nifti(root / f"s{k}_suv.nii.gz")
        ct.to_nifti(root / f"s{k}_ct.nii.gz")
        org.to_nifti(root / f"s{k}_organs.nii.gz")
        tfm = ""
        if k and transforms:
            sitk.WriteTransform(sitk.TranslationTransform(3, list(SHIFTS[k])), str(root / f"s{k}.tfm"))
            tfm = f"s{k}.tfm"
        rows.append(["P1", role, date, f"s{k}_suv.nii.gz", f"s{k}_ct.nii.gz", "", f"s{k}_organs.nii.gz",
                     "suv4", tfm])
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "role", "scan_date", "pet", "ct", "mask", "organs", "threshold",
                    "transform"])
        w.writerows(rows)
    last = (dt.date.fromisoformat(DATES[-1]) + dt.timedelta(days=30)).isoformat()
    with (root / "patients.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "index_date", "last_followup_date", "progression_date", "death_date",
                    "age"])
        w.writerow(["P1", INDEX_DATE, last, DATES[-1], "", "61"])
    return manifest
