"""Synthetic PET/CT data for the imaging tests: DICOM series written with pydicom, phantoms with known
geometry.

Everything here is built from scratch, so the expected SUV is known in closed form: ``SUV = stored * slope *
weight_g / (dose * 2 ** (-dt / half_life))`` with ``dt`` the seconds between injection and the time the rule
under test picks.

Also usable by other test modules (e.g. lesion matching) for phantoms moved by a known transform.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

PET_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.128"
CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"
F18_HALF_LIFE = 6586.2
SECRET_NAME = "Zyxwvut^Quokkafrond"  # distinctive PatientName: must never appear in any output file
SECRET_ID = "MRN-8675309-QX"
SECRET_BIRTH = "19310417"
SECRET_INSTITUTION = "Hospital of Qwertyuiop"


def _da(d: dt.date) -> str:
    return d.strftime("%Y%m%d")


def _tm(t: dt.datetime) -> str:
    return t.strftime("%H%M%S.%f")


def _dt(t: dt.datetime) -> str:
    return t.strftime("%Y%m%d%H%M%S.%f")


@dataclass
class PetSpec:
    """Everything the synthetic PET header says. Times are naive local datetimes."""

    units: str = "BQML"
    decay_correction: str = "START"
    corrected_image: tuple[str, ...] = ("ATTN", "DECY", "SCAT", "RAN", "NORM")
    weight_kg: float | None = 73.5
    height_m: float | None = 1.78
    sex: str = "M"
    dose_bq: float | None = 3.7e8
    half_life_s: float = F18_HALF_LIFE
    injection: dt.datetime = dt.datetime(2021, 3, 4, 9, 12, 30)
    series: dt.datetime = dt.datetime(2021, 3, 4, 10, 14, 5, 250000)
    acquisition: dt.datetime | None = None  # default = series time (plus per-bed offsets below)
    acq_step_s: float = 0.0  # each slice's acquisition is this much later than the previous one (bed motion)
    use_start_datetime: bool = True  # write RadiopharmaceuticalStartDateTime (else only StartTime)
    ge_scan_datetime: dt.datetime | None = None
    philips_suv_factor: float | None = None
    philips_acsf: float | None = None
    frame_duration_ms: float | None = 180000.0
    manufacturer: str = "pofa-synthetic"
    modality: str = "PT"
    per_slice_slope: bool = False
    slope: float = 0.25
    patient_name: str = SECRET_NAME
    patient_id: str = SECRET_ID
    series_description: str = "PET AC synthetic"
    series_uid: str = field(default_factory=generate_uid)
    study_uid: str = field(default_factory=generate_uid)
    frame_uid: str = field(default_factory=generate_uid)
    extra: dict[str, Any] = field(default_factory=dict)


def _base_dataset(path: Path, sop_class: str, spec_modality: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = spec_modality
    return ds


def _patient(ds: Dataset, name: str, pid: str) -> None:
    ds.PatientName = name
    ds.PatientID = pid
    ds.PatientBirthDate = SECRET_BIRTH
    ds.AccessionNumber = "ACC99887766"
    ds.InstitutionName = SECRET_INSTITUTION
    ds.ReferringPhysicianName = "Doctor^Secretive"
    ds.StudyID = "STUDY42"


def _geometry(
    ds: Dataset, k: int, shape: tuple[int, int, int], spacing: Sequence[float], origin: Sequence[float]
) -> None:
    dz, dy, dx = spacing
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [float(origin[0]), float(origin[1]), float(origin[2]) + k * dz]
    ds.PixelSpacing = [dy, dx]
    ds.SliceThickness = dz
    ds.Rows = shape[1]
    ds.Columns = shape[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15


def write_pet_series(
    folder: Path,
    stored: np.ndarray,
    spec: PetSpec | None = None,
    spacing: Sequence[float] = (2.0, 2.0, 2.0),
    origin: Sequence[float] = (-30.0, -40.0, -100.0),
    slopes: Sequence[float] | None = None,
    shuffle: bool = True,
    skip_slices: Sequence[int] = (),
) -> list[Path]:
    """Write a PET series with stored integer values ``stored`` (z, y, x) and per-slice ``slopes``.

    The rescaled value of slice k is ``stored[k] * slopes[k]`` (intercept 0). Files are written in a shuffled
    order with meaningless names. Returns the paths.
    """
    spec = spec or PetSpec()
    folder.mkdir(parents=True, exist_ok=True)
    nz = stored.shape[0]
    if slopes is None:
        slopes = [spec.slope * (1.0 + 0.5 * k) if spec.per_slice_slope else spec.slope for k in range(nz)]
    order = list(range(nz))
    if shuffle:
        random.Random(7).shuffle(order)
    paths = []
    acq0 = spec.acquisition or spec.series
    for n_written, k in enumerate(order):
        if k in skip_slices:
            continue
        path = folder / f"img{n_written:04d}"
        sop = PET_SOP_CLASS if spec.modality == "PT" else CT_SOP_CLASS
        ds = _base_dataset(path, sop, spec.modality)
        _patient(ds, spec.patient_name, spec.patient_id)
        if spec.sex:
            ds.PatientSex = spec.sex
        if spec.weight_kg is not None:
            ds.PatientWeight = spec.weight_kg
        if spec.height_m is not None:
            ds.PatientSize = spec.height_m
        ds.StudyInstanceUID = spec.study_uid
        ds.SeriesInstanceUID = spec.series_uid
        ds.FrameOfReferenceUID = spec.frame_uid
        ds.StudyDate = _da(spec.series.date())
        ds.StudyTime = _tm(spec.series)
        ds.SeriesDate = _da(spec.series.date())
        ds.SeriesTime = _tm(spec.series)
        acq = acq0 + dt.timedelta(seconds=spec.acq_step_s * k)
        ds.AcquisitionDate = _da(acq.date())
        ds.AcquisitionTime = _tm(acq)
        ds.Manufacturer = spec.manufacturer
        ds.SeriesDescription = spec.series_description
        ds.SeriesNumber = 3
        ds.InstanceNumber = nz - k  # deliberately not in slice order
        ds.Units = spec.units
        ds.DecayCorrection = spec.decay_correction
        ds.CorrectedImage = list(spec.corrected_image)
        if spec.frame_duration_ms is not None:
            ds.ActualFrameDuration = int(spec.frame_duration_ms)
        rp = Dataset()
        rp.Radiopharmaceutical = "Fluorodeoxyglucose"
        if spec.dose_bq is not None:
            rp.RadionuclideTotalDose = spec.dose_bq
        rp.RadionuclideHalfLife = spec.half_life_s
        rp.RadiopharmaceuticalStartTime = _tm(spec.injection)
        if spec.use_start_datetime:
            rp.RadiopharmaceuticalStartDateTime = _dt(spec.injection)
        ds.RadiopharmaceuticalInformationSequence = DicomSequence([rp])
        if spec.ge_scan_datetime is not None:
            block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
            block.add_new(0x0D, "DT", _dt(spec.ge_scan_datetime))
        if spec.philips_suv_factor is not None or spec.philips_acsf is not None:
            block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
            if spec.philips_suv_factor is not None:
                block.add_new(0x00, "DS", f"{spec.philips_suv_factor:.10g}")
            if spec.philips_acsf is not None:
                block.add_new(0x09, "DS", f"{spec.philips_acsf:.10g}")
        for kw, v in spec.extra.items():
            setattr(ds, kw, v)
        _geometry(ds, k, stored.shape, spacing, origin)
        ds.PixelRepresentation = 0
        ds.RescaleSlope = f"{slopes[k]:.10g}"
        ds.RescaleIntercept = 0
        ds.PixelData = np.ascontiguousarray(stored[k].astype(np.uint16)).tobytes()
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_ct_series(
    folder: Path,
    hu: np.ndarray,
    spacing: Sequence[float] = (2.0, 2.0, 2.0),
    origin: Sequence[float] = (-30.0, -40.0, -100.0),
    frame_uid: str | None = None,
    study_uid: str | None = None,
    patient_name: str = SECRET_NAME,
) -> list[Path]:
    """Write a CT series with integer HU values (intercept -1024, slope 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    paths = []
    for k in range(hu.shape[0]):
        path = folder / f"ct{k:04d}"
        ds = _base_dataset(path, CT_SOP_CLASS, "CT")
        _patient(ds, patient_name, SECRET_ID)
        ds.StudyInstanceUID = study_uid or generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid or generate_uid()
        ds.SeriesDescription = "CT synthetic"
        ds.SeriesNumber = 2
        ds.InstanceNumber = k + 1
        _geometry(ds, k, hu.shape, spacing, origin)
        ds.PixelRepresentation = 0
        ds.RescaleSlope = 1
        ds.RescaleIntercept = -1024
        ds.PixelData = np.ascontiguousarray((hu[k] + 1024).astype(np.uint16)).tobytes()
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def expected_bw_factor(spec: PetSpec, decay_s: float) -> float:
    """Closed form SUVbw factor: weight_g / (dose * 2^(-t/T))."""
    assert spec.weight_kg is not None and spec.dose_bq is not None
    return spec.weight_kg * 1000.0 / (spec.dose_bq * 2.0 ** (-decay_s / spec.half_life_s))


def mid_frame_offset_s(duration_ms: float, half_life_s: float) -> float:
    """Activity-weighted mid-frame offset from the frame start (closed form)."""
    lam = math.log(2.0) / half_life_s
    big_t = duration_ms / 1000.0
    return math.log(lam * big_t / (1.0 - math.exp(-lam * big_t))) / lam


# ------------------------------------------------------------------------------------------ phantoms
def grid_mm(
    shape: tuple[int, int, int], spacing: Sequence[float], origin: Sequence[float]
) -> tuple[np.ndarray, ...]:
    """LPS coordinates (x, y, z) of voxel centres, each of ``shape``, for the default axial orientation."""
    dz, dy, dx = spacing
    z = origin[2] + dz * np.arange(shape[0])
    y = origin[1] + dy * np.arange(shape[1])
    x = origin[0] + dx * np.arange(shape[2])
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    return xx, yy, zz


def ellipsoid_mask(
    shape: tuple[int, int, int],
    spacing: Sequence[float],
    origin: Sequence[float],
    centre_mm: Sequence[float],
    semi_axes_mm: Sequence[float],
) -> np.ndarray:
    """Voxels whose centre lies in the axis-aligned ellipsoid (x, y, z semi-axes in mm)."""
    xx, yy, zz = grid_mm(shape, spacing, origin)
    a, b, c = semi_axes_mm
    r = ((xx - centre_mm[0]) / a) ** 2 + ((yy - centre_mm[1]) / b) ** 2 + ((zz - centre_mm[2]) / c) ** 2
    return r <= 1.0


def sphere_mask(
    shape: tuple[int, int, int],
    spacing: Sequence[float],
    origin: Sequence[float],
    centre_mm: Sequence[float],
    radius_mm: float,
) -> np.ndarray:
    """Voxels whose centre lies within ``radius_mm`` of ``centre_mm``."""
    return ellipsoid_mask(shape, spacing, origin, centre_mm, (radius_mm, radius_mm, radius_mm))


def read_all_bytes(folder: Path) -> bytes:
    """All bytes of all files under ``folder`` (to search for leaked identifiers)."""
    out = b""
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out += p.read_bytes()
    return out


def load(path: Path) -> Dataset:
    return pydicom.dcmread(path)
