"""Validation findings: what is wrong, where (file, row, column), and what to do.

Every finding carries a stable code from :class:`FindingCode`. The registry :data:`FINDING_CODES` gives each
code its fixed severity and one line of meaning; docs/study-format.md lists the same table and a test keeps
the two in step.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


class Severity(enum.Enum):
    """How serious a finding is. Errors stop an analysis; warnings do not (unless ``--strict``)."""

    ERROR = "error"
    WARNING = "warning"


class FindingCode(enum.StrEnum):
    """The stable, machine-readable codes of findings (the values are what users and ``--json`` see)."""

    # Finding the tables
    NOT_A_STUDY = "not-a-study"
    MISSING_TABLE = "missing-table"
    AMBIGUOUS_TABLE = "ambiguous-table"
    UNSUPPORTED_FORMAT = "unsupported-format"
    # Reading one file or sheet
    UNREADABLE_FILE = "unreadable-file"
    EMPTY_FILE = "empty-file"
    NO_HEADER = "no-header"
    ENCODING = "encoding"
    DUPLICATE_COLUMN = "duplicate-column"
    UNNAMED_COLUMN = "unnamed-column"
    EXTRA_CELLS = "extra-cells"
    NUMERIC_ID = "numeric-id"
    # Columns and cells
    MISSING_COLUMN = "missing-column"
    BLANK_CELL = "blank-cell"
    BAD_DATE = "bad-date"
    BAD_NUMBER = "bad-number"
    BAD_BOOLEAN = "bad-boolean"
    NON_POSITIVE = "non-positive"
    IMPLAUSIBLE = "implausible"
    PARTIAL_COORDINATES = "partial-coordinates"
    BAD_RADIOTHERAPY = "bad-radiotherapy"
    DECIMAL_COMMA = "decimal-comma"
    UNKNOWN_COLUMN = "unknown-column"
    ODD_CELL = "odd-cell"
    BAD_CATEGORY = "bad-category"
    # Identifiers and links between tables
    DUPLICATE_ID = "duplicate-id"
    UNKNOWN_PATIENT = "unknown-patient"
    UNKNOWN_LESION = "unknown-lesion"
    NO_LESIONS = "no-lesions"
    # Dates of a patient
    BEFORE_INDEX = "before-index"
    PROGRESSION_AFTER_DEATH = "progression-after-death"
    PROGRESSION_AFTER_FOLLOWUP = "progression-after-followup"
    FOLLOWUP_AFTER_DEATH = "followup-after-death"
    DEATH_AFTER_FOLLOWUP = "death-after-followup"
    # Failure rows against the patient's dates
    FAILURE_WITHOUT_PROGRESSION = "failure-without-progression"
    FAILURE_BEFORE_PROGRESSION = "failure-before-progression"
    FAILURE_AFTER_FOLLOWUP = "failure-after-followup"
    PROGRESSION_WITHOUT_FAILURES = "progression-without-failures"
    # Response tables (measurements, scans: docs/response.md)
    BAD_DEAUVILLE = "bad-deauville"
    BAD_DIAMETERS = "bad-diameters"
    NO_BASELINE_SCAN = "no-baseline-scan"
    SEVERAL_BASELINE_SCANS = "several-baseline-scans"
    TARGET_LESIONS = "target-lesions"
    NOT_AT_BASELINE = "not-at-baseline"
    SCAN_AFTER_FOLLOWUP = "scan-after-followup"
    UNKNOWN_SCAN = "unknown-scan"
    # study.toml
    BAD_SETTING = "bad-setting"
    # Privacy
    IDENTIFYING_COLUMN = "identifying-column"


_E, _W = Severity.ERROR, Severity.WARNING

#: Every code with its fixed severity and meaning (the table of docs/study-format.md).
FINDING_CODES: dict[FindingCode, tuple[Severity, str]] = {
    FindingCode.NOT_A_STUDY: (_E, "The path is neither a study folder nor an Excel workbook."),
    FindingCode.MISSING_TABLE: (_E, "A required table (patients, lesions) has no file or sheet."),
    FindingCode.AMBIGUOUS_TABLE: (
        _E, "A table is given twice (CSV and Parquet, two sheets, or several workbooks)."),
    FindingCode.UNSUPPORTED_FORMAT: (_E, "A file pofa cannot read (.xls, .ods): save it as .xlsx or CSV."),
    FindingCode.UNREADABLE_FILE: (
        _E, "A file or sheet cannot be read (damaged, binary, not the format its name says)."),
    FindingCode.EMPTY_FILE: (_E, "A file or sheet holds nothing, not even a header row."),
    FindingCode.NO_HEADER: (_E, "Row 1 is blank although rows below hold data: the header must be row 1."),
    FindingCode.ENCODING: (_W, "A CSV file is not UTF-8; it was read as Windows-1252 (Latin-1)."),
    FindingCode.DUPLICATE_COLUMN: (
        _E, "Two columns have the same header (after case and blanks are ignored)."),
    FindingCode.UNNAMED_COLUMN: (_W, "A column holds values but has no header; it is ignored."),
    FindingCode.EXTRA_CELLS: (
        _E, "A row has more cells than the header (often an unquoted comma in a cell)."),
    FindingCode.NUMERIC_ID: (_W, "An identifier is stored as a decimal number ('1.10' reads as '1.1')."),
    FindingCode.MISSING_COLUMN: (
        _E, "A required column is missing (or site/extranodal when failures has new lesions)."),
    FindingCode.BLANK_CELL: (_E, "A cell that must be filled in is blank."),
    FindingCode.BAD_DATE: (_E, "A date cell is not a date YYYY-MM-DD between 1900 and 2099."),
    FindingCode.BAD_NUMBER: (_E, "A number cell is not a finite number with a decimal point."),
    FindingCode.BAD_BOOLEAN: (_E, "A yes/no cell is not yes/no, true/false, y/n or 1/0."),
    FindingCode.NON_POSITIVE: (_E, "A size, SUV, volume or TLG is zero or negative."),
    FindingCode.IMPLAUSIBLE: (_W, "SUVmax > 100, diameter > 40 cm, RT dose > 80 Gy or > 50 fractions, or "
                                  "follow-up > 20 years."),
    FindingCode.PARTIAL_COORDINATES: (_E, "A lesion centre has some of x_mm, y_mm, z_mm but not all three."),
    FindingCode.BAD_RADIOTHERAPY: (
        _E, "rt_field is not in-field/marginal/out-of-field, or rt_dose_gy/rt_fractions incomplete."),
    FindingCode.DECIMAL_COMMA: (
        _E, "A file writes numbers with a decimal comma (one finding per file, at its first such cell)."),
    FindingCode.UNKNOWN_COLUMN: (
        _W, "Columns that are neither the format's nor declared covariates (listed once per file)."),
    FindingCode.ODD_CELL: (
        _W, "A cell of an undeclared column that is mostly of one type (80% or more) but not this cell."),
    FindingCode.BAD_CATEGORY: (_E, "A cell of a declared category covariate is not one of its levels."),
    FindingCode.DUPLICATE_ID: (
        _E, "A patient, lesion (within its patient) or failure id repeats an earlier row."),
    FindingCode.UNKNOWN_PATIENT: (_E, "A lesion or failure row names a patient that is not in patients."),
    FindingCode.UNKNOWN_LESION: (_E, "baseline_lesion_id names no lesion of that patient."),
    FindingCode.NO_LESIONS: (_W, "A patient has no lesions (counts only in survival analyses)."),
    FindingCode.BEFORE_INDEX: (_E, "A patient date (follow-up, progression, death) is before index_date."),
    FindingCode.PROGRESSION_AFTER_DEATH: (_E, "progression_date is after death_date."),
    FindingCode.PROGRESSION_AFTER_FOLLOWUP: (_E, "progression_date is after last_followup_date."),
    FindingCode.FOLLOWUP_AFTER_DEATH: (_E, "last_followup_date is after death_date."),
    FindingCode.DEATH_AFTER_FOLLOWUP: (
        _W, "death_date is after last_followup_date (follow-up ends at death)."),
    FindingCode.FAILURE_WITHOUT_PROGRESSION: (
        _E, "A failure row belongs to a patient with a blank progression_date."),
    FindingCode.FAILURE_BEFORE_PROGRESSION: (
        _E, "A failure scan_date is before the patient's progression_date."),
    FindingCode.FAILURE_AFTER_FOLLOWUP: (
        _W, "A failure scan_date is after the patient's last_followup_date."),
    FindingCode.PROGRESSION_WITHOUT_FAILURES: (
        _W, "A patient progressed but the failures table has no row for the patient."),
    FindingCode.BAD_DEAUVILLE: (_E, "A deauville cell is not a Deauville score 1-5 or X."),
    FindingCode.BAD_DIAMETERS: (_E, "A measurement's sdi_mm is larger than its ldi_mm."),
    FindingCode.NO_BASELINE_SCAN: (_E, "A patient's first measured scan is after index_date (no baseline)."),
    FindingCode.SEVERAL_BASELINE_SCANS: (
        _E, "A patient has measurements from more than one scan on or before index_date."),
    FindingCode.TARGET_LESIONS: (
        _E, "A patient's baseline has no target lesion, more than six, or a blank target cell."),
    FindingCode.NOT_AT_BASELINE: (_E, "A lesion is measured at a follow-up scan but not at the baseline."),
    FindingCode.SCAN_AFTER_FOLLOWUP: (_W, "A measured scan is after the patient's last_followup_date."),
    FindingCode.UNKNOWN_SCAN: (
        _W, "A scans row has no measurements of its patient on that date (it is not used)."),
    FindingCode.BAD_SETTING: (
        _E, "study.toml is not valid TOML, has an unknown or ill-typed setting, or a risk factor that names "
        "no usable column."),
    FindingCode.IDENTIFYING_COLUMN: (
        _W, "An extra column looks identifying (name, MRN, birth date, address, phone, e-mail, free text): "
        "it is read but never written to the outputs."),
}


def severity_of(code: FindingCode) -> Severity:
    """The fixed severity of a finding code.

    Parameters
    ----------
    code : FindingCode
        The finding code.

    Returns
    -------
    Severity
        The fixed severity of a finding code.
    """
    return FINDING_CODES[code][0]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a study.

    Attributes
    ----------
    severity : Severity
        Error or warning (fixed per code, see :data:`FINDING_CODES`).
    code : str
        A stable machine-readable code, a :class:`FindingCode` (which compares equal to its string value,
        e.g. ``"bad-date"``).
    file : str
        The file, or ``workbook.xlsx[sheet]`` for an Excel sheet, or the study folder for a missing table.
    row : int or None
        The row as a spreadsheet user counts it: the header is row 1, the first data row is row 2.
        ``None`` when the finding concerns a whole file or column.
    column : str or None
        The column concerned (its name in the format, lower case), ``None`` for a whole row or file.
    message : str
        What is wrong.
    hint : str
        What to do about it.
    more : int
        For a summary finding (row ``None``): how many further findings of the same code, file and column it
        stands for, beyond the :data:`MAX_PER_KIND` listed one by one. 0 for an ordinary finding.
    """

    severity: Severity
    code: str
    file: str
    row: int | None
    column: str | None
    message: str
    hint: str
    more: int = 0

    def location(self) -> str:
        """``file, row N, column C`` as far as known.

        Returns
        -------
        str
            ``file, row N, column C`` as far as known.
        """
        parts = [self.file]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, object]:
        """The finding as plain JSON types.

        Returns
        -------
        dict of {str: object}
            The finding as plain JSON types.
        """
        return {
            "severity": self.severity.value,
            "code": str(self.code),
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "message": self.message,
            "hint": self.hint,
            "more": self.more,
        }


def finding(code: FindingCode, file: str, row: int | None, column: str | None, message: str,
            hint: str) -> Finding:
    """Make a finding whose severity is the registered severity of ``code``.

    Parameters
    ----------
    code : FindingCode
        What is wrong.
    file : str
        File (or ``workbook[sheet]``) concerned.
    row : int or None
        Spreadsheet row (1 = header), or ``None``.
    column : str or None
        Column name, or ``None``.
    message : str
        What is wrong, in words.
    hint : str
        How to fix it.

    Returns
    -------
    Finding
        The finding.
    """
    return Finding(severity_of(code), code, file, row, column, message, hint)


#: At most this many findings of one kind (code, file and column) are kept one by one; the rest of the kind
#: is summed up in one summary finding (:attr:`Finding.more`). A million junk cells give 20 findings and one
#: count, not a million lines.
MAX_PER_KIND = 20

_Kind = tuple[str, str, str | None]


def _kind(f: Finding) -> _Kind:
    return (str(f.code), f.file, f.column)


def more_finding(first: Finding, more: int, first_row: int | None, last_row: int | None) -> Finding:
    """The summary finding of ``more`` further findings like ``first`` (same code, file and column).

    Parameters
    ----------
    first : Finding
        One finding of the kind (its severity, code, file, column and hint are reused).
    more : int
        How many findings of the kind were not kept one by one.
    first_row, last_row : int or None
        The first and last row of those findings, when they concern rows.

    Returns
    -------
    Finding
        A finding with row ``None`` and :attr:`Finding.more` set.
    """
    where = f" in column {first.column}" if first.column else ""
    rows = ""
    if first_row is not None and last_row is not None:
        rows = f" (rows {first_row}-{last_row})" if last_row != first_row else f" (row {first_row})"
    message = (f"{more:,} more finding(s) of this kind ({first.code}){where}{rows}, beyond the "
               f"{MAX_PER_KIND} listed")
    return Finding(first.severity, first.code, first.file, None, first.column, message,
                   "fix the cells listed; the others are most likely the same mistake", more)


def cap_findings(findings: Iterable[Finding], limit: int = MAX_PER_KIND) -> list[Finding]:
    """Keep at most ``limit`` findings of each kind (code, file, column); sum up the rest in one finding each.

    Findings that already summarise others (:attr:`Finding.more`) are merged into the new summary.

    Parameters
    ----------
    findings : iterable of Finding
        The findings, in the order they were made.
    limit : int
        Findings kept one by one per kind.

    Returns
    -------
    list of Finding
        The kept findings followed by one summary finding per kind that had more.
    """
    kept: list[Finding] = []
    count: Counter[_Kind] = Counter()
    extra: dict[_Kind, list[Finding]] = {}
    for f in findings:
        k = _kind(f)
        if f.more == 0 and count[k] < limit:
            count[k] += 1
            kept.append(f)
        else:
            extra.setdefault(k, []).append(f)
    out = kept
    for group in extra.values():
        if len(group) == 1 and group[0].more:  # already a summary (made while checking): keep it
            out.append(group[0])
            continue
        rows = [f.row for f in group if f.row is not None and not f.more]
        out.append(more_finding(group[0], sum(f.more or 1 for f in group), min(rows, default=None),
                                max(rows, default=None)))
    return out


def _sort_key(f: Finding) -> tuple[int, str, int, str, int]:
    severity = 0 if f.severity is Severity.ERROR else 1
    # A summary finding comes after the findings it continues.
    row = f.row if f.row is not None else (2**62 if f.more else 0)
    return (severity, f.file, row, f.column or "", 1 if f.more else 0)


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Every finding of a study at once, errors first, then by file, row and column."""

    study: str
    findings: tuple[Finding, ...]

    @classmethod
    def of(cls, study: str, findings: Iterable[Finding]) -> ValidationReport:
        """Make the report of ``findings``: at most :data:`MAX_PER_KIND` of a kind one by one, sorted.

        Parameters
        ----------
        study : str
            The study's name.
        findings : iterable of Finding
            Every finding.

        Returns
        -------
        ValidationReport
            The report.
        """
        return cls(study, tuple(sorted(cap_findings(findings), key=_sort_key)))

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings of error severity.

        Returns
        -------
        tuple of Finding
            The errors, in report order.
        """
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """The findings of warning severity.

        Returns
        -------
        tuple of Finding
            The warnings, in report order.
        """
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed).

        Returns
        -------
        bool
            True when there is no error (warnings allowed).
        """
        return not self.errors

    def exit_code(self, strict: bool = False) -> int:
        """Exit status of ``pofa validate``.

        Parameters
        ----------
        strict : bool, optional
            Count warnings as errors.

        Returns
        -------
        int
            0 when clean, 1 with warnings only (2 under ``strict``), 2 with errors.
        """
        if self.errors:
            return 2
        if self.warnings:
            return 2 if strict else 1
        return 0

    def counts(self) -> dict[str, int]:
        """Number of findings per code.

        Returns
        -------
        dict of {str: int}
            Number of findings per code.
        """
        return dict(Counter(str(f.code) for f in self.findings))

    def to_json(self, strict: bool = False) -> dict[str, object]:
        """The report as plain JSON types (the shape of ``pofa validate --json``).

        Parameters
        ----------
        strict : bool, optional
            Count warnings as errors (for the exit code written).

        Returns
        -------
        dict of {str: object}
            The report as plain JSON types.
        """
        return {
            "study": self.study,
            "valid": self.ok and not (strict and self.warnings),
            "strict": strict,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "exit_code": self.exit_code(strict),
            "findings": [f.to_json() for f in self.findings],
        }
