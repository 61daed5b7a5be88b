"""REDCap data dictionaries: the one ``pofa template --redcap`` writes, and reading any project's.

A data dictionary is a CSV file with one row per field and the columns REDCap's Dictionary page downloads
(``"Variable / Field Name"``, ``"Form Name"``, ...). The API's metadata export writes the same table with
short headers (``field_name``, ``form_name``, ...); both are read. A dictionary cannot mark an instrument as
repeating: that is a project setting (docs/data-entry.md shows where).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from pofa.errors import PofaError
from pofa.schema import TABLES, Column, Kind, TableName

#: The columns of a REDCap data dictionary, in REDCap's order and spelling.
DICTIONARY_COLUMNS: tuple[str, ...] = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
    "Matrix Ranking?", "Field Annotation",
)

#: The same columns as the API's metadata export names them.
API_COLUMNS: tuple[str, ...] = (
    "field_name", "form_name", "section_header", "field_type", "field_label",
    "select_choices_or_calculations", "field_note", "text_validation_type_or_show_slider_number",
    "text_validation_min", "text_validation_max", "identifier", "branching_logic", "required_field",
    "custom_alignment", "question_number", "matrix_group_name", "matrix_ranking", "field_annotation",
)

#: Field types whose values are codes of a choice list.
CODED_TYPES = frozenset({"radio", "dropdown", "checkbox", "yesno", "truefalse"})
#: Field types that hold no data (no column in an export).
NO_DATA_TYPES = frozenset({"descriptive"})

#: The form (instrument) of each table in the dictionary ``pofa template --redcap`` writes.
#: The tables a REDCap project holds (the response tables, docs/response.md, are not entered in REDCap).
REDCAP_TABLES: tuple[TableName, ...] = (TableName.PATIENTS, TableName.LESIONS, TableName.FAILURES)

DEFAULT_FORMS: dict[TableName, str] = {
    TableName.PATIENTS: "patients", TableName.LESIONS: "lesions", TableName.FAILURES: "failures"}

#: Columns present in both lesions and failures get the table's prefix (REDCap field names are unique in a
#: project); ``patient_id`` is the record id.
_PREFIX = {TableName.LESIONS: "lesion_", TableName.FAILURES: "failure_"}
RECORD_ID = "record_id"


class RedcapError(PofaError):
    """A REDCap data dictionary, export or API request cannot be used (with what to do)."""


def default_field_name(table: TableName, column: str) -> str:
    """The REDCap field name ``pofa template --redcap`` gives a column of the format.

    Parameters
    ----------
    table : TableName
        The table of the column.
    column : str
        The column's name in the format.

    Returns
    -------
    str
        ``record_id`` for every ``patient_id``; the table's prefix (``lesion_``, ``failure_``) for a column
        that both lesions and failures have (``site``, ``extranodal``, coordinates, ``diameter_cm``); the
        column's own name otherwise.
    """
    if column == "patient_id":
        return RECORD_ID
    if table in _PREFIX:
        other = TableName.FAILURES if table is TableName.LESIONS else TableName.LESIONS
        if TABLES[other].column(column) is not None:
            return _PREFIX[table] + column
    return column


def default_mapping() -> dict[TableName, dict[str, str]]:
    """Format column -> REDCap field for every column of every table (the template's defaults).

    Returns
    -------
    dict
        One dict per table, in the format's column order.
    """
    return {t: {c.name: default_field_name(t, c.name) for c in TABLES[t].columns} for t in REDCAP_TABLES}


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a data dictionary.

    Attributes
    ----------
    name : str
        Variable name (lower case).
    form : str
        Form (instrument) name.
    type : str
        Field type (``text``, ``radio``, ``yesno``...), lower case.
    label : str
        Field label as written.
    choices : tuple of (str, str)
        ``(code, label)`` pairs of a coded field; yes/no and true/false fields get REDCap's implicit
        ``1``/``0`` choices.
    validation : str
        Text validation type (``date_ymd``, ``number``...), lower case.
    identifier : bool
        Marked as an identifier (such fields are never read as covariates).
    line : int
        Line of the dictionary file (header = 1).
    """

    name: str
    form: str
    type: str
    label: str
    choices: tuple[tuple[str, str], ...]
    validation: str
    identifier: bool
    line: int

    @property
    def coded(self) -> bool:
        """Whether the field's values are codes of a choice list.

        Returns
        -------
        bool
            Whether the field's values are codes of a choice list.
        """
        return self.type in CODED_TYPES

    @property
    def is_yes_no(self) -> bool:
        """Whether the field means yes/no: a yesno or truefalse field, or a choice list of only 1 and 0.

        Returns
        -------
        bool
            Whether the field means yes/no: a yesno or truefalse field, or a choice list of only 1 and 0.
        """
        if self.type in ("yesno", "truefalse"):
            return True
        return (self.type in ("radio", "dropdown")
                and {c for c, _ in self.choices} == {"1", "0"}
                and {lab.strip().lower() for _, lab in self.choices} in ({"yes", "no"}, {"true", "false"}))

    def export_columns(self) -> tuple[str, ...]:
        """The column names of the field in a raw export (``field___code`` per choice of a checkbox).

        Returns
        -------
        tuple of str
            The column names of the field in a raw export (``field___code`` per choice of a checkbox).
        """
        if self.type in NO_DATA_TYPES:
            return ()
        if self.type == "checkbox":
            return tuple(f"{self.name}___{checkbox_code(code)}" for code, _ in self.choices)
        return (self.name,)


def checkbox_code(code: str) -> str:
    """Write a checkbox choice code as REDCap writes it in an export's column name.

    Lower case, ``_`` for ``-``.

    Parameters
    ----------
    code : str
        The choice code.

    Returns
    -------
    str
        The code in the column name.
    """
    return re.sub(r"[^0-9a-z_]", "_", code.strip().lower())


def parse_choices(text: str, field_type: str) -> tuple[tuple[str, str], ...]:
    """``"1, Yes | 0, No"`` as ``(("1", "Yes"), ("0", "No"))``; REDCap's implicit choices of yesno/truefalse.

    Parameters
    ----------
    text : str
        The dictionary's "Choices, Calculations, OR Slider Labels" cell.
    field_type : str
        The field's type; only coded types have choices.

    Returns
    -------
    tuple of (str, str)
        ``(code, label)`` of each choice.
    """
    if field_type == "yesno":
        return (("1", "Yes"), ("0", "No"))
    if field_type == "truefalse":
        return (("1", "True"), ("0", "False"))
    if field_type not in CODED_TYPES or not text.strip():
        return ()
    out: list[tuple[str, str]] = []
    for part in text.split("|"):
        if not part.strip():
            continue
        code, sep, label = part.partition(",")
        out.append((code.strip(), label.strip() if sep else code.strip()))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class DataDictionary:
    """A project's data dictionary: its fields in order.

    Attributes
    ----------
    fields : tuple of Field
        In the dictionary's order (the first is the record id).
    source : str
        The file name (for messages).
    """

    fields: tuple[Field, ...]
    source: str

    @property
    def record_id(self) -> str:
        """The record id field: the first field of the dictionary.

        Returns
        -------
        str
            The record id field: the first field of the dictionary.
        """
        return self.fields[0].name

    @property
    def forms(self) -> tuple[str, ...]:
        """Form names in the dictionary's order.

        Returns
        -------
        tuple of str
            Form names in the dictionary's order.
        """
        return tuple(dict.fromkeys(f.form for f in self.fields))

    def field(self, name: str) -> Field | None:
        """The field called ``name`` (case-insensitive), or ``None``.

        Parameters
        ----------
        name : str
            Field name (case-insensitive).

        Returns
        -------
        Field or None
            The field called ``name``, or ``None``.
        """
        return self._by_name().get(name.strip().lower())

    def _by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    def form_fields(self, form: str) -> tuple[Field, ...]:
        """The fields of one form, in order.

        Parameters
        ----------
        form : str
            Form name.

        Returns
        -------
        tuple of Field
            The fields of one form, in order.
        """
        return tuple(f for f in self.fields if f.form == form)


def _cell(row: dict[str, str], *keys: str) -> str:
    for k in keys:
        v = row.get(k)
        if v is not None:
            return v
    return ""


def parse_dictionary(text: str, source: str) -> DataDictionary:
    """A data dictionary from its CSV text (the Dictionary page's download or the API's metadata export).

    Parameters
    ----------
    text : str
        The CSV text.
    source : str
        The file name, for messages.

    Returns
    -------
    DataDictionary
        The fields, in the dictionary's order.

    Raises
    ------
    RedcapError
        When the text is not a data dictionary (no field-name, form-name or field-type column, or no
        field), or a field row lacks its name or form.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise RedcapError(f"{source} is empty; download the data dictionary from REDCap's Dictionary page "
                          "(or write one with 'pofa template --redcap')") from None
    except csv.Error as exc:
        raise RedcapError(f"{source} is not a CSV file ({exc})") from None
    low = {h.lower(): i for i, h in enumerate(header)}
    display = {c.lower(): a for c, a in zip(DICTIONARY_COLUMNS, API_COLUMNS, strict=True)}
    index: dict[str, int] = {}
    for h, i in low.items():
        key = display.get(h, h)
        if key in API_COLUMNS:
            index.setdefault(key, i)
    lacking = [DICTIONARY_COLUMNS[API_COLUMNS.index(k)] for k in ("field_name", "form_name", "field_type")
               if k not in index]
    if lacking:
        raise RedcapError(f"{source} is not a REDCap data dictionary: it has no column "
                          f"{', '.join(repr(c) for c in lacking)}; download it from the project "
                          "(Project Setup > Design your data collection instruments > Data Dictionary)")
    fields: list[Field] = []
    problems: list[str] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            row = {k: (cells[i].strip() if i < len(cells) else "") for k, i in index.items()}
            name, form = row["field_name"].lower(), row["form_name"].lower()
            if not name or not form:
                problems.append(f"line {line}: a field without its variable name or form name")
                continue
            ftype = row["field_type"].lower()
            fields.append(Field(
                name=name, form=form, type=ftype, label=_cell(row, "field_label"),
                choices=parse_choices(_cell(row, "select_choices_or_calculations"), ftype),
                validation=_cell(row, "text_validation_type_or_show_slider_number").lower(),
                identifier=_cell(row, "identifier").lower() in ("y", "yes", "1"), line=line))
    except csv.Error as exc:
        raise RedcapError(f"{source} cannot be read as CSV ({exc})") from None
    if problems:
        raise RedcapError(f"{source}: " + "; ".join(problems))
    if not fields:
        raise RedcapError(f"{source} defines no field")
    return DataDictionary(tuple(fields), source)


def read_dictionary(path: Path) -> DataDictionary:
    """Read a data dictionary file (UTF-8, with or without BOM; else Windows-1252).

    Parameters
    ----------
    path : pathlib.Path
        The CSV file.

    Returns
    -------
    DataDictionary
        The fields, in the dictionary's order.

    Raises
    ------
    RedcapError
        When the file cannot be read or is not a data dictionary.
    """
    path = Path(path)
    from pofa.atomic import read_regular_bytes

    try:  # a pipe or device is refused, never read (it could block or never end)
        raw = read_regular_bytes(path, "the data dictionary")
    except PofaError as exc:
        raise RedcapError(str(exc)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    return parse_dictionary(text, path.name)


# ---------------------------------------------------------------------------------------------------------
# The dictionary pofa writes


#: Short field labels (what a data-entry screen shows) for the format's columns.
COLUMN_LABELS: dict[str, str] = {
    "patient_id": "Patient ID", "index_date": "Index date (CAR T infusion)",
    "last_followup_date": "Date of last follow-up", "progression_date": "Date of first progression",
    "death_date": "Date of death", "lesion_id": "Lesion ID", "site": "Anatomical site",
    "extranodal": "Extranodal", "diameter_cm": "Longest diameter (cm)", "suvmax": "SUVmax",
    "x_mm": "Centre x (mm, LPS)", "y_mm": "Centre y (mm, LPS)", "z_mm": "Centre z (mm, LPS)",
    "mtv_ml": "Metabolic tumour volume (ml)", "tlg": "Total lesion glycolysis",
    "bridging_rt": "Bridging radiotherapy", "failure_id": "Failure lesion ID",
    "scan_date": "Date of the scan", "baseline_lesion_id": "Baseline lesion that failed (Lesion ID)",
}


def column_label(column: Column) -> str:
    """The short label of a format column (its name with blanks when it has no label of its own).

    Parameters
    ----------
    column : Column
        The format column.

    Returns
    -------
    str
        The short label of a format column (its name with blanks when it has no label of its own).
    """
    return COLUMN_LABELS.get(column.name, column.name.replace("_", " ").capitalize())


def _dictionary_row(table: TableName, col: Column) -> dict[str, str]:
    row = dict.fromkeys(DICTIONARY_COLUMNS, "")
    row["Variable / Field Name"] = default_field_name(table, col.name)
    row["Form Name"] = DEFAULT_FORMS[table]
    row["Field Label"] = column_label(col)
    row["Field Note"] = col.description
    if col.kind is Kind.BOOLEAN:
        row["Field Type"] = "yesno"
    else:
        row["Field Type"] = "text"
    if col.kind is Kind.DATE:
        row["Text Validation Type OR Show Slider Number"] = "date_ymd"
    elif col.kind is Kind.NUMBER:
        row["Text Validation Type OR Show Slider Number"] = "number"
        if col.positive:
            row["Text Validation Min"] = "0"
        if col.warn_above is not None:
            row["Text Validation Max"] = f"{col.warn_above:g}"
    if col.required and not col.blank_ok:
        row["Required Field?"] = "y"
    if col.name == "baseline_lesion_id":
        row["Field Note"] += " Type the Lesion ID exactly as in the lesions form."
    return row


def default_dictionary_rows() -> list[dict[str, str]]:
    """The rows of the data dictionary ``pofa template --redcap`` writes.

    Returns
    -------
    list of dict
        One row per field (keys: :data:`DICTIONARY_COLUMNS`): ``record_id`` and the patients form first,
        then the lesions and failures forms (to be made repeating in the project's setup). Yes/no columns
        are ``yesno`` fields, dates ``date_ymd``, numbers ``number``, identifiers text.
    """
    rows: list[dict[str, str]] = []
    for table in REDCAP_TABLES:
        for col in TABLES[table].columns:
            if col.name == "patient_id" and table is not TableName.PATIENTS:
                continue  # lesions and failures belong to the record: no field of their own
            rows.append(_dictionary_row(table, col))
    return rows


def dictionary_csv(rows: list[dict[str, str]] | None = None) -> str:
    """The data dictionary as CSV text (every cell quoted, as REDCap writes it).

    Parameters
    ----------
    rows : list of dict, optional
        The rows; :func:`default_dictionary_rows` when omitted.

    Returns
    -------
    str
        The CSV text.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(DICTIONARY_COLUMNS), quoting=csv.QUOTE_ALL,
                            lineterminator="\n")
    writer.writeheader()
    for row in rows if rows is not None else default_dictionary_rows():
        writer.writerow(row)
    return buf.getvalue()
