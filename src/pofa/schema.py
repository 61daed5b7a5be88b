"""The study-folder format: tables, their columns and the kind of value each column holds.

This module is the single source of truth for the format documented in docs/study-format.md. Readers, the
validator and the documentation tests all read it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    """The kind of value a column holds (the value is what docs and findings show)."""

    ID = "id"
    TEXT = "text"
    DATE = "date"
    NUMBER = "number"
    BOOLEAN = "yes/no"


class TableName(enum.Enum):
    """The tables of a study folder."""

    PATIENTS = "patients"
    LESIONS = "lesions"
    FAILURES = "failures"
    MEASUREMENTS = "measurements"
    SCANS = "scans"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a study table.

    Attributes
    ----------
    name : str
        Header as written in the file (matched case-insensitively, surrounding blanks ignored).
    kind : Kind
        What the cells hold.
    required : bool
        Whether the column must be present.
    blank_ok : bool
        Whether a cell may be blank.
    positive : bool
        Numbers must be > 0.
    warn_above : float or None
        Values above this are implausible: a warning, not an error.
    description : str
        One line for the documentation.
    """

    name: str
    kind: Kind
    required: bool
    blank_ok: bool
    description: str
    positive: bool = False
    warn_above: float | None = None


@dataclass(frozen=True, slots=True)
class TableSpec:
    """The columns of one table and whether the table itself is required."""

    name: TableName
    required: bool
    columns: tuple[Column, ...]
    description: str

    def column(self, name: str) -> Column | None:
        """The column called ``name``, or ``None`` when it is not a column of the format.

        Parameters
        ----------
        name : str
            Column name.

        Returns
        -------
        Column or None
            The column called ``name``, or ``None`` when it is not a column of the format.
        """
        for col in self.columns:
            if col.name == name:
                return col
        return None

    @property
    def required_columns(self) -> tuple[str, ...]:
        """The names of the required columns.

        Returns
        -------
        tuple of str
            The required columns, in format order.
        """
        return tuple(c.name for c in self.columns if c.required)


PATIENTS = TableSpec(
    TableName.PATIENTS,
    required=True,
    description="One row per patient. Every further column is a patient covariate, kept with its type.",
    columns=(
        Column("patient_id", Kind.ID, True, False, "Study identifier of the patient (text, unique)."),
        Column("index_date", Kind.DATE, True, False, "CAR T infusion date (day 0 of PFS and OS)."),
        Column("last_followup_date", Kind.DATE, True, False, "Date last known alive, or date of death."),
        Column("progression_date", Kind.DATE, True, True, "First progression; blank = no progression."),
        Column("death_date", Kind.DATE, True, True, "Date of death; blank = alive at last follow-up."),
    ),
)

LESIONS = TableSpec(
    TableName.LESIONS,
    required=True,
    description="One row per pretreatment (baseline) lesion. Further columns are lesion covariates.",
    columns=(
        Column("patient_id", Kind.ID, True, False, "Patient the lesion belongs to."),
        Column("lesion_id", Kind.ID, True, False, "Lesion identifier, unique within its patient."),
        Column("site", Kind.TEXT, True, False, "Anatomical site (free text, e.g. 'mediastinum')."),
        Column("extranodal", Kind.BOOLEAN, True, False, "Extranodal lesion (spleen counts as nodal)."),
        Column("diameter_cm", Kind.NUMBER, True, False, "Longest diameter in cm (> 0).", True, 40.0),
        Column("suvmax", Kind.NUMBER, True, False, "Maximum SUV (> 0).", True, 100.0),
        Column("x_mm", Kind.NUMBER, False, True, "Lesion centre, patient x (LPS) in mm."),
        Column("y_mm", Kind.NUMBER, False, True, "Lesion centre, patient y (LPS) in mm."),
        Column("z_mm", Kind.NUMBER, False, True, "Lesion centre, patient z (LPS) in mm."),
        Column("mtv_ml", Kind.NUMBER, False, True, "Metabolic tumour volume in ml (> 0).", True),
        Column("tlg", Kind.NUMBER, False, True, "Total lesion glycolysis (SUVmean x MTV) (> 0).", True),
        Column("bridging_rt", Kind.BOOLEAN, False, True, "Lesion received bridging radiotherapy."),
        Column("rt_dose_gy", Kind.NUMBER, False, True,
               "Total physical dose of the bridging course to the lesion in Gy (> 0).", True, 80.0),
        Column("rt_fractions", Kind.NUMBER, False, True,
               "Number of fractions of the bridging course (whole number > 0).", True, 50.0),
    ),
)

FAILURES = TableSpec(
    TableName.FAILURES,
    required=False,
    description=(
        "One row per lesion seen at a failure scan. Absent = no failure lesions recorded. "
        "site and extranodal are required for new lesions (blank baseline_lesion_id)."
    ),
    columns=(
        Column("patient_id", Kind.ID, True, False, "Patient the failure lesion belongs to."),
        Column("failure_id", Kind.ID, True, False, "Failure-lesion identifier, unique within its patient."),
        Column("scan_date", Kind.DATE, True, False, "Date of the scan that shows the lesion."),
        Column("baseline_lesion_id", Kind.ID, True, True,
               "The pretreatment lesion that failed; blank = new lesion."),
        Column("site", Kind.TEXT, False, True, "Anatomical site (required for new lesions)."),
        Column("extranodal", Kind.BOOLEAN, False, True, "Extranodal (required for new lesions)."),
        Column("x_mm", Kind.NUMBER, False, True, "Lesion centre, patient x (LPS) in mm."),
        Column("y_mm", Kind.NUMBER, False, True, "Lesion centre, patient y (LPS) in mm."),
        Column("z_mm", Kind.NUMBER, False, True, "Lesion centre, patient z (LPS) in mm."),
        Column("diameter_cm", Kind.NUMBER, False, True, "Longest diameter in cm (> 0).", True, 40.0),
        Column("rt_field", Kind.TEXT, False, True,
               "Failure relative to the radiation field: in-field, marginal or out-of-field."),
    ),
)

MEASUREMENTS = TableSpec(
    TableName.MEASUREMENTS,
    required=False,
    description=(
        "One row per baseline lesion per scan (docs/response.md). Absent = no response assessment. "
        "The earliest scan of a patient is the baseline."
    ),
    columns=(
        Column("patient_id", Kind.ID, True, False, "Patient the lesion belongs to."),
        Column("lesion_id", Kind.ID, True, False, "The baseline lesion measured (lesions.lesion_id)."),
        Column("scan_date", Kind.DATE, True, False, "Date of the scan."),
        Column("ldi_mm", Kind.NUMBER, True, False,
               "Longest diameter in mm (0 = no longer visible).", False, 400.0),
        Column("sdi_mm", Kind.NUMBER, True, False,
               "Short diameter perpendicular to the longest, in mm (<= ldi_mm).", False, 400.0),
        Column("suvmax", Kind.NUMBER, False, True, "Maximum SUV of the lesion on this scan.", False, 100.0),
        Column("deauville", Kind.TEXT, False, True, "Deauville five-point score 1-5, or X (not scored)."),
        Column("target", Kind.BOOLEAN, True, True,
               "Target lesion (Lugano: at most six); read from the baseline row."),
    ),
)

SCANS = TableSpec(
    TableName.SCANS,
    required=False,
    description="One row per scan with what the response rules need beyond the lesions (docs/response.md).",
    columns=(
        Column("patient_id", Kind.ID, True, False, "Patient scanned."),
        Column("scan_date", Kind.DATE, True, False, "Date of the scan (a date of the measurements table)."),
        Column("deauville", Kind.TEXT, False, True,
               "Overall Deauville score 1-5 or X; blank = the highest lesion score."),
        Column("bone_marrow", Kind.BOOLEAN, False, True, "Bone-marrow involvement; blank = not involved."),
        Column("new_lesions", Kind.BOOLEAN, False, True, "New lesions on this scan; blank = none."),
        Column("clinical_deterioration", Kind.BOOLEAN, False, True,
               "Clinical deterioration at this scan (LYRIC IR1); blank = none."),
    ),
)

#: The values of the failures column ``rt_field`` (docs/radiotherapy.md).
RT_FIELD_CLASSES = ("in-field", "marginal", "out-of-field")

TABLES: dict[TableName, TableSpec] = {t.name: t for t in (PATIENTS, LESIONS, FAILURES, MEASUREMENTS, SCANS)}

COORDINATES = ("x_mm", "y_mm", "z_mm")

TRUE_WORDS = frozenset({"yes", "y", "true", "t", "1", "1.0"})
FALSE_WORDS = frozenset({"no", "n", "false", "f", "0", "0.0"})

#: Cell texts that mean "missing" in other programs (R writes NA). They are not accepted as blank; the
#: finding then says to leave the cell empty.
MISSING_WORDS = frozenset({"na", "n/a", "nan", "null", "none", "-", ".", "?", "missing", "#n/a"})

#: Follow-up longer than this many years is implausible (a warning).
MAX_FOLLOWUP_YEARS = 20.0

#: Dates must fall in these years (inclusive); anything else is a typing error such as 0019 for 2019.
MIN_YEAR = 1900
MAX_YEAR = 2099

#: Characters removed from the ends of headers besides blanks (a stray BOM, zero-width space).
INVISIBLE = "\ufeff\u200b"


def normalise_header(header: object) -> str:
    """Header as matched against the format: blanks around removed, lower case, inner blanks as ``_``.

    Parameters
    ----------
    header : object
        The header as written (any value; it is turned into text).

    Returns
    -------
    str
        The normalised name (``"Lesion ID"`` -> ``"lesion_id"``).
    """
    return "_".join(str(header).strip().strip(INVISIBLE).lower().split())


#: Unit words that may end a column name of the format (``diameter_cm``) and that a header may leave out or
#: put in brackets (``Diameter (cm)``).
_UNIT_SUFFIXES = ("cm", "mm", "ml", "date", "id")


def header_key(header: str) -> str:
    """A header reduced for "did you mean": lower case, units in brackets, blanks and punctuation removed.

    ``"SUVmax (g/ml)"``, ``"SUV max"`` and ``"suv_max"`` all give ``"suvmax"``.

    Parameters
    ----------
    header : str
        A header as written, or a column name of the format.

    Returns
    -------
    str
        The key (letters and digits only).
    """
    import re

    text = re.sub(r"[\(\[\{][^\)\]\}]*[\)\]\}]", " ", str(header).lower())
    return re.sub(r"[\W_]+", "", text)


def likely_header(column: str, headers: dict[str, str]) -> str | None:
    """The present header that most likely means the format's ``column``, or ``None``.

    Parameters
    ----------
    column : str
        A column name of the format (``"diameter_cm"``).
    headers : dict of str to str
        Normalised name -> header as written, of the columns that are not in the format.

    Returns
    -------
    str or None
        The header as written (``"Diameter (cm)"``) when its :func:`header_key` equals the column's key,
        with or without the column's unit word, or is a close spelling of it; else ``None``.
    """
    import difflib

    key = header_key(column)
    keys = {key}
    parts = column.split("_")
    if len(parts) > 1 and parts[-1] in _UNIT_SUFFIXES:
        keys.add(header_key("_".join(parts[:-1])))
    by_key = {header_key(written): written for written in headers.values() if header_key(written)}
    for k in (key, *sorted(keys - {key})):
        if k in by_key:
            return by_key[k]
    close = difflib.get_close_matches(key, list(by_key), n=1, cutoff=0.85)
    return by_key[close[0]] if close else None
