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
from dataclasses import dataclass, field, replace
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

__all__ = ["ExtractOptions", "ExtractionResult", "LESION_COLUMNS", "extract", "read_image"]

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
            The segmentation's label map on the PET grid.
        """
        return self.segmentation.labels

    @property
    def method(self) -> str:
        """The methods in one paragraph.

        Returns
        -------
        str
            SUV units and normalisation, the segmentation method and the SUVpeak definitions.
        """
        f = self.suv.factors
        return (
            f"{f.units} ({f.method}); lesions: {self.segmentation.method}; SUVpeak: "
            f"{PEAK_METHODS['suvpeak']}; "
            f"SUVpeak_local: {PEAK_METHODS['suvpeak_local']}."
        )

    def rows(self) -> list[dict[str, Any]]:
        """Return the lesion rows in :data:`LESION_COLUMNS` order (extranodal as "yes"/"no"/"").

        Returns
        -------
        list of dict of str to Any
            One dict per lesion, keyed by :data:`LESION_COLUMNS`.
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
        """Return the lesion table as a pandas DataFrame (ids as strings).

        Returns
        -------
        pandas.DataFrame
            One row per lesion, columns :data:`LESION_COLUMNS`.
        """
        import pandas as pd

        df = pd.DataFrame(self.rows(), columns=list(LESION_COLUMNS))
        for c in ("patient_id", "lesion_id", "site", "extranodal", "suv_units"):
            df[c] = df[c].astype("string")
        return df

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the lesion table (atomic). Floats with 6 significant digits (enough for every feature).

        Parameters
        ----------
        path : str or os.PathLike
            The CSV file to write.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        out = Path(path)
        df = self.to_frame()
        from pofa.io.writers import safe_frame

        with atomic_path(out) as tmp:
            safe_frame(df).to_csv(tmp, index=False, float_format="%.6g")
        return out

    def write_label_map(self, path: str | os.PathLike[str]) -> Path:
        """Write the lesion label map as NIfTI (atomic).

        Parameters
        ----------
        path : str or os.PathLike
            The NIfTI file to write.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        from pofa.imaging.seg_io import write_label_map

        return write_label_map(self.labels, path)

    def write_seg(self, path: str | os.PathLike[str]) -> Path:
        """Write the lesion label map as a DICOM SEG referencing the PET (needs a DICOM PET).

        Parameters
        ----------
        path : str or os.PathLike
            The DICOM file to write.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ImagingError
            When the PET was not read from a DICOM series.
        """
        from pofa.imaging.seg_io import write_seg

        if self.pet_series is None:
            raise ImagingError("A DICOM SEG needs a DICOM PET series (the PET was not read from DICOM).")
        return write_seg(self.labels, self.pet_series, path, self.segmentation.lesion_ids, self.patient_id)

    def manifest(self, outputs: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Any]:
        """Return a JSON-ready record of the run.

        Versions, input hashes, options, methods, patient features and outputs. Holds no DICOM identifiers or
        dates (SUV provenance keeps decay seconds, not times).

        Parameters
        ----------
        outputs : sequence of str or os.PathLike, optional
            The files written by the run (recorded by name).

        Returns
        -------
        dict of str to Any
            The manifest, JSON-ready.
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
        path : str or os.PathLike
            The JSON file to write.
        outputs : sequence of str or os.PathLike, optional
            The files written by the run (recorded by name).

        Returns
        -------
        pathlib.Path
            The file written.
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
    source : str, os.PathLike or Volume
        A DICOM folder, a NIfTI file, or a Volume (returned as it is).
    modality : str
        The DICOM modality to read (``"CT"``: a NIfTI image is then in HU).
    series_uid : str, optional
        Which series to read when the folder holds several.

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


Source = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class ExtractOptions:
    """The settings of :func:`extract` beyond its inputs (typed, checked when made).

    Attributes
    ----------
    organ_names : path or mapping, optional
        Names of the organ map's labels (default TotalSegmentator v2).
    liver_mask : path or Volume, optional
        Liver mask for ``percist`` when no organ map is given.
    patient_id : str, optional
        Written in the output; default: the PET file/folder name. Never read from DICOM.
    seeds : Seeds or path to CSV, optional
        Reader-confirmed lesion points (``x_mm, y_mm, z_mm`` LPS, optional ``lesion_id``).
    min_volume_ml : float
        Drop lesions smaller than this.
    suv : SuvNormalisation or str
        ``"bw"``, ``"lbm-james"`` or ``"lbm-janmahasatian"``.
    weight_kg, height_m, sex : optional
        Override the DICOM header's body measures.
    pet_series, ct_series : str, optional
        SeriesInstanceUID to choose when a folder holds several series.
    roi_names : sequence of str, optional
        ROIs of an RTSTRUCT or DICOM SEG mask.
    detect_suv, margin_mm, seed_tolerance_mm : float
        Threshold segmentation: detection level, search margin, seed distance.

    Raises
    ------
    SettingsError
        For a negative or non-finite minimum volume or an unknown SUV normalisation.
    """

    organ_names: Source | Mapping[int, str] | None = None
    liver_mask: Source | Volume | None = None
    patient_id: str | None = None
    seeds: Seeds | Source | None = None
    min_volume_ml: float = 0.0
    suv: SuvNormalisation | str = SuvNormalisation.BW
    weight_kg: float | None = None
    height_m: float | None = None
    sex: str | None = None
    pet_series: str | None = None
    ct_series: str | None = None
    roi_names: Sequence[str] | None = None
    detect_suv: float = 2.5
    margin_mm: float = 10.0
    seed_tolerance_mm: float = 5.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.min_volume_ml) or self.min_volume_ml < 0:
            raise SettingsError(f"The minimum volume must be >= 0 ml; got {self.min_volume_ml}.")
        if str(self.suv) not in {m.value for m in SuvNormalisation}:
            raise SettingsError(f"Unknown SUV normalisation {self.suv!r}: use bw, lbm-james or "
                                "lbm-janmahasatian.")

    @property
    def normalisation(self) -> SuvNormalisation:
        """The SUV normalisation as the enum.

        Returns
        -------
        SuvNormalisation
            The :attr:`suv` option as a :class:`SuvNormalisation`.
        """
        return SuvNormalisation(str(self.suv))


@dataclass
class _Run:
    """What the steps of one extraction share: the records they add to (hashes, warnings, PET series)."""

    options: ExtractOptions
    hashes: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    series: DicomSeries | None = None


def _default_patient_id(p: Path) -> str:
    return p.name[:-7] if p.name.endswith(".nii.gz") else (p.stem if p.is_file() else p.name)


def _suv_step(pet: Source | Volume | SuvResult | DicomSeries, run: _Run) -> tuple[SuvResult, str | None]:
    """Step 1: PET -> SUV (and the default patient id, the PET's file or folder name)."""
    o, norm = run.options, run.options.normalisation
    if isinstance(pet, SuvResult):
        return pet, None
    if isinstance(pet, DicomSeries):
        run.series = pet
        return suv_from_dicom(pet, norm, weight_kg=o.weight_kg, height_m=o.height_m, sex=o.sex), None
    if isinstance(pet, Volume):
        factors = SuvFactors(norm, "SUV (Volume given)", "", 1.0, (1.0,) * pet.shape[0],
                             ("Volume given as SUV: used as is",), method="SUV image given by the caller")
        voxels = pet if np.issubdtype(pet.voxels.dtype, np.floating) else pet.with_voxels(
            pet.voxels.astype(np.float32))
        return SuvResult(voxels, factors), None
    p = Path(pet)
    if not p.exists():
        raise ImagingError(f"PET not found: {p}.")
    run.hashes["pet"] = _hash_path(p)
    if _is_nifti(p):
        return suv_from_nifti(p, None, norm, o.weight_kg, o.height_m, o.sex), _default_patient_id(p)
    run.series = read_series(p, "PT", o.pet_series)
    suv_res = suv_from_dicom(run.series, norm, weight_kg=o.weight_kg, height_m=o.height_m, sex=o.sex)
    return suv_res, _default_patient_id(p)


def _ct_step(ct: Source | Volume | None, run: _Run) -> Volume | None:
    """Step 2: the CT, with a warning when its frame of reference differs from the PET's."""
    if ct is None:
        return None
    if isinstance(ct, Volume):
        return ct
    if not Path(ct).exists():
        raise ImagingError(f"CT not found: {ct}.")
    run.hashes["ct"] = _hash_path(Path(ct))
    if _is_nifti(Path(ct)):
        return read_image(ct, "CT")
    ct_series_read = read_series(Path(ct), "CT", run.options.ct_series)
    if run.series is not None:
        f_pet = str(run.series.headers[0].get("FrameOfReferenceUID", ""))
        f_ct = str(ct_series_read.headers[0].get("FrameOfReferenceUID", ""))
        if f_pet and f_ct and f_pet != f_ct:
            run.warnings.append("PET and CT have different FrameOfReferenceUIDs: pofa assumes they are "
                                "aligned in patient coordinates (no registration).")
    return ct_series_read.volume


def _organs_step(organs: Source | Volume | OrganMap | None, suv_vol: Volume, run: _Run) -> OrganMap | None:
    """Step 3: the organ map on the PET grid."""
    if organs is None:
        return None
    if isinstance(organs, (str, os.PathLike)):
        run.hashes["organs"] = _hash_path(Path(organs))
    organ_map = organs if isinstance(organs, OrganMap) else load_organ_map(organs, run.options.organ_names)
    return organ_map.on_grid(suv_vol)


def _seeds_step(run: _Run) -> Seeds | None:
    """Step 4: the reader's seed points."""
    seeds = run.options.seeds
    if seeds is None or isinstance(seeds, Seeds):
        return seeds
    run.hashes["seeds"] = _hash_path(Path(seeds))
    return Seeds.from_csv(str(seeds))


def _segment_step(suv_vol: Volume, mask: Source | Volume | None,
                  threshold: ThresholdMethod | str | float | None, organ_map: OrganMap | None,
                  seed_obj: Seeds | None, run: _Run) -> Segmentation:
    """Step 5: the lesion label map, from the mask or by the threshold method."""
    o = run.options
    if mask is not None:
        if isinstance(mask, Volume):
            mvol, mdesc = mask, "mask given as a Volume"
        else:
            from pofa.imaging.seg_io import read_mask

            run.hashes["mask"] = _hash_path(Path(mask))
            mvol, mdesc = read_mask(mask, suv_vol, o.roi_names)
        seg = segment_mask(suv_vol, mvol, min_volume_ml=o.min_volume_ml, seeds=seed_obj,
                           seed_tolerance_mm=o.seed_tolerance_mm, description=mdesc)
    else:
        liver = None
        if o.liver_mask is not None:
            lv = o.liver_mask if isinstance(o.liver_mask, Volume) else Volume.from_nifti(o.liver_mask)
            liver = resample_to(lv, suv_vol, "nearest").voxels > 0
        elif organ_map is not None and any(n.lower() == "liver" for n in organ_map.names.values()):
            liver = organ_map.mask_of("liver")
        assert threshold is not None
        seg = segment_threshold(suv_vol, threshold, liver_mask=liver, min_volume_ml=o.min_volume_ml,
                                seeds=seed_obj, seed_tolerance_mm=o.seed_tolerance_mm,
                                detect_suv=o.detect_suv, margin_mm=o.margin_mm)
    if seg.unmatched_seeds:
        run.warnings.append(
            f"{len(seg.unmatched_seeds)} seed(s) matched no lesion: {', '.join(seg.unmatched_seeds)}"
        )
    return seg


def _options_record(mask: object, threshold: object, ct: object, organ_map: OrganMap | None,
                    seed_obj: Seeds | None, o: ExtractOptions) -> dict[str, Any]:
    """The options as the result records them (no identifying values)."""
    return {
        "mask": None if mask is None else ("Volume" if isinstance(mask, Volume) else "file"),
        "threshold": None if threshold is None else str(threshold),
        "suv": o.normalisation.value,
        "min_volume_ml": o.min_volume_ml,
        "seeds": None if seed_obj is None else len(seed_obj.points_lps),
        "seed_tolerance_mm": o.seed_tolerance_mm,
        "detect_suv": o.detect_suv,
        "margin_mm": o.margin_mm,
        "ct": ct is not None,
        "organs": organ_map is not None,
        "organ_names": _organ_names_option(o.organ_names),
        "roi_names": None if o.roi_names is None else list(o.roi_names),
        "weight_kg_override": o.weight_kg,
        "height_m_override": o.height_m,
        "sex_override": o.sex,
    }


def extract(
    pet: Source | Volume | SuvResult | DicomSeries,
    ct: Source | Volume | None = None,
    mask: Source | Volume | None = None,
    threshold: ThresholdMethod | str | float | None = None,
    organs: Source | Volume | OrganMap | None = None,
    *,
    options: ExtractOptions | None = None,
    **settings: Any,
) -> ExtractionResult:
    """SUV, lesion label map and lesion features of one PET (+ CT) study.

    The steps: PET -> SUV, the CT, the organ map, the seeds, the segmentation (mask or threshold), the
    lesion features.

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
    options : ExtractOptions, optional
        The settings; default ``ExtractOptions()``.
    **settings
        Fields of :class:`ExtractOptions` to change (e.g. ``patient_id="P1", suv="lbm-james"``).

    Returns
    -------
    ExtractionResult
        The SUV, segmentation, lesion and patient features, options and warnings of the run.

    Raises
    ------
    SettingsError
        For both or neither of ``mask`` and ``threshold``, no patient id, or invalid options.
    ImagingError
        When an image cannot be read or used.
    """
    o = replace(options if options is not None else ExtractOptions(), **settings)
    if (mask is None) == (threshold is None):
        raise SettingsError("Give exactly one of a lesion mask or a threshold method",
                            advice="give {mask} or {threshold}")
    run = _Run(o)
    suv_res, default_id = _suv_step(pet, run)
    patient_id = o.patient_id if o.patient_id is not None else default_id
    if patient_id is None or not str(patient_id).strip():
        raise SettingsError("The patient id is missing", advice="give {patient_id}")
    suv_vol = suv_res.volume
    ct_vol = _ct_step(ct, run)
    organ_map = _organs_step(organs, suv_vol, run)
    seed_obj = _seeds_step(run)
    seg = _segment_step(suv_vol, mask, threshold, organ_map, seed_obj, run)
    lesions = lesion_features(suv_vol, seg, organ_map, ct_vol)
    return ExtractionResult(
        patient_id=str(patient_id).strip(),
        lesions=lesions,
        patient=patient_features(lesions),
        suv=suv_res,
        segmentation=seg,
        organs_source="" if organ_map is None else organ_map.source,
        options=MappingProxyType(_options_record(mask, threshold, ct, organ_map, seed_obj, o)),
        warnings=tuple(run.warnings),
        pet_series=run.series,
        input_hashes=MappingProxyType(run.hashes),
    )
