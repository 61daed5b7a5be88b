"""The per-patient imaging pipeline shared by ``pofa batch`` and ``pofa build-study``.

:func:`process_patient` does one patient's work, in whatever process calls it (a Dask worker or the current
process), so the cluster and the single-machine path give the same numbers:

1. **Baseline scan**: PET -> SUV (:func:`pofa.imaging.extract.extract`: DICOM with the QIBA rules, or a
   NIfTI SUV volume), lesions from the scan's mask or threshold rule, features (SUVmax, SUVpeak, MTV, TLG,
   diameters, centroid), site and extranodal from the organ map -> one row per lesion in the study's lesion
   format.
2. **Each failure scan**, by date: the same extraction; registration of the follow-up scan to the baseline
   (:func:`pofa.imaging.registration.register_scans`: CT-based when both scans have a CT, else PET; or the
   manifest's precomputed transform); matching of the follow-up lesions to the baseline lesions
   (:func:`pofa.imaging.matching.match_patient`) -> failure rows in the study's failures format
   (``baseline_lesion_id`` filled for local failures, blank for new lesions).
3. **Each follow-up scan** (role ``followup``), by date: extraction, registration and matching as for a
   failure scan, without failure rows. Every follow-up and failure scan then gives the lesion tracks and the
   rows of the measurements and scans tables (:mod:`pofa.response.linking`), kept in
   :attr:`PatientResult.measurements`, :attr:`PatientResult.tracks` and :attr:`PatientResult.scan_rows`.
4. **The report figure** of the first failure scan: coronal maximum-intensity projections of both PETs with
   the lesions' projections and their outcome or class (:func:`pofa.imaging.mip.match_mip`), kept as plain
   JSON in :attr:`PatientResult.figure` (the study writes it into imaging.json; the report draws it).

The result (:class:`PatientResult`) holds only plain values (text, numbers, None), so it survives a JSON round
trip exactly: the batch stores it per patient and the merge reads it back bit for bit.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from pofa.batch.manifest import PatientScans, Role, ScanSpec, threshold_argument
from pofa.errors import PofaError, SettingsError
from pofa.imaging.matching import FAILURE_COLUMNS as MATCH_COLUMNS
from pofa.settings import RadiotherapySettings

__all__ = [
    "FAILURE_COLUMNS",
    "PatientError",
    "PatientResult",
    "PipelineSettings",
    "Table",
    "process_patient",
]

#: Columns of a failure row: :data:`pofa.imaging.matching.FAILURE_COLUMNS` (the study's failures format, then
#: the overlap figures), then the failure lesion's SUVmax and MTV.
FAILURE_COLUMNS: tuple[str, ...] = (*MATCH_COLUMNS, "suvmax", "mtv_ml")

#: JSON scalars a table cell may hold.
Cell = str | int | float | bool | None


class PatientError(PofaError):
    """One patient's scans cannot be processed; ``stage`` says where (scan, manifest row), ``reason`` why.

    ``internal`` is True when the cause was not a :class:`~pofa.errors.PofaError` (an unexpected exception:
    perhaps a damaged file a reader did not recognise, perhaps a bug); ``detail`` then holds the traceback.

    Parameters
    ----------
    patient_id : str
        The patient.
    stage : str
        Where it failed (scan, manifest row).
    reason : str
        Why, in words.
    internal : bool, optional
        True when the cause was not a :class:`~pofa.errors.PofaError`.
    detail : str, optional
        The traceback of an internal error.
    """

    def __init__(self, patient_id: str, stage: str, reason: str, internal: bool = False,
                 detail: str = "") -> None:
        self.patient_id = patient_id
        self.stage = stage
        self.reason = reason
        self.internal = internal
        self.detail = detail
        super().__init__(f"patient {patient_id!r}, {stage}: {reason}")


#: SimpleITK's global default thread count while a patient is processed. Fixed, because results depend on it:
#: registration fixes its own thread count, yet on a test phantom its final affine metric was 2195.2273 with 1
#: global thread and 2195.2221 with 2 (each exactly reproducible), enough to move resampled voxels. One thread
#: also suits a Dask worker with one thread.
ITK_THREADS = 1


@contextlib.contextmanager
def itk_threads(n: int = ITK_THREADS) -> Iterator[None]:
    """Run the block with SimpleITK's global default number of threads set to ``n`` (restored afterwards).

    Parameters
    ----------
    n : int, optional
        Thread count while the block runs.
    """
    import SimpleITK as sitk

    po = sitk.ProcessObject
    old = po.GetGlobalDefaultNumberOfThreads()
    po.SetGlobalDefaultNumberOfThreads(n)
    try:
        yield
    finally:
        po.SetGlobalDefaultNumberOfThreads(old)


@contextlib.contextmanager
def _stage(patient_id: str, stage: str) -> Iterator[None]:
    """Turn any failure inside the block into a :class:`PatientError` naming ``stage``."""
    try:
        yield
    except PatientError:
        raise
    except PofaError as exc:
        raise PatientError(patient_id, stage, str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - isolation: recorded with the stage, never lost
        raise PatientError(patient_id, stage, f"{type(exc).__name__}: {exc}", internal=True,
                           detail=traceback.format_exc(limit=20)) from exc


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """Options of the per-patient pipeline (all part of the content key of a patient's results).

    The segmentation rule is per scan (the manifest's ``mask`` or ``threshold``, or the default threshold).

    Attributes
    ----------
    suv : str
        SUV normalisation: ``bw``, ``lbm-james`` or ``lbm-janmahasatian``.
    min_volume_ml : float
        Lesions smaller than this are dropped.
    detect_suv, margin_41pct_mm : float
        ``41pct`` rule: detection threshold and growth of each lesion's box (see :mod:`pofa.imaging.segment`).
    deformable : bool
        Add a B-spline stage to the registration.
    affine : bool
        Run the affine stage after the rigid one.
    registration_iterations : int
        Maximum iterations per level of the rigid and affine stages.
    local_tolerance_mm : float
        A follow-up lesion overlapping a baseline lesion grown by this is a local failure.
    marginal_margin_mm : float
        Within this distance (and not local) it is marginal; reported in the failure row.
    label_maps : bool
        Write each scan's lesion label map (NIfTI) into the patient's work folder.
    rt_isodose_pct, rt_in_field_volume_pct, rt_marginal_volume_pct, rt_centroid_margin_mm : float
        The field-class rules for patients with an RTDOSE (:class:`pofa.settings.RadiotherapySettings`, same
        defaults).
    lesion_tracks : bool
        Follow every lesion across the patient's scans and measure it on each (the measurements, scans and
        tracks tables; :mod:`pofa.response.linking`). Set by :meth:`for_manifest` when the manifest has
        follow-up scans; a patient with follow-up scans is always tracked.
    """

    suv: str = "bw"
    min_volume_ml: float = 0.0
    detect_suv: float = 2.5
    margin_41pct_mm: float = 10.0
    deformable: bool = False
    affine: bool = True
    registration_iterations: int = 200
    local_tolerance_mm: float = 0.0
    marginal_margin_mm: float = 10.0
    label_maps: bool = True
    rt_isodose_pct: float = 95.0
    rt_in_field_volume_pct: float = 95.0
    rt_marginal_volume_pct: float = 20.0
    rt_centroid_margin_mm: float = 10.0
    lesion_tracks: bool = False

    def __post_init__(self) -> None:
        if self.suv not in ("bw", "lbm-james", "lbm-janmahasatian"):
            raise SettingsError(f"Unknown SUV normalisation {self.suv!r}: use bw, lbm-james or "
                                "lbm-janmahasatian.")
        for name in ("min_volume_ml", "local_tolerance_mm", "marginal_margin_mm"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise SettingsError(f"{name} must be a number >= 0; got {v}.")
        if not (math.isfinite(self.detect_suv) and self.detect_suv > 0):
            raise SettingsError(f"detect_suv must be > 0; got {self.detect_suv}.")
        if self.registration_iterations < 1:
            raise SettingsError(f"registration_iterations must be >= 1; got {self.registration_iterations}.")
        if not (math.isfinite(self.rt_isodose_pct) and self.rt_isodose_pct > 0):
            raise SettingsError(f"rt_isodose_pct must be > 0; got {self.rt_isodose_pct}.")
        if not 0 <= self.rt_marginal_volume_pct <= self.rt_in_field_volume_pct <= 100:
            raise SettingsError("need 0 <= rt_marginal_volume_pct <= rt_in_field_volume_pct <= 100.")
        if not (math.isfinite(self.rt_centroid_margin_mm) and self.rt_centroid_margin_mm >= 0):
            raise SettingsError(f"rt_centroid_margin_mm must be >= 0; got {self.rt_centroid_margin_mm}.")

    def radiotherapy(self) -> RadiotherapySettings:
        """The field-class rules as :class:`pofa.settings.RadiotherapySettings`.

        Returns
        -------
        RadiotherapySettings
            With this object's isodose, volume and centroid thresholds.
        """
        return RadiotherapySettings(isodose_pct=self.rt_isodose_pct,
                                    in_field_volume_pct=self.rt_in_field_volume_pct,
                                    marginal_volume_pct=self.rt_marginal_volume_pct,
                                    centroid_margin_mm=self.rt_centroid_margin_mm)

    def with_radiotherapy(self, rt: RadiotherapySettings) -> PipelineSettings:
        """Return a copy with the field-class rules of ``rt`` (a study.toml's ``[radiotherapy]``).

        Parameters
        ----------
        rt : RadiotherapySettings
            The rules.

        Returns
        -------
        PipelineSettings
            The settings with the ``rt_*`` fields taken from ``rt``.
        """
        return replace(self, rt_isodose_pct=rt.isodose_pct, rt_in_field_volume_pct=rt.in_field_volume_pct,
                       rt_marginal_volume_pct=rt.marginal_volume_pct,
                       rt_centroid_margin_mm=rt.centroid_margin_mm)

    def with_study_toml(self, folder: str | os.PathLike[str]) -> PipelineSettings:
        """Return a copy with the field-class rules of ``study.toml`` in ``folder`` (unchanged without one).

        The study.toml beside an imaging manifest is copied into the study it builds, so the failures' field
        classes follow the same ``[radiotherapy]`` rules as the analysis.

        Parameters
        ----------
        folder : path-like
            The manifest's folder.

        Returns
        -------
        PipelineSettings
            The settings with that study.toml's ``[radiotherapy]`` rules (unchanged without one).

        Raises
        ------
        pofa.errors.SettingsError
            When the study.toml has errors (each listed).
        """
        from pofa.findings import Severity
        from pofa.settings import SETTINGS_FILE, load_settings

        if not (Path(folder) / SETTINGS_FILE).is_file():
            return self
        conf, findings = load_settings(Path(folder))
        errors = [f for f in findings if f.severity is Severity.ERROR]
        if errors:
            raise SettingsError("; ".join(f"{f.location()}: {f.message}" for f in errors))
        return self.with_radiotherapy(conf.radiotherapy)

    def for_manifest(self, manifest: Any) -> PipelineSettings:
        """Return a copy that tracks lesions when the manifest has a follow-up scan (role ``followup``).

        Parameters
        ----------
        manifest : pofa.batch.manifest.Manifest
            The manifest the settings will run.

        Returns
        -------
        PipelineSettings
            With ``lesion_tracks`` on when any of its scans is a follow-up scan (else unchanged).
        """
        if any(s.role is Role.FOLLOWUP for s in manifest.scans):
            return replace(self, lesion_tracks=True)
        return self

    def to_json(self) -> dict[str, Any]:
        """The settings as plain JSON values (what the content key hashes).

        Returns
        -------
        dict of {str: object}
            The settings as plain JSON values (what the content key hashes).
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PipelineSettings:
        """Read :meth:`to_json` output.

        Parameters
        ----------
        d : mapping of {str: object}
            The JSON object.

        Returns
        -------
        PipelineSettings
            The settings.
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _cell(v: Any) -> Cell:
    """A plain JSON value: NaN/None -> None, numpy scalars -> Python, everything else as it is or text."""
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalar
        v = v.item()
    if isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) else v
    return str(v)


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of plain values under named columns (an immutable, JSON-exact table)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]],
                     columns: Sequence[str] | None = None) -> Table:
        """Make a table from records.

        Parameters
        ----------
        records : sequence of mapping of {str: object}
            One mapping per row.
        columns : sequence of str or None, optional
            Column order (default: in order of first appearance).

        Returns
        -------
        Table
            The table (values as plain cells).
        """
        cols: list[str] = list(columns) if columns is not None else []
        if columns is None:
            for r in records:
                cols.extend(c for c in r if c not in cols)
        return cls(tuple(cols), tuple(tuple(_cell(r.get(c)) for c in cols) for r in records))

    def records(self) -> list[dict[str, Cell]]:
        """The rows as records.

        Returns
        -------
        list of dict of {str: Cell}
            One dict per row, column -> value.
        """
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def to_json(self) -> dict[str, Any]:
        """The table as plain JSON values.

        Returns
        -------
        dict of {str: object}
            ``{"columns": [...], "rows": [[...], ...]}``.
        """
        return {"columns": list(self.columns), "rows": [list(r) for r in self.rows]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Table:
        """Read :meth:`to_json` output.

        Parameters
        ----------
        d : mapping of {str: object}
            The JSON object.

        Returns
        -------
        Table
            The table.
        """
        return cls(tuple(d["columns"]), tuple(tuple(_cell(v) for v in r) for r in d["rows"]))


@dataclass(frozen=True, slots=True)
class PatientResult:
    """One patient's rows for the study folder and the provenance of each scan.

    Attributes
    ----------
    patient_id : str
    lesions : Table
        Baseline lesions, columns of :data:`pofa.imaging.extract.LESION_COLUMNS` (study lesion format first).
    failures : Table
        Lesions of the failure scans in the study's failures format plus overlap figures.
    scans : str
        Canonical JSON: per scan its manifest row, SUV method, segmentation method, lesion count, warnings and
        (failure scans) the registration and matching summaries.
    figure : str
        Canonical JSON of the baseline-and-failure figure of the first failure scan
        (:meth:`pofa.imaging.mip.MatchMip.to_json`); "" when the patient has no failure scan or the figure
        could not be made (the reason is in that scan's matching warnings).
    measurements, tracks, scan_rows : Table
        Rows of the measurements, tracks and scans tables (:mod:`pofa.response.linking`): every baseline
        lesion measured on every scan, its track events, and per scan whether it shows new lesions.
    """

    patient_id: str
    lesions: Table
    failures: Table
    scans: str
    figure: str = ""
    measurements: Table = Table((), ())
    tracks: Table = Table((), ())
    scan_rows: Table = Table((), ())

    @property
    def provenance(self) -> list[dict[str, Any]]:
        """The per-scan provenance as JSON objects.

        Returns
        -------
        list of dict of {str: object}
            The per-scan provenance as JSON objects.
        """
        return list(json.loads(self.scans))

    @property
    def figure_data(self) -> dict[str, Any] | None:
        """The figure data as a JSON object (None without a figure).

        Returns
        -------
        dict of {str: object} or None
            The figure data as a JSON object (None without a figure).
        """
        return json.loads(self.figure) if self.figure else None

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON values.

        Returns
        -------
        dict of {str: object}
            The fields by name.
        """
        return {"patient_id": self.patient_id, "lesions": self.lesions.to_json(),
                "failures": self.failures.to_json(), "scans": self.provenance, "figure": self.figure_data,
                "measurements": self.measurements.to_json(), "tracks": self.tracks.to_json(),
                "scan_rows": self.scan_rows.to_json()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PatientResult:
        """Read :meth:`to_json` output.

        Parameters
        ----------
        d : mapping of {str: object}
            The JSON object.

        Returns
        -------
        PatientResult
            The result.
        """
        fig = d.get("figure")
        empty: dict[str, list[Any]] = {"columns": [], "rows": []}
        return cls(str(d["patient_id"]), Table.from_json(d["lesions"]), Table.from_json(d["failures"]),
                   _canonical(d["scans"]), _canonical(fig) if fig else "",
                   Table.from_json(d.get("measurements", empty)), Table.from_json(d.get("tracks", empty)),
                   Table.from_json(d.get("scan_rows", empty)))


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, allow_nan=False, default=_json_default)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return _cell(o.item())
    return str(o)


def _clean(obj: Any) -> Any:
    """JSON-ready copy: NaN -> None, tuples -> lists, numpy scalars -> Python."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return _cell(obj)


# ---------------------------------------------------------------------------------------------- the work
def _extract(scan: ScanSpec, settings: PipelineSettings, ct: Any) -> Any:
    from pofa.imaging.extract import extract

    seg: dict[str, Any] = ({"mask": scan.mask} if scan.mask is not None
                           else {"threshold": threshold_argument(str(scan.threshold))})
    return extract(scan.pet, ct=ct, organs=scan.organs, patient_id=scan.patient_id,
                   min_volume_ml=settings.min_volume_ml, suv=settings.suv, detect_suv=settings.detect_suv,
                   margin_mm=settings.margin_41pct_mm, **seg)


def _read_ct(scan: ScanSpec) -> Any:
    from pofa.imaging.extract import read_image

    return None if scan.ct is None else read_image(scan.ct, "CT")


def _scan_record(scan: ScanSpec, res: Any) -> dict[str, Any]:
    """What was done to one scan. Manifest row and file names are not stored (they are not part of the content
    key, so a reused result could carry stale ones); the study merge adds them from the current manifest."""
    return {
        "role": scan.role.value,
        "scan_date": scan.scan_date,
        "threshold": scan.threshold,
        "suv": res.suv.factors.method,
        "suv_units": res.suv.factors.units,
        "segmentation": res.segmentation.method,
        "n_lesions": len(res.lesions),
        "warnings": list(res.warnings),
    }


def process_patient(scans: PatientScans, settings: PipelineSettings | None = None,
                    label_dir: str | os.PathLike[str] | None = None) -> PatientResult:
    """Lesion rows (baseline) and failure rows (each failure scan) of one patient.

    Parameters
    ----------
    scans : PatientScans
        The patient's scans from the manifest (absolute paths).
    settings : PipelineSettings, optional
        Defaults to ``PipelineSettings()``.
    label_dir : path, optional
        Folder for the label maps (``baseline_labels.nii.gz``, ``failure_<date>_labels.nii.gz``) when
        ``settings.label_maps``.

    Returns
    -------
    PatientResult
        Lesion and failure rows, provenance and figure data of the patient.

    Raises
    ------
    PatientError
        A scan cannot be read, segmented, registered or matched; ``stage`` names the scan and manifest row.
    """
    st = settings if settings is not None else PipelineSettings()
    with itk_threads():
        return _process(scans, st, Path(label_dir) if label_dir is not None and st.label_maps else None)


def _process(scans: PatientScans, st: PipelineSettings, out_dir: Path | None) -> PatientResult:
    pid = scans.patient_id
    base = scans.baseline

    def stage(what: str, scan: ScanSpec) -> str:
        return f"{what} of the {scan.where()}"

    with _stage(pid, stage("extraction", base)):
        base_ct = _read_ct(base)
        base_res = _extract(base, st, base_ct)
        records = [_scan_record(base, base_res)]
        if out_dir is not None:
            base_res.write_label_map(out_dir / "baseline_labels.nii.gz")
        lesion_rows = base_res.rows()
    rt = None
    if base.rtdose is not None:
        with _stage(pid, stage("radiotherapy plan", base)):
            from pofa.batch.rt import add_lesion_doses, prepare_rt

            rt = prepare_rt(base, base_ct, st.radiotherapy(), st.registration_iterations)
            rt.summary["warnings"].extend(add_lesion_doses(
                rt, base_res.labels, {les.lesion_id: les.label for les in base_res.lesions}, lesion_rows,
                st.radiotherapy()))
            records[0]["radiotherapy"] = rt.summary
    lesions = Table.from_records(lesion_rows)
    failure_rows: list[dict[str, Any]] = []
    figure = ""
    tracker = None
    if st.lesion_tracks or scans.followups:
        with _stage(pid, stage("lesion measurement", base)):
            tracker = _Tracker(pid, base, base_res, st)
    k = 0
    for scan in scans.later:
        is_failure = scan.role is Role.FAILURE
        k += is_failure
        with _stage(pid, stage("extraction", scan)):
            fu_ct = _read_ct(scan)
            fu_res = _extract(scan, st, fu_ct)
            rec = _scan_record(scan, fu_res)
            if out_dir is not None:
                fu_res.write_label_map(out_dir / f"{scan.role.value}_{scan.scan_date}_labels.nii.gz")
        with _stage(pid, stage("registration", scan)):
            reg = _register(scan, base_res, fu_res, base_ct, fu_ct, st)
            rec["registration"] = {
                "stages": list(reg.stages),
                "metric_values": list(reg.metric_values),
                "body_dice_before": reg.body_dice_before,
                "body_dice_after": reg.body_dice_after,
                "method": reg.method,
            }
        with _stage(pid, stage("lesion matching", scan)):
            rows, summary, match = _match(scan, k, base_res, fu_res, reg, st)
        if tracker is not None:
            with _stage(pid, stage("lesion tracks", scan)):
                tracker.add(scan, fu_res, match, k if is_failure else None)
        if not is_failure:
            rec["matching"] = summary
            records.append(rec)
            continue
        if rt is not None:
            with _stage(pid, stage("dose to the failure lesions", scan)):
                from pofa.batch.rt import add_failure_doses

                summary["warnings"].extend(add_failure_doses(rt, fu_res.labels, reg.transform, rows,
                                                             st.radiotherapy()))
        if k == 1:
            with _stage(pid, stage("report figure", scan)):
                figure = _figure(base, scan, base_res, fu_res, match, summary["warnings"])
        rec["matching"] = summary
        failure_rows.extend(rows)
        records.append(rec)
    if rt is not None:
        from pofa.batch.rt import RT_FAILURE_COLUMNS

        failures = Table.from_records(failure_rows, (*FAILURE_COLUMNS, *RT_FAILURE_COLUMNS))
    else:
        failures = Table.from_records(failure_rows, FAILURE_COLUMNS)
    if tracker is None:
        return PatientResult(pid, lesions, failures, _canonical(_clean(records)), figure)
    records[0]["tracks"] = {"targets": sorted(tracker.targets), "warnings": tracker.warnings,
                            "deauville_references": tracker.references, "notes": [tracker.notes],
                            "target_regions": {lid: tracker.regions[lid] for lid in sorted(tracker.targets)
                                               if lid in tracker.regions},
                            "new_lesion_tracks": list(tracker.new_tracks.ids)}
    return PatientResult(pid, lesions, failures, _canonical(_clean(records)), figure, *tracker.tables())


class _Tracker:
    """Collects one patient's track, measurement and scan rows, scan by scan (pofa.response.linking)."""

    def __init__(self, pid: str, base: ScanSpec, base_res: Any, st: PipelineSettings) -> None:
        from pofa.response.linking import (
            NewLesionTracks,
            baseline_track_rows,
            lesion_regions,
            lesion_sizes,
            select_targets,
        )

        self.pid = pid
        self.base_ids = {les.label: les.lesion_id for les in base_res.lesions}
        by_label = lesion_sizes(base_res.labels, {les.label: les.suvmax for les in base_res.lesions})
        sizes = {les.lesion_id: by_label[les.label] for les in base_res.lesions}
        nodal = {les.lesion_id: les.extranodal for les in base_res.lesions}
        regions, self.notes = lesion_regions({les.lesion_id: les.centroid_lps for les in base_res.lesions},
                                             {les.lesion_id: les.site for les in base_res.lesions}, nodal,
                                             base.organs)
        self.regions = regions or {}
        self.targets, warning = select_targets(sizes, nodal, regions)
        self.warnings = [] if warning is None else [warning]
        self.meas, self.tracks = baseline_track_rows(pid, base.scan_date, sizes, self.targets)
        self.scans: list[dict[str, Any]] = [{"patient_id": pid, "scan_date": base.scan_date,
                                             "new_lesions": False}]
        self.base_labels = base_res.labels
        self.new_tracks = NewLesionTracks(base_res.labels, set(self.base_ids.values()),
                                          tolerance_mm=st.local_tolerance_mm, margin_mm=st.marginal_margin_mm)
        self.label_of = {les.lesion_id: les.label for les in base_res.lesions}
        self.references: dict[str, Any] = {}
        self._deauville(base, base_res, self.meas, None)

    def _deauville(self, scan: ScanSpec, res: Any, rows: list[dict[str, Any]], transform: Any) -> None:
        """Fill in the rows' Deauville scores when the scan's organ map holds the liver and the aorta."""
        from pofa.response.linking import deauville_score, site_uptake, uptake_reference

        ref = uptake_reference(res.suv.volume, scan.organs, res.labels)
        self.references[scan.scan_date] = None if ref is None else {"mediastinum_suvmean": ref.mediastinum,
                                                                    "liver_suvmean": ref.liver}
        if ref is None:
            return
        for r in rows:
            uptake = r["suvmax"]
            if not r["ldi_mm"]:
                label = self.label_of[r["lesion_id"]]
                uptake = site_uptake(self.base_labels, label, transform, res.suv.volume)
            r["deauville"] = None if uptake is None else str(deauville_score(float(uptake), ref))

    def add(self, scan: ScanSpec, fu_res: Any, match: Any, failure_number: int | None) -> None:
        from pofa.response.linking import lesion_sizes, scan_track_rows

        sizes = lesion_sizes(fu_res.labels, {les.label: les.suvmax for les in fu_res.lesions})
        prefix = "F" if failure_number is None else f"S{failure_number}-F"
        ids = {les.label: f"{prefix}{les.label}" for les in fu_res.lesions}
        meas, tracks, new = scan_track_rows(self.pid, scan.scan_date, match, self.base_ids, ids, sizes,
                                            self.targets, new_rows=False)
        tracks += self.new_tracks.add(self.pid, scan.scan_date, match, fu_res.labels, match.registration, ids,
                                      sizes)
        reg = match.registration
        self._deauville(scan, fu_res, meas, None if reg is None else reg.transform)
        self.meas += meas
        self.tracks += tracks
        self.scans.append({"patient_id": self.pid, "scan_date": scan.scan_date, "new_lesions": new})

    def tables(self) -> tuple[Table, Table, Table]:
        from pofa.response.linking import MEASUREMENT_COLUMNS, SCAN_COLUMNS, TRACK_COLUMNS

        return (Table.from_records(self.meas, MEASUREMENT_COLUMNS),
                Table.from_records(self.tracks, TRACK_COLUMNS), Table.from_records(self.scans, SCAN_COLUMNS))


def _figure(base: ScanSpec, scan: ScanSpec, base_res: Any, fu_res: Any, match: Any,
            warnings: list[str]) -> str:
    """Canonical JSON of the report figure of this failure scan ("" and a warning when it cannot be made,
    e.g. an oblique PET whose head-foot axis is not an image axis: the patient's rows are still good)."""
    from pofa.errors import ImagingError
    from pofa.imaging.mip import match_mip

    try:
        mip = match_mip(match, base_res.suv.volume, fu_res.suv.volume, base_res.labels, fu_res.labels,
                        baseline_date=base.scan_date, failure_date=scan.scan_date)
    except ImagingError as exc:
        warnings.append(f"no report figure for this scan: {exc}")
        return ""
    return _canonical(mip.to_json())


def _register(scan: ScanSpec, base_res: Any, fu_res: Any, base_ct: Any, fu_ct: Any,
              st: PipelineSettings) -> Any:
    from pofa.imaging.registration import Modality, RegistrationSettings, register_scans, transform_from_file

    if scan.transform is not None:
        both_ct = base_ct is not None and fu_ct is not None
        return transform_from_file(scan.transform, base_ct if both_ct else base_res.suv.volume,
                                   fu_ct if both_ct else fu_res.suv.volume,
                                   Modality.CT if both_ct else Modality.PET)
    rs = RegistrationSettings(deformable=st.deformable, affine=st.affine,
                              iterations=st.registration_iterations)
    return register_scans(base_res.suv.volume, fu_res.suv.volume, base_ct, fu_ct, rs)


def _match(scan: ScanSpec, k: int, base_res: Any, fu_res: Any, reg: Any,
           st: PipelineSettings) -> tuple[list[dict[str, Any]], dict[str, Any], Any]:
    """Failure rows of the ``k``-th failure scan: its lesions matched to the baseline lesions.

    Rows from :func:`pofa.imaging.matching.match_to_failures_rows`: ``baseline_lesion_id`` is filled for local
    failures only (a follow-up lesion covering several baseline lesions, a merge, gives one row per covered
    lesion); marginal, de novo and outside-the-baseline-scan lesions leave it blank, so the study counts them
    as new lesions (``match_class`` keeps the finer class). Centres are in baseline LPS mm (comparable with
    the baseline lesions); diameter, SUVmax and MTV are the failure lesion's own. Failure ids get the scan's
    number: ``S<k>-F<label>``, unique over the patient's failure scans. Also returns the
    :class:`~pofa.imaging.matching.MatchResult`.
    """
    from pofa.imaging.matching import MatchClass, match_patient, match_to_failures_rows

    m = match_patient(base_res.labels, fu_res.labels, reg, tolerance_mm=st.local_tolerance_mm,
                      margin_mm=st.marginal_margin_mm)
    base_id = {les.label: les.lesion_id for les in base_res.lesions}
    fu_les = {les.label: les for les in fu_res.lesions}
    rows = match_to_failures_rows(m, patient_id=scan.patient_id, scan_date=scan.scan_date,
                                  followup_features=fu_res.lesions, lesion_ids=base_id)
    for r in rows:
        les = fu_les[int(r["followup_label"])]
        r["failure_id"] = f"S{k}-{r['failure_id']}"
        r["suvmax"] = les.suvmax
        r["mtv_ml"] = les.mtv_ml
    counts = m.counts()
    warnings = []
    if counts[MatchClass.OUTSIDE]:
        warnings.append(f"{counts[MatchClass.OUTSIDE]} {scan.role.value} lesion(s) lie outside the baseline "
                        "scan's field of view: they count as new lesions, but whether they were there before "
                        "is unknown")
    unseen = [base_id[b.baseline_label] for b in m.baseline if not b.in_followup_scan]
    if unseen:
        warnings.append(f"baseline lesion(s) {', '.join(unseen)} lie outside the {scan.role.value} scan: "
                        "'not failed' means 'not seen' for them")
    summary = {
        "counts": {c.value: n for c, n in counts.items()},
        "baseline_failed": [base_id[b.baseline_label] for b in m.baseline if b.failed],
        "groups": {g: sum(1 for x in m.groups if x.kind.value == g)
                   for g in sorted({x.kind.value for x in m.groups})},
        "method": m.method,
        "warnings": warnings,
    }
    return rows, summary, m
