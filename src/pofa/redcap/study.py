"""A REDCap export as a study: checked like a study folder, written as one, or read in place.

``pofa import redcap`` writes the tables as a study folder (atomically); a ``study.toml`` whose ``[redcap]``
section names an ``export`` (and its ``dictionary``) makes ``pofa validate`` and ``pofa analyze`` read the
export directly. Either way every finding points at the export's line and the REDCap field.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from pofa import atomic
from pofa.findings import Finding, ValidationReport
from pofa.io.readers import ReadResult, StudyFormat
from pofa.redcap.config import SETTINGS_FILE, RedcapSettings, read_redcap_settings
from pofa.redcap.dictionary import REDCAP_TABLES, RedcapError, read_dictionary
from pofa.redcap.export import REDCAP_CODES, RedcapCode, RedcapImport, read_export
from pofa.schema import TableName


@dataclass(frozen=True, slots=True)
class RedcapReference:
    """What ``[redcap]`` of a study's ``study.toml`` gives :func:`pofa.load_study`.

    Attributes
    ----------
    read : ReadResult or None
        The export's tables when ``[redcap] export`` is set, else ``None`` (the folder's files are read).
    imported : RedcapImport or None
        The import, whose :meth:`~pofa.redcap.export.RedcapImport.locate` points findings at the export.
    findings : tuple of Finding
        Problems of the ``[redcap]`` section itself.
    """

    read: ReadResult | None
    imported: RedcapImport | None
    findings: tuple[Finding, ...]

    def locate(self, findings: list[Finding]) -> list[Finding]:
        """The study checks' findings pointed at the export (unchanged when there is no export).

        Parameters
        ----------
        findings : list of Finding
            Findings of the study checks.

        Returns
        -------
        list of Finding
            The findings pointed at the export (unchanged when there is no export).
        """
        return self.imported.locate(findings) if self.imported is not None else findings


def _error(file: str, message: str, hint: str) -> Finding:
    return Finding(REDCAP_CODES[RedcapCode.BAD_EXPORT][0], RedcapCode.BAD_EXPORT, file, None, None, message,
                   hint)


def read_referenced_export(folder: Path) -> RedcapReference | None:
    """The export named by ``[redcap] export`` in ``folder/study.toml``, read into the format's tables.

    Parameters
    ----------
    folder : pathlib.Path
        The study folder.

    Returns
    -------
    RedcapReference or None
        ``None`` when the folder has no ``study.toml`` or it has no ``[redcap]`` section. An export or
        dictionary that cannot be read becomes a finding (reading never raises on bad input).
    """
    toml = Path(folder) / SETTINGS_FILE
    try:
        if not toml.is_file() or b"redcap" not in toml.read_bytes():
            return None
    except OSError:
        return None
    settings, findings = read_redcap_settings(toml)
    if settings.export is None or settings.dictionary is None:
        return RedcapReference(None, None, tuple(findings))
    export, dictionary = Path(folder) / settings.export, Path(folder) / settings.dictionary
    try:
        imported = read_export(export, read_dictionary(dictionary), settings)
    except RedcapError as exc:
        bad = _error(SETTINGS_FILE, str(exc), "check [redcap] export and dictionary in study.toml")
        return RedcapReference(ReadResult({}, (), StudyFormat.CSV, ()), None, (*findings, bad))
    read = ReadResult(imported.tables, imported.findings, StudyFormat.CSV, (export, dictionary))
    return RedcapReference(read, imported, tuple(findings))


def import_export(export: Path, dictionary: Path,
                  settings: RedcapSettings | None = None) -> tuple[RedcapImport, ValidationReport]:
    """Read an export and check it as a study.

    Parameters
    ----------
    export : pathlib.Path
        The records export (CSV); only read.
    dictionary : pathlib.Path
        The project's data dictionary (CSV).
    settings : RedcapSettings, optional
        Field mapping; the defaults of ``pofa template --redcap`` when omitted.

    Returns
    -------
    tuple of (RedcapImport, ValidationReport)
        The import and every finding (the export's and the study checks', all located in the export).

    Raises
    ------
    RedcapError
        When the export or dictionary cannot be used at all.
    """
    imported = read_export(Path(export), read_dictionary(Path(dictionary)), settings)
    return imported, check_import(imported)


def check_import(imported: RedcapImport) -> ValidationReport:
    """Check an import as ``pofa validate`` checks a study, every finding located in the export.

    Parameters
    ----------
    imported : RedcapImport
        The import.

    Returns
    -------
    ValidationReport
        The export's own findings and the study checks' (cells, identifiers, dates, template rows).
    """
    from pofa.template import example_row_findings
    from pofa.validation import validate_tables

    _, findings = validate_tables(imported.tables)
    located = imported.locate([*findings, *example_row_findings(imported.tables)])
    return ValidationReport.of(imported.source, [*imported.findings, *located])


def table_csv(imported: RedcapImport, table: TableName) -> str | None:
    """One table of an import as the CSV text of a study folder (``None`` when the import lacks it).

    Parameters
    ----------
    imported : RedcapImport
        The import.
    table : TableName
        Which table.

    Returns
    -------
    str or None
        The CSV text, or ``None`` when the import lacks the table.
    """
    raw = imported.tables.get(table)
    if raw is None:
        return None
    from pofa.io.writers import neutralise

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([neutralise(str(c)) for c in raw.frame.columns])
    for row in raw.frame.itertuples(index=False):  # no cell a spreadsheet would run (read back unquoted)
        writer.writerow(["" if v is None else neutralise(str(v)) for v in row])
    return buf.getvalue()


def settings_without_redcap(text: str) -> str:
    """A ``study.toml`` text without its ``[redcap]`` tables (the analysis settings an import carries over).

    Parameters
    ----------
    text : str
        The TOML text.

    Returns
    -------
    str
        The text with every ``[redcap]`` and ``[redcap.*]`` table (header to the next header) removed.
    """
    out: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        head = line.strip()
        if head.startswith("[") and not head.startswith("[["):
            name = head.strip("[]").split("]")[0].strip().strip('"')
            skipping = name == "redcap" or name.startswith("redcap.")
        if not skipping:
            out.append(line)
    return "".join(out)


def write_study(imported: RedcapImport, out: Path, force: bool = False,
                settings_text: str | None = None) -> Path:
    """Write an import as a study folder (patients.csv, lesions.csv, failures.csv), atomically.

    Parameters
    ----------
    imported : RedcapImport
        The import.
    out : pathlib.Path
        The study folder to create.
    force : bool
        Replace a non-empty existing folder.
    settings_text : str, optional
        A ``study.toml`` to write beside the tables (its ``[redcap]`` tables are left out).

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    pofa.errors.PofaError
        When ``out`` exists and is not empty (without ``force``), or is not a folder.
    """
    with atomic.output_dir(Path(out), force) as tmp:
        for table in REDCAP_TABLES:
            text = table_csv(imported, table)
            if text is not None:
                atomic.write_text(tmp / f"{table.value}.csv", text)
        if settings_text is not None:
            kept = settings_without_redcap(settings_text)
            if kept.strip():
                atomic.write_text(tmp / SETTINGS_FILE, kept)
    return Path(out)
