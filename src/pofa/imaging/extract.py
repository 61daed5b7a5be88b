"""The imaging pipeline: PET (+ CT, organs) in; SUV, lesion label map and lesion features out.

:func:`extract` is the one typed entry point (the ``pofa extract`` command is a thin wrapper). Its result
writes the study folder's lesion table (:data:`LESION_COLUMNS`), the label map (NIfTI), a DICOM SEG and a JSON
manifest. No identifying DICOM attribute (names, IDs, dates, accession, institution) is copied into any of
them; the patient id is the one the caller gives (default: the PET file or folder name).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from pofa.errors import ImagingError, SettingsError
from pofa.imaging.dicom import DicomSeries, read_series
from pofa.imaging.features import (
    PEAK_METHODS,
    LesionFeatures,
    PatientFeatures,
    lesion_features,
    patient_features,
)
from pofa.imaging.organs import OrganMap, load_organ_map
from pofa.imaging.segment import Seeds, Segmentation, ThresholdMethod, segment_mask, segment_threshold
from pofa.imaging.suv import SuvFactors, SuvNormalisation, SuvResult, suv_from_dicom, suv_from_nifti
from pofa.imaging.volume import Volume, atomic_path, resample_to

__all__ = ["ExtractionResult", "LESION_COLUMNS", "extract", "read_image"]

#: Columns of the lesion table, in order: the study folder's lesion format first, then feature columns.
LESION_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "lesion_id",
    "site",
    "extranodal",
    "diameter_cm",
    "suvmax",
    "x_mm",
    "y_mm",
    "z_mm",
    "mtv_ml",
    "tlg",
    "suvmean",
    "suvpeak",
    "suvpeak_local",
    "diameter_axial_mm",
    "diameter_3d_mm",
    "n_voxels",
    "threshold_suv",
    "organ_fraction",
    "ct_hu_mean",
    "suv_units",
)

COLUMN_NOTES: dict[str, str] = {
    "diameter_cm": "longest axial diameter (Lugano LDi) in cm = diameter_axial_mm / 10",
    "x_mm": "lesion centroid, patient LPS mm (DICOM patient coordinates)",
    "suvpeak": PEAK_METHODS["suvpeak"],
    "suvpeak_local": PEAK_METHODS["suvpeak_local"],
    "diameter_axial_mm": "largest in-slice distance between voxel centres + one voxel along that line",
    "diameter_3d_mm": "largest 3-D distance between voxel centres (Feret) + one voxel along that line",
    "extranodal": "yes/no from the organ map (majority of voxels; spleen nodal, Lugano); empty without "
    "organ map",
    "threshold_suv": "SUV threshold that delineated the lesion (empty for a given mask)",
    "ct_hu_mean": "mean CT number (HU) of the lesion voxels, CT resampled linearly to the PET grid",
}


@dataclass(frozen=True, slots=True, eq=False)
class ExtractionResult:
    """Everything :func:`extract` computed for one patient and time point.

    Attributes
    ----------
    patient_id : str
    lesions : tuple of LesionFeatures
        Ordered by lesion number (decreasing SUVmax).
    patient : PatientFeatures
    suv : SuvResult
        SUV volume and the record of its factors.
    segmentation : Segmentation
        Label map (PET grid) and its method.
    organs_source : str
        Where organ names came from ("" without an organ map).
    options : Mapping
        The options used (read-only).
    warnings : tuple of str
        Non-fatal findings (unmatched seeds, frame-of-reference mismatch).
    pet_series : DicomSeries or None
        The PET DICOM headers (for writing a DICOM SEG). Identifying: never serialised.
    """

    patient_id: str
    lesions: tuple[LesionFeatures, ...]
    patient: PatientFeatures
    suv: SuvResult
    segmentation: Segmentation
    organs_source: str
    options: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    pet_series: DicomSeries | None = field(default=None, repr=False)
    input_hashes: Mapping[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> Volume:
        """The lesion label map (lesion k has label k).

        Returns
        -------
        Volume
            The lesion label map (lesion k has label k).
        """
        return self.segmentation.labels

    @property
    def method(self) -> str:
        """The methods in one paragraph.

        Returns
        -------
        str
            The methods in one paragraph.
        """
        f = self.suv.factors
        return (
            f"{f.units} ({f.method}); lesions: {self.segmentation.method}; SUVpeak: "
            f"{PEAK_METHODS['suvpeak']}; "
            f"SUVpeak_local: {PEAK_METHODS['suvpeak_local']}."
        )

    def rows(self) -> list[dict[str, Any]]:
        """Lesion rows in :data:`LESION_COLUMNS` order (extranodal as "yes"/"no"/"").

        Returns
        -------
        list of dict of {str: object}
            Lesion rows in :data:`LESION_COLUMNS` order (extranodal as "yes"/"no"/"").
        """
        out = []
        for les in self.lesions:
            extr = "" if les.extranodal is None else ("yes" if les.extranodal else "no")
            out.append(
                {
                    "patient_id": self.patient_id,
                    "lesion_id": les.lesion_id,
                    "site": les.site,
                    "extranodal": extr,
                    "diameter_cm": les.diameter_axial_mm / 10.0,
                    "suvmax": les.suvmax,
                    "x_mm": les.centroid_lps[0],
                    "y_mm": les.centroid_lps[1],
                    "z_mm": les.centroid_lps[2],
                    "mtv_ml": les.mtv_ml,
                    "tlg": les.tlg,
                    "suvmean": les.suvmean,
                    "suvpeak": les.suvpeak,
                    "suvpeak_local": les.suvpeak_local,
                    "diameter_axial_mm": les.diameter_axial_mm,
                    "diameter_3d_mm": les.diameter_3d_mm,
                    "n_voxels": les.n_voxels,
                    "threshold_suv": les.threshold_suv,
                    "organ_fraction": les.organ_fraction,
                    "ct_hu_mean": les.ct_hu_mean,
                    "suv_units": self.suv.factors.units,
                }
            )
        return out

    def to_frame(self) -> Any:
        """The lesion table as a pandas DataFrame (ids as strings).

        Returns
        -------
        pandas.DataFrame
            The lesion table (ids as strings).
        """
        import pandas as pd

        df = pd.DataFrame(self.rows(), columns=list(LESION_COLUMNS))
        for c in ("patient_id", "lesion_id", "site", "extranodal", "suv_units"):
            df[c] = df[c].astype("string")
        return df

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the lesion table as CSV (atomic).

        Parameters
        ----------
        path : str or PathLike
            The CSV file written.

        Returns
        -------
        pathlib.Path
            ``path`` as written. Floats have 6 significant digits (enough for every feature).
        """
        out = Path(path)
        df = self.to_frame()
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
        return out

    def write_label_map(self, path: str | os.PathLike[str]) -> Path:
        """Write the lesion label map as NIfTI (atomic).

        Parameters
        ----------
        path : str or PathLike
            The NIfTI file written.

        Returns
        -------
        pathlib.Path
            ``path`` as written.
        """
        from pofa.imaging.seg_io import write_label_map

        return write_label_map(self.labels, path)

    def write_seg(self, path: str | os.PathLike[str]) -> Path:
        """Write the lesion label map as a DICOM SEG referencing the PET (needs a DICOM PET).

        Parameters
        ----------
        path : str or PathLike
            The DICOM SEG file written.

        Returns
        -------
        pathlib.Path
            ``path`` as written.

        Raises
        ------
        pofa.errors.ImagingError
            When the PET was not read from DICOM.
        """
        from pofa.imaging.seg_io import write_seg

        if self.pet_series is None:
            raise ImagingError("A DICOM SEG needs a DICOM PET series (the PET was not read from DICOM).")
        return write_seg(self.labels, self.pet_series, path, self.segmentation.lesion_ids, self.patient_id)

    def manifest(self, outputs: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Any]:
        """A JSON-ready record of the run: versions, input hashes, options, methods, features, outputs.

        Holds no DICOM identifiers or dates (SUV provenance keeps decay seconds, not times).

        Parameters
        ----------
        outputs : sequence of str or PathLike, optional
            Files written by the run, listed in the record.

        Returns
        -------
        dict of {str: object}
            The record.
        """
        import importlib.metadata as md

        import pofa

        versions = {"pofa": pofa.__version__}
        for pkg in (
            "numpy",
            "scipy",
            "pydicom",
            "highdicom",
            "SimpleITK",
            "nibabel",
            "connected-components-3d",
        ):
            try:
                versions[pkg] = md.version(pkg)
            except md.PackageNotFoundError:
                versions[pkg] = "not installed"
        p = self.patient
        seg = self.segmentation
        return {
            "tool": "pofa extract",
            "versions": versions,
            "patient_id": self.patient_id,
            "inputs_sha256": dict(self.input_hashes),
            "options": _jsonable(dict(self.options)),
            "suv": self.suv.factors.to_json(),
            "segmentation": {
                "method": seg.method,
                "threshold": seg.threshold,
                "n_lesions": seg.n_lesions,
                "n_removed_small": seg.n_removed_small,
                "unmatched_seeds": list(seg.unmatched_seeds),
                "liver_reference": None
                if seg.liver is None
                else {
                    "mean": seg.liver.mean,
                    "sd": seg.liver.sd,
                    "n_voxels": seg.liver.n_voxels,
                    "threshold": seg.liver.threshold,
                    "method": seg.liver.method,
                },
            },
            "organs": self.organs_source,
            "columns": COLUMN_NOTES,
            "patient": {
                "n_lesions": p.n_lesions,
                "total_mtv_ml": _num(p.total_mtv_ml),
                "total_tlg": _num(p.total_tlg),
                "dmax_mm": _num(p.dmax_mm),
                "suvmax": _num(p.suvmax),
                "largest_diameter_axial_mm": _num(p.largest_diameter_axial_mm),
                "n_extranodal": p.n_extranodal,
                "method": p.method,
            },
            "warnings": list(self.warnings),
            "outputs": [Path(o).name for o in outputs],
        }

    def write_manifest(
        self, path: str | os.PathLike[str], outputs: Sequence[str | os.PathLike[str]] = ()
    ) -> Path:
        """Write :meth:`manifest` as JSON (atomic).

        Parameters
        ----------
        path : str or PathLike
            The JSON file written.
        outputs : sequence of str or PathLike, optional
            Files written by the run, listed in the record.

        Returns
        -------
        pathlib.Path
            ``path`` as written.
        """
        out = Path(path)
        with atomic_path(out) as tmp:
            tmp.write_text(
                json.dumps(self.manifest(outputs), indent=2, allow_nan=False) + "\n", encoding="utf-8"
            )
        return out


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float):
        return _num(x)
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)


def _organ_names_option(names: object) -> str | None:
    """The organ-names option for the manifest: a built-in table's name, else only its kind (no paths)."""
    from pofa.imaging.organs import BUILTIN_TABLES

    if names is None:
        return None
    if isinstance(names, str) and names.lower() in BUILTIN_TABLES:
        return names.lower()
    return "mapping" if isinstance(names, Mapping) else "table file"


def _is_nifti(p: Path) -> bool:
    return p.name.endswith((".nii", ".nii.gz"))


def _hash_path(p: Path) -> str:
    h = hashlib.sha256()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    for f in files:
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def read_image(
    source: str | os.PathLike[str] | Volume, modality: str, series_uid: str | None = None
) -> Volume:
    """Read a CT (or other) image from a DICOM folder, a NIfTI file or a Volume.

    Parameters
    ----------
    source : str or PathLike or Volume
        DICOM folder, NIfTI file, or a Volume (returned as is).
    modality : str
        Modality (0008,0060) of the series read from a DICOM folder.
    series_uid : str or None, optional
        SeriesInstanceUID when the folder holds several series of that modality.

    Returns
    -------
    Volume
        The image.
    """
    if isinstance(source, Volume):
        return source
    p = Path(source)
    if _is_nifti(p):
        return Volume.from_nifti(p, units="HU" if modality == "CT" else "")
    return read_series(p, modality, series_uid).volume


def extract(
    pet: str | os.PathLike[str] | Volume | SuvResult | DicomSeries,
    ct: str | os.PathLike[str] | Volume | None = None,
    mask: str | os.PathLike[str] | Volume | None = None,
    threshold: ThresholdMethod | str | float | None = None,
    organs: str | os.PathLike[str] | Volume | OrganMap | None = None,
    *,
    organ_names: str | os.PathLike[str] | Mapping[int, str] | None = None,
    liver_mask: str | os.PathLike[str] | Volume | None = None,
    patient_id: str | None = None,
    seeds: Seeds | str | os.PathLike[str] | None = None,
    min_volume_ml: float = 0.0,
    suv: SuvNormalisation | str = SuvNormalisation.BW,
    weight_kg: float | None = None,
    height_m: float | None = None,
    sex: str | None = None,
    pet_series: str | None = None,
    ct_series: str | None = None,
    roi_names: Sequence[str] | None = None,
    detect_suv: float = 2.5,
    margin_mm: float = 10.0,
    seed_tolerance_mm: float = 5.0,
) -> ExtractionResult:
    """SUV, lesion label map and lesion features of one PET (+ CT) study.

    Parameters
    ----------
    pet : path, Volume, SuvResult or DicomSeries
        DICOM folder (PET series; ``pet_series`` picks one when there are several), NIfTI file (SUV, or
        activity with a JSON sidecar), or an SUV Volume / SuvResult already computed.
    ct : path or Volume, optional
        CT (DICOM folder or NIfTI) for ``ct_hu_mean``; resampled to the PET grid.
    mask : path or Volume, optional
        Lesion mask: NIfTI label map, DICOM SEG or RTSTRUCT (``roi_names`` selects ROIs). Exclusive with
        ``threshold``.
    threshold : str or float, optional
        ``"suv4"``, ``"suv2.5"``, ``"41pct"``, ``"percist"`` or a number (see :mod:`pofa.imaging.segment`).
    organs : path, Volume or OrganMap, optional
        Organ label map (NIfTI or a folder of TotalSegmentator masks) for site and extranodal; also gives the
        liver for ``percist``.
    organ_names : path, mapping or str, optional
        Names of the organ labels (default TotalSegmentator v2; see
        :func:`pofa.imaging.organs.load_organ_map`).
    liver_mask : path or Volume, optional
        Liver mask for ``percist`` when no organ map is given.
    patient_id : str, optional
        Written in the output; default: the PET file/folder name. Never read from DICOM.
    seeds : Seeds or path to CSV, optional
        Reader-confirmed lesion points (``x_mm, y_mm, z_mm`` LPS, optional ``lesion_id``).
    min_volume_ml : float
        Drop lesions smaller than this.
    suv : str
        ``"bw"``, ``"lbm-james"`` or ``"lbm-janmahasatian"``.
    weight_kg, height_m : float, optional
        Patient weight and height; override the DICOM header.
    sex : str, optional
        Patient sex (``"M"`` or ``"F"``, for the lean body mass); overrides the DICOM header.
    pet_series, ct_series : str, optional
        SeriesInstanceUID of the PET and the CT when their folders hold several series.
    roi_names : sequence of str, optional
        RTSTRUCT ROIs used as lesions (default: all).
    detect_suv, margin_mm : float
        ``41pct`` only: detection threshold and the growth of each lesion's box before re-thresholding.
    seed_tolerance_mm : float
        Distance within which a seed counts as inside a lesion.

    Returns
    -------
    ExtractionResult
        SUV, segmentation, lesion and patient features, and the provenance of the run.

    Raises
    ------
    pofa.errors.SettingsError
        Both or neither of ``mask`` and ``threshold``, a negative minimum volume, or an unknown SUV
        normalisation.
    """
    if (mask is None) == (threshold is None):
        raise SettingsError("Give exactly one of a lesion mask (--mask) or a threshold method (--threshold).")
    if not math.isfinite(min_volume_ml) or min_volume_ml < 0:
        raise SettingsError(f"The minimum volume must be >= 0 ml; got {min_volume_ml}.")
    norm = SuvNormalisation(suv) if str(suv) in {m.value for m in SuvNormalisation} else None
    if norm is None:
        raise SettingsError(f"Unknown SUV normalisation {suv!r}: use bw, lbm-james or lbm-janmahasatian.")
    warnings: list[str] = []
    hashes: dict[str, str] = {}
    series: DicomSeries | None = None
    # ---- PET -> SUV
    if isinstance(pet, SuvResult):
        suv_res = pet
    elif isinstance(pet, DicomSeries):
        series = pet
        suv_res = suv_from_dicom(pet, norm, weight_kg=weight_kg, height_m=height_m, sex=sex)
    elif isinstance(pet, Volume):
        factors = SuvFactors(
            norm,
            "SUV (Volume given)",
            "",
            1.0,
            (1.0,) * pet.shape[0],
            ("Volume given as SUV: used as is",),
            method="SUV image given by the caller",
        )
        suv_res = SuvResult(
            pet
            if np.issubdtype(pet.voxels.dtype, np.floating)
            else pet.with_voxels(pet.voxels.astype(np.float32)),
            factors,
        )
    else:
        p = Path(pet)
        if not p.exists():
            raise ImagingError(f"PET not found: {p}.")
        hashes["pet"] = _hash_path(p)
        if _is_nifti(p):
            suv_res = suv_from_nifti(p, None, norm, weight_kg, height_m, sex)
        else:
            series = read_series(p, "PT", pet_series)
            suv_res = suv_from_dicom(series, norm, weight_kg=weight_kg, height_m=height_m, sex=sex)
        if patient_id is None:
            patient_id = p.name[:-7] if p.name.endswith(".nii.gz") else (p.stem if p.is_file() else p.name)
    if patient_id is None or not str(patient_id).strip():
        raise SettingsError("Give a patient id (--patient-id).")
    patient_id = str(patient_id).strip()
    suv_vol = suv_res.volume
    # ---- CT
    ct_vol: Volume | None = None
    if ct is not None:
        if not isinstance(ct, Volume):
            if not Path(ct).exists():
                raise ImagingError(f"CT not found: {ct}.")
            hashes["ct"] = _hash_path(Path(ct))
            if not _is_nifti(Path(ct)):
                ct_series_read = read_series(Path(ct), "CT", ct_series)
                ct_vol = ct_series_read.volume
                if series is not None:
                    f_pet = str(series.headers[0].get("FrameOfReferenceUID", ""))
                    f_ct = str(ct_series_read.headers[0].get("FrameOfReferenceUID", ""))
                    if f_pet and f_ct and f_pet != f_ct:
                        warnings.append(
                            "PET and CT have different FrameOfReferenceUIDs: pofa assumes they are "
                            "aligned in "
                            "patient coordinates (no registration)."
                        )
        ct_vol = ct_vol if ct_vol is not None else read_image(ct, "CT")
    # ---- organs
    organ_map: OrganMap | None = None
    if organs is not None:
        if isinstance(organs, (str, os.PathLike)):
            hashes["organs"] = _hash_path(Path(organs))
        organ_map = organs if isinstance(organs, OrganMap) else load_organ_map(organs, organ_names)
        organ_map = organ_map.on_grid(suv_vol)
    # ---- seeds
    seed_obj: Seeds | None
    if seeds is None or isinstance(seeds, Seeds):
        seed_obj = seeds
    else:
        hashes["seeds"] = _hash_path(Path(seeds))
        seed_obj = Seeds.from_csv(str(seeds))
    # ---- segmentation
    seg: Segmentation
    if mask is not None:
        if isinstance(mask, Volume):
            mvol, mdesc = mask, "mask given as a Volume"
        else:
            from pofa.imaging.seg_io import read_mask

            hashes["mask"] = _hash_path(Path(mask))
            mvol, mdesc = read_mask(mask, suv_vol, roi_names)
        seg = segment_mask(
            suv_vol,
            mvol,
            min_volume_ml=min_volume_ml,
            seeds=seed_obj,
            seed_tolerance_mm=seed_tolerance_mm,
            description=mdesc,
        )
    else:
        liver = None
        if liver_mask is not None:
            lv = liver_mask if isinstance(liver_mask, Volume) else Volume.from_nifti(liver_mask)
            liver = resample_to(lv, suv_vol, "nearest").voxels > 0
        elif organ_map is not None and any(n.lower() == "liver" for n in organ_map.names.values()):
            liver = organ_map.mask_of("liver")
        assert threshold is not None
        seg = segment_threshold(
            suv_vol,
            threshold,
            liver_mask=liver,
            min_volume_ml=min_volume_ml,
            seeds=seed_obj,
            seed_tolerance_mm=seed_tolerance_mm,
            detect_suv=detect_suv,
            margin_mm=margin_mm,
        )
    if seg.unmatched_seeds:
        warnings.append(
            f"{len(seg.unmatched_seeds)} seed(s) matched no lesion: {', '.join(seg.unmatched_seeds)}"
        )
    lesions = lesion_features(suv_vol, seg, organ_map, ct_vol)
    options = {
        "mask": None if mask is None else ("Volume" if isinstance(mask, Volume) else "file"),
        "threshold": None if threshold is None else str(threshold),
        "suv": norm.value,
        "min_volume_ml": min_volume_ml,
        "seeds": None if seed_obj is None else len(seed_obj.points_lps),
        "seed_tolerance_mm": seed_tolerance_mm,
        "detect_suv": detect_suv,
        "margin_mm": margin_mm,
        "ct": ct is not None,
        "organs": organ_map is not None,
        "organ_names": _organ_names_option(organ_names),
        "roi_names": None if roi_names is None else list(roi_names),
        "weight_kg_override": weight_kg,
        "height_m_override": height_m,
        "sex_override": sex,
    }
    return ExtractionResult(
        patient_id=patient_id,
        lesions=lesions,
        patient=patient_features(lesions),
        suv=suv_res,
        segmentation=seg,
        organs_source="" if organ_map is None else organ_map.source,
        options=MappingProxyType(options),
        warnings=tuple(warnings),
        pet_series=series,
        input_hashes=MappingProxyType(hashes),
    )
