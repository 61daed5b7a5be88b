"""A small synthetic PET/CT study as DICOM series, for the DICOMweb tests.

:func:`make_dicom_study` renders the batch tests' patients (:mod:`batch_data`: a body, a liver, spherical
lesions, a failure scan shifted by a known translation) and writes each scan's PET (BQML, decay-corrected,
with the dose, times and weight of :class:`pet_synthetic.PetSpec`, so SUV = stored x slope x SUVbw factor)
and CT as DICOM series with pydicom, one DICOM study per scan, the patient's id as PatientID. The organ maps
and transforms stay NIfTI/ITK files. ``manifest.csv`` (local DICOM folders) and ``patients.csv`` are written
beside them; :meth:`DicomStudy.files` lists every DICOM file to upload to a PACS.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pet_synthetic import PetSpec, expected_bw_factor, write_ct_series, write_pet_series
from pydicom.uid import generate_uid

from batch_data import make_study
from pofa.imaging.volume import Volume


@dataclass
class DicomScan:
    """One scan: the manifest row (local paths, relative to the study root) and its DICOM UIDs."""

    row: dict[str, str]
    study_uid: str
    pet_uid: str
    ct_uid: str
    pet_dir: Path
    ct_dir: Path


@dataclass
class DicomStudy:
    """The study written by :func:`make_dicom_study`."""

    root: Path
    manifest: Path
    patients: Path
    scans: list[DicomScan] = field(default_factory=list)

    def files(self) -> list[Path]:
        """Every DICOM file of every scan."""
        return sorted(p for s in self.scans for d in (s.pet_dir, s.ct_dir) for p in d.iterdir())

    def scan_of(self, series_uid: str) -> DicomScan:
        """The scan holding a series."""
        return next(s for s in self.scans if series_uid in (s.pet_uid, s.ct_uid))


HEADER = ["patient_id", "role", "scan_date", "pet", "ct", "mask", "organs", "threshold", "transform"]


def _write_pet(folder: Path, suv: Volume, pid: str, date: dt.date, study_uid: str, frame_uid: str) -> str:
    series = dt.datetime.combine(date, dt.time(10, 14, 5))
    spec = PetSpec(patient_id=pid, series=series, injection=series - dt.timedelta(minutes=61, seconds=35),
                   study_uid=study_uid, frame_uid=frame_uid)
    factor = expected_bw_factor(spec, (spec.series - spec.injection).total_seconds())
    spec.slope = 0.001 / factor  # stored = SUV x 1000
    stored = np.rint(np.asarray(suv.voxels, np.float64) * 1000.0).astype(np.int64)
    write_pet_series(folder, stored, spec, spacing=suv.spacing, origin=suv.origin)
    return spec.series_uid


def _write_ct(folder: Path, ct: Volume, pid: str, date: dt.date, study_uid: str, frame_uid: str) -> str:
    hu = np.rint(np.asarray(ct.voxels, np.float64)).astype(np.int64)
    paths = write_ct_series(folder, hu, spacing=ct.spacing, origin=ct.origin, frame_uid=frame_uid,
                            study_uid=study_uid)
    for p in paths:  # the writer gives every CT the same PatientID: make it the patient's
        ds = pydicom.dcmread(p)
        ds.PatientID = pid
        ds.StudyDate = ds.SeriesDate = date.strftime("%Y%m%d")  # the PET's study date
        ds.save_as(p, enforce_file_format=True)
    return str(pydicom.dcmread(paths[0], stop_before_pixels=True).SeriesInstanceUID)


def make_dicom_study(root: Path, n_patients: int, seed: int = 0) -> DicomStudy:
    """Write ``n_patients`` patients (every other with a failure scan) as DICOM PET/CT series."""
    nifti = make_study(root, n_patients, seed, transforms=True)
    rows = list(csv.DictReader(nifti.manifest.open(encoding="utf-8")))
    out = DicomStudy(root, root / "manifest.csv", nifti.patients)
    for i, row in enumerate(rows):
        pid = row["patient_id"]
        date = dt.date.fromisoformat(row["scan_date"])
        suv = Volume.from_nifti(root / row["pet"])
        ct = Volume.from_nifti(root / row["ct"])
        study_uid, frame_uid = generate_uid(), generate_uid()
        base = root / "dicom" / f"scan{i:03d}"
        pet_uid = _write_pet(base / "pet", suv, pid, date, study_uid, frame_uid)
        ct_uid = _write_ct(base / "ct", ct, pid, date, study_uid, frame_uid)
        (root / row["pet"]).unlink()
        (root / row["ct"]).unlink()
        local = dict(row, pet=f"dicom/scan{i:03d}/pet", ct=f"dicom/scan{i:03d}/ct")
        out.scans.append(DicomScan(local, study_uid, pet_uid, ct_uid, base / "pet", base / "ct"))
    write_manifest(out.manifest, [s.row for s in out.scans])
    return out


def write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write manifest rows (dicts keyed by :data:`HEADER`)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, HEADER, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path
