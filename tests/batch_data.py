"""Small synthetic imaging studies for the batch tests and the throughput benchmark.

Each patient has a baseline PET/CT and (for some patients) one failure PET/CT, as tiny NIfTI volumes (32 x 40
x 40 voxels of 5 mm): a body ellipsoid (SUV 1, 20 HU) with a lung (SUV 0.4, -800 HU), a spine (600 HU) and a
liver (SUV 2, 60 HU, organ label 5 = TotalSegmentator v2 "liver"), and spherical lesions (SUV 6-12) at well
separated candidate positions. The failure scan shows the same anatomy shifted by a known translation (the
follow-up is ``anatomy(q - shift)``, so the baseline -> follow-up transform is ``p + shift``); some baseline
lesions persist (local failures, some grown), the others resolve, and one new lesion appears at an unused
position (de novo).

Everything is written as NIfTI (SUV without sidecar = SUVbw) with an organ map per scan, a ``manifest.csv``
and a ``patients.csv`` in the study format. :func:`make_study` returns the paths and the truth.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pofa.imaging.volume import Volume

SHAPE = (32, 40, 40)
SPACING = 5.0
ORIGIN = (-97.5, -97.5, -77.5)  # LPS mm of voxel (0, 0, 0): the grid is centred on the origin
LIVER_LABEL = 5

#: Candidate lesion centres (LPS mm), at least 35 mm apart, inside the body; index 0 lies in the liver.
CANDIDATES: tuple[tuple[float, float, float], ...] = (
    (-40.0, 0.0, -20.0),
    (30.0, 20.0, 10.0),
    (10.0, -30.0, 40.0),
    (-10.0, 30.0, -30.0),
    (45.0, -25.0, -25.0),
    (-45.0, -35.0, 30.0),
    (0.0, 0.0, 5.0),
    (55.0, 25.0, 40.0),
)


@dataclass(frozen=True)
class Lesion:
    """A sphere: centre (LPS mm), radius (mm) and SUV."""

    centre: tuple[float, float, float]
    radius: float
    suv: float


@dataclass(frozen=True)
class PatientTruth:
    """What was rendered for one patient."""

    patient_id: str
    baseline: tuple[Lesion, ...]
    followup: tuple[Lesion, ...]  # empty when the patient has no failure scan
    shift_mm: tuple[float, float, float]
    persisting: tuple[int, ...]  # indices of baseline lesions still present at failure (local failures)
    n_new: int  # new lesions at failure (de novo)
    has_failure: bool


@dataclass(frozen=True)
class StudyFiles:
    """The files of a generated study."""

    root: Path
    manifest: Path
    patients: Path
    truth: tuple[PatientTruth, ...]


def _coordinates() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z, y, x = np.meshgrid(*(np.arange(n) * SPACING for n in SHAPE), indexing="ij")
    return x + ORIGIN[0], y + ORIGIN[1], z + ORIGIN[2]


def render(lesions: tuple[Lesion, ...], shift: tuple[float, float, float] = (0.0, 0.0, 0.0)
           ) -> tuple[Volume, Volume, Volume]:
    """SUV, CT and organ label volumes of the anatomy plus ``lesions``, moved by ``shift`` (mm)."""
    x, y, z = _coordinates()
    x, y, z = x - shift[0], y - shift[1], z - shift[2]
    suv = np.zeros(SHAPE, np.float32)
    ct = np.full(SHAPE, -1000.0, np.float32)
    organs = np.zeros(SHAPE, np.uint8)
    body = (x / 85) ** 2 + (y / 70) ** 2 + (z / 68) ** 2 <= 1
    suv[body], ct[body] = 1.0, 20.0
    lung = ((x - 40) / 30) ** 2 + ((y + 5) / 35) ** 2 + ((z - 30) / 30) ** 2 <= 1
    suv[lung], ct[lung] = 0.4, -800.0
    ct[body & ((x / 12) ** 2 + ((y - 45) / 12) ** 2 <= 1)] = 600.0
    liver = ((x + 40) / 35) ** 2 + (y / 30) ** 2 + ((z + 20) / 30) ** 2 <= 1
    suv[liver], ct[liver], organs[liver] = 2.0, 60.0, LIVER_LABEL
    for les in lesions:
        c = les.centre
        m = (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 <= les.radius**2
        suv[m], ct[m] = les.suv, 45.0

    def vol(a: np.ndarray, units: str) -> Volume:
        return Volume.from_spacing(a, (SPACING,) * 3, ORIGIN, units=units)

    return vol(suv, "SUVbw"), vol(ct, "HU"), vol(organs, "label")


def write_translation(path: Path, shift: tuple[float, float, float]) -> Path:
    """An ITK transform file mapping baseline points p to follow-up points p + shift."""
    import SimpleITK as sitk

    sitk.WriteTransform(sitk.TranslationTransform(3, [float(s) for s in shift]), str(path))
    return path


def patient_truth(patient_id: str, rng: np.random.Generator, has_failure: bool) -> PatientTruth:
    """Random lesions for one patient (2-4 at baseline; at failure 1-2 persisting and one new)."""
    n_base = int(rng.integers(2, 5))
    order = rng.permutation(len(CANDIDATES))
    base = tuple(Lesion(CANDIDATES[i], float(rng.choice([10.0, 12.0, 14.0])), float(rng.uniform(6.0, 12.0)))
                 for i in order[:n_base])
    if not has_failure:
        return PatientTruth(patient_id, base, (), (0.0, 0.0, 0.0), (), 0, False)
    n_keep = int(rng.integers(1, min(2, n_base) + 1))
    keep = tuple(sorted(int(k) for k in rng.choice(n_base, size=n_keep, replace=False)))
    follow = [Lesion(base[k].centre, base[k].radius + float(rng.choice([0.0, 2.0])), base[k].suv)
              for k in keep]
    follow.append(Lesion(CANDIDATES[order[n_base]], 11.0, float(rng.uniform(6.0, 12.0))))
    shift = tuple(float(v) for v in rng.integers(-6, 7, size=3))
    return PatientTruth(patient_id, base, tuple(follow), shift, keep, 1, True)


def make_study(root: Path, n_patients: int, seed: int = 0, *, failure_every: int = 2,
               transforms: bool = True, ids: tuple[str, ...] | None = None,
               threshold_column: str = "suv4") -> StudyFiles:
    """Write a study of ``n_patients`` under ``root``: images, manifest.csv, patients.csv.

    Parameters
    ----------
    failure_every : int
        Every this-many-th patient (the first included) has a failure scan; the others did not progress.
    transforms : bool
        Give each failure row the exact transform file (fast: no registration); else pofa registers the scans
        (CT-based, about a second each).
    ids : tuple of str, optional
        Patient ids (default ``P000``, ``P001``, ...).
    threshold_column : str
        Value of the manifest's threshold column ("" leaves it blank).
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    ids = ids or tuple(f"P{i:03d}" for i in range(n_patients))
    truth = []
    manifest_rows = []
    patient_rows = []
    day0 = dt.date(2019, 1, 7)
    for i, pid in enumerate(ids):
        t = patient_truth(pid, rng, has_failure=(i % failure_every == 0))
        truth.append(t)
        folder = root / "images" / f"case{i:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        base_date = day0 + dt.timedelta(days=3 * i)
        index_date = base_date + dt.timedelta(days=14)
        suv, ct, org = render(t.baseline)
        suv.to_nifti(folder / "base_suv.nii.gz")
        ct.to_nifti(folder / "base_ct.nii.gz")
        org.to_nifti(folder / "base_organs.nii.gz")
        rel = f"images/case{i:04d}"
        manifest_rows.append([pid, "baseline", base_date.isoformat(), f"{rel}/base_suv.nii.gz",
                              f"{rel}/base_ct.nii.gz", "", f"{rel}/base_organs.nii.gz", threshold_column, ""])
        progression = ""
        last = index_date + dt.timedelta(days=300 + 5 * i)
        if t.has_failure:
            fdate = index_date + dt.timedelta(days=90 + 7 * i)
            progression = fdate.isoformat()
            suv, ct, org = render(t.followup, t.shift_mm)
            suv.to_nifti(folder / "fu_suv.nii.gz")
            ct.to_nifti(folder / "fu_ct.nii.gz")
            org.to_nifti(folder / "fu_organs.nii.gz")
            tfm = ""
            if transforms:
                write_translation(folder / "fu_to_base.tfm", t.shift_mm)
                tfm = f"{rel}/fu_to_base.tfm"
            manifest_rows.append([pid, "failure", fdate.isoformat(), f"{rel}/fu_suv.nii.gz",
                                  f"{rel}/fu_ct.nii.gz", "", f"{rel}/fu_organs.nii.gz", threshold_column,
                                  tfm])
            last = max(last, fdate + dt.timedelta(days=30))
        patient_rows.append([pid, index_date.isoformat(), last.isoformat(), progression, "",
                             str(50 + i % 30), "F" if i % 2 else "M"])
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "role", "scan_date", "pet", "ct", "mask", "organs", "threshold",
                    "transform"])
        w.writerows(manifest_rows)
    patients = root / "patients.csv"
    with patients.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "index_date", "last_followup_date", "progression_date", "death_date", "age",
                    "sex"])
        w.writerows(patient_rows)
    return StudyFiles(root, manifest, patients, tuple(truth))
