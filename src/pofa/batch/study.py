"""From per-patient imaging results to a study folder that ``pofa analyze`` reads.

The study folder (docs/study-format.md) gets:

- ``patients.csv``: the rows of the manifest's patients table for the patients whose scans were processed,
every
  column kept as written (text cells copied, not re-typed);
- ``lesions.csv``: the baseline lesions of every processed patient (study lesion format, then the feature
  columns of :data:`pofa.imaging.extract.LESION_COLUMNS` as covariates);
- ``failures.csv``: the lesions seen at the failure scans, matched to the baseline lesions;
- ``measurements.csv``, ``scans.csv`` and ``tracks.csv`` when the manifest has follow-up scans (role
  ``followup``): every baseline lesion measured on every scan of its patient, whether each scan shows new
  lesions, and the lesion tracks with their events (:mod:`pofa.response.linking`; docs/response.md);
- ``study.toml``: copied from the manifest's folder when there is one, else a name and description;
- ``imaging.json``: the hash of the resolved inputs (:func:`inputs_sha256`: the manifest's cells other than
  paths, and the SHA-256 of every input's content), the patients table's SHA-256, the pipeline settings, each
  patient's content key and per-scan provenance (manifest row, SHA-256 of each input, SUV method,
  segmentation, registration quality, matching; never a path, file name or URL), the data of each
  patient's baseline-and-failure figure (``figure``: coronal MIPs and lesion outlines of the first failure
  scan, :meth:`pofa.imaging.mip.MatchMip.to_json`; null without a failure scan), which the report draws, and
  the patients left out with the reason.

Patients are in manifest order, lesions and failure rows in the order the pipeline made them; numbers are
written with ``repr`` (the shortest text that reads back to the same double), so the folder is the same byte
for byte whichever machine or worker computed each patient.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pofa import __version__
from pofa.atomic import check_output_dir, output_dir
from pofa.batch.cache import Status
from pofa.batch.job import PatientJob, PatientOutcome, load_result, run_patient_job
from pofa.batch.manifest import Manifest, PatientScans, load_manifest
from pofa.batch.pipeline import FAILURE_COLUMNS, Cell, PatientResult, PipelineSettings
from pofa.errors import PofaError
from pofa.io.hashing import sha256_file
from pofa.pacs.fetch import FetchOptions
from pofa.settings import SETTINGS_FILE

__all__ = ["IMAGING_JSON", "BuildError", "ExcludedPatient", "build_study_from_manifest", "csv_text",
           "error_rows", "format_cell", "inputs_sha256", "write_study"]

IMAGING_JSON = "imaging.json"


class BuildError(PofaError):
    """Some patients' scans could not be processed (``pofa build-study`` without ``--skip-errors``)."""


@dataclass(frozen=True, slots=True)
class ExcludedPatient:
    """A patient left out of the study, with where and why it failed."""

    patient_id: str
    error_kind: str
    stage: str
    reason: str

    @classmethod
    def of(cls, o: PatientOutcome) -> ExcludedPatient:
        """Make the record of a patient left out.

        Parameters
        ----------
        o : PatientOutcome
            The patient's outcome.

        Returns
        -------
        ExcludedPatient
            The record.
        """
        return cls(o.patient_id, "" if o.error_kind is None else o.error_kind.value, o.stage, o.reason)

    def to_json(self) -> dict[str, str]:
        """The record as plain JSON values.

        Returns
        -------
        dict of {str: str}
            The fields by name.
        """
        return {"patient_id": self.patient_id, "error_kind": self.error_kind, "stage": self.stage,
                "reason": self.reason}


def format_cell(v: Cell) -> str:
    """Format a cell as CSV text: blank for None, yes/no for booleans, ``repr`` for floats (exact round trip).

    Parameters
    ----------
    v : Cell
        The cell.

    Returns
    -------
    str
        The text.
    """
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """Write a header and rows as CSV text (comma, minimal quoting, ``\\n`` line ends), formulas neutralised.

    Parameters
    ----------
    columns : sequence of str
        Header.
    rows : sequence of sequence of Cell
        Rows of cells.

    Returns
    -------
    str
        The CSV text.
    """
    from pofa.io.writers import neutralise

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([neutralise(str(c)) for c in columns])
    for r in rows:  # no cell a spreadsheet would run (the study's reader drops the quote again)
        w.writerow([neutralise(format_cell(v)) for v in r])
    return buf.getvalue()


def _union_columns(tables: Sequence[tuple[str, ...]], first: Sequence[str] = ()) -> list[str]:
    cols = list(first)
    for t in tables:
        cols.extend(c for c in t if c not in cols)
    return cols


def _stack(
    results: Sequence[PatientResult], which: str, first: Sequence[str] = ()
) -> tuple[list[str], list[list[Any]]]:
    tables = [getattr(r, which) for r in results]
    cols = _union_columns([t.columns for t in tables], first)
    rows: list[list[Any]] = []
    for t in tables:
        pos = {c: i for i, c in enumerate(t.columns)}
        rows.extend([r[pos[c]] if c in pos else None for c in cols] for r in t.rows)
    return cols, rows


def _with_sources(result: PatientResult, scans: PatientScans | None) -> list[dict[str, Any]]:
    """The per-scan provenance with the scan's row in the current manifest (no path, file name or URL)."""
    by_scan = {(s.role.value, s.scan_date): s for s in (scans.scans if scans is not None else ())}
    out = []
    for rec in result.provenance:
        key: tuple[Any, Any] = (rec.get("role"), rec.get("scan_date"))
        s = by_scan.get(key)
        out.append({**({} if s is None else {"row": s.row}), **rec})
    return out


def inputs_sha256(manifest: Manifest, results: Sequence[PatientResult]) -> str:
    """Hash what a study was built from, by content: the manifest's cells but its paths, the inputs' SHA-256.

    The SHA-256 of the canonical JSON list, in manifest order, of every manifest row's cells other than
    paths and references (patient id, role, scan date, threshold, RT prescription and fractions, row number)
    with, for the patients in the study, the SHA-256 of each input the row names (``inputs`` of the scan's
    provenance: a file's bytes, a DICOM folder's files' bytes). The same scans given as local files or as
    ``dicomweb:`` series, anywhere on disk, give the same hash; a changed byte or cell gives another.

    Parameters
    ----------
    manifest : Manifest
        The imaging manifest.
    results : sequence of PatientResult
        The processed patients' results (their provenance carries the input hashes).

    Returns
    -------
    str
        The hex digest.
    """
    from pofa.batch.manifest_codes import PATH_COLUMNS

    hashes = {(r.patient_id, rec.get("role"), rec.get("scan_date")): rec.get("inputs")
              for r in results for rec in r.provenance}
    rows = []
    for s in manifest.scans:
        cells = {f.name: getattr(s, f.name) for f in dataclasses.fields(s) if f.name not in PATH_COLUMNS}
        cells["role"] = s.role.value
        cells["inputs"] = hashes.get((s.patient_id, s.role.value, s.scan_date))
        rows.append(cells)
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def write_study(manifest: Manifest, results: Sequence[PatientResult], out: str | Path, *,
                settings: PipelineSettings, keys: Mapping[str, str] | None = None,
                excluded: Sequence[ExcludedPatient] = (), force: bool = False) -> Path:
    """Write the study folder for ``results`` (atomically: complete or not at all).

    Parameters
    ----------
    manifest : Manifest
        The manifest the results came from (its patients table gives patients.csv).
    results : sequence of PatientResult
        One per processed patient, in manifest order.
    out : path
        The study folder; an existing non-empty folder is replaced only with ``force``.
    settings : PipelineSettings
        Recorded in imaging.json.
    keys : mapping, optional
        Patient id -> content key, recorded in imaging.json.
    excluded : sequence of ExcludedPatient
        Patients left out (recorded in imaging.json).
    force : bool, optional
        Replace an existing non-empty folder.

    Returns
    -------
    pathlib.Path
        The study folder (absolute).

    Raises
    ------
    PofaError
        When no patient's scans could be processed, or a patient appears twice among the results.
    """
    if not results:
        raise PofaError("no patient's scans could be processed, so there is no study to write; see the "
                        "errors listed for each patient")
    ids = [r.patient_id for r in results]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise PofaError(f"a patient appears twice among the results: {twice}")
    scans = {p.patient_id: p for p in manifest.patients()}
    clinical = manifest.clinical
    keep = clinical["patient_id"].astype(str).isin(set(ids))
    clinical = clinical.loc[keep]
    from pofa.imaging.extract import LESION_COLUMNS

    les_cols, les_rows = _stack(results, "lesions", LESION_COLUMNS)
    fail_cols, fail_rows = _stack(results, "failures", FAILURE_COLUMNS)
    from pofa.batch.manifest import Role

    with_tracks = any(s.role is Role.FOLLOWUP for s in manifest.scans)
    extra: dict[str, tuple[list[str], list[list[Any]]]] = {}
    if with_tracks:
        from pofa.response.linking import MEASUREMENT_COLUMNS, SCAN_COLUMNS, TRACK_COLUMNS

        measured = [r for r in results if len(r.measurements)]  # scans rows only where lesions are measured
        extra = {"measurements.csv": _stack(measured, "measurements", MEASUREMENT_COLUMNS),
                 "scans.csv": _stack(measured, "scan_rows", SCAN_COLUMNS),
                 "tracks.csv": _stack(results, "tracks", TRACK_COLUMNS)}
    info: dict[str, Any] = {
        "format": 1,
        "pofa_version": __version__,
        "manifest": manifest.path.name,
        "inputs_sha256": inputs_sha256(manifest, results),
        "patients_table": manifest.patients_path.name,
        "patients_table_sha256": sha256_file(manifest.patients_path),
        "default_threshold": manifest.default_threshold,
        "settings": settings.to_json(),
        "patients": [{"patient_id": r.patient_id, "key": (keys or {}).get(r.patient_id),
                      "scans": _with_sources(r, scans.get(r.patient_id)), "figure": r.figure_data}
                     for r in results],
        "excluded": [e.to_json() for e in excluded],
        "columns": {
            "lesions.csv": "baseline lesions from pofa.imaging.extract (docs/imaging.md)",
            "failures.csv": "lesions of the failure scans matched to the baseline lesions (docs/batch.md)",
            **({"measurements.csv": "every baseline lesion measured on every scan (docs/response.md)",
                "scans.csv": "new lesions on each scan, from the lesion tracks (docs/response.md)",
                "tracks.csv": "each lesion's events across the scans (docs/response.md)"}
               if with_tracks else {}),
        },
    }
    toml = manifest.path.parent / SETTINGS_FILE
    with output_dir(Path(out), force) as tmp:
        (tmp / "patients.csv").write_text(
            csv_text(list(clinical.columns), clinical.astype(str).to_numpy().tolist()), encoding="utf-8")
        (tmp / "lesions.csv").write_text(csv_text(les_cols, les_rows), encoding="utf-8")
        (tmp / "failures.csv").write_text(csv_text(fail_cols, fail_rows), encoding="utf-8")
        for name, (cols, rows) in extra.items():
            (tmp / name).write_text(csv_text(cols, rows), encoding="utf-8")
        if toml.is_file():
            shutil.copyfile(toml, tmp / SETTINGS_FILE)
        else:
            name = manifest.path.parent.name or manifest.path.stem
            (tmp / SETTINGS_FILE).write_text(
                "# Written by pofa from an imaging manifest; edit to change the analysis settings.\n[study]\n"
                f"name = {json.dumps(name)}\n"
                f"description = {json.dumps('Built from the imaging manifest ' + manifest.path.name)}\n",
                encoding="utf-8")
        (tmp / IMAGING_JSON).write_text(
            json.dumps(info, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return Path(out).absolute()


def _failure_list(errors: Sequence[PatientOutcome], limit: int = 10) -> str:
    lines = [f"  patient {o.patient_id!r}, {o.stage}: {o.reason}" for o in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"  ... and {len(errors) - limit} more")
    return "\n".join(lines)


def build_study_from_manifest(
    manifest: str | Path | Manifest,
    out: str | Path,
    *,
    patients: str | Path | None = None,
    threshold: str | float | None = None,
    settings: PipelineSettings | None = None,
    force: bool = False,
    skip_errors: bool = False,
    work: str | Path | None = None,
    on_outcome: Callable[[PatientOutcome], None] | None = None,
    fetch: FetchOptions | None = None,
) -> Path:
    """Build a study folder from an imaging manifest in the current process (no cluster).

    Runs :func:`pofa.batch.pipeline.process_patient` for each patient, one after the other, then
    :func:`write_study`. The numbers are the same as ``pofa batch`` gives (same function, same serialisation).

    Parameters
    ----------
    manifest : path or Manifest
        The imaging manifest (read with :func:`pofa.batch.manifest.load_manifest` when a path).
    out : path
        The study folder to write (replaced only with ``force``).
    patients : path, optional
        The patients table (default: patients.csv beside the manifest).
    threshold : str or float, optional
        Segmentation rule for manifest rows with neither a mask nor a threshold.
    settings : PipelineSettings, optional
        Options of the pipeline (default ``PipelineSettings()``).
    force : bool
        Replace a non-empty ``out``.
    skip_errors : bool
        Leave out the patients whose scans fail (listed in imaging.json) instead of stopping with an error.
    work : path, optional
        A work folder kept between runs: patients already done with the same inputs and settings are reused
        (as in ``pofa batch``). Default: a temporary folder, removed afterwards.
    on_outcome : callable, optional
        Called with each patient's :class:`~pofa.batch.job.PatientOutcome` (progress).
    fetch : FetchOptions, optional
        How ``dicomweb:`` series are fetched (cache folder, TLS, timeout; docs/pacs.md). Default: the user's
        cache folder, TLS verified.

    Returns
    -------
    pathlib.Path
        The study folder (absolute).

    Raises
    ------
    ManifestError
        The manifest or its patients table has errors (nothing is processed).
    BuildError
        A patient's scans failed and ``skip_errors`` is off (nothing is written).
    """
    st = settings if settings is not None else PipelineSettings()
    m = manifest if isinstance(manifest, Manifest) else load_manifest(manifest, patients, threshold)
    st = st.with_study_toml(m.path.parent).for_manifest(m)
    if not m.ok:
        from pofa.batch.manifest import ManifestError

        raise ManifestError(m.report)
    check_output_dir(Path(out).absolute(), force)
    with tempfile.TemporaryDirectory(prefix="pofa-work-") as tmp_work:
        work_dir = Path(work).absolute() if work is not None else Path(tmp_work)
        outcomes = []
        for p in m.patients():
            o = run_patient_job(PatientJob(p, st, str(work_dir), fetch=fetch))
            outcomes.append(o)
            if on_outcome is not None:
                on_outcome(o)
        errors = [o for o in outcomes if o.status is Status.ERROR]
        if errors and not skip_errors:
            raise BuildError(f"the scans of {len(errors)} of {len(outcomes)} patient(s) could not be "
                             f"processed, so no study was written:\n{_failure_list(errors)}",
                             advice="fix or remove these scans, or use {skip_errors} to build the study "
                                    "without these patients")
        ok = [o for o in outcomes if o.status is Status.OK]
        results = [load_result(PatientJob(p, st, str(work_dir)).folder, o.key)
                   for p, o in zip(m.patients(), outcomes, strict=True) if o.status is Status.OK]
        return write_study(m, results, out, settings=st, keys={o.patient_id: o.key for o in ok},
                           excluded=[ExcludedPatient.of(o) for o in errors], force=force)


def error_rows(outcomes: Sequence[PatientOutcome]) -> str:
    """Write errors.csv text: one row per failed patient (kind, stage, reason).

    Parameters
    ----------
    outcomes : sequence of PatientOutcome
        The outcomes of the failed patients.

    Returns
    -------
    str
        The CSV text.
    """
    rows = [[o.patient_id, o.error_kind.value if o.error_kind else "", o.stage, o.reason]
            for o in outcomes if o.status is Status.ERROR]
    return csv_text(["patient_id", "error_kind", "stage", "reason"], rows)

