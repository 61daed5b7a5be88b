"""Imaging-manifest vocabulary: scan roles, columns, finding codes and the manifest error.

Split from :mod:`pofa.batch.manifest` (which re-exports every name here) so that the row checks of
:mod:`pofa.batch.manifest_rt` share the codes without an import cycle.
"""

from __future__ import annotations

import enum

from pofa.errors import PofaError
from pofa.findings import Finding, Severity, ValidationReport

__all__ = [
    "MANIFEST_CODES",
    "MANIFEST_COLUMNS",
    "PATH_COLUMNS",
    "REFERENCE_COLUMNS",
    "RT_COLUMNS",
    "ManifestCode",
    "ManifestError",
    "Role",
    "manifest_finding",
]


class Role(enum.StrEnum):
    """What a scan is for the patient (the value is what the manifest holds)."""

    BASELINE = "baseline"
    FOLLOWUP = "followup"
    FAILURE = "failure"


#: Manifest columns: name -> (required, what it holds). Order is the documented order.
MANIFEST_COLUMNS: dict[str, tuple[bool, str]] = {
    "patient_id": (True, "Patient identifier (text, as in patients.csv)."),
    "role": (True, "baseline (the pretreatment scan, one per patient), followup (a response assessment) or "
                   "failure (a scan at failure)."),
    "scan_date": (True, "Date of the scan, YYYY-MM-DD."),
    "pet": (True, "PET: a NIfTI SUV volume (.nii/.nii.gz, optional JSON sidecar), a DICOM folder or a "
                  "dicomweb: series reference."),
    "ct": (False, "CT of the same PET/CT (NIfTI, DICOM folder or dicomweb: reference): drives registration, "
                  "adds ct_hu_mean."),
    "mask": (False, "Lesion mask (NIfTI label map, DICOM SEG or RTSTRUCT); else the threshold is used."),
    "organs": (False, "Organ label map (NIfTI, TotalSegmentator) or folder of masks: site and extranodal."),
    "threshold": (False, "Segmentation rule for this scan: suv4, suv2.5, 41pct, percist or a number."),
    "transform": (False, "Follow-up and failure rows: ITK transform file (baseline -> follow-up) instead of "
                         "registering."),
    "rtdose": (False, "Baseline row: the bridging-RT plan's RTDOSE (dose and field class of failures)."),
    "rtplan": (False, "Baseline row, with rtdose: the RTPLAN (prescription and fractions)."),
    "rtstruct": (False, "Baseline row, with rtdose: the plan's RTSTRUCT (targets listed in imaging.json)."),
    "rtct": (False, "Baseline row, with rtdose: the planning CT, registered to the baseline CT when the dose "
                    "is in another frame of reference."),
    "rt_prescription_gy": (False, "Baseline row, with rtdose: the prescription (Gy) without an rtplan."),
    "rt_fractions": (False, "Baseline row, with rtdose: the number of fractions when there is no rtplan."),
}

PATH_COLUMNS = ("pet", "ct", "mask", "organs", "transform", "rtdose", "rtplan", "rtstruct", "rtct")
#: The columns that may hold a ``dicomweb:`` series reference (docs/pacs.md) instead of a path.
REFERENCE_COLUMNS = ("pet", "ct")
#: The radiotherapy columns (baseline rows only; every one but rtdose needs rtdose).
RT_COLUMNS = ("rtdose", "rtplan", "rtstruct", "rtct", "rt_prescription_gy", "rt_fractions")


class ManifestCode(enum.StrEnum):
    """Stable codes of manifest findings (shared codes equal those of :class:`pofa.findings.FindingCode`)."""

    UNREADABLE_FILE = "unreadable-file"
    EMPTY_FILE = "empty-file"
    ENCODING = "encoding"
    DUPLICATE_COLUMN = "duplicate-column"
    EXTRA_CELLS = "extra-cells"
    UNKNOWN_COLUMN = "unknown-column"
    MISSING_COLUMN = "missing-column"
    MISSING_TABLE = "missing-table"
    BLANK_CELL = "blank-cell"
    BAD_DATE = "bad-date"
    BAD_ROLE = "bad-role"
    BAD_THRESHOLD = "bad-threshold"
    MISSING_IMAGE = "missing-image"
    MASK_AND_THRESHOLD = "mask-and-threshold"
    NO_SEGMENTATION = "no-segmentation"
    PERCIST_WITHOUT_ORGANS = "percist-without-organs"
    TRANSFORM_ON_BASELINE = "transform-on-baseline"
    NO_ORGAN_MAP = "no-organ-map"
    NO_BASELINE = "no-baseline"
    DUPLICATE_BASELINE = "duplicate-baseline"
    DUPLICATE_SCAN = "duplicate-scan"
    FAILURE_BEFORE_BASELINE = "failure-before-baseline"
    BASELINE_AFTER_INDEX = "baseline-after-index"
    FAILURE_BEFORE_INDEX = "failure-before-index"
    UNKNOWN_PATIENT = "unknown-patient"
    NOT_IMAGED = "not-imaged"
    FAILURE_WITHOUT_PROGRESSION = "failure-without-progression"
    FAILURE_BEFORE_PROGRESSION = "failure-before-progression"
    RT_ON_FAILURE = "rt-on-failure"
    RT_WITHOUT_DOSE = "rt-without-dose"
    BAD_RT_VALUE = "bad-rt-value"
    BAD_RT_FILE = "bad-rt-file"
    RT_NO_PRESCRIPTION = "rt-no-prescription"
    RT_FRAME = "rt-frame"
    BAD_REFERENCE = "bad-reference"


_E, _W = Severity.ERROR, Severity.WARNING

#: Every manifest code with its fixed severity and meaning (the table of docs/batch.md).
MANIFEST_CODES: dict[ManifestCode, tuple[Severity, str]] = {
    ManifestCode.UNREADABLE_FILE: (_E, "The manifest or patients table cannot be read."),
    ManifestCode.EMPTY_FILE: (_E, "The manifest holds no header row or no scan."),
    ManifestCode.ENCODING: (_W, "The manifest is not UTF-8; it was read as Windows-1252."),
    ManifestCode.DUPLICATE_COLUMN: (_E, "Two manifest columns have the same header."),
    ManifestCode.EXTRA_CELLS: (_E, "A manifest row has more cells than the header."),
    ManifestCode.UNKNOWN_COLUMN: (_W, "A manifest column pofa does not use (misspelt?); it is ignored."),
    ManifestCode.MISSING_COLUMN: (_E, "A required manifest column is missing."),
    ManifestCode.MISSING_TABLE: (_E, "The patients table (patients.csv beside the manifest) is missing."),
    ManifestCode.BLANK_CELL: (_E, "A required manifest cell is blank."),
    ManifestCode.BAD_DATE: (_E, "scan_date is not a date YYYY-MM-DD between 1900 and 2099."),
    ManifestCode.BAD_ROLE: (_E, "role is not baseline, followup or failure."),
    ManifestCode.BAD_THRESHOLD: (_E, "threshold is not suv4, suv2.5, 41pct, percist or a positive number."),
    ManifestCode.MISSING_IMAGE: (_E, "A path (pet, ct, mask, organs, transform, rtdose, rtplan, rtstruct, "
                                     "rtct) names no file or folder."),
    ManifestCode.MASK_AND_THRESHOLD: (_E, "A row gives both a mask and a threshold."),
    ManifestCode.NO_SEGMENTATION: (_E, "A row has no mask and no threshold, and no default threshold."),
    ManifestCode.PERCIST_WITHOUT_ORGANS: (_E, "The percist threshold needs an organ map with the liver."),
    ManifestCode.TRANSFORM_ON_BASELINE: (_E, "A baseline row gives a transform (follow-up and failure rows "
                                             "only)."),
    ManifestCode.NO_ORGAN_MAP: (
        _W, "No organ map: site and extranodal stay blank, and pofa analyze needs them filled in."),
    ManifestCode.NO_BASELINE: (_E, "A patient has follow-up or failure scans but no baseline scan."),
    ManifestCode.DUPLICATE_BASELINE: (_E, "A patient has more than one baseline scan."),
    ManifestCode.DUPLICATE_SCAN: (_E, "A patient has two follow-up or failure scans on the same date."),
    ManifestCode.FAILURE_BEFORE_BASELINE: (_E, "A follow-up or failure scan is dated before the patient's "
                                               "baseline scan."),
    ManifestCode.BASELINE_AFTER_INDEX: (_E, "A baseline scan is dated after the patient's index_date "
                                            "(day 0)."),
    ManifestCode.FAILURE_BEFORE_INDEX: (_E, "A follow-up or failure scan is dated on or before the patient's "
                                            "index_date (day 0)."),
    ManifestCode.UNKNOWN_PATIENT: (_E, "A manifest patient is not in the patients table."),
    ManifestCode.NOT_IMAGED: (_W, "A patients-table patient has no scan in the manifest; left out."),
    ManifestCode.FAILURE_WITHOUT_PROGRESSION: (_E, "A failure scan's patient has no progression_date."),
    ManifestCode.FAILURE_BEFORE_PROGRESSION: (_E, "A failure scan is dated before progression_date."),
    ManifestCode.RT_ON_FAILURE: (_E, "A follow-up or failure row gives a radiotherapy column (baseline rows "
                                     "only)."),
    ManifestCode.RT_WITHOUT_DOSE: (_E, "A row gives rtplan, rtstruct, rtct or a prescription but no rtdose."),
    ManifestCode.BAD_RT_VALUE: (_E, "rt_prescription_gy is not a positive dose or rt_fractions not a whole "
                                    "number of at least 1."),
    ManifestCode.BAD_RT_FILE: (_E, "rtdose, rtplan or rtstruct is not a readable DICOM file of that kind."),
    ManifestCode.RT_NO_PRESCRIPTION: (_E, "An rtdose with neither an rtplan stating the prescription nor "
                                          "rt_prescription_gy."),
    ManifestCode.RT_FRAME: (_E, "The RTDOSE is in another frame of reference than the baseline scan (and no "
                                "rtct), its RTPLAN, RTSTRUCT or planning CT."),
    ManifestCode.BAD_REFERENCE: (_E, "A dicomweb: series reference is malformed or not in the pet or ct "
                                     "column (docs/pacs.md)."),
}


def manifest_finding(code: ManifestCode, file: str, row: int | None, column: str | None, message: str,
                     hint: str) -> Finding:
    """Build a manifest finding with the code's fixed severity.

    Parameters
    ----------
    code : ManifestCode
        The finding's code (its severity comes from :data:`MANIFEST_CODES`).
    file : str
        The file the finding is about.
    row : int or None
        Its row (header = row 1), if any.
    column : str or None
        Its column, if any.
    message : str
        What is wrong.
    hint : str
        What to do about it.

    Returns
    -------
    Finding
        The finding.
    """
    return Finding(MANIFEST_CODES[code][0], code, file, row, column, message, hint)


class ManifestError(PofaError):
    """The manifest (or its patients table) has errors; ``report`` lists every finding.

    Parameters
    ----------
    report : ValidationReport
        Every finding of the manifest and its patients table (at least one error).
    """

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        n = len(report.errors)
        first = report.errors[0] if report.errors else None
        where = f" e.g. {first.location()}: {first.message}" if first is not None else ""
        super().__init__(f"the imaging manifest {report.study} has {n} error(s);{where}. Fix them (every "
                         "finding is listed with its file, row and column) and run the command again")

