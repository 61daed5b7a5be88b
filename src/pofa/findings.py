"""Validation findings: what is wrong, where (file, row, column), and what to do."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


class Severity(enum.Enum):
    """How serious a finding is. Errors stop an analysis; warnings do not (unless ``--strict``)."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a study.

    Parameters
    ----------
    severity : Severity
        Error or warning.
    code : str
        A stable machine-readable code, e.g. ``"bad-date"`` (listed in docs/study-format.md).
    file : str
        The file, or ``workbook.xlsx[sheet]`` for an Excel sheet.
    row : int or None
        The row as a spreadsheet user counts it: the header is row 1, the first data row is row 2.
        ``None`` when the finding concerns a whole file or column.
    column : str or None
        The column concerned, ``None`` for a whole row or file.
    message : str
        What is wrong.
    hint : str
        What to do about it.
    """

    severity: Severity
    code: str
    file: str
    row: int | None
    column: str | None
    message: str
    hint: str

    def location(self) -> str:
        """``file, row N, column C`` as far as known."""
        parts = [self.file]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "message": self.message,
            "hint": self.hint,
        }


def _sort_key(f: Finding) -> tuple[int, str, int, str]:
    return (0 if f.severity is Severity.ERROR else 1, f.file, f.row if f.row is not None else 0, f.column or "")


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Every finding of a study at once, errors first, then by file, row and column."""

    study: str
    findings: tuple[Finding, ...]

    @classmethod
    def of(cls, study: str, findings: Iterable[Finding]) -> ValidationReport:
        return cls(study, tuple(sorted(findings, key=_sort_key)))

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def exit_code(self, strict: bool = False) -> int:
        """0 when clean, 1 with warnings only (2 under ``strict``), 2 with errors."""
        if self.errors:
            return 2
        if self.warnings:
            return 2 if strict else 1
        return 0

    def counts(self) -> dict[str, int]:
        """Number of findings per code."""
        return dict(Counter(f.code for f in self.findings))

    def to_json(self, strict: bool = False) -> dict[str, object]:
        return {
            "study": self.study,
            "valid": self.ok and not (strict and self.warnings),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "exit_code": self.exit_code(strict),
            "findings": [f.to_json() for f in self.findings],
        }
