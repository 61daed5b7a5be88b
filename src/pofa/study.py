"""The Study: a study folder read, parsed and checked.

>>> import pofa
>>> study = pofa.load_study("my_study/")          # doctest: +SKIP
>>> report = study.validate()                      # doctest: +SKIP
>>> report.ok, len(report.errors)                  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pofa.errors import StudyError
from pofa.findings import Finding, ValidationReport
from pofa.io.readers import EXCEL_SUFFIXES, StudyFormat, read_study_tables
from pofa.schema import TABLES, TableName
from pofa.settings import SETTINGS_FILE, Settings, load_settings
from pofa.template import example_row_findings
from pofa.validation import TypedTable, empty_table, validate_tables

if TYPE_CHECKING:
    from pofa.privacy import IdentifyingColumn
    from pofa.redcap.study import RedcapReference


@dataclass(frozen=True, slots=True)
class Study:
    """A study as read from disk. Immutable: the table accessors return copies.

    Use :func:`load_study` to make one. Tables are indexed by the spreadsheet row they came from (header =
    row 1), so any later finding can point back at the row.
    """

    path: Path
    format: StudyFormat
    settings: Settings
    files: tuple[Path, ...]
    _tables: dict[TableName, TypedTable]
    _findings: tuple[Finding, ...]
    #: The columns withheld from the outputs under ``settings`` (:func:`pofa.privacy.identifying_columns`),
    #: found while checking the study; None when not known.
    _identifying: tuple[IdentifyingColumn, ...] | None = None

    @property
    def name(self) -> str:
        """The study's name: ``[study] name`` of study.toml, else the folder or file name.

        Returns
        -------
        str
            The study's name: ``[study] name`` of study.toml, else the folder or file name.
        """
        return self.settings.study.name or self.path.name

    @property
    def patients(self) -> pd.DataFrame:
        """One row per patient: the format's columns typed (dates as datetime64), covariates kept.

        Returns
        -------
        pandas.DataFrame
            One row per patient: the format's columns typed (dates as datetime64), covariates kept.
        """
        return self._table(TableName.PATIENTS).frame.copy()

    @property
    def lesions(self) -> pd.DataFrame:
        """One row per baseline lesion (``extranodal`` as nullable boolean, sizes as float).

        Returns
        -------
        pandas.DataFrame
            One row per baseline lesion (``extranodal`` as nullable boolean, sizes as float).
        """
        return self._table(TableName.LESIONS).frame.copy()

    @property
    def failures(self) -> pd.DataFrame:
        """One row per failure lesion; empty (with the required columns) when the study has none.

        Returns
        -------
        pandas.DataFrame
            One row per failure lesion; empty (with the required columns) when the study has none.
        """
        return self._table(TableName.FAILURES).frame.copy()

    @property
    def has_failures_table(self) -> bool:
        """Tell whether the study has a failures table.

        Returns
        -------
        bool
            True when a failures table was read.
        """
        return TableName.FAILURES in self._tables

    @property
    def measurements(self) -> pd.DataFrame:
        """One row per lesion per scan (docs/response.md); empty when the study has no such table.

        Returns
        -------
        pandas.DataFrame
            A copy of the typed measurements table.
        """
        return self._table(TableName.MEASUREMENTS).frame.copy()

    @property
    def scans(self) -> pd.DataFrame:
        """One row per scan (docs/response.md); empty when the study has no such table.

        Returns
        -------
        pandas.DataFrame
            A copy of the typed scans table.
        """
        return self._table(TableName.SCANS).frame.copy()

    def source(self, table: TableName | str) -> str:
        """The file (or ``workbook[sheet]``) a table came from.

        Parameters
        ----------
        table : TableName or str
            The table.

        Returns
        -------
        str
            The file (or ``workbook[sheet]``) a table came from.
        """
        return self._table(TableName(table)).source

    def covariates(self, table: TableName | str) -> tuple[str, ...]:
        """The extra (covariate) columns of a table, in file order.

        Parameters
        ----------
        table : TableName or str
            The table.

        Returns
        -------
        tuple of str
            The extra (covariate) columns of a table, in file order.
        """
        t = self._tables.get(TableName(table))
        return t.covariates if t is not None else ()

    def _table(self, name: TableName) -> TypedTable:
        t = self._tables.get(name)
        if t is None:
            if not TABLES[name].required:
                return empty_table(name, f"{name.value} (absent)")
            raise StudyError(f"the study {self.path} has no readable '{name.value}' table; "
                             f"run 'pofa validate {self.path}' to see why")
        return t

    def identifying_columns(self, settings: Settings | None = None) -> tuple[IdentifyingColumn, ...]:
        """The columns withheld from every output because they look identifying (:mod:`pofa.privacy`).

        Parameters
        ----------
        settings : Settings, optional
            The settings the analysis runs with (the columns they keep are never withheld); default: the
            study's own, whose answer was found while the study was checked.

        Returns
        -------
        tuple of pofa.privacy.IdentifyingColumn
            The withheld columns, in table order.
        """
        if self._identifying is not None and (settings is None or settings is self.settings):
            return self._identifying
        from pofa.privacy import identifying_columns

        frames = {t.value: self._table(t).frame for t in (TableName.PATIENTS, TableName.LESIONS,
                                                             TableName.FAILURES)}
        return identifying_columns(frames, {t: self.covariates(t) for t in frames},
                                   settings if settings is not None else self.settings)

    def validate(self) -> ValidationReport:
        """Check the study.

        Returns
        -------
        ValidationReport
            Every problem of the study at once (reading, settings, cells, cross-table rules).
        """
        return ValidationReport.of(str(self.path), self._findings)

    def input_hashes(self) -> dict[str, str]:
        """SHA-256 of every input file read (for the run manifest).

        Returns
        -------
        dict of {str: str}
            SHA-256 of every input file read (for the run manifest).

        Raises
        ------
        StudyError
            When an input file cannot be read again to record its checksum.
        """
        out = {}
        for p in self.files:
            try:
                out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError as exc:
                raise StudyError(f"cannot read {p} again to record its checksum ({exc.strerror or exc}); "
                                 "was the study changed while pofa ran?") from exc
        return out


def _settings_folder(path: Path) -> Path | None:
    """Where study.toml is looked for: the study folder, or the folder of a workbook given by its path."""
    try:
        if path.is_dir():
            return path
        if path.is_file() and path.suffix.lower() in EXCEL_SUFFIXES:
            return path.parent
    except OSError:
        return None
    return None


def _redcap_reference(path: Path) -> RedcapReference | None:
    """The ``[redcap]`` section of the folder's study.toml, with the export it names read (pofa.redcap)."""
    try:
        # most studies name no export: pofa.redcap is imported only for a study.toml that mentions it
        toml = path / SETTINGS_FILE
        if not path.is_dir() or not toml.is_file() or b"redcap" not in toml.read_bytes():
            return None
    except OSError:
        return None
    from pofa.redcap.study import read_referenced_export

    return read_referenced_export(path)


def load_study(path: str | Path) -> Study:
    """Read a study folder (CSV, Parquet or one Excel workbook) and check it.

    Reading never raises on bad data: every problem becomes a finding, available from
    :meth:`Study.validate`. Input files are only read.

    Parameters
    ----------
    path : str or pathlib.Path
        The study folder, or the path of an Excel workbook with sheets ``patients``, ``lesions`` and
        optionally ``failures`` (``study.toml`` is then read from the workbook's folder). A folder whose
        ``study.toml`` names a REDCap export (``[redcap] export``, ``dictionary``) is read from the export.

    Returns
    -------
    Study
        The typed tables, settings and findings of the study.
    """
    p = Path(path)
    settings_folder = _settings_folder(p)
    settings, setting_findings = load_settings(settings_folder)
    redcap = _redcap_reference(p)
    read = (redcap.read if redcap is not None and redcap.read is not None
            else read_study_tables(p, settings.columns))
    typed, findings = validate_tables(read.tables, covariates=settings.covariates,
                                      decimal=settings.study.decimal)
    findings = [*findings, *example_row_findings(read.tables)]
    if redcap is not None:  # a REDCap export named in study.toml: findings point at its lines and fields
        findings = [*redcap.findings, *redcap.locate(findings)]
    from pofa.settings_check import study_findings

    checked, identifying = study_findings(settings, typed)
    findings = [*findings, *checked]
    files = list(read.files)
    if settings_folder is not None and (settings_folder / SETTINGS_FILE).is_file():
        files.append(settings_folder / SETTINGS_FILE)
    return Study(p, read.format, settings, tuple(files), typed,
                 (*read.findings, *setting_findings, *findings), identifying)
