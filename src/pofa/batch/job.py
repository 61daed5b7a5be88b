"""One patient's unit of work: content key, reuse of a valid done-record, the pipeline, an atomic work folder.

:func:`run_patient_job` is what a Dask worker runs (and what ``pofa build-study`` runs in its own process). It
never raises for a broken scan: the error is recorded in the patient's ``done.json`` with the stage and
reason, and returned in the :class:`PatientOutcome`. Only the driver decides what to do with it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pofa.batch.cache import (
    DONE_FILE,
    RESULT_FILE,
    DoneRecord,
    ErrorKind,
    Status,
    folder_name,
    input_hashes,
    now_utc,
    patient_key,
    publish_folder,
    sha256_file,
    staging_folder,
    valid_done,
    write_json,
)
from pofa.batch.manifest import REFERENCE_COLUMNS, PatientScans, ScanSpec
from pofa.batch.manifest_codes import PATH_COLUMNS
from pofa.batch.pipeline import PatientError, PatientResult, PipelineSettings, process_patient
from pofa.errors import PofaError
from pofa.pacs.fetch import FetchOptions
from pofa.pacs.reference import is_reference

__all__ = ["FETCH_STAGE", "PatientJob", "PatientOutcome", "fetch_references", "load_result",
           "run_patient_job", "with_input_hashes"]

#: The stage named in a patient's error when a ``dicomweb:`` series cannot be fetched.
FETCH_STAGE = "fetching a series from the PACS"


@dataclass(frozen=True, slots=True)
class PatientJob:
    """What a worker needs for one patient (small and picklable).

    Attributes
    ----------
    scans : PatientScans
    settings : PipelineSettings
    work : str
        The batch's work folder (``<out>/work``); the patient's folder is ``work/folder_name(patient_id)``.
    retry_errors : bool
        Re-run a patient whose inputs failed before (input errors are otherwise reused).
    recompute : bool
        Ignore any done-record.
    fetch : FetchOptions or None
        How to fetch ``dicomweb:`` series (cache, TLS, timeout); None = the defaults.
    """

    scans: PatientScans
    settings: PipelineSettings
    work: str
    retry_errors: bool = False
    recompute: bool = False
    fetch: FetchOptions | None = None

    @property
    def folder(self) -> Path:
        """The patient's work folder.

        Returns
        -------
        pathlib.Path
            ``work / folder_name(patient_id)``.
        """
        return Path(self.work) / folder_name(self.scans.patient_id)


@dataclass(frozen=True, slots=True)
class PatientOutcome:
    """What became of one patient (returned to the driver).

    ``reused`` is True when a valid done-record from an earlier run was used (nothing recomputed).
    """

    patient_id: str
    status: Status
    reused: bool
    key: str
    error_kind: ErrorKind | None = None
    stage: str = ""
    reason: str = ""
    elapsed_s: float = 0.0
    host: str = ""

    @classmethod
    def of(cls, rec: DoneRecord, reused: bool, host: str = "") -> PatientOutcome:
        """Make the outcome of a done-record.

        Parameters
        ----------
        rec : DoneRecord
            The done-record.
        reused : bool
            Whether the record was reused rather than computed.
        host : str, optional
            Worker that ran the patient.

        Returns
        -------
        PatientOutcome
            The outcome.
        """
        return cls(rec.patient_id, rec.status, reused, rec.key, rec.error_kind, rec.stage, rec.reason,
                   rec.elapsed_s, host)


def _host() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_patient_job(job: PatientJob) -> PatientOutcome:
    """Process one patient unless a valid done-record exists; write its work folder atomically.

    The folder (``result.json``, label maps, then ``done.json`` holding the SHA-256 of each file) is built
    under a temporary name and renamed into place, so a worker killed at any moment leaves either the old
    folder or the new complete one.

    Parameters
    ----------
    job : PatientJob
        The patient's scans, settings and work folder.

    Returns
    -------
    PatientOutcome
        Status, key, error (if any) and time of the patient.
    """
    t0 = time.perf_counter()
    pid = job.scans.patient_id
    folder = job.folder
    try:
        scans = fetch_references(job.scans, job.fetch)
    except PofaError as exc:  # the PACS is down, slow, refuses, or lacks a series: only this patient fails
        rec = DoneRecord(pid, "", Status.ERROR, {}, ErrorKind.INPUT, FETCH_STAGE, str(exc),
                         round(time.perf_counter() - t0, 3), now_utc())
        _publish_record(job, rec)
        return PatientOutcome.of(rec, reused=False, host=_host())
    try:
        hashes = input_hashes(scans)
    except OSError as exc:
        key = ""
        rec = DoneRecord(pid, key, Status.ERROR, {}, ErrorKind.INPUT, "reading the input files",
                         f"cannot read an input file: {exc}", round(time.perf_counter() - t0, 3), now_utc())
        _publish_record(job, rec)
        return PatientOutcome.of(rec, reused=False, host=_host())
    key = patient_key(scans, job.settings.to_json(), hashes)
    if not job.recompute:
        old = valid_done(folder, key, job.retry_errors)
        if old is not None:
            return PatientOutcome.of(old, reused=True, host=_host())
    with staging_folder(Path(job.work), folder.name) as tmp:
        try:
            result = process_patient(scans, job.settings, label_dir=tmp)
        except PatientError as exc:
            kind = ErrorKind.INTERNAL if exc.internal else ErrorKind.INPUT
            rec = _error_record(tmp, pid, key, kind, exc.stage, exc.reason, exc.detail, t0)
        except PofaError as exc:
            rec = _error_record(tmp, pid, key, ErrorKind.INPUT, "processing", str(exc), "", t0)
        except Exception as exc:  # noqa: BLE001 - isolation: any failure of one patient is recorded, not raised
            rec = _error_record(tmp, pid, key, ErrorKind.INTERNAL, "processing",
                                f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=20), t0)
        else:
            write_json(tmp / RESULT_FILE, with_input_hashes(result, hashes).to_json())
            files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            rec = DoneRecord(pid, key, Status.OK, files, None, "", "", round(time.perf_counter() - t0, 3),
                             now_utc())
        write_json(tmp / DONE_FILE, rec.to_json())
        publish_folder(tmp, folder)
    return PatientOutcome.of(rec, reused=False, host=_host())


def with_input_hashes(result: PatientResult, hashes: list[dict[str, Any]]) -> PatientResult:
    """Add the SHA-256 of each scan's inputs to its provenance (``inputs``: column -> hash; no path).

    Parameters
    ----------
    result : PatientResult
        The pipeline's result.
    hashes : list of dict of {str: object}
        :func:`pofa.batch.cache.input_hashes` of the patient's scans (role and date name each scan).

    Returns
    -------
    PatientResult
        The result whose provenance records carry ``inputs`` (scans matched by role and date).
    """
    by_scan = {(h["role"], h["scan_date"]): h for h in hashes}
    recs = []
    for rec in result.provenance:
        h = by_scan.get((rec.get("role"), rec.get("scan_date")))
        if h is not None:
            rec = {**rec, "inputs": {c: h[c] for c in PATH_COLUMNS if c in h}}
        recs.append(rec)
    return dataclasses.replace(result, scans=json.dumps(recs, sort_keys=True, ensure_ascii=False,
                                                        allow_nan=False))


def fetch_references(scans: PatientScans, options: FetchOptions | None = None) -> PatientScans:
    """Return the scans with every ``dicomweb:`` series replaced by its folder in the local cache.

    Series not yet in the cache are fetched (WADO-RS, :func:`pofa.pacs.fetch.fetch_series`); scans given as
    local paths are returned unchanged. The content key is computed from the fetched files, so a series
    fetched from a PACS and the same files on disk give the same results.

    Parameters
    ----------
    scans : PatientScans
        The patient's scans, as in the manifest.
    options : FetchOptions, optional
        Cache folder, TLS, timeout and retries.

    Returns
    -------
    PatientScans
        The same scans with local folders for the references.

    Raises
    ------
    pofa.pacs.errors.PacsError
        A series cannot be fetched (the message names it by its study and series UIDs and the server).
    """
    refs = [getattr(s, c) for s in scans.scans for c in REFERENCE_COLUMNS if is_reference(getattr(s, c))]
    if not refs:
        return scans
    from pofa.pacs.fetch import fetch_series
    from pofa.pacs.reference import SeriesRef

    local = {ref: str(fetch_series(SeriesRef.parse(ref), options)) for ref in dict.fromkeys(refs)}

    def resolved(s: ScanSpec) -> ScanSpec:
        pet = local[s.pet] if is_reference(s.pet) else s.pet
        ct = local[s.ct] if s.ct is not None and is_reference(s.ct) else s.ct
        return dataclasses.replace(s, pet=pet, ct=ct)

    failures = tuple(resolved(s) for s in scans.failures)
    return PatientScans(scans.patient_id, resolved(scans.baseline), failures)


def _error_record(tmp: Path, pid: str, key: str, kind: ErrorKind, stage: str, reason: str, detail: str,
                  t0: float) -> DoneRecord:
    """An error record; partial files of the failed attempt are removed first (they never count)."""
    for p in tmp.iterdir():
        if p.is_file():
            p.unlink()
    return DoneRecord(pid, key, Status.ERROR, {}, kind, stage, reason, round(time.perf_counter() - t0, 3),
                      now_utc(), detail=detail)


def _publish_record(job: PatientJob, rec: DoneRecord) -> None:
    with staging_folder(Path(job.work), job.folder.name) as tmp:
        write_json(tmp / DONE_FILE, rec.to_json())
        publish_folder(tmp, job.folder)


def record_worker_failure(job: PatientJob, reason: str) -> PatientOutcome:
    """Record, from the driver, that the workers running a patient died (retried on the next run).

    Parameters
    ----------
    job : PatientJob
        The patient whose workers died.
    reason : str
        What happened.

    Returns
    -------
    PatientOutcome
        An internal-error outcome, also written as the patient's done-record.
    """
    rec = DoneRecord(job.scans.patient_id, "", Status.ERROR, {}, ErrorKind.WORKER, "worker", reason, 0.0,
                     now_utc())
    _publish_record(job, rec)
    return PatientOutcome.of(rec, reused=False)


def load_result(folder: Path, key: str) -> PatientResult:
    """Load the :class:`PatientResult` of a finished patient, checked against its done-record and ``key``.

    Parameters
    ----------
    folder : pathlib.Path
        The patient's work folder.
    key : str
        The content key expected.

    Returns
    -------
    PatientResult
        The result.

    Raises
    ------
    PofaError
        When the work folder holds no valid result for this run.
    """
    rec = valid_done(folder, key)
    if rec is None or rec.status is not Status.OK:
        raise PofaError(f"the work folder {folder} holds no valid result for this run; run the batch again "
                        "(it recomputes what is missing)")
    data = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
    return PatientResult.from_json(data)
