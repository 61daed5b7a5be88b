"""Content hashes of a patient's inputs and settings, and the per-patient done-records of a batch.

A patient's **key** is the SHA-256 of a canonical JSON document holding, for each of its scans, the role, scan
date, segmentation rule and the SHA-256 of every input (PET, CT, mask, organ map, transform), plus the
pipeline settings, the pofa version and :data:`CACHE_FORMAT`. A file's hash is the SHA-256 of its bytes; a
folder's (a DICOM series) is the SHA-256 of the sorted list of the SHA-256 of every file under it: file and
folder names are not part of it, so a series exported by hand and the same series fetched from a PACS into
pofa's cache (which names each file by its SHA-256) have the same hash. Paths are not part of the key either:
moving or renaming the data does not invalidate the results; changing one byte of an input does.

A patient's work folder (``<out>/work/<folder_name(patient_id)>/``) holds ``result.json`` (lesion and failure
rows and the provenance of each scan), the label maps, and ``done.json`` (the done-record: key, status,
SHA-256 of ``result.json``). The folder is built under a temporary name and renamed into place in one step, so
it appears complete or not at all; a record is *valid* only when its key matches and ``result.json`` has the
recorded hash. Partial folders (a worker killed mid-write) never count as done and are removed by the next
run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pofa import __version__
from pofa.batch.manifest import PatientScans
from pofa.io.hashing import sha256_file, sha256_path

__all__ = [
    "CACHE_FORMAT",
    "DONE_FILE",
    "RESULT_FILE",
    "DoneRecord",
    "ErrorKind",
    "Status",
    "clean_partial",
    "folder_name",
    "patient_key",
    "publish_folder",
    "read_done",
    "sha256_file",
    "sha256_path",
    "valid_done",
]

#: Bumped whenever the per-patient result format or the pipeline changes its numbers.
CACHE_FORMAT = 5  # 2: per-patient scan-figure data (report MIPs); 3: lesion tracks and measurements;
# 4: new lesions linked across scans, targets spread over body regions; 5: content-only folder hashes (no
# file names), each scan's input hashes in result.json
DONE_FILE = "done.json"
RESULT_FILE = "result.json"
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"


class Status(enum.StrEnum):
    """Outcome of one patient."""

    OK = "ok"
    ERROR = "error"


class ErrorKind(enum.StrEnum):
    """Why a patient failed: its input (a broken series: the same inputs fail again) or anything else."""

    INPUT = "input"
    INTERNAL = "internal"
    WORKER = "worker"


def input_hashes(scans: PatientScans) -> list[dict[str, Any]]:
    """List per scan the role, date, rule and the SHA-256 of each input given (paths left out).

    A baseline scan with an RTDOSE adds the SHA-256 of its RTDOSE, RTPLAN, RTSTRUCT and planning CT and the
    prescription and fractions given in the manifest.

    Parameters
    ----------
    scans : PatientScans
        The patient's scans.

    Returns
    -------
    list of dict of {str: object}
        One JSON object per scan.
    """
    out = []
    for s in scans.scans:
        entry: dict[str, Any] = {"role": s.role.value, "scan_date": s.scan_date, "threshold": s.threshold}
        for col in ("pet", "ct", "mask", "organs", "transform"):
            p = getattr(s, col)
            entry[col] = None if p is None else sha256_path(p)
        if s.rtdose is not None:  # only then, so that the keys of patients without a plan do not change
            for col in ("rtdose", "rtplan", "rtstruct", "rtct"):
                p = getattr(s, col)
                entry[col] = None if p is None else sha256_path(p)
            entry["rt_prescription_gy"] = s.rt_prescription_gy
            entry["rt_fractions"] = s.rt_fractions
        out.append(entry)
    return out


def patient_key(scans: PatientScans, settings: Mapping[str, Any],
                hashes: list[dict[str, Any]] | None = None) -> str:
    """Compute the content key of one patient's work: inputs' hashes, settings, pofa version, cache format.

    Parameters
    ----------
    scans : PatientScans
        The patient's scans.
    settings : mapping of {str: object}
        The pipeline settings as JSON values.
    hashes : list of dict of {str: object} or None, optional
        :func:`input_hashes` when already computed.

    Returns
    -------
    str
        The key (hex SHA-256).
    """
    doc = {
        "cache_format": CACHE_FORMAT,
        "pofa": __version__,
        "patient_id": scans.patient_id,
        "settings": dict(settings),
        "scans": hashes if hashes is not None else input_hashes(scans),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def folder_name(patient_id: str) -> str:
    """Make a file-system-safe, collision-free folder name for a patient id.

    The id's safe characters (at most 40) plus 12 hex digits of its SHA-256, so that ``a/b`` and ``a_b``, or
    ``P1`` and ``p1`` on a case-insensitive disk, get different folders.

    Parameters
    ----------
    patient_id : str
        The patient id.

    Returns
    -------
    str
        The folder name.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", patient_id)[:40].lstrip(".") or "patient"
    return f"{safe}-{hashlib.sha256(patient_id.encode('utf-8')).hexdigest()[:12]}"


@dataclass(frozen=True, slots=True)
class DoneRecord:
    """What ``done.json`` holds for one patient.

    Attributes
    ----------
    patient_id : str
    key : str
        :func:`patient_key` of the inputs and settings the record is for.
    status : Status
    files : Mapping[str, str]
        Files of the work folder and their SHA-256 (``result.json`` at least, when ok).
    error_kind : ErrorKind or None
    stage : str
        Where it failed (e.g. ``baseline scan (manifest row 2)``); "" when ok.
    reason : str
        The error message; "" when ok.
    elapsed_s : float
        Wall time of the patient's work.
    finished : str
        ISO time (UTC) the record was written.
    pofa_version : str
    """

    patient_id: str
    key: str
    status: Status
    files: Mapping[str, str] = field(default_factory=dict)
    error_kind: ErrorKind | None = None
    stage: str = ""
    reason: str = ""
    elapsed_s: float = 0.0
    finished: str = ""
    pofa_version: str = __version__
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON values.

        Returns
        -------
        dict of {str: object}
            The fields by name.
        """
        return {
            "patient_id": self.patient_id,
            "key": self.key,
            "status": self.status.value,
            "files": dict(self.files),
            "error_kind": None if self.error_kind is None else self.error_kind.value,
            "stage": self.stage,
            "reason": self.reason,
            "detail": self.detail,
            "elapsed_s": self.elapsed_s,
            "finished": self.finished,
            "pofa_version": self.pofa_version,
            "cache_format": CACHE_FORMAT,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DoneRecord:
        """Read :meth:`to_json` output.

        Parameters
        ----------
        d : mapping of {str: object}
            The JSON object.

        Returns
        -------
        DoneRecord
            The record.
        """
        kind = d.get("error_kind")
        return cls(str(d["patient_id"]), str(d["key"]), Status(d["status"]), dict(d.get("files") or {}),
                   None if kind is None else ErrorKind(kind), str(d.get("stage", "")),
                   str(d.get("reason", "")),
                   float(d.get("elapsed_s", 0.0)), str(d.get("finished", "")),
                   str(d.get("pofa_version", "")), str(d.get("detail", "")))


def now_utc() -> str:
    """The current UTC time as ISO 8601 text.

    Returns
    -------
    str
        The time, to the second.
    """
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def read_done(folder: Path) -> DoneRecord | None:
    """Read the done-record of a work folder.

    Parameters
    ----------
    folder : pathlib.Path
        The work folder.

    Returns
    -------
    DoneRecord or None
        The record, or None when absent or unreadable (then it does not count).
    """
    try:
        data = json.loads((folder / DONE_FILE).read_text(encoding="utf-8"))
        if data.get("cache_format") != CACHE_FORMAT:
            return None
        return DoneRecord.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def valid_done(folder: Path, key: str, retry_errors: bool = False) -> DoneRecord | None:
    """Return the record when it may be reused for ``key``; else None.

    Reused: an ``ok`` record whose files all exist with their recorded SHA-256; an ``error`` record of kind
    ``input`` (a broken series fails again on the same bytes) unless ``retry_errors``. Internal errors and
    worker deaths are always retried.

    Parameters
    ----------
    folder : pathlib.Path
        The work folder.
    key : str
        The patient's current content key.
    retry_errors : bool, optional
        Never reuse an error record.

    Returns
    -------
    DoneRecord or None
        The reusable record, or None.
    """
    rec = read_done(folder)
    if rec is None or rec.key != key:
        return None
    if rec.status is Status.ERROR:
        return rec if (rec.error_kind is ErrorKind.INPUT and not retry_errors) else None
    if RESULT_FILE not in rec.files:
        return None
    for name, digest in rec.files.items():
        f = folder / name
        if not f.is_file() or sha256_file(f) != digest:
            return None
    return rec


def write_json(path: Path, obj: Any) -> None:
    """Write JSON (UTF-8, no NaN) to ``path`` (the caller's folder is still private).

    Parameters
    ----------
    path : pathlib.Path
        The file written.
    obj : object
        JSON-ready value.
    """
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


@contextlib.contextmanager
def staging_folder(parent: Path, name: str) -> Iterator[Path]:
    """Make a private temporary folder in ``parent`` for building the work folder ``name``; removed on error.

    Parameters
    ----------
    parent : pathlib.Path
        Folder that holds the work folders.
    name : str
        Name of the work folder built.
    """
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{name}-", dir=parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish_folder(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` onto ``final`` in one rename (an older ``final`` is removed).

    If another process publishes the same patient at the same moment (dask re-running a task whose worker was
    thought dead), the last rename wins; both folders are complete.

    Parameters
    ----------
    tmp : pathlib.Path
        The finished temporary folder.
    final : pathlib.Path
        The work folder.

    Raises
    ------
    OSError
        When the finished folder cannot be moved into place.
    """
    for _ in range(10):
        try:
            os.replace(tmp, final)
            return
        except OSError:
            if not final.exists():
                raise
        old = final.with_name(f"{_OLD_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}")
        with contextlib.suppress(FileNotFoundError):
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
    raise OSError(f"could not move {tmp} onto {final}")


def clean_partial(work: Path) -> int:
    """Remove temporary and replaced folders left by killed runs.

    Parameters
    ----------
    work : pathlib.Path
        Folder that holds the work folders.

    Returns
    -------
    int
        How many folders were removed.
    """
    n = 0
    if not work.is_dir():
        return 0
    for p in work.iterdir():
        if p.name.startswith((_TMP_PREFIX, _OLD_PREFIX)) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n
