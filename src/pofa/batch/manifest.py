"""The imaging manifest: which scans belong to which patient, and the clinical table beside it.

An imaging manifest is a CSV file with one row per scan (docs/batch.md)::

    patient_id,role,scan_date,pet,ct,mask,organs,threshold,transform
    P001,baseline,2019-01-03,P001/base_suv.nii.gz,P001/base_ct.nii.gz,,P001/base_organs.nii.gz,,
    P001,failure,2019-06-20,P001/fu_suv.nii.gz,P001/fu_ct.nii.gz,,P001/fu_organs.nii.gz,,

- ``patient_id`` (text, kept as written), ``role`` (``baseline`` | ``followup`` | ``failure``), ``scan_date``
  (YYYY-MM-DD) and ``pet`` (a NIfTI SUV volume or a DICOM folder) are required; ``ct``, ``mask`` (NIfTI label
  map, DICOM SEG or RTSTRUCT), ``organs`` (organ label map, e.g. TotalSegmentator), ``threshold`` (per-scan
  segmentation rule) and ``transform`` (a precomputed registration, follow-up and failure rows) are optional.
- A baseline row may name its bridging-RT plan: ``rtdose`` and, with it, ``rtplan``, ``rtstruct``, ``rtct``
  (the planning CT), ``rt_prescription_gy`` and ``rt_fractions`` (:mod:`pofa.batch.rt`). The RT files' DICOM
  headers are read here to compare frames of reference, so that a dose the pipeline could not place is a
  finding on its row, not a failure halfway through a batch.
- Paths are relative to the manifest's folder (absolute paths are used as they are).
- Each patient has exactly one baseline row and any number of follow-up and failure rows. Follow-up scans
  (response assessments) only feed the lesion tracks and the measurements table
  (:mod:`pofa.response.linking`); failure scans also give the failures table.
- The clinical dates are *not* in the manifest: they are in the study format's patients table,
  ``patients.csv`` beside the manifest (or another CSV given explicitly), one row per patient with
  ``index_date``, ``last_followup_date``, ``progression_date``, ``death_date`` and any covariates. The
  manifest has several rows per patient; one patients row per patient keeps the dates from disagreeing.

Reading never raises on bad content: every problem becomes a :class:`~pofa.findings.Finding` naming the file,
the row (header = row 1) and the column, with what to do. :func:`load_manifest` raises :class:`ManifestError`
(which carries the whole report) when there is an error.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pofa.batch.manifest_codes import (
    MANIFEST_CODES,
    MANIFEST_COLUMNS,
    PATH_COLUMNS,
    REFERENCE_COLUMNS,
    RT_COLUMNS,
    ManifestCode,
    ManifestError,
    Role,
)
from pofa.batch.manifest_codes import manifest_finding as _finding
from pofa.findings import Finding, ValidationReport
from pofa.io.readers import read_csv_table
from pofa.pacs.reference import is_reference
from pofa.schema import MAX_YEAR, MIN_YEAR, TableName, normalise_header
from pofa.validation import validate_tables

__all__ = [
    "MANIFEST_CODES",
    "MANIFEST_COLUMNS",
    "REFERENCE_COLUMNS",
    "RT_COLUMNS",
    "Manifest",
    "ManifestCode",
    "ManifestError",
    "PatientScans",
    "Role",
    "ScanSpec",
    "canonical_threshold",
    "load_manifest",
    "read_manifest",
]

#: The default name of the patients table beside the manifest.
PATIENTS_FILE = "patients.csv"




@dataclass(frozen=True, slots=True)
class ScanSpec:
    """One manifest row, resolved: absolute paths and the segmentation rule that applies.

    Attributes
    ----------
    patient_id : str
    role : Role
    scan_date : str
        ISO date ``YYYY-MM-DD``.
    pet : str
        Absolute path of the PET (NIfTI file or DICOM folder).
    ct, mask, organs, transform : str or None
        Absolute paths, or None.
    threshold : str or None
        Canonical threshold (``suv4``, ``suv2.5``, ``41pct``, ``percist`` or a float written with a point);
        None when a mask is given.
    row : int
        Manifest row (header = row 1).
    rtdose, rtplan, rtstruct, rtct : str or None
        Baseline rows: absolute paths of the bridging-RT plan's files, or None.
    rt_prescription_gy : float or None
        Baseline rows: the prescription given in the manifest.
    rt_fractions : int or None
        Baseline rows: the number of fractions given in the manifest.
    """

    patient_id: str
    role: Role
    scan_date: str
    pet: str
    ct: str | None = None
    mask: str | None = None
    organs: str | None = None
    threshold: str | None = None
    transform: str | None = None
    row: int = 0
    rtdose: str | None = None
    rtplan: str | None = None
    rtstruct: str | None = None
    rtct: str | None = None
    rt_prescription_gy: float | None = None
    rt_fractions: int | None = None

    def where(self) -> str:
        """Describe the scan for messages: ``role scan of YYYY-MM-DD (manifest row N)``.

        Returns
        -------
        str
            The description.
        """
        return f"{self.role.value} scan of {self.scan_date} (manifest row {self.row})"

    def to_json(self) -> dict[str, Any]:
        """Return the scan as a JSON-ready dict (read back by :meth:`from_json`).

        Returns
        -------
        dict of str to Any
            Every field by name; the role as its value.
        """
        return {"patient_id": self.patient_id, "role": self.role.value, "scan_date": self.scan_date,
                "pet": self.pet, "ct": self.ct, "mask": self.mask, "organs": self.organs,
                "threshold": self.threshold, "transform": self.transform, "row": self.row,
                "rtdose": self.rtdose, "rtplan": self.rtplan, "rtstruct": self.rtstruct, "rtct": self.rtct,
                "rt_prescription_gy": self.rt_prescription_gy, "rt_fractions": self.rt_fractions}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ScanSpec:
        """Rebuild a scan from :meth:`to_json`'s dict.

        Parameters
        ----------
        d : Mapping of str to Any
            The dict :meth:`to_json` wrote.

        Returns
        -------
        ScanSpec
            The scan.
        """
        presc, frac = d.get("rt_prescription_gy"), d.get("rt_fractions")
        return cls(str(d["patient_id"]), Role(d["role"]), str(d["scan_date"]), str(d["pet"]), d.get("ct"),
                   d.get("mask"), d.get("organs"), d.get("threshold"), d.get("transform"),
                   int(d.get("row", 0)), d.get("rtdose"), d.get("rtplan"), d.get("rtstruct"), d.get("rtct"),
                   None if presc is None else float(presc), None if frac is None else int(frac))


@dataclass(frozen=True, slots=True)
class PatientScans:
    """The scans of one patient: the baseline, the failure scans and the follow-up scans, each by date."""

    patient_id: str
    baseline: ScanSpec
    failures: tuple[ScanSpec, ...] = ()
    followups: tuple[ScanSpec, ...] = ()

    @property
    def later(self) -> tuple[ScanSpec, ...]:
        """The follow-up and failure scans together, by date (then manifest row).

        Returns
        -------
        tuple of ScanSpec
            Every scan after the baseline.
        """
        return tuple(sorted((*self.failures, *self.followups), key=lambda s: (s.scan_date, s.row)))

    @property
    def scans(self) -> tuple[ScanSpec, ...]:
        """The baseline scan followed by the failure scans, then the follow-up scans.

        Returns
        -------
        tuple of ScanSpec
            Every scan of the patient, baseline first.
        """
        return (self.baseline, *self.failures, *self.followups)


@dataclass(frozen=True, slots=True, eq=False)
class Manifest:
    """An imaging manifest as read, with its patients table and every finding.

    Use :func:`read_manifest` (never raises on bad content) or :func:`load_manifest` (raises on errors).
    The patients table is held as text cells, exactly as written; :attr:`clinical` returns a copy.
    """

    path: Path
    patients_path: Path
    scans: tuple[ScanSpec, ...]
    findings: tuple[Finding, ...]
    default_threshold: str | None
    _clinical: pd.DataFrame | None = field(repr=False, default=None)
    _clinical_headers: tuple[str, ...] = ()

    @property
    def report(self) -> ValidationReport:
        """Every finding, errors first.

        Returns
        -------
        ValidationReport
            The findings of the manifest and its patients table.
        """
        return ValidationReport.of(str(self.path), self.findings)

    @property
    def ok(self) -> bool:
        """Whether the manifest has no error.

        Returns
        -------
        bool
            True when :attr:`report` holds no error (warnings allowed).
        """
        return self.report.ok

    @property
    def clinical(self) -> pd.DataFrame:
        """The patients table as text cells (blank = ``""``), indexed by its spreadsheet row (a copy).

        Returns
        -------
        pandas.DataFrame
            The table; only a ``patient_id`` column, without rows, when it could not be read.
        """
        if self._clinical is None:
            return pd.DataFrame(columns=["patient_id"])
        return self._clinical.copy()

    def patients(self) -> tuple[PatientScans, ...]:
        """Return the patients with their scans, in order of first appearance in the manifest.

        Returns
        -------
        tuple of PatientScans
            One entry per patient, failure scans ordered by date.

        Raises
        ------
        ManifestError
            When the manifest has errors (the grouping is only defined on a valid manifest).
        """
        if not self.ok:
            raise ManifestError(self.report)
        order: dict[str, list[ScanSpec]] = {}
        for s in self.scans:
            order.setdefault(s.patient_id, []).append(s)
        out = []
        for pid, scans in order.items():
            base = next(s for s in scans if s.role is Role.BASELINE)
            fails = sorted((s for s in scans if s.role is Role.FAILURE), key=lambda s: (s.scan_date, s.row))
            follow = sorted((s for s in scans if s.role is Role.FOLLOWUP), key=lambda s: (s.scan_date, s.row))
            out.append(PatientScans(pid, base, tuple(fails), tuple(follow)))
        return tuple(out)

    def sha256(self) -> str:
        """Return the SHA-256 of the manifest file's bytes.

        Returns
        -------
        str
            The hex digest.
        """
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------ helpers
def canonical_threshold(text: str | float) -> str:
    """Return the canonical text of a threshold rule.

    Named rules keep their name (``suv4``, ``suv2.5``, ``41pct``, ``percist``; aliases such as ``41%`` map to
    them); a number becomes a float with a decimal point (``3`` -> ``3.0``), which the segmentation reads back
    as a fixed SUV threshold (a bare ``41`` would be an alias of ``41pct``).

    Parameters
    ----------
    text : str or float
        The rule as written (a name, an alias or a number).

    Returns
    -------
    str
        The canonical rule.

    Raises
    ------
    ImagingError
        When the rule is unknown.
    """
    from pofa.imaging.segment import ThresholdMethod, parse_threshold

    method, fixed = parse_threshold(text)
    if method is ThresholdMethod.FIXED:
        return repr(float(fixed))
    return method.value


def threshold_argument(text: str) -> str | float:
    """Return what :func:`pofa.imaging.extract.extract` gets for a canonical threshold.

    Parameters
    ----------
    text : str
        A canonical rule (see :func:`canonical_threshold`).

    Returns
    -------
    str or float
        A float for a fixed SUV threshold, else the rule's name.
    """
    from pofa.imaging.segment import ThresholdMethod, parse_threshold

    method, fixed = parse_threshold(text)
    return float(fixed) if method is ThresholdMethod.FIXED else method.value


def _decode(raw: bytes, source: str, findings: list[Finding]) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    findings.append(_finding(ManifestCode.ENCODING, source, None, None,
                             "the manifest is not UTF-8; it was read as Windows-1252 (check accented paths)",
                             "save the manifest as 'CSV UTF-8'"))
    return text


def _read_rows(path: Path, findings: list[Finding]) -> tuple[list[str], list[tuple[int, list[str]]]] | None:
    """Header (normalised) and data rows with their spreadsheet row numbers; None when unreadable."""
    source = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        findings.append(_finding(ManifestCode.UNREADABLE_FILE, source, None, None,
                                 f"cannot read the manifest: {exc.strerror or exc}",
                                 "check the path and that you may read the file"))
        return None
    if b"\x00" in raw and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        findings.append(_finding(ManifestCode.UNREADABLE_FILE, source, None, None,
                                 "the file holds binary data, not CSV text",
                                 "save the manifest as CSV (comma-separated, UTF-8)"))
        return None
    text = raw.decode("utf-16") if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else \
        _decode(raw, source, findings)
    lines = text.lstrip("\r\n").splitlines()
    if not lines or not lines[0].strip():
        findings.append(_finding(ManifestCode.EMPTY_FILE, source, None, None, "the manifest is empty",
                                 "row 1 must hold the column names, each row below one scan"))
        return None
    best, score = ",", (-1, -1)
    for delim in (",", ";", "\t"):
        cells = next(csv.reader([lines[0]], delimiter=delim), [])
        s = (sum(normalise_header(c) in MANIFEST_COLUMNS for c in cells), len(cells))
        if s > score:
            best, score = delim, s
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=best))
    # Rows are numbered as records (a quoted cell may span lines); blank rows keep their number.
    header = [normalise_header(c) for c in rows[0]]
    body = [(i + 2, [c.strip() for c in r]) for i, r in enumerate(rows[1:])]
    return header, [(n, r) for n, r in body if any(r)]


def _parse_date(text: str) -> str | None:
    """``YYYY-MM-DD`` (a time part is dropped) in 1900-2099, as ISO text; None when not such a date."""
    try:
        d = dt.date.fromisoformat(text[:10])
    except ValueError:
        return None
    if len(text) > 10 and text[10] not in " T":
        return None
    return d.isoformat() if MIN_YEAR <= d.year <= MAX_YEAR else None


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:
        return False


def _regular_or_folder(p: Path) -> bool:
    try:
        return p.is_file() or p.is_dir()
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------ reading
def read_manifest(path: str | Path, patients: str | Path | None = None,
                  threshold: str | float | None = None) -> Manifest:
    """Read and check an imaging manifest and its patients table. Never raises on bad content.

    Parameters
    ----------
    path : str or pathlib.Path
        The manifest CSV.
    patients : str or pathlib.Path, optional
        The patients table (study format, CSV). Default: ``patients.csv`` beside the manifest.
    threshold : str or float, optional
        Segmentation rule for rows with neither a mask nor a threshold of their own.

    Returns
    -------
    Manifest
        With every finding (:attr:`Manifest.report`). Files are only read.
    """
    mpath = Path(path).absolute()
    ppath = Path(patients).absolute() if patients is not None else mpath.parent / PATIENTS_FILE
    findings: list[Finding] = []
    source = mpath.name
    default: str | None = None
    if threshold is not None and str(threshold).strip():
        from pofa.errors import ImagingError

        try:
            default = canonical_threshold(threshold)
        except ImagingError as exc:
            findings.append(_finding(ManifestCode.BAD_THRESHOLD, "default threshold", None, None, str(exc),
                                     "use suv4, suv2.5, 41pct, percist or a positive number"))
    clinical, headers = _read_patients(ppath, findings)
    scans: list[ScanSpec] = []
    broken: set[str] = set()
    read = _read_rows(mpath, findings) if mpath.is_file() else None
    if read is None and not mpath.is_file():
        findings.append(_finding(ManifestCode.UNREADABLE_FILE, source, None, None,
                                 f"the manifest {mpath} does not exist or is not a file",
                                 "give the path of the imaging manifest (a CSV file)"))
    if read is not None:
        header, rows = read
        scans, broken = _check_rows(mpath, header, rows, default, findings)
    if read is not None and not read[1]:
        findings.append(_finding(ManifestCode.EMPTY_FILE, source, None, None, "the manifest lists no scan",
                                 "add one row per scan below the header"))
    _check_patients(mpath, ppath, scans, broken, clinical, findings)
    return Manifest(mpath, ppath, tuple(scans), tuple(findings), default, clinical, headers)


def load_manifest(path: str | Path, patients: str | Path | None = None,
                  threshold: str | float | None = None) -> Manifest:
    """Read a manifest like :func:`read_manifest`, raising when it has an error.

    Parameters
    ----------
    path : str or pathlib.Path
        The manifest CSV.
    patients : str or pathlib.Path, optional
        The patients table (study format, CSV). Default: ``patients.csv`` beside the manifest.
    threshold : str or float, optional
        Segmentation rule for rows with neither a mask nor a threshold of their own.

    Returns
    -------
    Manifest
        The manifest, without errors.

    Raises
    ------
    ManifestError
        With every finding, when there is an error.
    """
    m = read_manifest(path, patients, threshold)
    if not m.ok:
        raise ManifestError(m.report)
    return m


def _read_patients(ppath: Path, findings: list[Finding]) -> tuple[pd.DataFrame | None, tuple[str, ...]]:
    if not ppath.is_file():
        findings.append(_finding(
            ManifestCode.MISSING_TABLE, ppath.name, None, None,
            f"the patients table {ppath} is missing",
            "put patients.csv (study format: patient_id, index_date, last_followup_date, progression_date, "
            "death_date) beside the manifest, or give its path"))
        return None, ()
    raw_findings: list[Finding] = []
    raw = read_csv_table(ppath, TableName.PATIENTS, raw_findings)
    findings.extend(raw_findings)
    if raw is None:
        return None, ()
    _, check = validate_tables({TableName.PATIENTS: raw})
    findings.extend(check)
    return raw.frame.copy(), tuple(raw.headers)


def _check_rows(mpath: Path, header: list[str], rows: list[tuple[int, list[str]]], default: str | None,
                findings: list[Finding]) -> tuple[list[ScanSpec], set[str]]:
    """The valid rows as scans, and the patients with a row that has an error."""
    from pofa.errors import ImagingError

    source = mpath.name
    base = mpath.parent
    col: dict[str, int] = {}
    for pos, name in enumerate(header):
        if not name:
            continue
        if name in col:
            findings.append(_finding(ManifestCode.DUPLICATE_COLUMN, source, 1, name,
                                     f"the header {name!r} appears twice; only the first column is read",
                                     "keep one of the two columns"))
            continue
        col[name] = pos
        if name not in MANIFEST_COLUMNS:
            findings.append(_finding(ManifestCode.UNKNOWN_COLUMN, source, 1, name,
                                     f"pofa does not use a column {name!r}; it is ignored",
                                     f"the manifest columns are {', '.join(MANIFEST_COLUMNS)}"))
    missing = [c for c, (req, _) in MANIFEST_COLUMNS.items() if req and c not in col]
    for c in missing:
        findings.append(_finding(ManifestCode.MISSING_COLUMN, source, 1, c, f"the column {c!r} is missing",
                                 f"add a column headed {c!r}: {MANIFEST_COLUMNS[c][1]}"))
    if missing:
        return [], set()

    def cell(r: list[str], name: str) -> str:
        pos = col.get(name)
        return r[pos] if pos is not None and pos < len(r) else ""

    scans: list[ScanSpec] = []
    broken: set[str] = set()
    for row, r in rows:
        if len(r) > len(header) and any(c for c in r[len(header):]):
            findings.append(_finding(ManifestCode.EXTRA_CELLS, source, row, None,
                                     f"the row has {len(r)} cells but the header has {len(header)}",
                                     "put a path holding a comma in double quotes, or remove extra cells"))
            broken.add(cell(r, "patient_id"))
            continue
        ok = True
        for c in ("patient_id", "role", "scan_date", "pet"):
            if not cell(r, c):
                findings.append(_finding(ManifestCode.BLANK_CELL, source, row, c, f"{c} is blank",
                                         f"fill in {c}: {MANIFEST_COLUMNS[c][1]}"))
                ok = False
        role_text = cell(r, "role").lower()
        role = None
        if role_text:
            try:
                role = Role(role_text)
            except ValueError:
                findings.append(_finding(ManifestCode.BAD_ROLE, source, row, "role",
                                         f"role {cell(r, 'role')!r} is not baseline, followup or failure",
                                         "write baseline (pretreatment scan), followup (a response "
                                         "assessment) or failure (a scan at failure)"))
                ok = False
        date = None
        if cell(r, "scan_date"):
            date = _parse_date(cell(r, "scan_date"))
            if date is None:
                findings.append(_finding(ManifestCode.BAD_DATE, source, row, "scan_date",
                                         f"scan_date {cell(r, 'scan_date')!r} is not a date YYYY-MM-DD",
                                         "write the date as YYYY-MM-DD, e.g. 2019-03-14"))
                ok = False
        paths: dict[str, str | None] = {}
        for c in PATH_COLUMNS:
            text = cell(r, c)
            if not text:
                paths[c] = None
                continue
            if is_reference(text):
                paths[c] = _reference(text, c, source, row, findings)
                ok = ok and paths[c] is not None
                continue
            p = Path(text).expanduser()
            p = p if p.is_absolute() else base / p
            if not _exists(p):
                findings.append(_finding(ManifestCode.MISSING_IMAGE, source, row, c,
                                         f"{c} {text!r} does not exist (looked for {p})",
                                         "paths are relative to the manifest's folder; correct the path"))
                ok = False
            elif not _regular_or_folder(p):  # a pipe would block the reader, a device never end
                findings.append(_finding(ManifestCode.MISSING_IMAGE, source, row, c,
                                         f"{c} {text!r} is not a regular file or folder (a pipe, device or "
                                         "socket)", "give the image file or DICOM folder itself"))
                ok = False
            paths[c] = str(p)
        thr_text = cell(r, "threshold")
        threshold: str | None = None
        if thr_text:
            try:
                threshold = canonical_threshold(thr_text)
            except ImagingError as exc:
                findings.append(_finding(ManifestCode.BAD_THRESHOLD, source, row, "threshold", str(exc),
                                         "use suv4, suv2.5, 41pct, percist or a positive number"))
                ok = False
        if cell(r, "mask") and thr_text:
            findings.append(_finding(ManifestCode.MASK_AND_THRESHOLD, source, row, "threshold",
                                     "the row gives both a mask and a threshold",
                                     "keep the mask (lesions as drawn) or the threshold, not both"))
            ok = False
        if not cell(r, "mask") and threshold is None:
            threshold = default
            if threshold is None and not thr_text:
                findings.append(_finding(ManifestCode.NO_SEGMENTATION, source, row, "mask",
                                         "the row has no mask and no threshold",
                                         "give a mask, a threshold for the row, or a default threshold for "
                                         "all rows"))
                ok = False
        if threshold == "percist" and not cell(r, "organs"):
            findings.append(_finding(ManifestCode.PERCIST_WITHOUT_ORGANS, source, row, "organs",
                                     "the percist threshold needs the liver, but the row has no organ map",
                                     "give an organ map holding the liver, or another threshold"))
            ok = False
        if role is Role.BASELINE and cell(r, "transform"):
            findings.append(_finding(ManifestCode.TRANSFORM_ON_BASELINE, source, row, "transform",
                                     "a baseline row cannot have a transform",
                                     "move the transform to the follow-up or failure scan it registers, "
                                     "or delete it"))
            ok = False
        if not cell(r, "organs") and role is not None:
            findings.append(_finding(ManifestCode.NO_ORGAN_MAP, source, row, "organs",
                                     "no organ map: this scan's lesions get no site and extranodal value",
                                     "give an organ label map (e.g. TotalSegmentator), or fill in site and "
                                     "extranodal in the study's tables before pofa analyze"))
        rt_values = _check_rt(source, row, role, {c: cell(r, c) for c in RT_COLUMNS}, paths, ok, findings)
        ok = ok and rt_values is not None
        if ok and role is not None and date is not None and rt_values is not None:
            scans.append(ScanSpec(cell(r, "patient_id"), role, date, str(paths["pet"]), paths["ct"],
                                  paths["mask"], paths["organs"], threshold if not cell(r, "mask") else None,
                                  paths["transform"], row, paths["rtdose"], paths["rtplan"],
                                  paths["rtstruct"], paths["rtct"], rt_values[0], rt_values[1]))
        else:
            broken.add(cell(r, "patient_id"))
    return scans, broken


def _reference(text: str, column: str, source: str, row: int, findings: list[Finding]) -> str | None:
    """A ``dicomweb:`` cell in its canonical form, or None (with a finding) when it is refused."""
    from pofa.pacs.errors import PacsConfigError
    from pofa.pacs.reference import SeriesRef

    if column not in REFERENCE_COLUMNS:
        findings.append(_finding(ManifestCode.BAD_REFERENCE, source, row, column,
                                 f"{column} cannot be a dicomweb: reference (only pet and ct can)",
                                 f"give {column} as a local file or folder"))
        return None
    try:
        return str(SeriesRef.parse(text))
    except PacsConfigError as exc:
        findings.append(_finding(ManifestCode.BAD_REFERENCE, source, row, column, str(exc),
                                 "write dicomweb:<DICOMweb root URL>?study=<StudyInstanceUID>&series="
                                 "<SeriesInstanceUID>, as pofa pacs find writes it"))
        return None


def _check_rt(source: str, row: int, role: Role | None, text: Mapping[str, str],
              paths: Mapping[str, str | None], files_ok: bool, findings: list[Finding],
              ) -> tuple[float | None, int | None] | None:
    """Check a row's radiotherapy columns; (prescription, fractions), or None when there is an error.

    The DICOM headers of the plan's files are read (never their pixels) to compare frames of reference:
    the RTDOSE's with the baseline scan's (its CT's, else its PET's), the RTPLAN's, the RTSTRUCT's and the
    planning CT's. They are only compared when every path of the row exists (``files_ok``).
    """
    given = [c for c in RT_COLUMNS if text.get(c)]
    if not given:
        return None, None
    if role is Role.FAILURE or role is Role.FOLLOWUP:
        for c in given:
            findings.append(_finding(ManifestCode.RT_ON_FAILURE, source, row, c,
                                     f"a {role.value} row cannot have {c} (the plan belongs to the baseline "
                                     "row)",
                                     "move the radiotherapy columns to the patient's baseline row"))
        return None
    ok = True
    if not text.get("rtdose"):
        for c in given:
            findings.append(_finding(ManifestCode.RT_WITHOUT_DOSE, source, row, c,
                                     f"{c} is given but rtdose is blank",
                                     "give the plan's RTDOSE in the rtdose column, or delete this cell"))
        return None
    presc: float | None = None
    frac: int | None = None
    if text.get("rt_prescription_gy"):
        try:
            presc = float(text["rt_prescription_gy"])
        except ValueError:
            presc = math.nan
        if not (math.isfinite(presc) and 0 < presc <= 200):
            findings.append(_finding(ManifestCode.BAD_RT_VALUE, source, row, "rt_prescription_gy",
                                     f"rt_prescription_gy {text['rt_prescription_gy']!r} is not a dose in Gy",
                                     "write the prescription in Gy, e.g. 30"))
            ok = False
    if text.get("rt_fractions"):
        try:
            frac_f = float(text["rt_fractions"])
        except ValueError:
            frac_f = math.nan
        if not (math.isfinite(frac_f) and frac_f >= 1 and frac_f == round(frac_f)):
            findings.append(_finding(ManifestCode.BAD_RT_VALUE, source, row, "rt_fractions",
                                     f"rt_fractions {text['rt_fractions']!r} is not a whole number >= 1",
                                     "write the number of fractions, e.g. 10"))
            ok = False
        else:
            frac = int(frac_f)
    if not files_ok:
        return (presc, frac) if ok else None
    from pofa.batch.rt import dicom_header, image_frame_uid

    def header(col: str, modality: str) -> Any:
        p = paths.get(col)
        if p is None:
            return None
        ds = dicom_header(p) if Path(p).is_file() else None
        if ds is None or str(ds.get("Modality", "")).upper() != modality:
            findings.append(_finding(ManifestCode.BAD_RT_FILE, source, row, col,
                                     f"{col} {Path(p).name!r} is not a readable DICOM {modality} file",
                                     f"give the plan's {modality} file (one file, not a folder)"))
            return False
        return ds

    dose = header("rtdose", "RTDOSE")
    plan = header("rtplan", "RTPLAN")
    struct = header("rtstruct", "RTSTRUCT")
    if dose is False or plan is False or struct is False:
        return None
    dose_uid = str(dose.get("FrameOfReferenceUID", "") or "").strip()
    if plan is not None:
        from pofa.rt.dicom import read_rtplan

        info = read_rtplan(str(paths["rtplan"]))
        if info.frame_of_reference_uid and dose_uid and info.frame_of_reference_uid != dose_uid:
            findings.append(_finding(ManifestCode.RT_FRAME, source, row, "rtplan",
                                     f"the RTPLAN is in frame of reference {info.frame_of_reference_uid}, "
                                     f"the RTDOSE in {dose_uid}: the dose does not belong to this plan",
                                     "give the RTDOSE and RTPLAN of the same plan"))
            ok = False
        if presc is None and info.prescription_gy is None:
            findings.append(_finding(ManifestCode.RT_NO_PRESCRIPTION, source, row, "rt_prescription_gy",
                                     f"the RTPLAN {info.source!r} states no TargetPrescriptionDose",
                                     "give the prescription in Gy in rt_prescription_gy"))
            ok = False
    elif presc is None:
        findings.append(_finding(ManifestCode.RT_NO_PRESCRIPTION, source, row, "rt_prescription_gy",
                                 "the rtdose has no prescription: there is no rtplan and rt_prescription_gy "
                                 "is blank", "give the RTPLAN in rtplan, or the prescription in Gy in "
                                             "rt_prescription_gy"))
        ok = False
    if struct is not None:
        from pofa.rt.lesion import _frame_of_reference

        s_uid = _frame_of_reference(struct)
        if s_uid and dose_uid and s_uid != dose_uid:
            findings.append(_finding(ManifestCode.RT_FRAME, source, row, "rtstruct",
                                     f"the RTSTRUCT is in frame of reference {s_uid}, the RTDOSE in "
                                     f"{dose_uid}", "give the RTSTRUCT of the same plan"))
            ok = False
    base_col = "ct" if paths.get("ct") else "pet"
    if is_reference(paths[base_col]):
        # A series on a PACS is only read when the patient is processed: the pipeline compares the frames
        # of reference then (pofa.batch.rt), and the patient fails with the same reason if they differ.
        return (presc, frac) if ok else None
    base_uid = image_frame_uid(str(paths[base_col]))
    if not (dose_uid and dose_uid == base_uid):
        if paths.get("rtct") is not None:
            ct_uid = image_frame_uid(str(paths["rtct"]))
            if ct_uid and dose_uid and ct_uid != dose_uid:
                findings.append(_finding(ManifestCode.RT_FRAME, source, row, "rtct",
                                         f"the planning CT is in frame of reference {ct_uid}, the RTDOSE in "
                                         f"{dose_uid}", "give the CT the plan was made on"))
                ok = False
            if not paths.get("ct"):
                findings.append(_finding(ManifestCode.RT_FRAME, source, row, "ct",
                                         "the planning CT (rtct) is registered to the baseline CT, but the "
                                         "row has no ct", "give the baseline CT in the ct column"))
                ok = False
        else:
            where = (f"the baseline {base_col} is in {base_uid}" if base_uid else
                     f"the baseline {base_col} states none (a DICOM series' FrameOfReferenceUID, or for "
                     "NIfTI the FrameOfReferenceUID of its JSON sidecar)")
            findings.append(_finding(ManifestCode.RT_FRAME, source, row, "rtdose",
                                     f"the RTDOSE is in frame of reference {dose_uid or '(none)'} and "
                                     f"{where}",
                                     "add an rtct column with the planning CT (series folder or NIfTI): pofa "
                                     "registers it to the baseline CT"))
            ok = False
    return (presc, frac) if ok else None


def _check_patients(mpath: Path, ppath: Path, scans: Iterable[ScanSpec], broken: set[str],
                    clinical: pd.DataFrame | None, findings: list[Finding]) -> None:
    """Checks across rows (one baseline per patient, dates in order) and against the patients table.

    Patients with a row that has its own error are not checked for a missing baseline (the row may be it).
    """
    source = mpath.name
    by_patient: dict[str, list[ScanSpec]] = {}
    for s in scans:
        by_patient.setdefault(s.patient_id, []).append(s)
    baseline_date: dict[str, str] = {}
    for pid, ss in by_patient.items():
        bases = [s for s in ss if s.role is Role.BASELINE]
        if not bases and pid not in broken:
            findings.append(_finding(ManifestCode.NO_BASELINE, source, ss[0].row, "role",
                                     f"patient {pid!r} has follow-up or failure scans but no baseline scan",
                                     "add the patient's pretreatment scan with role baseline"))
        for extra in bases[1:]:
            findings.append(_finding(ManifestCode.DUPLICATE_BASELINE, source, extra.row, "role",
                                     f"patient {pid!r} already has a baseline scan (row {bases[0].row})",
                                     "keep one baseline scan per patient (the one before CAR T)"))
        if bases:
            baseline_date[pid] = bases[0].scan_date
        seen: dict[str, int] = {}
        for s in ss:
            if s.role is Role.BASELINE:
                continue
            if s.scan_date in seen:
                findings.append(_finding(ManifestCode.DUPLICATE_SCAN, source, s.row, "scan_date",
                                         f"patient {pid!r} already has a follow-up or failure scan on "
                                         f"{s.scan_date} (row {seen[s.scan_date]})",
                                         "keep one scan per date"))
            else:
                seen[s.scan_date] = s.row
            if pid in baseline_date and s.scan_date < baseline_date[pid]:
                findings.append(_finding(ManifestCode.FAILURE_BEFORE_BASELINE, source, s.row, "scan_date",
                                         f"the {s.role.value} scan of {s.scan_date} is before the baseline "
                                         "scan of "
                                         f"{baseline_date[pid]}", "check both scan dates and roles"))
    if clinical is None or "patient_id" not in clinical.columns:
        return
    ids = clinical["patient_id"].astype(str)
    known = {pid: row for row, pid in zip(clinical.index, ids, strict=True) if pid}
    for pid, ss in by_patient.items():
        if pid not in known:
            findings.append(_finding(ManifestCode.UNKNOWN_PATIENT, source, ss[0].row, "patient_id",
                                     f"patient {pid!r} is not in {ppath.name}",
                                     f"add the patient to {ppath.name} (ids are compared as text, exactly)"))
    for pid, row in known.items():
        if pid not in by_patient and pid not in broken:
            findings.append(_finding(ManifestCode.NOT_IMAGED, ppath.name, int(row), "patient_id",
                                     f"patient {pid!r} has no scan in the manifest; left out of the study",
                                     "add the patient's scans to the manifest, or remove the row"))
    _check_index_dates(source, ppath.name, by_patient, known, clinical, baseline_date, findings)
    if "progression_date" not in clinical.columns:
        return
    prog = {pid: str(clinical.at[row, "progression_date"]) for pid, row in known.items()}
    for pid, ss in by_patient.items():
        if pid not in prog:
            continue
        p = _parse_date(prog[pid]) if prog[pid] else None
        for s in ss:
            if s.role is not Role.FAILURE:
                continue
            if not prog[pid]:
                findings.append(_finding(ManifestCode.FAILURE_WITHOUT_PROGRESSION, source, s.row, "role",
                                         f"patient {pid!r} has a failure scan but no progression_date in "
                                         f"{ppath.name}", f"fill in progression_date in {ppath.name}"))
            elif p is not None and s.scan_date < p:
                findings.append(_finding(ManifestCode.FAILURE_BEFORE_PROGRESSION, source, s.row, "scan_date",
                                         f"the failure scan of {s.scan_date} is before progression_date {p}",
                                         "check the scan date and progression_date (the first failure scan "
                                         "defines progression)"))


def _check_index_dates(source: str, pname: str, by_patient: dict[str, list[ScanSpec]], known: dict[str, Any],
                       clinical: pd.DataFrame, based: Mapping[str, str], findings: list[Finding]) -> None:
    """The baseline on or before index_date (day 0 of the built study), later scans after it (a scan already
    reported before its baseline is not reported again; a bad index_date is the patients table's finding)."""
    for pid, ss in by_patient.items():
        text = clinical.at[known[pid], "index_date"] if pid in known and "index_date" in clinical else ""
        day0 = _parse_date(text) if isinstance(text, str) and text else None
        for s in ss if day0 is not None else ():
            late = s.role is Role.BASELINE and s.scan_date > str(day0)
            early = s.role is not Role.BASELINE and based.get(pid, "") <= s.scan_date <= str(day0)
            if late or early:
                findings.append(_finding(
                    ManifestCode.BASELINE_AFTER_INDEX if late else ManifestCode.FAILURE_BEFORE_INDEX, source,
                    s.row, "scan_date", f"the {s.role.value} scan of {s.scan_date} is "
                    f"{'after' if late else 'on or before'} index_date {day0} in {pname}",
                    "the baseline is on or before index_date (day 0), follow-up and failure scans after it: "
                    "check the scan date, its role and index_date"))
